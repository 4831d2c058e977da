import Foundation

/// Which shards are waiting, in flight (with which workers), or done; hands out the next shard for a worker.
///
/// Waiting shards go out lowest id first; shards taken back (a worker died, hung, or sent something unusable) go
/// out before them, in the order they came back. When nothing waits, an idle worker may take a copy of the shard
/// that has been in flight longest (at most `maxCopies` holders per shard); the first valid result wins.
///
/// A pure value: the caller passes the time in (`now`), nothing here reads a clock or does I/O. No operation scans
/// all shards or all workers: the queues hold `(shard, ticket)` entries and an entry whose ticket is stale (the
/// shard was queued again, handed out, or finished since) is dropped when it reaches the front, and the times that
/// matter (postponed retries, the age of shards in flight) are kept in heaps. `work` counts the queue and heap
/// entries examined, so tests can check that a whole job costs work linear in shards plus hand-outs.
/// Used from the coordinator's event-loop thread only.
struct ShardScheduler {
    struct Holder: Equatable {
        var worker: [UInt8]
        var attempt: Int
        var since: Date
    }

    /// A queued shard: valid while `ticket` equals the shard's current ticket.
    private struct Entry {
        var shard: Int
        var ticket: UInt32
    }

    /// A shard at a time: a postponed retry (`tag` is the ticket) or a holder's start (`tag` is the attempt).
    private struct Timed: Comparable {
        var time: Date
        var shard: Int
        var tag: Int
        static func < (a: Timed, b: Timed) -> Bool { (a.time, a.shard, a.tag) < (b.time, b.shard, b.tag) }
    }

    /// A retry that one worker may not take before `until` (its read failed there); others may take it at once.
    private struct Restricted {
        var entry: Entry
        var worker: [UInt8]
        var until: Date
    }

    private(set) var doneCount = 0
    private var done: [Bool]
    private var waiting: [Int]
    private var waitingHead = 0
    /// Shards ready again, first in first out (`retryHead` is the front).
    private var retry: [Entry] = []
    private var retryHead = 0
    /// Per shard, bumped whenever it is queued again; queue entries with an older ticket are stale.
    private var tickets: [UInt32]
    /// Retries postponed for every worker, by the time they may go out again (`tag`: the ticket).
    private var postponed = MinHeap<Timed>()
    /// Retries kept from one worker for a while; rare (failed reads), looked at from the front.
    private var restricted: [Restricted] = []
    /// Holders in flight by the time they took their shard (`tag`: the attempt): candidates for copies.
    private var oldest = MinHeap<Timed>()
    private(set) var inFlight: [Int: [Holder]] = [:]
    /// Holders over all shards in flight (a shard with a copy out counts twice): results that may still come.
    private(set) var holdings = 0
    /// The shards each worker holds.
    private var held: [[UInt8]: Set<Int>] = [:]
    private var nextAttempt = 1
    let maxCopies = 2
    /// Queue and heap entries examined so far (a measure of the scheduler's work, not of time).
    private(set) var work = 0
    /// How many restricted retries `next` looks at before it leaves them to other workers.
    static let restrictedLookahead = 8

    init(shardCount: Int, alreadyDone: Set<Int>) {
        var done = [Bool](repeating: false, count: shardCount)
        for shard in alreadyDone where shard < shardCount { done[shard] = true }
        self.done = done
        doneCount = done.lazy.filter { $0 }.count
        waiting = (0..<shardCount).filter { !done[$0] }
        tickets = [UInt32](repeating: 0, count: shardCount)
    }

    var isComplete: Bool { doneCount == done.count }
    func isDone(_ shard: Int) -> Bool { done[shard] }

    /// The next shard for `worker` and its attempt number, or nil when there is nothing it could usefully take.
    mutating func next(for worker: [UInt8], now: Date) -> (shard: Int, attempt: Int)? {
        while let due = postponed.peek, due.time <= now {
            work += 1
            postponed.pop()
            if isReady(Entry(shard: due.shard, ticket: UInt32(truncatingIfNeeded: due.tag))) {
                enqueueRetry(due.shard)
            }
        }
        var shard = takeRestricted(for: worker, now: now)
        while shard == nil, retryHead < retry.count {
            work += 1
            let entry = retry[retryHead]
            retryHead += 1
            if isReady(entry) { shard = entry.shard }
        }
        if retryHead > 1024, retryHead * 2 > retry.count {
            retry.removeFirst(retryHead)
            retryHead = 0
        }
        while shard == nil, waitingHead < waiting.count {
            work += 1
            let candidate = waiting[waitingHead]
            waitingHead += 1
            if !done[candidate] && inFlight[candidate] == nil { shard = candidate }
        }
        if shard == nil { shard = oldestToCopy(for: worker) }
        guard let shard else { return nil }
        tickets[shard] &+= 1  // any queue entry of it is stale now
        let attempt = nextAttempt
        nextAttempt += 1
        inFlight[shard, default: []].append(Holder(worker: worker, attempt: attempt, since: now))
        holdings += 1
        held[worker, default: []].insert(shard)
        oldest.push(Timed(time: now, shard: shard, tag: attempt))
        return (shard, attempt)
    }

    /// Whether `worker` holds `shard` under `attempt` (a result for anything else is not accepted).
    func holds(_ worker: [UInt8], shard: Int, attempt: Int) -> Bool {
        inFlight[shard]?.contains { $0.worker == worker && $0.attempt == attempt } ?? false
    }

    /// Marks `shard` done; returns the other workers that were computing copies of it.
    @discardableResult
    mutating func complete(_ shard: Int) -> [[UInt8]] {
        guard !done[shard] else { return [] }
        done[shard] = true
        doneCount += 1
        let holders = inFlight.removeValue(forKey: shard) ?? []
        holdings -= holders.count
        for holder in holders { forget(shard, of: holder.worker) }
        return holders.map(\.worker)
    }

    /// Takes a done shard back (a resume found its images changed): it waits again, ahead of the others.
    mutating func reopen(_ shard: Int) {
        guard done[shard] else { return }
        done[shard] = false
        doneCount -= 1
        enqueueRetry(shard)
    }

    /// Gives back a worker's hold on `shard` without a result (it sent something unusable).
    mutating func release(_ worker: [UInt8], shard: Int) {
        guard var holders = inFlight[shard] else { return }
        let before = holders.count
        holders.removeAll { $0.worker == worker }
        holdings -= before - holders.count
        forget(shard, of: worker)
        if holders.isEmpty {
            inFlight[shard] = nil
            if !done[shard] { enqueueRetry(shard) }
        } else {
            inFlight[shard] = holders
            // It may take a copy again: its remaining holders become candidates once more.
            for holder in holders { oldest.push(Timed(time: holder.since, shard: shard, tag: holder.attempt)) }
        }
    }

    /// Delays the retry of `shard` (which waits again after `release`) until `until`: for `worker` only when
    /// given (the shard goes to another worker at once when there is one), else for every worker. A shard that is
    /// done or in flight again is left alone.
    mutating func postpone(_ shard: Int, until: Date, for worker: [UInt8]?) {
        guard !done[shard], inFlight[shard] == nil else { return }
        tickets[shard] &+= 1
        let entry = Entry(shard: shard, ticket: tickets[shard])
        if let worker {
            restricted.append(Restricted(entry: entry, worker: worker, until: until))
        } else {
            postponed.push(Timed(time: until, shard: shard, tag: Int(entry.ticket)))
        }
    }

    /// Takes back every shard `worker` holds (it died, hung or left); returns the shards that now wait again,
    /// lowest first.
    mutating func withdraw(_ worker: [UInt8]) -> [Int] {
        guard let shards = held[worker] else { return [] }
        var requeued: [Int] = []
        for shard in shards.sorted() {
            work += 1
            let lastHolder = inFlight[shard]?.count == 1
            release(worker, shard: shard)
            if lastHolder && !done[shard] { requeued.append(shard) }
        }
        held[worker] = nil
        return requeued
    }

    // MARK: - Queues

    private func isReady(_ entry: Entry) -> Bool {
        entry.ticket == tickets[entry.shard] && !done[entry.shard] && inFlight[entry.shard] == nil
    }

    private mutating func enqueueRetry(_ shard: Int) {
        tickets[shard] &+= 1
        retry.append(Entry(shard: shard, ticket: tickets[shard]))
    }

    private mutating func forget(_ shard: Int, of worker: [UInt8]) {
        held[worker]?.remove(shard)
        if held[worker]?.isEmpty == true { held[worker] = nil }
    }

    /// The first restricted retry `worker` may take now; stale entries are dropped on the way.
    private mutating func takeRestricted(for worker: [UInt8], now: Date) -> Int? {
        var index = 0
        var looked = 0
        while index < restricted.count, looked < Self.restrictedLookahead {
            work += 1
            let item = restricted[index]
            if !isReady(item.entry) {
                restricted.remove(at: index)
                continue
            }
            if item.worker != worker || now >= item.until {
                restricted.remove(at: index)
                return item.entry.shard
            }
            looked += 1
            index += 1
        }
        return nil
    }

    /// The shard in flight longest that has fewer than `maxCopies` holders, none of them `worker`.
    private mutating func oldestToCopy(for worker: [UInt8]) -> Int? {
        var setAside: [Timed] = []
        defer { for item in setAside { oldest.push(item) } }
        while let candidate = oldest.peek {
            work += 1
            oldest.pop()
            guard !done[candidate.shard], let holders = inFlight[candidate.shard],
                holders.contains(where: { $0.attempt == candidate.tag }), holders.count < maxCopies
            else { continue }  // finished, given back, or copied enough: pushed again if that changes
            if holders.contains(where: { $0.worker == worker }) {
                setAside.append(candidate)
                continue
            }
            return candidate.shard
        }
        return nil
    }
}

/// A binary min-heap of values.
struct MinHeap<Element: Comparable> {
    private var items: [Element] = []

    var count: Int { items.count }
    var peek: Element? { items.first }

    mutating func push(_ item: Element) {
        items.append(item)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child] < items[parent] else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    @discardableResult
    mutating func pop() -> Element? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < items.count, items[left] < items[smallest] { smallest = left }
            if right < items.count, items[right] < items[smallest] { smallest = right }
            if smallest == parent { break }
            items.swapAt(parent, smallest)
            parent = smallest
        }
        return top
    }
}
