import Foundation
import Reporting
import TopModel

/// Reads the Keras CSVLogger file `train` writes next to a model (`MODEL.history.csv`).
public enum HistoryCSV {
    /// `MODEL.h5` → `MODEL.history.csv`.
    public static func path(nextToModel modelPath: String) -> String {
        (modelPath as NSString).deletingPathExtension + ".history.csv"
    }

    /// Parses CSVLogger text: a header with `epoch`, `loss` and `accuracy` (or `acc`), optionally
    /// `val_loss` and `val_accuracy`; epochs counted from 0 in the file, from 1 in the records.
    /// - Throws: `ReportError` naming `source` and the line that does not fit.
    public static func parse(_ text: String, source: String) throws(ReportError) -> TrainingHistory {
        let lines = text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }).map {
            $0.trimmingCharacters(in: .whitespacesAndNewlines)
        }.filter { !$0.isEmpty }
        guard let header = lines.first?.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        else {
            throw ReportError(path: source, message: "empty history; expected a CSV header epoch,accuracy,loss,…")
        }
        func column(_ names: String...) -> Int? { names.lazy.compactMap { header.firstIndex(of: $0) }.first }
        guard let epochColumn = column("epoch"), let lossColumn = column("loss"),
            let accuracyColumn = column("accuracy", "acc")
        else {
            throw ReportError(
                path: source, message: "history header \(header), expected columns epoch, loss and accuracy")
        }
        let valLossColumn = column("val_loss")
        let valAccuracyColumn = column("val_accuracy", "val_acc")
        var records: [EpochRecord] = []
        for (number, line) in lines.dropFirst().enumerated() {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            func value(_ index: Int?) -> Double? {
                guard let index, index < fields.count else { return nil }
                return Double(fields[index])
            }
            guard let epoch = value(epochColumn), let loss = value(lossColumn), let accuracy = value(accuracyColumn)
            else {
                throw ReportError(
                    path: source, message: "line \(number + 2) \"\(line)\": expected numbers for epoch, loss, accuracy")
            }
            records.append(
                EpochRecord(
                    epoch: Int(epoch) + 1, loss: loss, accuracy: accuracy, valLoss: value(valLossColumn),
                    valAccuracy: value(valAccuracyColumn), seconds: 0))
        }
        return TrainingHistory(records: records)
    }
}

/// A report that cannot be made; names the file and what was expected.
public struct ReportError: ReportedError {
    public let path: String
    public let message: String
    /// `.badInput` for inputs that do not fit, `.failedRun` for a page that cannot be written.
    public let category: FailureCategory

    public init(path: String, message: String, category: FailureCategory = .badInput) {
        self.path = path
        self.message = message
        self.category = category
    }

    public var subject: String? { path }
    public var description: String { "\(path): \(message)" }
}
