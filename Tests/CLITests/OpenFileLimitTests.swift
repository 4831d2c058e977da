import Testing

@testable import CLI

#if canImport(Glibc)
    import Glibc
#endif

@Suite("open-file limit")
struct OpenFileLimitTests {
    @Test("raising sets the soft limit on open files to the hard limit, and says from what")
    func softRaisedToHard() {
        let outcome = OpenFileLimit.raiseSoftToHard()
        var limit = rlimit()
        #expect(getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0)
        #expect(limit.rlim_cur == limit.rlim_max)
        switch outcome {
        case .raised(let from, let to): #expect(from < to && to == UInt64(limit.rlim_max))
        case .unchanged(let soft): #expect(soft == UInt64(limit.rlim_max))
        case .failed(let reason): Issue.record("not raised: \(reason)")
        }
        #expect(OpenFileLimit.raiseSoftToHard() == .unchanged(UInt64(limit.rlim_max)), "a second call changes nothing")
    }
}
