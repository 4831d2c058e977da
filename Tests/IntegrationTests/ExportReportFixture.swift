import Foundation
import ImageInput
import TestSupport
import VGG16

/// A small JPEG tree (three classes, rectangular images), narrow generated VGG16 weights, and the
/// feature file and model the real `extract` and `train` make of them. Built once per test run.
///
/// The validation images of `circle` and `square` carry each other's colours, so a model that learned
/// anything misclassifies them: the report always has mistakes to show.
final class PipelineFixture: Sendable {
    let directory: String
    let train: String
    let validation: String
    let features: String
    let model: String

    static let classes = ["circle", "square", "triangle"]
    static let narrowWidths = [4, 4, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8]

    /// The fixture, or why it could not be made.
    static let shared: Result<PipelineFixture, FixtureError> = {
        guard BuiltExecutables.available else {
            return .failure(FixtureError(description: "the executables are not built (swift build --build-tests)"))
        }
        do { return .success(try PipelineFixture()) } catch let error as FixtureError {
            return .failure(error)
        } catch {
            return .failure(FixtureError(description: "\(error)"))
        }
    }()

    private init() throws {
        directory = try ImageFiles.temporaryDirectory("export-report")
        fixtureDirectory = directory
        atexit { if let path = fixtureDirectory { ImageFiles.removeTree(path) } }
        train = directory + "/data/train"
        validation = directory + "/data/validation"
        features = directory + "/features.h5"
        model = directory + "/model.h5"
        for (root, perClass, swapped) in [(train, 8, false), (validation, 3, true)] {
            for (k, name) in Self.classes.enumerated() {
                let colour = swapped && k < 2 ? 1 - k : k
                for i in 0..<perClass {
                    let rgb = Self.pattern(colour: colour, index: i, width: 48, height: 40)
                    try ImageFiles.write(
                        try ImageFiles.jpeg(rgb, width: 48, height: 40, channels: 3),
                        to: root + "/\(name)/img \(i),\(k).jpg")
                }
            }
        }
        let weights = directory + "/weights.h5"
        try VGG16Weights.generated(widths: Self.narrowWidths, seed: 3).writeOfficialLayout(to: weights)
        try Self.run([
            "extract", "--train", train, "--validation", validation, "--weights", weights, "--output", features,
            "--image-size", "32", "--preprocess", "rescale", "--workers", "2", "--cache-dir", directory + "/cache",
        ])
        try Self.run([
            "train", "--features", features, "--output", model, "--epochs", "8", "--batch-size", "8", "--seed", "1",
        ])
    }

    /// A colour per class (red, green, blue dominant) with a per-image texture.
    static func pattern(colour: Int, index: Int, width: Int, height: Int) -> [UInt8] {
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<3 {
                    let base = c == colour ? 200 : 40
                    rgb[(y * width + x) * 3 + c] = UInt8(truncatingIfNeeded: base + ((x * (index + 2) + y * 3) % 40))
                }
            }
        }
        return rgb
    }

    /// Runs the coordinator; throws with its output unless it exits 0.
    @discardableResult
    static func run(_ arguments: [String], expecting status: Int32 = 0) throws -> (stdout: String, stderr: String) {
        let log = NSTemporaryDirectory()
        let child = try ChildProcess(BuiltExecutables.coordinator, arguments, logDirectory: log, label: "coordinator")
        let code = child.wait(timeout: 300)
        defer {
            try? FileManager.default.removeItem(atPath: child.stdoutPath)
            try? FileManager.default.removeItem(atPath: child.stderrPath)
        }
        guard code == status else {
            throw FixtureError(
                description:
                    "bottleneck-coordinator \(arguments.joined(separator: " ")) exited "
                    + "\(code.map(String.init) ?? "late"), "
                    + "expected \(status)\nstdout: \(child.stdout)\nstderr: \(child.stderr)")
        }
        return (child.stdout, child.stderr)
    }
}

/// The shared fixture's directory, removed when the test process exits.
nonisolated(unsafe) private var fixtureDirectory: String?

struct FixtureError: Error, CustomStringConvertible {
    let description: String
}

/// Runs a tool found on PATH with a time limit; nil when it cannot be started.
func runTool(_ name: String, _ arguments: [String], timeout: Double = 120) -> (
    status: Int32, stdout: String, stderr: String
)? {
    guard let path = findOnPath(name) else { return nil }
    let log = NSTemporaryDirectory()
    let label = (name as NSString).lastPathComponent
    guard let child = try? ChildProcess(path, arguments, logDirectory: log, label: label) else { return nil }
    let status = child.wait(timeout: timeout)
    defer {
        try? FileManager.default.removeItem(atPath: child.stdoutPath)
        try? FileManager.default.removeItem(atPath: child.stderrPath)
    }
    return (status ?? -1, child.stdout, child.stderr)
}

func findOnPath(_ name: String) -> String? {
    if name.hasPrefix("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    return path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
}

/// The first Python that imports NumPy: `python3` on the PATH, else the system's (Debian's python3-numpy).
let pythonWithNumpy: String? = ["python3", "/usr/bin/python3"].first {
    runTool($0, ["-c", "import numpy"])?.status == 0
}

/// Why NumPy checks cannot run here, or nil when a Python with NumPy was found.
let numpyUnavailable: String? =
    pythonWithNumpy == nil ? "no python3 here imports numpy (apt-get install python3-numpy, or pip install numpy)" : nil

/// Why the browser checks cannot run here, or nil when a headless Chromium starts.
let chromiumUnavailable: String? = {
    guard let name = ["chromium", "chromium-browser"].first(where: { findOnPath($0) != nil }) else {
        return "chromium is not installed (apt-get install -y chromium)"
    }
    guard let result = runTool(name, ["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", "about:blank"]),
        result.status == 0, result.stdout.contains("<body")
    else { return "\(name) is installed but does not run headless here" }
    return nil
}()
