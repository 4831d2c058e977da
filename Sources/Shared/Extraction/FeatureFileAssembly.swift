import Foundation
import ImageInput
import Reporting
import Storage
import VGG16

/// Writes the feature file from a complete journal, split by split and shard by shard in index order, copying
/// the features out of the part files.
///
/// Reads one shard at a time, so memory stays at one shard, and checks each shard's rows against the SHA-256 its
/// journal log line recorded: a mismatch withdraws the shard's record (a log line, so that a rerun computes it
/// again) and throws `JournalError.corruptPart` naming the shard, the part file, the offset and the hash
/// expected. The writer writes a temporary name and renames it when complete. Reports progress (task `assemble`,
/// in images) after every shard.
///
/// A split whose images all failed to read is an error (nothing would be left to train or validate on), naming
/// the split and the first reasons; the temporary file is removed and the journal kept.
func assembleFeatureFile(
    inputs: ExtractionInputs, attributes: FeatureFileAttributes, journal: ShardJournal, outputPath: String,
    progress: ProgressSink
) throws -> (images: Int, skipped: Int) {
    let writer = try FeatureFileWriter(path: outputPath, attributes: attributes, classNames: inputs.classNames)
    // Shards come in order, part file after part file: one read-ahead block serves many of them.
    let reader = PartReader(journal.parts)
    let counts = try assemble(inputs: inputs, journal: journal, writer: writer, virtual: false, progress: progress) {
        shard, _, labels, filenames in
        let (_, features) = try journal.readShard(shard.id, using: reader)
        if !labels.isEmpty {
            try features.withUnsafeBufferPointer {
                try writer.append(features: $0, labels: labels, filenames: filenames)
            }
        }
    }
    try writer.finish()
    return counts
}

/// Writes the feature file from a complete journal with each split's `features` an HDF5 virtual dataset over the
/// range part files: one mapping per part file (its source selection the runs of rows not skipped, so a job's
/// skipped images do not multiply the mappings a reader decodes when it opens the file), source paths relative to
/// the output's directory (`<output name>.parts/part-…`), so readers find the parts next to the output. Labels,
/// file names and the skipped list are written for real (small next to the features), and each shard's part range
/// with its SHA-256 as the split's segments, which `FeatureSplit.readFeatures` checks. Reads no feature: the part
/// files must stay.
func assembleVirtualFeatureFile(
    inputs: ExtractionInputs, attributes: FeatureFileAttributes, journal: ShardJournal, outputPath: String,
    progress: ProgressSink
) throws -> (images: Int, skipped: Int) {
    let writer = try FeatureFileWriter(path: outputPath, attributes: attributes, classNames: inputs.classNames)
    let partsPrefix = URL(fileURLWithPath: journal.directory).lastPathComponent + "/"
    let rowsPerPart = journal.manifest.rowsPerPart
    var rowsBefore = 0
    var split = ""
    let counts = try assemble(inputs: inputs, journal: journal, writer: writer, virtual: true, progress: progress) {
        shard, skipped, _, _ in
        guard let record = journal.records[shard.id] else {
            throw ExtractionError(.failed, "shard \(shard.id) has no record in \(journal.logPath)")
        }
        if shard.split != split {
            split = shard.split
            rowsBefore = 0
        }
        let rangeStart = shard.start / rowsPerPart * rowsPerPart
        let file = partsPrefix + record.location.part
        let entries = inputs.splits.first { $0.name == shard.split }!.entries
        let kept = shard.count - skipped.count
        try writer.recordSegment(
            VirtualSegment(
                file: file, offset: record.location.offset, size: record.location.size, sha256: record.sha256,
                rows: rowsBefore..<(rowsBefore + kept)))
        rowsBefore += kept
        // A run per stretch of images not skipped; the writer makes one mapping of a part file's runs.
        var runStart: Int?
        for offset in 0...shard.count {
            let kept = offset < shard.count && skipped[offset] == nil
            if kept, runStart == nil { runStart = offset }
            if !kept, let start = runStart {
                let run = (shard.start + start)..<(shard.start + offset)
                try writer.appendMapped(
                    sourceFile: file, sourceDataset: "features",
                    sourceRows: (run.lowerBound - rangeStart)..<(run.upperBound - rangeStart),
                    labels: run.map { entries[$0].label }, filenames: run.map { entries[$0].filename })
                runStart = nil
            }
        }
    }
    try writer.finish()
    return counts
}

/// The walk both assemblies share: per split in order, per shard in order, records the skipped images and hands
/// the shard, its skipped offsets and the labels and file names of its kept images to `body`.
private func assemble(
    inputs: ExtractionInputs, journal: ShardJournal, writer: FeatureFileWriter, virtual: Bool, progress: ProgressSink,
    _ body: (ShardSpan, [Int: String], [Int32], [String]) throws -> Void
) throws -> (images: Int, skipped: Int) {
    var images = 0
    var skippedCount = 0
    for split in inputs.splits {
        try writer.beginSplit(split.name, featureShape: inputs.featureShape, virtual: virtual)
        let rowsBefore = images
        var reasons: [String] = []
        for shard in journal.manifest.shards where shard.split == split.name {
            guard let record = journal.records[shard.id] else {
                throw ExtractionError(.failed, "shard \(shard.id) has no record in \(journal.logPath)")
            }
            let skipped = Dictionary(record.skipped.map { ($0.offset, $0.reason) }, uniquingKeysWith: { a, _ in a })
            var labels: [Int32] = []
            var filenames: [String] = []
            for offset in 0..<shard.count {
                let entry = split.entries[shard.start + offset]
                if let reason = skipped[offset] {
                    try writer.recordSkipped(filename: entry.filename, reason: reason)
                    if reasons.count < 3 { reasons.append("\(entry.filename): \(reason)") }
                } else {
                    labels.append(entry.label)
                    filenames.append(entry.filename)
                }
            }
            try body(shard, skipped, labels, filenames)
            images += labels.count
            skippedCount += skipped.count
            progress.report(
                ProgressReport(task: "assemble", done: images + skippedCount, total: inputs.imageCount, unit: "images"))
        }
        if images == rowsBefore && !split.entries.isEmpty {
            throw ExtractionError(
                .badInput,
                "none of the \(split.entries.count) images of split '\(split.name)' could be read, e.g. "
                    + reasons.joined(separator: "; "))
        }
    }
    return (images, skippedCount)
}
