import Foundation
import Shared
import XCTest

/// Masters and workers die (kill -9, SIGSTOP, forced failover); no workflow is lost and no task
/// runs twice beside itself.
final class FailoverTests: ClusterTestCase {
    var marker: String { cluster.directory.appendingPathComponent("markers").path }

    /// Child processes of `parent` with this command name, from /proc.
    func children(of parent: pid_t, named name: String) -> [pid_t] {
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
        let long = try await attempts(id).filter { $0.taskName == "long" }
        XCTAssertEqual(long.map(\.state), [.needFaultTolerance, .success])
        XCTAssertEqual(long.map(\.attempt), [1, 1], "a failover is not a retry")
        // Give the first attempt's shell time to have finished, had the supervisor not killed it.
        try await Task.sleep(for: .seconds(4))
        let lines = cluster.lines(marker)
        XCTAssertFalse(lines.contains("end-\(long[0].id!)"), "the killed worker's task ran on: \(lines)")
        XCTAssertTrue(lines.contains("end-\(long[1].id!)"), "\(lines)")
        XCTAssertEqual(lines.filter { $0 == "after" }.count, 1)
    }

    /// The worker's one task-supervisor is the parent of all its tasks. Killed, it leaves them
    /// orphaned: the worker kills their groups, writes nothing, and stops (exit 70), and the task
    /// fails over to another worker.
    func testKilledTaskSupervisorStopsItsWorkerAndItsTaskFailsOver() async throws {
        try cluster.startMaster()
        let doomed = try cluster.startWorker(slots: 1)
        let id = try cluster.submit(#"""
            {"name":"orphan","tasks":[{"name":"long","command":"echo start-$DS_TASK_INSTANCE_ID >> \#(marker); sleep 3; echo end-$DS_TASK_INSTANCE_ID >> \#(marker)"}]}
            """#)
        try await eventually("the task started on the doomed worker") { cluster.lines(marker).count == 1 }
        let supervisors = children(of: doomed.processIdentifier, named: "task-supervisor")
        XCTAssertEqual(supervisors.count, 1, "one supervisor per worker, however many tasks")
        let supervisor = try XCTUnwrap(supervisors.first)
        try cluster.startWorker(slots: 1)
        kill(supervisor, SIGKILL)
        XCTAssertEqual(cluster.exitStatus(of: doomed), 70, cluster.daemonLogs())
        let state = try await cluster.waitForEnd(id)
        XCTAssertEqual(state, .success)
        let long = try await attempts(id)
        XCTAssertEqual(long.map(\.state), [.needFaultTolerance, .success], "the orphaned attempt reported nothing")
        guard long.count == 2 else { return }
        try await Task.sleep(for: .seconds(4))
        let lines = cluster.lines(marker)
        XCTAssertFalse(lines.contains("end-\(long[0].id!)"), "the orphaned task ran on: \(lines)")
        XCTAssertTrue(lines.contains("end-\(long[1].id!)"), "\(lines)")
        XCTAssertTrue(cluster.daemonLogs().contains("task-supervisor exited unexpectedly"))
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
        XCTAssertEqual(cluster.exitStatus(of: hung), 69, "the hung master finds itself in /dead-servers and stops")
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

    func testFrozenWorkerIsFailedOverThenFencesItselfAndItsLateResultNeverCounts() async throws {
        try cluster.startMaster()
        let frozen = try cluster.startWorker(slots: 1)
        let flag = cluster.directory.appendingPathComponent("first").path
        // The first attempt outlives the freeze; the second is short.
        let id = try cluster.submit(#"""
            {"name":"frozen","tasks":[{"name":"t","command":"echo start-$DS_TASK_INSTANCE_ID >> \#(marker); if [ -e \#(flag) ]; then sleep 1; else touch \#(flag); sleep 20; fi; echo end-$DS_TASK_INSTANCE_ID >> \#(marker)"}]}
            """#)
        try await eventually("the task runs on the worker to be frozen") { cluster.lines(marker).count == 1 }
        kill(frozen.processIdentifier, SIGSTOP)
        try cluster.startWorker(slots: 1)
        let state = try await cluster.waitForEnd(id)
        XCTAssertEqual(state, .success)
        kill(frozen.processIdentifier, SIGCONT)
        let status = cluster.exitStatus(of: frozen)
        XCTAssertEqual(status, 69, "the frozen worker fences itself and exits non-zero")
        let tries = try await attempts(id)
        XCTAssertEqual(tries.map(\.state), [.needFaultTolerance, .success])
        try await Task.sleep(for: .seconds(2))
        XCTAssertFalse(cluster.lines(marker).contains("end-\(tries[0].id!)"), "the frozen worker killed its task")
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
        XCTAssertEqual(cluster.exitStatus(of: hung), 69, "the hung worker finds itself in /dead-servers and fences itself")
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
