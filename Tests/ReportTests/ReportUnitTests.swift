import Report
import Testing
import TopModel

@Suite("report: history CSV and HTML text")
struct ReportUnitTests {
    @Test("the CSVLogger file train writes reads back as the same epochs")
    func historyRoundTrip() throws {
        let history = TrainingHistory(records: [
            EpochRecord(epoch: 1, loss: 1.5, accuracy: 0.25, valLoss: 1.25, valAccuracy: 0.5, seconds: 2),
            EpochRecord(epoch: 2, loss: 0.75, accuracy: 0.5, valLoss: 1, valAccuracy: 0.75, seconds: 2),
        ])
        let parsed = try HistoryCSV.parse(history.csv, source: "m.history.csv")
        #expect(parsed.records.map(\.epoch) == [1, 2])
        #expect(parsed.records.map(\.loss) == [1.5, 0.75])
        #expect(parsed.records.map(\.valAccuracy) == [0.5, 0.75])
        let noValidation = try HistoryCSV.parse("epoch,acc,loss\r\n0,0.5,0.7\r\n", source: "x")
        #expect(noValidation.records.first?.valLoss == nil)
        #expect(noValidation.records.first?.accuracy == 0.5)
        #expect(HistoryCSV.path(nextToModel: "/a/model.h5") == "/a/model.history.csv")
    }

    @Test("a malformed history names the file and the line")
    func malformedHistory() {
        #expect(throws: ReportError.self) { try HistoryCSV.parse("epoch,loss\n0,1\n", source: "h.csv") }
        do {
            _ = try HistoryCSV.parse("epoch,accuracy,loss\n0,x,1\n", source: "h.csv")
            Issue.record("expected an error")
        } catch {
            #expect(error.description.hasPrefix("h.csv: line 2"))
        }
    }

    @Test("text is escaped for element content and attributes")
    func escaping() {
        #expect(ReportHTML.escape("a<b>&\"c'") == "a&lt;b&gt;&amp;&quot;c&#39;")
    }
}
