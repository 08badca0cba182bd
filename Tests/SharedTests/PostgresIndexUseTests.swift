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
        for (what, sql, arguments) in IndexUseTests.otherHotQueries {
            let lines = try await plan(store, sql, arguments)
            assertIndexed(lines, what)
            if what.hasPrefix("the prune's selection") {
                XCTAssertTrue(lines.contains { $0.contains("workflow_instance_prunable") }, lines.joined(separator: "\n"))
            }
        }
    }
}
