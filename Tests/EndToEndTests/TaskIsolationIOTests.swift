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
        try cluster.startWorker(port: 7792)  // no --listen: ds-logs falls back to files on this machine
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

    func testMaxLogSizeFlagRefusesNonsense() throws {
        for bad in ["0", "-1", "1X", "", "K", "1.5G", "99999999999999999999"] {
            let run = try cluster.run("ds-worker", ["--max-log-size", bad])
            XCTAssertEqual(run.status, 64, bad)
            XCTAssertTrue(run.stderr.contains("--max-log-size"), "\(bad): \(run.stderr)")
        }
        let help = try cluster.run("ds-worker", ["--help"])
        XCTAssertTrue(help.stdout.contains("--max-log-size"), help.stdout)
    }
}
