import Foundation

/// Why a SUB_PROCESS attempt could not start its child.
struct ChildProblem: Error, CustomStringConvertible {
    var description: String
}

/// SUB_PROCESS: a child instance is a workflow instance like any other (any master with a free
/// slot claims it), started in the transaction that stores its parent's attempt.
extension Store {
    /// The deepest nesting of sub-processes: a bound on a chain of workflows that start each other.
    public static let maxSubProcessDepth = 32

    /// Stores a child instance and its START command for a SUB_PROCESS attempt; its id.
    static func startChild(_ request: ChildRequest, of attempt: TaskInstanceRecord, now: Double, _ db: SQLConnection) throws -> Int64 {
        if let problem = request.problem { throw ChildProblem(description: problem) }
        // The node runs again (its parent resumed or recovered, or a retry): the child it started
        // before goes on where it stopped (resume, or recover of what failed), rather than doing
        // its work twice. One that runs (recovered or resumed by hand) is attached to as it is. A
        // child that succeeded is not run again: its node was kept.
        if let previous = try Int64.fetchOne(db, sql: """
                SELECT child_instance_id FROM task_instance WHERE workflow_instance_id = ? AND task_name = ?
                  AND child_instance_id IS NOT NULL AND id <> ? ORDER BY id DESC LIMIT 1
                """, arguments: [attempt.workflowInstanceId, attempt.taskName, attempt.id]),
           let child = try WorkflowInstanceRecord.fetchOne(db, key: previous), child.state != .success {
            let verb: ControlVerb? = switch child.state {
            case .pause, .stop: .resume
            case .failure: .recover
            default: nil  // waiting for a master or running: its end ends the node
            }
            if let verb {
                do {
                    _ = try control(previous, verb, now: now, path: "", db)
                } catch let refusal as ControlRefusal {
                    // Its definition no longer reads, say: the node fails with the reason (a refusal
                    // writes nothing), and the master that runs the parent goes on.
                    throw ChildProblem(description: "its child instance \(previous) cannot go on: \(refusal)")
                }
            }
            try db.execute(sql: "UPDATE workflow_instance SET parent_task_instance_id = ? WHERE id = ?", arguments: [attempt.id, previous])
            return previous
        }
        guard let stored = try Self.latestDefinition(named: request.workflow, version: request.version, db) else {
            throw ChildProblem(description: "no stored workflow \(Limits.quoted(request.workflow))\(request.version.map { " version \($0)" } ?? ""); submit it once (ds-submit --dry-run does not store)")
        }
        let definition: WorkflowDefinition
        do { definition = try WorkflowDefinition.fromStored(stored.json) } catch {
            throw ChildProblem(description: "the stored workflow \(Limits.quoted(request.workflow)) cannot be run: \(error)")
        }
        // Walk up the parents: a workflow may not start one of its own ancestors (A -> B -> A).
        var chain: [String] = []
        var next: Int64? = attempt.workflowInstanceId
        while let id = next, chain.count <= maxSubProcessDepth {
            guard let row = try db.row(sql: "SELECT name, parent_instance_id FROM workflow_instance WHERE id = ?", arguments: [id]) else { break }
            chain.append(try row["name"])
            next = try row["parent_instance_id"]
        }
        if let at = chain.firstIndex(of: request.workflow) {
            throw ChildProblem(description: "sub-process cycle: \((chain[...at].reversed() + [request.workflow]).joined(separator: " -> "))")
        }
        if chain.count >= maxSubProcessDepth {
            throw ChildProblem(description: "sub-processes nested more than \(maxSubProcessDepth) deep")
        }
        let paramsJSON = String(decoding: try JSONEncoder.sorted.encode(request.params), as: UTF8.self)
        var child = Self.newInstance(stored, definition, priority: nil, paramsJson: paramsJSON, now: now)
        child.parentInstanceId = attempt.workflowInstanceId
        child.parentTaskInstanceId = attempt.id
        // The child's built-ins (system.biz.date) are its parent's: the same business date,
        // however much later the child starts.
        if let parent = try db.row(sql: "SELECT schedule_time, start_time, time_zone FROM workflow_instance WHERE id = ?",
                                   arguments: [attempt.workflowInstanceId]) {
            let scheduleTime: Double? = try parent["schedule_time"], startTime: Double? = try parent["start_time"]
            child.scheduleTime = scheduleTime ?? startTime
            child.timeZone = try parent["time_zone"]
        }
        try Self.insertStart(&child, db)
        return child.id!
    }

    /// The children among `ids` that have ended, with their state and message.
    public func endedChildren(_ ids: [Int64]) async throws -> [(id: Int64, state: WorkflowState, message: String?, end: Double?)] {
        guard !ids.isEmpty else { return [] }
        return try await read("reading child instances") { db in
            var ended: [(Int64, WorkflowState, String?, Double?)] = []
            for i in try WorkflowInstanceRecord.fetchAll(db, ids: ids) where i.state.isTerminal {
                ended.append((i.id!, i.state, i.message, i.endTime))
            }
            return ended
        }
    }
}
