import Foundation
import Reporting
import TestSupport
import Testing
import Wire

/// Runs `body` on a thread of its own: the sockets it makes are owned by that thread, and its blocking polls stay
/// off Swift's cooperative pool.
private func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// The ZAP decisions a handler reported, collected across its thread.
private final class DecisionLog: @unchecked Sendable {
    private let lock = NSLock()
    private var decisions: [ZAPDecision] = []
    func append(_ decision: ZAPDecision) { lock.withLock { decisions.append(decision) } }
    var all: [ZAPDecision] { lock.withLock { decisions } }
}

/// A CURVE coordinator-like ROUTER on loopback with a ZAP handler admitting `allowed`, and what a client of it saw.
private struct HandshakeResult: Sendable {
    var serverReceived: [[UInt8]]?
    var refusal: HandshakeRefusal?
    var decisions: [ZAPDecision]
}

private enum Client {
    case curve(CurveKeyPair, serverKey: CurvePublicKey)
    case plaintext
}

/// Starts a CURVE server (own context, ZAP handler, ROUTER on tcp://127.0.0.1:*), connects `client` from another
/// context with a handshake monitor, sends one message, and reports whether it arrived and what the monitor said.
private func tryHandshake(
    serverKeys: CurveKeyPair, allowed: [CurvePublicKey], client: Client, withZAPHandler: Bool = true,
    allowList: ZAPAllowList? = nil
) throws -> HandshakeResult {
    let serverContext = try WireContext()
    let clientContext = try WireContext()
    let log = DecisionLog()
    var handler: ZAPHandler?
    if withZAPHandler {
        let allowList =
            allowList ?? ZAPAllowList(keys: Dictionary(uniqueKeysWithValues: allowed.map { ($0, "test.pub") }))
        handler = try ZAPHandler(context: serverContext, allowList: allowList) { log.append($0) }
    }
    var serverOptions = SocketOptions()
    serverOptions.security = .curve(.server(keyPair: serverKeys, zapDomain: CurveSocketRole.defaultZAPDomain))
    let server = try WireSocket(context: serverContext, kind: .router, options: serverOptions)
    let endpoint = try server.bind("tcp://127.0.0.1:*")

    var clientOptions = SocketOptions()
    let watch = HandshakeWatch()
    clientOptions.handshakeMonitor = watch
    var clientKey: CurvePublicKey?
    if case .curve(let keys, let serverKey) = client {
        clientOptions.security = .curve(.client(keyPair: keys, serverKey: serverKey))
        clientKey = keys.publicKey
    }
    let dealer = try WireSocket(context: clientContext, kind: .dealer, options: clientOptions)
    let monitor = try HandshakeMonitor(context: clientContext, watch: watch, clientKey: clientKey)
    try dealer.connect(endpoint)
    try dealer.send([Array("hello".utf8)])

    let refusal = try monitor.awaitOutcome(timeoutMilliseconds: 10_000)
    var received: [[UInt8]]?
    if refusal == nil, try server.waitReadable(timeoutMilliseconds: 5_000) { received = try server.receive() }

    monitor.close()
    dealer.close()
    server.close()
    handler?.stop()
    clientContext.terminate()
    serverContext.terminate()
    return HandshakeResult(serverReceived: received, refusal: refusal, decisions: log.all)
}

@Suite("CURVE keys, ZAP allow-list and handshake refusals")
struct CurveTests {
    @Test("a key pair is written as PATH.key (mode 0600) and PATH.pub (0644) and read back identical")
    func keyFilesRoundTrip() throws {
        let directory = try TemporaryDirectory("curve-keys")
        defer { directory.remove() }
        let keys = try CurveKeyPair.generate()
        let base = directory.file("worker")
        try keys.write(toBasePath: base)

        let keyMode = try FileManager.default.attributesOfItem(atPath: base + ".key")[.posixPermissions] as? Int
        let pubMode = try FileManager.default.attributesOfItem(atPath: base + ".pub")[.posixPermissions] as? Int
        #expect(keyMode == 0o600)
        #expect(pubMode == 0o644)
        #expect(try CurveKeyPair.read(from: base + ".key") == keys)
        #expect(try CurvePublicKey.read(from: base + ".pub") == keys.publicKey)
        // The public file holds no secret, and printing a key pair shows only the fingerprint.
        let publicText = try String(contentsOfFile: base + ".pub", encoding: .utf8)
        #expect(!publicText.contains("secret-key"))
        #expect("\(keys)" == "CURVE key pair \(keys.publicKey.fingerprint)…")
        #expect(keys.publicKey.fingerprint.count == 12)
    }

    @Test("keygen does not replace existing key files unless asked")
    func noSilentOverwrite() throws {
        let directory = try TemporaryDirectory("curve-overwrite")
        defer { directory.remove() }
        let base = directory.file("coordinator")
        let first = try CurveKeyPair.generate()
        try first.write(toBasePath: base)
        let error = #expect(throws: CurveKeyError.self) { try CurveKeyPair.generate().write(toBasePath: base) }
        #expect(error?.reason == .exists)
        #expect(try CurveKeyPair.read(from: base + ".key") == first)
        let second = try CurveKeyPair.generate()
        try second.write(toBasePath: base, overwrite: true)
        #expect(try CurveKeyPair.read(from: base + ".key") == second)
    }

    @Test("key files that others can read, that are missing, or that are not key pairs are refused by name")
    func badKeyFilesRefused() throws {
        let directory = try TemporaryDirectory("curve-bad-keys")
        defer { directory.remove() }
        let base = directory.file("worker")
        try CurveKeyPair.generate().write(toBasePath: base)

        chmod(base + ".key", 0o644)
        let permissive = #expect(throws: CurveKeyError.self) { try CurveKeyPair.read(from: base + ".key") }
        #expect(permissive?.reason == .tooPermissive)
        #expect(permissive?.description.contains("chmod 600") == true)
        chmod(base + ".key", 0o640)  // a service group (or a Kubernetes fsGroup) may read it
        _ = try CurveKeyPair.read(from: base + ".key")

        let missing = #expect(throws: CurveKeyError.self) { try CurveKeyPair.read(from: directory.file("none.key")) }
        #expect(missing?.reason == .missing)

        let copy = directory.file("copy.key")
        try FileManager.default.copyItem(atPath: base + ".pub", toPath: copy)
        chmod(copy, 0o600)
        let notPair = #expect(throws: CurveKeyError.self) { try CurveKeyPair.read(from: copy) }
        #expect(notPair?.reason == .malformed)
        #expect(notPair?.path == copy)

        // A pair whose public half was swapped for another key's.
        let other = try CurveKeyPair.generate()
        let text = try String(contentsOfFile: base + ".key", encoding: .utf8)
            .replacingOccurrences(
                of: try CurvePublicKey.read(from: base + ".pub").z85, with: other.publicKey.z85)
        try text.write(toFile: copy, atomically: false, encoding: .utf8)
        let mismatched = #expect(throws: CurveKeyError.self) { try CurveKeyPair.read(from: copy) }
        #expect(mismatched?.message.contains("does not belong") == true)

        try "curve\n    public-key = \"tooshort\"\n".write(
            toFile: directory.file("bad.pub"), atomically: false, encoding: .utf8)
        let malformed = #expect(throws: CurveKeyError.self) { try CurvePublicKey.readAll(inDirectory: directory.path) }
        #expect(malformed?.path == directory.file("bad.pub"))
    }

    @Test("a worker whose key is allow-listed gets through, and the ZAP handler logs it as admitted")
    func allowedKeyGetsThrough() async throws {
        let server = try CurveKeyPair.generate()
        let worker = try CurveKeyPair.generate()
        let result = try await onOwnThread {
            try tryHandshake(
                serverKeys: server, allowed: [worker.publicKey],
                client: .curve(worker, serverKey: server.publicKey))
        }
        #expect(result.refusal == nil)
        #expect(result.serverReceived?.last == Array("hello".utf8))
        #expect(result.decisions.first?.allowed == true)
        #expect(result.decisions.first?.clientKey == worker.publicKey)
    }

    @Test("an unknown key is refused: the client's monitor reports the ZAP refusal, the server logs its fingerprint")
    func unknownKeyRefused() async throws {
        let server = try CurveKeyPair.generate()
        let allowed = try CurveKeyPair.generate()
        let stranger = try CurveKeyPair.generate()
        let result = try await onOwnThread {
            try tryHandshake(
                serverKeys: server, allowed: [allowed.publicKey],
                client: .curve(stranger, serverKey: server.publicKey))
        }
        #expect(result.serverReceived == nil)
        let message = try #require(result.refusal).message
        #expect(message.contains("refused this worker's key \(stranger.publicKey.fingerprint)"))
        #expect(try #require(result.refusal).remedy == .authorizeWorkerKey)
        let decision = try #require(result.decisions.first)
        #expect(!decision.allowed)
        #expect(decision.address == "127.0.0.1")
        #expect(decision.logLine.contains(stranger.publicKey.fingerprint))
        #expect(!decision.logLine.contains(stranger.publicKey.z85))
    }

    @Test("a client without CURVE is refused, and told the coordinator requires keys")
    func plaintextClientRefused() async throws {
        let server = try CurveKeyPair.generate()
        let result = try await onOwnThread {
            try tryHandshake(serverKeys: server, allowed: [], client: .plaintext)
        }
        #expect(result.serverReceived == nil)
        #expect(try #require(result.refusal).message.contains("requires CURVE"))
    }

    @Test("a client holding the wrong server key cannot complete the handshake, and finds out")
    func wrongServerKeyDetected() async throws {
        let server = try CurveKeyPair.generate()
        let impostor = try CurveKeyPair.generate()
        let worker = try CurveKeyPair.generate()
        let result = try await onOwnThread {
            try tryHandshake(
                serverKeys: server, allowed: [worker.publicKey],
                client: .curve(worker, serverKey: impostor.publicKey))
        }
        #expect(result.serverReceived == nil)
        #expect(try #require(result.refusal).remedy == .checkServerKey)
        #expect(result.decisions.isEmpty)  // the server could not even read who it was
    }

    @Test("without a ZAP handler a CURVE server admits nobody (the ZAP domain is enforced)")
    func noHandlerNoEntry() async throws {
        let server = try CurveKeyPair.generate()
        let worker = try CurveKeyPair.generate()
        let result = try await onOwnThread {
            try tryHandshake(
                serverKeys: server, allowed: [worker.publicKey],
                client: .curve(worker, serverKey: server.publicKey), withZAPHandler: false)
        }
        #expect(result.serverReceived == nil)
        #expect(result.refusal != nil)
    }

    @Test("a second ZAP handler on the same context is refused with an error, not a hang")
    func oneHandlerPerContext() async throws {
        let message = try await onOwnThread { () -> String in
            let context = try WireContext()
            let allowList = ZAPAllowList(keys: [:])
            let first = try ZAPHandler(context: context, allowList: allowList) { _ in }
            defer {
                first.stop()
                context.terminate()
            }
            do {
                _ = try ZAPHandler(context: context, allowList: allowList) { _ in }
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        #expect(message.contains("inproc://zeromq.zap.01"), "\(message)")
    }

    @Test("the allow-list directory is read again when a .pub file is added")
    func allowListDirectoryReloads() async throws {
        let directory = try TemporaryDirectory("curve-allow")
        defer { directory.remove() }
        let first = try CurveKeyPair.generate()
        let later = try CurveKeyPair.generate()
        try first.write(toBasePath: directory.file("node1"))
        try FileManager.default.removeItem(atPath: directory.file("node1.key"))
        let allowList = try ZAPAllowList(directory: directory.path)
        #expect(allowList.count == 1)
        try later.write(toBasePath: directory.file("node2"))
        try FileManager.default.removeItem(atPath: directory.file("node2.key"))
        // Some filesystems keep whole seconds: make sure the directory's time visibly changed.
        try FileManager.default.setAttributes(
            [.modificationDate: Date().addingTimeInterval(5)], ofItemAtPath: directory.path)

        let server = try CurveKeyPair.generate()
        let result = try await onOwnThread {
            try tryHandshake(
                serverKeys: server, allowed: [], client: .curve(later, serverKey: server.publicKey),
                allowList: allowList)
        }
        #expect(result.refusal == nil)
        #expect(result.decisions.first?.reason == "authorized (node2.pub)")
        #expect(allowList.count == 2)
    }

    @Test("plaintext binds: loopback endpoints are allowed, anything else needs explicit consent")
    func plaintextBindPolicy() {
        for endpoint in [
            "tcp://127.0.0.1:5555", "tcp://127.1.2.3:*", "tcp://localhost:5555", "tcp://[::1]:5555", "tcp://lo:5555",
            "ipc:///tmp/b.sock", "inproc://jobs",
        ] {
            #expect(CurveBindPolicy.isLoopback(endpoint), "\(endpoint)")
            #expect(CurveBindPolicy.refusal(bindingPlaintext: endpoint, insecure: false) == nil)
        }
        for endpoint in [
            "tcp://*:5555", "tcp://0.0.0.0:5555", "tcp://[::]:5555", "tcp://10.0.0.1:5555", "tcp://eth0:5555",
            "tcp://coordinator.example.org:5555", "tcp://127.0.0.1.example.org:5555", "tcp://128.0.0.1:5555",
        ] {
            #expect(!CurveBindPolicy.isLoopback(endpoint), "\(endpoint)")
            let refusal = CurveBindPolicy.refusal(bindingPlaintext: endpoint, insecure: false)
            #expect(refusal?.remedy == .secureOrLoopbackBind)
            #expect(refusal?.message.contains("refusing to bind \(endpoint) without encryption") == true)
            #expect(CurveBindPolicy.refusal(bindingPlaintext: endpoint, insecure: true) == nil)
        }
    }
}
