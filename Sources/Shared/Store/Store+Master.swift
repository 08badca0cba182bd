import Foundation
import GRDB

/// An instance a master has just claimed, with what it needs to run it.
public struct ClaimedInstance: Sendable {
    public var instance: WorkflowInstanceRecord
    public var definition: WorkflowDefinition
}

/// How a finished attempt is recorded.
public struct AttemptOutcome: Sendable {
    public var taskInstanceId: Int64
    public var state: TaskState
    public var host: String?
    public var pid: Int32?
    public var logPath: String?
    public var exitCode: Int32?
    public var outputJson: String?
    public var message: String?
    public var startTime: Double?
    public var endTime: Double
}

/// Everything one round of a master's scheduling writes, in one transaction.
public struct SchedulingBatch: Sendable {
    public var outcomes: [AttemptOutcome] = []
    public var started: [(id: Int64, time: Double)] = []
    public var newAttempts: [TaskInstanceRecord] = []
    public var finishedInstances: [(id: Int64, state: WorkflowState, time: Double)] = []
    public init() {}
    public var isEmpty: Bool { outcomes.isEmpty && started.isEmpty && newAttempts.isEmpty && finishedInstances.isEmpty }
}

extension Store {
    /// Takes the first START command, in priority then submission order, for `host`.
    /// The delete and the owner change happen in one IMMEDIATE transaction: no two masters
    /// ever claim the same command.
    public func claimCommand(host: String, now: Double) async throws -> ClaimedInstance? {
        try await transaction("claiming a command") { db -> ClaimedInstance? in
            while let command = try CommandRecord.order(Column("priority_rank"), Column("id")).fetchOne(db) {
                try command.delete(db)
                guard var instance = try WorkflowInstanceRecord.fetchOne(db, key: command.workflowInstanceId),
                      instance.host == nil, instance.state == .submitted,
                      let record = try WorkflowDefinitionRecord.fetchOne(db, key: instance.definitionId) else { continue }
                instance.host = host
                instance.state = .running
                instance.startTime = now
                try instance.update(db)
                return ClaimedInstance(instance: instance, definition: try WorkflowDefinition.fromStored(record.json))
            }
            return nil
        }
    }

    public func pendingCommandCount() async throws -> Int {
        try await read("counting commands") { db in try CommandRecord.fetchCount(db) }
    }

    /// Writes one round of scheduling; returns the new attempts with their ids.
    public func apply(_ batch: SchedulingBatch) async throws -> [TaskInstanceRecord] {
        try await transaction("recording \(batch.outcomes.count) results and \(batch.newAttempts.count) dispatches") { db in
            for o in batch.outcomes {
                try db.execute(sql: """
                    UPDATE task_instance SET state = ?, host = COALESCE(?, host), pid = COALESCE(?, pid),
                      log_path = COALESCE(?, log_path), exit_code = ?, output_json = ?, message = ?,
                      start_time = COALESCE(?, start_time), end_time = ?
                    WHERE id = ?
                    """, arguments: [o.state, o.host, o.pid, o.logPath, o.exitCode, o.outputJson, o.message,
                                     o.startTime, o.endTime, o.taskInstanceId])
            }
            for s in batch.started {
                try db.execute(sql: "UPDATE task_instance SET state = 'RUNNING', start_time = COALESCE(start_time, ?) WHERE id = ? AND state = 'DISPATCHED'",
                               arguments: [s.time, s.id])
            }
            var inserted: [TaskInstanceRecord] = []
            for var attempt in batch.newAttempts {
                try attempt.insert(db)
                inserted.append(attempt)
            }
            for f in batch.finishedInstances {
                try db.execute(sql: "UPDATE workflow_instance SET state = ?, end_time = ? WHERE id = ?",
                               arguments: [f.state, f.time, f.id])
            }
            return inserted
        }
    }
}
