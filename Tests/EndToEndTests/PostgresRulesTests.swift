import Foundation
import Shared
import XCTest

// Issue 23, item 7: the end-to-end suites of item 2's rules again on PostgreSQL, each test of
// them as it runs on SQLite: serial execution (SERIAL_WAIT, SERIAL_DISCARD, SERIAL_PRIORITY),
// pool slots (also across a master's kill -9), alert leases with two masters, schedule firing
// with three masters (one killed), catch-up and backfill windows. Each suite also checks that it
// ran on PostgreSQL (XCTest on Linux finds a subclass's inherited tests only beside one of its own).

/// The cluster ran on the PostgreSQL database: the daemons' DS_DB is its URL, and no SQLite file was made.
func assertOnPostgreSQL(_ cluster: Cluster, file: StaticString = #filePath, line: UInt = #line) async throws {
    XCTAssertEqual(cluster.environment["DS_DB"], cluster.postgres?.url, file: file, line: line)
    try cluster.startMaster()
    // The master makes the schema as it starts; a tool refuses a database no master has opened.
    try await eventually("the master made the schema on PostgreSQL") { try cluster.run("ds-pool", ["list"]).status == 0 }
    XCTAssertFalse(FileManager.default.fileExists(atPath: cluster.databasePath), "a SQLite file was made", file: file, line: line)
}

final class PostgresSerialExecutionTests: SerialExecutionTests {
    override class var onPostgreSQL: Bool { true }
    func testOnPostgreSQL() async throws { try await assertOnPostgreSQL(cluster) }
}

final class PostgresTaskPoolTests: TaskPoolTests {
    override class var onPostgreSQL: Bool { true }
    func testOnPostgreSQL() async throws { try await assertOnPostgreSQL(cluster) }
}

final class PostgresAlertTests: AlertTests {
    override class var onPostgreSQL: Bool { true }
    func testOnPostgreSQL() async throws { try await assertOnPostgreSQL(cluster) }
}

final class PostgresScheduleTests: ScheduleTests {
    override class var onPostgreSQL: Bool { true }
    func testOnPostgreSQL() async throws { try await assertOnPostgreSQL(cluster) }

    override func testScheduleStoredWithACronNowRefusedIsShownAsNotFiring() async throws {
        throw XCTSkip("SQLite only: the test writes the stored cron with sqlite3, as an older version could have stored it")
    }
}

final class PostgresBackfillTests: BackfillTests {
    override class var onPostgreSQL: Bool { true }
    func testOnPostgreSQL() async throws { try await assertOnPostgreSQL(cluster) }
}

final class PostgresDefinitionEdgesTests: DefinitionEdgesTests {
    override class var onPostgreSQL: Bool { true }
    func testOnPostgreSQL() async throws { try await assertOnPostgreSQL(cluster) }
}
