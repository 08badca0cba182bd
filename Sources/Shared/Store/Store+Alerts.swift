import Foundation

/// Something operators are told about: one row per event (`dedupKey`), delivered later.
public struct AlertRecord: Codable, Sendable, StoredRecord {
    public static let tableName = "alert"
    public var id: Int64?
    public var kind: AlertKind
    /// One row per event: `TASK_TIMEOUT:<task-instance-id>`, `WORKFLOW_TIMEOUT:<instance>:<run>`.
    public var dedupKey: String
    public var workflowInstanceId: Int64?
    public var taskInstanceId: Int64?
    /// The alert as the alert command will read it (`AlertContent`).
    public var contentJson: String
    public var createTime: Double
    /// PENDING until delivered.
    public var state: String = "PENDING"
    public var attempts: Int = 0
    public var lastError: String?
    public var sentTime: Double?
    /// The master delivering it now, and until when its lease holds (a master that dies while
    /// its command runs leaves the alert to another once the lease is over).
    public var owner: String?
    public var leaseUntil: Double?
    /// When a failed delivery is tried again.
    public var nextAttemptTime: Double?
    /// When an operator acknowledged it (`ds-alert ack`), and who; nil until then. Written only by
    /// the acknowledgement: delivery goes on as before.
    public var ackTime: Double?
    public var ackBy: String?

    /// Every state an alert is in: PENDING until delivered, SENDING while a master's command
    /// runs, SENT, or FAILED once its retries are spent.
    public static let states = ["PENDING", "SENDING", "SENT", "FAILED"]

    public init(_ content: AlertContent, dedupKey: String) {
        kind = content.kind
        self.dedupKey = dedupKey
        workflowInstanceId = content.instance
        taskInstanceId = content.taskInstance
        contentJson = String(decoding: WireJSON.encode(content), as: UTF8.self)
        createTime = content.time
    }

    public var content: AlertContent? { try? WireJSON.decode(AlertContent.self, Data(contentJson.utf8)) }

    enum CodingKeys: String, CodingKey {
        case id, kind, dedupKey = "dedup_key", workflowInstanceId = "workflow_instance_id", taskInstanceId = "task_instance_id",
             contentJson = "content_json", createTime = "create_time", state, attempts, lastError = "last_error", sentTime = "sent_time",
             owner, leaseUntil = "lease_until", nextAttemptTime = "next_attempt_time", ackTime = "ack_time", ackBy = "ack_by"
    }
}

extension Store {
    /// Records alerts noticed outside a scheduling round (a server that left); an event already
    /// recorded, by this master or another, stays one row.
    public func recordAlerts(_ alerts: [AlertRecord]) async throws {
        guard !alerts.isEmpty else { return }
        try await transaction("recording \(alerts.count) alerts") { db in
            for var alert in alerts { try alert.insertUnlessPresent(db) }
        }
    }

    /// The oldest alert due for delivery (arguments: now, now); named, so that a test can read its plan.
    /// Each state's first due alert by its own (state, id) index, then that row by its key: written
    /// as one OR of the two states, an analysed SQLite read the whole table in id order (every
    /// delivered alert before the first due one).
    static let dueAlertSQL = """
        SELECT * FROM alert
        WHERE id = (SELECT MIN(id) FROM alert WHERE state = 'PENDING' AND (next_attempt_time IS NULL OR next_attempt_time <= ?))
           OR id = (SELECT MIN(id) FROM alert WHERE state = 'SENDING' AND lease_until < ?)
        ORDER BY id LIMIT 1
        """

    /// Leases the oldest alert due for delivery to `owner` until `now + lease`: one PENDING whose
    /// retry time has come, or one whose last deliverer's lease ran out (it died while its
    /// command ran). Counts the attempt. Nil if none is due.
    public func leaseAlert(owner: String, now: Double, lease: Double) async throws -> AlertRecord? {
        let dueSQL = Self.dueAlertSQL
        // A read first: masters look several times a second, and most looks find nothing to take
        // a write lock for.
        guard try await read("looking for alerts", { db in try db.row(sql: dueSQL, arguments: [now, now]) != nil }) else { return nil }
        // Isolation: the due alert is read, then leased: SERIALIZABLE on PostgreSQL (two masters
        // leasing the same alert: one aborts with 40001 and looks again), IMMEDIATE on SQLite.
        return try await transaction("leasing an alert") { db in
            guard var alert = try AlertRecord.fetchOne(db, sql: dueSQL, arguments: [now, now]) else { return nil }
            alert.state = "SENDING"
            alert.owner = owner
            alert.leaseUntil = now + lease
            alert.attempts += 1
            try alert.update(db)
            return alert
        }
    }

    /// Records how a delivery ended: SENT, PENDING again (to be retried at `retryAt`) or FAILED
    /// (no retry left). Only while `owner` still holds the lease; false if it no longer did.
    @discardableResult
    public func finishAlert(_ id: Int64, owner: String, sent: Bool, error: String?, retryAt: Double?, now: Double) async throws -> Bool {
        // Stored also when the master is stopping: the command has run, and an alert left SENDING
        // would be delivered again once its lease is over.
        // Isolation: the lease is checked, then the alert written: SERIALIZABLE (PostgreSQL).
        try await transactionDespiteCancellation("recording the delivery of alert \(id)") { db in
            guard var alert = try AlertRecord.fetchOne(db, key: id), alert.state == "SENDING", alert.owner == owner else { return false }
            alert.state = sent ? "SENT" : (retryAt == nil ? "FAILED" : "PENDING")
            alert.sentTime = sent ? now : nil
            alert.lastError = sent ? alert.lastError : error
            alert.nextAttemptTime = sent ? nil : retryAt
            alert.leaseUntil = nil
            try alert.update(db)
            return true
        }
    }
}
