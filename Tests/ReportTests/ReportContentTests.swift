import Foundation
import Report
import Storage
import Testing
import TopModel

@Suite("report: any classifier of stored features plugs in")
struct ReportContentTests {
    /// A feature file of 2×1×1 features: 6 validation rows, 2 classes; the feature's first value is the
    /// label except in rows 1 and 4.
    static func makeFeatureFile(_ path: String) throws {
        let attributes = FeatureFileAttributes(
            imageHeight: 32, imageWidth: 32, preprocess: "rescale", interpolation: "nearest", layer: "block5_pool",
            weightsSHA256: String(repeating: "ab", count: 32))
        let writer = try FeatureFileWriter(path: path, attributes: attributes, classNames: ["a", "b"])
        for split in ["train", "validation"] {
            try writer.beginSplit(split, featureShape: [1, 1, 2])
            let labels: [Int32] = [0, 0, 0, 1, 1, 1]
            let features: [Float] = [0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0]
            try features.withUnsafeBufferPointer { buffer in
                try writer.append(
                    features: buffer, labels: labels, filenames: labels.indices.map { "c\(labels[$0])/img\($0).jpg" })
            }
        }
        try writer.finish()
    }

    @Test("a rule-based classifier: matrix, metrics, mistakes (most confident first) and notes")
    func ruleClassifier() throws {
        let directory = NSTemporaryDirectory() + "report-content-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/features.h5"
        try Self.makeFeatureFile(path)
        let provenance = FeatureProvenance(
            featureLayer: "block5_pool", imageHeight: 32, imageWidth: 32, preprocess: "rescale",
            interpolation: "nearest", weightsSHA256: String(repeating: "ab", count: 32))
        let classifier = ReportClassifier(
            kind: "threshold rule", summary: "class b when the first feature exceeds 0.5", classNames: ["a", "b"],
            featureShape: [1, 1, 2], provenance: provenance,
            probabilities: { features in
                stride(from: 0, to: features.count, by: 2).flatMap { i -> [Float] in
                    features[i] > 0.5 ? [0.1, 0.9] : [0.8, 0.2]
                }
            })
        let content = try ReportContent.make(
            featureFile: try FeatureFile.open(path), modelPath: directory + "/rule.model", classifier: classifier)
        #expect(content.evaluation.confusionMatrix == [[2, 1], [1, 2]])
        #expect(content.misclassifiedCount == 2)
        #expect(content.misclassified.map(\.row) == [1, 4])  // 0.9 before 0.8
        #expect(content.misclassified.first?.predictedClass == "b")
        #expect(content.misclassified.first?.probability == 0.9)
        #expect(content.thumbnailNote?.contains("root of the") == true)
        #expect(content.historyNote?.contains("rule.history.csv") == true)

        let html = ReportHTML.render(content)
        #expect(html.contains("threshold rule"))
        #expect(html.contains("data-count=\"2\" data-share=\"0.6667\""))
        #expect(html.components(separatedBy: "<figure class=\"misclassified\"").count == 3)

        var other = provenance
        other.preprocess = "caffe"
        var mismatched = classifier
        mismatched.provenance = other
        #expect(throws: ReportError.self) {
            try ReportContent.make(
                featureFile: try FeatureFile.open(path), modelPath: "rule.model", classifier: mismatched)
        }
    }
}
