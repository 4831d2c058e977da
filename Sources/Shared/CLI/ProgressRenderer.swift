import Foundation
import Reporting
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// How progress is shown.
public enum ProgressStyle: Sendable, Equatable {
    /// A line redrawn in place on a terminal, a plain line every few seconds otherwise (chosen by `isatty(2)`).
    case automatic
    /// One JSON object per line on standard output, for scripts.
    case json
    /// Nothing.
    case quiet
}

/// Draws the progress of every command: a line redrawn in place on standard error when it is a terminal, a
/// plain line every few seconds when it is not, or JSON lines on standard output.
///
/// Rates and ETAs count from the renderer's creation, and again from the first report of each new task (so one
/// renderer serves, say, extraction and then assembly; the finished task's line stays). Thread-safe:
/// reports may come from any thread. Call `finish()` before printing anything else on standard
/// error, or use `line(_:)`, which ends the live line first.
public final class ProgressRenderer: Sendable {
    private enum Output { case live, plain, json, quiet }

    private struct State {
        var task: String?
        var started = Date()
        var lastDraw = Date.distantPast
        var lastDone = -1
        var liveLineShown = false
    }

    private let output: Output
    private let state = Mutex(State())

    public init(_ style: ProgressStyle = .automatic) {
        switch style {
        case .automatic: output = isatty(STDERR_FILENO) != 0 ? .live : .plain
        case .json: output = .json
        case .quiet: output = .quiet
        }
    }

    /// Whether standard error is a terminal on which the line is redrawn in place.
    public var isLive: Bool { output == .live }

    private var interval: Double {
        switch output {
        case .live: 0.1
        case .plain: 5
        case .json: 1
        case .quiet: .infinity
        }
    }

    /// A sink for libraries that draws through this renderer.
    public var sink: ProgressSink {
        ProgressSink(report: { self.update($0) }, note: { self.note($0) })
    }

    /// Draws `report` unless one was drawn a moment ago; the final report (done == total) is always drawn.
    ///
    /// - Parameter text: the line for people, instead of the default `task: done/total unit (%), rate, ETA, …`.
    public func update(_ report: ProgressReport, text: String? = nil) {
        guard output != .quiet else { return }
        state.withLock { state in
            let now = Date()
            if report.task != state.task {
                if state.task != nil {
                    endLiveLine(&state)
                    state.started = now
                    state.lastDraw = .distantPast
                    state.lastDone = -1
                }
                state.task = report.task
            }
            let due = now.timeIntervalSince(state.lastDraw) >= interval
            guard report.done != state.lastDone, due || report.isComplete else { return }
            state.lastDraw = now
            state.lastDone = report.done
            let elapsed = max(now.timeIntervalSince(state.started), 1e-3)
            let rate = Double(report.done - report.alreadyDone) / elapsed
            let eta: Double? = rate > 0 ? Double(report.total - report.done) / rate : nil
            switch output {
            case .json:
                writeJSON(Self.jsonObject(report, rate: rate, eta: eta))
            case .live:
                write(Self.clearLine + (text ?? Self.text(report, rate: rate, eta: eta)), to: .standardError)
                state.liveLineShown = true
            case .plain:
                write((text ?? Self.text(report, rate: rate, eta: eta)) + "\n", to: .standardError)
            case .quiet:
                break
            }
        }
    }

    /// A note that must not collide with the live line: a JSON `note` event in JSON mode, nothing otherwise
    /// (libraries log the same notes).
    public func note(_ message: String) {
        if output == .json { writeJSON(["event": "note", "message": message]) }
    }

    /// Prints a line on standard output (e.g. a finished epoch), ending the live line first.
    public func line(_ text: String) {
        state.withLock { state in
            if state.liveLineShown { write(Self.clearLine, to: .standardError) }
            state.liveLineShown = false
            write(text + "\n", to: .standardOutput)
        }
    }

    /// Prints a block of text on standard error (e.g. a closing summary), ending the live line first.
    public func message(_ text: String) {
        state.withLock { state in
            endLiveLine(&state)
            write(text.hasSuffix("\n") ? text : text + "\n", to: .standardError)
        }
    }

    /// Writes one JSON object as a line on standard output, keys sorted.
    public func json(_ object: [String: Any]) {
        state.withLock { _ in writeJSON(object) }
    }

    /// Ends the live line so that the next output starts on a fresh line.
    public func finish() {
        state.withLock { endLiveLine(&$0) }
    }

    /// Whether output is JSON lines.
    public var isJSON: Bool { output == .json }

    private func endLiveLine(_ state: inout State) {
        if state.liveLineShown { write("\n", to: .standardError) }
        state.liveLineShown = false
    }

    static let clearLine = "\r\u{1B}[K"

    /// The line for people, e.g. `extract: 40/100 images (40%), 12.5 images/s, ETA 5s, workers 2, retried 0`.
    static func text(_ report: ProgressReport, rate: Double, eta: Double?) -> String {
        let percent = report.total > 0 ? 100 * report.done / report.total : 100
        var text =
            "\(report.task): \(report.done)/\(report.total) \(report.unit) (\(percent)%), "
            + "\(String(format: "%.1f", rate)) \(report.unit)/s"
        if !report.isComplete { text += ", ETA \(duration(eta))" }
        for field in report.fields { text += ", \(field.label) \(format(field.value))" }
        return text
    }

    /// The JSON-lines object: `event: progress`, `task`, `<unit>_done`, `<unit>_total`, `<unit>_per_second`,
    /// `eta_seconds` when known, and the report's fields under their keys.
    static func jsonObject(_ report: ProgressReport, rate: Double, eta: Double?) -> [String: Any] {
        var object: [String: Any] = [
            "event": "progress", "task": report.task, "\(report.unit)_done": report.done,
            "\(report.unit)_total": report.total,
            "\(report.unit)_per_second": (rate * 10).rounded() / 10,
        ]
        if let eta { object["eta_seconds"] = eta.rounded() }
        for field in report.fields {
            switch field.value {
            case .int(let value): object[field.key] = value
            case .double(let value): object[field.key] = value
            case .string(let value): object[field.key] = value
            }
        }
        return object
    }

    static func format(_ value: ProgressField.Value) -> String {
        switch value {
        case .int(let value): String(value)
        case .double(let value): String(format: "%.4f", value)
        case .string(let value): value
        }
    }

    /// `42s`, `3m07s`, `1h05m`; `--` when unknown.
    public static func duration(_ seconds: Double?) -> String {
        guard let seconds, seconds.isFinite else { return "--" }
        let total = Int(seconds.rounded())
        if total >= 3600 { return "\(total / 3600)h\(String(format: "%02d", total / 60 % 60))m" }
        if total >= 60 { return "\(total / 60)m\(String(format: "%02d", total % 60))s" }
        return "\(total)s"
    }

    private enum Stream { case standardOutput, standardError }

    private func write(_ text: String, to stream: Stream) {
        let handle = stream == .standardOutput ? FileHandle.standardOutput : FileHandle.standardError
        handle.write(Data(text.utf8))
    }

    private func writeJSON(_ object: [String: Any]) {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        FileHandle.standardOutput.write(data + Data("\n".utf8))
    }
}
