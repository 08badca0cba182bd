import Foundation
import GRDB

// One record type per table. Times are Unix seconds (Double): millisecond hops stay measurable.

/// A stored, versioned workflow definition: one row per (name, version).
public struct WorkflowDefinitionRecord: Codable, Sendable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "workflow_definition"
    public var id: Int64?
    public var name: String
    public var version: Int
    public var json: String
    public var createdAt: Double

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
    enum CodingKeys: String, CodingKey { case id, name, version, json, createdAt = "created_at" }
}

/// One run of a workflow definition.
public struct WorkflowInstanceRecord: Codable, Sendable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "workflow_instance"
    public var id: Int64?
    public var definitionId: Int64
    public var name: String
    public var version: Int
    public var state: WorkflowState
    public var priority: Priority
    /// `--param` overrides given at start, as JSON.
    public var paramsJson: String
    /// The master that owns the instance (`host:port`), nil until one claims it.
    public var host: String?
    /// The owner's ZooKeeper session id; ownership ends with that session.
    public var masterSession: Int64?
    public var submitTime: Double
    public var startTime: Double?
    public var endTime: Double?
    /// Why the instance ended without running, e.g. a stored definition that cannot be read.
    public var message: String?

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
    enum CodingKeys: String, CodingKey {
        case id, definitionId = "definition_id", name, version, state, priority, paramsJson = "params_json", host,
             masterSession = "master_session", submitTime = "submit_time", startTime = "start_time", endTime = "end_time",
             message
    }
}

/// One attempt of one task: retries and failovers add rows.
public struct TaskInstanceRecord: Codable, Sendable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "task_instance"
    public var id: Int64?
    public var workflowInstanceId: Int64
    public var taskName: String
    public var attempt: Int
    public var state: TaskState
    public var priority: Priority
    public var workerGroup: String
    /// The worker that ran it (`host:port`).
    public var host: String?
    public var pid: Int32?
    public var logPath: String?
    public var exitCode: Int32?
    public var outputJson: String?
    public var message: String?
    public var submitTime: Double
    public var startTime: Double?
    public var endTime: Double?
    /// Position of this attempt's dispatch, and of its stored outcome, in the global event order.
    public var dispatchSeq: Int64?
    public var finishSeq: Int64?

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
    enum CodingKeys: String, CodingKey {
        case id, workflowInstanceId = "workflow_instance_id", taskName = "task_name", attempt, state, priority,
             workerGroup = "worker_group", host, pid, logPath = "log_path", exitCode = "exit_code",
             outputJson = "output_json", message, submitTime = "submit_time", startTime = "start_time", endTime = "end_time",
             dispatchSeq = "dispatch_seq", finishSeq = "finish_seq"
    }
}

/// A request for a master: start (and later recover, rerun, …) an instance. Claimed exactly once.
public struct CommandRecord: Codable, Sendable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "command"
    public var id: Int64?
    public var type: String
    public var workflowInstanceId: Int64
    /// Priority rank (0 HIGHEST … 4 LOWEST): masters claim in this order, then by id.
    public var priorityRank: Int
    public var submitTime: Double

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
    enum CodingKeys: String, CodingKey {
        case id, type, workflowInstanceId = "workflow_instance_id", priorityRank = "priority_rank", submitTime = "submit_time"
    }
}

extension WorkflowState: DatabaseValueConvertible {}
extension TaskState: DatabaseValueConvertible {}
extension Priority: DatabaseValueConvertible {}
