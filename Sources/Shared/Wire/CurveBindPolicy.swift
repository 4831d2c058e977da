import Reporting

/// Which endpoints may carry plaintext: only those that cannot leave the machine.
///
/// Loopback: `tcp://127.x.x.x:…`, `tcp://localhost:…`, `tcp://[::1]:…`, `tcp://lo:…`, `ipc://…`, `inproc://…`.
/// Everything else, including `tcp://*:…`, `tcp://0.0.0.0:…`, `tcp://[::]:…`, other addresses, host and interface
/// names, is not: binding it without CURVE needs the operator's explicit consent to plaintext.
public enum CurveBindPolicy {
    /// Whether `endpoint` ("tcp://127.0.0.1:5555", "ipc:///tmp/b.sock") stays on this machine.
    public static func isLoopback(_ endpoint: String) -> Bool {
        let lowered = endpoint.lowercased()
        if lowered.hasPrefix("ipc://") || lowered.hasPrefix("inproc://") { return true }
        guard lowered.hasPrefix("tcp://") else { return false }
        var host = String(lowered.dropFirst("tcp://".count))
        // A connect endpoint may name a source first ("tcp://src;dst:port"); the destination is what matters.
        if let semicolon = host.lastIndex(of: ";") { host = String(host[host.index(after: semicolon)...]) }
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return false }
            let address = host[host.index(after: host.startIndex)..<close]
            return address == "::1" || address == "0:0:0:0:0:0:0:1"
        }
        if let colon = host.lastIndex(of: ":") { host = String(host[..<colon]) }
        if host == "localhost" || host == "lo" { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }

    /// Why binding `endpoint` is refused, or nil when it is allowed.
    ///
    /// Allowed: any endpoint with CURVE; a loopback endpoint in plaintext; any endpoint in plaintext with
    /// `insecure`. The caller warns on every start when `insecure` let a non-loopback endpoint through
    /// (`insecureWarning`).
    public static func refusal(bindingPlaintext endpoint: String, insecure: Bool) -> PlaintextBindRefusal? {
        if insecure || isLoopback(endpoint) { return nil }
        return PlaintextBindRefusal(endpoint: endpoint)
    }

    /// The warning logged on every start that binds a non-loopback endpoint in plaintext by explicit consent.
    public static func insecureWarning(endpoint: String) -> String {
        "\(endpoint) is bound WITHOUT encryption or authentication (plaintext allowed explicitly); anyone who can "
            + "reach it can read the images and features and join as a worker"
    }
}

/// A non-loopback endpoint that would carry plaintext: refused unless the operator allows it explicitly.
public struct PlaintextBindRefusal: ReportedError, Equatable {
    public let endpoint: String
    public var subject: String? { endpoint }
    public var message: String {
        "refusing to bind \(endpoint) without encryption: other machines could read the images and features and "
            + "any of them could join as a worker"
    }
    public var description: String { message }
    public var category: FailureCategory { .usage }
    public var remedy: Remedy? { .secureOrLoopbackBind }
}
