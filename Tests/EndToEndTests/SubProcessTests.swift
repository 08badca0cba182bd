import Foundation
import Shared
import XCTest

/// SUB_PROCESS nodes on real masters, workers, ZooKeeper and SQLite: a child instance runs between
/// its node's neighbours, nests without deadlock, fails, stops and survives its parent's master.
final class SubProcessTests: ClusterTestCase {
    var marker: String { cluster.directory.appendingPathComponent("markers").path }
    func file(_ name: String) -> String { cluster.directory.appendingPathComponent(name).path }
    func store() throws -> Store { try cluster.store() }

    func children(of id: Int64) async throws -> [WorkflowInstanceRecord] {
        try await store().instances(InstanceQuery()).filter { $0.parentInstanceId == id }
    }

    /// Stores a workflow by running it once (the only way ds stores one), with `mode=store` (a
    /// gated task lets that run through), then forgets its marks.
    func store(_ json: String) async throws {
        let id = try cluster.submit(json, ["--param", "mode=store"])
        _ = try await cluster.waitForEnd(id)
        try? FileManager.default.removeItem(atPath: marker)
    }

    func testAChildRunsBetweenItsNeighboursWithTheParametersPassedDown() async throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 4)
        try await store(#"""
            {"name":"child-w","params":{"who":"nobody"},"tasks":[
             {"name":"x","command":"echo x-${who} >> \#(marker)"},{"name":"y","deps":["x"],"command":"echo y-${who} >> \#(marker)"}]}
            """#)
        let id = try cluster.submit(#"""
            {"name":"parent-w","params":{"p":"from-parent"},"tasks":[
             {"name":"a","outputs":["up"],"command":"echo a >> \#(marker); echo '${setValue(up=out)}'"},
             {"name":"sub","type":"SUB_PROCESS","deps":["a"],"workflow":"child-w","params":{"who":"${p}-${up}"}},
             {"name":"b","deps":["sub"],"command":"echo b >> \#(marker)"}]}
            """#)
        let state = try await cluster.waitForEnd(id)
        XCTAssertEqual(state, .success)
        XCTAssertEqual(cluster.lines(marker), ["a", "x-from-parent-out", "y-from-parent-out", "b"])
        let kids = try await children(of: id)
        XCTAssertEqual(kids.count, 1)
        XCTAssertEqual(kids.first?.state, .success)
        let sub = try await store().taskAttempts(of: id).first { $0.taskName == "sub" }
        XCTAssertEqual(sub?.childInstanceId, kids.first?.id)
        XCTAssertEqual(kids.first?.parentTaskInstanceId, sub?.id)
        XCTAssertTrue(sub?.message?.contains("child instance \(kids.first!.id!) ended SUCCESS") ?? false, sub?.message ?? "")
        // A workflow that is not stored fails its node, naming it; nothing else starts.
        let missing = try cluster.submit(#"{"name":"orphan","tasks":[{"name":"s","type":"SUB_PROCESS","workflow":"never-stored"}]}"#)
        let m = try await cluster.waitForEnd(missing)
        XCTAssertEqual(m, .failure)
        let row = try await store().taskAttempts(of: missing).first
        XCTAssertTrue(row?.message?.contains("no stored workflow 'never-stored'") ?? false, row?.message ?? "")
    }

    /// The seed's deadlock: nested sub-processes in a bounded pool. Ten levels, two slots, and ten
    /// top-level instances of the ten workflows all waiting at once: every one completes.
    func testNestedTenDeepWithTwoSlotsCompletes() async throws {
        var ids: [Int64] = []
        for level in (0..<10).reversed() {
            let task = level == 9 ? #"{"name":"leaf","command":"echo leaf >> \#(marker)"}"#
                : #"{"name":"down","type":"SUB_PROCESS","workflow":"nest-\#(level + 1)"}"#
            ids.append(try cluster.submit(#"{"name":"nest-\#(level)","tasks":[\#(task)]}"#))
        }
        try cluster.startMaster(["--max-workflows", "2"])
        try cluster.startWorker(slots: 2)
        for id in ids {
            let state = try await cluster.waitForEnd(id, timeout: 600)
            XCTAssertEqual(state, .success, "instance \(id)")
        }
        // nest-k started at top level runs a chain of 10 - k instances down to one leaf: 55
        // instances, 10 leaves.
        XCTAssertEqual(cluster.lines(marker).count, 10)
        let all = try await store().instances(InstanceQuery())
        XCTAssertEqual(all.count, 55)
        XCTAssertTrue(all.allSatisfy { $0.state == .success })
        // The deepest chain: nest-0's descendants, one per level.
        var depth = 0
        var next: Int64? = ids.last
        while let id = next {
            next = all.first { $0.parentInstanceId == id }?.id
            if next != nil { depth += 1 }
        }
        XCTAssertEqual(depth, 9)
    }

    func testAFailingChildFailsItsNodeAndAStopReachesTheChild() async throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 4)
        try await store(#"{"name":"bad-child","tasks":[{"name":"x","command":"exit 3"}]}"#)
        let failing = try cluster.submit(#"""
            {"name":"fails","tasks":[{"name":"sub","type":"SUB_PROCESS","workflow":"bad-child"},
             {"name":"after","deps":["sub"],"command":"echo after >> \#(marker)"}]}
            """#)
        let f = try await cluster.waitForEnd(failing)
        XCTAssertEqual(f, .failure)
        let row = try await store().taskAttempts(of: failing).first
        XCTAssertEqual(row?.state, .failure)
        XCTAssertTrue(row?.message?.contains("ended FAILURE") ?? false)
        XCTAssertFalse(cluster.lines(marker).contains("after"))

        try await store(#"{"name":"slow-child","params":{"mode":"run"},"tasks":[{"name":"x","command":"[ ${mode} = store ] && exit 0; echo $$ > \#(file("pgid")); echo x-start >> \#(marker); while [ ! -e \#(file("never")) ]; do sleep 0.1; done"}]}"#)
        try? FileManager.default.removeItem(atPath: file("pgid"))
        let parent = try cluster.submit(#"{"name":"stops","tasks":[{"name":"sub","type":"SUB_PROCESS","workflow":"slow-child"}]}"#)
        try await eventually("the child's task runs") { self.cluster.lines(self.marker).contains("x-start") }
        let stop = try cluster.run("ds-instance", ["stop", String(parent), "--wait"])
        XCTAssertEqual(stop.status, 0, stop.stdout + stop.stderr)
        let kidRecord = try await children(of: parent).first
        let kid = try XCTUnwrap(kidRecord)
        XCTAssertEqual(kid.state, .stop, "the stop reached the child")
        let node = try await store().taskAttempts(of: parent).first
        XCTAssertEqual(node?.state, .kill)
        let pgid = try XCTUnwrap(Int32(String(contentsOfFile: file("pgid"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        try await eventually("the child's task was killed") { InstanceControlTests.liveProcesses(inGroup: pgid).isEmpty }
    }

    func testAMasterKilledWhileTheChildRunsLosesNothing() async throws {
        let first = try cluster.startMaster()
        try cluster.startWorker(slots: 4)
        try await store(#"{"name":"gated-child","params":{"mode":"run"},"tasks":[{"name":"x","command":"[ ${mode} = store ] && exit 0; echo x-start >> \#(marker); while [ ! -e \#(file("go")) ]; do sleep 0.1; done; echo x >> \#(marker)"}]}"#)
        let parent = try cluster.submit(#"""
            {"name":"survives","tasks":[{"name":"sub","type":"SUB_PROCESS","workflow":"gated-child"},
             {"name":"after","deps":["sub"],"command":"echo after >> \#(marker)"}]}
            """#)
        try await eventually("the child's task runs") { self.cluster.lines(self.marker).contains("x-start") }
        // The node runs on its master: ds-failover sees no orphaned task in it.
        let list = try cluster.run("ds-failover", ["--list", "--json"])
        XCTAssertEqual(list.status, 0, list.stderr)
        XCTAssertTrue(list.stdout.contains("\"orphaned_tasks\":[]"), list.stdout)
        try cluster.startMaster()
        cluster.kill9(first)
        let firstHost = "127.0.0.1:\(first.arguments![3])"
        try await eventually("the parent and child moved to the second master", timeout: 180) {
            let parentHost = try await self.store().instance(parent)?.host
            let kidHost = try await self.children(of: parent).first?.host
            return parentHost != firstHost && kidHost != firstHost
        }
        FileManager.default.createFile(atPath: file("go"), contents: nil)
        let state = try await cluster.waitForEnd(parent)
        XCTAssertEqual(state, .success)
        XCTAssertEqual(cluster.lines(marker), ["x-start", "x", "after"])
        let kids = try await children(of: parent)
        XCTAssertEqual(kids.count, 1, "one child, never started twice")
        let rows = try await store().taskAttempts(of: parent)
        XCTAssertEqual(rows.filter { $0.taskName == "sub" }.count, 1)
    }

    /// A stopped parent resumed: its node continues the child it started (its successes kept),
    /// rather than starting a second child that would do the work again.
    func testResumingAParentContinuesItsChild() async throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 4)
        try await store(#"""
            {"name":"two-step","params":{"mode":"run"},"tasks":[
             {"name":"x","command":"[ ${mode} = store ] && exit 0; echo x >> \#(marker)"},
             {"name":"y","deps":["x"],"command":"[ ${mode} = store ] && exit 0; echo y-start >> \#(marker); while [ ! -e \#(file("go")) ]; do sleep 0.1; done; echo y >> \#(marker)"}]}
            """#)
        let parent = try cluster.submit(#"{"name":"resumable","tasks":[{"name":"sub","type":"SUB_PROCESS","workflow":"two-step"}]}"#)
        try await eventually("y runs") { self.cluster.lines(self.marker).contains("y-start") }
        let stop = try cluster.run("ds-instance", ["stop", String(parent), "--wait"])
        XCTAssertEqual(stop.status, 0, stop.stdout + stop.stderr)
        FileManager.default.createFile(atPath: file("go"), contents: nil)
        let resume = try cluster.run("ds-instance", ["resume", String(parent), "--wait"])
        XCTAssertEqual(resume.status, 0, resume.stdout + resume.stderr)
        XCTAssertEqual(cluster.lines(marker), ["x", "y-start", "y-start", "y"], "x ran once; y again after its kill")
        let kids = try await children(of: parent)
        XCTAssertEqual(kids.count, 1, "the same child, resumed")
        XCTAssertEqual(kids.first?.run, 2)
        let rows = try await store().taskAttempts(of: parent)
        XCTAssertEqual(rows.map(\.state), [.kill, .success])
        XCTAssertEqual(kids.first?.parentTaskInstanceId, rows.last?.id)
    }

    /// A workflow may not start one of its ancestors: the cycle is named, and the node fails.
    func testACycleOfSubProcessesFailsNamingIt() async throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 2)
        // ping-w is stored first (its node fails: pong-w is not stored yet), then pong-w runs ping-w,
        // whose node would start pong-w again.
        try await store(#"{"name":"ping-w","tasks":[{"name":"p","type":"SUB_PROCESS","workflow":"pong-w"}]}"#)
        let id = try cluster.submit(#"{"name":"pong-w","tasks":[{"name":"q","type":"SUB_PROCESS","workflow":"ping-w"}]}"#)
        let state = try await cluster.waitForEnd(id)
        XCTAssertEqual(state, .failure)
        let kid = try await children(of: id).first
        let row = try await store().taskAttempts(of: try XCTUnwrap(kid?.id)).first
        XCTAssertTrue(row?.message?.contains("sub-process cycle: pong-w -> ping-w -> pong-w") ?? false, row?.message ?? "")
        let all = try await store().instances(InstanceQuery())
        XCTAssertEqual(all.filter { $0.name == "pong-w" }.count, 1, "no second pong-w started")
    }

    func testSubProcessFieldsAreValidated() throws {
        let cases: [(String, String)] = [
            (#"{"name":"s","type":"SUB_PROCESS"}"#, "task 's', field 'workflow': missing"),
            (#"{"name":"s","type":"SUB_PROCESS","workflow":"w"}"#, "a workflow cannot start itself"),
            (#"{"name":"s","type":"SUB_PROCESS","workflow":"x","command":"true"}"#, "field 'command': a SUB_PROCESS node starts"),
            (#"{"name":"s","type":"SUB_PROCESS","workflow":"x","version":0}"#, "field 'version': 0 is not a version"),
            (#"{"name":"s","type":"SUB_PROCESS","workflow":"x","params":{"a":[]}}"#, "field 'params'"),
            (#"{"name":"s","command":"true","workflow":"x"}"#, "only SUB_PROCESS nodes have workflow"),
        ]
        for (task, expected) in cases {
            let run = try cluster.run("ds-submit", ["--dry-run", try cluster.workflowFile(#"{"name":"w","tasks":[\#(task)]}"#)])
            XCTAssertEqual(run.status, 65, task)
            XCTAssertTrue(run.stderr.contains(expected), "\(task): expected \(expected), got \(run.stderr)")
        }
    }

    /// Issue 21, item 7: a failed child recovered by hand, then its parent at once. The parent's
    /// node found its child neither ended nor paused and started a second one: the child's work
    /// ran twice. It must attach to the child that runs.
    func testRecoveringAChildThenItsParentAttachesTheNodeToTheRunningChild() async throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 4)
        try await store(#"{"name":"flaky-child","params":{"mode":"run"},"tasks":[{"name":"x","command":"[ ${mode} = store ] && exit 0; echo x-start >> \#(marker); [ -e \#(file("fixed")) ] || exit 3; while [ ! -e \#(file("go")) ]; do sleep 0.1; done; echo x >> \#(marker)"}]}"#)
        let parent = try cluster.submit(#"""
            {"name":"recovers","tasks":[{"name":"sub","type":"SUB_PROCESS","workflow":"flaky-child"},
             {"name":"after","deps":["sub"],"command":"echo after >> \#(marker)"}]}
            """#)
        let failed = try await cluster.waitForEnd(parent)
        XCTAssertEqual(failed, .failure)
        let firstChild = try await children(of: parent).first?.id
        let child = try XCTUnwrap(firstChild)
        FileManager.default.createFile(atPath: file("fixed"), contents: nil)
        // The child's task waits for the gate: the child is running (or about to) when the node runs.
        XCTAssertEqual(try cluster.run("ds-instance", ["recover", String(child)]).status, 0)
        XCTAssertEqual(try cluster.run("ds-instance", ["recover", String(parent)]).status, 0)
        try await eventually("the node runs again") {
            let nodes = try await self.store().taskAttempts(of: parent).filter { $0.taskName == "sub" && $0.childInstanceId != nil }
            let kids = try await self.children(of: parent)
            return nodes.count == 2 || kids.count > 1
        }
        FileManager.default.createFile(atPath: file("go"), contents: nil)
        let state = try await cluster.waitForEnd(parent)
        XCTAssertEqual(state, .success)
        let kids = try await children(of: parent)
        XCTAssertEqual(kids.map(\.id), [child], "the node attached to the recovered child; no second child")
        XCTAssertEqual(cluster.lines(marker), ["x-start", "x-start", "x", "after"], "x failed once and ran once more, not twice")
        let rows = try await store().taskAttempts(of: parent).filter { $0.taskName == "sub" }
        XCTAssertEqual(rows.map(\.state), [.failure, .success])
        XCTAssertEqual(rows.last?.childInstanceId, child)
        XCTAssertEqual(kids.first?.parentTaskInstanceId, rows.last?.id)
    }

    /// Issue 21, item 8: a failed child whose stored definition no longer reads, and its parent
    /// recovered: recovering the child was refused inside the round that stores the node's
    /// attempt, and the refusal stopped the master (and the next, which adopted the parent). The
    /// node must fail with the reason instead.
    func testAChildWhoseDefinitionNoLongerReadsFailsItsNodeNotTheMaster() async throws {
        let master = try cluster.startMaster()
        try cluster.startWorker(slots: 2)
        try await store(#"{"name":"breakable","params":{"mode":"run"},"tasks":[{"name":"x","command":"[ ${mode} = store ] && exit 0; exit 3"}]}"#)
        let parent = try cluster.submit(#"{"name":"adopts-broken","tasks":[{"name":"sub","type":"SUB_PROCESS","workflow":"breakable"}]}"#)
        let failed = try await cluster.waitForEnd(parent)
        XCTAssertEqual(failed, .failure)
        try sqlite("UPDATE workflow_definition SET json = 'not json' WHERE name = 'breakable';")
        let recover = try cluster.run("ds-instance", ["recover", String(parent)])
        XCTAssertEqual(recover.status, 0, recover.stderr)
        try await eventually("the parent ends again, or its master exits", timeout: 120) {
            let row = try await self.store().instance(parent)
            return ((row?.state.isTerminal ?? false) && row?.run == 2) || !master.isRunning
        }
        XCTAssertTrue(master.isRunning, "the master goes on")
        let state = try await store().instance(parent)?.state
        XCTAssertEqual(state, .failure)
        let node = try await store().taskAttempts(of: parent).last
        XCTAssertEqual(node?.state, .failure)
        XCTAssertTrue(node?.message?.contains("its stored definition cannot be run") ?? false, node?.message ?? "no message")
        let kids = try await children(of: parent)
        XCTAssertEqual(kids.count, 1, "no second child")
    }

    /// Runs one SQL statement on the cluster's database (an operator's hand edit).
    func sqlite(_ statement: String) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        p.arguments = [cluster.databasePath, statement]
        try p.run()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, statement)
    }
}
