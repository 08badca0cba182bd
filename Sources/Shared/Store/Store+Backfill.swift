import Foundation

/// A backfill as `ds-schedule backfills` lists it: its range and how many of its dates are done,
/// run and wait.
public struct BackfillSummary: Sendable {
    public var backfill: BackfillRecord
    /// Instances that ended (SUCCESS, FAILURE, STOP, PAUSE).
    public var done: Int
    /// Instances that run (RUNNING, READY_PAUSE, READY_STOP).
    public var running: Int
    /// Instances that wait for a master (SUBMITTED, WAITING_THREAD).
    public var waiting: Int
}

/// What `ds-schedule cancel` did.
public struct BackfillCancellation: Sendable, Codable {
    public var backfillId: Int64
    /// Running instances asked to stop (their owner kills their tasks, as `ds-instance stop` does).
    public var stopping: [Int64] = []
    /// Waiting instances ended STOP before any master started them: they never start.
    public var dropped: [Int64] = []
    /// Instances that had ended before; they stay as they were.
    public var ended: Int = 0
    /// When the backfill was cancelled (earlier, if it had been).
    public var cancelledAt: Double?
    /// It had been cancelled before this request.
    public var alreadyCancelled = false
}

extension Store {
    static let backfillSummarySQL = """
        SELECT b.*,
          (SELECT COUNT(*) FROM workflow_instance i WHERE i.backfill_id = b.id AND i.state IN ('SUCCESS', 'FAILURE', 'STOP', 'PAUSE')) AS done,
          (SELECT COUNT(*) FROM workflow_instance i WHERE i.backfill_id = b.id AND i.state IN \(WorkflowState.activeSQL)) AS running,
          (SELECT COUNT(*) FROM workflow_instance i WHERE i.backfill_id = b.id AND i.state IN \(WorkflowState.waitingSQL)) AS waiting
        FROM backfill b
        """

    /// Every backfill, oldest first, with its counts.
    public func backfills() async throws -> [BackfillSummary] {
        try await read("reading backfills") { db in
            try db.rows(sql: Self.backfillSummarySQL + " ORDER BY b.id").map { row in
                BackfillSummary(backfill: try BackfillRecord(row: row), done: try row["done"], running: try row["running"], waiting: try row["waiting"])
            }
        }
    }

    /// Cancels backfill `id` in one transaction: each instance of it that runs is stopped as
    /// `ds-instance stop` stops it (a STOP command to its owner, which kills its tasks), each that
    /// waits ends STOP with its start command deleted, and one that ended stays as it is. A master
    /// claims an instance only with its start command in a transaction of its own (IMMEDIATE on
    /// SQLite, SERIALIZABLE on PostgreSQL): it either claimed it before (then it is stopped here)
    /// or finds no command after; a waiting date never starts once this returns. Nil: no such backfill.
    public func cancelBackfill(_ id: Int64, now: Double) async throws -> BackfillCancellation? {
        try await transaction("cancelling backfill \(id)") { db -> BackfillCancellation? in
            guard var backfill = try BackfillRecord.fetchOne(db, key: id) else { return nil }
            var result = BackfillCancellation(backfillId: id)
            result.alreadyCancelled = backfill.cancelledAt != nil
            let instances = try WorkflowInstanceRecord.fetchAll(db, sql: "SELECT * FROM workflow_instance WHERE backfill_id = ? ORDER BY id",
                                                                arguments: [id])
            for instance in instances {
                switch instance.state {
                case .submitted, .waitingThread:
                    _ = try Self.control(instance.id!, .stop, now: now, path: self.path, db)
                    try db.execute(sql: "UPDATE workflow_instance SET message = ? WHERE id = ?",
                                   arguments: ["dropped before a master started it: backfill \(id) was cancelled", instance.id!])
                    result.dropped.append(instance.id!)
                case .running, .readyPause:
                    _ = try Self.control(instance.id!, .stop, now: now, path: self.path, db)
                    result.stopping.append(instance.id!)
                case .readyStop:
                    result.stopping.append(instance.id!)
                default:
                    result.ended += 1
                }
            }
            // All ended before: nothing to cancel, and the backfill is left as it was.
            if backfill.cancelledAt == nil, !(result.dropped.isEmpty && result.stopping.isEmpty) {
                backfill.cancelledAt = now
                try backfill.update(db)
            }
            result.cancelledAt = backfill.cancelledAt
            return result
        }
    }
}
