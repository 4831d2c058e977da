import Foundation

/// Which shards are waiting, in flight (with which workers), or done; hands out the next shard for a worker.
///
/// Waiting shards go out lowest id first; shards taken back from dead workers go out before them. When nothing
/// waits, an idle worker may take a copy of the oldest shard in flight (at most `maxCopies` holders per shard); the
/// first valid result wins. Used from the coordinator's event-loop thread only.
struct ShardScheduler {
    struct Holder: Equatable {
        var worker: [UInt8]
        var attempt: Int
        var since: Date
    }

    private(set) var doneCount = 0
    private var done: [Bool]
    private var waiting: [Int]
    private var waitingHead = 0
    private var retry: [Int] = []
    private(set) var inFlight: [Int: [Holder]] = [:]
    private var nextAttempt = 1
    /// Shards waiting to be retried after a failed read: not before `until`, for `worker` only when set.
    private var postponed: [Int: (worker: [UInt8]?, until: Date)] = [:]
    let maxCopies = 2

    init(shardCount: Int, alreadyDone: Set<Int>) {
        done = (0..<shardCount).map { alreadyDone.contains($0) }
        doneCount = alreadyDone.count
        waiting = (0..<shardCount).filter { !alreadyDone.contains($0) }
    }

    var isComplete: Bool { doneCount == done.count }
    func isDone(_ shard: Int) -> Bool { done[shard] }

    /// The next shard for `worker` and its attempt number, or nil when there is nothing it could usefully take.
    mutating func next(for worker: [UInt8], now: Date) -> (shard: Int, attempt: Int)? {
        var shard: Int?
        retry.removeAll { done[$0] || !inFlight[$0, default: []].isEmpty }
        if let index = retry.firstIndex(where: { mayTake($0, worker: worker, now: now) }) {
            shard = retry.remove(at: index)
            postponed[shard!] = nil
        }
        while shard == nil, waitingHead < waiting.count {
            let candidate = waiting[waitingHead]
            waitingHead += 1
            if !done[candidate] { shard = candidate }
        }
        if shard == nil {
            // Near the end: copy the shard that has been in flight longest, if this worker does not hold it.
            shard =
                inFlight
                .filter { !done[$0.key] && $0.value.count < maxCopies && !$0.value.contains { $0.worker == worker } }
                .min { ($0.value.map(\.since).min() ?? now) < ($1.value.map(\.since).min() ?? now) }?.key
        }
        guard let shard else { return nil }
        let attempt = nextAttempt
        nextAttempt += 1
        inFlight[shard, default: []].append(Holder(worker: worker, attempt: attempt, since: now))
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
        return (inFlight.removeValue(forKey: shard) ?? []).map(\.worker)
    }

    /// Takes a done shard back (a resume found its images changed): it waits again, ahead of the others.
    mutating func reopen(_ shard: Int) {
        guard done[shard] else { return }
        done[shard] = false
        doneCount -= 1
        retry.append(shard)
    }

    /// Gives back a worker's hold on `shard` without a result (it sent something unusable).
    mutating func release(_ worker: [UInt8], shard: Int) {
        inFlight[shard]?.removeAll { $0.worker == worker }
        if inFlight[shard]?.isEmpty == true {
            inFlight[shard] = nil
            if !done[shard] { retry.append(shard) }
        }
    }

    /// Delays the retry of `shard` (which waits again after `release`) until `until`: for `worker` only when
    /// given (the shard goes to another worker at once when there is one), else for every worker.
    mutating func postpone(_ shard: Int, until: Date, for worker: [UInt8]?) {
        postponed[shard] = (worker, until)
    }

    private func mayTake(_ shard: Int, worker: [UInt8], now: Date) -> Bool {
        guard let delay = postponed[shard], now < delay.until else { return true }
        if let only = delay.worker { return only != worker }
        return false
    }

    /// Takes back every shard `worker` holds (it died, hung or left); returns the shards that now wait again.
    mutating func withdraw(_ worker: [UInt8]) -> [Int] {
        var requeued: [Int] = []
        for (shard, holders) in inFlight where holders.contains(where: { $0.worker == worker }) {
            let rest = holders.filter { $0.worker != worker }
            if rest.isEmpty {
                inFlight[shard] = nil
                if !done[shard] { requeued.append(shard) }
            } else {
                inFlight[shard] = rest
            }
        }
        requeued.sort()
        retry.insert(contentsOf: requeued, at: 0)
        return requeued
    }
}
