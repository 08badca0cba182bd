import Foundation

/// A ready attempt as `ds-queue` shows it: its key and whose it is.
public struct QueueEntry: Sendable, Codable {
    public var key: TaskQueueKey
    public var group: String
    public var task: String?
    public var workflow: String?
    /// When the attempt was made ready (its row's submit time).
    public var readySince: Double?
}

extension TaskQueueKey: Codable {
    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let key = TaskQueueKey(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a queue key: \(text)"))
        }
        self = key
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

extension Store {
    /// A priority column as its rank, 0 for HIGHEST.
    static func rankSQL(_ column: String) -> String {
        "CASE \(column) WHEN 'HIGHEST' THEN 0 WHEN 'HIGH' THEN 1 WHEN 'MEDIUM' THEN 2 WHEN 'LOW' THEN 3 ELSE 4 END"
    }

    /// Groups that have attempts waiting in a master's backlog.
    public func backlogGroups() async throws -> [String] {
        try await read("listing backlog groups") { db in
            try String.fetchAll(db, sql: """
                SELECT DISTINCT t.worker_group FROM task_instance t JOIN workflow_instance w ON w.id = t.workflow_instance_id
                WHERE t.state = 'SUBMITTED' AND w.state IN \(WorkflowState.activeSQL) ORDER BY t.worker_group
                """)
        }
    }

    /// Up to `limit` attempts waiting in the backlog of `group` after `after`, in dispatch (key)
    /// order: pages of a backlog of millions, read one at a time.
    public func backlogPage(group: String, after: TaskQueueKey?, limit: Int) async throws -> [QueueEntry] {
        try await read("reading the backlog of group \(group)") { db in
            var arguments: SQLArguments = [group]
            var after_ = ""
            if let after {
                after_ = "AND (\(Self.rankSQL("w.priority")), t.workflow_instance_id, \(Self.rankSQL("t.priority")), t.id) > (?, ?, ?, ?)"
                arguments += [after.workflowPriority.rank, after.workflowInstanceId, after.taskPriority.rank, after.taskInstanceId]
            }
            arguments += [limit]
            return try db.rows(sql: """
                SELECT t.id, t.workflow_instance_id, t.task_name, t.priority AS tp, t.submit_time, w.priority AS wp, w.name
                FROM task_instance t JOIN workflow_instance w ON w.id = t.workflow_instance_id
                WHERE t.state = 'SUBMITTED' AND t.worker_group = ? AND w.state IN \(WorkflowState.activeSQL) \(after_)
                ORDER BY \(Self.rankSQL("w.priority")), t.workflow_instance_id, \(Self.rankSQL("t.priority")), t.id
                LIMIT ?
                """, arguments: arguments).map { row in
                let wp = Priority(rawValue: try row["wp"]) ?? .lowest, tp = Priority(rawValue: try row["tp"]) ?? .lowest
                return QueueEntry(key: TaskQueueKey(workflowPriority: wp, workflowInstanceId: try row["workflow_instance_id"],
                                                    taskPriority: tp, taskInstanceId: try row["id"]),
                                  group: group, task: try row["task_name"], workflow: try row["name"], readySince: try row["submit_time"])
            }
        }
    }

    /// One attempt by id, or nil.
    public func attemptRecord(_ id: Int64) async throws -> TaskInstanceRecord? {
        try await read("reading attempt \(id)") { db in try TaskInstanceRecord.fetchOne(db, key: id) }
    }

    /// Task and workflow names and ready times of attempts, by id.
    public func attemptNames(_ ids: [Int64]) async throws -> [Int64: (task: String, workflow: String, since: Double)] {
        try await read("reading \(ids.count) attempts") { db in
            var result: [Int64: (task: String, workflow: String, since: Double)] = [:]
            for chunk in ids.chunked(500) {
                for row in try db.rows(sql: """
                    SELECT t.id, t.task_name, t.submit_time, w.name FROM task_instance t JOIN workflow_instance w ON w.id = t.workflow_instance_id
                    WHERE t.id IN (\(TaskInstanceRecord.marks(chunk.count)))
                    """, arguments: SQLArguments(chunk)) {
                    result[try row["id"]] = (try row["task_name"], try row["name"], try row["submit_time"])
                }
            }
            return result
        }
    }
}

extension Store {
    /// Asks the master that owns an attempt's instance to take it out of the queue (a REMOVE
    /// command). Refused (exit 1, nothing written) for an attempt a worker already runs or that
    /// ended; unknown ids exit 65. Returns the attempt's instance.
    public func requestRemove(attempt id: Int64, now: Double) async throws -> Int64 {
        // Isolation: the attempt's state is read, then a command written: SERIALIZABLE (PostgreSQL).
        try await transaction("removal of task \(id)") { db in
            guard let attempt = try TaskInstanceRecord.fetchOne(db, key: id) else {
                throw ControlRefusal(description: "task \(id) does not exist in \(self.path); see ds-queue list", exitStatus: .dataError)
            }
            let instance = try WorkflowInstanceRecord.fetchOne(db, key: attempt.workflowInstanceId)
            func refuse(_ why: String) -> ControlRefusal {
                ControlRefusal(description: "cannot remove task \(id) ('\(attempt.taskName)' of instance \(attempt.workflowInstanceId)): \(why)",
                               exitStatus: .failure)
            }
            switch attempt.state {
            case .submitted, .dispatched:
                guard let instance, instance.state.isActive else { throw refuse("its instance is \(instance?.state.rawValue ?? "gone")") }
                var command = CommandRecord(id: nil, type: "REMOVE", workflowInstanceId: attempt.workflowInstanceId,
                                            priorityRank: instance.priority.rank, submitTime: now, taskInstanceId: id)
                try command.insert(db)
                return attempt.workflowInstanceId
            case .running:
                throw refuse("a worker\(attempt.host.map { " (\($0))" } ?? "") runs it; stop its instance with ds-instance stop \(attempt.workflowInstanceId)")
            default:
                throw refuse("it already ended \(attempt.state.rawValue)")
            }
        }
    }
}
