import Foundation
import Testing

@testable import Extraction

/// `ShardScheduler`'s policy: hand-out order, reassignment, duplicates and copies near the end.
@Suite("Shard scheduler")
struct ShardSchedulerTests {
    let a: [UInt8] = [1]
    let b: [UInt8] = [2]
    let c: [UInt8] = [3]
    let start = Date(timeIntervalSince1970: 1_000)

    @Test("waiting shards go out lowest id first, skipping those already done, each under a new attempt")
    func handout() {
        var scheduler = ShardScheduler(shardCount: 5, alreadyDone: [1, 3])
        #expect(scheduler.doneCount == 2)
        #expect(!scheduler.isComplete)
        let first = scheduler.next(for: a, now: start)
        let second = scheduler.next(for: b, now: start)
        let third = scheduler.next(for: a, now: start)
        #expect([first?.shard, second?.shard, third?.shard] == [0, 2, 4])
        let attempts = [first?.attempt, second?.attempt, third?.attempt].compactMap { $0 }
        #expect(Set(attempts).count == 3, "every hand-out has its own attempt number")
        #expect(scheduler.holds(a, shard: 0, attempt: first!.attempt))
        #expect(!scheduler.holds(b, shard: 0, attempt: first!.attempt), "only the worker it went to holds it")
        #expect(!scheduler.holds(a, shard: 0, attempt: second!.attempt), "a stale attempt is not held")
    }

    @Test("a worker holding every shard in flight gets nothing more")
    func nothingUseful() {
        var scheduler = ShardScheduler(shardCount: 2, alreadyDone: [])
        _ = scheduler.next(for: a, now: start)
        _ = scheduler.next(for: a, now: start)
        #expect(scheduler.next(for: a, now: start) == nil, "no copy of a shard the worker already holds")
    }

    @Test("a silent worker's shards are taken back and go out before the waiting ones, lowest first")
    func reassignment() {
        var scheduler = ShardScheduler(shardCount: 6, alreadyDone: [])
        _ = scheduler.next(for: a, now: start)  // 0
        _ = scheduler.next(for: b, now: start)  // 1
        _ = scheduler.next(for: a, now: start)  // 2
        let requeued = scheduler.withdraw(a)
        #expect(requeued == [0, 2])
        #expect(scheduler.inFlight[0] == nil && scheduler.inFlight[2] == nil)
        #expect(scheduler.inFlight[1]?.map(\.worker) == [b], "other workers keep their shards")
        #expect(scheduler.next(for: c, now: start)?.shard == 0)
        #expect(scheduler.next(for: c, now: start)?.shard == 2)
        #expect(scheduler.next(for: c, now: start)?.shard == 3, "then the waiting shards")
    }

    @Test("withdrawing one of two holders leaves the shard in flight with the other")
    func withdrawOneCopy() {
        var scheduler = ShardScheduler(shardCount: 1, alreadyDone: [])
        _ = scheduler.next(for: a, now: start)
        _ = scheduler.next(for: b, now: start.addingTimeInterval(1))  // a copy: nothing else waits
        #expect(scheduler.inFlight[0]?.count == 2)
        #expect(scheduler.withdraw(a) == [])
        #expect(scheduler.inFlight[0]?.map(\.worker) == [b])
    }

    @Test("the first result wins; later duplicates are dropped and the other holders are named")
    func firstResultWins() {
        var scheduler = ShardScheduler(shardCount: 1, alreadyDone: [])
        let original = scheduler.next(for: a, now: start)!
        let copy = scheduler.next(for: b, now: start.addingTimeInterval(1))!
        #expect(copy.shard == original.shard && copy.attempt != original.attempt)
        #expect(scheduler.complete(0) == [a, b])
        #expect(scheduler.isDone(0) && scheduler.isComplete && scheduler.doneCount == 1)
        #expect(scheduler.complete(0) == [], "a duplicate result changes nothing")
        #expect(scheduler.doneCount == 1)
        #expect(!scheduler.holds(b, shard: 0, attempt: copy.attempt), "the late copy's result is not accepted")
        #expect(scheduler.next(for: c, now: start) == nil)
    }

    @Test("idle workers copy the oldest shard in flight, at most maxCopies holders per shard")
    func idleCopies() {
        var scheduler = ShardScheduler(shardCount: 2, alreadyDone: [])
        _ = scheduler.next(for: a, now: start.addingTimeInterval(5))  // 0, newer
        _ = scheduler.next(for: b, now: start)  // 1, older
        #expect(scheduler.next(for: c, now: start.addingTimeInterval(10))?.shard == 1, "oldest first")
        #expect(scheduler.inFlight[1]?.count == scheduler.maxCopies)
        let d: [UInt8] = [4]
        #expect(scheduler.next(for: d, now: start.addingTimeInterval(10))?.shard == 0, "shard 1 has enough copies")
        let e: [UInt8] = [5]
        #expect(scheduler.next(for: e, now: start.addingTimeInterval(10)) == nil, "every shard has maxCopies holders")
    }

    @Test("a shard released without a usable result goes out again first")
    func release() {
        var scheduler = ShardScheduler(shardCount: 3, alreadyDone: [])
        _ = scheduler.next(for: a, now: start)  // 0
        scheduler.release(a, shard: 0)
        #expect(scheduler.inFlight[0] == nil)
        #expect(scheduler.next(for: b, now: start)?.shard == 0)
        #expect(scheduler.next(for: b, now: start)?.shard == 1)
    }
}
