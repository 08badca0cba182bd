import Foundation

/// Which finished instances `ds-instance prune` and a master's `--prune-older-than` remove.
public struct PrunePolicy: Sendable, Equatable {
    /// Instances that ended at least this long ago (seconds).
    public var olderThan: Double
    /// Only instances in these states; empty: every state that may go (`PrunePolicy.states`).
    public var states: [WorkflowState] = []
    /// Top-level instances per transaction: each batch is one short write, so no lock is held long.
    public var batchSize: Int = 500

    /// The states an instance may be pruned in: ended for good. PAUSE is not among them (it may
    /// be resumed), nor anything that runs or waits.
    public static let states: [WorkflowState] = [.success, .failure, .stop]
    /// The shortest `olderThan` accepted, and the longest (a hundred years).
    public static let ages: ClosedRange<Double> = 1...(100 * 365 * 86_400)

    public init(olderThan: Double, states: [WorkflowState] = [], batchSize: Int = 500) {
        self.olderThan = olderThan
        self.states = states
        self.batchSize = batchSize
    }

    /// Reads `--older-than` and `--state` (each named by `flag`/`stateFlag` in refusals, exit 64).
    public static func parse(olderThan text: String, states stateTexts: [String], flag: String = "--older-than",
                             stateFlag: String = "--state") throws -> PrunePolicy {
        guard let age = DurationText.parse(text), ages.contains(age) else {
            throw InputError.usage("\(flag) \(Limits.quoted(text)) is not a duration from 1s to 100 years, such as 30d, 12h or 90m")
        }
        var states: [WorkflowState] = []
        for s in stateTexts {
            guard let state = WorkflowState(rawValue: s.uppercased()), Self.states.contains(state) else {
                throw InputError.usage("\(stateFlag) \(Limits.quoted(s)) is not one of \(Self.states.map(\.rawValue).joined(separator: ", ")) "
                    + "(only instances that ended for good are pruned; PAUSE may be resumed)")
            }
            if !states.contains(state) { states.append(state) }
        }
        return PrunePolicy(olderThan: age, states: states)
    }
}

/// What a prune removed (or, dry, would remove).
public struct PruneReport: Sendable, Equatable {
    /// Every instance removed: the top-level ones and their sub-workflow instances, in batch order.
    public var instances: [Int64] = []
    /// The top-level instances among them.
    public var topLevel = 0
    /// Task attempts removed with them.
    public var attempts = 0
    /// Transactions it took.
    public var batches = 0
    /// Finished top-level instances kept because a sub-workflow instance below them has not ended.
    public var keptForUnfinishedChildren = 0
}

/// Pruning finished instances: plain SQL with `?` placeholders through `SQLConnection`, the same
/// on SQLite and PostgreSQL.
///
/// A top-level instance goes with its whole tree of sub-workflow instances, and only when every
/// instance of the tree has ended for good: a child is never pruned alone (its parent's attempt
/// names it), and a parent never leaves a child behind. With each instance go the rows that refer
/// to it: its task attempts (and with them their stored outputs and branch decisions), its commands
/// and its alerts. Definitions, schedules and backfills stay.
extension Store {
    /// States spelled exactly as in the partial index `workflow_instance_prunable` (migration
    /// v16), or SQLite does not use it.
    static let prunableSQL = "('SUCCESS', 'FAILURE', 'STOP')"

    /// The next batch of top-level candidates after the cursor (end_time, id), oldest first.
    static func pruneSelectionSQL(states: Int) -> String {
        let filter = states == 0 ? "" : " AND state IN (" + Array(repeating: "?", count: states).joined(separator: ", ") + ")"
        return """
            SELECT id, end_time FROM workflow_instance
            WHERE state IN \(prunableSQL) AND parent_instance_id IS NULL AND end_time < ?
              AND (end_time > ? OR (end_time = ? AND id > ?))\(filter)
            ORDER BY end_time, id LIMIT ?
            """
    }

    static func placeholders(_ n: Int) -> String { "(" + Array(repeating: "?", count: n).joined(separator: ", ") + ")" }

    /// Removes (or with `dryRun` only lists) the instances `policy` selects, as of `now`, in
    /// batches of `policy.batchSize` top-level instances, one transaction each. Two prunes at once
    /// (two masters) are harmless: each batch reads and deletes in one transaction.
    public func prune(_ policy: PrunePolicy, now: Double, dryRun: Bool = false,
                      onBatch: (@Sendable ([Int64]) -> Void)? = nil) async throws -> PruneReport {
        let cutoff = now - policy.olderThan
        var report = PruneReport()
        var cursor: (Double, Int64) = (-Double.greatestFiniteMagnitude, 0)
        while true {
            let from = cursor
            let batch = { @Sendable (db: SQLConnection) throws -> PruneBatch in
                try Self.pruneBatch(policy, cutoff: cutoff, after: from, delete: !dryRun, db)
            }
            let done = dryRun ? try await read("listing instances to prune", batch) : try await transaction("pruning instances", batch)
            guard let last = done.cursor else { break }
            cursor = last
            report.batches += 1
            report.instances += done.instances
            report.topLevel += done.topLevel
            report.attempts += done.attempts
            report.keptForUnfinishedChildren += done.kept
            if !done.instances.isEmpty { onBatch?(done.instances) }
            if done.selected < policy.batchSize { break }
        }
        return report
    }

    struct PruneBatch: Sendable {
        var cursor: (Double, Int64)?
        var selected = 0
        var instances: [Int64] = []
        var topLevel = 0
        var attempts = 0
        var kept = 0
    }

    /// One batch: select the next top-level candidates, gather their trees, drop the trees with
    /// an unfinished instance, and delete the rest with every row that refers to them.
    static func pruneBatch(_ policy: PrunePolicy, cutoff: Double, after cursor: (Double, Int64), delete: Bool,
                           _ db: SQLConnection) throws -> PruneBatch {
        var arguments: SQLArguments = [cutoff, cursor.0, cursor.0, cursor.1]
        arguments += SQLArguments(policy.states)
        arguments += [policy.batchSize]
        let rows = try db.rows(sql: pruneSelectionSQL(states: policy.states.count), arguments: arguments)
        var batch = PruneBatch()
        guard let lastRow = rows.last else { return batch }
        batch.cursor = (try lastRow["end_time"], try lastRow["id"])
        batch.selected = rows.count
        let roots: [Int64] = try rows.map { try $0["id"] }
        // Each instance of the trees, with its root; level by level (a tree is as deep as its
        // sub-workflows nest, and each level is one query).
        var rootOf: [Int64: Int64] = Dictionary(uniqueKeysWithValues: roots.map { ($0, $0) })
        var unfinished: Set<Int64> = []
        var order = roots
        var level = roots
        while !level.isEmpty {
            var next: [Int64] = []
            for chunk in level.chunked(500) {
                let children = try db.rows(sql: """
                    SELECT id, parent_instance_id, state FROM workflow_instance WHERE parent_instance_id IN \(placeholders(chunk.count))
                    """, arguments: SQLArguments(chunk))
                for child in children {
                    let id: Int64 = try child["id"], parent: Int64 = try child["parent_instance_id"]
                    guard rootOf[id] == nil, let root = rootOf[parent] else { continue }
                    rootOf[id] = root
                    let state: String = try child["state"]
                    if !PrunePolicy.states.map(\.rawValue).contains(state) { unfinished.insert(root) }
                    next.append(id)
                }
            }
            level = next
            order += next
        }
        batch.kept = unfinished.count
        // Oldest first, each top-level instance before its sub-workflows.
        let doomed = order.filter { rootOf[$0].map { !unfinished.contains($0) } ?? false }
        batch.topLevel = roots.filter { !unfinished.contains($0) }.count
        batch.instances = doomed
        for chunk in doomed.chunked(500) {
            let list = placeholders(chunk.count)
            let ids = SQLArguments(chunk)
            batch.attempts += try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM task_instance WHERE workflow_instance_id IN \(list)", arguments: ids) ?? 0
            guard delete else { continue }
            try db.execute(sql: "DELETE FROM alert WHERE workflow_instance_id IN \(list)", arguments: ids)
            try db.execute(sql: "DELETE FROM command WHERE workflow_instance_id IN \(list)", arguments: ids)
            try db.execute(sql: "DELETE FROM task_instance WHERE workflow_instance_id IN \(list)", arguments: ids)
            try db.execute(sql: "DELETE FROM workflow_instance WHERE id IN \(list)", arguments: ids)
        }
        return batch
    }
}
