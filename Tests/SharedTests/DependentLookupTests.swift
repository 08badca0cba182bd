import Foundation
@testable import Shared
import XCTest

/// A DEPENDENT check reads the window, not the upstream workflow's whole history.
final class DependentLookupTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ds-dependent-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: directory) }

    /// SQLite's plan for the lookup: a search of the index on (name, fire-or-start time) bounded on
    /// both columns, read backwards for the order (no temporary sort); never a scan of the
    /// instances, nor a search by name alone, which reads every instance of the name.
    func testTheWindowLookupSearchesTheNameAndTimeIndex() async throws {
        let store = try Store(path: directory.appendingPathComponent("ds.db").path)
        let plan = try await store.read("explaining") { db in
            try db.rows(sql: "EXPLAIN QUERY PLAN " + Store.latestInWindowSQL, arguments: ["w", 0, 1, 0])
                .map { row -> String in let detail: String? = try row["detail"]; return detail ?? "" }
        }
        let text = plan.joined(separator: "\n")
        XCTAssertTrue(text.contains("USING INDEX workflow_instance_by_name_and_time (name=? AND <expr>>? AND <expr><?)"), text)
        XCTAssertFalse(text.contains("SCAN workflow_instance"), text)
        XCTAssertFalse(text.contains("TEMP B-TREE"), text)
    }

    /// The lookup still finds the latest instance in the window, by fire time when scheduled.
    func testTheWindowLookupFindsTheLatestInstanceOfTheWindow() async throws {
        let store = try Store(path: directory.appendingPathComponent("ds.db").path)
        let w = WorkflowDefinition(name: "up", tasks: [TaskDefinition(name: "a", command: "true")])
        var ids: [Int64] = []
        for _ in 0..<4 { ids.append(try await store.submit(w, params: [:], now: 1).instanceId) }
        let placed = ids
        try await store.transaction("placing instances") { db in
            // start times 100, 200, 300; the fourth was fired for 150 but started at 900.
            for (id, (start, fire)) in zip(placed, [(100.0, nil), (200, nil), (300, nil), (900, 150.0)] as [(Double, Double?)]) {
                try db.execute(sql: "UPDATE workflow_instance SET start_time = ?, schedule_time = ?, state = 'SUCCESS' WHERE id = ?",
                               arguments: [start, fire, id])
            }
        }
        let item = DependencyItem(workflow: "up", task: nil, window: .today)
        func latest(_ from: Double, _ to: Double, besides: Int64 = 0) async throws -> Int64? {
            try await store.read("looking") { db in
                try WorkflowInstanceRecord.fetchOne(db, sql: Store.latestInWindowSQL, arguments: [item.workflow, from, to, besides])?.id
            }
        }
        let found0 = try await latest(0, 1000)
        XCTAssertEqual(found0, ids[2], "the latest by fire or start time: 300, not the one fired for 150")
        let found1 = try await latest(0, 300)
        XCTAssertEqual(found1, ids[1], "the window's end is excluded")
        let found2 = try await latest(120, 180)
        XCTAssertEqual(found2, ids[3], "a scheduled instance by its fire time")
        let found3 = try await latest(0, 1000, besides: ids[2])
        XCTAssertEqual(found3, ids[1])
    }
}
