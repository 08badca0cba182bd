import Foundation
import Shared
import XCTest

/// Task pools on real masters, workers, ZooKeeper and SQLite: a pool's slots bound how many of its
/// tasks run at once across workflows and masters, also across a master's kill -9, and nothing leaks.
class TaskPoolTests: ClusterTestCase {
    var marker: String { cluster.directory.appendingPathComponent("markers").path }
    var gate: String { cluster.directory.appendingPathComponent("go").path }
    var runningDir: String { cluster.directory.appendingPathComponent("running").path }

    func pool(_ arguments: [String]) throws -> ToolRun { try cluster.run("ds-pool", arguments) }

    /// A pooled task: marks itself running, records how many pooled tasks run (itself included),
    /// waits for the gate, then unmarks itself before it ends (so its slot is free only after).
    func pooledTask(_ name: String) -> String {
        let me = "\(runningDir)/$DS_TASK_INSTANCE_ID"
        return #"{"name":"\#(name)","pool":"heavy","command":"touch \#(me); echo count $(ls \#(runningDir) | wc -l) >> \#(marker); while [ ! -e \#(gate) ]; do sleep 0.1; done; sleep 0.3; rm \#(me); echo done >> \#(marker)"}"#
    }

    func testAPoolOfTwoSharedByThreeWorkflowsNeverRunsMoreThanTwoAlsoAcrossAMasterKill() async throws {
        try FileManager.default.createDirectory(atPath: runningDir, withIntermediateDirectories: true)
        let set = try pool(["set", "heavy", "2"])
        XCTAssertEqual(set.status, 0, set.stderr)
        let first = try cluster.startMaster()
        try cluster.startMaster()
        try cluster.startWorker(slots: 8)
        let ids = try (0..<3).map { w in
            try cluster.submit(#"{"name":"pooled-\#(w)","tasks":[\#(pooledTask("a")),\#(pooledTask("b")),\#(pooledTask("c"))]}"#)
        }
        try await eventually("two pooled tasks run, seven wait") {
            let list = try self.pool(["list", "--json"])
            guard let usage = try? WireJSON.decode(PoolUsage.self, Data(list.stdout.utf8)) else { return false }
            return usage.inUse == 2 && usage.waiting == 7
        }
        XCTAssertEqual(cluster.lines(marker).count, 2, "exactly two started")
        // A waiting task says what it waits for.
        var sawNote = false
        for id in ids {
            let show = try cluster.run("ds-instance", ["show", String(id)])
            if show.stdout.contains("waiting for pool heavy: 2/2 in use") { sawNote = true }
        }
        XCTAssertTrue(sawNote, "a waiting task names its pool")
        let table = try pool(["list"])
        XCTAssertTrue(table.stdout.split(separator: "\n").contains { $0.split(separator: " ", omittingEmptySubsequences: true) == ["heavy", "2", "2", "7"] },
                      table.stdout)

        // The master that runs some of them dies: the slots its tasks hold stay held (their
        // worker runs on), its waiting tasks move with their instances, and no third one starts.
        let owned = try await cluster.store().instance(ids[0])?.host
        let firstHost = "127.0.0.1:\(first.arguments![3])"
        cluster.kill9(first)
        try await eventually("no instance is owned by the dead master", timeout: 180) {
            for id in ids where try await self.cluster.store().instance(id)?.host == firstHost { return false }
            return true
        }
        try await Task.sleep(for: .seconds(2))
        XCTAssertEqual(cluster.lines(marker).count, 2, "still only two started (first master owned \(owned ?? "?"))")

        FileManager.default.createFile(atPath: gate, contents: nil)
        for id in ids {
            let state = try await cluster.waitForEnd(id)
            XCTAssertEqual(state, .success, "instance \(id)")
            let rows = try await cluster.store().taskAttempts(of: id)
            XCTAssertEqual(rows.filter { $0.state == .success }.map(\.taskName).sorted(), ["a", "b", "c"], "each ran once")
        }
        let counts = cluster.lines(marker).filter { $0.hasPrefix("count ") }.compactMap { Int($0.dropFirst(6)) }
        XCTAssertEqual(counts.count, 9)
        XCTAssertLessThanOrEqual(counts.max() ?? 99, 2, "never more than two at once: \(counts)")
        let after = try await cluster.store().pool("heavy")
        XCTAssertEqual(after, PoolUsage(name: "heavy", slots: 2, inUse: 0, waiting: 0), "no slot leaked")
    }

    func testResizingRemovingAndRefusals() async throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 4)
        // A workflow naming a pool that does not exist is refused, naming task and field.
        let file = try cluster.workflowFile(#"{"name":"p","tasks":[{"name":"t","pool":"nope","command":"echo t >> \#(marker)"}]}"#)
        let refused = try cluster.run("ds-submit", [file])
        XCTAssertEqual(refused.status, 65, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("task 't', field 'pool': pool 'nope' does not exist; make it first: ds-pool set nope SLOTS"), refused.stderr)
        do { let value = try await cluster.store().alerts(); XCTAssertEqual(value.count, 0) }
        // A pool of 0 holds its task back; growing it lets it run.
        XCTAssertEqual(try pool(["set", "nope", "0"]).status, 0)
        let id = try cluster.submit(#"{"name":"p","tasks":[{"name":"t","pool":"nope","command":"echo t >> \#(marker)"}]}"#)
        try await Task.sleep(for: .seconds(2))
        XCTAssertEqual(cluster.lines(marker), [])
        let show = try cluster.run("ds-instance", ["show", String(id)])
        XCTAssertTrue(show.stdout.contains("waiting for pool nope: 0/0 in use"), show.stdout)
        // Removed while the task waits: it waits on, and says the pool is gone.
        XCTAssertEqual(try pool(["remove", "nope"]).status, 0)
        let gone = try cluster.run("ds-instance", ["show", String(id)])
        XCTAssertTrue(gone.stdout.contains("waiting for pool nope, which does not exist"), gone.stdout)
        let listed = try pool(["list"])
        XCTAssertTrue(listed.stdout.split(separator: "\n").contains { $0.split(separator: " ") == ["nope", "-", "0", "1"] }, listed.stdout)
        XCTAssertEqual(try pool(["set", "nope", "1"]).status, 0)
        let state = try await cluster.waitForEnd(id)
        XCTAssertEqual(state, .success)
        XCTAssertEqual(cluster.lines(marker), ["t"])
        // Bad input.
        for (arguments, status) in [(["set", "nope", "-1"], 64), (["set", "nope", "100001"], 64), (["set", "a/b", "1"], 64),
                                    (["set", "..", "1"], 64), (["set", "", "1"], 64), (["set", "x", "two"], 64),
                                    (["remove", "never-made"], 65)] as [([String], Int32)] {
            let run = try pool(arguments)
            XCTAssertEqual(run.status, status, "\(arguments): \(run.stderr)")
            XCTAssertFalse(run.stderr.isEmpty, "\(arguments) says why")
        }
        // A stop reaches a task that waits for a pool: it ends without running.
        XCTAssertEqual(try pool(["set", "nope", "0"]).status, 0)
        let held = try cluster.submit(#"{"name":"p","tasks":[{"name":"t","pool":"nope","command":"echo held >> \#(marker)"}]}"#)
        try await eventually("the task waits") {
            try await self.cluster.store().taskAttempts(of: held).first?.state == .submitted
        }
        let stop = try cluster.run("ds-instance", ["stop", String(held), "--wait"])
        XCTAssertEqual(stop.status, 0, stop.stderr)
        let rows = try await cluster.store().taskAttempts(of: held)
        XCTAssertEqual(rows.map(\.state), [.kill])
        XCTAssertFalse(cluster.lines(marker).contains("held"))
    }

    /// Issue 21, item 2: the first take of pool slots fails (a busy database). The attempts it was
    /// for were taken out of the backlog before the take, and nothing put them back: the instance
    /// stayed RUNNING for ever. They must wait on and run once the next take succeeds.
    func testAFailedSlotTakeLosesNoWaitingTask() async throws {
        XCTAssertEqual(try pool(["set", "heavy", "1"]).status, 0)
        let master = try cluster.startMaster(environment: ["DS_FAULT_DB": "every=1,path=taking slots of pool,limit=1"])
        try cluster.startWorker(slots: 2)
        let id = try cluster.submit(#"{"name":"pooled-once","tasks":[{"name":"a","pool":"heavy","command":"echo a >> \#(marker)"},{"name":"b","pool":"heavy","command":"echo b >> \#(marker)"}]}"#)
        let state = try await cluster.waitForEnd(id, timeout: 90)
        XCTAssertEqual(state, .success)
        XCTAssertTrue(master.isRunning)
        XCTAssertTrue(cluster.daemonLogs().contains("taking slots of pool 'heavy': injected fault (DS_FAULT_DB)"), "the take failed once")
        XCTAssertEqual(cluster.lines(marker).sorted(), ["a", "b"], "each ran once")
        let after = try await cluster.store().pool("heavy")
        XCTAssertEqual(after, PoolUsage(name: "heavy", slots: 1, inUse: 0, waiting: 0), "no slot leaked")
    }
}
