import Logging

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The process's limit on open files (RLIMIT_NOFILE): every executable raises the soft limit to the hard limit
/// at start, since a coordinator with many workers, or a worker or load generator with many sockets, needs more
/// descriptors than the usual soft default of 1024.
public enum OpenFileLimit {
    /// The soft limit before and after raising it, or the reason it could not be raised.
    public enum Outcome: Sendable, Equatable {
        case raised(from: UInt64, to: UInt64)
        case unchanged(UInt64)
        case failed(String)
    }

    /// Raised once, by the first use (`CommandLineRunner.main` uses it before parsing the command line).
    public static let atStart: Outcome = raiseSoftToHard()

    /// Sets the soft limit on open files to the hard limit.
    public static func raiseSoftToHard() -> Outcome {
        var limit = rlimit()
        guard getrlimit(openFiles, &limit) == 0 else {
            return .failed("getrlimit: \(String(cString: strerror(errno)))")
        }
        let soft = UInt64(limit.rlim_cur)
        guard limit.rlim_cur < limit.rlim_max else { return .unchanged(soft) }
        limit.rlim_cur = limit.rlim_max
        guard setrlimit(openFiles, &limit) == 0 else {
            return .failed("setrlimit to \(limit.rlim_max): \(String(cString: strerror(errno)))")
        }
        return .raised(from: soft, to: UInt64(limit.rlim_max))
    }

    /// Logs what `atStart` did, at debug.
    static func log(_ logger: Logger) {
        switch atStart {
        case .raised(let from, let to): logger.debug("open-file limit raised from \(from) to \(to)")
        case .unchanged(let limit): logger.debug("open-file limit \(limit) (already the hard limit)")
        case .failed(let reason): logger.debug("open-file limit not raised: \(reason)")
        }
    }
}

#if canImport(Glibc)
    private let openFiles = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
#else
    private let openFiles = RLIMIT_NOFILE
#endif
