import Foundation

/// How busy the machine's other processes kept the CPUs while a benchmark ran: the CPU time of the whole
/// machine (/proc/stat) minus this process' own (/proc/self/stat), as a share of all CPUs' time.
///
/// A figure measured while this share is more than a few percent is not a measurement of the idle machine.
struct MachineLoad {
    private let machineBusy: Double
    private let machineTotal: Double
    private let own: Double

    /// A snapshot now; nil where /proc is unreadable.
    init?() {
        guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
            let cpu = stat.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") }),
            let selfStat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
            let close = selfStat.lastIndex(of: ")")
        else { return nil }
        // user nice system idle iowait irq softirq steal (guest time is already within user and nice).
        let ticks = cpu.split(separator: " ").dropFirst().prefix(8).compactMap { Double($0) }
        // After "pid (comm)": state is field 3, utime and stime fields 14 and 15.
        let fields = selfStat[selfStat.index(after: close)...].split(separator: " ")
        guard ticks.count == 8, fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12])
        else { return nil }
        machineTotal = ticks.reduce(0, +)
        machineBusy = machineTotal - ticks[3] - ticks[4]
        own = user + system
    }

    /// The share (0–1) of all CPUs' time that other processes used between `start` and this snapshot.
    func othersShare(since start: MachineLoad) -> Double {
        let total = machineTotal - start.machineTotal
        guard total > 0 else { return 0 }
        return max(0, (machineBusy - start.machineBusy) - (own - start.own)) / total
    }

    /// One line for a benchmark's output: the other processes' share between `start` and now.
    static func report(since start: MachineLoad?) -> String {
        guard let start, let now = MachineLoad() else { return "other processes' CPU use: unknown" }
        let share = now.othersShare(since: start)
        let verdict = share > 0.05 ? "NOT an idle machine: figures invalid" : "machine otherwise idle"
        return String(
            format: "other processes used %.1f %% of the CPUs during the measurement (%@)", 100 * share,
            verdict)
    }
}
