import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Turns SIGINT and SIGTERM into a call on a dispatch queue, outside any C signal handler.
///
/// The signals are set to be ignored (so their default action never runs) and watched with
/// `DispatchSource.makeSignalSource`. The first one calls `onFirst` with the signal's number; a second one
/// ends the process at once with status 128 + its number. Keep the value alive for as long as the watch
/// should last; `cancel()` restores the default actions.
public final class InterruptSignals: @unchecked Sendable {
    // Safe: `sources` is written once in init and only cancelled afterwards (DispatchSource is thread-safe);
    // the count is a Mutex inside a Sendable class.
    private let sources: [any DispatchSourceSignal]
    private let signals: [Int32]

    /// Starts watching `signals` (default SIGINT and SIGTERM).
    public init(
        _ signals: [Int32] = [SIGINT, SIGTERM], onFirst: @escaping @Sendable (Int32) -> Void
    ) {
        self.signals = signals
        let queue = DispatchQueue(label: "bottleneck.signals")
        var sources: [any DispatchSourceSignal] = []
        let count = SignalCount()
        for number in signals {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler {
                let seen = count.next()
                if seen == 1 { onFirst(number) } else { _exit(128 + number) }
            }
            source.resume()
            sources.append(source)
        }
        self.sources = sources
    }

    /// Stops watching and restores the signals' default actions.
    public func cancel() {
        for source in sources { source.cancel() }
        for number in signals { signal(number, SIG_DFL) }
    }

    /// The usual name of a signal number, e.g. "SIGINT".
    public static func name(_ number: Int32) -> String {
        switch number {
        case SIGINT: "SIGINT"
        case SIGTERM: "SIGTERM"
        case SIGHUP: "SIGHUP"
        default: "signal \(number)"
        }
    }
}

/// How many of the watched signals have arrived.
private final class SignalCount: Sendable {
    private let value = Mutex(0)
    func next() -> Int {
        value.withLock {
            $0 += 1
            return $0
        }
    }
}
