import Foundation

/// Who owns an instance: the master session on its row. Taking over the instances of dead
/// masters, reading owned instances again, and the checks that let only the owner write late.
/// (`apply`'s fence, the first statement of every round's transaction, is in Store+Master.swift.)
extension Store {
    /// Owner sessions of active instances, and whether any has no owner session at all.
    public func ownerSessions() async throws -> (sessions: Set<Int64>, unowned: Bool) {
        try await read("reading instance owners") { db in
            let owners = try Int64?.fetchAll(db, sql: "SELECT DISTINCT master_session FROM workflow_instance WHERE state IN \(WorkflowState.activeSQL)")
            var sessions: Set<Int64> = []
            var unowned = false
            for owner in owners {
                if let s = owner { sessions.insert(s) } else { unowned = true }
            }
            return (sessions, unowned)
        }
    }

    /// Moves every active instance (RUNNING, READY_PAUSE, READY_STOP) owned by one of `deadSessions` (or by no session) to
    /// `host`/`session`, in one transaction; returns them with their attempts and the previous
    /// owners, as the dead masters to record. Idempotent: an instance moves once, and a master that dies
    /// after the move leaves instances owned by a dead session, which the next master takes in turn.
    public func adoptOrphans(host: String, session: Int64,
                             deadSessions: Set<Int64>) async throws -> (adopted: [ClaimedInstance], previousOwners: [DeadServer]) {
        try await transaction("taking over instances of dead masters") { db in
            // Read-then-write: the active instances of dead (or no) sessions, moved in one UPDATE
            // right after the read, each only if it still has a dead owner (or none), so two masters
            // adopting at once take each instance once. Moving them all before reading any history
            // keeps the window short in which a dead master's last round can conflict with the
            // takeover (see `apply`): once moved, the rows are locked and such a round waits.
            let orphans = try WorkflowInstanceRecord.fetchAll(db, sql: "SELECT * FROM workflow_instance WHERE state IN \(WorkflowState.activeSQL) ORDER BY id")
                .filter { ($0.masterSession.map(deadSessions.contains) ?? true) && $0.masterSession != session }
            let dead = Array(deadSessions).sorted()
            var moved: Set<Int64> = []
            for chunk in orphans.compactMap(\.id).chunked(500) {
                moved.formUnion(try Int64.fetchAll(db, sql: """
                    UPDATE workflow_instance SET host = ?, master_session = ?
                    WHERE id IN (\(WorkflowInstanceRecord.marks(chunk.count))) AND state IN \(WorkflowState.activeSQL)
                      AND (master_session IS NULL\(dead.isEmpty ? "" : " OR master_session IN (\(WorkflowInstanceRecord.marks(dead.count)))"))
                    RETURNING id
                    """, arguments: [host, session] + SQLArguments(chunk) + SQLArguments(dead)))
            }
            var adopted: [ClaimedInstance] = []
            var owners: Set<DeadServer> = []
            for var instance in orphans where moved.contains(instance.id!) {
                owners.insert(DeadServer(type: "master", identity: instance.host ?? "unknown", session: instance.masterSession ?? 0))
                instance.host = host
                instance.masterSession = session
                if let claimed = try Self.historyOrFailure(&instance, now: ProcessStats.now(), db) {
                    adopted.append(claimed)
                }
            }
            return (adopted, owners.sorted { $0.name < $1.name })
        }
    }

    /// The active instances among `ids` that `session` owns, with their attempts: what a master
    /// reads again after a pass that failed half-way. A failed read throws (the master retries the
    /// whole reload): an owned instance is never taken for one it does not own. One whose stored
    /// definition no longer reads can never run, and is failed with the reason.
    public func ownedInstances(_ ids: Set<Int64>, session: Int64, now: Double) async throws -> [ClaimedInstance] {
        // Isolation: owned instances read, those that cannot run failed: SERIALIZABLE (PostgreSQL).
        try await transaction("reading \(ids.count) instances again") { db in
            var claimed: [ClaimedInstance] = []
            for chunk in Array(ids).sorted().chunked(500) {
                let instances = try WorkflowInstanceRecord.fetchAll(db, ids: chunk, where: "master_session = ? AND state IN \(WorkflowState.activeSQL)",
                                                                    arguments: [session])
                for var instance in instances {
                    if let c = try Self.historyOrFailure(&instance, now: now, db) { claimed.append(c) }
                }
            }
            return claimed
        }
    }

    /// An owned instance with its history, or nil when it cannot run (its definition is missing
    /// or no longer reads): then it is failed here, with the reason. Any other error throws.
    static func historyOrFailure(_ instance: inout WorkflowInstanceRecord, now: Double, _ db: SQLConnection) throws -> ClaimedInstance? {
        do {
            if let claimed = try withHistory(instance, db) { return claimed }
            try fail(&instance, "its definition \(instance.definitionId) is missing from the database", now: now, db)
        } catch let error as WorkflowValidationError {
            try fail(&instance, "its stored definition cannot be run: \(error)", now: now, db)
        }
        return nil
    }

    /// Ends an instance that cannot run, with the reason; its attempts in flight end with it.
    static func fail(_ instance: inout WorkflowInstanceRecord, _ message: String, now: Double, _ db: SQLConnection) throws {
        instance.state = .failure
        instance.message = message
        instance.startTime = instance.startTime ?? now
        instance.endTime = now
        try instance.update(db)
        try deleteMootControls(of: instance.id!, db)
        try db.execute(sql: """
            UPDATE task_instance SET state = 'FAILURE', message = ?, end_time = ?
            WHERE workflow_instance_id = ? AND state IN ('SUBMITTED', 'DISPATCHED', 'RUNNING')
            """, arguments: ["instance failed: \(message)", now, instance.id])
    }

    /// An instance with its definition and every attempt of its current run, in creation order.
    private static func withHistory(_ instance: WorkflowInstanceRecord, _ db: SQLConnection) throws -> ClaimedInstance? {
        try FaultInjectors.checkRead("reading the history of instance \(instance.id ?? 0)")
        guard let record = try WorkflowDefinitionRecord.fetchOne(db, key: instance.definitionId) else { return nil }
        let attempts = try Self.attempts(of: instance, db)
        var removals: [Int64: Int64] = [:]
        for row in try db.rows(sql: """
            SELECT id, task_instance_id FROM command WHERE workflow_instance_id = ? AND type = 'REMOVE' AND task_instance_id IS NOT NULL
            """, arguments: [instance.id]) {
            removals[try row["task_instance_id"]] = try row["id"]
        }
        return ClaimedInstance(instance: instance, definition: try WorkflowDefinition.fromStored(record.json), attempts: attempts,
                               keptAttempts: try keptAttempts(instance, db), removals: removals)
    }

    /// The owner of an attempt's instance; nil for an unknown attempt.
    public func owner(ofAttempt id: Int64) async throws -> AttemptOwner? {
        try await read("reading attempt \(id)") { db in
            guard let attempt = try TaskInstanceRecord.fetchOne(db, key: id),
                  let instance = try WorkflowInstanceRecord.fetchOne(db, key: attempt.workflowInstanceId) else { return nil }
            return AttemptOwner(attempt: attempt, masterSession: instance.masterSession, instanceState: instance.state)
        }
    }

    /// Notes a result that came after its attempt was superseded or ended; the state stays. Only
    /// while `session` owns the attempt's instance or the instance has ended (the owner checked in
    /// the statement: a master that lost the instance since it looked writes nothing).
    public func recordLateResult(attempt id: Int64, note: String, session: Int64) async throws {
        try await transaction("recording a late result for attempt \(id)") { db in
            try db.execute(sql: """
                UPDATE task_instance SET message = COALESCE(message || '; ', '') || ?
                WHERE id = ? AND workflow_instance_id IN (SELECT id FROM workflow_instance
                                                          WHERE master_session = ? OR state NOT IN \(WorkflowState.activeSQL))
                """, arguments: [note, id, session])
        }
    }
}
