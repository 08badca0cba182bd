import Foundation
import Shared
import XCTest

/// `ds-instance prune` and `ds-master --prune-older-than` against a real master, worker,
/// ZooKeeper and SQLite (issue 23, item 5).
final class PruneEndToEndTests: ClusterTestCase {
    /// Runs a workflow to its end; its instance id.
    func finished(_ name: String, _ command: String, expect state: WorkflowState) async throws -> Int64 {
        let id = try cluster.submit(#"{"name":"\#(name)","tasks":[{"name":"t","command":"\#(command)"}]}"#)
        XCTAssertGreaterThan(id, 0)
        let end = try await cluster.waitForEnd(id)
        XCTAssertEqual(end, state, cluster.daemonLogs())
        return id
    }

    func instanceCount() async throws -> Int {
        try await cluster.store().countRows(of: "workflow_instance")
    }

    func ids(_ run: ToolRun) -> Set<Int64> { Set(run.stdout.split(separator: "\n").compactMap { Int64($0) }) }

    func testInstancePruneRemovesOnlyOldFinishedInstancesAndDryRunChangesNothing() async throws {
        try cluster.startMaster()
        try cluster.startWorker()
        let a = try await finished("ok-a", "true", expect: .success)
        let b = try await finished("ok-b", "true", expect: .success)
        let failed = try await finished("bad", "exit 3", expect: .failure)
        let running = try cluster.submit(#"{"name":"long","tasks":[{"name":"t","command":"sleep 600"}]}"#)
        try await eventually("the long instance runs") { try await self.cluster.store().instance(running)?.state == .running }
        // Every finished instance ends at least a second before the prunes below.
        try await Task.sleep(for: .seconds(2))
        let before = try await instanceCount()
        XCTAssertEqual(before, 4)

        // Refusals: usage errors (64), and nothing changes.
        for bad in [["--older-than", "0s"], ["--older-than", "soon"], ["--older-than", "1s", "--state", "RUNNING"],
                    ["--older-than", "1s", "--state", "PAUSE"], []] {
            let run = try cluster.run("ds-instance", ["prune"] + bad)
            XCTAssertEqual(run.status, 64, "\(bad): \(run.stderr)")
            XCTAssertTrue(run.stderr.contains("--older-than") || run.stderr.contains("--state"), run.stderr)
            XCTAssertEqual(run.stdout, "")
        }
        let afterRefusals = try await instanceCount()
        XCTAssertEqual(afterRefusals, 4)

        let dry = try cluster.run("ds-instance", ["prune", "--older-than", "1s", "--dry-run"])
        XCTAssertEqual(dry.status, 0, dry.stderr)
        XCTAssertEqual(ids(dry), [a, b, failed])
        XCTAssertTrue(dry.stderr.contains("would remove 3 instances") && dry.stderr.contains("nothing changed"), dry.stderr)
        let afterDry = try await instanceCount()
        XCTAssertEqual(afterDry, 4, "a dry run changes nothing")

        let young = try cluster.run("ds-instance", ["prune", "--older-than", "1h"])
        XCTAssertEqual(young.status, 0, young.stderr)
        XCTAssertEqual(ids(young), [], "nothing ended an hour ago")

        let failures = try cluster.run("ds-instance", ["prune", "--older-than", "1s", "--state", "failure"])
        XCTAssertEqual(failures.status, 0, failures.stderr)
        XCTAssertEqual(ids(failures), [failed])
        let rest = try cluster.run("ds-instance", ["prune", "--older-than", "1s"])
        XCTAssertEqual(ids(rest), [a, b])
        XCTAssertTrue(rest.stderr.contains("removed 2 instances") && rest.stderr.contains("2 task attempts"), rest.stderr)

        let gone = try cluster.run("ds-instance", ["show", String(a)])
        XCTAssertEqual(gone.status, 65, gone.stderr)
        let store = try cluster.store()
        let attempts = try await store.taskAttempts(of: a)
        XCTAssertEqual(attempts.count, 0)
        let stillRunning = try await store.instance(running)
        XCTAssertEqual(stillRunning?.state, .running, "a running instance is never pruned")
        let shown = try cluster.run("ds-instance", ["show", String(running)])
        XCTAssertEqual(shown.status, 0, shown.stderr)
    }

    /// A master with --prune-older-than prunes soon after it starts and then every --prune-every;
    /// a running instance stays. Its prune flags are checked before it starts.
    func testAMasterPrunesFinishedInstancesOnATimer() async throws {
        for bad in [["--prune-state", "FAILURE"], ["--prune-older-than", "soon"], ["--prune-older-than", "1d", "--prune-state", "RUNNING"],
                    ["--prune-older-than", "1d", "--prune-every", "0s"]] {
            let run = try cluster.run("ds-master", ["--port", "5990"] + bad)
            XCTAssertEqual(run.status, 64, "\(bad): \(run.stderr)")
            XCTAssertTrue(run.stderr.contains("--prune"), run.stderr)
        }
        try cluster.startMaster(["--prune-older-than", "1s", "--prune-every", "1s"])
        try cluster.startWorker()
        let running = try cluster.submit(#"{"name":"long","tasks":[{"name":"t","command":"sleep 600"}]}"#)
        try await eventually("the long instance runs") { try await self.cluster.store().instance(running)?.state == .running }
        let done = try await finished("ok", "true", expect: .success)
        let store = try cluster.store()
        try await eventually("the master prunes the finished instance", timeout: 180) { try await store.instance(done) == nil }
        let attempts = try await store.taskAttempts(of: done)
        XCTAssertEqual(attempts.count, 0)
        try await Task.sleep(for: .seconds(3))
        let stillRunning = try await store.instance(running)
        let longAttempts = try await store.taskAttempts(of: running).map { "\($0.state) \($0.message ?? "")" }
        XCTAssertEqual(stillRunning?.state, .running, "a running instance is never pruned: \(longAttempts)\n\(cluster.daemonLogs())")
        XCTAssertTrue(cluster.daemonLogs().contains("prune: removed 1 instances"), cluster.daemonLogs())
    }
}
