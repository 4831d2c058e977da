import FileIntegrity
import Foundation
import TopModel

/// Renders a `ReportContent` as one self-contained HTML5 page.
///
/// Element ids a reader or a test can rely on: `history` (section; an inline `<svg>` or a
/// `p.note`), `confusion-matrix` (table; `td.cell` with `data-count` and `data-share`), `per-class`
/// (table; one `tr.class-row` per class), `misclassified` (section; one `figure.misclassified` per image
/// with `data-true`, `data-predicted`, `data-probability`, and an `img.thumbnail` when one was made),
/// `settings` (table). After the `load` event the inline script sets `body[data-rendered]` to `ok`
/// when the matrix has a size and every thumbnail decoded, else to `failed` with `data-problems`.
public enum ReportHTML {
    public static func render(_ content: ReportContent) -> String {
        var html: [String] = []
        html.append("<!DOCTYPE html>")
        html.append("<html lang=\"en\"><head><meta charset=\"utf-8\">")
        html.append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
        html.append("<title>\(escape(content.title))</title>")
        html.append("<style>\(style)</style>")
        html.append("<script>\(errorCollector)</script>")
        html.append("</head><body>")
        html.append("<h1>\(escape(content.title))</h1>")
        html.append(summary(content))
        html.append(historySection(content))
        html.append(confusionSection(content))
        html.append(perClassSection(content))
        html.append(misclassifiedSection(content))
        html.append(settingsSection(content))
        html.append("<script>\(renderCheck)</script>")
        html.append("</body></html>")
        return html.joined(separator: "\n") + "\n"
    }

    static func summary(_ content: ReportContent) -> String {
        let e = content.evaluation
        return "<p id=\"summary\">\(e.count) images of split '\(escape(content.split))': accuracy "
            + "<strong>\(f4(e.accuracy))</strong>, loss \(f4(e.loss)), macro F1 \(f4(e.macroF1)); "
            + "\(content.misclassifiedCount) misclassified.</p>"
    }

    static func historySection(_ content: ReportContent) -> String {
        var out = ["<section id=\"history\"><h2>Training history</h2>"]
        if let history = content.history {
            out.append("<div class=\"chart\">\(history.svg)</div>")
            if let last = history.records.last {
                var text = "Last epoch \(last.epoch): loss \(f4(last.loss)), accuracy \(f4(last.accuracy))"
                if let v = last.valLoss { text += ", val_loss \(f4(v))" }
                if let v = last.valAccuracy { text += ", val_accuracy \(f4(v))" }
                out.append("<p>\(text). Training solid, validation dashed.</p>")
            }
        } else {
            out.append("<p class=\"note\">\(escape(content.historyNote ?? "No training history."))</p>")
        }
        out.append("</section>")
        return out.joined(separator: "\n")
    }

    static func confusionSection(_ content: ReportContent) -> String {
        let names = content.classNames
        let matrix = content.evaluation.confusionMatrix
        var out = [
            "<section><h2>Confusion matrix</h2>",
            "<p>Rows: true class; columns: predicted class. Each cell is shaded by its share of the row.</p>",
            "<table id=\"confusion-matrix\" class=\"matrix\"><thead><tr><th class=\"corner\">true \\ predicted</th>",
        ]
        out.append(
            names.map { "<th scope=\"col\">\(escape($0))</th>" }.joined()
                + "<th scope=\"col\">total</th></tr></thead><tbody>")
        for (t, name) in names.enumerated() {
            let total = matrix[t].reduce(0, +)
            var row = "<tr><th scope=\"row\">\(escape(name))</th>"
            for (p, count) in matrix[t].enumerated() {
                let share = total > 0 ? Double(count) / Double(total) : 0
                // White → blue by share of the row, as in the SVG heatmap.
                let r = Int(255 - share * (255 - 31))
                let g = Int(255 - share * (255 - 119))
                let b = Int(255 - share * (255 - 180))
                let classes = "cell" + (p == t ? " diagonal" : "")
                row +=
                    "<td class=\"\(classes)\" data-count=\"\(count)\" data-share=\"\(String(format: "%.4f", share))\" "
                    + "style=\"background:rgb(\(r),\(g),\(b));color:\(share > 0.5 ? "#fff" : "#000")\" "
                    + "title=\"\(escape(name)) → \(escape(names[p])): \(count) "
                    + "(\(String(format: "%.1f", 100 * share))%)\">"
                    + "\(count)</td>"
            }
            row += "<td class=\"total\">\(total)</td></tr>"
            out.append(row)
        }
        out.append("</tbody></table></section>")
        return out.joined(separator: "\n")
    }

    static func perClassSection(_ content: ReportContent) -> String {
        let e = content.evaluation
        var out = [
            "<section><h2>Per-class metrics</h2>",
            "<table id=\"per-class\" class=\"metrics\"><thead><tr><th>class</th><th>precision</th><th>recall</th>"
                + "<th>F1</th><th>support</th></tr></thead><tbody>",
        ]
        for name in content.classNames {
            guard let m = e.perClass[name] else { continue }
            out.append(
                "<tr class=\"class-row\" data-class=\"\(escape(name))\"><th scope=\"row\">\(escape(name))</th>"
                    + "<td>\(f4(m.precision))</td><td>\(f4(m.recall))</td><td>\(f4(m.f1))</td>"
                    + "<td>\(m.support)</td></tr>"
            )
        }
        out.append(
            "<tr class=\"average\"><th scope=\"row\">macro avg</th><td></td><td></td><td>\(f4(e.macroF1))</td>"
                + "<td>\(e.count)</td></tr>")
        out.append("</tbody></table></section>")
        return out.joined(separator: "\n")
    }

    static func misclassifiedSection(_ content: ReportContent) -> String {
        var out = ["<section id=\"misclassified\"><h2>Misclassified images (\(content.misclassifiedCount))</h2>"]
        if let note = content.thumbnailNote { out.append("<p class=\"note\">\(escape(note))</p>") }
        if content.misclassified.isEmpty {
            out.append("<p>None: every image of this split was classified correctly.</p>")
        }
        out.append("<div class=\"gallery\">")
        for item in content.misclassified {
            var figure =
                "<figure class=\"misclassified\" data-row=\"\(item.row)\" data-true=\"\(escape(item.trueClass))\" "
                + "data-predicted=\"\(escape(item.predictedClass))\" "
                + "data-probability=\"\(f4(Double(item.probability)))\">"
            if let jpeg = item.thumbnailJPEG {
                figure +=
                    "<img class=\"thumbnail\" alt=\"\(escape(item.filename))\" "
                    + "src=\"data:image/jpeg;base64,\(Data(jpeg).base64EncodedString())\">"
            } else {
                let why = item.thumbnailProblem ?? "no thumbnail"
                figure += "<div class=\"no-thumbnail\" title=\"\(escape(why))\">no image</div>"
            }
            figure +=
                "<figcaption><span class=\"filename\">\(escape(item.filename))</span>"
                + "<span>true: <b>\(escape(item.trueClass))</b> (\(f4(Double(item.trueClassProbability))))</span>"
                + "<span>predicted: <b>\(escape(item.predictedClass))</b> (\(f4(Double(item.probability))))</span>"
            if let problem = item.thumbnailProblem {
                figure += "<span class=\"problem\">\(escape(problem))</span>"
            }
            figure += "</figcaption></figure>"
            out.append(figure)
        }
        out.append("</div></section>")
        return out.joined(separator: "\n")
    }

    static func settingsSection(_ content: ReportContent) -> String {
        let a = content.attributes
        var rows: [(String, String)] = [
            ("feature file", content.featureFilePath),
            ("model file", content.modelPath),
            ("model kind", content.classifier.kind),
            ("model", content.classifier.summary),
            ("convolutional base", a.model),
            ("weights SHA-256", a.weightsSHA256),
            ("feature layer", a.layer),
            ("feature shape", "\(content.classifier.featureShape)"),
            ("image size", "\(a.imageHeight)×\(a.imageWidth)"),
            ("preprocessing", a.preprocess),
            ("interpolation", a.interpolation),
            ("data format", a.dataFormat),
            ("classes", "\(content.classNames.count): " + content.classNames.joined(separator: ", ")),
        ]
        rows += content.classifier.settings
        for split in content.splitCounts {
            rows.append(("split '\(split.name)'", "\(split.rows) images with features, \(split.skipped) skipped"))
        }
        rows.append(("evaluated split", content.split))
        var out = ["<section><h2>Settings and provenance</h2><table id=\"settings\" class=\"settings\"><tbody>"]
        for (key, value) in rows {
            out.append("<tr><th scope=\"row\">\(escape(key))</th><td>\(escape(value))</td></tr>")
        }
        out.append("</tbody></table></section>")
        return out.joined(separator: "\n")
    }

    /// Escapes text for HTML element content and double-quoted attribute values.
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.count)
        for ch in s {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(ch)
            }
        }
        return out
    }

    static func f4(_ x: Double) -> String { String(format: "%.4f", x) }

    static let style = """
        body{font-family:sans-serif;margin:24px;color:#222;max-width:1200px}
        h1{font-size:20px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
        table{border-collapse:collapse;font-size:13px}th,td{padding:4px 8px;border:1px solid #ccc}
        .matrix td.cell{min-width:40px;text-align:center;font-variant-numeric:tabular-nums}
        .matrix td.diagonal{outline:2px solid #444;outline-offset:-2px}
        .matrix th.corner{font-weight:normal;color:#666}
        .metrics td,.matrix td.total{text-align:right;font-variant-numeric:tabular-nums}
        .settings th{text-align:left;background:#f6f6f6}.settings td{word-break:break-all}
        .note{background:#fff8e0;border-left:4px solid #e0b000;padding:6px 10px}
        .gallery{display:flex;flex-wrap:wrap;gap:12px}
        figure.misclassified{margin:0;width:150px;font-size:11px;border:1px solid #ddd;padding:6px}
        figure.misclassified img{display:block;max-width:138px;margin:0 auto 4px}
        .no-thumbnail{height:96px;display:flex;align-items:center;justify-content:center;background:#eee;color:#888}
        figcaption span{display:block;overflow-wrap:anywhere}.problem{color:#a00}
        """

    static let errorCollector = """
        window.reportErrors=[];
        window.addEventListener('error',function(e){window.reportErrors.push(String(e.message));});
        """

    static let renderCheck = """
        window.addEventListener('load',function(){
          var problems=window.reportErrors.slice();
          var matrix=document.getElementById('confusion-matrix');
          if(!matrix){problems.push('no confusion matrix');}
          else{
            var box=matrix.getBoundingClientRect();
            if(box.width<=0||box.height<=0){problems.push('confusion matrix has no size');}
          }
          var images=document.querySelectorAll('img.thumbnail');
          for(var i=0;i<images.length;i++){
            if(!images[i].complete||images[i].naturalWidth===0){problems.push('thumbnail '+i+' did not decode');}
          }
          document.body.setAttribute('data-thumbnails',String(images.length));
          document.body.setAttribute('data-problems',problems.join('; '));
          document.body.setAttribute('data-rendered',problems.length===0?'ok':'failed');
        });
        """
}

/// Writes the page atomically: a temporary file next to `path`, renamed into place when whole.
public enum ReportFile {
    /// Whether the file at `path` starts as an HTML page does (`<!DOCTYPE html` or `<html`, any case), so that
    /// a command may replace it; reads only its first bytes.
    public static func isHTMLPage(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: 64)) ?? Data()
        let text = String(decoding: head, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        return text.hasPrefix("<!doctype html") || text.hasPrefix("<html")
    }

    public static func write(_ html: String, to path: String) throws(ReportError) {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty, !FileManager.default.fileExists(atPath: directory) {
            throw ReportError(path: path, message: "directory \(directory) does not exist")
        }
        do { try AtomicFile.write(Array(html.utf8), to: path) } catch {
            throw ReportError(path: path, message: "cannot write the report: \(error)", category: .failedRun)
        }
    }
}
