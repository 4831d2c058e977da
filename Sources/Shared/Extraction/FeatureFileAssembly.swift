import Foundation
import ImageInput
import Reporting
import Storage
import VGG16

/// Writes the feature file from a complete journal, split by split and shard by shard in index order.
///
/// Reads one part at a time, so memory stays at one shard. The writer writes a temporary name and renames it when
/// complete. Reports progress (task `assemble`, in images) after every shard.
///
/// A split whose images all failed to read is an error (nothing would be left to train or validate on), naming
/// the split and the first reasons; the temporary file is removed and the journal kept.
func assembleFeatureFile(
    inputs: ExtractionInputs, attributes: FeatureFileAttributes, journal: ShardJournal, outputPath: String,
    progress: ProgressSink
) throws -> (images: Int, skipped: Int) {
    let writer = try FeatureFileWriter(path: outputPath, attributes: attributes, classNames: inputs.classNames)
    var images = 0
    var skippedCount = 0
    for split in inputs.splits {
        try writer.beginSplit(split.name, featureShape: inputs.featureShape)
        let rowsBefore = images
        var reasons: [String] = []
        for shard in journal.manifest.shards where shard.split == split.name {
            let part = try journal.readPart(shard.id)
            let skipped = Dictionary(uniqueKeysWithValues: part.header.skipped.map { ($0.offset, $0.reason) })
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
            if !labels.isEmpty {
                try part.features.withUnsafeBufferPointer {
                    try writer.append(features: $0, labels: labels, filenames: filenames)
                }
            }
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
    try writer.finish()
    return (images, skippedCount)
}
