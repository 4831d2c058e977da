/// Hands out a feature source's rows in batches, reading it in row chunks.
///
/// When the whole source fits in `inMemoryLimitBytes` it is read once and kept (one chunk of all rows);
/// otherwise each pass reads chunks of about `chunkBytes` (hyperslabs of the split). With shuffling,
/// a pass visits the chunks in a random order and the rows of each chunk in a random order, so memory
/// stays bounded by one chunk; in memory this is a full random permutation of all rows, as Keras'
/// `shuffle=True`. Batches run across chunk boundaries, so every batch but the last is full.
/// Every chunk read is checked for non-finite values. Owned by one thread.
final class RowFeeder {
    let source: FeatureSource
    let featureSize: Int
    let labels: [Int32]
    let chunkRows: Int
    let inMemory: Bool
    private var cached: [Float]?

    init(source: FeatureSource, classes: Int, inMemoryLimitBytes: Int, chunkBytes: Int, minimumChunkRows: Int) throws {
        self.source = source
        featureSize = source.featureSize
        let labels = try source.labels()
        guard labels.count == source.count else {
            throw TopModelError.badFeatures(
                "\(source.sourceDescription): \(labels.count) labels for \(source.count) feature rows")
        }
        try checkLabels(labels, classes: classes, source: source)
        self.labels = labels
        let rowBytes = featureSize * MemoryLayout<Float>.size
        inMemory = source.count * rowBytes <= inMemoryLimitBytes
        chunkRows = inMemory ? max(1, source.count) : max(minimumChunkRows, chunkBytes / max(1, rowBytes), 1)
    }

    var count: Int { source.count }

    private func cachedRows() throws -> [Float] {
        if let cached { return cached }
        let all = try source.readFeatures(rows: 0..<source.count)
        try checkFinite(all, firstRow: 0, featureSize: featureSize, source: source)
        cached = all
        return all
    }

    /// Reads and checks one chunk (on the chunk reader's thread when streaming).
    private func readChunk(_ rows: Range<Int>) throws -> [Float] {
        let values = try source.readFeatures(rows: rows)
        guard values.count == rows.count * featureSize else {
            throw TopModelError.badFeatures(
                "\(source.sourceDescription): rows \(rows) gave \(values.count) values, expected \(rows.count * featureSize)"
            )
        }
        try checkFinite(values, firstRow: rows.lowerBound, featureSize: featureSize, source: source)
        return values
    }

    /// One pass over all rows. `body` receives a batch: features `[rows, featureSize]`, labels, row count.
    func pass(
        batchSize: Int, shuffle random: UnsafeMutablePointer<SeededRandom>?,
        _ body: (UnsafePointer<Float>, UnsafePointer<Int32>, Int) throws -> Void
    ) throws {
        let n = source.count
        guard n > 0 else { return }
        var chunks = stride(from: 0, to: n, by: chunkRows).map { $0..<min($0 + chunkRows, n) }
        if let random { random.pointee.shuffle(&chunks) }
        let d = featureSize
        var batchFeatures = [Float](repeating: 0, count: batchSize * d)
        var batchLabels = [Int32](repeating: 0, count: batchSize)
        var fill = 0
        // Streaming: a reader thread fetches the next chunk while this one trains.
        let reader: ChunkReader?
        if inMemory {
            reader = nil
        } else {
            let unchecked = UncheckedFeeder(feeder: self)
            reader = ChunkReader(chunks: chunks) { try unchecked.feeder.readChunk($0) }
        }
        defer { reader?.finish() }
        for (index, rows) in chunks.enumerated() {
            let values = try reader?.take(index) ?? cachedRows()
            var order = Array(0..<rows.count)
            if let random { random.pointee.shuffle(&order) }
            try values.withUnsafeBufferPointer { src in
                // A sequential in-memory pass hands out slices of the cache without copying.
                if random == nil, fill == 0 {
                    var start = 0
                    try labels.withUnsafeBufferPointer { l in
                        while start + batchSize <= rows.count {
                            try body(src.baseAddress! + start * d, l.baseAddress! + rows.lowerBound + start, batchSize)
                            start += batchSize
                        }
                    }
                    order = Array(start..<rows.count)
                }
                try batchFeatures.withUnsafeMutableBufferPointer { dst in
                    for local in order {
                        (dst.baseAddress! + fill * d).update(from: src.baseAddress! + local * d, count: d)
                        batchLabels[fill] = labels[rows.lowerBound + local]
                        fill += 1
                        if fill == batchSize {
                            try batchLabels.withUnsafeBufferPointer {
                                try body(UnsafePointer(dst.baseAddress!), $0.baseAddress!, fill)
                            }
                            fill = 0
                        }
                    }
                }
            }
        }
        if fill > 0 {
            try batchFeatures.withUnsafeBufferPointer { f in
                try batchLabels.withUnsafeBufferPointer { try body(f.baseAddress!, $0.baseAddress!, fill) }
            }
        }
    }
}

/// Hands the feeder to the chunk reader's thread; safe because only that thread touches the source while
/// a streamed pass runs (the pass waits for the reader in `finish()` before returning).
private struct UncheckedFeeder: @unchecked Sendable {
    let feeder: RowFeeder
}
