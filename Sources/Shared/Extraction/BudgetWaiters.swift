/// Plain mode: the workers with credit that found the result-bytes budget spent, served as writes free it, in
/// the order they asked: first those holding no shard, then those asking for one more. A shard queued behind
/// another on a busy worker holds its share of the budget while nothing computes it, so when the budget binds it
/// goes to an idle worker first (1,000 workers and room for 240 shards: 240 workers computing, not 120 holding
/// two each). A pure value; `Identity` is a worker's ZeroMQ routing identity in the coordinator.
struct BudgetWaiters<Identity: Hashable> {
    private var idle = Queue()
    private var busy = Queue()

    /// Whether a worker may take a shard now, as far as the waiting order goes: a busy worker waits while an
    /// idle one does.
    func mayServe(busy isBusy: Bool) -> Bool { !isBusy || idle.isEmpty }

    /// Queues a worker (once; a worker already queued keeps its place).
    mutating func wait(_ identity: Identity, busy isBusy: Bool) {
        if isBusy { busy.append(identity) } else { idle.append(identity) }
    }

    /// The next worker to serve: the longest-waiting idle one, else the longest-waiting busy one.
    mutating func next() -> Identity? { idle.popFirst() ?? busy.popFirst() }

    /// Identities in the order they were added, each at most once, taken from the front.
    private struct Queue {
        private var identities: [Identity] = []
        private var head = 0
        private var queued: Set<Identity> = []

        var isEmpty: Bool { head == identities.count }

        mutating func append(_ identity: Identity) {
            if queued.insert(identity).inserted { identities.append(identity) }
        }

        mutating func popFirst() -> Identity? {
            guard head < identities.count else { return nil }
            let identity = identities[head]
            head += 1
            queued.remove(identity)
            if head > 1024, head * 2 > identities.count {
                identities.removeFirst(head)
                head = 0
            }
            return identity
        }
    }
}
