import ImageInput

/// What `inspect` found in one or more splits of a labelled image tree. `Codable` for `--json`.
public struct DataCheckReport: Codable, Sendable {
    public struct ClassCount: Codable, Sendable {
        public let name: String
        public let images: Int
    }

    public struct Split: Codable, Sendable {
        public let name: String
        public let directory: String
        public let images: Int
        public let classes: [ClassCount]
    }

    /// One finding; `files` are "split/class/sub/file.jpg".
    public struct Finding: Codable, Sendable {
        public enum Kind: String, Codable, Sendable, CaseIterable {
            case zeroByte = "zero_byte"
            case notAnImage = "not_an_image"
            case unsupportedFormat = "unsupported_format"
            case truncated
            case undecodable
            case unreadable
            case tooSmall = "too_small"
            case duplicate
            case leakage
            case emptyClass = "empty_class"
            case classInOneSplitOnly = "class_in_one_split_only"
            case unusualMode = "unusual_mode"
        }

        public let kind: Kind
        /// Problems need attention (exit status 1); notes are for information.
        public let needsAttention: Bool
        public let message: String
        public let files: [String]
    }

    public let splits: [Split]
    public let findings: [Finding]
    public var needsAttention: Bool { findings.contains { $0.needsAttention } }

    enum CodingKeys: String, CodingKey {
        case splits, findings
        case needsAttention = "needs_attention"
    }

    public init(splits: [Split], findings: [Finding]) {
        self.splits = splits
        self.findings = findings
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        splits = try container.decode([Split].self, forKey: .splits)
        findings = try container.decode([Finding].self, forKey: .findings)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(splits, forKey: .splits)
        try container.encode(findings, forKey: .findings)
        try container.encode(needsAttention, forKey: .needsAttention)
    }

    /// A table of counts per split and class, then the findings, for people.
    public func text(maxFilesPerFinding: Int = 10) -> String {
        var lines: [String] = []
        let classNames = Array(Set(splits.flatMap { $0.classes.map(\.name) })).sorted(by: CodePointOrder.less)
        let nameWidth = max(5, classNames.map(\.count).max() ?? 5)
        let header =
            "class".padding(toLength: nameWidth, withPad: " ", startingAt: 0)
            + splits.map { "  " + String(repeating: " ", count: max(0, 10 - $0.name.count)) + $0.name }.joined()
        lines.append(header)
        lines.append(String(repeating: "-", count: header.count))
        for name in classNames {
            var line = name.padding(toLength: nameWidth, withPad: " ", startingAt: 0)
            for split in splits {
                let count = split.classes.first { $0.name == name }.map { String($0.images) } ?? "—"
                line += "  " + String(repeating: " ", count: max(0, 10 - count.count)) + count
            }
            lines.append(line)
        }
        var total = "total".padding(toLength: nameWidth, withPad: " ", startingAt: 0)
        for split in splits {
            total +=
                "  " + String(repeating: " ", count: max(0, 10 - String(split.images).count)) + String(split.images)
        }
        lines.append(total)
        lines.append("")
        if findings.isEmpty {
            lines.append("no problems found")
        }
        for finding in findings {
            lines.append("\(finding.needsAttention ? "PROBLEM" : "note"): \(finding.message)")
            for file in finding.files.prefix(maxFilesPerFinding) { lines.append("    \(file)") }
            if finding.files.count > maxFilesPerFinding {
                lines.append("    … and \(finding.files.count - maxFilesPerFinding) more")
            }
        }
        let problems = findings.filter(\.needsAttention).count
        lines.append("")
        lines.append(problems == 0 ? "OK: nothing needs attention" : "\(problems) problem(s) need attention")
        return lines.joined(separator: "\n")
    }
}
