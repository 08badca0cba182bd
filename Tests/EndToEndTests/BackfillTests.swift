import Foundation
import Shared
import XCTest

/// Issue 25, item 5: backfills are things. ds-schedule backfill prints the backfill's id on
/// stderr (stdout stays the instance ids), ds-schedule backfills lists them with their counts,
/// ds-schedule cancel stops what runs (its tasks killed, as ds-instance stop kills them) and drops
/// what waits, so that no waiting date starts once it returned; also with two masters and the
/// owner of a running date killed (-9) right after the cancel. Real masters, workers, ZooKeeper
/// and SQLite (PostgreSQL: PostgresBackfillTests).
class BackfillTests: ClusterTestCase {
    var pids: URL { cluster.directory.appendingPathComponent("pids") }

    func schedule(_ arguments: [String]) throws -> ToolRun { try cluster.run("ds-schedule", arguments) }

    /// Stores a workflow whose task writes its pid to pids/DATE and sleeps until killed.
    func storeSleeper(_ name: String) throws {
        try FileManager.default.createDirectory(at: pids, withIntermediateDirectories: true)
        let json = #"{"name":"\#(name)","tasks":[{"name":"t","command":"echo $$ > \#(pids.path)/${system.biz.date}; exec sleep 1000"}]}"#
        let run = try cluster.run("ds-submit", ["--no-start", try cluster.workflowFile(json)])
        XCTAssertEqual(run.status, 0, run.stderr)
    }

    /// Starts a backfill; its id (from stderr) and instance ids (stdout, nothing else there).
    func backfill(_ arguments: [String]) throws -> (id: Int64, instances: [Int64]) {
        let run = try schedule(["backfill"] + arguments)
        XCTAssertEqual(run.status, 0, run.stderr)
        let lines = run.stdout.split(separator: "\n")
        let instances = lines.compactMap { Int64($0) }
        XCTAssertEqual(instances.count, lines.count, "standard output is the instance ids only: \(run.stdout)")
        XCTAssertTrue(run.stderr.hasPrefix("ds-schedule: backfill "), run.stderr)
        let id = run.stderr.dropFirst("ds-schedule: backfill ".count).prefix { $0.isNumber }
        return (Int64(id) ?? -1, instances)
    }

    func listed(_ id: Int64) throws -> BackfillListLine? {
        let run = try schedule(["backfills", "--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        return try run.stdout.split(separator: "\n").map { try WireJSON.decode(BackfillListLine.self, Data($0.utf8)) }.first { $0.id == id }
    }

    /// The dates' task processes that run, by business date.
    func runningDates() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: pids.path)) ?? []).sorted()
    }

    func isAlive(_ pid: Int32) -> Bool { kill(pid, 0) == 0 }

    func testCancelStopsWhatRunsDropsWhatWaitsAndIsListed() async throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 8)
        try storeSleeper("slow")
        let (id, ids) = try backfill(["slow", "--from", "2026-01-01", "--to", "2026-01-05", "--parallel", "2", "--tz", "UTC"])
        XCTAssertEqual(ids.count, 5)
        try await eventually("two dates run") { self.runningDates().count == 2 }
        var pidsRunning: [Int32] = []
        for date in runningDates() { pidsRunning.append(try await numberWritten(to: pids.appendingPathComponent(date).path, by: "date \(date)")) }
        try await eventually("the backfill lists 2 running, 3 waiting") {
            let b = try self.listed(id)
            return b?.running == 2 && b?.waiting == 3
        }
        let line = try XCTUnwrap(try listed(id))
        XCTAssertEqual([line.workflow, line.fromDate, line.toDate, line.state, line.timeZone], ["slow", "2026-01-01", "2026-01-05", "ACTIVE", "UTC"])
        XCTAssertEqual([line.done, line.parallel], [0, 2])
        XCTAssertTrue(line.createdAt.hasSuffix("Z") && line.createdAt.contains("."), line.createdAt)
        XCTAssertNil(line.cancelledAt)
        let table = try schedule(["backfills"])
        XCTAssertTrue(table.stdout.hasPrefix("ID"), table.stdout)
        XCTAssertTrue(table.stdout.contains("2026-01-01") && table.stdout.contains("ACTIVE"), table.stdout)
        XCTAssertEqual(try schedule(["backfills", "-q"]).stdout, "\(id)\n")

        let cancel = try schedule(["cancel", String(id)])
        XCTAssertEqual(cancel.status, 0, cancel.stderr)
        XCTAssertTrue(cancel.stdout.contains("cancelled: stopping 2 running") && cancel.stdout.contains("dropped 3 waiting"), cancel.stdout)
        // Once cancel returned, the waiting dates have ended, with no start command left.
        let store = try cluster.store()
        for i in ids.suffix(3) {
            let instance = try await store.instance(i)
            XCTAssertEqual(instance?.state, .stop, "instance \(i)")
            XCTAssertTrue(instance?.message?.contains("backfill \(id) was cancelled") == true, instance?.message ?? "")
        }
        for i in ids.prefix(2) {
            let state = try await cluster.waitForEnd(i)
            XCTAssertEqual(state, .stop)
        }
        try await eventually("the running dates' tasks were killed") { !pidsRunning.contains(where: self.isAlive) }
        // No waiting date ever starts: nothing more runs, however long we look.
        try await Task.sleep(for: .seconds(3))
        XCTAssertEqual(runningDates(), ["20260101", "20260102"])
        for i in ids.suffix(3) { try await XCTAssertNilAsync(try await store.instance(i)?.startTime, "instance \(i) started") }
        let after = try XCTUnwrap(try listed(id))
        XCTAssertEqual([after.done, after.running, after.waiting], [5, 0, 0])
        XCTAssertEqual(after.state, "CANCELLED")
        XCTAssertTrue(after.cancelledAt?.hasSuffix("Z") == true, "\(String(describing: after.cancelledAt))")

        // Twice is fine, and says so; JSON says what was done.
        let again = try schedule(["cancel", String(id), "--json"])
        XCTAssertEqual(again.status, 0, again.stderr)
        let view = try WireJSON.decode(CancelLine.self, Data(again.stdout.utf8))
        XCTAssertEqual(view.alreadyCancelled, true)
        XCTAssertEqual([view.stopping, view.dropped], [[], []])
        XCTAssertEqual(view.ended, 5)
        XCTAssertTrue(try schedule(["cancel", String(id)]).stdout.contains("already cancelled"))

        // A backfill whose dates all ended: nothing to cancel, and it says so.
        let quick = try cluster.run("ds-submit", ["--no-start", try cluster.workflowFile(#"{"name":"quick","tasks":[{"name":"t","command":"true"}]}"#)])
        XCTAssertEqual(quick.status, 0, quick.stderr)
        let (done, doneIDs) = try backfill(["quick", "--from", "2026-02-01", "--to", "2026-02-02"])
        for i in doneIDs { try await XCTAssertEqualAsync(try await cluster.waitForEnd(i), .success) }
        let ended = try schedule(["cancel", String(done)])
        XCTAssertEqual(ended.status, 0, ended.stderr)
        XCTAssertTrue(ended.stdout.contains("has ended: all 2 of its dates had ended; nothing to cancel"), ended.stdout)
        XCTAssertEqual(try listed(done)?.state, "ENDED")

        // Unknown and malformed ids.
        for (arguments, status, text) in [(["cancel", "9999"], 65, "no backfill 9999"), (["cancel", "0"], 64, "from 1"),
                                          (["cancel", "-3"], 64, ""), (["cancel", "x"], 64, ""), (["cancel"], 64, ""),
                                          (["backfills", "-q", "--json"], 64, "exclusive")] as [([String], Int32, String)] {
            let run = try schedule(arguments)
            XCTAssertEqual(run.status, status, "\(arguments): \(run.stderr)")
            XCTAssertTrue(text.isEmpty || run.stderr.contains(text), "\(arguments): \(run.stderr)")
            XCTAssertEqual(run.stdout, "", "\(arguments)")
        }
    }

    /// Two masters; the one that runs the backfill's date is killed (-9) before the cancel, so
    /// that it never applies the stop: the other takes the date over and stops it (its task
    /// killed), and no waiting date ever starts, though that master is free to start them.
    func testCancelHoldsWhenTheOwningMasterDiesMidCancel() async throws {
        let owner = try cluster.startMaster()
        try cluster.startWorker(slots: 8)
        try storeSleeper("slow2")
        let (id, ids) = try backfill(["slow2", "--from", "2026-03-01", "--to", "2026-03-04", "--tz", "Europe/Berlin"])
        try await eventually("the first date runs") { self.runningDates().count == 1 }
        let pid = try await numberWritten(to: pids.appendingPathComponent("20260301").path, by: "the first date")
        try cluster.startMaster()
        cluster.kill9(owner)
        let cancel = try schedule(["cancel", String(id)])
        XCTAssertEqual(cancel.status, 0, cancel.stderr)
        XCTAssertTrue(cancel.stdout.contains("stopping 1 running") && cancel.stdout.contains("dropped 3 waiting"), cancel.stdout)
        try await XCTAssertEqualAsync(try await cluster.waitForEnd(ids[0], timeout: 240), .stop)
        try await eventually("the first date's task was killed") { !self.isAlive(pid) }
        try await Task.sleep(for: .seconds(3))
        XCTAssertEqual(runningDates(), ["20260301"], "no waiting date started")
        let store = try cluster.store()
        for i in ids.dropFirst() { try await XCTAssertEqualAsync(try await store.instance(i)?.state, .stop) }
        XCTAssertEqual(try listed(id)?.state, "CANCELLED")
    }
}

struct BackfillListLine: Decodable {
    var id: Int64
    var workflow: String
    var fromDate: String
    var toDate: String
    var parallel: Int
    var timeZone: String
    var state: String
    var done: Int
    var running: Int
    var waiting: Int
    var createdAt: String
    var cancelledAt: String?
}

struct CancelLine: Decodable {
    var backfillId: Int64
    var stopping: [Int64]
    var dropped: [Int64]
    var ended: Int
    var cancelledAt: String?
    var alreadyCancelled: Bool
}

func XCTAssertNilAsync<T>(_ value: @autoclosure () async throws -> T?, _ message: String = "",
                          file: StaticString = #filePath, line: UInt = #line) async throws {
    let v = try await value()
    XCTAssertNil(v, message, file: file, line: line)
}
