import Foundation

/// The store's whole view of a database: statements with `?` placeholders and typed values, rows
/// read by column name. Every query and transaction of `Store` is written once against it; a
/// backend per database (SQLite through GRDB, PostgreSQL through postgres-nio) carries it out.
/// A connection is only valid inside the transaction or read that handed it out.
///
/// Why a thin executor of our own rather than a SQL layer that speaks both (sql-kit, Fluent):
/// the store's transactions stay synchronous closures, as they were written (a body never
/// suspends half-way through a transaction), GRDB stays for SQLite, PostgreSQL costs one
/// dependency (postgres-nio), and the SQL stays plain text a reader can run in `sqlite3` or
/// `psql`. It is written portably (`?` placeholders, `RETURNING id`, `ON CONFLICT`); the few
/// statements that must differ (DDL, catalogue reads) live in `Migrations`.
public protocol SQLConnection {
    /// Which SQL the backend speaks, for the few statements that must differ (DDL, catalogue reads).
    var dialect: SQLDialect { get }
    /// Runs a statement that returns no rows; the number of rows it changed.
    @discardableResult func execute(sql: String, arguments: SQLArguments) throws -> Int
    /// Runs a statement (a SELECT, or a write with RETURNING) and returns every row.
    func rows(sql: String, arguments: SQLArguments) throws -> [SQLRow]
}

/// The two SQL dialects the store speaks.
public enum SQLDialect: String, Sendable {
    case sqlite, postgres
}

/// One value bound to a placeholder or read from a column.
public enum SQLValue: Sendable, Equatable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
    case bool(Bool)
}

/// The values bound to a statement's `?` placeholders, in order.
public struct SQLArguments: Sendable, ExpressibleByArrayLiteral {
    public var values: [SQLValue]

    public init(arrayLiteral elements: (any SQLBindable)?...) {
        values = elements.map { $0?.sqlValue ?? .null }
    }

    public init<S: Sequence>(_ elements: S) where S.Element: SQLBindable {
        values = elements.map(\.sqlValue)
    }

    public init(values: [SQLValue]) { self.values = values }

    public static func + (a: SQLArguments, b: SQLArguments) -> SQLArguments { SQLArguments(values: a.values + b.values) }
    public static func += (a: inout SQLArguments, b: SQLArguments) { a.values += b.values }
}

extension SQLConnection {
    @discardableResult public func execute(sql: String) throws -> Int { try execute(sql: sql, arguments: []) }

    public func rows(sql: String) throws -> [SQLRow] { try rows(sql: sql, arguments: []) }

    /// The first row, if any.
    public func row(sql: String, arguments: SQLArguments = []) throws -> SQLRow? { try rows(sql: sql, arguments: arguments).first }
}

/// A value that can be bound to a placeholder.
public protocol SQLBindable {
    var sqlValue: SQLValue { get }
}

/// A value that can be read from a column. Reading is strict: a NULL or a value of another kind
/// is an error naming the column, never a default.
public protocol SQLDecodable {
    init(sqlValue: SQLValue) throws
}

/// A column that did not hold what its reader expected.
struct SQLDecodingError: Error, CustomStringConvertible {
    var expected: String
    var found: SQLValue
    var description: String { "expected \(expected), found \(found)" }
}

extension SQLValue: SQLBindable {
    public var sqlValue: SQLValue { self }
}

extension Int64: SQLBindable, SQLDecodable {
    public var sqlValue: SQLValue { .int(self) }
    public init(sqlValue: SQLValue) throws {
        switch sqlValue {
        case .int(let v): self = v
        case .bool(let b): self = b ? 1 : 0
        case .double(let d):
            guard let v = Int64(exactly: d) else { throw SQLDecodingError(expected: "an integer", found: sqlValue) }
            self = v
        default: throw SQLDecodingError(expected: "an integer", found: sqlValue)
        }
    }
}

extension Int: SQLBindable, SQLDecodable {
    public var sqlValue: SQLValue { .int(Int64(self)) }
    public init(sqlValue: SQLValue) throws {
        guard let v = Int(exactly: try Int64(sqlValue: sqlValue)) else { throw SQLDecodingError(expected: "an Int", found: sqlValue) }
        self = v
    }
}

extension Int32: SQLBindable, SQLDecodable {
    public var sqlValue: SQLValue { .int(Int64(self)) }
    public init(sqlValue: SQLValue) throws {
        guard let v = Int32(exactly: try Int64(sqlValue: sqlValue)) else { throw SQLDecodingError(expected: "a 32-bit integer", found: sqlValue) }
        self = v
    }
}

extension Double: SQLBindable, SQLDecodable {
    public var sqlValue: SQLValue { .double(self) }
    public init(sqlValue: SQLValue) throws {
        switch sqlValue {
        case .double(let d): self = d
        case .int(let v): self = Double(v)
        default: throw SQLDecodingError(expected: "a number", found: sqlValue)
        }
    }
}

extension String: SQLBindable, SQLDecodable {
    public var sqlValue: SQLValue { .text(self) }
    public init(sqlValue: SQLValue) throws {
        guard case .text(let s) = sqlValue else { throw SQLDecodingError(expected: "text", found: sqlValue) }
        self = s
    }
}

extension Bool: SQLBindable, SQLDecodable {
    public var sqlValue: SQLValue { .bool(self) }
    /// SQLite has no booleans: 0 and 1 (as GRDB stored them) read as false and true.
    public init(sqlValue: SQLValue) throws {
        switch sqlValue {
        case .bool(let b): self = b
        case .int(let v): self = v != 0
        default: throw SQLDecodingError(expected: "a boolean", found: sqlValue)
        }
    }
}

extension Optional: SQLDecodable where Wrapped: SQLDecodable {
    public init(sqlValue: SQLValue) throws {
        self = sqlValue == .null ? nil : try Wrapped(sqlValue: sqlValue)
    }
}

/// Enums stored as their raw text (states, priorities, kinds).
public protocol SQLTextEnum: SQLBindable, SQLDecodable, RawRepresentable where RawValue == String {}

extension SQLTextEnum {
    public var sqlValue: SQLValue { .text(rawValue) }
    public init(sqlValue: SQLValue) throws {
        guard let value = Self(rawValue: try String(sqlValue: sqlValue)) else {
            throw SQLDecodingError(expected: "one of \(Self.self)", found: sqlValue)
        }
        self = value
    }
}

extension WorkflowState: SQLTextEnum {}
extension TaskState: SQLTextEnum {}
extension Priority: SQLTextEnum {}
extension ExecutionType: SQLTextEnum {}
extension CatchUp: SQLTextEnum {}
extension AlertKind: SQLTextEnum {}

/// One result row: values by column name (lower case, as both databases report unquoted names).
public struct SQLRow: Sendable {
    public let columns: [String]
    public let values: [SQLValue]

    public init(columns: [String], values: [SQLValue]) {
        (self.columns, self.values) = (columns, values)
    }

    /// The value of `column`, read as `T`; a missing column or a value that is not a `T` throws.
    public subscript<T: SQLDecodable>(_ column: String) -> T {
        get throws {
            guard let i = columns.firstIndex(of: column) else {
                throw StoreError.failed("no column \(column) in a result of (\(columns.joined(separator: ", ")))")
            }
            do { return try T(sqlValue: values[i]) } catch {
                throw StoreError.failed("column \(column): \(error)")
            }
        }
    }

    /// The first column's value (for scalar queries).
    public func first<T: SQLDecodable>(_ type: T.Type = T.self) throws -> T {
        guard let value = values.first else { throw StoreError.failed("a result row with no column") }
        do { return try T(sqlValue: value) } catch { throw StoreError.failed("column \(columns.first ?? "?"): \(error)") }
    }
}

extension SQLDecodable {
    /// The first column of the first row; nil if there is no row or the value is NULL.
    public static func fetchOne(_ db: SQLConnection, sql: String, arguments: SQLArguments = []) throws -> Self? {
        guard let row = try db.row(sql: sql, arguments: arguments) else { return nil }
        return try row.first(Self?.self)
    }

    /// The first column of every row.
    public static func fetchAll(_ db: SQLConnection, sql: String, arguments: SQLArguments = []) throws -> [Self] {
        try db.rows(sql: sql, arguments: arguments).map { try $0.first(Self.self) }
    }
}
