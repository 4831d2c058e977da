import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Runs a command to its end; returns its status and its output (stdout and stderr together).
@discardableResult
private func runCommand(_ executable: String, _ arguments: [String]) -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    do { try process.run() } catch { return (-1, "cannot run \(executable): \(error)") }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

private func firstExecutable(_ candidates: [String]) -> String? {
    candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
}

private let ipCommand = firstExecutable(["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"])
private let tcpdumpCommand = firstExecutable(["/usr/bin/tcpdump", "/usr/sbin/tcpdump"])

/// Where the coordinator and the workers run: two network namespaces joined by a veth pair (two "machines"), or,
/// where the machine forbids namespaces, plain loopback.
private struct Hosts {
    /// Command prefixes that run a program on the coordinator's and the workers' "machine".
    var coordinatorPrefix: [String]
    var workerPrefix: [String]
    /// The coordinator's address as the workers reach it.
    var coordinatorAddress: String
    /// The interface to capture on, and the prefix that runs the capture where that interface is.
    var captureInterface: String
    var capturePrefix: [String]
    var description: String
    /// Deletes the namespaces (and with them the veth pair); nil for loopback.
    var remove: (@Sendable () -> Void)?

    static let loopback = Hosts(
        coordinatorPrefix: [], workerPrefix: [], coordinatorAddress: "127.0.0.1", captureInterface: "lo",
        capturePrefix: [], description: "loopback (one network namespace)", remove: nil)

    /// Two namespaces, 10.231.0.1/24 (coordinator) and 10.231.0.2/24 (workers), each with its end of a veth pair.
    /// Returns the reason instead when the machine does not allow it. Everything made is removed on failure.
    static func namespaces() -> Result<Hosts, NamespaceUnavailable> {
        if ProcessInfo.processInfo.environment["BOTTLENECK_TEST_NO_NETNS"] != nil {
            return .failure(NamespaceUnavailable(reason: "BOTTLENECK_TEST_NO_NETNS is set"))
        }
        guard let ip = ipCommand else { return .failure(NamespaceUnavailable(reason: "no `ip` command (iproute2)")) }
        let tag = String(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(6)).lowercased()
        let coordinatorNS = "bnk-c-\(tag)"
        let workerNS = "bnk-w-\(tag)"
        let coordinatorLink = "bnc\(tag)"
        let workerLink = "bnw\(tag)"
        let remove: @Sendable () -> Void = {
            runCommand(ip, ["netns", "delete", coordinatorNS])
            runCommand(ip, ["netns", "delete", workerNS])
            runCommand(ip, ["link", "delete", coordinatorLink])
        }
        let steps: [[String]] = [
            ["netns", "add", coordinatorNS],
            ["netns", "add", workerNS],
            ["link", "add", coordinatorLink, "type", "veth", "peer", "name", workerLink],
            ["link", "set", coordinatorLink, "netns", coordinatorNS],
            ["link", "set", workerLink, "netns", workerNS],
            ["-n", coordinatorNS, "addr", "add", "10.231.0.1/24", "dev", coordinatorLink],
            ["-n", workerNS, "addr", "add", "10.231.0.2/24", "dev", workerLink],
            ["-n", coordinatorNS, "link", "set", coordinatorLink, "up"],
            ["-n", workerNS, "link", "set", workerLink, "up"],
            ["-n", coordinatorNS, "link", "set", "lo", "up"],
            ["-n", workerNS, "link", "set", "lo", "up"],
        ]
        for step in steps {
            let result = runCommand(ip, step)
            if result.status != 0 {
                remove()
                return .failure(
                    NamespaceUnavailable(
                        reason: "`ip \(step.joined(separator: " "))` failed: "
                            + result.output.trimmingCharacters(in: .whitespacesAndNewlines)))
            }
        }
        return .success(
            Hosts(
                coordinatorPrefix: [ip, "netns", "exec", coordinatorNS],
                workerPrefix: [ip, "netns", "exec", workerNS], coordinatorAddress: "10.231.0.1",
                captureInterface: workerLink, capturePrefix: [ip, "netns", "exec", workerNS],
                description: "two network namespaces joined by a veth pair (10.231.0.1 ↔ 10.231.0.2)", remove: remove))
    }

    /// Starts `executable arguments` on the coordinator's or the workers' side.
    func start(
        onCoordinator: Bool, _ executable: String, _ arguments: [String], logDirectory: String, label: String
    ) throws -> ChildProcess {
        let prefix = onCoordinator ? coordinatorPrefix : workerPrefix
        let command = prefix + [executable] + arguments
        return try ChildProcess(command[0], Array(command.dropFirst()), logDirectory: logDirectory, label: label)
    }
}

private struct NamespaceUnavailable: Error {
    let reason: String
}

/// A packet capture of one TCP port on one interface, written to a pcap file.
private final class PacketCapture {
    let path: String
    private let child: ChildProcess

    init?(hosts: Hosts, port: Int, path: String, logDirectory: String) throws {
        guard let tcpdump = tcpdumpCommand else { return nil }
        self.path = path
        let command =
            hosts.capturePrefix + [
                tcpdump, "-i", hosts.captureInterface, "--immediate-mode", "-U", "-s", "0", "-w", path,
                "tcp port \(port)",
            ]
        child = try ChildProcess(command[0], Array(command.dropFirst()), logDirectory: logDirectory, label: "tcpdump")
        guard child.waitForStderr("listening on", timeout: 15) else {
            Issue.record("tcpdump did not start:\n\(child.stderr)")
            return nil
        }
    }

    /// Stops the capture and returns the captured bytes (headers and payloads).
    func finish() -> [UInt8] {
        // Every packet is already in the file (--immediate-mode, -U). Under the test runner tcpdump does not always
        // act on SIGTERM (a signal mask inherited from the runner's thread), so it is killed after a short grace.
        child.signal(SIGTERM)
        if child.wait(timeout: 1) == nil { child.signal(SIGKILL) }
        child.wait(timeout: 5)
        return Array((try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data())
    }
}

extension Array where Element == UInt8 {
    /// Whether `needle` occurs anywhere in these bytes.
    fileprivate func contains(bytes needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, needle.count <= count else { return false }
        return Data(self).range(of: Data(needle)) != nil
    }
}

/// Throughput from the coordinator's `--json-progress` summary line.
private func imagesPerSecond(_ stdout: String) -> Double? {
    for line in stdout.split(separator: "\n").reversed() {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
            object["event"] as? String == "summary"
        else { continue }
        return (object["images_per_second"] as? NSNumber)?.doubleValue
    }
    return nil
}

/// Coordinator and workers on two "machines" (network namespaces) with CURVE; refused workers; the wire's bytes.
///
/// Serialized: the namespaces need root and the runs share the two cores; each test makes and deletes its own.
@Suite(
    "Several machines: CURVE between network namespaces", .serialized,
    .enabled(if: BuiltExecutables.available, "needs the built executables"))
struct MultiHostTests {
    @Test("two network namespaces with CURVE: strangers refused, allowed workers finish, nothing readable on the link")
    func curveAcrossNamespaces() throws {
        let hosts: Hosts
        switch Hosts.namespaces() {
        case .success(let made): hosts = made
        case .failure(let unavailable):
            print("MultiHostTests: network namespaces unavailable (\(unavailable.reason)); running over loopback")
            hosts = .loopback
        }
        defer { hosts.remove?() }
        print("MultiHostTests: hosts are \(hosts.description)")

        let fixture = try DistributedFixture("multihost")
        defer { fixture.directory.remove() }
        // JPEG files too (one with EXIF), so that the capture is searched for JPEG markers and EXIF bytes.
        let jpegs = ["cat/a.jpg", "cat/e_exif6.jpg"].map { fixturesDirectory() + "/keras/tree/train/" + $0 }
        var secretsOnTheWire: [(what: String, bytes: [UInt8])] = []
        for (index, source) in jpegs.enumerated() where FileManager.default.fileExists(atPath: source) {
            let name = "photo-\(index)-confidential.jpg"
            let target = fixture.train + "/" + DistributedFixture.classes[index] + "/" + name
            try FileManager.default.copyItem(atPath: source, toPath: target)
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: source)))
            secretsOnTheWire.append(("JPEG start (SOI and APP header) of \(name)", Array(bytes.prefix(24))))
            if let exif = bytes.firstRange(of: Array("Exif\0\0".utf8)) {
                secretsOnTheWire.append(
                    ("EXIF block of \(name)", Array(bytes[exif.lowerBound..<min(bytes.count, exif.lowerBound + 32)])))
            }
            secretsOnTheWire.append(("file name \(name)", Array(name.utf8)))
        }
        for name in ["img000.ppm", "img007.ppm"] {
            let path = fixture.train + "/dog/" + name
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
            secretsOnTheWire.append(("pixels of dog/\(name)", Array(bytes[(bytes.count / 2)..<(bytes.count / 2 + 32)])))
        }
        let imageCount = fixture.imageCount + jpegs.count

        // Keys: the coordinator, two allowed workers, one stranger.
        let keys = fixture.directory.file("keys")
        let authorized = keys + "/authorized"
        try FileManager.default.createDirectory(atPath: authorized, withIntermediateDirectories: true)
        for name in ["coordinator", "worker-a", "worker-b", "stranger"] {
            let made = runCommand(BuiltExecutables.coordinator, ["keygen", keys + "/" + name])
            try #require(made.status == 0, "keygen \(name): \(made.output)")
            #expect(!made.output.contains("secret-key"))
        }
        for name in ["worker-a", "worker-b"] {
            try FileManager.default.copyItem(atPath: keys + "/\(name).pub", toPath: authorized + "/\(name).pub")
        }
        let strangerPublic = try String(contentsOfFile: keys + "/stranger.pub", encoding: .utf8)
        let strangerFingerprint = try #require(
            strangerPublic.split(separator: "\"").dropFirst().first.map { String($0.prefix(12)) })

        func workerArguments(_ endpoint: String, _ label: String, keyName: String?) -> [String] {
            var arguments = [
                "--connect", endpoint, "--cache-dir", fixture.directory.file("cache-\(label)"), "--give-up-after", "30",
            ]
            if let keyName {
                arguments += ["--curve-key", keys + "/\(keyName).key", "--server-key", keys + "/coordinator.pub"]
            }
            return arguments
        }

        // --- With CURVE ---
        let port = freeTCPPort()
        let endpoint = "tcp://\(hosts.coordinatorAddress):\(port)"
        let capture = try PacketCapture(
            hosts: hosts, port: port, path: fixture.directory.file("curve.pcap"), logDirectory: fixture.directory.path)
        if capture == nil {
            print("MultiHostTests: no packet capture (tcpdump is not installed: apt-get install tcpdump)")
        }
        let coordinator = try hosts.start(
            onCoordinator: true, BuiltExecutables.coordinator,
            fixture.extractArguments(
                "curve.h5",
                [
                    "--workers", "0", "--bind", endpoint, "--shard-size", "4", "--json-progress",
                    "--curve-key", keys + "/coordinator.key", "--authorized-workers", authorized,
                ]),
            logDirectory: fixture.directory.path, label: "coordinator-curve")
        #expect(coordinator.waitForStderr("listening", timeout: 30), "coordinator:\n\(coordinator.stderr)")

        // The refused ones first, while the coordinator waits: each must find out and exit non-zero.
        let stranger = try hosts.start(
            onCoordinator: false, BuiltExecutables.worker, workerArguments(endpoint, "stranger", keyName: "stranger"),
            logDirectory: fixture.directory.path, label: "stranger")
        let keyless = try hosts.start(
            onCoordinator: false, BuiltExecutables.worker, workerArguments(endpoint, "keyless", keyName: nil),
            logDirectory: fixture.directory.path, label: "keyless")
        let refusalsStarted = Date()
        let strangerStatus = stranger.wait(timeout: 25)
        let keylessStatus = keyless.wait(timeout: 25)
        print(
            "MultiHostTests: refused workers exited after \(String(format: "%.1f", Date().timeIntervalSince(refusalsStarted))) s:\n"
                + "  unknown key: \(stranger.stderr.split(separator: "\n").last ?? "")\n"
                + "  no key:      \(keyless.stderr.split(separator: "\n").last ?? "")")
        #expect(strangerStatus != nil && strangerStatus != 0, "unknown key:\n\(stranger.stderr)")
        #expect(stranger.stderr.contains("refused this worker's key \(strangerFingerprint)"), "\(stranger.stderr)")
        #expect(keylessStatus != nil && keylessStatus != 0, "no key:\n\(keyless.stderr)")
        #expect(keyless.stderr.contains("requires CURVE"), "\(keyless.stderr)")
        #expect(
            coordinator.stderr.contains("refused worker key \(strangerFingerprint)"),
            "the coordinator logs the refused key's fingerprint:\n\(coordinator.stderr)")

        let curveStarted = Date()
        let workerA = try hosts.start(
            onCoordinator: false, BuiltExecutables.worker, workerArguments(endpoint, "a", keyName: "worker-a"),
            logDirectory: fixture.directory.path, label: "worker-a")
        let workerB = try hosts.start(
            onCoordinator: false, BuiltExecutables.worker, workerArguments(endpoint, "b", keyName: "worker-b"),
            logDirectory: fixture.directory.path, label: "worker-b")
        #expect(coordinator.wait(timeout: 180) == 0, "coordinator:\n\(coordinator.stderr)")
        let curveSeconds = Date().timeIntervalSince(curveStarted)
        #expect(workerA.wait(timeout: 15) == 0, "\(workerA.stderr)")
        #expect(workerB.wait(timeout: 15) == 0, "\(workerB.stderr)")
        let curveOutput = try FeatureSnapshot(fixture.directory.file("curve.h5"))
        #expect(curveOutput.rowCount >= fixture.imageCount, "every generated image has features: \(curveOutput)")
        let curveRate = imagesPerSecond(coordinator.stdout)

        if let capture {
            let bytes = capture.finish()
            #expect(bytes.count > 10_000, "the capture saw the job's traffic (\(bytes.count) bytes)")
            for secret in secretsOnTheWire {
                #expect(!bytes.contains(bytes: secret.bytes), "\(secret.what) crossed the link in plaintext")
            }
        }

        // --- The same job in plaintext (--insecure), for the overhead figure and to show the capture check bites ---
        let plainPort = freeTCPPort()
        let plainEndpoint = "tcp://\(hosts.coordinatorAddress):\(plainPort)"
        let plainCapture = try PacketCapture(
            hosts: hosts, port: plainPort, path: fixture.directory.file("plain.pcap"),
            logDirectory: fixture.directory.path)
        let plainCoordinator = try hosts.start(
            onCoordinator: true, BuiltExecutables.coordinator,
            fixture.extractArguments(
                "plain.h5",
                ["--workers", "0", "--bind", plainEndpoint, "--shard-size", "4", "--json-progress", "--insecure"]),
            logDirectory: fixture.directory.path, label: "coordinator-plain")
        #expect(plainCoordinator.waitForStderr("listening", timeout: 30), "coordinator:\n\(plainCoordinator.stderr)")
        let plainStarted = Date()
        let plainA = try hosts.start(
            onCoordinator: false, BuiltExecutables.worker, workerArguments(plainEndpoint, "pa", keyName: nil),
            logDirectory: fixture.directory.path, label: "plain-a")
        let plainB = try hosts.start(
            onCoordinator: false, BuiltExecutables.worker, workerArguments(plainEndpoint, "pb", keyName: nil),
            logDirectory: fixture.directory.path, label: "plain-b")
        #expect(plainCoordinator.wait(timeout: 180) == 0, "coordinator:\n\(plainCoordinator.stderr)")
        let plainSeconds = Date().timeIntervalSince(plainStarted)
        plainA.wait(timeout: 15)
        plainB.wait(timeout: 15)
        if hosts.coordinatorAddress != "127.0.0.1" {
            #expect(
                plainCoordinator.stderr.contains("WITHOUT encryption"),
                "--insecure on a non-loopback address warns on start:\n\(plainCoordinator.stderr)")
        }
        #expect(
            try FeatureSnapshot(fixture.directory.file("plain.h5")) == curveOutput,
            "CURVE changes no byte of the output")
        if let plainCapture {
            let bytes = plainCapture.finish()
            let visible = secretsOnTheWire.filter { bytes.contains(bytes: $0.bytes) && $0.what.hasPrefix("pixels") }
            #expect(!visible.isEmpty, "in plaintext the same capture does show image bytes")
        }
        let plainRate = imagesPerSecond(plainCoordinator.stdout)
        // Two figures per mode: the coordinator's own (from its start, so it includes waiting for workers) and
        // wall time from starting the two allowed workers to the coordinator's exit (same steps in both modes).
        func rate(_ value: Double?) -> String { value.map { String(format: "%.1f", $0) } ?? "?" }
        print(
            "MultiHostTests: \(imageCount) images (40×40 → 32×32), 2 workers, narrow VGG16, \(hosts.description): "
                + "CURVE \(rate(Double(imageCount) / curveSeconds)) images/s from worker start "
                + "(coordinator's figure \(rate(curveRate))), plaintext \(rate(Double(imageCount) / plainSeconds)) images/s "
                + "(coordinator's figure \(rate(plainRate)))")
    }

    @Test("a CURVE coordinator's own local workers get in with keys of their own, removed after the job")
    func localWorkersUnderCurve() throws {
        let fixture = try DistributedFixture("curve-local")
        defer { fixture.directory.remove() }
        let keys = fixture.directory.file("keys")
        try FileManager.default.createDirectory(atPath: keys + "/authorized", withIntermediateDirectories: true)
        let made = runCommand(BuiltExecutables.coordinator, ["keygen", keys + "/coordinator"])
        try #require(made.status == 0, "\(made.output)")
        let coordinator = try fixture.startCoordinator(
            fixture.extractArguments(
                "out.h5",
                [
                    "--workers", "2", "--bind", "tcp://0.0.0.0:\(freeTCPPort())", "--curve-key",
                    keys + "/coordinator.key", "--authorized-workers", keys + "/authorized",
                ]))
        #expect(coordinator.wait(timeout: 120) == 0, "coordinator:\n\(coordinator.stderr)")
        #expect(coordinator.stderr.contains("authorized (this coordinator's local workers)"), "\(coordinator.stderr)")
        #expect(try FeatureSnapshot(fixture.directory.file("out.h5")).rowCount == fixture.imageCount)
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory())) ?? []
        #expect(
            !leftovers.contains { $0.hasPrefix("bottleneck-keys-\(coordinator.pid)-") }, "local worker keys removed")
    }

    @Test("binding a non-loopback address in plaintext is refused unless --insecure is given")
    func plaintextBindRefused() throws {
        let fixture = try DistributedFixture("plaintext-bind")
        defer { fixture.directory.remove() }
        for endpoint in ["tcp://0.0.0.0:\(freeTCPPort())", "tcp://*:\(freeTCPPort())"] {
            let run = try fixture.runCoordinator(
                fixture.extractArguments("out.h5", ["--workers", "0", "--bind", endpoint]), timeout: 60)
            #expect(run.status != nil && run.status != 0, "\(endpoint) was bound:\n\(run.stderr)")
            #expect(run.stderr.contains("refusing to bind \(endpoint) without encryption"), "\(run.stderr)")
            #expect(run.stderr.contains("--insecure"))
            #expect(!FileManager.default.fileExists(atPath: fixture.directory.file("out.h5")))
        }
        // CURVE flags must come together, and a missing key file is named.
        let half = try fixture.runCoordinator(
            fixture.extractArguments(
                "out.h5",
                ["--workers", "0", "--bind", "tcp://0.0.0.0:\(freeTCPPort())", "--curve-key", "/nonexistent.key"]),
            timeout: 60)
        #expect(half.status != nil && half.status != 0)
        #expect(half.stderr.contains("--authorized-workers"), "\(half.stderr)")
    }
}
