import BLAS
import Foundation

/// Runs the top model's large products as a fixed number of blocks of the output (`parts`, 4), spread over
/// threads this object owns; each block is a single-threaded OpenBLAS call, or (`run`) a block of the sparse
/// kernel gradient, whose every element is summed the same way whatever the block.
///
/// The block boundaries do not depend on the thread count, and OpenBLAS computes each block the same way
/// whichever thread runs it, so results are bit-identical for any thread count. (Splitting differently does
/// change the last bits: OpenBLAS' blocking depends on the matrix sizes.) OpenBLAS' own threads are not used
/// because they spin while waiting, which collapses when other processes keep the cores busy; these workers
/// block on semaphores. Call `run` from one thread
/// at a time, with OpenBLAS pinned to one thread (`BLASThreads.withFixedCount(1)`).
///
/// `@unchecked Sendable`: `job` and `stopping` are written only by the caller of `run`/`stop` before it signals
/// the start semaphores and read by the worker threads after they wait on them; the semaphores order the accesses.
final class GEMMWorkers: @unchecked Sendable {
    let count: Int
    private var threads: [Thread] = []
    private let starts: [DispatchSemaphore]
    private let finished = DispatchSemaphore(value: 0)
    private var job: ((Int) -> Void)?
    private var stopping = false

    init(count: Int) {
        // More threads than blocks would idle.
        self.count = min(max(1, count), Self.parts)
        starts = (0..<(self.count - 1)).map { _ in DispatchSemaphore(value: 0) }
        for worker in starts.indices {
            let thread = Thread { [self] in
                while true {
                    starts[worker].wait()
                    if stopping { break }
                    job?(worker + 1)
                    finished.signal()
                }
                finished.signal()
            }
            thread.name = "topmodel-gemm-\(worker + 1)"
            thread.start()
            threads.append(thread)
        }
    }

    deinit { stop() }

    /// Ends the worker threads; `run` must not be called afterwards.
    func stop() {
        guard !stopping else { return }
        stopping = true
        for start in starts { start.signal() }
        for _ in starts { finished.wait() }
    }

    /// Number of output blocks of every split GEMM, whatever the thread count.
    static let parts = 4

    /// Calls `body(part)` for every part in `0..<parts`, spread over the threads (thread t runs parts t, t+count,
    /// …; thread 0 is the caller), and returns when all are done.
    func run(_ body: (Int) -> Void) {
        let parts = Self.parts
        if count == 1 {
            for part in 0..<parts { body(part) }
            return
        }
        withoutActuallyEscaping(body) { body in
            job = { thread in
                for part in stride(from: thread, to: parts, by: self.count) { body(part) }
            }
            for start in starts { start.signal() }
            job?(0)
            for _ in starts { finished.wait() }
            job = nil
        }
    }

    /// Part `part` of `0..<total`, cut into `parts` blocks at multiples of `align`.
    func range(_ part: Int, of total: Int, align: Int = 16) -> Range<Int> {
        func boundary(_ i: Int) -> Int {
            i == Self.parts ? total : min(total, (total * i / Self.parts) / align * align)
        }
        return boundary(part)..<boundary(part + 1)
    }

    /// `y[m, n] = x[m, k] · wT[n, k]ᵀ + beta·y` split over output columns (`wT` is the kernel transposed, rows
    /// `ldw` floats apart).
    func multiplyTransposedB(
        m: Int, n: Int, k: Int, _ x: UnsafePointer<Float>, _ wT: UnsafePointer<Float>, ldw: Int, beta: Float,
        _ y: UnsafeMutablePointer<Float>
    ) {
        run { part in
            let columns = range(part, of: n)
            guard !columns.isEmpty else { return }
            sgemm(
                transposeB: true, m: m, n: columns.count, k: k, x, wT + columns.lowerBound * ldw, ldb: ldw, beta: beta,
                y + columns.lowerBound, ldc: n)
        }
    }

    /// `c[m, n] = alpha · a[k, m]ᵀ · b[k, n] + beta·c` split over output rows (c's rows `ldc` floats apart).
    func multiplyTransposedA(
        m: Int, n: Int, k: Int, alpha: Float, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, beta: Float,
        _ c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        run { part in
            let rows = range(part, of: m)
            guard !rows.isEmpty else { return }
            sgemm(
                transposeA: true, m: rows.count, n: n, k: k, alpha: alpha, a + rows.lowerBound, lda: m, b,
                beta: beta, c + rows.lowerBound * ldc, ldc: ldc)
        }
    }
}
