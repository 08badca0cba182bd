import Foundation

/// What `ds-alert list` selects: every filter given must hold.
public struct AlertQuery: Sendable {
    /// One of `AlertRecord.states`.
    public var state: String?
    public var instance: Int64?
    /// The name of the workflow whose instance the alert is about (SERVER_DOWN alerts have none).
    public var workflow: String?
    /// Only alerts no one has acknowledged.
    public var unacked = false
    /// At most this many, newest first; nil for all.
    public var limit: Int?
    public init() {}
}

/// How `acknowledgeAlerts` ended: every id acknowledged (newly or before), or the ids that name no
/// alert, in which case nothing was written.
public enum AlertAcknowledgement: Sendable {
    case done(newly: Set<Int64>, alerts: [AlertRecord])
    case unknown([Int64])
}

extension Store {
    /// The alerts `query` selects, newest first.
    public func alerts(_ query: AlertQuery) async throws -> [AlertRecord] {
        try await read("listing alerts") { db in
            var conditions = ["1 = 1"]
            var arguments: SQLArguments = []
            if let state = query.state { conditions.append("state = ?"); arguments += [state] }
            if let instance = query.instance { conditions.append("workflow_instance_id = ?"); arguments += [instance] }
            if let workflow = query.workflow {
                conditions.append("workflow_instance_id IN (SELECT id FROM workflow_instance WHERE name = ?)")
                arguments += [workflow]
            }
            if query.unacked { conditions.append("ack_time IS NULL") }
            var sql = "SELECT * FROM alert WHERE \(conditions.joined(separator: " AND ")) ORDER BY id DESC"
            if let limit = query.limit { sql += " LIMIT ?"; arguments += [limit] }
            return try AlertRecord.fetchAll(db, sql: sql, arguments: arguments)
        }
    }

    /// One alert by id, or nil.
    public func alert(_ id: Int64) async throws -> AlertRecord? {
        try await read("reading alert \(id)") { db in try AlertRecord.fetchOne(db, key: id) }
    }

    /// Acknowledges the alerts `ids` as `by` at `now`, in one transaction: all of them, or, when
    /// one names no alert, none. An alert acknowledged before keeps its first acknowledgement
    /// (so acknowledging twice changes nothing). Only the two ack columns are written: a master
    /// delivering the alert meanwhile goes on.
    public func acknowledgeAlerts(_ ids: [Int64], by: String, now: Double) async throws -> AlertAcknowledgement {
        let wanted = Array(Set(ids)).sorted()
        return try await transaction("acknowledging \(wanted.count) alerts") { db in
            let found = try AlertRecord.fetchAll(db, ids: wanted)
            let missing = Set(wanted).subtracting(found.compactMap(\.id)).sorted()
            guard missing.isEmpty else { return .unknown(missing) }
            let newly = Set(found.filter { $0.ackTime == nil }.compactMap(\.id))
            for chunk in Array(newly).sorted().chunked(500) {
                try db.execute(sql: "UPDATE alert SET ack_time = ?, ack_by = ? WHERE id IN (\(AlertRecord.marks(chunk.count))) AND ack_time IS NULL",
                               arguments: [now, by] + SQLArguments(chunk))
            }
            return .done(newly: newly, alerts: try AlertRecord.fetchAll(db, ids: wanted))
        }
    }
}
