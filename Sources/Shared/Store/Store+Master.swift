import Foundation

/// An instance a master has just claimed or taken over, with what it needs to run it.
public struct ClaimedInstance: Sendable {
    public var instance: WorkflowInstanceRecord
    public var definition: WorkflowDefinition
    /// Every attempt of the instance's current run, in creation order (empty for a fresh claim).
    public var attempts: [TaskInstanceRecord] = []
    /// The attempts whose success an earlier run hands on (`kept_json`), for their outputs.
    public var keptAttempts: [TaskInstanceRecord] = []
    /// When the command this claim took was written (for the claim latency metric).
    public var commandSubmitTime: Double?
    /// REMOVE commands (`ds-queue remove`) not yet carried out: attempt id → command id. Read with
    /// the attempts, so that a master taking the instance over ends them as asked instead of
    /// finding them in no queue and taking them for lost.
    public var removals: [Int64: Int64] = [:]
}

/// A pause or stop to apply, or one read from the command table.
public struct ControlRequest: Sendable {
    /// The command row, deleted with the round that applies it; nil when re-derived from the state.
    public var commandID: Int64?
    public var instance: Int64
    public var stop: Bool
    /// Whether this round changed the engine: then its place in the event order is stored.
    public var applied: Bool
    /// For a REMOVE command (`ds-queue remove`): the attempt to take out of the queue.
    public var removeAttempt: Int64?
}

/// How a finished attempt is recorded.
public struct AttemptOutcome: Sendable {
    public var taskInstanceId: Int64
    public var workflowInstanceId: Int64
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
    /// Attempts a worker claimed, with the worker and its log file (from the `/running` node).
    public var started: [(id: Int64, instance: Int64, time: Double, host: String?, logPath: String?)] = []
    /// Attempts lost with their worker: NEED_FAULT_TOLERANCE, superseded by a new attempt.
    public var superseded: [(id: Int64, instance: Int64, message: String, time: Double)] = []
    public var newAttempts: [TaskInstanceRecord] = []
    /// Branch nodes decided this round, ended already: each is stored after the first
    /// `afterOutcomes` outcomes, at its place in the order the engine saw events.
    public var decisions: [(afterOutcomes: Int, record: TaskInstanceRecord)] = []
    /// Alerts noticed this round; an event already recorded (by this or another master) is kept once.
    public var alerts: [AlertRecord] = []
    public var finishedInstances: [(id: Int64, state: WorkflowState, time: Double)] = []
    /// Pauses and stops this round applied (or found to be moot): commands deleted, places stored.
    public var controls: [ControlRequest] = []
    /// Messages for attempts still in flight (a kill request that could not be written), shown
    /// by `ds-instance show`; the state stays.
    public var notes: [(id: Int64, instance: Int64, message: String)] = []
    public init() {}
    public var isEmpty: Bool {
        outcomes.isEmpty && started.isEmpty && superseded.isEmpty && newAttempts.isEmpty && finishedInstances.isEmpty
            && controls.isEmpty && decisions.isEmpty && alerts.isEmpty && notes.isEmpty
    }

    var instanceIDs: Set<Int64> {
        Set(outcomes.map(\.workflowInstanceId) + started.map(\.instance) + superseded.map(\.instance)
            + newAttempts.map(\.workflowInstanceId) + finishedInstances.map(\.id) + controls.map(\.instance)
            + decisions.map(\.record.workflowInstanceId) + alerts.compactMap(\.workflowInstanceId) + notes.map(\.instance))
    }

    /// The batch without the changes of `lost` instances.
    func dropping(_ lost: Set<Int64>) -> SchedulingBatch {
        var b = SchedulingBatch()
        b.outcomes = outcomes.filter { !lost.contains($0.workflowInstanceId) }
        b.alerts = alerts.filter { !lost.contains($0.workflowInstanceId ?? 0) }
        // A decision keeps its place: after as many of the outcomes kept as preceded it.
        var keptBefore = [0]
        for o in outcomes { keptBefore.append(keptBefore.last! + (lost.contains(o.workflowInstanceId) ? 0 : 1)) }
        b.decisions = decisions.filter { !lost.contains($0.record.workflowInstanceId) }.map { (keptBefore[$0.afterOutcomes], $0.record) }
        b.started = started.filter { !lost.contains($0.instance) }
        b.superseded = superseded.filter { !lost.contains($0.instance) }
        b.newAttempts = newAttempts.filter { !lost.contains($0.workflowInstanceId) }
        b.finishedInstances = finishedInstances.filter { !lost.contains($0.id) }
        b.controls = controls.filter { !lost.contains($0.instance) }
        b.notes = notes.filter { !lost.contains($0.instance) }
        return b
    }
}

/// What a round wrote: the new attempts with their ids, and instances this master no longer owns.
public struct AppliedBatch: Sendable {
    public var inserted: [TaskInstanceRecord]
    public var lostOwnership: Set<Int64>
    /// SUB_PROCESS attempts whose child could not be started, and why (they are to fail).
    public var childProblems: [Int64: String] = [:]
}

/// Who owns a finished attempt's instance, for a result no master is waiting for.
public struct AttemptOwner: Sendable {
    public var attempt: TaskInstanceRecord
    public var masterSession: Int64?
    public var instanceState: WorkflowState
}

extension Store {
    /// Takes the first command that (re)starts an instance (START, RESUME, RECOVER, RERUN,
    /// START_FROM), in priority then submission order, for `host`. The delete and the owner change
    /// happen in one IMMEDIATE transaction: no two masters ever claim the same command. The
    /// command's kind was settled when it was written (the run and the kept successes): every
    /// one starts the instance's current run.
    public func claimCommand(host: String, session: Int64, now: Double) async throws -> ClaimedInstance? {
        // Isolation: the head of the queue is read, then deleted and its instance taken. SQLite's
        // IMMEDIATE transaction serialises claimers; on PostgreSQL SERIALIZABLE aborts all but one
        // of two claims that read the same head (40001), and the loser runs again on what is left.
        try await transaction("claiming a command") { db -> ClaimedInstance? in
            while let command = try CommandRecord.fetchOne(db, sql: Self.claimableCommandSQL) {
                // Taken only by the claim that deletes it (a conditional write checked by its row count).
                guard try command.delete(db) else { continue }
                guard var instance = try WorkflowInstanceRecord.fetchOne(db, key: command.workflowInstanceId),
                      instance.host == nil, instance.state == .submitted || instance.state == .waitingThread,
                      let record = try WorkflowDefinitionRecord.fetchOne(db, key: instance.definitionId) else { continue }
                if instance.execution == .serialDiscard, let other = try Self.runningInstance(named: instance.name, besides: instance.id!, db) {
                    instance.state = .stop
                    instance.message = "discarded: instance \(other) of \(Limits.quoted(instance.name)) was running (execution SERIAL_DISCARD)"
                    instance.endTime = now
                    try instance.update(db)
                    try Self.deleteMootControls(of: instance.id!, db)
                    continue
                }
                instance.host = host
                instance.masterSession = session
                instance.state = .running
                // Kept across runs: built-in parameters (system.biz.date) resolve from it, and a
                // recovered task must see what the tasks it follows saw.
                instance.startTime = instance.startTime ?? now
                instance.runStartTime = now
                instance.endTime = nil
                let definition: WorkflowDefinition
                do {
                    definition = try WorkflowDefinition.fromStored(record.json)
                } catch {
                    try Self.fail(&instance, "its stored definition cannot be run: \(error)", now: now, db)
                    continue
                }
                try instance.update(db)
                return ClaimedInstance(instance: instance, definition: definition, keptAttempts: try Self.keptAttempts(instance, db),
                                       commandSubmitTime: command.submitTime)
            }
            return nil
        }
    }

    /// The first start command a master may take now, in priority then submission order. An
    /// instance of a serial workflow waits while another instance of its name runs; under
    /// SERIAL_WAIT it also waits for every earlier start of its name (first come, first served).
    /// A SERIAL_DISCARD instance is taken, to be discarded. An instance of a backfill waits while
    /// the backfill's `parallel` instances run (its dates start in order: their commands are too).
    static let claimableCommandSQL: String = {
        let starts = "(" + CommandRecord.startTypes.map { "'\($0)'" }.joined(separator: ", ") + ")"
        return """
            SELECT c.* FROM command c JOIN workflow_instance i ON i.id = c.workflow_instance_id
            WHERE c.type IN \(starts)
              AND (i.execution IS NULL OR i.execution IN ('PARALLEL', 'SERIAL_DISCARD')
                   OR (NOT EXISTS (SELECT 1 FROM workflow_instance o
                                   WHERE o.name = i.name AND o.id <> i.id AND o.state IN \(WorkflowState.activeSQL))
                       AND (i.execution <> 'SERIAL_WAIT'
                            OR NOT EXISTS (SELECT 1 FROM command c2 JOIN workflow_instance i2 ON i2.id = c2.workflow_instance_id
                                           WHERE i2.name = i.name AND i2.state IN \(WorkflowState.waitingSQL)
                                             AND c2.type IN \(starts) AND c2.id < c.id))))
              AND (i.backfill_id IS NULL
                   OR (SELECT COUNT(*) FROM workflow_instance b WHERE b.backfill_id = i.backfill_id AND b.state IN \(WorkflowState.activeSQL))
                      < (SELECT parallel FROM backfill WHERE id = i.backfill_id))
            ORDER BY c.priority_rank, c.id LIMIT 1
            """
    }()

    /// Another instance of the workflow `name` that runs (or pauses or stops), if any.
    static func runningInstance(named name: String, besides id: Int64, _ db: SQLConnection) throws -> Int64? {
        try Int64.fetchOne(db, sql: """
            SELECT id FROM workflow_instance WHERE name = ? AND id <> ? AND state IN \(WorkflowState.activeSQL) ORDER BY id LIMIT 1
            """, arguments: [name, id])
    }

    /// Why a serial instance that waits to start waits: the instance of its name that runs.
    public func serialBlocker(of instance: WorkflowInstanceRecord) async throws -> Int64? {
        guard let e = instance.execution, e != .parallel, [.submitted, .waitingThread].contains(instance.state) else { return nil }
        return try await read("reading instances of '\(instance.name)'") { db in try Self.runningInstance(named: instance.name, besides: instance.id!, db) }
    }

    /// Marks the instances that wait for a master slot WAITING_THREAD (a master found itself full):
    /// unowned, with a start command pending. Any master with a free slot claims them, in order.
    public func markWaiting() async throws {
        try await transaction("marking instances that wait for a slot") { db in
            let types = CommandRecord.startTypes.map { "'\($0)'" }.joined(separator: ", ")
            try db.execute(sql: """
                UPDATE workflow_instance SET state = 'WAITING_THREAD'
                WHERE state = 'SUBMITTED' AND host IS NULL
                  AND id IN (SELECT workflow_instance_id FROM command WHERE type IN (\(types)))
                """)
        }
    }

    /// Pause, stop and remove commands for instances `session` owns, oldest first.
    public func pendingControls(session: Int64) async throws -> [ControlRequest] {
        try await read("reading pause, stop and remove commands") { db in
            try CommandRecord.fetchAll(db, sql: """
                SELECT c.* FROM command c JOIN workflow_instance w ON w.id = c.workflow_instance_id
                WHERE c.type IN \(CommandRecord.controlTypesSQL) AND w.master_session = ? ORDER BY c.id
                """, arguments: [session]).map {
                var request = ControlRequest(commandID: $0.id, instance: $0.workflowInstanceId, stop: $0.type == "STOP", applied: false)
                if $0.type == "REMOVE" { request.removeAttempt = $0.taskInstanceId ?? -1 }
                return request
            }
        }
    }

    /// Writes one round of scheduling, but only for instances `session` still owns: a master that
    /// was failed over while hung can never write for an instance another master now runs.
    public func apply(_ batch: SchedulingBatch, session: Int64) async throws -> AppliedBatch {
        // Isolation: the fence is the round's first statement, the owner checked in the statement
        // that writes it: each instance `session` still owns is written (its owner onto itself,
        // RETURNING it), which row-locks it for the round. A takeover (`adoptOrphans`, which moves
        // instances in one UPDATE) then waits for the round and is retried, or the round waits
        // for the takeover and is retried (40001 on PostgreSQL's SERIALIZABLE) and finds the
        // instance lost: every round lands wholly before a takeover or writes nothing for it.
        // A plain read of the owner fenced as well, but made every round part of a cycle with a
        // takeover that reads the attempts the round writes, and PostgreSQL aborted the longer
        // one, the takeover, each time (seen: 20 retries lost to a master writing every 5 ms).
        // Each instance counts its own events (`event_seq`, on the row the fence locks): one
        // counter shared by every instance made any two masters' rounds conflict on PostgreSQL.
        try await transaction("recording \(batch.outcomes.count) results and \(batch.newAttempts.count) dispatches") { db in
            let ids = Array(batch.instanceIDs).sorted()
            // The last event number of each instance `session` still owns.
            var seqs: [Int64: Int64] = [:]
            for chunk in ids.chunked(500) {
                for row in try db.rows(sql: """
                    UPDATE workflow_instance SET master_session = ? WHERE id IN (\(WorkflowInstanceRecord.marks(chunk.count))) AND master_session = ?
                    RETURNING id, event_seq
                    """, arguments: SQLArguments([session] + chunk + [session])) {
                    seqs[try row["id"]] = try row["event_seq"]
                }
            }
            let lost = Set(ids).subtracting(seqs.keys)
            let batch = lost.isEmpty ? batch : batch.dropping(lost)
            let first = seqs
            /// The instance's next event number: outcomes, then new attempts, in the order the
            /// engine consumed and produced them.
            func next(_ instance: Int64) -> Int64 {
                let seq = (seqs[instance] ?? 0) + 1
                seqs[instance] = seq
                return seq
            }
            var inserted: [TaskInstanceRecord] = []
            var decisions = batch.decisions[...]
            func insertDecisions(upTo count: Int) throws {
                while let d = decisions.first, d.afterOutcomes <= count {
                    decisions.removeFirst()
                    var record = d.record
                    let seq = next(record.workflowInstanceId)
                    (record.dispatchSeq, record.finishSeq) = (seq, seq)
                    try record.insert(db)
                    inserted.append(record)
                }
            }
            // Pauses and stops first: a round that applies one has no outcomes before it, and a
            // takeover applies one it finds unapplied before what it then decides or dispatches.
            for c in batch.controls {
                if let id = c.commandID { try db.execute(sql: "DELETE FROM command WHERE id = ?", arguments: [id]) }
                guard c.applied else { continue }
                try db.execute(sql: "UPDATE workflow_instance SET \(c.stop ? "stop_seq" : "pause_seq") = ? WHERE id = ?",
                               arguments: [next(c.instance), c.instance])
            }
            for (k, o) in batch.outcomes.enumerated() {
                try insertDecisions(upTo: k)
                let seq = next(o.workflowInstanceId)
                try db.execute(sql: """
                    UPDATE task_instance SET state = ?, host = COALESCE(?, host), pid = COALESCE(?, pid),
                      log_path = COALESCE(?, log_path), exit_code = ?, output_json = ?, message = ?,
                      start_time = COALESCE(?, start_time), end_time = ?, finish_seq = ?
                    WHERE id = ? AND state IN ('SUBMITTED', 'DISPATCHED', 'RUNNING')
                    """, arguments: [o.state, o.host, o.pid, o.logPath, o.exitCode, o.outputJson, o.message,
                                     o.startTime, o.endTime, seq, o.taskInstanceId])
            }
            for s in batch.started {
                try db.execute(sql: """
                    UPDATE task_instance SET state = 'RUNNING', start_time = COALESCE(start_time, ?), host = COALESCE(?, host),
                      log_path = COALESCE(?, log_path)
                    WHERE id = ? AND state = 'DISPATCHED'
                    """, arguments: [s.time, s.host, s.logPath, s.id])
            }
            for s in batch.superseded {
                try db.execute(sql: """
                    UPDATE task_instance SET state = 'NEED_FAULT_TOLERANCE', message = ?, end_time = ?
                    WHERE id = ? AND state IN ('SUBMITTED', 'DISPATCHED', 'RUNNING')
                    """, arguments: [s.message, s.time, s.id])
            }
            for n in batch.notes {
                try db.execute(sql: "UPDATE task_instance SET message = ? WHERE id = ? AND state IN ('DISPATCHED', 'RUNNING')",
                               arguments: [n.message, n.id])
            }
            try insertDecisions(upTo: batch.outcomes.count)
            for var alert in batch.alerts { try alert.insertUnlessPresent(db) }
            var childProblems: [Int64: String] = [:]
            for var attempt in batch.newAttempts {
                attempt.dispatchSeq = next(attempt.workflowInstanceId)
                try attempt.insert(db)
                if let request = attempt.childRequest {
                    do {
                        attempt.childInstanceId = try Self.startChild(request, of: attempt, now: attempt.submitTime, db)
                        try attempt.update(db)
                    } catch let problem as ChildProblem {
                        childProblems[attempt.id!] = problem.description
                    }
                }
                inserted.append(attempt)
            }
            for (instance, seq) in seqs.sorted(by: { $0.key < $1.key }) where seq != first[instance] {
                try db.execute(sql: "UPDATE workflow_instance SET event_seq = ? WHERE id = ?", arguments: [seq, instance])
            }
            for f in batch.finishedInstances {
                try db.execute(sql: "UPDATE workflow_instance SET state = ?, end_time = ? WHERE id = ?",
                               arguments: [f.state, f.time, f.id])
                try Self.deleteMootControls(of: f.id, db)
            }
            return AppliedBatch(inserted: inserted, lostOwnership: lost, childProblems: childProblems)
        }
    }

    /// Backlog attempts now in ZooKeeper: SUBMITTED → DISPATCHED, for instances `session` owns.
    public func markDispatched(_ ids: [Int64], session: Int64) async throws {
        // Isolation: one conditional UPDATE per chunk, the owner checked in the same statement.
        try await transaction("recording \(ids.count) dispatches") { db in
            for chunk in ids.chunked(500) {
                try db.execute(sql: """
                    UPDATE task_instance SET state = 'DISPATCHED' WHERE state = 'SUBMITTED' AND id IN (\(TaskInstanceRecord.marks(chunk.count)))
                      AND workflow_instance_id IN (SELECT id FROM workflow_instance WHERE master_session = ?)
                    """, arguments: SQLArguments(chunk + [session]))
            }
        }
    }

    /// Deletes the pause and stop commands of an instance that just ended, in the transaction that
    /// ends it. One written while the owner was finishing it is moot; left behind, it would outlive
    /// an owner that dies before its next round, and stop or pause the instance's next run.
    static func deleteMootControls(of instanceID: Int64, _ db: SQLConnection) throws {
        try db.execute(sql: "DELETE FROM command WHERE workflow_instance_id = ? AND type IN \(CommandRecord.controlTypesSQL)", arguments: [instanceID])
    }

    /// Every attempt of the instance's current run, in creation order.
    static func attempts(of instance: WorkflowInstanceRecord, _ db: SQLConnection) throws -> [TaskInstanceRecord] {
        try TaskInstanceRecord.fetchAll(db, sql: "SELECT * FROM task_instance WHERE workflow_instance_id = ? AND run = ? ORDER BY id",
                                        arguments: [instance.id, instance.run])
    }

    /// The attempts an earlier run's successes are kept from.
    static func keptAttempts(_ instance: WorkflowInstanceRecord, _ db: SQLConnection) throws -> [TaskInstanceRecord] {
        try TaskInstanceRecord.fetchAll(db, ids: Array(instance.kept.values))
    }

}

extension Store {
    /// Active instances, for `ds-failover` to compare their owners with the registry.
    public func runningInstances() async throws -> [WorkflowInstanceRecord] {
        try await read("reading running instances") { db in
            try WorkflowInstanceRecord.fetchAll(db, sql: "SELECT * FROM workflow_instance WHERE state IN \(WorkflowState.activeSQL) ORDER BY id")
        }
    }

    /// DISPATCHED or RUNNING attempts of active instances.
    public func inFlightAttempts() async throws -> [TaskInstanceRecord] {
        try await read("reading attempts in flight") { db in
            try TaskInstanceRecord.fetchAll(db, sql: """
                SELECT t.* FROM task_instance t JOIN workflow_instance w ON w.id = t.workflow_instance_id
                WHERE t.state IN ('DISPATCHED', 'RUNNING') AND NOT t.on_master AND w.state IN \(WorkflowState.activeSQL) ORDER BY t.id
                """)
        }
    }

    /// States of the given instances.
    public func instanceStates(_ ids: [Int64]) async throws -> [Int64: WorkflowState] {
        try await read("reading instance states") { db in
            var result: [Int64: WorkflowState] = [:]
            for r in try WorkflowInstanceRecord.fetchAll(db, ids: ids) { result[r.id!] = r.state }
            return result
        }
    }
}
