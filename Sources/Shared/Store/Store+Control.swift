import Foundation

/// What an operator asks of an instance (`ds-instance`).
public enum ControlVerb: Sendable, Equatable {
    case stop, pause, resume, recover, rerun
    case startFrom(String)

    public var name: String {
        switch self {
        case .stop: return "stop"
        case .pause: return "pause"
        case .resume: return "resume"
        case .recover: return "recover"
        case .rerun: return "rerun"
        case .startFrom: return "start-from"
        }
    }

    /// The command type masters read.
    var commandType: String {
        switch self {
        case .stop: return "STOP"
        case .pause: return "PAUSE"
        case .resume: return "RESUME"
        case .recover: return "RECOVER"
        case .rerun: return "RERUN"
        case .startFrom: return "START_FROM"
        }
    }

    /// The state the instance ends in when the verb has done what it was asked.
    public var goal: WorkflowState {
        switch self {
        case .stop: return .stop
        case .pause: return .pause
        default: return .success
        }
    }
}

/// Why a verb was refused: the instance's state forbids it (exit 1), or the request names what
/// the instance does not have (exit 65); or a schedule or backfill that cannot be (exit 64, 65).
/// Nothing was written.
public struct ControlRefusal: Error, CustomStringConvertible, ExitStatusProviding {
    public var description: String
    public var exitStatus: ExitStatus

    public init(description: String, exitStatus: ExitStatus) {
        self.description = description
        self.exitStatus = exitStatus
    }
}

/// What a verb did.
public struct ControlOutcome: Sendable, Codable {
    public var instanceId: Int64
    public var verb: String
    /// The state before and after the request.
    public var from: WorkflowState
    public var to: WorkflowState
    /// The run the instance starts (resume, recover, rerun, start-from).
    public var run: Int
    /// Tasks whose success the new run keeps, by name.
    public var kept: [String]
    /// Whether a master must act (a command was written); else the change is complete.
    public var commandWritten: Bool
}

extension Store {
    /// Applies a verb in one IMMEDIATE transaction: either the instance and its command change
    /// together, or nothing does. Stop and pause of an instance no master has started end it at
    /// once; of a running one they become READY_STOP / READY_PAUSE plus a command for its owner.
    /// Resume, recover, rerun and start-from start the next run: the successes it keeps are
    /// settled here, from what is stored, so every master that may claim it sees the same.
    public func control(_ instanceID: Int64, _ verb: ControlVerb, now: Double) async throws -> ControlOutcome {
        // Isolation: the instance's state is read, then changed with its command: SERIALIZABLE
        // on PostgreSQL (a master ending the instance meanwhile aborts one of the two), IMMEDIATE on SQLite.
        try await transaction("\(verb.name) of instance \(instanceID)") { db in try Self.control(instanceID, verb, now: now, path: self.path, db) }
    }

    /// `control` inside a transaction of the caller's (a SUB_PROCESS node resuming its child).
    static func control(_ instanceID: Int64, _ verb: ControlVerb, now: Double, path: String, _ db: SQLConnection) throws -> ControlOutcome {
            guard var instance = try WorkflowInstanceRecord.fetchOne(db, key: instanceID) else {
                throw ControlRefusal(description: "instance \(instanceID) does not exist in \(path); see ds-instance list", exitStatus: .dataError)
            }
            let from = instance.state
            func refuse(_ why: String) -> ControlRefusal {
                ControlRefusal(description: "cannot \(verb.name) instance \(instanceID) (\(instance.name)): \(why)", exitStatus: .failure)
            }
            var outcome = ControlOutcome(instanceId: instanceID, verb: verb.name, from: from, to: from, run: instance.run, kept: [],
                                         commandWritten: false)
            switch verb {
            case .stop, .pause:
                let stop = verb == .stop
                switch from {
                case .submitted, .waitingThread:
                    // No master has it: nothing runs, so it ends now, and its start command goes.
                    try db.execute(sql: "DELETE FROM command WHERE workflow_instance_id = ?", arguments: [instanceID])
                    instance.state = stop ? .stop : .pause
                    instance.endTime = now
                    instance.message = stop ? "stopped before a master started it" : "paused before a master started it"
                case .running, .readyPause where stop:
                    instance.state = stop ? .readyStop : .readyPause
                    var command = CommandRecord(id: nil, type: verb.commandType, workflowInstanceId: instanceID,
                                                priorityRank: instance.priority.rank, submitTime: now)
                    try command.insert(db)
                    outcome.commandWritten = true
                case .readyPause where !stop, .readyStop:
                    // Asked again (a retried script, a second shell): already under way, so nothing
                    // changes and `--wait` waits for it, as for the first request.
                    break
                default:
                    throw refuse("it has already ended \(from.rawValue); only a running or waiting instance can be \(stop ? "stopped" : "paused")")
                }
            case .resume, .recover, .rerun, .startFrom:
                switch (verb, from) {
                case (.resume, .pause), (.resume, .stop), (.recover, .failure),
                     (.rerun, .success), (.rerun, .failure), (.rerun, .stop), (.rerun, .pause),
                     (.startFrom, .success), (.startFrom, .failure), (.startFrom, .stop), (.startFrom, .pause):
                    break
                case (.resume, _) where from.isTerminal:
                    throw refuse("it ended \(from.rawValue); resume continues a PAUSE or STOP instance\(from == .failure ? " (use ds-instance recover for a FAILURE one)" : " (use ds-instance rerun to run it again)")")
                case (.recover, _) where from.isTerminal:
                    throw refuse("it ended \(from.rawValue); recover re-runs what failed in a FAILURE instance\(from == .success ? " (use ds-instance rerun to run it again)" : " (use ds-instance resume)")")
                default:
                    throw refuse("it is \(from.rawValue); wait for it to end, or stop it first")
                }
                guard let definitionRecord = try WorkflowDefinitionRecord.fetchOne(db, key: instance.definitionId) else {
                    throw refuse("its definition is missing from the database")
                }
                let definition: WorkflowDefinition
                do { definition = try WorkflowDefinition.fromStored(definitionRecord.json) } catch {
                    throw refuse("its stored definition cannot be run: \(error)")
                }
                let graph = TaskGraph(definition.tasks)
                var kept = verb == .rerun ? [:] : try Self.successes(of: instance, db)
                if case .startFrom(let task) = verb {
                    guard let start = graph.index[task] else {
                        throw ControlRefusal(description: "instance \(instanceID) (\(instance.name) v\(instance.version)) has no task \(Limits.quoted(task)); its tasks: \(definition.tasks.prefix(20).map { Limits.quoted($0.name) }.joined(separator: ", "))\(definition.tasks.count > 20 ? ", …" : "")",
                                             exitStatus: .dataError)
                    }
                    for i in graph.downstreamClosure(of: start) { kept.removeValue(forKey: graph.names[i]) }
                }
                // A branch node decides again in every run: its earlier decision is not handed on.
                for task in definition.tasks where task.isBranchNode { kept.removeValue(forKey: task.name) }
                // A pause or stop left from an earlier run (its owner died before deleting it) must
                // not reach this one.
                try Self.deleteMootControls(of: instanceID, db)
                instance.run += 1
                instance.keptJson = String(decoding: try JSONEncoder.sorted.encode(kept), as: UTF8.self)
                instance.state = .submitted
                instance.host = nil
                instance.masterSession = nil
                instance.pauseSeq = nil
                instance.stopSeq = nil
                instance.endTime = nil
                instance.message = nil
                var taskName: String? = nil
                if case .startFrom(let task) = verb { taskName = task }
                var command = CommandRecord(id: nil, type: verb.commandType, workflowInstanceId: instanceID,
                                            priorityRank: instance.priority.rank, submitTime: now, taskName: taskName)
                try command.insert(db)
                outcome.commandWritten = true
                outcome.kept = kept.keys.sorted()
            }
            try instance.update(db)
            outcome.to = instance.state
            outcome.run = instance.run
            return outcome
    }

    /// The tasks whose latest outcome, in the instance's current run or handed on to it, is a
    /// success: task name -> the attempt that succeeded.
    static func successes(of instance: WorkflowInstanceRecord, _ db: SQLConnection) throws -> [String: Int64] {
        var latest: [String: TaskInstanceRecord] = [:]
        for a in try attempts(of: instance, db) where a.state != .needFaultTolerance {
            latest[a.taskName] = a
        }
        var kept = instance.kept.filter { latest[$0.key] == nil }
        for (name, a) in latest where a.state == .success || a.state == .forcedSuccess { kept[name] = a.id! }
        return kept
    }
}

extension TaskGraph {
    /// Task `i` and every task that (transitively) depends on it.
    public func downstreamClosure(of i: Int) -> Set<Int> {
        var seen: Set<Int> = [i]
        var stack = [i]
        while let t = stack.popLast() {
            for d in downstream[t] where seen.insert(d).inserted { stack.append(d) }
        }
        return seen
    }
}

/// A filter for `ds-instance list`.
public struct InstanceQuery: Sendable {
    public var state: WorkflowState?
    public var workflow: String?
    public var since: Double?
    public var limit: Int = 100
    public init() {}
}

/// A stored definition's summary, for `ds-instance definitions`.
public struct DefinitionSummary: Sendable, Codable {
    public var name: String
    public var version: Int
    public var createdAt: Double
    public var tasks: Int
    public var instances: Int
    /// The workflow's description (nil: none).
    public var description: String?
}

extension Store {
    /// Instances, newest first.
    public func instances(_ query: InstanceQuery) async throws -> [WorkflowInstanceRecord] {
        try await read("listing instances") { db in
            var conditions = ["1 = 1"]
            var arguments: SQLArguments = []
            if let state = query.state { conditions.append("state = ?"); arguments += [state] }
            if let workflow = query.workflow { conditions.append("name = ?"); arguments += [workflow] }
            if let since = query.since { conditions.append("submit_time >= ?"); arguments += [since] }
            arguments += [query.limit]
            return try WorkflowInstanceRecord.fetchAll(db, sql: """
                SELECT * FROM workflow_instance WHERE \(conditions.joined(separator: " AND ")) ORDER BY id DESC LIMIT ?
                """, arguments: arguments)
        }
    }

    /// The definition an instance runs.
    public func definition(of instance: WorkflowInstanceRecord) async throws -> WorkflowDefinition {
        try await read("reading the definition of instance \(instance.id ?? 0)") { db in
            guard let record = try WorkflowDefinitionRecord.fetchOne(db, key: instance.definitionId) else {
                throw StoreError.notFound("definition \(instance.definitionId) of instance \(instance.id ?? 0)")
            }
            return try WorkflowDefinition.fromStored(record.json)
        }
    }

    /// Stored definitions, by name then version; one name's versions with `name`.
    public func definitions(named name: String? = nil) async throws -> [DefinitionSummary] {
        try await read("listing definitions") { db in
            var sql = """
                SELECT d.name, d.version, d.created_at, d.json,
                  (SELECT COUNT(*) FROM workflow_instance w WHERE w.definition_id = d.id) AS instances
                FROM workflow_definition d
                """
            var arguments: SQLArguments = []
            if let name {
                sql += " WHERE d.name = ?"
                arguments = [name]
            }
            sql += " ORDER BY d.name, d.version"
            return try db.rows(sql: sql, arguments: arguments).map { row in
                let json: String = try row["json"]
                let definition = try? WorkflowDefinition.fromStored(json)
                return DefinitionSummary(name: try row["name"], version: try row["version"], createdAt: try row["created_at"],
                                         tasks: definition?.tasks.count ?? 0, instances: try row["instances"], description: definition?.description)
            }
        }
    }

    /// One stored version of a definition (the latest without `version`), or nil.
    public func storedDefinition(named name: String, version: Int?) async throws -> WorkflowDefinitionRecord? {
        try await read("reading definition \(name)") { db in
            try Self.latestDefinition(named: name, version: version, db)
        }
    }
}

extension Store {
    /// The stored definition `name` at `version`, or its latest version without one; nil if none.
    static func latestDefinition(named name: String, version: Int? = nil, _ db: SQLConnection) throws -> WorkflowDefinitionRecord? {
        if let version {
            return try WorkflowDefinitionRecord.fetchOne(db, sql: "SELECT * FROM workflow_definition WHERE name = ? AND version = ?",
                                                         arguments: [name, version])
        }
        return try WorkflowDefinitionRecord.fetchOne(db, sql: "SELECT * FROM workflow_definition WHERE name = ? ORDER BY version DESC LIMIT 1",
                                                     arguments: [name])
    }
}
