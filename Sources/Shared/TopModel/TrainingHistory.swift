import FileIntegrity
import Foundation

/// Per-epoch figures of a training run, with Keras CSVLogger output and an SVG chart.
public struct TrainingHistory: Sendable, Codable, Equatable {
    public var records: [EpochRecord]

    public init(records: [EpochRecord]) { self.records = records }

    /// Keras `CSVLogger` format: header `epoch,accuracy,loss,val_accuracy,val_loss` (sorted keys), epochs
    /// counted from 0, validation columns only when there was a validation split.
    public var csv: String {
        let hasValidation = records.contains { $0.valLoss != nil }
        var lines = [hasValidation ? "epoch,accuracy,loss,val_accuracy,val_loss" : "epoch,accuracy,loss"]
        for r in records {
            var fields = ["\(r.epoch - 1)", "\(r.accuracy)", "\(r.loss)"]
            if hasValidation { fields += [r.valAccuracy.map { "\($0)" } ?? "", r.valLoss.map { "\($0)" } ?? ""] }
            lines.append(fields.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Two panels side by side, loss and accuracy against epoch, training (solid) vs validation (dashed).
    public var svg: String {
        let panelWidth = 360.0
        let panelHeight = 240.0
        let margin = (left: 52.0, right: 16.0, top: 30.0, bottom: 40.0)
        let width = 2 * panelWidth
        let height = panelHeight
        var out = [
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" "
                + "viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"sans-serif\" font-size=\"11\">",
            "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
        ]
        let epochs = records.map { Double($0.epoch) }
        func panel(
            _ index: Int, title: String, train: [Double], validation: [Double?], fixedRange: ClosedRange<Double>?,
            legendAtBottom: Bool
        ) {
            let x0 = Double(index) * panelWidth + margin.left
            let x1 = Double(index + 1) * panelWidth - margin.right
            let y0 = panelHeight - margin.bottom
            let y1 = margin.top
            let values = (train + validation.compactMap { $0 }).filter(\.isFinite)
            // Round axis ends and ticks: steps of 1, 2 or 5 × 10^k.
            var lo = fixedRange?.lowerBound ?? min(0, values.min() ?? 0)
            var hi = fixedRange?.upperBound ?? (values.max() ?? 1)
            if hi <= lo { hi = lo + 1 }
            let raw = (hi - lo) / 4
            let magnitude = pow(10, (log10(raw)).rounded(.down))
            let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
            if fixedRange == nil {
                lo = (lo / step).rounded(.down) * step
                hi = (hi / step).rounded(.up) * step
            }
            let eMin = epochs.first ?? 1
            let eMax = max(epochs.last ?? 1, eMin + 1)
            func px(_ e: Double) -> Double { x0 + (e - eMin) / (eMax - eMin) * (x1 - x0) }
            func py(_ v: Double) -> Double { y0 - (v - lo) / (hi - lo) * (y0 - y1) }
            func f(_ v: Double) -> String { String(format: "%.1f", v) }
            out.append(
                "<text x=\"\(f((x0 + x1) / 2))\" y=\"18\" text-anchor=\"middle\" font-size=\"13\">\(title)</text>")
            out.append(
                "<rect x=\"\(f(x0))\" y=\"\(f(y1))\" width=\"\(f(x1 - x0))\" height=\"\(f(y0 - y1))\" fill=\"none\" stroke=\"#999\"/>"
            )
            for v in stride(from: lo, through: hi + step / 1000, by: step) {
                out.append(
                    "<line x1=\"\(f(x0))\" y1=\"\(f(py(v)))\" x2=\"\(f(x1))\" y2=\"\(f(py(v)))\" stroke=\"#eee\"/>")
                out.append(
                    "<text x=\"\(f(x0 - 4))\" y=\"\(f(py(v) + 4))\" text-anchor=\"end\">\(String(format: "%g", (v / step).rounded() * step))</text>"
                )
            }
            let ticks = Array(Set([Int(eMin), Int((eMin + eMax) / 2), Int(eMax)])).sorted()
            for e in ticks {
                out.append("<text x=\"\(f(px(Double(e))))\" y=\"\(f(y0 + 14))\" text-anchor=\"middle\">\(e)</text>")
            }
            out.append("<text x=\"\(f((x0 + x1) / 2))\" y=\"\(f(y0 + 30))\" text-anchor=\"middle\">epoch</text>")
            func polyline(_ points: [(Double, Double)], color: String, dashed: Bool) {
                guard !points.isEmpty else { return }
                let path = points.map { "\(f(px($0.0))),\(f(py(min(max($0.1, lo), hi))))" }.joined(separator: " ")
                out.append(
                    "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.8\""
                        + (dashed ? " stroke-dasharray=\"5,3\"" : "") + "/>")
            }
            polyline(zip(epochs, train).filter { $0.1.isFinite }, color: "#1f77b4", dashed: false)
            polyline(
                zip(epochs, validation).compactMap { e, v in v.flatMap { $0.isFinite ? (e, $0) : nil } },
                color: "#d62728", dashed: true)
            // Legend: top right for loss (falls), bottom right for accuracy (rises).
            let lx = x1 - 92
            let ly = legendAtBottom ? y0 - 30 : y1 + 14
            out.append(
                "<line x1=\"\(f(lx))\" y1=\"\(f(ly))\" x2=\"\(f(lx + 18))\" y2=\"\(f(ly))\" stroke=\"#1f77b4\" stroke-width=\"1.8\"/>"
            )
            out.append("<text x=\"\(f(lx + 22))\" y=\"\(f(ly + 4))\">training</text>")
            if validation.contains(where: { $0 != nil }) {
                out.append(
                    "<line x1=\"\(f(lx))\" y1=\"\(f(ly + 14))\" x2=\"\(f(lx + 18))\" y2=\"\(f(ly + 14))\" stroke=\"#d62728\" "
                        + "stroke-width=\"1.8\" stroke-dasharray=\"5,3\"/>")
                out.append("<text x=\"\(f(lx + 22))\" y=\"\(f(ly + 18))\">validation</text>")
            }
        }
        panel(
            0, title: "loss", train: records.map(\.loss), validation: records.map(\.valLoss), fixedRange: nil,
            legendAtBottom: false)
        panel(
            1, title: "accuracy", train: records.map(\.accuracy), validation: records.map(\.valAccuracy),
            fixedRange: 0...1,
            legendAtBottom: true)
        out.append("</svg>")
        return out.joined(separator: "\n") + "\n"
    }

    /// Writes `<base>.history.csv` and `<base>.history.svg` next to a model at `modelPath`
    /// (`MODEL.h5` → `MODEL.history.csv`, `MODEL.history.svg`) and returns the two paths.
    /// Each file is written whole (`AtomicFile`); a failure throws `TopModelError.cannotWrite` naming it.
    @discardableResult
    public func write(nextToModel modelPath: String) throws -> (csv: String, svg: String) {
        let paths = Self.paths(nextToModel: modelPath)
        for (path, text) in [(paths.csv, csv), (paths.svg, svg)] {
            do { try AtomicFile.write(Array(text.utf8), to: path) } catch let error as FileIOError {
                throw TopModelError.cannotWrite(path: path, reason: error.reason)
            }
        }
        return paths
    }

    /// The paths `write(nextToModel:)` writes: `MODEL.h5` → `MODEL.history.csv`, `MODEL.history.svg`.
    public static func paths(nextToModel modelPath: String) -> (csv: String, svg: String) {
        let base = (modelPath as NSString).deletingPathExtension
        return (base + ".history.csv", base + ".history.svg")
    }
}
