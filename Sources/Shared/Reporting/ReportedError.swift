/// What kind of failure an error is; the command line turns it into an exit status.
public enum FailureCategory: Sendable, Equatable {
    /// The data, an input file or a setting is wrong (exit status 1).
    case badInput
    /// The run could not complete: I/O, a peer, resources (exit status 1).
    case failedRun
    /// The command line itself is wrong (exit status 2).
    case usage
    /// Stopped by a signal before the end; saved state is kept (exit status 128 + the signal: 130 for SIGINT,
    /// 143 for SIGTERM).
    case interrupted(signal: Int32)
}

/// What the user can do about a failure, as a setting; the command line may name its flag.
public enum Remedy: Sendable, Equatable {
    /// Discard the saved partial state of the job and start over.
    case restartJob
    /// Overwrite an existing output.
    case overwrite
    /// Add the worker's public key to the coordinator's allow-list of worker keys.
    case authorizeWorkerKey
    /// Give the worker its key pair and the coordinator's public key.
    case giveWorkerKeys
    /// Run the coordinator with CURVE (its key pair and an allow-list), or the worker without keys.
    case matchCoordinatorSecurity
    /// Check that the worker holds the coordinator's public key.
    case checkServerKey
    /// Use CURVE, bind a loopback address, or allow plaintext explicitly.
    case secureOrLoopbackBind
}

/// The one shape of every domain error: what is at fault, what was expected, and what kind of failure it is.
///
/// Each module keeps its own small error type and conforms it here; messages name files, layers, shards or
/// peers and settings, never command-line flags. `description` is the text shown to the user.
public protocol ReportedError: Error, CustomStringConvertible, Sendable {
    /// The file, layer, shard or peer at fault, when there is one.
    var subject: String? { get }
    /// What went wrong, or what was expected.
    var message: String { get }
    /// Decides the exit status.
    var category: FailureCategory { get }
    /// What the user can do about it, when the library knows.
    var remedy: Remedy? { get }
}

extension ReportedError {
    public var subject: String? { nil }
    public var remedy: Remedy? { nil }
    public var category: FailureCategory { .badInput }
}
