import Foundation

/// What one firing of a due schedule did.
public struct ScheduleFiring: Sendable, Equatable {
    public var scheduleID: Int64
    /// The instances started, with the fire time each stands for; `late` ones were missed (no
    /// master ran at their time) and started under the schedule's catch-up policy.
    public var fired: [(instance: Int64, time: Double, late: Bool)] = []
    /// Missed fire times the catch-up policy passed over: those from `from` to before `before`
    /// (nil: the schedule has no fire time left).
    public var skipped: (from: Double, before: Double?)?
    /// More fire times are due at once (a catch-up of ALL goes on in the next transaction).
    public var moreDue = false

    public static func == (a: Self, b: Self) -> Bool {
        a.scheduleID == b.scheduleID && a.fired.map(\.instance) == b.fired.map(\.instance)
    }
}

extension Store {
    /// Most fire times one transaction starts (a catch-up of ALL after a long outage goes on in
    /// the next ones): a transaction stays short, and other masters' writes go between.
    public static let maxFiresPerTransaction = 100

    /// Stores a schedule of a stored workflow, ONLINE or OFFLINE, its first fire time computed.
    public func addSchedule(_ schedule: ScheduleRecord, now: Double) async throws -> ScheduleRecord {
        try await transaction("adding a schedule of '\(schedule.workflow)'") { db in
            guard try Self.latestDefinition(named: schedule.workflow, db) != nil else {
                throw ControlRefusal(description: "no stored workflow named \(Limits.quoted(schedule.workflow)); store it first: ds-submit --no-start FILE",
                                      exitStatus: .dataError)
            }
            var s = schedule
            s.nextFireTime = s.state == ScheduleRecord.online ? try Self.firstFireTime(s, from: now) : nil
            try s.insert(db)
            return s
        }
    }

    public func schedules() async throws -> [ScheduleRecord] {
        try await read("reading schedules") { db in try ScheduleRecord.fetchAll(db, sql: "SELECT * FROM schedule ORDER BY id") }
    }

    public func schedule(_ id: Int64) async throws -> ScheduleRecord? {
        try await read("reading schedule \(id)") { db in try ScheduleRecord.fetchOne(db, key: id) }
    }

    /// Puts a schedule online (its next fire time counted from now: what fell due while it was
    /// offline is not caught up) or offline. Nil if there is no such schedule.
    public func setSchedule(_ id: Int64, online: Bool, now: Double) async throws -> ScheduleRecord? {
        // Isolation: read, then written whole: SERIALIZABLE (PostgreSQL), IMMEDIATE (SQLite).
        try await transaction("switching schedule \(id) \(online ? "online" : "offline")") { db in
            guard var s = try ScheduleRecord.fetchOne(db, key: id) else { return nil }
            let state = online ? ScheduleRecord.online : ScheduleRecord.offline
            guard s.state != state else { return s }
            s.state = state
            s.nextFireTime = online ? try Self.firstFireTime(s, from: now) : nil
            try s.update(db)
            return s
        }
    }

    /// Removes a schedule; the instances it started stay. False if there was none.
    public func removeSchedule(_ id: Int64) async throws -> Bool {
        try await transaction("removing schedule \(id)") { db in try ScheduleRecord.deleteOne(db, key: id) }
    }

    /// The first fire time at or after `from`, within the schedule's start and end.
    static func firstFireTime(_ s: ScheduleRecord, from: Double) throws -> Double? {
        try s.calendar().first(atOrAfter: from)
    }

    /// Named, so that a test can read their plans (each by the index `schedule_due`).
    static let dueSchedulesSQL = "SELECT id FROM schedule WHERE state = 'ONLINE' AND next_fire_time <= ? ORDER BY next_fire_time, id"
    static let soonestScheduleSQL = "SELECT MIN(next_fire_time) FROM schedule WHERE state = 'ONLINE' AND next_fire_time > ?"

    /// ONLINE schedules whose next fire time has come, and the soonest fire time of the others
    /// (so that a master sleeps until then).
    public func dueSchedules(now: Double) async throws -> (due: [Int64], soonest: Double?) {
        try await read("reading due schedules") { db in
            let due = try Int64.fetchAll(db, sql: Self.dueSchedulesSQL, arguments: [now])
            let soonest = try Double.fetchOne(db, sql: Self.soonestScheduleSQL, arguments: [now])
            return (due, soonest)
        }
    }

    /// Fires what is due of schedule `id`: each due fire time starts one instance (the latest
    /// version of the workflow, a START command), and the schedule's next fire time moves past
    /// them, all in one transaction. The transaction reads the next fire time afresh and moves it
    /// only from that value (a compare-and-set), and the unique (schedule, fire time) key stops
    /// any second instance: however many masters see a fire time due, one instance starts.
    ///
    /// A fire time later than `misfireThreshold` seconds is missed (no master ran then); the
    /// schedule's catch-up policy says which missed times run: NONE none, LAST the latest, ALL
    /// each (marked `caught_up`).
    /// `seenAt`: when the master saw the schedule due (default `now`). A fire time is judged
    /// missed against it, so a master busy firing many schedules at once misses none of them.
    public func fire(schedule id: Int64, now: Double, seenAt: Double? = nil, misfireThreshold: Double) async throws -> ScheduleFiring {
        let round = try await fire(schedules: [id], now: now, seenAt: seenAt, misfireThreshold: misfireThreshold)
        if let refusal = round.refused[id] { throw ControlRefusal(description: refusal, exitStatus: .dataError) }
        return round.firings[0]
    }

    /// What firing several schedules did; `refused`: those that cannot fire (a row written past
    /// ds-schedule's checks), with why.
    public struct FiringRound: Sendable {
        public var firings: [ScheduleFiring] = []
        public var refused: [Int64: String] = [:]
    }

    /// Fires several due schedules in one transaction (each as `fire(schedule:)` does): masters
    /// that wake together for many schedules due at one second write once, not once per schedule.
    public func fire(schedules ids: [Int64], now: Double, seenAt: Double? = nil, misfireThreshold: Double) async throws -> FiringRound {
        // Isolation: each schedule's next fire time moves by compare-and-set (a conditional UPDATE
        // checked by its row count) and the unique (schedule, fire time) index refuses a second
        // instance; SERIALIZABLE (PostgreSQL) besides.
        try await transaction("firing \(ids.count) schedules") { db in
            var round = FiringRound()
            for id in ids {
                do {
                    round.firings.append(try Self.fireOne(id, now: now, seenAt: seenAt, misfireThreshold: misfireThreshold, db))
                } catch let refusal as ControlRefusal {
                    // Refused before it wrote anything: the others fire.
                    round.refused[id] = refusal.description
                }
            }
            return round
        }
    }

    static func fireOne(_ id: Int64, now: Double, seenAt: Double?, misfireThreshold: Double, _ db: SQLConnection) throws -> ScheduleFiring {
        var result = ScheduleFiring(scheduleID: id)
        guard var s = try ScheduleRecord.fetchOne(db, key: id), s.state == ScheduleRecord.online,
              let first = s.nextFireTime, first <= now else { return result }
        let calendar = try s.calendar()
        let next = calendar.next(after:)
        let cutoff = min(now, seenAt ?? now) - misfireThreshold
        var times: [(Double, Bool)] = []
        var cursor: Double? = first
        if first < cutoff {
            // The first fire time at or after the cutoff: where the times on time begin.
            let onTime = calendar.first(atOrAfter: cutoff)
            switch s.catchup {
            case .all:
                while let t = cursor, t < cutoff, times.count < Self.maxFiresPerTransaction {
                    times.append((t, true))
                    cursor = next(t)
                }
            case .last:
                let latest = calendar.latest(before: cutoff, notBefore: first)
                if latest > first { result.skipped = (first, latest) }
                times.append((latest, true))
                cursor = onTime
            case .none:
                result.skipped = (first, onTime)
                cursor = onTime
            }
        }
        while let t = cursor, t <= now, times.count < Self.maxFiresPerTransaction {
            times.append((t, false))
            cursor = next(t)
        }
        result.moreDue = cursor.map { $0 <= now } ?? false
        guard let definition = try Self.latestDefinition(named: s.workflow, db) else {
            throw ControlRefusal(description: "schedule \(id): no stored workflow named \(Limits.quoted(s.workflow))", exitStatus: .dataError)
        }
        let parsedDefinition = try? WorkflowDefinition.fromStored(definition.json)
        for (time, late) in times {
            let taken = try db.row(sql: "SELECT 1 FROM workflow_instance WHERE schedule_id = ? AND schedule_time = ?", arguments: [id, time])
            guard taken == nil else { continue }
            var instance = Self.newInstance(definition, parsedDefinition, priority: s.priority, paramsJson: s.paramsJson, now: now)
            (instance.scheduleId, instance.scheduleTime, instance.timeZone) = (id, time, s.timeZone)
            instance.caughtUp = late ? true : nil
            try Self.insertStart(&instance, db)
            result.fired.append((instance.id!, time, late))
        }
        // The compare-and-set: from the value read in this transaction, or not at all.
        s.lastFireTime = times.last?.0 ?? s.lastFireTime
        let moved = try db.execute(sql: "UPDATE schedule SET next_fire_time = ?, last_fire_time = ? WHERE id = ? AND next_fire_time = ?",
                                   arguments: [cursor, s.lastFireTime, id, first])
        guard moved == 1 else { throw StoreError.busy("firing schedule \(id): its next fire time moved") }
        return result
    }

    /// A new SUBMITTED instance of a stored definition (its latest version when fired).
    static func newInstance(_ stored: WorkflowDefinitionRecord, _ definition: WorkflowDefinition?, priority: Priority?,
                            paramsJson: String, now: Double) -> WorkflowInstanceRecord {
        var instance = WorkflowInstanceRecord(
            id: nil, definitionId: stored.id!, name: stored.name, version: stored.version, state: .submitted,
            priority: priority ?? definition?.priority ?? .medium, paramsJson: paramsJson, host: nil, masterSession: nil, submitTime: now)
        instance.execution = definition?.execution
        return instance
    }

    /// Inserts an instance and its START command.
    static func insertStart(_ instance: inout WorkflowInstanceRecord, _ db: SQLConnection) throws {
        try instance.insert(db)
        var command = CommandRecord(id: nil, type: "START", workflowInstanceId: instance.id!,
                                    priorityRank: instance.priority.rank, submitTime: instance.submitTime)
        try command.insert(db)
    }

    /// Stores a backfill: one instance per business date (`times`: the schedule time each stands
    /// for, in date order), each with a START command. Masters start at most `parallel` of them
    /// at once, oldest date first.
    public func backfill(_ record: BackfillRecord, times: [Double], priority: Priority?, params: [String: String],
                         now: Double) async throws -> (BackfillRecord, [Int64]) {
        let paramsJSON = String(decoding: try JSONEncoder.sorted.encode(params), as: UTF8.self)
        return try await transaction("storing a backfill of '\(record.workflow)'") { db in
            guard let definition = try Self.latestDefinition(named: record.workflow, db) else {
                throw ControlRefusal(description: "no stored workflow named \(Limits.quoted(record.workflow)); store it first: ds-submit --no-start FILE",
                                      exitStatus: .dataError)
            }
            let parsedDefinition = try? WorkflowDefinition.fromStored(definition.json)
            var backfill = record
            try backfill.insert(db)
            var ids: [Int64] = []
            for time in times {
                var instance = Self.newInstance(definition, parsedDefinition, priority: priority, paramsJson: paramsJSON, now: now)
                (instance.backfillId, instance.scheduleTime, instance.timeZone) = (backfill.id, time, record.timeZone)
                try Self.insertStart(&instance, db)
                ids.append(instance.id!)
            }
            return (backfill, ids)
        }
    }

    /// Instances of a schedule or of a backfill, oldest fire time first; only the `latest` ones if given.
    public func instances(schedule: Int64? = nil, backfill: Int64? = nil, latest: Int? = nil) async throws -> [WorkflowInstanceRecord] {
        try await read("reading scheduled instances") { db in
            var conditions = ["1 = 1"]
            var arguments: SQLArguments = []
            if let schedule { conditions.append("schedule_id = ?"); arguments += [schedule] }
            if let backfill { conditions.append("backfill_id = ?"); arguments += [backfill] }
            var limit = ""
            if let latest { limit = " LIMIT ?"; arguments += [latest] }
            // NULLs last, as SQLite orders them in a descending order (PostgreSQL puts them first).
            return try WorkflowInstanceRecord.fetchAll(db, sql: """
                SELECT * FROM workflow_instance WHERE \(conditions.joined(separator: " AND "))
                ORDER BY schedule_time IS NULL, schedule_time DESC, id DESC\(limit)
                """, arguments: arguments).reversed()
        }
    }
}
