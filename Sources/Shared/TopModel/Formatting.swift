import Foundation

/// Text for people: epoch lines, progress lines, prediction lines. Pure functions, no terminal handling.
public enum TrainingText {
    /// Keras-like epoch line, e.g.
    /// `Epoch 3/50 - 2.1s - loss: 0.4123 - accuracy: 0.8800 - val_loss: 0.3900 - val_accuracy: 0.9000`.
    public static func epochLine(_ r: EpochRecord, epochs: Int) -> String {
        var s =
            "Epoch \(r.epoch)/\(epochs) - \(String(format: "%.1fs", r.seconds)) - loss: \(f4(r.loss)) - accuracy: \(f4(r.accuracy))"
        if let v = r.valLoss { s += " - val_loss: \(f4(v))" }
        if let v = r.valAccuracy { s += " - val_accuracy: \(f4(v))" }
        return s
    }

    /// In-epoch progress, e.g. `Epoch 3/50  40/100 [===========>.................] - ETA: 1.2s - loss: 0.4123 - accuracy: 0.8800`.
    public static func progressLine(_ p: BatchProgress, barWidth: Int = 30) -> String {
        let fraction = p.batches > 0 ? Double(p.batch) / Double(p.batches) : 1
        let filled = min(barWidth, Int(fraction * Double(barWidth)))
        let bar =
            String(repeating: "=", count: max(0, filled - 1)) + (filled > 0 ? (filled == barWidth ? "=" : ">") : "")
            + String(repeating: ".", count: barWidth - filled)
        let width = String(p.batches).count
        let done = String(repeating: " ", count: max(0, width - String(p.batch).count)) + String(p.batch)
        let eta = p.batch > 0 ? p.seconds / Double(p.batch) * Double(p.batches - p.batch) : 0
        return "Epoch \(p.epoch)/\(p.epochs)  \(done)/\(p.batches) [\(bar)] - ETA: \(String(format: "%.1fs", eta))"
            + " - loss: \(f4(p.loss)) - accuracy: \(f4(p.accuracy))"
    }

    /// A closing summary of a run, e.g. `trained 50 epochs in 80.2s; best epoch 47 (val_loss 0.2101)`.
    public static func summary(_ result: TrainingResult) -> String {
        let seconds = result.history.records.reduce(0) { $0 + $1.seconds }
        var s = "trained \(result.history.records.count) epoch(s) in \(String(format: "%.1fs", seconds))"
        if result.stoppedEarly { s += " (stopped early)" }
        if let r = result.history.records.first(where: { $0.epoch == result.bestEpoch }) {
            s += "; model holds epoch \(r.epoch)"
            if let v = r.valLoss {
                s += " (val_loss \(f4(v)), val_accuracy \(f4(r.valAccuracy ?? 0)))"
            } else {
                s += " (loss \(f4(r.loss)), accuracy \(f4(r.accuracy)))"
            }
        }
        return s
    }

    static func f4(_ x: Double) -> String { String(format: "%.4f", x) }
}

extension Evaluation {
    /// The confusion matrix as an SVG heatmap (rows = true class, columns = predicted), each cell shaded by
    /// its share of the row and labelled with its count.
    public var confusionMatrixSVG: String {
        let c = classNames.count
        let cell = c <= 10 ? 48.0 : max(14.0, 480.0 / Double(c))
        // Approximate text width at 11px sans-serif: 6.5px per character.
        let labelWidth = min(180.0, 6.5 * Double(classNames.map(\.count).max() ?? 4))
        let title = "confusion matrix, accuracy \(String(format: "%.4f", accuracy))"
        let top = 34.0 + labelWidth * 0.87 + 8  // column labels rotated by 60°
        let left = labelWidth + 34
        let grid = cell * Double(c)
        let width = max(left + grid + max(20, labelWidth * 0.5 + 8), 7.5 * Double(title.count) + 20)
        let height = top + grid + 34
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        func escape(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        var out = [
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" "
                + "viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"sans-serif\" font-size=\"11\">",
            "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
            "<text x=\"\(f(width / 2))\" y=\"18\" text-anchor=\"middle\" font-size=\"13\">\(title)</text>",
            "<text x=\"\(f(left + grid / 2))\" y=\"\(f(top + grid + 22))\" text-anchor=\"middle\">predicted class</text>",
            "<text x=\"14\" y=\"\(f(top + grid / 2))\" text-anchor=\"middle\" "
                + "transform=\"rotate(-90 14 \(f(top + grid / 2)))\">true class</text>",
        ]
        for (k, name) in classNames.enumerated() {
            let x = left + (Double(k) + 0.5) * cell
            out.append(
                "<text x=\"\(f(x))\" y=\"\(f(top - 6))\" transform=\"rotate(-60 \(f(x)) \(f(top - 6)))\">\(escape(name))</text>"
            )
            out.append(
                "<text x=\"\(f(left - 6))\" y=\"\(f(top + (Double(k) + 0.5) * cell + 4))\" text-anchor=\"end\">\(escape(name))</text>"
            )
        }
        for t in 0..<c {
            let rowTotal = max(1, confusionMatrix[t].reduce(0, +))
            for p in 0..<c {
                let n = confusionMatrix[t][p]
                let share = Double(n) / Double(rowTotal)
                // White → blue by share of the row.
                let r = Int(255 - share * (255 - 31))
                let g = Int(255 - share * (255 - 119))
                let b = Int(255 - share * (255 - 180))
                let x = left + Double(p) * cell
                let y = top + Double(t) * cell
                out.append(
                    "<rect x=\"\(f(x))\" y=\"\(f(y))\" width=\"\(f(cell))\" height=\"\(f(cell))\" "
                        + "fill=\"rgb(\(r),\(g),\(b))\" stroke=\"#ccc\"/>")
                if cell >= 20 {
                    out.append(
                        "<text x=\"\(f(x + cell / 2))\" y=\"\(f(y + cell / 2 + 4))\" text-anchor=\"middle\" "
                            + "fill=\"\(share > 0.5 ? "white" : "black")\">\(n)</text>")
                }
            }
        }
        out.append("</svg>")
        return out.joined(separator: "\n") + "\n"
    }
}
