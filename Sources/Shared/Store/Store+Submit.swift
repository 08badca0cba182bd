import Foundation

/// What `ds-submit` stored.
public struct SubmittedInstance: Sendable, Codable {
    public var instanceId: Int64
    public var definitionId: Int64
    public var name: String
    public var version: Int
    public var priority: Priority
}

extension Store {
    /// Stores the definition (a new version only when it changed) and, unless `start` is false,
    /// a START command for a new instance (`instanceId` 0 when none was started), whose dates
    /// are read in `timeZone` (an IANA name) by every master. `reuseAnyVersion`: an earlier
    /// version with the same definition is run rather than stored again (not for ds-submit: its
    /// resubmitted file must become the latest version, the one schedules fire).
    public func submit(_ definition: WorkflowDefinition, params: [String: String], timeZone: String = InstanceClock.unzonedName,
                       now: Double, start: Bool = true, reuseAnyVersion: Bool = false) async throws -> SubmittedInstance {
        let json = definition.canonicalJSON()
        let paramsJSON = String(decoding: try JSONEncoder.sorted.encode(params), as: UTF8.self)
        // Isolation: the latest version is read, then the next inserted: SERIALIZABLE on
        // PostgreSQL, and the unique (name, version) key refuses a second version n in any case.
        return try await transaction("submit of workflow '\(definition.name)'") { db in
            let latest = try Self.latestDefinition(named: definition.name, db)
            var stored: WorkflowDefinitionRecord
            if let latest, latest.json == json {
                stored = latest
            } else if reuseAnyVersion, let same = try WorkflowDefinitionRecord.fetchOne(db, sql: """
                SELECT * FROM workflow_definition WHERE name = ? AND json = ? ORDER BY version DESC LIMIT 1
                """, arguments: [definition.name, json]) {
                stored = same
            } else {
                stored = WorkflowDefinitionRecord(id: nil, name: definition.name, version: (latest?.version ?? 0) + 1,
                                                  json: json, createdAt: now)
                try stored.insert(db)
            }
            var submitted = SubmittedInstance(instanceId: 0, definitionId: stored.id!, name: definition.name,
                                              version: stored.version, priority: definition.priority)
            guard start else { return submitted }
            var instance = Self.newInstance(stored, definition, priority: nil, paramsJson: paramsJSON, now: now)
            instance.timeZone = timeZone
            try Self.insertStart(&instance, db)
            submitted.instanceId = instance.id!
            return submitted
        }
    }

    public func instance(_ id: Int64) async throws -> WorkflowInstanceRecord? {
        try await read("reading instance \(id)") { db in try WorkflowInstanceRecord.fetchOne(db, key: id) }
    }

    /// Every attempt of every task of an instance, in creation order.
    public func taskAttempts(of instanceID: Int64) async throws -> [TaskInstanceRecord] {
        try await read("reading tasks of instance \(instanceID)") { db in
            try TaskInstanceRecord.fetchAll(db, sql: "SELECT * FROM task_instance WHERE workflow_instance_id = ? ORDER BY id", arguments: [instanceID])
        }
    }

    /// Alerts, oldest first; of one instance if `instanceID` is given.
    public func alerts(of instanceID: Int64? = nil) async throws -> [AlertRecord] {
        try await read("reading alerts") { db in
            if let instanceID {
                return try AlertRecord.fetchAll(db, sql: "SELECT * FROM alert WHERE workflow_instance_id = ? ORDER BY id", arguments: [instanceID])
            }
            return try AlertRecord.fetchAll(db, sql: "SELECT * FROM alert ORDER BY id")
        }
    }
}

extension JSONEncoder {
    /// Sorted keys, so that equal values give equal text.
    public static var sorted: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }
}

extension Store {
    /// Rows of a table, for operators' checks and tests. `table` must be one of ours.
    public func countRows(of table: String) async throws -> Int {
        let tables = ["workflow_definition", "workflow_instance", "task_instance", "command"]
        guard tables.contains(table) else { throw StoreError.notFound("table \(table)") }
        return try await read("counting \(table)") { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table)") ?? 0 }
    }
}

extension Store {
    public func countInstances(in state: WorkflowState) async throws -> Int {
        try await read("counting instances") { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM workflow_instance WHERE state = ?", arguments: [state]) ?? 0
        }
    }
}
