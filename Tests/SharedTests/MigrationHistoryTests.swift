import Foundation
import GRDB
@testable import Shared
import XCTest

/// A database made by every shipped version opens with today's code, ends with the schema a new
/// database has, and works. The fixtures in ShippedSchemas are `sqlite3 .dump`s of databases made
/// by the migrations as each commit that changed Migrations.swift shipped them (that commit's
/// file, run through GRDB's migrator): 01-4d575db (v1) to 18-9084a10 (v15, the last GRDB one).
/// Three texts were edited after they shipped (v10 at a1b7191, v12 at 941c49d, v13 at 3b66d46),
/// which is why both the shipped and the edited forms are here. Since then migrations are our
/// own numbered steps (`Migrations`), and a GRDB database goes on from the steps it records.
/// Add a fixture when a migration ships; never edit one.
final class MigrationHistoryTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ds-migrations-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: directory) }

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("ShippedSchemas")

    /// Tables with their columns, and indexes with their definitions, order aside; and the
    /// schema version reached.
    func schema(_ path: String) throws -> [String: Set<String>] {
        let queue = try DatabaseQueue(path: path)
        defer { try? queue.close() }
        return try queue.read { db in
            var result: [String: Set<String>] = [:]
            for table in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'") {
                result["table " + table] = Set(try Row.fetchAll(db, sql: "PRAGMA table_info(\(table.quotedDatabaseIdentifier))").map { row in
                    "\(row["name"] as String) \(row["type"] as String) notnull=\(row["notnull"] as Int) default=\(row["dflt_value"] as String? ?? "-") pk=\(row["pk"] as Int)"
                })
            }
            result["indexes"] = Set(try String.fetchAll(db, sql: "SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL").map {
                $0.replacingOccurrences(of: "\"", with: "").split(whereSeparator: \.isWhitespace).joined(separator: " ")
            })
            result["schema version"] = Set(try String.fetchAll(db, sql: "SELECT CAST(version AS TEXT) FROM schema_version"))
            return result
        }
    }

    func load(_ dump: String, into path: String) throws {
        let queue = try DatabaseQueue(path: path)
        try queue.writeWithoutTransaction { db in try db.execute(sql: dump) }
        try queue.close()
    }

    func testADatabaseOfEveryShippedLevelUpgradesToTodaysSchemaAndWorks() async throws {
        let fixtures = try FileManager.default.contentsOfDirectory(atPath: Self.fixtures.path).filter { $0.hasSuffix(".sql") }.sorted()
        XCTAssertEqual(fixtures.count, 18, "one fixture per shipped Migrations.swift")
        let fresh = directory.appendingPathComponent("fresh.db").path
        _ = try Store(path: fresh)
        let expected = try schema(fresh)
        for fixture in fixtures {
            let path = directory.appendingPathComponent(fixture + ".db").path
            let dump = try String(contentsOf: Self.fixtures.appendingPathComponent(fixture), encoding: .utf8)
            try load(dump, into: path)
            let store: Store
            do { store = try Store(path: path) } catch {
                XCTFail("\(fixture): does not open: \(error)")
                continue
            }
            let upgraded = try schema(path)
            for key in Set(expected.keys).union(upgraded.keys).sorted() where expected[key] != upgraded[key] {
                XCTFail("\(fixture): \(key): missing \(expected[key, default: []].subtracting(upgraded[key, default: []]).sorted()), "
                        + "extra \(upgraded[key, default: []].subtracting(expected[key, default: []]).sorted())")
            }
            do { try await exercise(store) } catch { XCTFail("\(fixture): does not work: \(error)") }
        }
    }

    /// What touches every table and the columns the edited migrations added: a submit and its
    /// claim, an attempt run on the master, a schedule that fires, a backfill, a DEPENDENT lookup.
    func exercise(_ store: Store) async throws {
        let w = WorkflowDefinition(name: "w", tasks: [TaskDefinition(name: "a", command: "true")])
        let submitted = try await store.submit(w, params: [:], now: 1)
        let claimed = try await store.claimCommand(host: "m:1", session: 1, now: 2)
        XCTAssertEqual(claimed?.instance.id, submitted.instanceId)
        try await store.transaction("storing an attempt on the master") { db in
            var attempt = TaskInstanceRecord(workflowInstanceId: submitted.instanceId, taskName: "a", attempt: 1, state: .running,
                                             priority: .medium, workerGroup: "default", submitTime: 2, runsOnMaster: true)
            try attempt.insert(db)
        }
        let attempts = try await store.taskAttempts(of: submitted.instanceId)
        XCTAssertEqual(attempts.map(\.runsOnMaster), [true])
        let schedule = try await store.addSchedule(ScheduleRecord(workflow: "w", cron: "0 0 * * * ?", timeZone: "UTC", catchup: .all, createdAt: 100), now: 100)
        let firing = try await store.fire(schedule: schedule.id!, now: 10_800, misfireThreshold: 1)
        XCTAssertEqual(firing.fired.map(\.late), [true, true, false], "3600 and 7200 caught up late, 10800 on time")
        let (_, ids) = try await store.backfill(BackfillRecord(workflow: "w", fromDate: "2026-01-01", toDate: "2026-01-02", parallel: 1, timeZone: "UTC", createdAt: 3),
                                                times: [86_400, 172_800], priority: nil, params: [:], now: 3)
        XCTAssertEqual(ids.count, 2)
        let state = try await store.dependencyState(DependencyItem(workflow: "w", window: .today), runTime: 7200, timeZone: TimeZone(identifier: "UTC")!, besides: 0)
        XCTAssertNotEqual(state, .pending("no instance of 'w' today yet"))
    }

    /// A database a newer ds migrated (a schema version past this build's, or a GRDB-era
    /// migration this build never had) is refused with exit 78, saying so, and left as it was.
    func testASchemaNewerThanThisBuildKnowsIsRefusedWithExit78() throws {
        let path = directory.appendingPathComponent("newer.db").path
        _ = try Store(path: path)
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in try db.execute(sql: "UPDATE schema_version SET version = ?", arguments: [Migrations.latest + 1]) }
        try queue.close()
        XCTAssertThrowsError(try Store(path: path, create: false)) { error in
            XCTAssertEqual(ExitStatus.of(error), .config, "\(error)")
            XCTAssertTrue("\(error)".contains("schema version \(Migrations.latest + 1)") && "\(error)".contains("newer than this ds knows"), "\(error)")
        }
        let after = try schema(path)
        XCTAssertEqual(after["schema version"], ["\(Migrations.latest + 1)"], "nothing written on refusal")

        let grdb = directory.appendingPathComponent("grdb-newer.db").path
        let dump = try String(contentsOf: Self.fixtures.appendingPathComponent("16-3b66d46.sql"), encoding: .utf8)
        try load(dump + "\nINSERT INTO grdb_migrations VALUES('v99-from-the-future');", into: grdb)
        XCTAssertThrowsError(try Store(path: grdb)) { error in
            XCTAssertEqual(ExitStatus.of(error), .config, "\(error)")
            XCTAssertTrue("\(error)".contains("v99-from-the-future") && "\(error)".contains("newer than this ds knows"), "\(error)")
        }
        let queue2 = try DatabaseQueue(path: grdb)
        defer { try? queue2.close() }
        let untouched = try queue2.read { db in try Bool.fetchOne(db, sql: "SELECT COUNT(*) = 0 FROM sqlite_master WHERE name = 'schema_version'") }
        XCTAssertEqual(untouched, true, "the refused database is left as it was")
    }

    /// A look that must write nothing (`ds-submit --dry-run`) opens without upgrading: a database
    /// at an older schema is refused (exit 78, saying so) and left at its version; one at this
    /// ds's schema opens.
    func testAnOpenWithoutUpgradeLeavesAnOlderSchemaAsItIs() throws {
        let path = directory.appendingPathComponent("older.db").path
        _ = try Store(path: path)
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in try db.execute(sql: "UPDATE schema_version SET version = ?", arguments: [Migrations.latest - 1]) }
        try queue.close()
        XCTAssertThrowsError(try Store(location: .sqlite(path: path), create: false, upgrade: false)) { error in
            XCTAssertEqual(ExitStatus.of(error), .config, "\(error)")
            XCTAssertTrue("\(error)".contains("older than this ds's \(Migrations.latest)"), "\(error)")
        }
        XCTAssertEqual(try schema(path)["schema version"], ["\(Migrations.latest - 1)"], "nothing written")
        let current = directory.appendingPathComponent("current.db").path
        _ = try Store(path: current)
        XCTAssertNoThrow(try Store(location: .sqlite(path: current), create: false, upgrade: false), "a database at this ds's schema opens")
    }
}
