import Foundation
import Report
import TestSupport
import Testing
import TopModel

@Suite("report: one self-contained HTML page")
struct ReportCommandTests {
    @Test("the page holds the history, matrix, metrics, thumbnails and settings, and nothing external")
    func pageContent() throws {
        let fixture = try PipelineFixture.shared.get()
        let output = fixture.directory + "/report.html"
        let result = try PipelineFixture.run([
            "report", "--features", fixture.features, "--model", fixture.model, "--output", output,
            "--images", fixture.validation,
        ])
        #expect(result.stdout.contains("wrote \(output)"))
        let html = try String(contentsOfFile: output, encoding: .utf8)
        #expect(html.contains("id=\"confusion-matrix\""))
        #expect(html.contains("id=\"per-class\""))
        #expect(html.components(separatedBy: "class=\"class-row\"").count - 1 == 3)
        #expect(html.contains("<svg"))  // the history chart
        #expect(!html.contains("No training history"))
        let figures = html.components(separatedBy: "<figure class=\"misclassified\"").count - 1
        #expect(figures > 0)
        #expect(html.components(separatedBy: "<img class=\"thumbnail\"").count - 1 == figures)
        #expect(html.contains("src=\"data:image/jpeg;base64,/9j/"))
        #expect(html.contains("rescale"))
        let sha = try TopModel.load(fixture.model).provenance.weightsSHA256
        #expect(html.contains(sha))
        for external in ["src=\"http", "href=\"http", "url(http", "src=\"//", "href=\"//", "@import", "<link"] {
            #expect(!html.contains(external), "external reference \(external)")
        }
    }

    @Test("without --images or a history the page says what is missing")
    func notes() throws {
        let fixture = try PipelineFixture.shared.get()
        let model = fixture.directory + "/copy/model.h5"
        try FileManager.default.createDirectory(
            atPath: fixture.directory + "/copy", withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: model) {
            try FileManager.default.copyItem(atPath: fixture.model, toPath: model)
        }
        let output = fixture.directory + "/report-notes.html"
        try PipelineFixture.run(["report", "--features", fixture.features, "--model", model, "--output", output])
        let html = try String(contentsOfFile: output, encoding: .utf8)
        #expect(html.contains("Thumbnails need the root of the"))
        #expect(html.contains("No training history"))
        #expect(!html.contains("<img"))
        #expect(html.contains("class=\"misclassified\""))

        let bad = try PipelineFixture.run(
            ["report", "--features", fixture.features, "--model", fixture.directory + "/none.h5", "--output", output],
            expecting: 1)
        #expect(bad.stderr.contains("none.h5"))
        try PipelineFixture.run(["report", "--features", fixture.features, "--model", model], expecting: 2)
        // The output is checked before any work: never an input, never a file of another kind without --force.
        let refused = try PipelineFixture.run(
            ["report", "--features", fixture.features, "--model", model, "--output", fixture.features],
            expecting: 2)
        #expect(refused.stderr.contains("feature file"))
        let other = fixture.directory + "/notes.txt"
        try Data("notes".utf8).write(to: URL(fileURLWithPath: other))
        try PipelineFixture.run(
            ["report", "--features", fixture.features, "--model", model, "--output", other], expecting: 2)
        try PipelineFixture.run([
            "report", "--features", fixture.features, "--model", model, "--output", other, "--force",
        ])
        #expect(ReportFile.isHTMLPage(other))
        try PipelineFixture.run(["report", "--features", fixture.features, "--model", model, "--output", output])
    }

    @Test(
        "headless Chromium renders the page: no script errors, matrix and thumbnails drawn, a screenshot",
        .enabled(if: chromiumUnavailable == nil, "skipped: \(chromiumUnavailable ?? "")"))
    func rendersInChromium() throws {
        let fixture = try PipelineFixture.shared.get()
        let output = fixture.directory + "/report-browser.html"
        try PipelineFixture.run([
            "report", "--features", fixture.features, "--model", fixture.model, "--output", output,
            "--images", fixture.validation,
        ])
        let browser = findOnPath("chromium") ?? "chromium-browser"
        let flags = ["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,2000", "--hide-scrollbars"]
        let url = URL(fileURLWithPath: output).absoluteString
        let dom = try #require(
            runTool(
                browser, flags + ["--virtual-time-budget=5000", "--enable-logging=stderr", "--v=0", "--dump-dom", url]))
        #expect(dom.status == 0, "\(dom.stderr)")
        let problems = dom.stdout.components(separatedBy: "data-problems=\"").dropFirst().first?.prefix(300) ?? ""
        #expect(dom.stdout.contains("data-rendered=\"ok\""), "data-problems: \(problems)")
        #expect(dom.stdout.contains("id=\"confusion-matrix\""))
        #expect(!dom.stdout.contains("data-thumbnails=\"0\""))
        let consoleErrors = dom.stderr.split(separator: "\n").filter {
            $0.contains("CONSOLE") && ($0.contains("Uncaught") || $0.contains("Error"))
        }
        #expect(consoleErrors.isEmpty, "\(consoleErrors)")

        let screenshotDirectory = try ImageFiles.temporaryDirectory("report-screenshot")
        defer {
            if ProcessInfo.processInfo.environment["KEEP_REPORT_SCREENSHOT"] == nil {
                ImageFiles.removeTree(screenshotDirectory)
            }
        }
        let png = screenshotDirectory + "/report.png"
        let shot = try #require(runTool(browser, flags + ["--screenshot=\(png)", url]))
        #expect(shot.status == 0, "\(shot.stderr)")
        let bytes = [UInt8]((try? Data(contentsOf: URL(fileURLWithPath: png))) ?? Data())
        #expect(bytes.count > 10_000)
        #expect(bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]))
        if ProcessInfo.processInfo.environment["KEEP_REPORT_SCREENSHOT"] != nil { print("screenshot: \(png)") }
    }
}
