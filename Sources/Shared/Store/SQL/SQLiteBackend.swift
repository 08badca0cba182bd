import Foundation
import GRDB

/// What the store needs of a database: serialised write transactions, reads, and the reading of
/// its errors. Bodies are synchronous: they run on a thread the backend owns, never on an event
/// loop or the cooperative pool's threads.
protocol StoreBackend: Sendable {
    var dialect: SQLDialect { get }
    /// Runs `body` in a transaction that no other writer interleaves with (SQLite: IMMEDIATE;
    /// PostgreSQL: SERIALIZABLE, retried on a serialization failure), committed if it returns.
    func write<T: Sendable>(_ body: @escaping @Sendable (SQLConnection) throws -> T) async throws -> T
    /// `write`, on the calling thread, whatever happens to the calling task.
    func writeBlocking<T>(_ body: (SQLConnection) throws -> T) throws -> T
    /// `writeBlocking`, for the first transaction of a process (migrations): one process at a
    /// time, so that two opening a new database at once do not both make its tables.
    func open<T>(_ body: (SQLConnection) throws -> T) throws -> T
    func read<T: Sendable>(_ body: @escaping @Sendable (SQLConnection) throws -> T) async throws -> T
    /// A database error as a `StoreError` naming `what` was being done; nil for other errors.
    func storeError(_ error: Error, _ what: String) -> StoreError?
}

/// SQLite through GRDB: WAL, a busy timeout so several processes share one file. The one file
/// of the store that speaks GRDB.
final class SQLiteBackend: StoreBackend {
    let pool: DatabasePool
    var dialect: SQLDialect { .sqlite }

    init(path: String) throws {
        var config = GRDB.Configuration()
        config.busyMode = .timeout(30)
        config.label = "ds"
        pool = try DatabasePool(path: path, configuration: config)
    }

    func write<T: Sendable>(_ body: @escaping @Sendable (SQLConnection) throws -> T) async throws -> T {
        try await pool.writeWithoutTransaction { db in try Self.immediate(db, body) }
    }

    func writeBlocking<T>(_ body: (SQLConnection) throws -> T) throws -> T {
        try pool.writeWithoutTransaction { db in try Self.immediate(db, body) }
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (SQLConnection) throws -> T) async throws -> T {
        try await pool.read { db in try body(SQLiteConnection(db: db)) }
    }

    /// The caller holds the file lock beside the database (`Store.withFileLock`).
    func open<T>(_ body: (SQLConnection) throws -> T) throws -> T { try writeBlocking(body) }

    private static func immediate<T>(_ db: Database, _ body: (SQLConnection) throws -> T) throws -> T {
        var result: T?
        try db.inTransaction(.immediate) {
            result = try body(SQLiteConnection(db: db))
            return .commit
        }
        guard let result else { throw StoreError.failed("a transaction committed without a result") }
        return result
    }

    /// A busy or locked database is temporary (exit 75, retry), anything else a failure.
    func storeError(_ error: Error, _ what: String) -> StoreError? {
        guard let error = error as? DatabaseError else { return nil }
        if error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED {
            return .busy("\(what): \(error.message ?? "locked")")
        }
        return .failed("\(what): \(error)")
    }
}

/// One GRDB connection, inside a read or a transaction.
struct SQLiteConnection: SQLConnection {
    let db: Database
    var dialect: SQLDialect { .sqlite }

    func execute(sql: String, arguments: SQLArguments) throws -> Int {
        try db.execute(sql: sql, arguments: Self.arguments(arguments))
        return db.changesCount
    }

    func rows(sql: String, arguments: SQLArguments) throws -> [SQLRow] {
        try Row.fetchAll(db, sql: sql, arguments: Self.arguments(arguments)).map { row in
            SQLRow(columns: Array(row.columnNames), values: row.databaseValues.map { v in
                switch v.storage {
                case .null: return .null
                case .int64(let i): return .int(i)
                case .double(let d): return .double(d)
                case .string(let s): return .text(s)
                case .blob(let b): return .text(String(decoding: b, as: UTF8.self))
                }
            })
        }
    }

    private static func arguments(_ arguments: SQLArguments) -> StatementArguments {
        StatementArguments(arguments.values.map { v -> DatabaseValue in
            switch v {
            case .null: return .null
            case .int(let i): return i.databaseValue
            case .double(let d): return d.databaseValue
            case .text(let s): return s.databaseValue
            case .bool(let b): return b.databaseValue
            }
        })
    }
}
