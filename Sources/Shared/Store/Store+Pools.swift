import Foundation

/// A task pool and how it is used.
public struct PoolUsage: Sendable, Codable, Equatable {
    public var name: String
    /// Nil when no pool of this name exists (a task naming it waits until one is made).
    public var slots: Int?
    /// Attempts holding a slot: DISPATCHED or RUNNING.
    public var inUse: Int
    /// Attempts waiting for a slot: SUBMITTED.
    public var waiting: Int

    public init(name: String, slots: Int?, inUse: Int, waiting: Int) {
        (self.name, self.slots, self.inUse, self.waiting) = (name, slots, inUse, waiting)
    }
}

/// Task pools (`ds-pool`): a slot is held by an attempt of a pooled task while it is DISPATCHED or
/// RUNNING. A master takes slots for waiting (SUBMITTED) attempts in one transaction that counts
/// the holders again, so masters sharing a database never give out more than the pool has.
extension Store {
    /// The most slots a pool may have.
    public static let maxPoolSlots = 100_000

    static let holdingStates = "('DISPATCHED', 'RUNNING')"

    static func usage(_ name: String, _ db: SQLConnection) throws -> PoolUsage {
        let slots = try Int.fetchOne(db, sql: "SELECT slots FROM task_pool WHERE name = ?", arguments: [name])
        let inUse = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM task_instance WHERE pool = ? AND state IN \(holdingStates)",
                                     arguments: [name]) ?? 0
        let waiting = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM task_instance WHERE pool = ? AND state = 'SUBMITTED'",
                                       arguments: [name]) ?? 0
        return PoolUsage(name: name, slots: slots, inUse: inUse, waiting: waiting)
    }

    /// Every pool, and any pool name tasks use that does not exist, by name.
    public func pools() async throws -> [PoolUsage] {
        try await read("reading task pools") { db in
            let names = try String.fetchAll(db, sql: """
                SELECT name FROM task_pool UNION
                SELECT DISTINCT pool FROM task_instance WHERE pool IS NOT NULL AND state IN ('SUBMITTED', 'DISPATCHED', 'RUNNING')
                ORDER BY 1
                """)
            return try names.map { try Self.usage($0, db) }
        }
    }

    public func pool(_ name: String) async throws -> PoolUsage {
        try await read("reading pool '\(name)'") { db in try Self.usage(name, db) }
    }

    /// Makes a pool or changes its size. A smaller size takes no slot back: the attempts holding
    /// one finish, and no new one starts until fewer than `slots` hold one.
    public func setPool(_ name: String, slots: Int, now: Double) async throws {
        try await transaction("setting pool '\(name)'") { db in
            try db.execute(sql: """
                INSERT INTO task_pool (name, slots, created_at) VALUES (?, ?, ?)
                ON CONFLICT(name) DO UPDATE SET slots = excluded.slots
                """, arguments: [name, slots, now])
        }
    }

    /// Removes a pool; false if there was none. Tasks naming it then wait until it is made again.
    public func removePool(_ name: String) async throws -> Bool {
        try await transaction("removing pool '\(name)'") { db in
            try db.execute(sql: "DELETE FROM task_pool WHERE name = ?", arguments: [name]) > 0
        }
    }

    /// Names in `names` that are no pool.
    public func missingPools(_ names: Set<String>) async throws -> [String] {
        guard !names.isEmpty else { return [] }
        return try await read("reading task pools") { db in
            let existing = Set(try String.fetchAll(db, sql: "SELECT name FROM task_pool"))
            return names.subtracting(existing).sorted()
        }
    }

    /// Free slots of a pool now (0 if it does not exist): a cheap look before `takePoolSlots`.
    public func freePoolSlots(_ name: String) async throws -> Int {
        try await read("reading pool '\(name)'") { db in
            let u = try Self.usage(name, db)
            return max(0, (u.slots ?? 0) - u.inUse)
        }
    }

    /// Gives slots of `pool` to the first of `ids` (SUBMITTED attempts of instances `session`
    /// owns) as far as it has free ones: they become DISPATCHED, in one transaction with the count.
    /// Returns those that got one.
    public func takePoolSlots(_ pool: String, ids: [Int64], session: Int64) async throws -> [Int64] {
        guard !ids.isEmpty else { return [] }
        // Isolation: the holders are counted, then slots given: a write skew that READ COMMITTED
        // would let two masters make (each counting the same free slot). SERIALIZABLE on
        // PostgreSQL aborts one of them (40001), whose retry counts again; IMMEDIATE on SQLite.
        return try await transaction("taking slots of pool '\(pool)'") { db in
            let u = try Self.usage(pool, db)
            var free = max(0, (u.slots ?? 0) - u.inUse)
            var taken: [Int64] = []
            for id in ids where free > 0 {
                // By primary keys only: no scan of the instance table, whatever its size.
                let changed = try db.execute(sql: """
                    UPDATE task_instance SET state = 'DISPATCHED' WHERE id = ? AND state = 'SUBMITTED' AND pool = ?
                      AND EXISTS (SELECT 1 FROM workflow_instance w WHERE w.id = task_instance.workflow_instance_id AND w.master_session = ?)
                    """, arguments: [id, pool, session])
                if changed > 0 {
                    taken.append(id)
                    free -= 1
                }
            }
            return taken
        }
    }
}
