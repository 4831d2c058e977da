import Foundation
import Storage
import TestSupport
import Testing

/// The first Python that imports h5py (Debian's python3-h5py).
let pythonWithH5py: String? = ["python3", "/usr/bin/python3"].first { runTool($0, ["-c", "import h5py"])?.status == 0 }

/// Why h5py checks cannot run here, or nil when a Python with h5py was found.
let h5pyUnavailable: String? =
    pythonWithH5py == nil ? "no python3 here imports h5py (apt-get install python3-h5py)" : nil

/// The journal's storage seen from outside: the virtual output read by h5py, a resume after kill -9 from the
/// journal log in plain and shared-filesystem mode.
@Suite("Extraction storage", .enabled(if: BuiltExecutables.available, "needs the built executables"))
struct ExtractionStorageTests {
    @Test("a virtual output reads the same as a copied one, in our reader and in h5py; its parts stay")
    func virtualEqualsCopy() throws {
        let fixture = try DistributedFixture("virtual")
        defer { fixture.directory.remove() }
        let copy = try fixture.runCoordinator(fixture.extractArguments("copy.h5", ["--workers", "1", "--shard-size", "4"]))
        #expect(copy.status == 0, "\(copy.stderr)")
        let virtual = try fixture.runCoordinator(
            fixture.extractArguments("virtual.h5", ["--workers", "1", "--shard-size", "4", "--assemble", "virtual"]))
        #expect(virtual.status == 0, "\(virtual.stderr)")
        #expect(
            try FeatureSnapshot(fixture.directory.file("virtual.h5"))
                == FeatureSnapshot(fixture.directory.file("copy.h5")))
        #expect(
            FileManager.default.fileExists(atPath: fixture.directory.file("virtual.h5.parts/part-train-000000.h5")),
            "the part files a virtual output maps onto stay")
        #expect(!FileManager.default.fileExists(atPath: fixture.directory.file("copy.h5.parts")))

        guard let python = pythonWithH5py else {
            print("h5py comparison skipped: \(h5pyUnavailable ?? "")")
            return
        }
        // From another working directory: h5py must find the parts next to the virtual file.
        let script = """
            import os, sys, h5py, numpy as np
            copy, virtual = sys.argv[1:3]
            os.chdir("/")
            with h5py.File(copy, "r") as a, h5py.File(virtual, "r") as b:
                assert b["train/features"].is_virtual and not a["train/features"].is_virtual
                for split in ("train", "validation"):
                    for name in ("features", "labels", "filenames"):
                        x, y = a[f"{split}/{name}"][()], b[f"{split}/{name}"][()]
                        assert x.shape == y.shape and x.dtype == y.dtype, (split, name, x.shape, y.shape)
                        assert np.array_equal(x, y), (split, name)
                assert dict(a.attrs) .keys() == dict(b.attrs).keys()
                print(b["train/features"].shape, len(b["train/features"].virtual_sources()))
            """
        let result = try #require(
            runTool(python, ["-c", script, fixture.directory.file("copy.h5"), fixture.directory.file("virtual.h5")]))
        #expect(result.status == 0, "\(result.stderr)")
        print("h5py read the virtual output: \(result.stdout)")
    }
}
