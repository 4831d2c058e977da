import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Reports an extraction's progress: a live line on a terminal (stderr), a plain line every few seconds when
/// stderr is not a terminal, or JSON lines on stdout. Used from the coordinator's event-loop thread only.
final class ProgressReporter {
    private enum Style { case live, plain, json, quiet }
    private let style: Style
    private let totalImages: Int
    private let startImages: Int
    private let started = Date()
    private var lastReport = Date.distantPast
    private var liveLineShown = false

    init(mode: ProgressMode, totalImages: Int, alreadyDone: Int) {
        switch mode {
        case .json: style = .json
        case .quiet: style = .quiet
        case .automatic: style = isatty(STDERR_FILENO) != 0 ? .live : .plain
        }
        self.totalImages = totalImages
        startImages = alreadyDone
    }

    private var interval: Double {
        switch style {
        case .live: 0.25
        case .plain: 5
        case .json: 1
        case .quiet: .infinity
        }
    }

    func update(doneImages: Int, workers: Int, retried: Int, force: Bool = false) {
        let now = Date()
        guard force || now.timeIntervalSince(lastReport) >= interval, style != .quiet else { return }
        lastReport = now
        let elapsed = max(now.timeIntervalSince(started), 1e-3)
        let rate = Double(doneImages - startImages) / elapsed
        let remaining = totalImages - doneImages
        let eta: Double? = rate > 0 ? Double(remaining) / rate : nil
        switch style {
        case .json:
            var object: [String: Any] = [
                "event": "progress", "images_done": doneImages, "images_total": totalImages,
                "images_per_second": (rate * 10).rounded() / 10, "workers": workers, "shards_retried": retried,
            ]
            if let eta { object["eta_seconds"] = eta.rounded() }
            printJSON(object)
        case .live, .plain:
            let line =
                "\(doneImages)/\(totalImages) images  \(String(format: "%.1f", rate)) images/s  ETA \(Self.format(eta))"
                + "  workers \(workers)  retried \(retried)"
            if style == .live {
                FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
                liveLineShown = true
            } else {
                FileHandle.standardError.write(Data((line + "\n").utf8))
            }
        case .quiet:
            break
        }
    }

    /// Ends the live line so that the next output starts on a fresh line.
    func finish() {
        if liveLineShown {
            FileHandle.standardError.write(Data("\n".utf8))
            liveLineShown = false
        }
    }

    func summary(_ summary: ExtractionSummary) {
        finish()
        if style == .json {
            printJSON([
                "event": "summary", "images": summary.images, "skipped": summary.skipped,
                "shards_total": summary.shardsTotal, "shards_resumed": summary.shardsResumed,
                "shards_retried": summary.shardsRetried, "duplicates_dropped": summary.duplicatesDropped,
                "seconds": (summary.seconds * 100).rounded() / 100,
                "images_per_second": (summary.imagesPerSecond * 10).rounded() / 10, "per_worker": summary.perWorker,
            ])
            return
        }
        var text =
            "extracted \(summary.images) images (\(summary.skipped) skipped) in \(String(format: "%.1f", summary.seconds)) s, "
            + "\(String(format: "%.1f", summary.imagesPerSecond)) images/s; shards: \(summary.shardsTotal) "
            + "(\(summary.shardsResumed) resumed, \(summary.shardsRetried) retried)\n"
        for (name, count) in summary.perWorker.sorted(by: { $0.key < $1.key }) {
            text += "  \(name): \(count) images\n"
        }
        FileHandle.standardError.write(Data(text.utf8))
    }

    /// A plain message that must not collide with the live line.
    func note(_ text: String) {
        if style == .json {
            printJSON(["event": "note", "message": text])
        }
    }

    private func printJSON(_ object: [String: Any]) {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        FileHandle.standardOutput.write(data + Data("\n".utf8))
    }

    static func format(_ seconds: Double?) -> String {
        guard let seconds, seconds.isFinite else { return "--" }
        let total = Int(seconds.rounded())
        if total >= 3600 { return "\(total / 3600)h\(String(format: "%02d", total / 60 % 60))m" }
        if total >= 60 { return "\(total / 60)m\(String(format: "%02d", total % 60))s" }
        return "\(total)s"
    }
}
