import Foundation
import Testing
import WorkerRuntime

/// `WorkerConfiguration` defaults and `WorkerOutcome` exit statuses.
@Suite("Worker configuration")
struct WorkerConfigurationTests {
    @Test("explicit values are kept; defaults fill the rest")
    func values() {
        let explicit = WorkerConfiguration(
            endpoint: "tcp://127.0.0.1:5555", threads: 3, persistent: true, cacheDirectory: "/tmp/c", giveUpAfter: 7,
            parentPID: 42, name: "w1", shardDelayMilliseconds: 25)
        #expect(explicit.endpoint == "tcp://127.0.0.1:5555")
        #expect(explicit.computeThreads == 3)
        #expect(explicit.persistent && explicit.giveUpAfter == 7 && explicit.parentPID == 42)
        #expect(explicit.cacheDirectory == "/tmp/c" && explicit.name == "w1")
        #expect(explicit.shardDelayMilliseconds == 25)

        let defaults = WorkerConfiguration(endpoint: "ipc:///tmp/b.sock")
        #expect(defaults.threads == nil)
        #expect(defaults.computeThreads == max(1, ProcessInfo.processInfo.activeProcessorCount))
        #expect(!defaults.persistent && defaults.giveUpAfter == 60 && defaults.parentPID == nil)
        #expect(defaults.shardDelayMilliseconds == 0)
        #expect(defaults.cacheDirectory == WorkerConfiguration.defaultCacheDirectory)
        #expect(defaults.cacheDirectory.hasSuffix("bottleneck"))
        #expect(defaults.name.hasSuffix(":\(getpid())"), "host:pid, got \(defaults.name)")
    }

    @Test("only a job the coordinator ended exits 0")
    func exitCodes() {
        #expect(WorkerOutcome.jobEnded.exitCode == 0)
        for outcome in [WorkerOutcome.gaveUp("x"), .refused("x"), .parentGone, .failed("x")] {
            #expect(outcome.exitCode == 1)
        }
    }
}
