import Foundation
import Logging
import PostgresNIO
import XCTest

/// The suite's scratch PostgreSQL (Support/PostgresServer.swift, scripts/postgres.sh): it starts
/// as the postgres user, serves a fresh database per test with a password, and leaves no process.
final class PostgresServerTests: XCTestCase {
    /// Starts a server, connects to a fresh database of it as `ds` with postgres-nio, runs
    /// `SELECT 1`, and stops it: its postmaster and every backend are gone, and so is its folder.
    func testAScratchServerServesAFreshDatabaseAndLeavesNoProcess() async throws {
        let server = try PostgresServer.start()
        var stopped = false
        defer { if !stopped { server.remove() } }
        let first = try server.createDatabase()
        let second = try server.createDatabase()
        XCTAssertNotEqual(first.name, second.name)
        let attributes = try FileManager.default.attributesOfItem(atPath: first.passwordFile)
        XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o600, "the password file is the ds user's alone")

        let logger = Logger(label: "postgres-smoke")
        let configuration = PostgresConnection.Configuration(host: "127.0.0.1", port: first.port, username: first.user,
                                                             password: first.password, database: first.name, tls: .disable)
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        var values: [Int] = []
        for try await (value, user) in try await connection.query("SELECT 1, current_user::text", logger: logger).decode((Int, String).self) {
            values.append(value)
            XCTAssertEqual(user, "ds")
        }
        XCTAssertEqual(values, [1])
        try await connection.close()

        // A wrong password is refused: TCP connections need the password (scram-sha-256).
        let wrong = PostgresConnection.Configuration(host: "127.0.0.1", port: first.port, username: first.user,
                                                     password: "not-the-password", database: first.name, tls: .disable)
        do {
            let c = try await PostgresConnection.connect(configuration: wrong, id: 2, logger: logger)
            try? await c.close()
            XCTFail("a wrong password was accepted")
        } catch {}

        let pid = server.pid
        XCTAssertEqual(kill(pid, 0), 0, "the postmaster runs")
        XCTAssertEqual(Self.processes(mentioning: server.directory.path), [pid], "the postmaster names its folder")
        let children = Self.children(of: pid)
        XCTAssertFalse(children.isEmpty, "a running server has its checkpointer, writers and launcher")
        server.remove()
        stopped = true
        XCTAssertNotEqual(kill(pid, 0), 0, "the postmaster \(pid) is gone")
        XCTAssertEqual(Self.processes(mentioning: server.directory.path), [], "no process of the server is left")
        XCTAssertEqual(children.filter { kill($0, 0) == 0 && Self.commandLine($0).hasPrefix("postgres:") }, [],
                       "none of its processes outlives it")
        XCTAssertFalse(FileManager.default.fileExists(atPath: server.directory.path))
    }

    /// The server a test process shares starts once, and each test takes a database of its own
    /// that the ds user owns and reaches with the password file's password.
    func testTheSharedServerGivesEachTestAFreshDatabase() async throws {
        let server = try PostgresServer.shared()
        XCTAssertTrue(try PostgresServer.shared() === server, "one server per test process")
        let database = try server.createDatabase()
        XCTAssertEqual(database.environment["DS_DB"], "postgres://ds@127.0.0.1:\(server.port)/\(database.name)")
        let password = try String(contentsOfFile: try XCTUnwrap(database.environment["DS_DB_PASSWORD_FILE"]), encoding: .utf8)
        XCTAssertEqual(password.trimmingCharacters(in: .newlines), database.password)
        let logger = Logger(label: "postgres-shared")
        let connection = try await PostgresConnection.connect(
            configuration: .init(host: "127.0.0.1", port: server.port, username: "ds", password: database.password, database: database.name, tls: .disable),
            id: 3, logger: logger)
        var tables: [Int] = []
        for try await count in try await connection.query("SELECT COUNT(*)::int FROM pg_tables WHERE schemaname = 'public'", logger: logger).decode(Int.self) {
            tables.append(count)
        }
        XCTAssertEqual(tables, [0], "a fresh database holds no table")
        try await connection.query("CREATE TABLE t (id bigint)", logger: logger)
        try await connection.close()
        XCTAssertNotEqual(try server.createDatabase().name, database.name)
    }

    /// stop() is an outage and start() its end: the same port, the same data, a new postmaster.
    func testAStoppedServerStartsAgainWithItsData() async throws {
        let server = try PostgresServer.start()
        defer { server.remove() }
        let database = try server.createDatabase()
        let logger = Logger(label: "postgres-restart")
        let configuration = PostgresConnection.Configuration(host: "127.0.0.1", port: server.port, username: "ds", password: database.password,
                                                             database: database.name, tls: .disable)
        let first = try await PostgresConnection.connect(configuration: configuration, id: 4, logger: logger)
        try await first.query("CREATE TABLE kept (v bigint)", logger: logger)
        try await first.query("INSERT INTO kept VALUES (42)", logger: logger)
        try await first.close()
        let before = server.pid
        try server.stop()
        XCTAssertNotEqual(kill(before, 0), 0, "the postmaster is gone")
        do {
            let c = try await PostgresConnection.connect(configuration: configuration, id: 5, logger: logger)
            try? await c.close()
            XCTFail("a stopped server answered")
        } catch {}
        try server.start()
        XCTAssertNotEqual(server.pid, before)
        let again = try await PostgresConnection.connect(configuration: configuration, id: 6, logger: logger)
        var values: [Int64] = []
        for try await v in try await again.query("SELECT v FROM kept", logger: logger).decode(Int64.self) { values.append(v) }
        try await again.close()
        XCTAssertEqual(values, [42])
    }

    /// The processes whose parent is `pid`.
    static func children(of pid: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry -> Int32? in
            guard let child = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return nil }
            // pid (comm) state ppid ...: the comm may hold spaces, so read after its ')'.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 1 && Int32(fields[1]) == pid ? child : nil
        }
    }

    static func commandLine(_ pid: Int32) -> String {
        let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data()
        return String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
    }

    /// The pids of processes whose command line holds `text` (a postmaster's `-D DIR`, its backends' parent).
    static func processes(mentioning text: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry -> Int32? in
            guard let pid = Int32(entry), pid != getpid() else { return nil }
            return commandLine(pid).contains(text) ? pid : nil
        }
    }
}
