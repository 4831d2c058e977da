import Dispatch
import Foundation
import ImageInput
import Provenance
import Storage
import Synchronization

/// Plain mode: reads the image files of the shards likely to go out next on threads of its own, so that the
/// coordinator's event loop sends bytes already in memory instead of reading files between messages.
///
/// The loop asks for shards with `want` (after each dispatch, the shards that follow it: the scheduler hands
/// out waiting shards in index order) and takes a shard's read with `take`; a shard not read ahead is read by
/// the caller as before. At most `capacity` reads are kept; the oldest go first. A read records each image's
/// stamp with its bytes, so reading early changes nothing of what the journal records.
final class ShardPrefetcher: Sendable {
    /// One shard's files as read: bytes and stamp per image, or the first failure.
    struct ShardRead: Sendable {
        var images: [[UInt8]] = []
        var stamps: [InputStamp?] = []
        var missing = Set<Int>()
        var failure: (path: String, reason: String)?
    }

    private struct State {
        var queue: [(shard: Int, paths: [String])] = []
        var queued = Set<Int>()
        var ready: [Int: ShardRead] = [:]
        var readyOrder: [Int] = []
        var stopped = false
    }

    private let state = Mutex(State())
    private let waiting = DispatchSemaphore(value: 0)
    private let threadCount: Int
    private let capacity: Int

    init(threads: Int, capacity: Int) {
        threadCount = max(1, threads)
        self.capacity = max(1, capacity)
    }

    func start() {
        for index in 0..<threadCount {
            let thread = Thread { [self] in run() }
            thread.name = "image-prefetch-\(index + 1)"
            thread.start()
        }
    }

    func stop() {
        state.withLock { $0.stopped = true }
        for _ in 0..<threadCount { waiting.signal() }
    }

    /// Asks for `shard`'s files (`paths`, in shard order) to be read, unless read or queued already.
    func want(_ shard: Int, paths: [String]) {
        let added = state.withLock { state -> Bool in
            guard !state.stopped, state.ready[shard] == nil, !state.queued.contains(shard),
                state.queued.count < capacity
            else { return false }
            state.queued.insert(shard)
            state.queue.append((shard, paths))
            return true
        }
        if added { waiting.signal() }
    }

    /// The read of `shard` when it is ready (and forgets it); nil when it was not read ahead.
    func take(_ shard: Int) -> ShardRead? {
        state.withLock { state in
            guard let read = state.ready.removeValue(forKey: shard) else { return nil }
            state.readyOrder.removeAll { $0 == shard }
            return read
        }
    }

    /// Reads the files of one shard in order, stopping at the first failure.
    static func read(_ paths: [String]) -> ShardRead {
        var read = ShardRead()
        for (offset, path) in paths.enumerated() {
            switch ImageFile.read(path) {
            case .read(let bytes, let stamp):
                read.images.append(bytes)
                read.stamps.append(stamp)
            case .missing:
                read.images.append([])
                read.stamps.append(nil)
                read.missing.insert(offset)
            case .failed(let reason):
                read.failure = (path, reason)
                return read
            }
        }
        return read
    }

    private func run() {
        while true {
            waiting.wait()
            let next: (shard: Int, paths: [String])? = state.withLock { state in
                guard !state.stopped, !state.queue.isEmpty else { return nil }
                return state.queue.removeFirst()
            }
            guard let next else {
                if state.withLock({ $0.stopped }) { return }
                continue
            }
            let read = Self.read(next.paths)
            state.withLock { state in
                state.queued.remove(next.shard)
                state.ready[next.shard] = read
                state.readyOrder.append(next.shard)
                while state.readyOrder.count > capacity {
                    state.ready[state.readyOrder.removeFirst()] = nil
                }
            }
        }
    }
}
