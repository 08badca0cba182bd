import Foundation
import Shared
import XCTest

/// Task timeouts (FAIL, WARN, WARNFAIL) and a workflow's timeout on real daemons: what is killed
/// is killed whole, and each timeout that alerts leaves exactly one alert row, also across a
/// master's death.
final class TimeoutTests: ClusterTestCase {
    var marker: String { cluster.directory.appendingPathComponent("markers").path }
    func file(_ name: String) -> String { cluster.directory.appendingPathComponent(name).path }

    func attempts(_ id: Int64) async throws -> [TaskInstanceRecord] { try await cluster.store().taskAttempts(of: id) }
    func alerts(_ id: Int64) async throws -> [AlertRecord] { try await cluster.store().alerts(of: id) }

    /// A task that notes its process group, then waits for the file `go`.
    func gated(_ name: String, _ extra: String) -> String {
        #"{"name":"\#(name)",\#(extra)"command":"echo $$ > \#(file("pgid-" + name)); while [ ! -e \#(file("go")) ]; do sleep 0.1; done; echo \#(name) >> \#(marker)"}"#
    }

    func pgid(_ name: String) async throws -> Int32 {
        try await numberWritten(to: file("pgid-" + name), by: name)
    }

    func testFailKillsTheWholeGroupAndFailsTheWorkflowWithoutAnAlert() async throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 2)
        // The shell starts a child that ignores SIGTERM, and one more sleep.
        let id = try cluster.submit(#"""
            {"name":"fail-timeout","tasks":[
             {"name":"slow","timeout":"1s","timeout_strategy":"FAIL",
              "command":"echo $$ > \#(file("pgid-slow")); (trap '' TERM; sleep 600) & sleep 600"},
             {"name":"after","deps":["slow"],"command":"echo after >> \#(marker)"}]}
            """#)
        let group = try await pgid("slow")
        let state = try await cluster.waitForEnd(id)
        XCTAssertEqual(state, .failure)
        let rows = try await attempts(id)
        XCTAssertEqual(rows.map(\.taskName), ["slow"])
        XCTAssertEqual(rows.first?.state, .failure)
        XCTAssertTrue(rows.first?.message?.contains("timed out after 1s and was killed") ?? false, rows.first?.message ?? "")
        try await eventually("no process of the group survives") { InstanceControlTests.liveProcesses(inGroup: group).isEmpty }
        XCTAssertEqual(cluster.lines(marker), [])
        let none = try await alerts(id)
        XCTAssertEqual(none.count, 0, "FAIL fails quietly; WARN and WARNFAIL alert")
    }

    func testWarnAlertsOnceAndLetsTheTaskRun() async throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 2)
        let id = try cluster.submit(#"{"name":"warn-timeout","tasks":[\#(gated("w", #""timeout":"1s","timeout_strategy":"WARN","#))]}"#)
        let group = try await pgid("w")
        try await eventually("the alert is written") { try await !self.alerts(id).isEmpty }
        // It still runs, and its log says so.
        XCTAssertFalse(InstanceControlTests.liveProcesses(inGroup: group).isEmpty)
        do { let value = try await attempts(id).first?.state; XCTAssertEqual(value, .running) }
        try await Task.sleep(for: .seconds(2))
        FileManager.default.createFile(atPath: file("go"), contents: nil)
        let state = try await cluster.waitForEnd(id)
        XCTAssertEqual(state, .success)
        let rows = try await alerts(id)
        XCTAssertEqual(rows.count, 1, "one alert per timeout")
        let alert = try XCTUnwrap(rows.first)
        XCTAssertEqual(alert.kind, .taskTimeout)
        XCTAssertEqual(alert.state, "PENDING")
        let content = try XCTUnwrap(alert.content)
        let attempt = try await attempts(id).first
        XCTAssertEqual(content.task, "w")
        XCTAssertEqual(content.taskInstance, attempt?.id)
        XCTAssertEqual(content.instance, id)
        XCTAssertEqual(content.timeoutSeconds, 1)
        XCTAssertTrue(content.title.contains("still runs after its timeout of 1s"), content.title)
        let log = try String(contentsOfFile: try XCTUnwrap(attempt?.logPath), encoding: .utf8)
        XCTAssertTrue(log.contains("[ds] warning: task is still running after its timeout of 1s"), log)
    }

    func testWarnFailKillsAndAlertsOnce() async throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 2)
        let id = try cluster.submit(#"{"name":"warnfail","tasks":[\#(gated("wf", #""timeout":"1s","timeout_strategy":"WARNFAIL","#))]}"#)
        let group = try await pgid("wf")
        let state = try await cluster.waitForEnd(id)
        XCTAssertEqual(state, .failure)
        try await eventually("no process of the group survives") { InstanceControlTests.liveProcesses(inGroup: group).isEmpty }
        // The deadline's timer and the killed attempt's result may both notice it: one row.
        try await Task.sleep(for: .seconds(2))
        let rows = try await alerts(id)
        XCTAssertEqual(rows.count, 1, "\(rows.map(\.contentJson))")
        XCTAssertEqual(rows.first?.kind, .taskTimeout)
    }

    func testAWorkflowTimeoutAlertsOnceAndTheInstanceRunsOn() async throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 2)
        let id = try cluster.submit(#"{"name":"slow-workflow","timeout":"1s","tasks":[\#(gated("g", ""))]}"#)
        try await eventually("the workflow's alert is written") { try await !self.alerts(id).isEmpty }
        do { let value = try await cluster.store().instance(id)?.state; XCTAssertEqual(value, .running) }
        FileManager.default.createFile(atPath: file("go"), contents: nil)
        let state = try await cluster.waitForEnd(id)
        XCTAssertEqual(state, .success)
        let rows = try await alerts(id)
        XCTAssertEqual(rows.map(\.kind), [.workflowTimeout])
        XCTAssertEqual(rows.first?.content?.run, 1)
        XCTAssertTrue(rows.first?.content?.title.contains("still runs after its workflow's timeout of 1s") ?? false)
    }

    /// The master that wrote the alert dies; the one taking over arms the timeout again from the
    /// stored start, finds it past, and the event stays one row.
    func testATimeoutAlertStaysOneRowAcrossATakeover() async throws {
        let first = try cluster.startMaster()
        try cluster.startWorker(slots: 2)
        let id = try cluster.submit(#"{"name":"warn-takeover","timeout":"1s","tasks":[\#(gated("w", #""timeout":"1s","timeout_strategy":"WARN","#))]}"#)
        _ = try await pgid("w")
        try await eventually("both alerts are written") { try await self.alerts(id).count == 2 }
        try cluster.startMaster()
        cluster.kill9(first)
        let firstHost = "127.0.0.1:\(first.arguments![3])"
        try await eventually("the second master owns the instance", timeout: 180) {
            guard let host = try await self.cluster.store().instance(id)?.host else { return false }
            return host != firstHost
        }
        // Its timers for the task and the workflow fire at once (their deadlines are past): it
        // notices both again, and its log says so.
        let secondLog = cluster.directory.appendingPathComponent("ds-master-2.log").path
        try await eventually("the second master noticed both timeouts") {
            let log = (try? String(contentsOfFile: secondLog, encoding: .utf8)) ?? ""
            return log.contains("still runs after its timeout of 1s") && log.contains("still runs after its workflow's timeout of 1s")
        }
        FileManager.default.createFile(atPath: file("go"), contents: nil)
        let state = try await cluster.waitForEnd(id)
        XCTAssertEqual(state, .success)
        let rows = try await alerts(id)
        XCTAssertEqual(rows.map(\.kind).sorted { $0.rawValue < $1.rawValue }, [.taskTimeout, .workflowTimeout])
    }

    /// Its master dies while a task overruns; the task ends before any master looks again. The
    /// master that takes over finds the result, and the instance's end: both overruns are alerted.
    /// A WARN task that ends before a master ever saw it running is alerted from its result too.
    func testOverrunsSeenOnlyInResultsAreAlerted() async throws {
        let first = try cluster.startMaster()
        try cluster.startWorker(slots: 2)
        let id = try cluster.submit(#"""
            {"name":"overrun","timeout":"1s","tasks":[
             {"name":"w","timeout":"1s","timeout_strategy":"WARN","command":"echo w-start >> \#(marker); sleep 2.5; echo w >> \#(marker)"},
             {"name":"quick","deps":["w"],"timeout":"10ms","timeout_strategy":"WARN","command":"sleep 0.5"}]}
            """#)
        try await eventually("w runs") { self.cluster.lines(self.marker).contains("w-start") }
        cluster.kill9(first)
        try await eventually("w has ended") { self.cluster.lines(self.marker).contains("w") }
        try cluster.startMaster()
        let state = try await cluster.waitForEnd(id)
        XCTAssertEqual(state, .success)
        let rows = try await alerts(id)
        let kinds = rows.compactMap(\.content).map { "\($0.kind.rawValue) \($0.task ?? "-")" }.sorted()
        XCTAssertEqual(kinds, ["TASK_TIMEOUT quick", "TASK_TIMEOUT w", "WORKFLOW_TIMEOUT -"], "\(rows.map(\.contentJson))")
    }
}
