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

    @Test(
        "holdings count every holder of a shard in flight, copies included, until it is done, given back or withdrawn")
    func holdings() {
        var scheduler = ShardScheduler(shardCount: 3, alreadyDone: [])
        _ = scheduler.next(for: a, now: start)
        _ = scheduler.next(for: a, now: start)
        _ = scheduler.next(for: b, now: start)
        #expect(scheduler.holdings == 3)
        // Nothing waits: c takes a copy of the oldest shard (0, held by a), a second holder.
        #expect(scheduler.next(for: c, now: start.addingTimeInterval(1))?.shard == 0)
        #expect(scheduler.holdings == 4)
        scheduler.complete(0)
        #expect(scheduler.holdings == 2, "both holders of the finished shard are gone")
        scheduler.release(b, shard: 2)
        #expect(scheduler.holdings == 1)
        scheduler.release(b, shard: 1)
        #expect(scheduler.holdings == 1, "giving back a shard it does not hold changes nothing")
        #expect(scheduler.withdraw(a) == [1])
        #expect(scheduler.holdings == 0)
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

    @Test("a retry postponed for every worker waits until its time, then goes out before waiting shards")
    func postponedForEveryone() {
        var scheduler = ShardScheduler(shardCount: 3, alreadyDone: [])
        _ = scheduler.next(for: a, now: start)  // 0
        scheduler.release(a, shard: 0)
        scheduler.postpone(0, until: start.addingTimeInterval(2), for: nil)
        #expect(scheduler.next(for: b, now: start.addingTimeInterval(1))?.shard == 1, "0 is not due yet")
        #expect(scheduler.next(for: a, now: start.addingTimeInterval(2))?.shard == 0, "due: before shard 2")
        #expect(scheduler.next(for: c, now: start.addingTimeInterval(2))?.shard == 2)
    }

    @Test("a retry postponed for the worker whose read failed goes to another worker at once")
    func postponedForOneWorker() {
        var scheduler = ShardScheduler(shardCount: 2, alreadyDone: [])
        _ = scheduler.next(for: a, now: start)  // 0
        scheduler.release(a, shard: 0)
        scheduler.postpone(0, until: start.addingTimeInterval(5), for: a)
        #expect(scheduler.next(for: a, now: start)?.shard == 1, "not for a yet")
        #expect(scheduler.next(for: b, now: start)?.shard == 0, "b takes it at once")
        scheduler.release(b, shard: 0)
        scheduler.postpone(0, until: start.addingTimeInterval(5), for: b)
        #expect(scheduler.next(for: b, now: start.addingTimeInterval(5))?.shard == 0, "after its time, b too")
    }

    @Test("a duplicate result after completion and a late copy change nothing; the copy holder is freed")
    func duplicateAfterCopy() {
        var scheduler = ShardScheduler(shardCount: 1, alreadyDone: [])
        let first = scheduler.next(for: a, now: start)!
        let copy = scheduler.next(for: b, now: start.addingTimeInterval(1))!
        #expect(copy.shard == first.shard && copy.attempt != first.attempt)
        #expect(scheduler.complete(0) == [a, b])
        #expect(scheduler.withdraw(b) == [], "the copy holder holds nothing any more")
        #expect(scheduler.complete(0) == [])
        #expect(scheduler.isComplete)
    }

    @Test("a worker dying with shards in flight: they go out again, its copies stay with the other holder")
    func workerDiesWithShardsInFlight() {
        var scheduler = ShardScheduler(shardCount: 4, alreadyDone: [])
        _ = scheduler.next(for: a, now: start)  // 0
        _ = scheduler.next(for: a, now: start)  // 1
        _ = scheduler.next(for: b, now: start)  // 2
        _ = scheduler.next(for: b, now: start)  // 3
        let copy = scheduler.next(for: a, now: start.addingTimeInterval(1))  // copy of 2 (oldest not held by a)
        #expect(copy?.shard == 2)
        #expect(scheduler.withdraw(a) == [0, 1], "the copy of 2 stays with b")
        #expect(scheduler.inFlight[2]?.map(\.worker) == [b])
        #expect(scheduler.next(for: c, now: start)?.shard == 0)
        #expect(scheduler.next(for: c, now: start)?.shard == 1)
        #expect(scheduler.next(for: c, now: start)?.shard == 2, "2 may be copied again: one holder left")
        #expect(scheduler.withdraw(b) == [3], "2 stays with c")
        #expect(scheduler.next(for: [4], now: start)?.shard == 3)
    }

    @Test("1,000 workers and 100,000 shards, with deaths, retries and copies, cost work linear in the shards")
    func linearWork() {
        let shardCount = 100_000
        var scheduler = ShardScheduler(shardCount: shardCount, alreadyDone: [])
        let workers = (0..<1000).map { [UInt8(truncatingIfNeeded: $0), UInt8(truncatingIfNeeded: $0 >> 8)] }
        var holding: [[UInt8]: [(shard: Int, attempt: Int)]] = [:]
        var handOuts = 0
        var round = 0
        var time = start
        var completions = 0
        while !scheduler.isComplete {
            round += 1
            time = time.addingTimeInterval(1)
            for (index, worker) in workers.enumerated() {
                // Each worker holds up to 2 shards; every 97th worker dies every 50th round (it comes back).
                if round % 50 == 0 && index % 97 == round % 97 {
                    _ = scheduler.withdraw(worker)
                    holding[worker] = nil
                    continue
                }
                while holding[worker, default: []].count < 2, let next = scheduler.next(for: worker, now: time) {
                    holding[worker, default: []].append(next)
                    handOuts += 1
                }
                guard let (shard, attempt) = holding[worker]?.first else { continue }
                holding[worker]!.removeFirst()
                if index % 13 == 0 && round % 3 == 0 {
                    scheduler.release(worker, shard: shard)  // an unusable result
                } else if scheduler.holds(worker, shard: shard, attempt: attempt) {
                    scheduler.complete(shard)
                    completions += 1
                }
            }
        }
        print("scheduler: \(shardCount) shards, \(handOuts) hand-outs, \(round) rounds, work \(scheduler.work)")
        #expect(completions == shardCount, "every shard completed exactly once")
        #expect(handOuts < 2 * shardCount)
        #expect(scheduler.work <= 10 * (shardCount + handOuts), "work \(scheduler.work) for \(handOuts) hand-outs")
        #expect(scheduler.inFlight.isEmpty)
    }
}
