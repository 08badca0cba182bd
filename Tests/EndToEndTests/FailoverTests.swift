import Foundation
import Shared
import XCTest

/// Masters and workers die (kill -9, SIGSTOP, forced failover); no workflow is lost and no task
/// runs twice beside itself.
final class FailoverTests: ClusterTestCase {
    var marker: String { cluster.directory.appendingPathComponent("markers").path }

    /// Child processes of `parent` with this command name, from /proc.
    func children(of parent: pid_t, named name: String) -> [pid_t] { Self.children(of: parent, named: name) }

    static func children(of parent: pid_t, named name: String) -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry -> pid_t? in
            guard let pid = pid_t(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else { return nil }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return stat[stat.index(after: open)..<close] == name && fields.count > 2 && pid_t(fields[1]) == parent ? pid : nil
        }
    }

    func attempts(_ instance: Int64) async throws -> [TaskInstanceRecord] {
        try await cluster.store().taskAttempts(of: instance)
    }

    func testKilledWorkerTaskCompletesOnTheOtherWorkerAndNeverRunsOnBeside() async throws {
        try await killedWorkerTaskCompletesOnTheOtherWorker()
    }

    /// The worker's one task-supervisor is the parent of all its tasks. Killed, it leaves them
    /// orphaned: the worker kills their groups, reports them NEED_FAULT_TOLERANCE (they run again,
    /// not as a retry), starts a new supervisor and runs on (issue 21, finding 18: it used to exit).
    func testKilledTaskSupervisorIsReplacedAndItsTaskFailsOver() async throws {
        try cluster.startMaster()
        let worker = try cluster.startWorker(slots: 1)
        let id = try cluster.submit(#"""
            {"name":"orphan","tasks":[{"name":"long","command":"echo start-$DS_TASK_INSTANCE_ID >> \#(marker); sleep 3; echo end-$DS_TASK_INSTANCE_ID >> \#(marker)"}]}
            """#)
        try await eventually("the task started") { cluster.lines(marker).count == 1 }
        let supervisors = children(of: worker.processIdentifier, named: "task-supervisor")
        XCTAssertEqual(supervisors.count, 1, "one supervisor per worker, however many tasks")
        let supervisor = try XCTUnwrap(supervisors.first)
        kill(supervisor, SIGKILL)
        let state = try await cluster.waitForEnd(id)
        XCTAssertEqual(state, .success)
        XCTAssertTrue(worker.isRunning, "the worker survives its supervisor: \(cluster.daemonLogs())")
        let long = try await attempts(id)
        XCTAssertEqual(long.map(\.state), [.needFaultTolerance, .success])
        guard long.count == 2 else { return }
        XCTAssertTrue(long[0].message?.hasPrefix(TaskResultMessage.supervisorLostMessage) ?? false, long[0].message ?? "")
        let replacement = children(of: worker.processIdentifier, named: "task-supervisor")
        XCTAssertEqual(replacement.count, 1)
        XCTAssertNotEqual(replacement.first, supervisor, "a new supervisor runs the tasks")
        try await Task.sleep(for: .seconds(4))
        let lines = cluster.lines(marker)
        XCTAssertFalse(lines.contains("end-\(long[0].id!)"), "the orphaned task ran on: \(lines)")
        XCTAssertTrue(lines.contains("end-\(long[1].id!)"), "\(lines)")
        XCTAssertTrue(cluster.daemonLogs().contains("task-supervisor exited unexpectedly"))
    }

    /// Issue 21, finding 18: `kill -9 $PPID` in a task killed the supervisor, which stopped the
    /// worker; the attempt failed over and killed the next worker, and so on. Now every worker
    /// survives, and the task fails after `Limits.supervisorDeathsBeforeFailure` such attempts.
    func testTaskThatKillsItsSupervisorFailsAfterThreeAttemptsAndNoWorkerDies() async throws {
        try cluster.startMaster()
        let workers = [try cluster.startWorker(slots: 1), try cluster.startWorker(slots: 1)]
        let id = try cluster.submit(#"""
            {"name":"parricide","tasks":[{"name":"t","command":"echo try-$DS_TASK_INSTANCE_ID >> \#(marker); kill -9 $PPID; sleep 5"}]}
            """#)
        let state = try await cluster.waitForEnd(id)
        XCTAssertEqual(state, .failure)
        let tries = try await attempts(id)
        XCTAssertEqual(tries.map(\.state), [.needFaultTolerance, .needFaultTolerance, .failure], "\(tries.map { $0.message ?? "" })")
        XCTAssertTrue(tries.last?.message?.contains("saw the task supervisor die 3 times") ?? false, tries.last?.message ?? "")
        XCTAssertEqual(cluster.lines(marker).count, 3)
        for w in workers { XCTAssertTrue(w.isRunning, "no worker died: \(cluster.daemonLogs())") }
        let after = try cluster.submit(#"{"name":"after","tasks":[{"name":"a","command":"echo after >> \#(marker)"}]}"#)
        let afterState = try await cluster.waitForEnd(after)
        XCTAssertEqual(afterState, .success, "the workers still run tasks")
    }

    /// Issue 21 (one rule for the supervisor and the alert runner): a task's group is killed
    /// before its leader is reaped, so what it left running in its group ends with it.
    func testBackgroundChildOfAFinishedTaskEndsWithIt() async throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 1)
        let pidFile = cluster.directory.appendingPathComponent("child.pid").path
        let id = try cluster.submit(#"{"name":"bg","tasks":[{"name":"t","command":"sleep 300 & echo $! > \#(pidFile)"}]}"#)
        let state = try await cluster.waitForEnd(id)
        XCTAssertEqual(state, .success)
        let text = try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let child = try XCTUnwrap(pid_t(text))
        try await eventually("the background child is gone") {
            // Gone, or a zombie waiting for its new parent to reap it.
            guard let stat = try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return true }
            return stat[stat.index(close, offsetBy: 2)] == "Z"
        }
    }

    func testKilledMasterIsTakenOverAndRunningTasksAreNotStartedAgain() async throws {
        let first = try cluster.startMaster()
        try cluster.startWorker(slots: 2)
        let id = try cluster.submit(#"""
            {"name":"takeover","tasks":[
              {"name":"a","command":"echo a >> \#(marker); sleep 3"},
              {"name":"b","command":"echo b >> \#(marker); sleep 3"},
              {"name":"queued","command":"echo queued >> \#(marker)"},
              {"name":"c","deps":["a","b","queued"],"command":"echo c >> \#(marker)"}]}
            """#)
        try await eventually("a and b run, the third task waits in the queue") { cluster.lines(marker).count == 2 }
        cluster.kill9(first)
        try cluster.startMaster()
        let state = try await cluster.waitForEnd(id)
        XCTAssertEqual(state, .success)
        XCTAssertEqual(cluster.lines(marker).sorted(), ["a", "b", "c", "queued"], "every task ran exactly once")
        let all = try await attempts(id)
        XCTAssertEqual(all.count, 4, "no attempt was resubmitted: \(all.map { "\($0.taskName):\($0.state)" })")
        let instance = try await cluster.store().instance(id)
        XCTAssertNotEqual(instance?.masterSession, nil)
        XCTAssertEqual(instance?.host, "127.0.0.1:\(7002 + 1)", "the second master owns it now")
    }

    func testMasterAndWorkerKilledAtOnce() async throws {
        let master = try cluster.startMaster()
        let worker = try cluster.startWorker(slots: 2)
        try cluster.startMaster()
        try cluster.startWorker(slots: 2)
        let ids = try (0..<4).map { i in
            try cluster.submit(#"""
                {"name":"pair\#(i)","tasks":[{"name":"x","command":"sleep 1; echo \#(i)-x-$DS_TASK_INSTANCE_ID >> \#(marker)"},
                 {"name":"y","deps":["x"],"command":"sleep 1; echo \#(i)-y-$DS_TASK_INSTANCE_ID >> \#(marker)"}]}
                """#)
        }
        try await Task.sleep(for: .milliseconds(700))
        kill(master.processIdentifier, SIGKILL)
        kill(worker.processIdentifier, SIGKILL)
        for id in ids {
            let state = try await cluster.waitForEnd(id)
            XCTAssertEqual(state, .success, "instance \(id)")
            let succeeded = try await attempts(id).filter { $0.state == .success }.map(\.taskName).sorted()
            XCTAssertEqual(succeeded, ["x", "y"], "each task succeeded exactly once")
        }
    }

    func testForcedFailoverOfAHungMasterMovesItsInstancesAndFencesIt() async throws {
        let long = ["DS_ZK_SESSION_TIMEOUT": "60s"]
        let hung = try cluster.startMaster(port: 7301, environment: long)
        try cluster.startWorker(slots: 2)
        let id = try cluster.submit(#"""
            {"name":"hung-master","tasks":[{"name":"a","command":"echo a >> \#(marker); sleep 1"},
             {"name":"b","deps":["a"],"command":"echo b >> \#(marker)"}]}
            """#)
        try await eventually("a runs") { cluster.lines(marker).count == 1 }
        kill(hung.processIdentifier, SIGSTOP)
        try cluster.startMaster(port: 7302)
        let dry = try cluster.run("ds-failover", ["--master", "127.0.0.1:7301", "--dry-run", "--json"])
        XCTAssertEqual(dry.status, 0, dry.stderr)
        let would = try JSONSerialization.jsonObject(with: Data(dry.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(would["instances"] as? [Int], [Int(id)], dry.stdout)
        let human = try cluster.run("ds-failover", ["--master", "127.0.0.1:7301"])
        XCTAssertEqual(human.status, 0, human.stderr)
        XCTAssertTrue(human.stdout.hasPrefix("failed over master 127.0.0.1:7301"), human.stdout)
        let state = try await cluster.waitForEnd(id)
        XCTAssertEqual(state, .success)
        let owner = try await cluster.store().instance(id)?.host
        XCTAssertEqual(owner, "127.0.0.1:7302")
        kill(hung.processIdentifier, SIGCONT)
        try await eventually("the hung master finds itself failed over and registers again") {
            cluster.daemonLogs().contains("master 127.0.0.1:7301: found itself in /dead-servers")
        }
        XCTAssertTrue(hung.isRunning, "it carries on with a new session")
        XCTAssertEqual(cluster.lines(marker), ["a", "b"], "each task ran once")
        let listing = try cluster.run("ds-failover", ["--list"])
        XCTAssertEqual(listing.status, 0, listing.stderr)
        XCTAssertTrue(listing.stdout.contains("master_127.0.0.1:7301_"), listing.stdout)
        XCTAssertTrue(listing.stdout.contains("ORPHANED INSTANCES\n(none)"), listing.stdout)
    }

    func testWholeClusterKilledAndRestartedCompletesEveryWorkflow() async throws {
        var daemons = [try cluster.startMaster(port: 7801), try cluster.startWorker(slots: 2, port: 7901)]
        let ids = try (0..<3).map { i in
            try cluster.submit(#"""
                {"name":"restart\#(i)","tasks":[{"name":"a","command":"sleep 1"},{"name":"b","deps":["a"],"command":"sleep 1"},
                 {"name":"c","deps":["b"],"command":"echo \#(i) >> \#(marker)"}]}
                """#)
        }
        try await Task.sleep(for: .milliseconds(1500))
        for d in daemons { cluster.kill9(d) }
        let killedAt = Date().timeIntervalSince1970
        // The same identities come back, as after a power cut.
        daemons = [try cluster.startMaster(port: 7801), try cluster.startWorker(slots: 2, port: 7901)]
        for id in ids {
            let state = try await cluster.waitForEnd(id)
            XCTAssertEqual(state, .success, "instance \(id)")
        }
        XCTAssertEqual(cluster.lines(marker).sorted(), ["0", "1", "2"])
        // Only attempts of the dead incarnation were failed over, never one the restarted worker
        // (same host:port, new session) had started.
        for id in ids {
            for a in try await cluster.store().taskAttempts(of: id) where a.state == .needFaultTolerance {
                XCTAssertLessThan(a.submitTime, killedAt, "attempt \(a.id!) was started after the restart and failed over")
            }
        }
    }

    /// Issue 21, finding 17: a worker frozen (SIGSTOP) for longer than its session. Its supervisor,
    /// not frozen, used to keep the task running beside the attempt the master started elsewhere
    /// once the session expired. Now the supervisor holds the worker's lease and kills the task
    /// before the session can expire: the first attempt's last sign of life comes before the
    /// second's first. Woken, the worker fences itself, registers with a new session and runs on.
    func testFrozenWorkerTaskDoesNotRunBesideItsFailover() async throws {
        try cluster.startMaster()
        let frozen = try cluster.startWorker(slots: 1, port: 7702)
        let flag = cluster.directory.appendingPathComponent("first").path
        // The first attempt ticks until killed; the second ticks once and ends.
        let id = try cluster.submit(#"""
            {"name":"frozen","tasks":[{"name":"t","command":"if [ -e \#(flag) ]; then echo \"tick-$DS_TASK_INSTANCE_ID $(date +%s.%N)\" >> \#(marker); else touch \#(flag); while true; do echo \"tick-$DS_TASK_INSTANCE_ID $(date +%s.%N)\" >> \#(marker); sleep 0.2; done; fi"}]}
            """#)
        try await eventually("the task runs on the worker to be frozen") { !cluster.lines(marker).isEmpty }
        kill(frozen.processIdentifier, SIGSTOP)
        try cluster.startWorker(slots: 1)
        let state = try await cluster.waitForEnd(id)
        XCTAssertEqual(state, .success)
        try await Task.sleep(for: .seconds(2))
        kill(frozen.processIdentifier, SIGCONT)
        let tries = try await attempts(id)
        XCTAssertEqual(tries.map(\.state), [.needFaultTolerance, .success])
        guard tries.count == 2 else { return }
        let ticks = cluster.lines(marker).compactMap { line -> (Int64, Double)? in
            let parts = line.split(separator: " ")
            guard parts.count == 2, let id = Int64(parts[0].dropFirst(5)), let time = Double(parts[1]) else { return nil }
            return (id, time)
        }
        let lastOfFirst = try XCTUnwrap(ticks.filter { $0.0 == tries[0].id! }.map(\.1).max())
        let firstOfSecond = try XCTUnwrap(ticks.filter { $0.0 == tries[1].id! }.map(\.1).min())
        XCTAssertLessThan(lastOfFirst, firstOfSecond, "the frozen worker's task ran beside its failover")
        try await eventually("the woken worker registers again") { cluster.daemonLogs().contains("worker 127.0.0.1:7702: ") }
        XCTAssertTrue(frozen.isRunning, "the frozen worker carries on after it fenced itself: \(cluster.daemonLogs())")
        let zk = try await cluster.client()
        defer { zk.close() }
        try await eventually("it is in the registry again, with a new session") {
            try await zk.exists(cluster.paths.workerGroup("default") + "/127.0.0.1:7702") != nil
        }
        let after = try await attempts(id)
        XCTAssertEqual(after.map(\.state), [.needFaultTolerance, .success], "nothing overrides the live attempt")
    }

    func testForcedFailoverOfAHungWorkerAndListingAsJSON() async throws {
        try cluster.startMaster()
        // A long session timeout: the hung worker's session stays alive; only ds-failover declares it dead.
        let hung = try cluster.startWorker(slots: 1, environment: ["DS_ZK_SESSION_TIMEOUT": "60s"])
        let hungName = "127.0.0.1:\(7002)"
        let id = try cluster.submit(#"""
            {"name":"hung","tasks":[{"name":"t","command":"echo start-$DS_TASK_INSTANCE_ID >> \#(marker); sleep 2; echo end-$DS_TASK_INSTANCE_ID >> \#(marker)"}]}
            """#)
        try await eventually("the task runs on the worker to hang") { cluster.lines(marker).count == 1 }
        kill(hung.processIdentifier, SIGSTOP)

        let dry = try cluster.run("ds-failover", ["--worker", hungName, "--dry-run", "--json"])
        XCTAssertEqual(dry.status, 0, dry.stderr)
        let dryReport = try JSONSerialization.jsonObject(with: Data(dry.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(dryReport["dry_run"] as? Bool, true)
        XCTAssertEqual((dryReport["tasks"] as? [Int])?.count, 1, dry.stdout)
        let treeAfterDryRun = try await cluster.snapshot()
        XCTAssertFalse(treeAfterDryRun.keys.contains { $0.contains("/dead-servers/worker_") }, "a dry run changes nothing")

        let forced = try cluster.run("ds-failover", ["--worker", hungName, "--json"])
        XCTAssertEqual(forced.status, 0, forced.stderr)
        try cluster.startWorker(slots: 1)
        let state = try await cluster.waitForEnd(id)
        XCTAssertEqual(state, .success)

        let listed = try cluster.run("ds-failover", ["--list", "--json"])
        XCTAssertEqual(listed.status, 0, listed.stderr)
        let list = try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as! [String: Any]
        XCTAssertTrue((list["dead_servers"] as! [String]).contains { $0.hasPrefix("worker_\(hungName)_") }, listed.stdout)
        XCTAssertEqual((list["orphaned_instances"] as! [Any]).count, 0)

        kill(hung.processIdentifier, SIGCONT)
        try await eventually("the hung worker finds itself in /dead-servers and fences itself") {
            cluster.daemonLogs().contains("worker \(hungName): found itself in /dead-servers")
        }
        XCTAssertTrue(hung.isRunning, "it carries on with a new session")
        let tries = try await attempts(id)
        XCTAssertEqual(tries.map(\.state), [.needFaultTolerance, .success])

        // A late result for the superseded attempt is recorded as such and changes nothing.
        let zk = try await cluster.client()
        defer { zk.close() }
        let late = TaskResultMessage(taskInstanceId: tries[0].id!, state: .success, exitCode: 0, worker: hungName, pid: 1,
                                     logPath: "/dev/null", startTime: 0, endTime: 1, outputs: [:], message: nil)
        try await zk.create(cluster.paths.result(tries[0].id!), data: WireJSON.encode(late))
        try await eventually("the late result is consumed") { try await zk.exists(cluster.paths.result(tries[0].id!)) == nil }
        let final = try await attempts(id)
        XCTAssertEqual(final.map(\.state), [.needFaultTolerance, .success])
        XCTAssertTrue(final[0].message?.contains("late result ignored: SUCCESS") ?? false, "\(final[0].message ?? "")")

        let unknown = try cluster.run("ds-failover", ["--worker", "127.0.0.1:1"])
        XCTAssertEqual(unknown.status, 65, unknown.stderr)
        XCTAssertTrue(unknown.stderr.contains("no worker 127.0.0.1:1 is registered"), unknown.stderr)
    }

    func testMasterKilledDuringFailoverAtEachStepIsCompletedByTheNext() async throws {
        for step in ["takeover-after-lock", "takeover-after-transfer", "master-after-commit", "takeover-after-resume"] {
            let first = try cluster.startMaster()
            try cluster.startWorker(slots: 2)
            let id = try cluster.submit(#"""
                {"name":"\#(step)","tasks":[{"name":"a","command":"sleep 1; echo \#(step)-a >> \#(marker)"},
                 {"name":"b","deps":["a"],"command":"sleep 1; echo \#(step)-b >> \#(marker)"},
                 {"name":"c","deps":["b"],"command":"echo \#(step)-c >> \#(marker)"}]}
                """#)
            try await Task.sleep(for: .milliseconds(300))
            cluster.kill9(first)
            let faulty = try cluster.startMaster(environment: ["DS_FAULT_POINT": step])
            XCTAssertNotNil(cluster.exitStatus(of: faulty), "the faulty master must die at \(step)")
            XCTAssertEqual(faulty.terminationReason, .uncaughtSignal, "\(step): the faulty master was killed at its fault point")
            try cluster.startMaster()
            let state = try await cluster.waitForEnd(id)
            XCTAssertEqual(state, .success, step)
            let done = cluster.lines(marker).filter { $0.hasPrefix(step + "-") }
            XCTAssertEqual(done.sorted(), ["\(step)-a", "\(step)-b", "\(step)-c"], "\(step): every task ran exactly once")
            cluster.stopAll()
        }
    }

    /// Issue 21, item 11: a worker restarted under the same identity while the master did not look
    /// (here: stopped). The master kept the old session in its cache: no SERVER_DOWN for it, and
    /// the old session named in what it recorded later. Each listing must read the sessions.
    func testAWorkerRestartedUnderItsIdentityIsRecordedDownWithItsOldSession() async throws {
        let port = 7390
        let node = cluster.paths.workerGroup("default") + "/127.0.0.1:\(port)"
        let zk = try await cluster.client()
        defer { zk.close() }
        let first = try cluster.startWorker(slots: 1, port: port)
        var oldSession: Int64 = 0
        try await eventually("the worker registered") {
            oldSession = try await zk.exists(node)?.ephemeralOwner ?? 0
            return oldSession != 0
        }
        // A long session: the master is stopped while the worker restarts, and must not expire.
        let master = try cluster.startMaster(environment: ["DS_ZK_SESSION_TIMEOUT": "60s"])
        // The master lists the workers in its first pass, before it claims anything.
        let id = try cluster.submit(#"{"name":"listed","tasks":[{"name":"t","command":"true"}]}"#)
        let ran = try await cluster.waitForEnd(id)
        XCTAssertEqual(ran, .success)
        kill(master.processIdentifier, SIGSTOP)
        kill(first.processIdentifier, SIGTERM)
        XCTAssertEqual(cluster.exitStatus(of: first), 0)
        let second = try cluster.startWorker(slots: 1, port: port)
        var newSession: Int64 = 0
        try await eventually("the worker registered again") {
            newSession = try await zk.exists(node)?.ephemeralOwner ?? 0
            return newSession != 0 && newSession != oldSession
        }
        kill(master.processIdentifier, SIGCONT)
        func downKeys() async throws -> [String] {
            try await cluster.store().alerts().filter { $0.kind == .serverDown }.map(\.dedupKey)
        }
        let oldKey = "SERVER_DOWN:worker_127.0.0.1:\(port)_\(oldSession)"
        try await eventually("the old session is recorded down", timeout: 60) { try await downKeys().contains(oldKey) }
        let marker = cluster.paths.deadServer(DeadServer(type: "worker", identity: "127.0.0.1:\(port)", session: oldSession))
        let recorded = try await zk.exists(marker)
        XCTAssertNotNil(recorded, "the old session is in /dead-servers")
        // The restarted worker leaves: recorded under its own session, not the old one again.
        kill(second.processIdentifier, SIGTERM)
        XCTAssertEqual(cluster.exitStatus(of: second), 0)
        let newKey = "SERVER_DOWN:worker_127.0.0.1:\(port)_\(newSession)"
        try await eventually("the new session is recorded down", timeout: 60) { try await downKeys().contains(newKey) }
        XCTAssertTrue(master.isRunning)
    }
}

extension ClusterTestCase {
    /// A worker killed (-9) mid-task: the task fails over to the other worker, is not a retry,
    /// never runs on beside its new attempt, and every task runs once (also on PostgreSQL).
    func killedWorkerTaskCompletesOnTheOtherWorker() async throws {
        let marker = cluster.marker
        try cluster.startMaster()
        let doomed = try cluster.startWorker(slots: 1)
        let id = try cluster.submit(#"""
            {"name":"survive","tasks":[{"name":"long","command":"echo start-$DS_TASK_INSTANCE_ID >> \#(marker); sleep 3; echo end-$DS_TASK_INSTANCE_ID >> \#(marker)"},
             {"name":"after","deps":["long"],"command":"echo after >> \#(marker)"}]}
            """#)
        try await eventually("the task started on the doomed worker") { cluster.lines(marker).count == 1 }
        try cluster.startWorker(slots: 1)
        cluster.kill9(doomed)
        let state = try await cluster.waitForEnd(id)
        XCTAssertEqual(state, .success)
        let long = try await cluster.store().taskAttempts(of: id).filter { $0.taskName == "long" }
        XCTAssertEqual(long.map(\.state), [.needFaultTolerance, .success])
        XCTAssertEqual(long.map(\.attempt), [1, 1], "a failover is not a retry")
        // Give the first attempt's shell time to have finished, had the supervisor not killed it.
        try await Task.sleep(for: .seconds(4))
        let lines = cluster.lines(marker)
        XCTAssertFalse(lines.contains("end-\(long[0].id!)"), "the killed worker's task ran on: \(lines)")
        XCTAssertTrue(lines.contains("end-\(long[1].id!)"), "\(lines)")
        XCTAssertEqual(lines.filter { $0 == "after" }.count, 1)
    }
}
