import Foundation
@testable import Shared
import XCTest

/// The hot queries of `IndexUseTests` on PostgreSQL (issue 23, item 5): each can be served by an
/// index there too. PostgreSQL's planner reads a small table whole whatever its indexes, so the
/// plans are taken with sequential scans priced out (`enable_seqscan = off`): a `Seq Scan` left
/// in a plan then means that no index serves that step. The plans are printed.
final class PostgresIndexUseTests: XCTestCase {
    func plan(_ store: Store, _ sql: String, _ arguments: SQLArguments) async throws -> [String] {
        try await store.read("explaining") { db in
            try db.execute(sql: "SET LOCAL enable_seqscan = off")
            return try db.rows(sql: "EXPLAIN " + sql, arguments: arguments).map { try $0["QUERY PLAN"] as String }
        }
    }

    func assertIndexed(_ lines: [String], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(lines.isEmpty, what, file: file, line: line)
        print("PostgreSQL plan of \(what):\n  " + lines.joined(separator: "\n  "))
        for step in lines where step.contains("Seq Scan") {
            XCTFail("\(what) reads a whole table on PostgreSQL: \(step)\nplan:\n\(lines.joined(separator: "\n"))", file: file, line: line)
        }
    }

    func testTheHotQueriesCanUseAnIndex() async throws {
        let store = try Store(location: try PostgresServer.shared().createDatabase().location)
        try await IndexUseTests.fill(store, analyze: true)
        let claim = try await plan(store, Store.claimableCommandSQL, [])
        assertIndexed(claim, "the command claim")
        XCTAssertTrue(claim.contains { $0.contains("workflow_instance_active_by_name_state") }, claim.joined(separator: "\n"))
        // Its SERIAL_WAIT check goes by (name, id) there: indexed too, as assertIndexed checks.
        assertIndexed(try await plan(store, Store.dueSchedulesSQL, [10.0]), "the due schedules")
        assertIndexed(try await plan(store, Store.soonestScheduleSQL, [10.0]), "the soonest schedule")
        assertIndexed(try await plan(store, Store.latestInWindowSQL, ["w", 0.0, 100.0, 0]), "the DEPENDENT lookup")
        assertIndexed(try await plan(store, Store.dueAlertSQL, [10.0, 10.0]), "the alert lease")
        for (states, arguments) in [(0, [100.0, 0.0, 0.0, 0, 500] as SQLArguments), (2, [100.0, 0.0, 0.0, 0, "SUCCESS", "STOP", 500])] {
            let lines = try await plan(store, Store.pruneSelectionSQL(states: states), arguments)
            assertIndexed(lines, "the prune's selection (\(states) states)")
            XCTAssertTrue(lines.contains { $0.contains("workflow_instance_prunable") }, lines.joined(separator: "\n"))
        }
        for (table, column) in [("alert", "workflow_instance_id"), ("command", "workflow_instance_id"),
                                ("task_instance", "workflow_instance_id"), ("workflow_instance", "parent_instance_id")] {
            assertIndexed(try await plan(store, "SELECT id FROM \(table) WHERE \(column) IN (?, ?)", [1, 2]), "\(table) by \(column)")
        }
    }
}
