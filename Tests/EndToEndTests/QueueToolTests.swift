import Foundation
import Shared
import XCTest

/// `ds-queue` against a real master, worker, ZooKeeper and SQLite.
final class QueueToolTests: ClusterTestCase {
    var marker: String { cluster.directory.appendingPathComponent("markers").path }

    struct Row: Decodable {
        var location: String
        var group: String
        var key: String
        var taskInstanceId: Int64
        var task: String?
        var workflow: String?
        enum CodingKeys: String, CodingKey {
            case location, group, key, taskInstanceId = "task_instance_id", task, workflow
        }
    }

    func rows(_ run: ToolRun) throws -> [Row] {
        try run.stdout.split(separator: "\n").map { try JSONDecoder().decode(Row.self, from: Data($0.utf8)) }
    }

    /// Mixed workflow and task priorities, more than the window holds: the list is the order in which
    /// a single-slot worker then runs them, although the window was filled in the order the master
    /// claimed the workflows, not in key order.
    func testListIsTheOrderASingleSlotWorkerRuns() async throws {
        try cluster.startMaster(["--queue-window", "3"])
        let priorities = ["LOW", "HIGHEST", "MEDIUM"]
        for (w, workflowPriority) in priorities.enumerated() {
            let tasks = ["LOWEST", "HIGH", "MEDIUM"].enumerated().map { t, p in
                #"{"name":"w\#(w)t\#(t)","priority":"\#(p)","command":"echo $DS_TASK_INSTANCE_ID >> \#(marker); sleep 0.3"}"#
            }.joined(separator: ",")
            _ = try cluster.submit(#"{"name":"mixed\#(w)","priority":"\#(workflowPriority)","tasks":[\#(tasks)]}"#)
        }
        let store = try cluster.store()
        try await eventually("all nine attempts are ready") { try await store.countRows(of: "task_instance") == 9 }
        try await eventually("three wait in the window") {
            let zk = try await self.cluster.client()
            defer { zk.close() }
            return try await zk.childrenIfPresent(self.cluster.paths.queue("default")).count == 3
        }
        let list = try cluster.run("ds-queue", ["list", "--json"])
        XCTAssertEqual(list.status, 0, list.stderr)
        let listed = try rows(list)
        XCTAssertEqual(listed.count, 9, list.stdout)
        XCTAssertEqual(listed.filter { $0.location == "window" }.count, 3)
        XCTAssertEqual(listed.filter { $0.location == "backlog" }.count, 6)
        XCTAssertTrue(listed.allSatisfy { $0.task != nil && $0.workflow != nil })
        let peek = try cluster.run("ds-queue", ["peek", "--json"])
        XCTAssertEqual(try rows(peek).map(\.taskInstanceId), [listed[0].taskInstanceId])
        let human = try cluster.run("ds-queue", ["list", "--limit", "2"])
        XCTAssertEqual(human.stdout.split(separator: "\n").count, 3, human.stdout)
        // A host with ZooKeeper but no database lists the window alone.
        let zkOnly = try cluster.run("ds-queue", ["list", "--json"], environment: ["DS_DB": cluster.directory.appendingPathComponent("none.db").path])
        XCTAssertEqual(zkOnly.status, 0, zkOnly.stderr)
        XCTAssertEqual(try rows(zkOnly).count, 3)
        XCTAssertTrue(zkOnly.stderr.contains("window in ZooKeeper only"), zkOnly.stderr)

        // Stats from ZooKeeper alone: the window, and the backlog the master publishes.
        struct Stats: Decodable {
            struct Group: Decodable {
                var group: String; var window: Int; var backlog: Int
                var window_by_priority: [Int]; var backlog_by_priority: [Int]; var oldest_window_age_seconds: Double?
            }
            var groups: [Group]; var groups_without_workers: [String]
        }
        var stats: Stats?
        try await eventually("stats show the window and the published backlog") {
            let run = try self.cluster.run("ds-queue", ["stats", "--json"], environment: ["DS_DB": self.cluster.directory.appendingPathComponent("none.db").path])
            stats = try? JSONDecoder().decode(Stats.self, from: Data(run.stdout.utf8))
            return stats?.groups.first?.backlog == 6
        }
        let group = try XCTUnwrap(stats?.groups.first)
        XCTAssertEqual(group.group, "default")
        XCTAssertEqual(group.window, 3)
        // Workflow priorities: one HIGHEST, one MEDIUM and one LOW workflow of three tasks each.
        XCTAssertEqual(zip(group.window_by_priority, group.backlog_by_priority).map { $0 + $1 }, [3, 0, 3, 3, 0])
        XCTAssertNotNil(group.oldest_window_age_seconds)
        XCTAssertEqual(stats?.groups_without_workers, ["default"], "no worker serves the group yet")
        let humanStats = try cluster.run("ds-queue", ["stats"])
        XCTAssertTrue(humanStats.stdout.contains("groups with no worker: default"), humanStats.stdout)

        try cluster.startWorker(slots: 1)
        try await eventually("all nine ran") { self.cluster.lines(self.marker).count == 9 }
        XCTAssertEqual(cluster.lines(marker).compactMap(Int64.init), listed.map(\.taskInstanceId),
                       "ds-queue list printed the order in which the worker ran them")
    }

    func testPushRunsAnAdHocTaskThatInstanceToolsSee() async throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 1)
        let ok = try cluster.run("ds-queue", ["push", "--name", "adhoc-ok", "--env", "GREETING=hi", "--wait"],
                                 stdin: "echo \"$GREETING from push\" >> \(marker)")
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertEqual(cluster.lines(marker), ["hi from push"])
        let failing = try cluster.run("ds-queue", ["push", "--command", "exit 3", "--priority", "HIGH", "--json"])
        XCTAssertEqual(failing.status, 0, failing.stderr)
        struct Pushed: Decodable { var instance_id: Int64; var task_instance_id: Int64?; var workflow: String }
        let pushed = try JSONDecoder().decode(Pushed.self, from: Data(failing.stdout.utf8))
        XCTAssertEqual(pushed.workflow, "adhoc")
        XCTAssertNotNil(pushed.task_instance_id, "a running master dispatches it at once")
        let end = try await cluster.waitForEnd(pushed.instance_id)
        XCTAssertEqual(end, .failure)
        let show = try cluster.run("ds-instance", ["show", String(pushed.instance_id), "--json"])
        XCTAssertTrue(show.stdout.contains(#""exit_code":3"#), show.stdout)
        for (args, stdin, status) in [(["push", "--group", "../x"], "true", Int32(64)), (["push", "--env", "PATH=/x"], "true", 65),
                                      (["push"], "", 65), (["push", "--priority", "URGENT"], "true", 64),
                                      (["list", "--limit", "-1"], "", 64), (["list", "-q", "--json"], "", 64)] {
            let run = try cluster.run("ds-queue", args, stdin: stdin)
            XCTAssertEqual(run.status, status, "\(args): \(run.stderr)")
        }
    }

    func testRemoveTakesAQueuedTaskOutForGoodAndTheWorkflowFollowsItsFailureStrategy() async throws {
        try cluster.startMaster(port: 7450)
        let first = cluster.daemons.last!.process
        let id = try cluster.submit("""
            {"name":"removal","failure_strategy":"CONTINUE","tasks":[{"name":"a","command":"echo a >> \(marker)"},
              {"name":"b","command":"echo b >> \(marker)"},{"name":"c","deps":["b"],"command":"echo c >> \(marker)"}]}
            """)
        let store = try cluster.store()
        try await eventually("a and b are queued") { try await store.taskAttempts(of: id).count == 2 }
        let list = try rows(try cluster.run("ds-queue", ["list", "--json"]))
        let b = try XCTUnwrap(list.first { $0.task == "b" })
        // By its key, as list prints it.
        let remove = try cluster.run("ds-queue", ["remove", b.key, "--wait"])
        XCTAssertEqual(remove.status, 0, remove.stderr)
        XCTAssertTrue(remove.stdout.contains("KILL"), remove.stdout)
        // For good: a new master rebuilds the instance from storage and does not queue b again.
        cluster.kill9(first)
        try cluster.startMaster(port: 7451)
        try cluster.startWorker(slots: 1)
        let end = try await cluster.waitForEnd(id)
        XCTAssertEqual(end, .failure, "a removed task fails its workflow, as its failure strategy says")
        XCTAssertEqual(cluster.lines(marker), ["a"], "b never ran, nor c after it")
        let rowsNow = try await store.taskAttempts(of: id)
        XCTAssertEqual(rowsNow.first { $0.taskName == "b" }?.state, .kill)
        XCTAssertEqual(rowsNow.first { $0.taskName == "b" }?.message, "removed from the queue (ds-queue remove)")
        XCTAssertFalse(rowsNow.contains { $0.taskName == "c" })
        let again = try cluster.run("ds-queue", ["remove", String(b.taskInstanceId)])
        XCTAssertEqual(again.status, 1, "an ended task cannot be removed: \(again.stderr)")

        // A running task is refused, with the way to stop it.
        let go = cluster.directory.appendingPathComponent("go").path
        let busy = try cluster.submit(#"{"name":"busy","tasks":[{"name":"long","command":"while [ ! -e \#(go) ]; do sleep 0.1; done"}]}"#)
        try await eventually("long runs") { try await store.taskAttempts(of: busy).first?.state == .running }
        let running = try await store.taskAttempts(of: busy).first!.id!
        let refused = try cluster.run("ds-queue", ["remove", String(running)])
        XCTAssertEqual(refused.status, 1, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("ds-instance stop \(busy)"), refused.stderr)
        FileManager.default.createFile(atPath: go, contents: nil)
        let busyEnd = try await cluster.waitForEnd(busy)
        XCTAssertEqual(busyEnd, .success)
        XCTAssertEqual(try cluster.run("ds-queue", ["remove", "999999"]).status, 65)
        XCTAssertEqual(try cluster.run("ds-queue", ["remove", "not-a-key"]).status, 64)
    }

    /// Issue 21, item 9: the master dies after it took a removed task's item out of the queue and
    /// before it stored the task KILL. The master that takes the instance over found the task in no
    /// queue, took it for lost with a worker and queued it again: the removed task ran. It must end
    /// it KILL, as the removal asked.
    func testAMasterKilledBetweenTheQueueDeleteAndTheKillRecordLeavesTheTaskRemoved() async throws {
        let first = try cluster.startMaster(port: 7460, environment: ["DS_FAULT_POINT": "master-after-halt-delete"])
        // No worker yet: the task waits in the queue.
        let id = try cluster.submit(#"{"name":"removal-crash","tasks":[{"name":"b","command":"echo b >> \#(marker)"}]}"#)
        let zk = try await cluster.client()
        defer { zk.close() }
        try await eventually("b is queued") { try await zk.childrenIfPresent(self.cluster.paths.queue("default")).count == 1 }
        let queued = try await cluster.store().taskAttempts(of: id).first?.id
        let b = try XCTUnwrap(queued)
        let remove = try cluster.run("ds-queue", ["remove", String(b)])
        XCTAssertEqual(remove.status, 0, remove.stderr)
        XCTAssertNotNil(cluster.exitStatus(of: first), "the master died between the delete and the record")
        let left = try await zk.childrenIfPresent(cluster.paths.queue("default"))
        XCTAssertEqual(left, [], "the item was deleted")
        try cluster.startMaster(port: 7461)
        try cluster.startWorker(slots: 1)
        let end = try await cluster.waitForEnd(id)
        XCTAssertEqual(end, .failure, "the removed task fails its workflow")
        let rowsNow = try await cluster.store().taskAttempts(of: id)
        XCTAssertEqual(rowsNow.map(\.state), [.kill], "b removed, never queued again: \(rowsNow.map { ($0.id!, $0.state, $0.message ?? "") })")
        XCTAssertEqual(rowsNow.first?.message, "removed from the queue (ds-queue remove)")
        XCTAssertEqual(cluster.lines(marker), [], "b never ran")
    }

    /// `ds-queue watch --json` in the background, its output in files; once it says it watches.
    func startWatch() async throws -> (process: Process, out: URL) {
        let name = UUID().uuidString
        let out = cluster.directory.appendingPathComponent("watch-\(name).out"), err = cluster.directory.appendingPathComponent("watch-\(name).err")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        let watch = Process()
        watch.executableURL = Binaries.url("ds-queue")
        watch.arguments = ["watch", "--json"]
        watch.environment = cluster.environment
        watch.standardOutput = try FileHandle(forWritingTo: out)
        watch.standardError = try FileHandle(forWritingTo: err)
        watch.standardInput = FileHandle.nullDevice
        try watch.run()
        addTeardownBlock { if watch.isRunning { kill(watch.processIdentifier, SIGCONT); kill(watch.processIdentifier, SIGKILL); watch.waitUntilExit() } }
        try await eventually("the watch has started") { ((try? String(contentsOf: err, encoding: .utf8)) ?? "").contains("watching") }
        return (watch, out)
    }

    func testWatchPrintsAdditionsClaimsAndRemovalsAsTheyHappen() async throws {
        try cluster.startMaster()
        let (watch, out) = try await startWatch()
        struct Event: Decodable { var event: String; var task_instance_id: Int64; var worker: String? }
        func events() -> [Event] {
            ((try? String(contentsOf: out, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
                try? JSONDecoder().decode(Event.self, from: Data($0.utf8))
            }
        }
        let id = try cluster.submit(#"{"name":"watched","failure_strategy":"CONTINUE","tasks":[{"name":"a","command":"true"},{"name":"b","command":"true"}]}"#)
        try await eventually("two additions") { events().filter { $0.event == "added" }.count == 2 }
        let rows = try await cluster.store().taskAttempts(of: id)
        let b = try XCTUnwrap(rows.first { $0.taskName == "b" }?.id)
        let a = try XCTUnwrap(rows.first { $0.taskName == "a" }?.id)
        XCTAssertEqual(try cluster.run("ds-queue", ["remove", String(b), "--wait"]).status, 0)
        try await eventually("b's removal") { events().contains { $0.event == "removed" && $0.task_instance_id == b } }
        try cluster.startWorker(slots: 1)
        try await eventually("a's claim") { events().contains { $0.event == "claimed" && $0.task_instance_id == a } }
        XCTAssertEqual(events().map(\.event), ["added", "added", "removed", "claimed"])
        XCTAssertTrue(watch.isRunning, "watch goes on until interrupted")
    }

    /// Items added and claimed between two listings of the window (ZooKeeper watches fire once)
    /// were never printed: here the watch is stopped (SIGSTOP) while two items are added and
    /// claimed, and once it goes on it prints both claims, marked unseen, with their keys.
    func testWatchPrintsClaimsOfItemsItNeverSawQueued() async throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 2)
        let gate = cluster.directory.appendingPathComponent("gate").path
        let (watch, out) = try await startWatch()
        try await Task.sleep(for: .seconds(1))  // its first listing
        kill(watch.processIdentifier, SIGSTOP)
        let wait = "while [ ! -e \(gate) ]; do sleep 0.1; done"
        let id = try cluster.submit(#"{"name":"fast","tasks":[{"name":"a","command":"\#(wait)"},{"name":"b","command":"\#(wait)"}]}"#)
        let store = try cluster.store()
        try await eventually("both run") { try await store.taskAttempts(of: id).filter { $0.state == .running }.count == 2 }
        kill(watch.processIdentifier, SIGCONT)
        struct Event: Decodable { var event: String; var task_instance_id: Int64; var key: String; var group: String; var unseen: Bool? }
        let ids = Set(try await store.taskAttempts(of: id).compactMap(\.id))
        var events: [Event] = []
        try await eventually("both claims are printed") {
            events = ((try? String(contentsOf: out, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
                try? JSONDecoder().decode(Event.self, from: Data($0.utf8))
            }
            return Set(events.filter { $0.event == "claimed" }.map(\.task_instance_id)) == ids
        }
        XCTAssertTrue(events.allSatisfy { $0.unseen == true && $0.group == "default" && TaskQueueKey($0.key)?.taskInstanceId == $0.task_instance_id },
                      "\(events)")
        FileManager.default.createFile(atPath: gate, contents: nil)
        let end = try await cluster.waitForEnd(id)
        XCTAssertEqual(end, .success)
    }

    /// Peak resident memory of one run of a tool, in KiB, read by a Python parent that has no
    /// other children (RUSAGE_CHILDREN); stdout goes to a file, whose lines are counted.
    func peakMemory(_ arguments: [String], environment extra: [String: String] = [:]) throws -> (kib: Int, lines: Int, status: Int32) {
        let out = cluster.directory.appendingPathComponent("peak-\(UUID().uuidString).out").path
        let script = """
            import resource, subprocess, sys
            with open(sys.argv[1], "wb") as f:
                rc = subprocess.run(sys.argv[2:], stdout=f).returncode
            print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc)
            """
        let run = try cluster.run("/usr/bin/python3", ["-c", script, out, Binaries.url("ds-queue").path] + arguments, environment: extra)
        let parts = run.stdout.split(separator: " ").map { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1 }
        let lines = ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").split(separator: "\n").count
        return (parts.first ?? -1, lines, Int32(parts.last ?? -1))
    }

    /// 100,000 ready tasks (10 workflows of 10,000, no worker): list prints them all from a window
    /// of 1000 and a backlog of 99,000, in memory that does not grow with the queue; stats counts
    /// them, also with ZooKeeper alone.
    func testAHundredThousandReadyTasksListInBoundedMemory() async throws {
        try cluster.startMaster()
        let small = try cluster.submit(#"{"name":"small","tasks":[{"name":"one","command":"true"}]}"#)
        let store = try cluster.store()
        try await eventually("the small one is queued") { try await store.taskAttempts(of: small).count == 1 }
        let baseline = try peakMemory(["list", "--json"])
        XCTAssertEqual(baseline.lines, 1)
        let tasks = (0..<10_000).map { #"{"name":"t\#($0)","command":"true"}"# }.joined(separator: ",")
        for w in 0..<10 { _ = try cluster.submit(#"{"name":"wide\#(w)","tasks":[\#(tasks)]}"#) }
        try await eventually("100,001 attempts are ready", timeout: 600) { try await store.countRows(of: "task_instance") == 100_001 }
        let big = try peakMemory(["list", "--json"])
        XCTAssertEqual(big.status, 0)
        XCTAssertEqual(big.lines, 100_001)
        print("ds-queue list --json: peak RSS \(baseline.kib) KiB for 1 item, \(big.kib) KiB for 100,001 (window 1000, backlog 99,001)")
        // Bounded: a window and a page at a time. Holding 100,000 rows would add far more than this.
        XCTAssertLessThan(big.kib, baseline.kib + 40 * 1024, "peak RSS \(big.kib) KiB against \(baseline.kib) KiB for one item")
        struct Stats: Decodable { struct Group: Decodable { var window: Int; var backlog: Int }; var groups: [Group] }
        try await eventually("stats from ZooKeeper alone count them") {
            let run = try self.cluster.run("ds-queue", ["stats", "--json"], environment: ["DS_DB": "/nonexistent/none.db"])
            guard let stats = try? JSONDecoder().decode(Stats.self, from: Data(run.stdout.utf8)), let g = stats.groups.first else { return false }
            return g.window == 1000 && g.window + g.backlog == 100_001
        }
    }

    /// A command that is not UTF-8, on standard input or in --command, is refused with exit 65 as
    /// ds-submit refuses a workflow file's (it was repaired to U+FFFD and run), nothing is pushed,
    /// and the refusal names the tool once ("ds-queue: ds-queue push:" before).
    func testPushRefusesACommandThatIsNotUTF8AndNamesTheToolOnce() async throws {
        let queue = Binaries.url("ds-queue").path
        let script = """
            import subprocess, sys
            r = subprocess.run([sys.argv[1], "push"], input=b"echo \\xff", capture_output=True)
            sys.stderr.write(r.stderr.decode("utf-8", "replace")); print(r.returncode)
            r = subprocess.run([sys.argv[1], "push", "--command", b"echo \\xff"], capture_output=True)
            sys.stderr.write(r.stderr.decode("utf-8", "replace")); print(r.returncode)
            """
        let run = try cluster.run("/usr/bin/python3", ["-c", script, queue])
        XCTAssertEqual(run.stdout.split(separator: "\n"), ["65", "65"], run.stderr)
        XCTAssertTrue(run.stderr.contains("not valid UTF-8"), run.stderr)
        let empty = try cluster.run("ds-queue", ["push"], stdin: " ")
        XCTAssertEqual(empty.status, 65)
        XCTAssertTrue(empty.stderr.hasPrefix("ds-queue: push: "), empty.stderr)
        XCTAssertFalse(empty.stderr.contains("ds-queue push:"), empty.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: cluster.databasePath), "a refused push wrote the database")
    }

    /// Every tool of subcommands run without one prints its help on stderr and exits 64 (ds-instance
    /// printed its help on stdout and exited 0).
    func testAToolOfSubcommandsWithoutOneExits64WithHelpOnStderr() throws {
        for tool in ["ds-instance", "ds-queue", "ds-schedule", "ds-pool", "ds-alert"] {
            let run = try cluster.run(tool, [])
            XCTAssertEqual(run.status, 64, "\(tool): \(run.stderr)")
            XCTAssertEqual(run.stdout, "", tool)
            XCTAssertTrue(run.stderr.contains("SUBCOMMANDS"), "\(tool): \(run.stderr)")
            XCTAssertTrue(run.stderr.contains("\(tool): a subcommand is required"), "\(tool): \(run.stderr)")
        }
    }

    /// A negative --limit is read as the value it is and refused naming it, exit 64, in every tool
    /// that lists (it was taken for a flag: "Missing value for '--limit <limit>'").
    func testANegativeLimitIsRefusedNamingTheValue() throws {
        for (tool, args) in [("ds-queue", ["list"]), ("ds-instance", ["list"]), ("ds-schedule", ["show", "1"]), ("ds-alert", ["list"])] {
            let run = try cluster.run(tool, args + ["--limit", "-1"])
            XCTAssertEqual(run.status, 64, "\(tool): \(run.stderr)")
            XCTAssertTrue(run.stderr.contains("--limit -1 is out of range"), "\(tool): \(run.stderr)")
            XCTAssertEqual(run.stdout, "", tool)
        }
    }

    /// One rule for the case of names on the command line: upper only, as workflow files and every
    /// table write them (ds-queue push took 'low' and ds-instance list 'success'; ds-submit did not).
    func testPriorityAndStateNamesAreUpperCaseInEveryTool() throws {
        for (tool, args) in [("ds-queue", ["push", "--command", "true", "--priority", "low"]),
                             ("ds-submit", ["--dry-run", "--priority", "low", "-"]),
                             ("ds-instance", ["list", "--state", "success"]),
                             ("ds-alert", ["list", "--state", "failed"])] {
            let run = try cluster.run(tool, args, stdin: "{}")
            XCTAssertEqual(run.status, 64, "\(tool): \(run.stderr)")
            XCTAssertTrue(run.stderr.contains("upper case"), "\(tool): \(run.stderr)")
        }
    }
}
