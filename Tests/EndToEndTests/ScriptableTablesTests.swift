import Foundation
import Shared
import XCTest

/// Issue 25 item 4: tables no input can forge, and lists a script can use.
final class ScriptableTablesTests: ClusterTestCase {
    /// A --param holding a newline and an ANSI escape prints no fake row and no escape in
    /// `ds-instance show`; -q prints ids only on every list; a list cut at --limit says so on
    /// stderr, --limit 0 lists all.
    func testTablesEscapeValuesAndListsAreScriptable() async throws {
        try cluster.startMaster()
        let workflow = #"{"name":"tables","params":{"P":"x"},"tasks":[{"name":"t","command":"true"}]}"#
        let first = try cluster.submit(workflow, ["--param", "P=\nfake 1 1 SUCCESS \u{1B}[31m"])
        let second = try cluster.submit(workflow)
        XCTAssertGreaterThan(first, 0)

        let show = try cluster.run("ds-instance", ["show", String(first)])
        XCTAssertEqual(show.status, 0, show.stderr)
        XCTAssertFalse(show.stdout.split(separator: "\n").contains { $0.hasPrefix("fake") }, show.stdout)
        XCTAssertFalse(show.stdout.contains("\u{1B}"), show.stdout)
        XCTAssertTrue(show.stdout.contains(#"P=\nfake 1 1 SUCCESS \u{1B}[31m"#), show.stdout)

        let quiet = try cluster.run("ds-instance", ["list", "-q"])
        XCTAssertEqual(quiet.status, 0, quiet.stderr)
        XCTAssertEqual(quiet.stdout, "\(second)\n\(first)\n")

        let cut = try cluster.run("ds-instance", ["list", "-q", "--limit", "1"])
        XCTAssertEqual(cut.stdout, "\(second)\n")
        XCTAssertTrue(cut.stderr.contains("listed the first 1 instances and more exist"), cut.stderr)
        let exact = try cluster.run("ds-instance", ["list", "-q", "--limit", "2"])
        XCTAssertEqual(exact.stderr, "")
        let all = try cluster.run("ds-instance", ["list", "--limit", "0"])
        XCTAssertEqual(all.stdout.split(separator: "\n").count, 3, all.stdout)
        XCTAssertEqual(all.stderr, "")

        // No worker runs: both tasks wait in the queue.
        var queued = try cluster.run("ds-queue", ["list", "-q"])
        try await eventually("both tasks are queued") {
            queued = try self.cluster.run("ds-queue", ["list", "-q"])
            return queued.stdout.split(separator: "\n").count == 2
        }
        XCTAssertTrue(queued.stdout.split(separator: "\n").allSatisfy { Int64($0) != nil }, queued.stdout)
        let queueCut = try cluster.run("ds-queue", ["list", "--limit", "1"])
        XCTAssertEqual(queueCut.stdout.split(separator: "\n").count, 2, queueCut.stdout)
        XCTAssertTrue(queueCut.stderr.contains("listed the first 1 items and more exist"), queueCut.stderr)
        XCTAssertEqual(try cluster.run("ds-queue", ["peek", "-q"]).stdout.split(separator: "\n").count, 1)

        let both = try cluster.run("ds-instance", ["list", "-q", "--json"])
        XCTAssertEqual(both.status, 64, both.stderr)

        XCTAssertEqual(try cluster.run("ds-instance", ["definitions", "-q"]).stdout, "tables\n")
        XCTAssertEqual(try cluster.run("ds-pool", ["set", "db", "2"]).status, 0)
        XCTAssertEqual(try cluster.run("ds-pool", ["list", "-q"]).stdout, "db\n")
        let added = try cluster.run("ds-schedule", ["add", "tables", "--cron", "0 0 0 1 1 ? 2098", "--offline"])
        XCTAssertEqual(added.status, 0, added.stderr)
        XCTAssertEqual(try cluster.run("ds-schedule", ["list", "-q"]).stdout, added.stdout)
        let scheduleShow = try cluster.run("ds-schedule", ["show", "-q", added.stdout.trimmingCharacters(in: .whitespacesAndNewlines)])
        XCTAssertEqual(scheduleShow.status, 0, scheduleShow.stderr)
        XCTAssertEqual(scheduleShow.stdout, "")
    }
}
