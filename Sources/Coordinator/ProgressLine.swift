import Foundation

/// A progress line on standard error: redrawn in place on a terminal (done/total, rate, ETA), a plain
/// line every few seconds otherwise. Thread-safe.
final class ProgressLine: @unchecked Sendable {
    private let label: String
    private let unit: String
    private let start = Date()
    private let isTerminal = isatty(STDERR_FILENO) != 0
    private let lock = NSLock()
    private var lastPrint = Date.distantPast
    private var lastText = ""
    private var lastDone = -1

    init(label: String, unit: String) {
        self.label = label
        self.unit = unit
    }

    func update(done: Int, total: Int, extra: String = "") {
        lock.lock()
        defer { lock.unlock() }
        let now = Date()
        let interval = isTerminal ? 0.1 : 5.0
        guard done != lastDone, now.timeIntervalSince(lastPrint) >= interval || done == total else { return }
        lastPrint = now
        lastDone = done
        let elapsed = now.timeIntervalSince(start)
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let percent = total > 0 ? 100 * done / total : 100
        var text = "\(label): \(done)/\(total) \(unit) (\(percent)%), \(String(format: "%.1f", rate)) \(unit)/s"
        if done < total, rate > 0 { text += ", ETA \(Self.duration(eta))" }
        if !extra.isEmpty { text += ", " + extra }
        lastText = text
        FileHandle.standardError.write(Data((isTerminal ? "\r\u{1B}[K" + text : text + "\n").utf8))
    }

    func finish() {
        lock.lock()
        defer { lock.unlock() }
        if isTerminal, !lastText.isEmpty { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? "\(s / 3600)h\(String(format: "%02d", s % 3600 / 60))m" : s >= 60 ? "\(s / 60)m\(String(format: "%02d", s % 60))s" : "\(s)s"
    }
}
