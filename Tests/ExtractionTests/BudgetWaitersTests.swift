import Testing

@testable import Extraction

/// `BudgetWaiters`: who gets the result-bytes budget as writes free it.
@Suite("Result-budget waiting order")
struct BudgetWaitersTests {
    @Test("idle workers are served before busy ones, each group in the order it asked, each worker once")
    func idleFirstThenBusyInOrder() {
        var waiters = BudgetWaiters<String>()
        waiters.wait("busy-1", busy: true)
        waiters.wait("idle-1", busy: false)
        waiters.wait("busy-2", busy: true)
        waiters.wait("idle-2", busy: false)
        waiters.wait("idle-1", busy: false)
        var served: [String] = []
        while let next = waiters.next() { served.append(next) }
        #expect(served == ["idle-1", "idle-2", "busy-1", "busy-2"])
        #expect(waiters.next() == nil)
    }

    @Test("a busy worker may take another shard only while no idle worker waits")
    func busyWaitsBehindIdle() {
        var waiters = BudgetWaiters<Int>()
        #expect(waiters.mayServe(busy: true))
        #expect(waiters.mayServe(busy: false))
        waiters.wait(7, busy: false)
        #expect(!waiters.mayServe(busy: true))
        #expect(waiters.mayServe(busy: false))
        #expect(waiters.next() == 7)
        #expect(waiters.mayServe(busy: true))
    }

    @Test("a long run of waiters keeps its order across the queue's compaction")
    func orderAcrossCompaction() {
        var waiters = BudgetWaiters<Int>()
        var served: [Int] = []
        for round in 0..<5 {
            for index in 0..<1_000 { waiters.wait(round * 1_000 + index, busy: index % 2 == 0) }
            for _ in 0..<700 { served.append(waiters.next()!) }
        }
        while let next = waiters.next() { served.append(next) }
        #expect(served.count == 5_000)
        #expect(Set(served).count == 5_000)
        // Within each group the order is the order of asking.
        let busy = served.filter { $0 % 2 == 0 }
        let idle = served.filter { $0 % 2 == 1 }
        #expect(busy == busy.sorted() && idle == idle.sorted())
    }
}
