import Foundation
@testable import Shared
import XCTest

/// `Store.prune` (ds-instance prune, --prune-older-than) on a real SQLite file; again on
/// PostgreSQL in `PostgresPruneTests`.
class PruneTests: ScratchFolderTestCase {
    let now = 1_000_000.0
    let day = 86_400.0

    /// The database of this test (a second call gives the same one).
    func location() throws -> DatabaseLocation { .sqlite(path: directory.appendingPathComponent("ds.db").path) }

    /// An instance in `state` that ended at `endTime`, with `attempts` task attempts, one alert
    /// and one leftover command that refer to it; its id.
    @discardableResult
    func instance(_ store: Store, _ state: WorkflowState, endTime: Double?, parent: Int64? = nil, attempts: Int = 2) async throws -> Int64 {
        let workflow = WorkflowDefinition(name: "w", tasks: [TaskDefinition(name: "a", command: "true")])
        let id = try await store.submit(workflow, params: [:], now: 1).instanceId
        try await store.transaction("shaping instance \(id)") { db in
            try db.execute(sql: "UPDATE workflow_instance SET state = ?, end_time = ?, parent_instance_id = ? WHERE id = ?",
                           arguments: [state.rawValue, endTime, parent, id])
            for n in 0..<attempts {
                try db.execute(sql: """
                    INSERT INTO task_instance (workflow_instance_id, task_name, attempt, state, priority, worker_group, submit_time, output_json, branch_json)
                    VALUES (?, 'a', ?, 'SUCCESS', 'MEDIUM', 'default', 1, '{"k":"v"}', '["b"]')
                    """, arguments: [id, n + 1])
            }
            let task = try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM task_instance WHERE workflow_instance_id = ?", arguments: [id])
            try db.execute(sql: "INSERT INTO alert (kind, dedup_key, workflow_instance_id, task_instance_id, content_json, create_time) VALUES ('TASK_TIMEOUT', ?, ?, ?, '{}', 1)",
                           arguments: ["TASK_TIMEOUT:\(id)", id, task])
        }
        return id
    }

    func count(_ store: Store, _ sql: String, _ arguments: SQLArguments = []) async throws -> Int {
        try await store.read("counting") { db in try Int.fetchOne(db, sql: sql, arguments: arguments) ?? 0 }
    }

    /// Rows of each table that refer to any of `ids`.
    func referring(_ store: Store, _ ids: [Int64]) async throws -> Int {
        let list = Store.placeholders(ids.count)
        let args = SQLArguments(ids)
        var total = try await count(store, "SELECT COUNT(*) FROM workflow_instance WHERE id IN \(list) OR parent_instance_id IN \(list)", args + args)
        total += try await count(store, "SELECT COUNT(*) FROM task_instance WHERE workflow_instance_id IN \(list) OR child_instance_id IN \(list)", args + args)
        total += try await count(store, "SELECT COUNT(*) FROM command WHERE workflow_instance_id IN \(list)", args)
        total += try await count(store, "SELECT COUNT(*) FROM alert WHERE workflow_instance_id IN \(list)", args)
        return total
    }

    /// Old instances that ended for good go with every row that refers to them; running, waiting,
    /// paused and recent ones stay, and so does a tree with an unfinished sub-workflow instance.
    func testPruneRemovesOldFinishedInstancesWithEveryReferringRowAndKeepsTheRest() async throws {
        let store = try Store(location: try location())
        let old = now - 2 * day
        var gone: [Int64] = []
        for state in PrunePolicy.states { gone.append(try await instance(store, state, endTime: old)) }
        let parent = try await instance(store, .success, endTime: old)
        let child = try await instance(store, .success, endTime: old, parent: parent)
        let grandchild = try await instance(store, .failure, endTime: old, parent: child)
        gone += [parent, child, grandchild]

        var kept: [Int64] = []
        kept.append(try await instance(store, .pause, endTime: old))
        kept.append(try await instance(store, .running, endTime: nil))
        kept.append(try await instance(store, .submitted, endTime: nil))
        kept.append(try await instance(store, .waitingThread, endTime: nil))
        kept.append(try await instance(store, .readyStop, endTime: old))
        kept.append(try await instance(store, .success, endTime: now - 60))
        kept.append(try await instance(store, .success, endTime: nil))
        // A finished parent whose child still runs, and a finished child of a running parent.
        let waitingParent = try await instance(store, .failure, endTime: old)
        kept += [waitingParent, try await instance(store, .running, endTime: nil, parent: waitingParent)]
        let runningParent = try await instance(store, .running, endTime: nil)
        kept += [runningParent, try await instance(store, .success, endTime: old, parent: runningParent)]
        // An alert of no instance (a server that left) stays.
        try await store.transaction("a server alert") { db in
            try db.execute(sql: "INSERT INTO alert (kind, dedup_key, content_json, create_time) VALUES ('SERVER_DOWN', 'SERVER_DOWN:x', '{}', 1)")
        }
        let keptRows = try await referring(store, kept)

        let report = try await store.prune(PrunePolicy(olderThan: day), now: now)
        XCTAssertEqual(Set(report.instances), Set(gone))
        XCTAssertEqual(report.topLevel, PrunePolicy.states.count + 1)
        XCTAssertEqual(report.attempts, gone.count * 2)
        XCTAssertEqual(report.keptForUnfinishedChildren, 1)
        let left = try await referring(store, gone)
        XCTAssertEqual(left, 0, "no row refers to a pruned instance")
        let stillKept = try await referring(store, kept)
        XCTAssertEqual(stillKept, keptRows, "every row of the kept instances stays")
        let serverAlerts = try await count(store, "SELECT COUNT(*) FROM alert WHERE workflow_instance_id IS NULL")
        XCTAssertEqual(serverAlerts, 1)
        let definitions = try await count(store, "SELECT COUNT(*) FROM workflow_definition")
        XCTAssertEqual(definitions, 1, "definitions stay")

        let again = try await store.prune(PrunePolicy(olderThan: day), now: now)
        XCTAssertEqual(again.instances, [], "a second prune finds nothing")
    }

    /// --dry-run lists exactly what a prune then removes, and changes nothing.
    func testDryRunChangesNothingAndListsWhatWouldGo() async throws {
        let store = try Store(location: try location())
        for n in 0..<30 { try await instance(store, n % 3 == 0 ? .running : .success, endTime: n % 3 == 0 ? nil : now - Double(n) * day) }
        let tables = ["workflow_instance", "task_instance", "command", "alert"]
        var before: [Int] = []
        for t in tables { before.append(try await count(store, "SELECT COUNT(*) FROM \(t)")) }
        let dry = try await store.prune(PrunePolicy(olderThan: 5 * day, batchSize: 4), now: now, dryRun: true)
        var after: [Int] = []
        for t in tables { after.append(try await count(store, "SELECT COUNT(*) FROM \(t)")) }
        XCTAssertEqual(after, before, "a dry run changes nothing")
        XCTAssertFalse(dry.instances.isEmpty)
        let real = try await store.prune(PrunePolicy(olderThan: 5 * day, batchSize: 4), now: now)
        XCTAssertEqual(real.instances, dry.instances)
        XCTAssertEqual(real.attempts, dry.attempts)
    }

    /// Each batch is one transaction of at most batchSize top-level instances, oldest first;
    /// --state narrows the states.
    func testPruneGoesInSmallBatchesOldestFirstAndByState() async throws {
        let store = try Store(location: try location())
        var failures: [Int64] = []
        try await store.transaction("many instances") { db in
            try db.execute(sql: "INSERT INTO workflow_definition (name, version, json, created_at) VALUES ('w', 1, '{}', 1)")
            for n in 0..<1_234 {
                let state = n % 2 == 0 ? "SUCCESS" : "FAILURE"
                let id = try Int64.fetchOne(db, sql: """
                    INSERT INTO workflow_instance (definition_id, name, version, state, priority, params_json, submit_time, end_time)
                    VALUES (1, 'w', 1, ?, 'MEDIUM', '{}', 1, ?) RETURNING id
                    """, arguments: [state, 1000 + Double(1_234 - n)])
                if state == "FAILURE", let id { failures.append(id) }
            }
        }
        let batches = Batches()
        var policy = PrunePolicy(olderThan: day, states: [.failure])
        policy.batchSize = 200
        let report = try await store.prune(policy, now: now) { batches.add($0) }
        XCTAssertEqual(Set(report.instances), Set(failures))
        XCTAssertEqual(report.batches, 4, "617 instances in batches of 200")
        XCTAssertEqual(batches.sizes, [200, 200, 200, 17])
        XCTAssertEqual(report.instances, failures.reversed(), "oldest end time first")
        let left = try await count(store, "SELECT COUNT(*) FROM workflow_instance WHERE state = 'SUCCESS'")
        XCTAssertEqual(left, 617, "the other state stays")
    }

    /// Two prunes at once (two masters) split the work: each instance goes once, none is left.
    func testTwoPrunesAtOnceAreHarmless() async throws {
        let path = try location()
        let store = try Store(location: path)
        for _ in 0..<120 { try await instance(store, .success, endTime: now - 2 * day, attempts: 1) }
        let other = try Store(location: path)
        var policy = PrunePolicy(olderThan: day)
        policy.batchSize = 7
        async let a = store.prune(policy, now: now)
        async let b = other.prune(policy, now: now)
        let (ra, rb) = try await (a, b)
        XCTAssertEqual(ra.instances.count + rb.instances.count, 120)
        XCTAssertEqual(Set(ra.instances).intersection(rb.instances), [])
        let left = try await count(store, "SELECT COUNT(*) FROM workflow_instance")
        XCTAssertEqual(left, 0)
    }

    /// Durations outside 1s to 100 years, and states that may not be pruned, are usage errors.
    func testBadDurationsAndStatesAreRefused() {
        for bad in ["", "abc", "0s", "500ms", "-5m", "1e400d", "5y", "200000d", "0x10"] {
            XCTAssertThrowsError(try PrunePolicy.parse(olderThan: bad, states: [])) { error in
                XCTAssertEqual(ExitStatus.of(error), .usage, bad)
                XCTAssertTrue("\(error)".contains("--older-than"), "\(error)")
            }
        }
        for bad in ["RUNNING", "PAUSE", "SUBMITTED", "bogus", ""] {
            XCTAssertThrowsError(try PrunePolicy.parse(olderThan: "1d", states: [bad])) { error in
                XCTAssertEqual(ExitStatus.of(error), .usage, bad)
                XCTAssertTrue("\(error)".contains("--state") && "\(error)".contains("SUCCESS, FAILURE, STOP"), "\(error)")
            }
        }
        XCTAssertEqual(try PrunePolicy.parse(olderThan: "30d", states: ["failure", "STOP", "stop"]),
                       PrunePolicy(olderThan: 30 * 86_400, states: [.failure, .stop]))
    }
}

private final class Batches: @unchecked Sendable {
    private let lock = NSLock()
    private var recorded: [Int] = []
    func add(_ ids: [Int64]) { lock.withLock { recorded.append(ids.count) } }
    var sizes: [Int] { lock.withLock { recorded } }
}

/// Every `PruneTests` test again, on a fresh database of the suite's scratch PostgreSQL.
final class PostgresPruneTests: PruneTests {
    private var database: DatabaseLocation?

    override func location() throws -> DatabaseLocation {
        let location = try database ?? PostgresServer.shared().createDatabase().location
        database = location
        return location
    }

    /// Migration 16 made the same indexes on PostgreSQL as on SQLite (partial ones included), and
    /// dropped v10's two that they replace.
    func testStep16MadeTheSameIndexesAsOnSQLite() async throws {
        let store = try Store(location: try location())
        let names = try await store.read("listing indexes") { db in
            try String.fetchAll(db, sql: "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")
        }
        for made in ["workflow_instance_prunable", "alert_by_instance", "workflow_instance_active_by_name_state", "workflow_instance_waiting_by_name_state"] {
            XCTAssertTrue(names.contains(made), "\(made) missing from \(names.sorted())")
        }
        for dropped in ["workflow_instance_active_by_name", "workflow_instance_waiting_by_name"] {
            XCTAssertFalse(names.contains(dropped), "\(dropped) is still there")
        }
        let partial = try await store.read("reading an index") { db in
            try String.fetchOne(db, sql: "SELECT indexdef FROM pg_indexes WHERE indexname = 'workflow_instance_prunable'")
        }
        XCTAssertTrue(partial?.contains("WHERE") ?? false, "partial: \(partial ?? "-")")
    }
}
