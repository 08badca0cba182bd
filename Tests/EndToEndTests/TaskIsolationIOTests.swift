import Foundation
import Shared
import XCTest

/// Issue 22, logs and descriptors: what a hostile task can do to the logs, the disk and the
/// worker's HTTP port, against real daemons, ZooKeeper, SQLite and a real tmpfs.
final class TaskIsolationIOTests: ClusterTestCase {
    /// The folder of this worker's logs (`--log-dir` plus its identity).
    func workerLogs(_ port: Int) -> String { cluster.logDirectory + "/127.0.0.1:\(port)" }

    func attempts(_ instance: Int64) async throws -> [String: TaskInstanceRecord] {
        Dictionary(try await cluster.store().taskAttempts(of: instance).map { ($0.taskName, $0) }) { a, _ in a }
    }

    /// A workflow whose first task plants something at the log path of the task after it (the ids
    /// follow each other in a fresh database: checked below), then that task.
    func plantingWorkflow(_ name: String, plant: String) -> String {
        let dir = "\(cluster.logDirectory)/127.0.0.1:7791/$DS_WORKFLOW_INSTANCE_ID"
        let path = "\(dir)/$((DS_TASK_INSTANCE_ID + 1)).log"
        return #"{"name":"\#(name)","tasks":[{"name":"plant","command":"\#(plant) \#(path)"},"#
            + #"{"name":"victim","deps":["plant"],"command":"echo victim output"}]}"#
    }

    /// A FIFO at the next task's log path used to hang the supervisor in open(): the worker claimed
    /// and started nothing, and stop did nothing. Now the attempt fails with the reason, at once,
    /// and the worker runs the next workflow. A symbolic link there used to send the next task's
    /// output (and ds's own lines) to its target; now the attempt fails and the target stays empty.
    func testFIFOOrSymlinkAtTheNextLogPathFailsThatAttemptAndNeverBlocks() async throws {
        try cluster.startMaster()
        try cluster.startWorker(port: 7791)
        let target = cluster.directory.appendingPathComponent("elsewhere.txt").path
        FileManager.default.createFile(atPath: target, contents: nil)
        for (name, plant) in [("fifo", "mkfifo"), ("symlink", "ln -s \(target)")] {
            let instance = try cluster.submit(plantingWorkflow(name, plant: plant))
            let end = try await cluster.waitForEnd(instance, timeout: 120)
            XCTAssertEqual(end, .failure, name)
            let tasks = try await attempts(instance)
            let plantID = try XCTUnwrap(tasks["plant"]?.id), victim = try XCTUnwrap(tasks["victim"])
            XCTAssertEqual(victim.id, plantID + 1, "the planted path was the victim's")
            XCTAssertEqual(tasks["plant"]?.state, .success, name)
            XCTAssertEqual(victim.state, .failure, name)
            XCTAssertTrue(victim.message?.contains("something is already at that path") ?? false, "\(name): \(victim.message ?? "nil")")
            let show = try cluster.run("ds-instance", ["show", String(instance)])
            XCTAssertTrue(show.stdout.contains("something is already at that path"), "\(name): \(show.stdout)")
            // What was planted is untouched, and nothing went through it.
            let planted = "\(workerLogs(7791))/\(instance)/\(victim.id!).log"
            var st = stat()
            XCTAssertEqual(lstat(planted, &st), 0)
            XCTAssertEqual(st.st_mode & S_IFMT, name == "fifo" ? S_IFIFO : S_IFLNK, name)
        }
        XCTAssertEqual(try String(contentsOfFile: target, encoding: .utf8), "", "no output through the link")
        XCTAssertTrue(cluster.daemonLogs().contains("something is already at that path"), "the worker logs why")
        // The worker is not stuck: the next workflow runs.
        let next = try cluster.submit(#"{"name":"after","tasks":[{"name":"a","command":"echo fine"}]}"#)
        let after = try await cluster.waitForEnd(next, timeout: 120)
        XCTAssertEqual(after, .success)
    }

    /// A forged `/results/<id>` naming `/etc/shadow` as the log: `ds-logs` used to print that file.
    /// It reads local files only under its log root, at the path the worker writes for that id.
    func testForgedResultLogPathIsNeverRead() async throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 4, port: 7792)  // no --listen: ds-logs falls back to files on this machine
        let secret = cluster.directory.appendingPathComponent("shadow").path
        try "root:SECRET-HASH:19000:0:99999:7:::\n".write(toFile: secret, atomically: true, encoding: .utf8)
        let zk = try await cluster.client()
        defer { zk.close() }
        for path in ["/etc/shadow", secret, cluster.logDirectory + "/127.0.0.1:7792/../../shadow"] {
            let instance = try cluster.submit(#"{"name":"forged","tasks":[{"name":"a","command":"sleep 30"}]}"#)
            let id = try await taskID(instance, "a")
            try await eventually("the task runs") { try await self.cluster.store().attemptRecord(id)?.state == .running }
            let forged = TaskResultMessage(taskInstanceId: id, state: .success, exitCode: 0, worker: "127.0.0.1:7792", pid: 1,
                                           logPath: path, startTime: ProcessStats.now(), endTime: ProcessStats.now(),
                                           outputs: [:], message: nil)
            _ = try await zk.create(cluster.paths.result(id), data: WireJSON.encode(forged))
            try await eventually("the master stores the forged result") {
                try await self.cluster.store().attemptRecord(id)?.logPath == path
            }
            let logs = try cluster.run("ds-logs", [String(id)])
            XCTAssertNotEqual(logs.status, 0, "\(path): \(logs.stdout)")
            XCTAssertFalse(logs.stdout.contains("root:"), "\(path): printed \(logs.stdout)")
            XCTAssertTrue(logs.stderr.contains("not read here"), "\(path): \(logs.stderr)")
        }
    }

    /// A task printing far past `--max-log-size`: one marker line, a log of about the cap, the
    /// task itself SUCCESS (it never blocked on a full pipe), and its output parameter printed
    /// before the cap still reaches the next task.
    func testTaskPastMaxLogSizeKeepsRunningWithABoundedLog() async throws {
        try cluster.startMaster()
        try cluster.startWorker(port: 7793, ["--max-log-size", "64K"])
        let flood = #"echo '${setValue(rows=7)}'; yes ds-flood-line | head -c 30000000; echo done > \#(cluster.directory.path)/flood-done"#
        let instance = try cluster.submit(#"{"name":"flood","params":{"rows":"0"},"tasks":[{"name":"a","command":"\#(flood)"},"#
                                          + #"{"name":"b","deps":["a"],"command":"echo rows=${rows}"}]}"#)
        let end = try await cluster.waitForEnd(instance, timeout: 180)
        XCTAssertEqual(end, .success)
        XCTAssertTrue(FileManager.default.fileExists(atPath: cluster.directory.path + "/flood-done"), "the task ran to its end")
        let tasks = try await attempts(instance)
        let a = try XCTUnwrap(tasks["a"]), b = try XCTUnwrap(tasks["b"])
        let log = try Data(contentsOf: URL(fileURLWithPath: "\(workerLogs(7793))/\(instance)/\(a.id!).log"))
        XCTAssertLessThanOrEqual(log.count, 64 * 1024 + 200, "the log is bounded")
        XCTAssertGreaterThanOrEqual(log.count, 64 * 1024, "the log is filled up to the cap")
        let text = String(decoding: log, as: UTF8.self)
        XCTAssertEqual(text.components(separatedBy: "[ds] log exceeds --max-log-size").count - 1, 1, "one marker line")
        let bLog = try String(contentsOfFile: "\(workerLogs(7793))/\(instance)/\(b.id!).log", encoding: .utf8)
        XCTAssertEqual(bLog, "rows=7\n", "the output parameter still works")
    }

    /// Relaying is non-blocking and fair: a task printing without end (past the cap, so read and
    /// dropped) holds up neither the supervisor's loop nor other tasks, which start, print and end
    /// meanwhile; a stop still ends the flooding task.
    func testAnEndlessFloodHoldsUpNeitherOtherTasksNorAStop() async throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 4, port: 7797, ["--max-log-size", "512K"])
        let flood = try cluster.submit(#"{"name":"flood","tasks":[{"name":"a","command":"yes ds-flood-line"}]}"#)
        let a = try await taskID(flood, "a")
        try await eventually("the flood runs") { try await self.cluster.store().attemptRecord(a)?.state == .running }
        for n in 1...3 {
            let quiet = try cluster.submit(#"{"name":"quiet\#(n)","tasks":[{"name":"b","command":"echo hello \#(n)"}]}"#)
            let end = try await cluster.waitForEnd(quiet, timeout: 120)
            XCTAssertEqual(end, .success)
            let b = try await taskID(quiet, "b")
            XCTAssertEqual(try String(contentsOfFile: "\(workerLogs(7797))/\(quiet)/\(b).log", encoding: .utf8), "hello \(n)\n")
        }
        let stop = try cluster.run("ds-instance", ["stop", String(flood), "--wait"])
        XCTAssertEqual(stop.status, 0, stop.stderr)
        let log = try Data(contentsOf: URL(fileURLWithPath: "\(workerLogs(7797))/\(flood)/\(a).log"))
        XCTAssertLessThanOrEqual(log.count, 512 * 1024 + 200)
    }

    func testMaxLogSizeFlagRefusesNonsense() throws {
        for bad in ["0", "-1", "1X", "", "K", "1.5G", "99999999999999999999"] {
            let run = try cluster.run("ds-worker", ["--max-log-size", bad])
            XCTAssertEqual(run.status, 64, bad)
            XCTAssertTrue(run.stderr.contains("--max-log-size"), "\(bad): \(run.stderr)")
        }
        let help = try cluster.run("ds-worker", ["--help"])
        XCTAssertTrue(help.stdout.contains("--max-log-size"), help.stdout)
    }

    /// The worker's `/healthz`: its status and body.
    func health(_ address: String) async throws -> (status: Int, body: String) { try await get(address, "/healthz") }

    /// A log folder on a full disk used to make every task fail "exited with status 1" with an
    /// empty log, the worker saying nothing and `/healthz` ok. Now: the reason on the attempt and
    /// in the worker's log, `/healthz` 503 with it, and ok again once a log is written.
    func testFullLogFolderFailsTasksWithTheReasonAndHealthzUntilALogIsWritten() async throws {
        guard geteuid() == 0 else { throw XCTSkip("mounting a tmpfs needs root") }
        try FileManager.default.createDirectory(atPath: cluster.logDirectory, withIntermediateDirectories: true)
        let mount = try cluster.run("/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", cluster.logDirectory])
        guard mount.status == 0 else { throw XCTSkip("cannot mount a tmpfs here: \(mount.stderr)") }
        let folder = cluster.logDirectory
        // Before the cluster's own teardown removes the folder (its daemons may still hold it).
        addTeardownBlock { _ = try? Process.run(URL(fileURLWithPath: "/bin/umount"), arguments: ["-l", folder]).waitUntilExit() }
        try cluster.startMaster()
        try cluster.startWorker(port: 7794, ["--listen", "127.0.0.1:0"])
        let address = try await listenAddress(under: cluster.paths.workerGroup("default"))
        let first = try await health(address)
        XCTAssertEqual(first.status, 200, first.body)

        let full = try cluster.submit(#"{"name":"full","tasks":[{"name":"a","command":"head -c 3000000 /dev/zero; echo unreachable"}]}"#)
        let end = try await cluster.waitForEnd(full, timeout: 120)
        XCTAssertEqual(end, .failure)
        let found = try await attempts(full)
        let a = try XCTUnwrap(found["a"])
        let message = a.message ?? ""
        XCTAssertTrue(message.contains("could not be written: No space left on device"), message)
        XCTAssertFalse(message.contains("exited with status"), message)
        let sick = try await health(address)
        XCTAssertEqual(sick.status, 503, sick.body)
        XCTAssertTrue(sick.body.contains("No space left on device"), sick.body)
        XCTAssertTrue(cluster.daemonLogs().contains("No space left on device"), "the worker logs why")

        // Room again: the next log is written, and the worker is healthy again.
        try FileManager.default.removeItem(atPath: workerLogs(7794) + "/\(full)")
        let next = try cluster.submit(#"{"name":"recovered","tasks":[{"name":"a","command":"echo recovered"}]}"#)
        let after = try await cluster.waitForEnd(next, timeout: 120)
        XCTAssertEqual(after, .success)
        try await eventually("/healthz is ok again") { try await self.health(address).status == 200 }

        // A read-only log folder: the log cannot be created; the same reason, the same recovery.
        let readOnly = try cluster.run("/bin/mount", ["-o", "remount,ro", folder])
        XCTAssertEqual(readOnly.status, 0, readOnly.stderr)
        let refused = try cluster.submit(#"{"name":"ro","tasks":[{"name":"a","command":"echo never"}]}"#)
        let refusedEnd = try await cluster.waitForEnd(refused, timeout: 120)
        XCTAssertEqual(refusedEnd, .failure)
        let roMessage = try await attempts(refused)["a"]?.message ?? ""
        XCTAssertTrue(roMessage.contains("could not be created: Read-only file system"), roMessage)
        let roHealth = try await health(address)
        XCTAssertEqual(roHealth.status, 503, roHealth.body)
        XCTAssertTrue(roHealth.body.contains("Read-only file system"), roHealth.body)
        let writable = try cluster.run("/bin/mount", ["-o", "remount,rw", folder])
        XCTAssertEqual(writable.status, 0, writable.stderr)
        let again = try cluster.submit(#"{"name":"rw","tasks":[{"name":"a","command":"echo again"}]}"#)
        let againEnd = try await cluster.waitForEnd(again, timeout: 120)
        XCTAssertEqual(againEnd, .success)
        try await eventually("/healthz is ok again") { try await self.health(address).status == 200 }
    }

    /// 5,000 idle connections to the worker's HTTP port: those past the server's cap are closed at
    /// accept, so the worker's descriptors stay few, a workflow runs meanwhile, and `/healthz`
    /// answers afterwards. (The daemons start with this process's descriptor limit; the worker
    /// raises its own.)
    func testFiveThousandIdleConnectionsWhileAWorkflowRuns() async throws {
        try cluster.startMaster()
        let worker = try cluster.startWorker(port: 7795, ["--listen", "127.0.0.1:0"])
        let address = try await listenAddress(under: cluster.paths.workerGroup("default"))
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        guard limit.rlim_max >= 6000 else { throw XCTSkip("this test needs 6000 descriptors; the hard limit is \(limit.rlim_max)") }
        let saved = limit
        // The connections are held by a process of their own (perl, in every Debian), not by this
        // one: its own clients must not run with thousands of descriptors open.
        let parts = address.split(separator: ":")
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/perl")
        holder.arguments = ["-MSocket", "-MFcntl", "-e", #"""
            $| = 1; my @held;
            for (1..5000) {
                socket(my $fh, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
                fcntl($fh, F_SETFL, O_NONBLOCK) or die "fcntl: $!";
                connect($fh, pack_sockaddr_in($ARGV[1], inet_aton($ARGV[0])));
                push @held, $fh;
            }
            print "holding " . scalar(@held) . "\n";
            <STDIN>;
            """#, String(parts[0]), String(parts[1])]
        let toHolder = Pipe(), fromHolder = Pipe()
        holder.standardInput = toHolder
        holder.standardOutput = fromHolder
        // Up to the hard limit for the holder only, which inherits it.
        limit.rlim_cur = limit.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        try holder.run()
        var back = saved
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &back)
        defer {
            try? toHolder.fileHandleForWriting.close()
            holder.waitUntilExit()
        }
        var said = Data()
        while !said.contains(0x0a) {
            let more = fromHolder.fileHandleForReading.availableData
            if more.isEmpty { break }
            said.append(more)
        }
        XCTAssertEqual(String(decoding: said, as: UTF8.self), "holding 5000\n")
        let instance = try cluster.submit(#"{"name":"busy","tasks":[{"name":"a","command":"echo one"},"#
                                          + #"{"name":"b","deps":["a"],"command":"echo two"},{"name":"c","deps":["b"],"command":"ulimit -n"}]}"#)
        let end = try await cluster.waitForEnd(instance, timeout: 180)
        XCTAssertEqual(end, .success)
        // The worker raised its own limit, not its tasks': they get the one it started with.
        let c = try await taskID(instance, "c")
        XCTAssertEqual(try String(contentsOfFile: "\(workerLogs(7795))/\(instance)/\(c).log", encoding: .utf8), "\(saved.rlim_cur)\n")
        let open = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(worker.processIdentifier)/fd")) ?? []).count
        XCTAssertLessThan(open, 1500, "connections past the cap are closed at accept")
        try toHolder.fileHandleForWriting.close()
        holder.waitUntilExit()
        try await eventually("/healthz answers") { try await self.health(address).status == 200 }
    }

    /// A task's descriptor limit is set last in its child, after the supervisor's descriptors are
    /// closed: set first (as it was), the supervisor's two per running task counted against it,
    /// and with 40 tasks at once under a soft limit of 64 new ones failed "Too many open files".
    func testManyTasksAtOnceStartUnderALowDescriptorLimit() async throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 40, port: 7797, prefix: ["/bin/sh", "-c", #"ulimit -Sn 64 && exec "$0" "$@""#])
        let tasks = (1...40).map { #"{"name":"t\#($0)","command":"sleep 2; ulimit -n"}"# }.joined(separator: ",")
        let instance = try cluster.submit(#"{"name":"wide","tasks":[\#(tasks)]}"#)
        let end = try await cluster.waitForEnd(instance, timeout: 180)
        let found = try await attempts(instance)
        XCTAssertEqual(end, .success, found.values.compactMap(\.message).sorted().prefix(3).joined(separator: "; "))
        XCTAssertEqual(found.count, 40)
        let t1 = try XCTUnwrap(found["t1"]?.id)
        XCTAssertEqual(try String(contentsOfFile: "\(workerLogs(7797))/\(instance)/\(t1).log", encoding: .utf8), "64\n",
                       "the task gets the limit the worker started with")
    }

    /// Whatever the umask: the database and its -wal/-shm 0600, log folders 0750, logs 0640.
    func testFileModesWhateverTheUmask() async throws {
        let old = umask(0)
        defer { umask(old) }
        try cluster.startMaster()
        try cluster.startWorker(port: 7796)
        let instance = try cluster.submit(#"{"name":"modes","tasks":[{"name":"a","command":"echo hi"}]}"#)
        let end = try await cluster.waitForEnd(instance, timeout: 120)
        XCTAssertEqual(end, .success)
        let found = try await attempts(instance)
        let a = try XCTUnwrap(found["a"])
        func mode(_ path: String) -> mode_t? {
            var st = stat()
            return lstat(path, &st) == 0 ? st.st_mode & 0o7777 : nil
        }
        let db = cluster.databasePath
        XCTAssertEqual(mode(db), 0o600, "database")
        for suffix in ["-wal", "-shm"] {
            XCTAssertEqual(mode(db + suffix), 0o600, "database\(suffix)")
        }
        XCTAssertEqual(mode(workerLogs(7796)), 0o750, "the worker's log folder")
        XCTAssertEqual(mode(workerLogs(7796) + "/\(instance)"), 0o750, "the instance's log folder")
        XCTAssertEqual(mode(workerLogs(7796) + "/\(instance)/\(a.id!).log"), 0o640, "the log")
    }
}
