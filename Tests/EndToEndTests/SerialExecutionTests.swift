import Foundation
import Shared
import XCTest

/// A workflow's execution type, each with three quick submissions of one workflow, on real
/// masters, workers, ZooKeeper and SQLite.
class SerialExecutionTests: ClusterTestCase {
    var marker: String { cluster.directory.appendingPathComponent("markers").path }
    var gate: String { cluster.directory.appendingPathComponent("go").path }

    /// One task that notes its instance's start, waits for the gate, and notes its end.
    func workflow(_ execution: String, priority: String = "MEDIUM") -> String {
        #"""
        {"name":"serial-\#(execution)","execution":"\#(execution)","priority":"\#(priority)","tasks":[
         {"name":"t","command":"echo start-$DS_WORKFLOW_INSTANCE_ID >> \#(marker); while [ ! -e \#(gate) ]; do sleep 0.1; done; sleep 0.2; echo end-$DS_WORKFLOW_INSTANCE_ID >> \#(marker)"}]}
        """#
    }

    func state(_ id: Int64) async throws -> WorkflowState? { try await cluster.store().instance(id)?.state }

    func startCluster() throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 4)
    }

    /// The instances ran one at a time, in this order.
    func assertRanOneAfterAnother(_ ids: [Int64], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(cluster.lines(marker), ids.flatMap { ["start-\($0)", "end-\($0)"] }, file: file, line: line)
    }

    func testParallelRunsAllThreeAtOnce() async throws {
        try startCluster()
        let ids = try (0..<3).map { _ in try cluster.submit(workflow("PARALLEL")) }
        try await eventually("all three run") { Set(self.cluster.lines(self.marker)) == Set(ids.map { "start-\($0)" }) }
        FileManager.default.createFile(atPath: gate, contents: nil)
        for id in ids { let s = try await cluster.waitForEnd(id); XCTAssertEqual(s, .success) }
    }

    func testSerialWaitRunsThemOneAfterAnotherInSubmissionOrder() async throws {
        try startCluster()
        // The last is of higher priority: under SERIAL_WAIT it still waits its turn.
        let ids = try (0..<3).map { i in try cluster.submit(workflow("SERIAL_WAIT", priority: i == 2 ? "HIGH" : "MEDIUM")) }
        try await eventually("the first runs") { self.cluster.lines(self.marker) == ["start-\(ids[0])"] }
        // The others wait, and say for what; they hold no master slot.
        try await Task.sleep(for: .seconds(1))
        XCTAssertEqual(cluster.lines(marker), ["start-\(ids[0])"])
        let show = try cluster.run("ds-instance", ["show", String(ids[2])])
        XCTAssertTrue(show.stdout.contains("waits for instance \(ids[0]) of 'serial-SERIAL_WAIT' to end (execution SERIAL_WAIT)"), show.stdout)
        // list gives the reason show gives (it said "waits for a master to claim it").
        let list = try cluster.run("ds-instance", ["list", "--workflow", "serial-SERIAL_WAIT"])
        let row = list.stdout.split(separator: "\n").first { $0.hasPrefix("\(ids[2]) ") }
        XCTAssertTrue(row?.hasSuffix("waits for instance \(ids[0]) of 'serial-SERIAL_WAIT' to end (execution SERIAL_WAIT)") == true, list.stdout)
        FileManager.default.createFile(atPath: gate, contents: nil)
        for id in ids { let s = try await cluster.waitForEnd(id); XCTAssertEqual(s, .success) }
        assertRanOneAfterAnother(ids)
    }

    func testSerialDiscardEndsTheNewOnesWithoutRunningThem() async throws {
        try startCluster()
        let first = try cluster.submit(workflow("SERIAL_DISCARD"))
        try await eventually("the first runs") { self.cluster.lines(self.marker) == ["start-\(first)"] }
        let later = try (0..<2).map { _ in try cluster.submit(workflow("SERIAL_DISCARD")) }
        for id in later {
            let s = try await cluster.waitForEnd(id)
            XCTAssertEqual(s, .stop)
            let instance = try await cluster.store().instance(id)
            XCTAssertEqual(instance?.message, "discarded: instance \(first) of 'serial-SERIAL_DISCARD' was running (execution SERIAL_DISCARD)")
            let rows = try await cluster.store().taskAttempts(of: id)
            XCTAssertEqual(rows.count, 0, "a discarded instance runs nothing")
        }
        FileManager.default.createFile(atPath: gate, contents: nil)
        let s = try await cluster.waitForEnd(first)
        XCTAssertEqual(s, .success)
        XCTAssertEqual(cluster.lines(marker), ["start-\(first)", "end-\(first)"])
        // With none running, a new one runs.
        let next = try cluster.submit(workflow("SERIAL_DISCARD"))
        let n = try await cluster.waitForEnd(next)
        XCTAssertEqual(n, .success)
    }

    func testSerialPriorityStartsTheWaitingByPriority() async throws {
        try startCluster()
        let first = try cluster.submit(workflow("SERIAL_PRIORITY", priority: "LOW"))
        try await eventually("the first runs") { self.cluster.lines(self.marker) == ["start-\(first)"] }
        let low = try cluster.submit(workflow("SERIAL_PRIORITY", priority: "LOW"))
        let high = try cluster.submit(workflow("SERIAL_PRIORITY", priority: "HIGH"))
        try await Task.sleep(for: .seconds(1))
        XCTAssertEqual(cluster.lines(marker), ["start-\(first)"])
        FileManager.default.createFile(atPath: gate, contents: nil)
        for id in [first, low, high] { let s = try await cluster.waitForEnd(id); XCTAssertEqual(s, .success) }
        assertRanOneAfterAnother([first, high, low])
    }

    func testExecutionIsValidated() throws {
        let bad = try cluster.run("ds-submit", ["--dry-run", try cluster.workflowFile(#"{"name":"w","execution":"SERIAL","tasks":[{"name":"a","command":"true"}]}"#)])
        XCTAssertEqual(bad.status, 65)
        XCTAssertTrue(bad.stderr.contains("field 'execution': 'SERIAL' is not one of PARALLEL SERIAL_WAIT SERIAL_DISCARD SERIAL_PRIORITY"), bad.stderr)
    }
}
