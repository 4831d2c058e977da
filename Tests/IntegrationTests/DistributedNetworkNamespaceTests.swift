import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Two "hosts": the coordinator in one network namespace, workers in another, joined by a veth pair.
enum NetworkNamespaces {
    static let ip = "/usr/sbin/ip"

    /// Why namespaces cannot be used here, or nil when they can (root, `ip` present, `ip netns add` works).
    static let unavailableReason: String? = {
        guard getuid() == 0 else { return "network namespaces need root" }
        guard FileManager.default.isExecutableFile(atPath: ip) else { return "\(ip) is not installed" }
        let probe = "bnprobe\(getpid() % 100_000)"
        guard run(["netns", "add", probe]) == 0 else { return "`ip netns add` is not permitted on this machine" }
        _ = run(["netns", "del", probe])
        return nil
    }()

    @discardableResult
    static func run(_ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ip)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }
}

@Suite(
    "Distributed extraction across hosts",
    .enabled(if: BuiltExecutables.available, "needs the built executables"),
    .disabled(
        if: NetworkNamespaces.unavailableReason != nil,
        Comment(rawValue: "skipped: \(NetworkNamespaces.unavailableReason ?? "")")))
struct DistributedNetworkNamespaceTests {
    @Test("coordinator and workers in separate network namespaces over veth produce the same output")
    func separateHosts() throws {
        let fixture = try DistributedFixture("netns")
        defer { fixture.directory.remove() }
        let reference = try fixture.runCoordinator(fixture.extractArguments("reference.h5", ["--workers", "1"]))
        #expect(reference.status == 0, "\(reference.stderr)")

        let tag = String(format: "%05d", Int(getpid()) % 100_000) + String(UUID().uuidString.prefix(3)).lowercased()
        let coordinatorNS = "bnc\(tag)"
        let workerNS = "bnw\(tag)"
        let subnet = "10.231.\(Int.random(in: 1...250))"
        defer {
            NetworkNamespaces.run(["netns", "del", coordinatorNS])
            NetworkNamespaces.run(["netns", "del", workerNS])
        }
        for step in [
            ["netns", "add", coordinatorNS], ["netns", "add", workerNS],
            ["link", "add", "vc\(tag)", "type", "veth", "peer", "name", "vw\(tag)"],
            ["link", "set", "vc\(tag)", "netns", coordinatorNS], ["link", "set", "vw\(tag)", "netns", workerNS],
            ["-n", coordinatorNS, "addr", "add", "\(subnet).1/24", "dev", "vc\(tag)"],
            ["-n", workerNS, "addr", "add", "\(subnet).2/24", "dev", "vw\(tag)"],
            ["-n", coordinatorNS, "link", "set", "vc\(tag)", "up"], ["-n", workerNS, "link", "set", "vw\(tag)", "up"],
            ["-n", coordinatorNS, "link", "set", "lo", "up"], ["-n", workerNS, "link", "set", "lo", "up"],
        ] {
            try #require(NetworkNamespaces.run(step) == 0, "ip \(step.joined(separator: " "))")
        }

        let endpoint = "tcp://\(subnet).1:5555"
        let coordinator = try ChildProcess(
            NetworkNamespaces.ip,
            ["netns", "exec", coordinatorNS, BuiltExecutables.coordinator]
                + fixture.extractArguments(
                    "out.h5", ["--workers", "0", "--bind", endpoint, "--shard-size", "3", "--insecure"]),
            logDirectory: fixture.directory.path, label: "coordinator")
        #expect(coordinator.waitForStderr("listening for workers", timeout: 30), "\(coordinator.stderr)")
        let workers = try (0..<2).map { index in
            try ChildProcess(
                NetworkNamespaces.ip,
                [
                    "netns", "exec", workerNS, BuiltExecutables.dev, "worker", "--connect", endpoint, "--cache-dir",
                    fixture.directory.file("cache-ns-\(index)"), "--give-up-after", "20", "--shard-delay-ms", "20",
                ],
                logDirectory: fixture.directory.path, label: "worker-\(index)")
        }
        #expect(coordinator.wait(timeout: 120) == 0, "coordinator:\n\(coordinator.stderr)")
        for worker in workers { #expect(worker.wait(timeout: 30) == 0, "worker:\n\(worker.stderr)") }
        #expect(
            try FeatureSnapshot(fixture.directory.file("out.h5"))
                == FeatureSnapshot(fixture.directory.file("reference.h5")))
    }
}
