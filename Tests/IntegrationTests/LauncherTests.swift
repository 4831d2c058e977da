import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The repository's root (for deploy/), from this file's place in it.
private let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

private func executable(_ path: String) -> Bool { FileManager.default.isExecutableFile(atPath: path) }

/// Runs a program to its end (bounded), returning its status and output.
@discardableResult
private func run(
    _ program: String, _ arguments: [String], in directory: String, environment: [String: String] = [:],
    timeout: Double = 60
) throws -> (status: Int32?, stdout: String, stderr: String) {
    let child = try ChildProcess(
        program, arguments, logDirectory: directory, label: URL(fileURLWithPath: program).lastPathComponent,
        environment: environment)
    let status = child.wait(timeout: timeout)
    return (status, child.stdout, child.stderr)
}

/// A daemon run in the foreground by the test, started with posix_spawn (not `Process`: these daemons close the
/// descriptors they inherit, which `Process` takes for their exit and then waits on them, blocking every other
/// child's reaping). Output goes to `log`; `stop()` sends SIGTERM, then SIGKILL, and reaps it.
private final class Daemon {
    let pid: pid_t
    let log: String

    init(_ program: String, _ arguments: [String], log: String, environment: [String: String] = [:]) throws {
        self.log = log
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([program] + arguments).map { strdup($0) } + [nil]
        let merged = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let envp = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var child: pid_t = 0
        let status = posix_spawn(&child, program, &actions, nil, argv, envp)
        guard status == 0 else {
            throw SetupError(what: "cannot start \(program): \(String(cString: strerror(status)))")
        }
        pid = child
    }

    var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    func stop() {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        let exited = waitUntil(timeout: 10) { waitpid(pid, &status, WNOHANG) == pid }
        if !exited {
            kill(pid, SIGKILL)
            waitpid(pid, &status, 0)
        }
    }
}

/// A one-node Slurm cluster on 127.0.0.1, owned by the test: munged, slurmctld and slurmd in the foreground with
/// a configuration, state and sockets under `directory`; `stop()` ends them.
private final class SlurmCluster {
    static let programs = ["/usr/sbin/munged", "/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/bin/sbatch"]
    static var available: Bool { getuid() == 0 && programs.allSatisfy(executable) }
    static let skipReason: Comment =
        "needs root and Debian's slurm-wlm and munge (slurmctld, slurmd, munged, sbatch); .ci/run installs them"

    let directory: String
    let configuration: String
    let nodeName = "bn1"
    private var daemons: [Daemon] = []

    init(directory: String) throws {
        self.directory = directory
        configuration = directory + "/slurm.conf"
        for sub in ["state", "spool"] {
            try FileManager.default.createDirectory(atPath: directory + "/" + sub, withIntermediateDirectories: true)
        }
        let key = directory + "/munge.key"
        try Data((0..<1024).map { _ in UInt8.random(in: 0...255) }).write(to: URL(fileURLWithPath: key))
        chmod(key, 0o400)
        let cpus = ProcessInfo.processInfo.activeProcessorCount
        // slurmctld runs only where SlurmctldHost names this host.
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, name.count)
        let host = String(cString: name).split(separator: ".").first.map(String.init) ?? "localhost"
        let text = """
            ClusterName=bottlenecktest
            SlurmctldHost=\(host)(127.0.0.1)
            SlurmctldPort=\(freeTCPPort())
            SlurmdPort=\(freeTCPPort())
            AuthType=auth/munge
            AuthInfo=socket=\(directory)/munge.sock
            CredType=cred/munge
            SlurmUser=root
            SlurmdUser=root
            StateSaveLocation=\(directory)/state
            SlurmdSpoolDir=\(directory)/spool
            SlurmctldPidFile=\(directory)/slurmctld.pid
            SlurmdPidFile=\(directory)/slurmd.pid
            ProctrackType=proctrack/linuxproc
            TaskPlugin=task/none
            JobAcctGatherType=jobacct_gather/none
            AccountingStorageType=accounting_storage/none
            SchedulerType=sched/builtin
            SelectType=select/cons_tres
            SelectTypeParameters=CR_CPU
            MpiDefault=none
            ReturnToService=2
            SlurmctldLogFile=\(directory)/slurmctld.log
            SlurmdLogFile=\(directory)/slurmd.log
            NodeName=\(nodeName) NodeAddr=127.0.0.1 CPUs=\(cpus) State=UNKNOWN
            PartitionName=test Nodes=\(nodeName) Default=YES MaxTime=INFINITE State=UP

            """
        try text.write(toFile: configuration, atomically: true, encoding: .utf8)
        daemons.append(
            try Daemon(
                "/usr/sbin/munged",
                [
                    "--foreground", "--force", "--key-file=\(key)", "--socket=\(directory)/munge.sock",
                    "--pid-file=\(directory)/munged.pid", "--log-file=\(directory)/munged.log",
                    "--seed-file=\(directory)/munge.seed",
                ], log: directory + "/munged.out"))
        _ = waitUntil(timeout: 10) { FileManager.default.fileExists(atPath: directory + "/munge.sock") }
        daemons.append(
            try Daemon(
                "/usr/sbin/slurmctld", ["-D", "-i", "-f", configuration], log: directory + "/slurmctld.out",
                environment: environment))
        daemons.append(
            try Daemon(
                "/usr/sbin/slurmd", ["-D", "-N", nodeName, "-f", configuration], log: directory + "/slurmd.out",
                environment: environment))
    }

    var environment: [String: String] { ["SLURM_CONF": configuration] }

    /// Waits until the node is idle (`sinfo`), so that a job can start.
    func waitUntilReady() -> Bool {
        waitUntil(timeout: 60) {
            Thread.sleep(forTimeInterval: 0.3)
            let state = try? run(
                "/usr/bin/sinfo", ["-h", "-o", "%t"], in: directory, environment: environment, timeout: 10)
            return state?.stdout.contains("idle") == true
        }
    }

    func log(_ name: String) -> String {
        (try? String(contentsOfFile: directory + "/" + name, encoding: .utf8)) ?? ""
    }

    func stop() {
        for daemon in daemons.reversed() { daemon.stop() }
        daemons = []
    }
}

/// `sshd` on a loopback port with key authentication only, configured by the test.
private final class SSHServer {
    static var available: Bool {
        getuid() == 0
            && [
                "/usr/sbin/sshd", "/usr/bin/ssh", "/usr/bin/scp", "/usr/bin/ssh-keygen", "/usr/lib/openssh/sftp-server",
            ]
            .allSatisfy(executable)
    }
    static let skipReason: Comment =
        "needs root and openssh-server / openssh-client (sshd, ssh, scp, ssh-keygen); .ci/run installs them"

    let directory: String
    let port = freeTCPPort()
    let clientKey: String
    private var daemon: Daemon?

    init(directory: String) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        clientKey = directory + "/client_key"
        for key in [directory + "/host_key", clientKey] {
            let made = try run("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key], in: directory)
            guard made.status == 0 else { throw SetupError(what: "ssh-keygen: \(made.stderr)") }
        }
        try FileManager.default.copyItem(atPath: clientKey + ".pub", toPath: directory + "/authorized_keys")
        // sshd's privilege separation directory.
        try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        let configuration = directory + "/sshd_config"
        try """
        Port \(port)
        ListenAddress 127.0.0.1
        HostKey \(directory)/host_key
        PidFile \(directory)/sshd.pid
        AuthorizedKeysFile \(directory)/authorized_keys
        PubkeyAuthentication yes
        PasswordAuthentication no
        KbdInteractiveAuthentication no
        PermitRootLogin prohibit-password
        StrictModes no
        UsePAM no
        Subsystem sftp /usr/lib/openssh/sftp-server

        """.write(toFile: configuration, atomically: true, encoding: .utf8)
        daemon = try Daemon("/usr/sbin/sshd", ["-D", "-e", "-f", configuration], log: directory + "/sshd.out")
    }

    /// ssh options that reach this server with the client key, for `BOTTLENECK_SSH_OPTS`.
    var sshOptions: String {
        "-o Port=\(port) -i \(clientKey) -o StrictHostKeyChecking=no -o UserKnownHostsFile=\(directory)/known_hosts "
            + "-o IdentitiesOnly=yes"
    }

    var log: String { daemon?.output ?? "" }

    func stop() {
        daemon?.stop()
        daemon = nil
    }
}

private struct SetupError: Error, CustomStringConvertible {
    let what: String
    var description: String { what }
}

@Suite(
    "Real launchers: Slurm", .serialized,
    .enabled(if: BuiltExecutables.available && SlurmCluster.available, SlurmCluster.skipReason))
struct SlurmLauncherTests {
    @Test("bottleneck.sbatch with two tasks on a one-node cluster writes the bytes of a local run")
    func sbatchOnOneNode() throws {
        let fixture = try DistributedFixture("slurm", imagesPerClass: 4, validationPerClass: 2)
        defer { fixture.directory.remove() }
        let cluster = try SlurmCluster(directory: fixture.directory.file("slurm"))
        defer { cluster.stop() }
        try #require(
            cluster.waitUntilReady(),
            "the node did not come up:\n\(cluster.log("slurmctld.log"))\n\(cluster.log("slurmd.log"))")

        // The script's defaults (image size 150, block5_pool) on both sides.
        let local = try fixture.runCoordinator(
            [
                "extract", "--train", fixture.train, "--validation", fixture.validation, "--weights", fixture.weights,
                "--output", fixture.directory.file("local.h5"), "--workers", "1", "--cache-dir",
                fixture.directory.file("cache"),
            ], timeout: 300)
        #expect(local.status == 0, "\(local.stderr)")

        let output = fixture.directory.file("slurm.h5")
        let submitted = try run(
            "/usr/bin/sbatch",
            [
                "--wait", "--nodes=1", "--ntasks=2", "--ntasks-per-node=2", "--chdir=\(fixture.directory.path)",
                "--output=\(fixture.directory.path)/slurm-%j.out", repositoryRoot + "/deploy/slurm/bottleneck.sbatch",
                fixture.directory.path, output, fixture.weights,
            ], in: fixture.directory.path,
            environment: cluster.environment.merging([
                "BOTTLENECK_BIN": BuiltExecutables.directory, "BOTTLENECK_ADDR": "127.0.0.1",
                "BOTTLENECK_PORT": String(freeTCPPort()), "XDG_CACHE_HOME": fixture.directory.file("worker-cache"),
            ]) { $1 }, timeout: 300)
        let jobLog = ((try? FileManager.default.contentsOfDirectory(atPath: fixture.directory.path)) ?? [])
            .filter { $0.hasPrefix("slurm-") && $0.hasSuffix(".out") }
            .compactMap { try? String(contentsOfFile: fixture.directory.file($0), encoding: .utf8) }.joined()
        #expect(submitted.status == 0, "sbatch: \(submitted.stderr)\njob log:\n\(jobLog)\n\(cluster.log("slurmd.log"))")
        #expect(jobLog.contains("1 worker(s)"), "\(jobLog)")
        #expect(
            try Data(contentsOf: URL(fileURLWithPath: output))
                == Data(contentsOf: URL(fileURLWithPath: fixture.directory.file("local.h5"))),
            "the Slurm job's feature file differs from the local run's:\n\(jobLog)")
    }
}

@Suite(
    "Real launchers: ssh", .serialized,
    .enabled(if: BuiltExecutables.available && SSHServer.available, SSHServer.skipReason))
struct SSHLauncherTests {
    @Test("bottleneck-workers starts, reports and stops a worker through a real sshd with key authentication")
    func launcherAgainstSSHD() throws {
        let fixture = try DistributedFixture("ssh", imagesPerClass: 4, validationPerClass: 1)
        defer { fixture.directory.remove() }
        let server = try SSHServer(directory: fixture.directory.file("sshd"))
        defer { server.stop() }
        let keys = fixture.directory.file("keys")
        try FileManager.default.createDirectory(atPath: keys + "/authorized", withIntermediateDirectories: true)
        for name in ["coordinator", "127.0.0.1"] {
            #expect(
                try run(BuiltExecutables.coordinator, ["keygen", keys + "/" + name], in: fixture.directory.path).status
                    == 0)
        }
        try FileManager.default.copyItem(atPath: keys + "/127.0.0.1.pub", toPath: keys + "/authorized/127.0.0.1.pub")
        let hosts = fixture.directory.file("hosts.txt")
        try "# the test's sshd\nroot@127.0.0.1\n".write(toFile: hosts, atomically: true, encoding: .utf8)
        let launcher = repositoryRoot + "/deploy/ssh/bottleneck-workers"
        let environment = [
            "BOTTLENECK_SSH_OPTS": server.sshOptions, "BOTTLENECK_REMOTE_DIR": fixture.directory.file("remote"),
        ]
        #expect(waitUntil(timeout: 10) { server.log.contains("Server listening") }, "sshd: \(server.log)")

        let port = freeTCPPort()
        let start = try run(
            "/bin/bash",
            [
                launcher, "start", hosts, "tcp://127.0.0.1:\(port)", "--copy-binary", BuiltExecutables.worker,
                "--copy-key", keys, "--threads", "1",
            ], in: fixture.directory.path, environment: environment)
        try #require(start.status == 0, "start: \(start.stdout)\(start.stderr)\nsshd: \(server.log)")
        #expect(start.stdout.contains("root@127.0.0.1: started (pid "), "\(start.stdout)")

        let job = try fixture.runCoordinator(
            fixture.extractArguments(
                "ssh.h5",
                [
                    "--workers", "0", "--bind", "tcp://127.0.0.1:\(port)", "--curve-key", keys + "/coordinator.key",
                    "--authorized-workers", keys + "/authorized",
                ]), timeout: 180)
        #expect(job.status == 0, "\(job.stderr)")
        let reference = try fixture.runCoordinator(fixture.extractArguments("reference.h5", ["--workers", "1"]))
        #expect(reference.status == 0, "\(reference.stderr)")
        #expect(
            try FeatureSnapshot(fixture.directory.file("ssh.h5"))
                == FeatureSnapshot(fixture.directory.file("reference.h5")))

        let status = try run(
            "/bin/bash", [launcher, "status", hosts], in: fixture.directory.path, environment: environment)
        #expect(status.status == 0 && status.stdout.contains("running (pid "), "\(status.stdout)\(status.stderr)")
        let stop = try run(
            "/bin/bash", [launcher, "stop", hosts], in: fixture.directory.path, environment: environment)
        #expect(stop.status == 0 && stop.stdout.contains("stopped (pid "), "\(stop.stdout)\(stop.stderr)")
        let after = try run(
            "/bin/bash", [launcher, "status", hosts], in: fixture.directory.path, environment: environment)
        #expect(after.status == 1 && after.stdout.contains("stopped"), "\(after.stdout)")
    }
}
