import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO

/// PostgreSQL through postgres-nio's `PostgresClient` (its pool bounded by `poolSize`). A
/// transaction is `BEGIN ISOLATION LEVEL SERIALIZABLE … COMMIT`, its synchronous body run on a
/// thread of its own that blocks on the connection's futures (never an event loop or the
/// cooperative pool); a serialization failure (40001) or deadlock (40P01) runs the whole body
/// again, a bounded number of times, after a short jittered pause.
final class PostgresBackend: StoreBackend {
    let settings: PostgresSettings
    private let client: PostgresClient
    private let running: Task<Void, Never>
    /// postgres-nio's own background messages: warnings and worse (a store that closes while
    /// its pool still connects logs each connection given up at info level).
    private let logger: Logger = {
        var logger = Logger(label: "ds.postgres")
        logger.logLevel = .warning
        return logger
    }()
    var dialect: SQLDialect { .postgres }

    /// Tries of one transaction before its serialization failures are reported as busy (exit 75).
    static let maxTries = 20
    /// Transaction bodies run here: threads that may block, outside Swift's cooperative pool.
    private static let bodies = DispatchQueue(label: "ds.postgres.transactions", attributes: .concurrent)

    init(_ settings: PostgresSettings) throws {
        self.settings = settings
        var config = PostgresClient.Configuration(host: settings.host, port: settings.port, username: settings.user,
                                                  password: settings.password, database: settings.database,
                                                  tls: try Self.clientTLS(settings.tls))
        config.options.maximumConnections = max(1, settings.poolSize)
        config.options.connectTimeout = .seconds(10)
        let client = PostgresClient(configuration: config, backgroundLogger: logger)
        self.client = client
        // The client leases connections only while `run()` runs; it ends with this backend.
        running = Task.detached { await client.run() }
    }

    deinit { running.cancel() }

    func write<T: Sendable>(_ body: @escaping @Sendable (SQLConnection) throws -> T) async throws -> T {
        try await pooled(Self.serializableBegin, body)
    }

    /// A transaction on a leased connection, its body on a thread of its own; run again on a
    /// serialization failure.
    private func pooled<T: Sendable>(_ begin: String, _ body: @escaping @Sendable (SQLConnection) throws -> T) async throws -> T {
        try await retrying {
            let leased = LeaseMark()
            do {
                let backend: PostgresBackend? = begin == Self.serializableBegin ? self : nil
                return try await self.client.withConnection { connection in
                    leased.done = true
                    return try await Self.onOwnThread { try Self.transaction(connection, begin, body, resolvedBy: backend) }
                }
            } catch where !leased.done && !(error is CancellationError) {
                // The pool gave no connection: it could not make one for its connect timeout
                // (its circuit breaker), or it was shut down.
                throw StoreError.unreachable("\(self.settings.description): no connection: \(error)")
            }
        }
    }

    /// Whether a lease was given (then any error came from the transaction, not the pool).
    private final class LeaseMark: @unchecked Sendable {
        var done = false
    }

    static let serializableBegin = "BEGIN ISOLATION LEVEL SERIALIZABLE"
    /// Reads see one snapshot, as on SQLite, and never fail to serialize (they write nothing).
    static let readBegin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"

    /// On a connection of its own (not the pool's, which needs the cooperative pool to lease):
    /// for opening, when the caller may be anywhere, and for what must be stored despite cancellation.
    func writeBlocking<T>(_ body: (SQLConnection) throws -> T) throws -> T {
        let connection = try connectDirectly()
        defer { _ = try? connection.close().wait() }
        return try serializableRetrying(connection, body)
    }

    private func serializableRetrying<T>(_ connection: PostgresConnection, _ body: (SQLConnection) throws -> T) throws -> T {
        var tries = 0
        while true {
            do { return try Self.transaction(connection, Self.serializableBegin, body, resolvedBy: self) } catch where Self.isRetryable(error) && tries + 1 < Self.maxTries {
                tries += 1
                Thread.sleep(forTimeInterval: Self.backoff(tries))
            }
        }
    }

    /// Under a session advisory lock taken before the transaction begins (taken inside it, a
    /// SERIALIZABLE snapshot would predate the tables the process it waited for made).
    func open<T>(_ body: (SQLConnection) throws -> T) throws -> T {
        let connection = try connectDirectly()
        defer { _ = try? connection.close().wait() }
        let db = PostgresSQLConnection(connection: connection)
        _ = try db.rows(sql: "SELECT pg_advisory_lock(\(Self.openLock))")
        defer { _ = try? db.rows(sql: "SELECT pg_advisory_unlock(\(Self.openLock))") }
        return try serializableRetrying(connection, body)
    }

    /// The advisory lock key processes opening one database take in turn.
    static let openLock: Int64 = 2_023_052_300

    func read<T: Sendable>(_ body: @escaping @Sendable (SQLConnection) throws -> T) async throws -> T {
        try await pooled(Self.readBegin, body)
    }

    private func retrying<T>(_ attempt: () async throws -> T) async throws -> T {
        var tries = 0
        while true {
            do { return try await attempt() } catch where Self.isRetryable(error) && tries + 1 < Self.maxTries {
                tries += 1
                try await Task.sleep(nanoseconds: UInt64(Self.backoff(tries) * 1e9))
            }
        }
    }

    /// 5 ms doubling to 320 ms, each time somewhere between half and all of it.
    private static func backoff(_ tries: Int) -> Double {
        let ceiling = 0.005 * Double(1 << min(tries, 6))
        return Double.random(in: ceiling / 2...ceiling)
    }

    private static func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            bodies.async { continuation.resume(with: Result { try body() }) }
        }
    }

    /// `resolvedBy`, for a write: the backend that asks whether a transaction committed. A connection lost
    /// during COMMIT leaves its outcome unknown: the server may have committed. Taken for not
    /// stored, a master would plan the round again and write it twice (two attempts of one task);
    /// so the transaction's id is asked first, and then the server, once it answers, is asked
    /// whether that transaction committed.
    private static func transaction<T>(_ connection: PostgresConnection, _ begin: String, _ body: (SQLConnection) throws -> T,
                                       resolvedBy resolver: PostgresBackend? = nil) throws -> T {
        let db = PostgresSQLConnection(connection: connection)
        try db.execute(sql: begin)
        let result: T
        let xid: Int64?
        do {
            xid = resolver == nil ? nil : try Int64.fetchOne(db, sql: "SELECT txid_current()")
            result = try body(db)
        } catch {
            rollBack(db)
            throw error
        }
        let tag: String
        do {
            tag = try db.commandTag(sql: "COMMIT")
        } catch {
            // A server's answer (40001 at COMMIT, say) is an outcome: nothing was stored.
            guard let xid, let resolver, Self.outcomeUnknown(error) else {
                rollBack(db)
                throw error
            }
            if try resolver.committed(xid) { return result }
            throw error
        }
        // A transaction that a failed statement aborted answers COMMIT with ROLLBACK, and no
        // error: a body that caught that statement's error must not be taken for stored.
        guard tag == "COMMIT" else {
            throw StoreError.failed("the database rolled the transaction back at COMMIT (it answered \(tag)): one of its statements had failed")
        }
        return result
    }

    /// Ends a transaction that will not commit. A connection whose ROLLBACK failed may still be in
    /// that transaction: it is closed, so the pool makes a new one rather than lease it out again
    /// (the next BEGIN would only warn, and its work would join the old transaction).
    private static func rollBack(_ db: PostgresSQLConnection) {
        do {
            try db.execute(sql: "ROLLBACK")
        } catch {
            _ = try? db.connection.close().wait()
        }
    }

    /// The error says nothing of what the server did: no SQLSTATE came back.
    static func outcomeUnknown(_ error: Error) -> Bool {
        guard let error = error as? PSQLError else { return error is NIOConnectionError || error is IOError || error is ChannelError }
        return error.serverInfo?[.sqlState] == nil
    }

    /// Whether transaction `xid` committed, asked on a connection of its own: waits while the
    /// server cannot be reached or the transaction is still in progress (a COMMIT the server
    /// finishes after its client is gone), up to an hour; then, or if the server no longer knows
    /// (`txid_status` is NULL past its horizon), the database is unreachable for this caller.
    func committed(_ xid: Int64) throws -> Bool {
        let deadline = Date().addingTimeInterval(3600)
        var pause = 0.2
        while Date() < deadline {
            if let connection = try? connectDirectly() {
                defer { _ = try? connection.close().wait() }
                let db = PostgresSQLConnection(connection: connection)
                let status: String?
                do { status = try String.fetchOne(db, sql: "SELECT txid_status(?)", arguments: [xid]) } catch { status = "unasked" }
                switch status {
                case "committed": return true
                case "aborted": return false
                case nil: throw StoreError.unreachable("\(settings.description): transaction \(xid) is past the server's memory; its outcome is unknown")
                default: break  // in progress, or the question failed
                }
            }
            Thread.sleep(forTimeInterval: pause)
            pause = min(pause * 2, 5)
        }
        throw StoreError.unreachable("\(settings.description): the outcome of transaction \(xid)'s COMMIT is unknown after an hour")
    }

    private func connectDirectly() throws -> PostgresConnection {
        var config = PostgresConnection.Configuration(host: settings.host, port: settings.port, username: settings.user,
                                                      password: settings.password, database: settings.database,
                                                      tls: try Self.connectionTLS(settings.tls))
        config.options.connectTimeout = .seconds(10)
        return try PostgresConnection.connect(on: MultiThreadedEventLoopGroup.singleton.any(), configuration: config, id: 0,
                                              logger: logger).wait()
    }

    private static func isRetryable(_ error: Error) -> Bool {
        guard let error = error as? PSQLError, let state = error.serverInfo?[.sqlState] else { return false }
        return state == "40001" || state == "40P01"
    }

    /// Serialization failures that outlived their retries are busy (exit 75); a server that cannot
    /// be reached is unreachable (exit 75); any other server error names its SQLSTATE.
    func storeError(_ error: Error, _ what: String) -> StoreError? {
        guard let error = error as? PSQLError else {
            if error is NIOConnectionError || error is IOError || error is ChannelError {
                return .unreachable("\(what): \(settings.description): \(error)")
            }
            return nil
        }
        if let info = error.serverInfo {
            let state = info[.sqlState] ?? "?"
            if state == "40001" || state == "40P01" { return .busy("\(what): \(info[.message] ?? state) (retried \(Self.maxTries) times)") }
            // 28xxx: the user or its password refused; 3D000: no such database: the configuration
            // is wrong (exit 78), not ds (70), and retrying will not help (75).
            if state.hasPrefix("28") || state == "3D000" { return .open(path: settings.description, reason: "\(info[.message] ?? state) (SQLSTATE \(state))") }
            // 57P01-03: the server is shutting down or starting; 08xxx: the connection failed;
            // 53xxx: out of a resource, such as connections (53300): all pass, so try again later.
            if state.hasPrefix("08") || state.hasPrefix("57P") || state.hasPrefix("53") { return .unreachable("\(what): \(settings.description): \(info[.message] ?? state)") }
            return .failed("\(what): \(info[.message] ?? "") (SQLSTATE \(state))\(info[.detail].map { "; \($0)" } ?? "")")
        }
        switch error.code {
        case .connectionError, .serverClosedConnection, .clientClosedConnection, .poolClosed, .uncleanShutdown, .sslUnsupported,
             .failedToAddSSLHandler:
            return .unreachable("\(what): \(settings.description): \(error.underlying.map { "\($0)" } ?? error.code.description)")
        default:
            return .failed("\(what): \(error.code)\(error.underlying.map { ": \($0)" } ?? "")")
        }
    }

    private static func tlsConfiguration(_ mode: PostgresSettings.TLS) -> TLSConfiguration? {
        switch mode {
        case .disable: return nil
        case .require:
            var c = TLSConfiguration.makeClientConfiguration()
            c.certificateVerification = .none
            return c
        case .verifyFull: return TLSConfiguration.makeClientConfiguration()
        }
    }

    private static func clientTLS(_ mode: PostgresSettings.TLS) throws -> PostgresClient.Configuration.TLS {
        tlsConfiguration(mode).map { .require($0) } ?? .disable
    }

    private static func connectionTLS(_ mode: PostgresSettings.TLS) throws -> PostgresConnection.Configuration.TLS {
        try tlsConfiguration(mode).map { .require(try NIOSSLContext(configuration: $0)) } ?? .disable
    }
}

/// One leased connection, inside a transaction: each statement blocks on its future.
struct PostgresSQLConnection: SQLConnection {
    let connection: PostgresConnection
    var dialect: SQLDialect { .postgres }
    private static let logger = Logger(label: "ds.postgres.query")

    func execute(sql: String, arguments: SQLArguments) throws -> Int {
        try run(sql, arguments).metadata.rows ?? 0
    }

    /// The server's command tag for a statement without arguments (COMMIT may answer ROLLBACK).
    func commandTag(sql: String) throws -> String {
        try run(sql, []).metadata.command
    }

    func rows(sql: String, arguments: SQLArguments) throws -> [SQLRow] {
        try run(sql, arguments).rows.map { row in
            var columns: [String] = [], values: [SQLValue] = []
            for cell in row {
                columns.append(cell.columnName)
                values.append(try Self.value(cell))
            }
            return SQLRow(columns: columns, values: values)
        }
    }

    private func run(_ sql: String, _ arguments: SQLArguments) throws -> PostgresQueryResult {
        var binds = PostgresBindings(capacity: arguments.values.count)
        for v in arguments.values {
            switch v {
            case .null: binds.appendNull()
            case .int(let i): binds.append(i)
            case .double(let d): binds.append(d)
            case .text(let s): binds.append(s)
            case .bool(let b): binds.append(b)
            }
        }
        let query = PostgresQuery(unsafeSQL: Self.numberedPlaceholders(sql), binds: binds)
        return try connection.query(query, logger: Self.logger).wait()
    }

    private static func value(_ cell: PostgresCell) throws -> SQLValue {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int2: return .int(Int64(try cell.decode(Int16.self)))
        case .int4: return .int(Int64(try cell.decode(Int32.self)))
        case .int8: return .int(try cell.decode(Int64.self))
        case .float4: return .double(Double(try cell.decode(Float.self)))
        case .float8: return .double(try cell.decode(Double.self))
        case .bool: return .bool(try cell.decode(Bool.self))
        case .numeric:
            guard let d = Double(try cell.decode(String.self)) else { return .null }
            return .double(d)
        default: return (try? cell.decode(String.self)).map { .text($0) } ?? .null
        }
    }

    /// `?` → `$1`, `$2` …, where a `?` is a placeholder: not inside a quoted string (`'…'`,
    /// `E'…'` with its backslash escapes, `$tag$…$tag$`), a quoted identifier, or a comment
    /// (`-- …` to the line's end, `/* … */`). The store's SQL is written with `?` for both databases.
    static func numberedPlaceholders(_ sql: String) -> String {
        let chars = Array(sql)
        var out = ""
        out.reserveCapacity(sql.utf8.count + 16)
        var n = 0
        var i = 0
        /// Copies from `i` up to and including the first `end` (at or after `from`), or to the end.
        func copy(through end: String, from: Int, escapes: Bool = false) {
            let e = Array(end)
            var k = from
            while k < chars.count {
                if escapes && chars[k] == "\\" { k += 2; continue }
                if k + e.count <= chars.count && Array(chars[k..<k + e.count]) == e { k += e.count; break }
                k += 1
            }
            k = min(k, chars.count)
            out += String(chars[i..<k])
            i = k
        }
        while i < chars.count {
            let c = chars[i]
            let next: Character? = i + 1 < chars.count ? chars[i + 1] : nil
            switch c {
            case "'":
                let escaped = i > 0 && (chars[i - 1] == "E" || chars[i - 1] == "e") && (i < 2 || !(chars[i - 2].isLetter || chars[i - 2].isNumber || chars[i - 2] == "_"))
                copy(through: "'", from: i + 1, escapes: escaped)
            case "\"": copy(through: "\"", from: i + 1)
            case "-" where next == "-": copy(through: "\n", from: i + 2)
            case "/" where next == "*": copy(through: "*/", from: i + 2)
            case "$" where next.map { $0 == "$" || $0.isLetter || $0 == "_" } ?? false:
                var k = i + 1
                while k < chars.count && (chars[k].isLetter || chars[k].isNumber || chars[k] == "_") { k += 1 }
                if k < chars.count && chars[k] == "$" {
                    copy(through: String(chars[i...k]), from: k + 1)
                } else {
                    out.append(c)
                    i += 1
                }
            case "?":
                n += 1
                out += "$\(n)"
                i += 1
            default:
                out.append(c)
                i += 1
            }
        }
        return out
    }
}
