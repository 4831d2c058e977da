import ArgumentParser
import CLI
import FileIntegrity
import Foundation
import Wire

/// `bottleneck-coordinator keygen PATH`: a CURVE key pair for a coordinator or a worker.
struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Make a CURVE key pair: PATH.key (secret and public key, mode 0600) and PATH.pub (public key).",
        discussion: """
            Keep PATH.key on the machine that uses it; give others PATH.pub. The coordinator takes \
            --curve-key coordinator.key --authorized-workers DIR (a directory of the workers' .pub files); a worker \
            takes --curve-key worker.key --server-key coordinator.pub. Keys are never printed: only a short \
            fingerprint of the public key. Exit status: 0 written, 1 not written (the message says why).
            """)

    @Argument(help: "Where to write: PATH.key and PATH.pub (a trailing .key or .pub is dropped).")
    var path: String

    @Flag(help: "Replace existing key files (a worker holding the old key is locked out).")
    var force = false

    /// PATH without a trailing .key or .pub.
    private var base: String {
        var base = path
        for suffix in [".key", ".pub"] where base.hasSuffix(suffix) { base.removeLast(suffix.count) }
        return base
    }

    func validate() throws {
        let name = (base as NSString).lastPathComponent
        guard !base.isEmpty, !base.hasSuffix("/"), !name.isEmpty, name != ".", name != ".." else {
            throw ValidationError("PATH '\(path)' names no file: give a name such as keys/coordinator")
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: base, isDirectory: &isDirectory), isDirectory.boolValue {
            throw ValidationError("PATH \(base) is a directory: give a file name inside it, e.g. \(base)/worker")
        }
    }

    func run() throws {
        let base = self.base
        for file in [base + ".key", base + ".pub"] {
            // Existing key files are refused by the writer unless --force; here: directories, inputs, writability.
            try OutputCheck.check(file, kind: "key file", inputs: [], overwrite: true, recognises: { _ in true })
        }
        let keys = try CurveKeyPair.generate()
        try keys.write(toBasePath: base, overwrite: force)
        print(
            "wrote \(base).key (key pair: keep it secret, mode 0600) and \(base).pub (public key "
                + "\(keys.publicKey.fingerprint)…)")
    }
}
