import Foundation
@testable import Shared
import XCTest

/// Every hot query reads through an index (issue 23, item 5), checked by SQLite's own plan: a
/// bare `SCAN <table>` (every row read) fails. The queries are the store's own constants.
final class IndexUseTests: ScratchFolderTestCase {
    /// The lines of `EXPLAIN QUERY PLAN` for `sql`.
    func plan(_ store: Store, _ sql: String, _ arguments: SQLArguments) async throws -> [String] {
        try await store.read("explaining") { db in
            try db.rows(sql: "EXPLAIN QUERY PLAN " + sql, arguments: arguments).map { try $0["detail"] as String }
        }
    }

    /// Fails for a step that reads a whole table; names the query and shows the plan.
    func assertIndexed(_ lines: [String], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(lines.isEmpty, what, file: file, line: line)
        print("plan of \(what):\n  " + lines.joined(separator: "\n  "))
        for step in lines where step.hasPrefix("SCAN ") || step.hasPrefix("SEARCH ") {
            let indexed = step.contains("USING INDEX") || step.contains("USING COVERING INDEX") || step.contains("PRIMARY KEY")
                || step.contains("USING ROWID SEARCH")
            XCTAssertTrue(indexed, "\(what) reads a whole table: \(step)\nplan:\n\(lines.joined(separator: "\n"))", file: file, line: line)
        }
    }

    /// The table's statistics as a busy database would have them: `ANALYZE` on rows of every
    /// shape, so that SQLite plans as it would in production, not for empty tables.
    static func fill(_ store: Store, analyze: Bool) async throws {
        let workflow = WorkflowDefinition(name: "w", tasks: [TaskDefinition(name: "a", command: "true")])
        for n in 0..<50 { _ = try await store.submit(workflow, params: ["n": "\(n)"], now: Double(n)) }
        try await store.transaction("shaping") { db in
            try db.execute(sql: "UPDATE workflow_instance SET state = 'SUCCESS', end_time = id, start_time = id WHERE id % 2 = 0")
            try db.execute(sql: """
                INSERT INTO task_instance (workflow_instance_id, task_name, attempt, state, priority, worker_group, submit_time)
                SELECT id, 'a', 1, 'SUCCESS', 'MEDIUM', 'default', 1 FROM workflow_instance
                """)
            for n in 0..<50 {
                try db.execute(sql: "INSERT INTO alert (kind, dedup_key, workflow_instance_id, content_json, create_time, state) VALUES ('TASK_TIMEOUT', ?, ?, '{}', 1, ?)",
                               arguments: ["k\(n)", n + 1, n % 5 == 0 ? "PENDING" : "SENT"])
                try db.execute(sql: """
                    INSERT INTO schedule (workflow, cron, time_zone, params_json, catchup, state, next_fire_time, created_at)
                    VALUES ('w', '* * * * *', 'UTC', '{}', 'NONE', ?, ?, 1)
                    """, arguments: [n % 2 == 0 ? "ONLINE" : "OFFLINE", Double(n)])
            }
            if analyze { try db.execute(sql: "ANALYZE") }
        }
    }

    /// As ds runs (it never runs ANALYZE), and as a database that an operator analysed.
    func testTheHotQueriesUseAnIndex() async throws {
        for analyze in [false, true] {
            print("ANALYZE: \(analyze)")
            let store = try Store(path: directory.appendingPathComponent("ds-\(analyze).db").path)
            try await Self.fill(store, analyze: analyze)
            try await checkPlans(store)
        }
    }

    /// The claim's serial checks, through their (name, state) indexes, still hold: a SERIAL_WAIT
    /// instance starts only when the one before it has ended, in submission order.
    func testSerialClaimsStillWaitTheirTurn() async throws {
        let store = try Store(path: directory.appendingPathComponent("serial.db").path)
        var workflow = WorkflowDefinition(name: "s", tasks: [TaskDefinition(name: "a", command: "true")])
        workflow.execution = .serialWait
        var ids: [Int64] = []
        for n in 0..<3 { ids.append(try await store.submit(workflow, params: [:], now: Double(n)).instanceId) }
        for expected in ids {
            let claimed = try await store.claimCommand(host: "m:1", session: 1, now: 10)
            XCTAssertEqual(claimed?.instance.id, expected)
            let next = try await store.claimCommand(host: "m:1", session: 1, now: 10)
            XCTAssertNil(next, "another instance of the name runs")
            try await store.transaction("ending \(expected)") { db in
                try db.execute(sql: "UPDATE workflow_instance SET state = 'SUCCESS', end_time = 11 WHERE id = ?", arguments: [expected])
            }
        }
    }

    func checkPlans(_ store: Store) async throws {
        let claim = try await plan(store, Store.claimableCommandSQL, [])
        assertIndexed(claim, "the command claim")
        // Its serial checks read only the instances of the name that run or wait, not every one it had.
        XCTAssertTrue(claim.contains { $0.contains("SEARCH o USING COVERING INDEX workflow_instance_active_by_name_state") }, claim.joined(separator: "\n"))
        XCTAssertTrue(claim.contains { $0.contains("SEARCH i2 USING COVERING INDEX workflow_instance_waiting_by_name_state") }, claim.joined(separator: "\n"))
        for (what, sql, arguments) in Self.otherHotQueries {
            let lines = try await plan(store, sql, arguments)
            assertIndexed(lines, what)
            // The prune's selection by its own index, in its order: by workflow_instance_by_parent it
            // would read every top-level instance there is and sort them, at each batch.
            if what.hasPrefix("the prune's selection") {
                XCTAssertTrue(lines.contains { $0.contains("USING INDEX workflow_instance_prunable") }, lines.joined(separator: "\n"))
                XCTAssertFalse(lines.contains { $0.contains("TEMP B-TREE") }, lines.joined(separator: "\n"))
            }
        }
    }

    /// The hot queries besides the claim, with arguments to plan them by: what each is, its SQL.
    static let otherHotQueries: [(String, String, SQLArguments)] = [
        ("the due schedules", Store.dueSchedulesSQL, [10.0]),
        ("the soonest schedule", Store.soonestScheduleSQL, [10.0]),
        ("the DEPENDENT lookup", Store.latestInWindowSQL, ["w", 0.0, 100.0, 0]),
        ("the alert lease", Store.dueAlertSQL, [10.0, 10.0]),
        ("the prune's selection (0 states)", Store.pruneSelectionSQL(states: 0), [100.0, 0.0, 0.0, 0, 500]),
        ("the prune's selection (2 states)", Store.pruneSelectionSQL(states: 2), [100.0, 0.0, 0.0, 0, "SUCCESS", "STOP", 500]),
    ] + [("alert", "workflow_instance_id"), ("command", "workflow_instance_id"),
         ("task_instance", "workflow_instance_id"), ("workflow_instance", "parent_instance_id")].map { table, column in
        // The prune's deletes of the rows that refer to a batch.
        ("\(table) by \(column)", "SELECT id FROM \(table) WHERE \(column) IN (?, ?)", [1, 2] as SQLArguments)
    }
}
