/// One named value shown next to a progress count, e.g. the workers connected or the running loss.
public struct ProgressField: Sendable, Equatable {
    public enum Value: Sendable, Equatable {
        case int(Int)
        case double(Double)
        case string(String)
    }

    /// Key of the JSON-lines output, e.g. `shards_retried`.
    public var key: String
    /// Label of the line for people, e.g. `retried`.
    public var label: String
    public var value: Value

    public init(_ key: String, label: String? = nil, _ value: Value) {
        self.key = key
        self.label = label ?? key
        self.value = value
    }
}

/// How far a task has come: `done` of `total` `unit`s, plus task-specific fields.
///
/// Libraries send these as often as they like; the renderer decides how often to draw them and computes rate
/// and ETA from the time between reports. `alreadyDone` counts work done before this run (a resume), which is
/// left out of the rate.
public struct ProgressReport: Sendable, Equatable {
    /// What is running, e.g. `inspect`, `extract`, `train`.
    public var task: String
    public var done: Int
    public var total: Int
    /// Plural noun of what is counted, e.g. `files`, `images`, `batches`.
    public var unit: String
    public var alreadyDone: Int
    public var fields: [ProgressField]

    public init(
        task: String, done: Int, total: Int, unit: String, alreadyDone: Int = 0, fields: [ProgressField] = []
    ) {
        self.task = task
        self.done = done
        self.total = total
        self.unit = unit
        self.alreadyDone = alreadyDone
        self.fields = fields
    }

    /// Whether the task is complete; the renderer always draws the final report.
    public var isComplete: Bool { done >= total }
}

/// Where a library sends its progress: reports while it runs, and notes (e.g. "resuming: 3 of 9 shards done").
///
/// Both callbacks may be called from any thread. `ProgressSink.none` drops everything.
public struct ProgressSink: Sendable {
    public let report: @Sendable (ProgressReport) -> Void
    public let note: @Sendable (String) -> Void

    public init(
        report: @escaping @Sendable (ProgressReport) -> Void, note: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.report = report
        self.note = note
    }

    /// Drops every report and note.
    public static let none = ProgressSink(report: { _ in })
}
