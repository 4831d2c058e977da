import ArgumentParser
import Testing

@testable import CLI
@testable import Reporting

private struct SampleError: ReportedError {
    var message = "changed since the interrupted run"
    var category = FailureCategory.badInput
    var remedy: Remedy? = nil
    var description: String { "sample: \(message)" }
}

private struct Root: ParsableCommand {}

@Suite("command line: errors and progress")
struct CLITests {
    @Test("reported errors exit 1, usage errors 2; a remedy gets its flag hint")
    func exitStatuses() {
        #expect(CommandLineRunner.status(for: .badInput) == 1)
        #expect(CommandLineRunner.status(for: .failedRun) == 1)
        #expect(CommandLineRunner.status(for: .usage) == 2)
        #expect(CommandLineRunner.handle(ValidationError("bad value"), root: Root.self) == 2)
        #expect(CommandLineRunner.handle(ExitCode(1), root: Root.self) == 1)
        #expect(CommandLineRunner.handle(ReportedFailure("no"), root: Root.self) == 1)
        let refused = SampleError(remedy: .restartJob)
        #expect(
            CommandLineRunner.message(for: refused)
                == "sample: changed since the interrupted run (rerun with --restart)")
        #expect(CommandLineRunner.message(for: SampleError()) == "sample: changed since the interrupted run")
    }

    @Test("the line for people and the JSON object of a report")
    func rendering() {
        let report = ProgressReport(
            task: "extract", done: 40, total: 100, unit: "images", alreadyDone: 0,
            fields: [ProgressField("workers", .int(2)), ProgressField("shards_retried", label: "retried", .int(1))])
        #expect(
            ProgressRenderer.text(report, rate: 12.5, eta: 4.8)
                == "extract: 40/100 images (40%), 12.5 images/s, ETA 5s, workers 2, retried 1")
        let object = ProgressRenderer.jsonObject(report, rate: 12.54, eta: 4.8)
        #expect(object["event"] as? String == "progress")
        #expect(object["images_done"] as? Int == 40)
        #expect(object["images_total"] as? Int == 100)
        #expect(object["images_per_second"] as? Double == 12.5)
        #expect(object["eta_seconds"] as? Double == 5)
        #expect(object["workers"] as? Int == 2)
        #expect(object["shards_retried"] as? Int == 1)
        #expect(ProgressRenderer.duration(3 * 3600 + 5 * 60) == "3h05m")
        #expect(ProgressRenderer.duration(nil) == "--")
    }
}
