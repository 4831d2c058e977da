import Foundation

/// A coordinator's CURVE set-up: its key pair, the allow-list of worker keys, and keys for the workers it spawns.
///
/// Order of use on the coordinator's socket thread: `startZAPHandler(context:)`, then create the ROUTER with
/// `socketSecurity` and bind; close the ROUTER, then stop the handler.
public final class CurveServerSetup: @unchecked Sendable {
    public let keyPair: CurveKeyPair
    public let allowList: ZAPAllowList
    public let zapDomain: String
    /// Where the allow-list comes from, for messages.
    public let authorizedWorkersDirectory: String

    /// Reads the coordinator's key pair and the directory of authorized worker `.pub` files.
    ///
    /// An empty directory is allowed (workers can be added while the coordinator runs); an unreadable one, or a
    /// malformed `.pub` file in it, is an error naming the file.
    public init(
        keyFile: String, authorizedWorkersDirectory: String, zapDomain: String = CurveSocketRole.defaultZAPDomain
    )
        throws
    {
        keyPair = try CurveKeyPair.read(from: keyFile)
        allowList = try ZAPAllowList(directory: authorizedWorkersDirectory)
        self.zapDomain = zapDomain
        self.authorizedWorkersDirectory = authorizedWorkersDirectory
    }

    /// The security of the coordinator's ROUTER socket.
    public var socketSecurity: SocketSecurity { .curve(.server(keyPair: keyPair, zapDomain: zapDomain)) }

    /// Starts the ZAP handler on `context` (the context of the ROUTER socket); `onDecision` runs on its thread.
    public func startZAPHandler(context: WireContext, onDecision: @escaping @Sendable (ZAPDecision) -> Void) throws
        -> ZAPHandler
    {
        try ZAPHandler(context: context, allowList: allowList, domain: zapDomain, onDecision: onDecision)
    }

    /// Keys for the worker processes the coordinator starts itself: a fresh key pair admitted by this coordinator
    /// only, written with the coordinator's public key into a new directory of mode 0700.
    ///
    /// Returns the worker arguments (`--curve-key … --server-key …`); call `remove()` on the result when the
    /// local workers have exited.
    public func localWorkerKeys() throws -> LocalWorkerKeys {
        let directory = NSTemporaryDirectory() + "bottleneck-keys-\(getpid())-\(UUID().uuidString.prefix(8))"
        guard mkdir(directory, 0o700) == 0 else {
            throw CurveKeyError(.unwritable, directory, "cannot create the local workers' key directory")
        }
        let keys = try CurveKeyPair.generate()
        try keys.write(toBasePath: directory + "/local-worker")
        try CurveKeyText.writeFile(
            directory + "/coordinator.pub", "curve\n    public-key = \"\(keyPair.publicKey.z85)\"\n", mode: 0o644,
            overwrite: false)
        allowList.admit(keys.publicKey, as: "this coordinator's local workers")
        return LocalWorkerKeys(
            directory: directory,
            arguments: ["--curve-key", directory + "/local-worker.key", "--server-key", directory + "/coordinator.pub"])
    }
}

/// Key files for a coordinator's own worker processes; see `CurveServerSetup.localWorkerKeys()`.
public struct LocalWorkerKeys: Sendable {
    public let directory: String
    /// `--curve-key DIR/local-worker.key --server-key DIR/coordinator.pub`.
    public let arguments: [String]

    /// Deletes the key files and their directory.
    public func remove() { try? FileManager.default.removeItem(atPath: directory) }
}

extension SocketSecurity {
    /// A worker's security from its key files: `--curve-key` (its key pair) and `--server-key` (the coordinator's
    /// public key).
    public static func curveClient(keyFile: String, serverKeyFile: String) throws -> SocketSecurity {
        .curve(
            .client(
                keyPair: try CurveKeyPair.read(from: keyFile), serverKey: try CurvePublicKey.read(from: serverKeyFile)))
    }

    /// This side's public key when it is a CURVE client, for messages; nil otherwise.
    public var clientKey: CurvePublicKey? {
        if case .curve(.client(let keyPair, _)) = self { return keyPair.publicKey }
        return nil
    }
}
