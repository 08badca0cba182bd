import Foundation
import Shared
import XCTest

/// ZooKeeper itself goes away: briefly (nothing happens) or for longer than a session (the
/// daemons fence themselves, kill the work they cannot vouch for, and carry on with new sessions
/// once ZooKeeper is back; the work completes without a restart).
final class ZooKeeperOutageTests: ClusterTestCase {
    var marker: String { cluster.directory.appendingPathComponent("markers").path }

    func testRestartWithinTheSessionTimeoutChangesNothing() async throws {
        let long = ["DS_ZK_SESSION_TIMEOUT": "30s"]
        let master = try cluster.startMaster(environment: long)
        let worker = try cluster.startWorker(slots: 1, environment: long)
        let id = try cluster.submit(#"""
            {"name":"blip","tasks":[{"name":"a","command":"echo a >> \#(marker); sleep 4"},{"name":"b","deps":["a"],"command":"echo b >> \#(marker)"}]}
            """#)
        try await eventually("a runs") { cluster.lines(marker).count == 1 }
        cluster.zk.stop()
        try await Task.sleep(for: .seconds(1))
        try cluster.zk.start()
        let state = try await cluster.waitForEnd(id)
        XCTAssertEqual(state, .success)
        XCTAssertTrue(master.isRunning && worker.isRunning, "no daemon stopped")
        let attempts = try await cluster.store().taskAttempts(of: id)
        XCTAssertEqual(attempts.map(\.state), [.success, .success], "no failover happened")
        XCTAssertEqual(cluster.lines(marker), ["a", "b"])
    }

    /// Issue 21, finding 19: an outage of twice the session used to make every daemon exit 69 and
    /// stay down. Now each kills what it cannot vouch for before its session can expire, makes a
    /// new session once ZooKeeper answers, and carries on: the same processes finish the work.
    func testOutageLongerThanTheSessionKeepsDaemonsUpAndTheWorkCompletes() async throws {
        let short = ["DS_ZK_SESSION_TIMEOUT": "3s"]
        let master = try cluster.startMaster(port: 7501, environment: short)
        let worker = try cluster.startWorker(slots: 1, port: 7601, environment: short)
        let id = try cluster.submit(#"""
            {"name":"outage","tasks":[{"name":"a","command":"echo a-$DS_TASK_INSTANCE_ID >> \#(marker); sleep 8; echo a-end-$DS_TASK_INSTANCE_ID >> \#(marker)"},{"name":"b","deps":["a"],"command":"echo b >> \#(marker)"}]}
            """#)
        try await eventually("a runs") { cluster.lines(marker).count == 1 }
        let waiting = try cluster.startDaemon("ds-instance", ["wait", String(id)], environment: short)
        try await Task.sleep(for: .seconds(1))
        cluster.zk.stop()
        try await Task.sleep(for: .seconds(6))  // twice the session
        try cluster.zk.start()
        let state = try await cluster.waitForEnd(id)
        XCTAssertEqual(state, .success)
        XCTAssertTrue(master.isRunning, "the master carried on: \(cluster.daemonLogs())")
        XCTAssertTrue(worker.isRunning, "the worker carried on: \(cluster.daemonLogs())")
        let attempts = try await cluster.store().taskAttempts(of: id)
        XCTAssertEqual(attempts.filter { $0.taskName == "a" }.map(\.state), [.needFaultTolerance, .success])
        let firstEnd = "a-end-\(attempts[0].id!)"
        XCTAssertFalse(cluster.lines(marker).contains(firstEnd), "the fenced worker killed its task")
        XCTAssertEqual(cluster.lines(marker).filter { $0 == "b" }.count, 1)
        XCTAssertTrue(cluster.daemonLogs().contains("registering again with a new session"), cluster.daemonLogs())
        XCTAssertEqual(cluster.exitStatus(of: waiting), 0, "ds-instance wait rode out the outage")
        XCTAssertTrue(cluster.daemonLogs().contains("does not answer"), "ds-instance wait said what it waits for: \(cluster.daemonLogs())")
    }
}
