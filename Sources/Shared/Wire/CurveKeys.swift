import CZeroMQ
import Foundation
import Reporting

#if canImport(Glibc)
    import Glibc
#endif

/// A CURVE public key (Curve25519), as the 40-character Z85 text ZeroMQ uses.
///
/// Public keys are not secret: they name workers in allow-lists and logs. `fingerprint` is the short form for logs.
public struct CurvePublicKey: Sendable, Hashable, CustomStringConvertible {
    /// The key in Z85: 40 characters encoding 32 bytes.
    public let z85: String

    /// Checks `z85` is 40 Z85 characters that decode to 32 bytes; nil otherwise.
    public init?(z85: String) {
        guard CurveKeyText.decode(z85) != nil else { return nil }
        self.z85 = z85
    }

    /// The key from its 32 raw bytes (what a ZAP request carries as CURVE credentials).
    public init?(bytes: [UInt8]) {
        guard let text = CurveKeyText.encode(bytes) else { return nil }
        z85 = text
    }

    /// The first 12 characters of the Z85 key: enough to tell keys apart in a log, and easy to find with
    /// `grep` in a directory of `.pub` files.
    public var fingerprint: String { String(z85.prefix(12)) }

    public var description: String { "CURVE public key \(fingerprint)…" }

    /// Reads a public key file (`PATH.pub`, or a `PATH.key` pair file, of which only the public half is read).
    public static func read(from path: String) throws -> CurvePublicKey {
        let fields = try CurveKeyText.fields(ofFile: path)
        guard let text = fields["public-key"] else {
            throw CurveKeyError(.malformed, path, "it has no line `public-key = <40 Z85 characters>`")
        }
        guard let key = CurvePublicKey(z85: text) else {
            throw CurveKeyError(.malformed, path, "its public-key is not 40 Z85 characters")
        }
        return key
    }

    /// Reads every `*.pub` file of `directory` (an allow-list of workers), in file name order.
    ///
    /// A malformed `.pub` file is an error naming it: an allow-list that silently dropped a key would be hard to
    /// debug. Other files are ignored. Throws when the directory cannot be read.
    public static func readAll(inDirectory directory: String) throws -> [(file: String, key: CurvePublicKey)] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw CurveKeyError(.missing, directory, "cannot read the directory of authorized worker keys")
        }
        return try names.filter { $0.hasSuffix(".pub") }.sorted().map { name in
            let path = (directory as NSString).appendingPathComponent(name)
            return (path, try read(from: path))
        }
    }
}

/// A CURVE key pair: this process's identity on an encrypted connection.
///
/// The secret key never leaves the process except into a `.key` file of mode 0600; `description` shows only the
/// public key's fingerprint, so a key pair can be logged or printed by mistake without leaking the secret.
public struct CurveKeyPair: Sendable, Equatable, CustomStringConvertible {
    public let publicKey: CurvePublicKey
    /// The secret key in Z85. Internal: only socket set-up and the key file writer use it.
    let secretZ85: String

    /// A fresh key pair from libzmq's `zmq_curve_keypair` (libsodium's random source).
    public static func generate() throws -> CurveKeyPair {
        try CurveSupport.requireCurve()
        var publicText = [CChar](repeating: 0, count: 41)
        var secretText = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&publicText, &secretText) == 0 else {
            throw CurveKeyError(.unsupported, "zmq_curve_keypair", "libzmq could not make a key pair")
        }
        let publicZ85 = publicText.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        let secretZ85 = secretText.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return CurveKeyPair(publicKey: CurvePublicKey(z85: publicZ85)!, secretZ85: secretZ85)
    }

    init(publicKey: CurvePublicKey, secretZ85: String) {
        self.publicKey = publicKey
        self.secretZ85 = secretZ85
    }

    public var description: String { "CURVE key pair \(publicKey.fingerprint)…" }

    /// Writes `basePath.key` (both keys, mode 0600) and `basePath.pub` (the public key, mode 0644).
    ///
    /// Refuses to replace existing files unless `overwrite`: replacing a key silently locks a worker out.
    /// The `.key` file is created with mode 0600 from the start (never readable by others, even briefly).
    public func write(toBasePath basePath: String, overwrite: Bool = false) throws {
        let keyPath = basePath + ".key"
        let pubPath = basePath + ".pub"
        if !overwrite {
            for path in [keyPath, pubPath] where FileManager.default.fileExists(atPath: path) {
                throw CurveKeyError(.exists, path, "it already exists; remove it first or overwrite it")
            }
        }
        let stamp = ISO8601DateFormatter().string(from: Date())
        let secretText = """
            # Bottleneck CURVE key pair, made \(stamp).
            # SECRET: keep this file on the machine that uses it, mode 0600, owned by the user that runs it.
            # Give others the matching .pub file only.
            curve
                public-key = "\(publicKey.z85)"
                secret-key = "\(secretZ85)"

            """
        let publicText = """
            # Bottleneck CURVE public key, made \(stamp). Not secret: copy it to whoever must recognise this key.
            curve
                public-key = "\(publicKey.z85)"

            """
        try CurveKeyText.writeFile(keyPath, secretText, mode: 0o600, overwrite: overwrite)
        try CurveKeyText.writeFile(pubPath, publicText, mode: 0o644, overwrite: overwrite)
    }

    /// Reads a key pair file (`PATH.key`).
    ///
    /// Refuses a file that is not a regular file, that others may read or write, or that its group may write
    /// (group read is allowed, for a service group or a Kubernetes Secret mounted with `fsGroup`); a file whose two
    /// keys do not belong together; and a file without both keys.
    public static func read(from path: String) throws -> CurveKeyPair {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw CurveKeyError(.missing, path, "cannot read the key file: \(String(cString: strerror(errno)))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw CurveKeyError(.malformed, path, "it is not a regular file")
        }
        let mode = info.st_mode & 0o777
        if mode & 0o027 != 0 {
            let octal = String(mode, radix: 8)
            throw CurveKeyError(
                .tooPermissive, path,
                "its mode is 0\(octal), so other users can read or change the secret key; run `chmod 600 \(path)`")
        }
        let fields = try CurveKeyText.fields(ofFile: path)
        guard let secretText = fields["secret-key"] else {
            throw CurveKeyError(
                .malformed, path,
                "it has no `secret-key` line; is this a .pub file? A key pair file is made by "
                    + "`bottleneck-coordinator keygen`")
        }
        guard CurveKeyText.decode(secretText) != nil else {
            throw CurveKeyError(.malformed, path, "its secret-key is not 40 Z85 characters")
        }
        guard let derived = CurveKeyText.publicKey(ofSecret: secretText) else {
            throw CurveKeyError(.malformed, path, "libzmq could not derive a public key from its secret-key")
        }
        if let publicText = fields["public-key"], publicText != derived.z85 {
            throw CurveKeyError(.malformed, path, "its public-key does not belong to its secret-key")
        }
        return CurveKeyPair(publicKey: derived, secretZ85: secretText)
    }
}

/// A key file that cannot be used, named with what is wrong and what to do.
public struct CurveKeyError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Reason: Sendable, Equatable {
        case missing
        case malformed
        case tooPermissive
        case exists
        /// The file could not be created or written.
        case unwritable
        /// This libzmq was built without CURVE (`zmq_has("curve")` is false).
        case unsupported
    }

    public let reason: Reason
    /// The file or directory concerned.
    public let path: String
    public let message: String

    public init(_ reason: Reason, _ path: String, _ message: String) {
        self.reason = reason
        self.path = path
        self.message = message
    }

    public var description: String { "curve key \(path): \(message)" }
}

/// Whether the linked libzmq can do CURVE.
public enum CurveSupport {
    public static var isAvailable: Bool { zmq_has("curve") != 0 }

    static func requireCurve() throws {
        guard isAvailable else {
            throw CurveKeyError(
                .unsupported, "libzmq \(WireContext.libraryVersion)",
                "this libzmq was built without CURVE (libsodium); install Debian's libzmq5")
        }
    }
}

/// The text of key files and Z85 conversions.
///
/// Format (compatible with the `curve` section of CZMQ's zcert files, so those can be read too): lines of
/// `name = "value"` (quotes optional) under a `curve` line; `#` starts a comment; other sections are ignored.
enum CurveKeyText {
    static func decode(_ z85: String) -> [UInt8]? {
        guard z85.utf8.count == 40 else { return nil }
        var bytes = [UInt8](repeating: 0, count: 32)
        guard zmq_z85_decode(&bytes, z85) != nil else { return nil }
        return bytes
    }

    static func encode(_ bytes: [UInt8]) -> String? {
        guard bytes.count == 32 else { return nil }
        var text = [CChar](repeating: 0, count: 41)
        guard zmq_z85_encode(&text, bytes, 32) != nil else { return nil }
        return text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    static func publicKey(ofSecret secretZ85: String) -> CurvePublicKey? {
        var publicText = [CChar](repeating: 0, count: 41)
        guard zmq_curve_public(&publicText, secretZ85) == 0 else { return nil }
        return CurvePublicKey(z85: publicText.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
    }

    /// The `name = value` pairs of the file's `curve` section (or of lines outside any section).
    static func fields(ofFile path: String) throws -> [String: String] {
        guard FileManager.default.fileExists(atPath: path) else {
            throw CurveKeyError(.missing, path, "no such file")
        }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8)
        else {
            throw CurveKeyError(.missing, path, "cannot read the file (permissions?) or it is not UTF-8 text")
        }
        var fields: [String: String] = [:]
        var section = ""
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let indented = rawLine.first == " " || rawLine.first == "\t"
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else {
                if !indented { section = line }
                continue
            }
            guard section == "" || section == "curve" else { continue }
            let name = line[..<equals].trimmingCharacters(in: .whitespaces)
            var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") {
                value = String(value.dropFirst().dropLast())
            }
            fields[name] = value
        }
        return fields
    }

    /// Writes `text` to `path` created with `mode` (0600 for secrets: open(2) gives the file its mode at creation).
    static func writeFile(_ path: String, _ text: String, mode: mode_t, overwrite: Bool) throws {
        if overwrite { unlink(path) }
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard descriptor >= 0 else {
            throw CurveKeyError(
                errno == EEXIST ? .exists : .unwritable, path,
                "cannot create the file: \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        // The umask may have removed bits; never added any. Set the exact mode for the public file's sake.
        fchmod(descriptor, mode)
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw CurveKeyError(.unwritable, path, "writing failed: \(String(cString: strerror(errno)))")
            }
            written += count
        }
        guard fsync(descriptor) == 0 else {
            throw CurveKeyError(.unwritable, path, "fsync failed: \(String(cString: strerror(errno)))")
        }
    }
}

extension CurveKeyError: ReportedError {
    public var subject: String? { path }
    public var category: FailureCategory { reason == .unsupported || reason == .unwritable ? .failedRun : .badInput }
    public var remedy: Remedy? { reason == .exists ? .overwrite : nil }
}
