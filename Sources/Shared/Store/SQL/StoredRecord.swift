import Foundation

/// A record type with one table: read from a row by hand, written from its columns. The id is
/// the table's generated key, given back by the insert (`RETURNING id`, on both databases).
public protocol StoredRecord: Sendable {
    static var tableName: String { get }
    var id: Int64? { get set }
    init(row: SQLRow) throws
    /// Every column but `id`, with its value, as inserted and updated.
    var columnValues: [(String, SQLValue)] { get }
}

extension StoredRecord {
    /// Inserts the row and sets `id` to its new key.
    public mutating func insert(_ db: SQLConnection) throws {
        let columns = columnValues
        let sql = "INSERT INTO \(Self.tableName) (\(columns.map(\.0).joined(separator: ", "))) VALUES (\(Self.marks(columns.count))) RETURNING id"
        guard let row = try db.row(sql: sql, arguments: SQLArguments(values: columns.map(\.1))) else {
            throw StoreError.failed("inserting into \(Self.tableName): no id came back")
        }
        id = try row["id"]
    }

    /// Inserts the row unless it would break a unique key; whether it was inserted (then `id` is set).
    @discardableResult
    public mutating func insertUnlessPresent(_ db: SQLConnection) throws -> Bool {
        let columns = columnValues
        let sql = """
            INSERT INTO \(Self.tableName) (\(columns.map(\.0).joined(separator: ", "))) VALUES (\(Self.marks(columns.count)))
            ON CONFLICT DO NOTHING RETURNING id
            """
        guard let row = try db.row(sql: sql, arguments: SQLArguments(values: columns.map(\.1))) else { return false }
        id = try row["id"]
        return true
    }

    /// Writes every column of the row with this id.
    public func update(_ db: SQLConnection) throws {
        guard let id else { throw StoreError.failed("updating a \(Self.tableName) row that was never stored") }
        let columns = columnValues
        try db.execute(sql: "UPDATE \(Self.tableName) SET \(columns.map { "\($0.0) = ?" }.joined(separator: ", ")) WHERE id = ?",
                       arguments: SQLArguments(values: columns.map(\.1) + [.int(id)]))
    }

    /// Deletes the row with this id; whether there was one.
    @discardableResult
    public func delete(_ db: SQLConnection) throws -> Bool {
        guard let id else { return false }
        return try Self.deleteOne(db, key: id)
    }

    @discardableResult
    public static func deleteOne(_ db: SQLConnection, key: Int64) throws -> Bool {
        try db.execute(sql: "DELETE FROM \(tableName) WHERE id = ?", arguments: [key]) > 0
    }

    /// The row with this id, or nil.
    public static func fetchOne(_ db: SQLConnection, key: Int64) throws -> Self? {
        try fetchOne(db, sql: "SELECT * FROM \(tableName) WHERE id = ?", arguments: [key])
    }

    public static func fetchOne(_ db: SQLConnection, sql: String, arguments: SQLArguments = []) throws -> Self? {
        try db.row(sql: sql, arguments: arguments).map { try Self(row: $0) }
    }

    public static func fetchAll(_ db: SQLConnection, sql: String, arguments: SQLArguments = []) throws -> [Self] {
        try db.rows(sql: sql, arguments: arguments).map { try Self(row: $0) }
    }

    /// The rows whose ids are among `ids` (and that meet `condition`, if given), by id: in chunks,
    /// so that no statement carries more placeholders than a database takes.
    public static func fetchAll(_ db: SQLConnection, ids: [Int64], where condition: String? = nil, arguments: SQLArguments = []) throws -> [Self] {
        var all: [Self] = []
        for chunk in ids.chunked(500) {
            all += try fetchAll(db, sql: "SELECT * FROM \(tableName) WHERE id IN (\(marks(chunk.count)))\(condition.map { " AND \($0)" } ?? "") ORDER BY id",
                                arguments: SQLArguments(chunk) + arguments)
        }
        return all
    }

    /// `count` placeholders, separated by commas.
    static func marks(_ count: Int) -> String { Array(repeating: "?", count: count).joined(separator: ", ") }
}
