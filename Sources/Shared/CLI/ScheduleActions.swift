import ArgumentParser
import Foundation

/// The options a schedule and a backfill share.
public struct ScheduleRunOptions: ParsableArguments, Sendable {
    @Option(help: "Time zone of the fire times (IANA name, e.g. Europe/Berlin; default: the local zone).")
    public var tz: String?
    @Option(help: "Workflow priority of the instances: HIGHEST, HIGH, MEDIUM, LOW or LOWEST (default: the workflow's).")
    public var priority: String?
    @Option(name: .customLong("param"), help: "Override a parameter of every instance, k=v; repeatable.")
    public var params: [String] = []

    public init() {}

    public func validate() throws {
        try Priority.checkFlag(priority)
        var seen: Set<String> = []
        for p in params {
            guard let (name, value) = Submitter.parseParam(p) else { throw ValidationError("--param '\(p)' is not of the form name=value") }
            guard seen.insert(name).inserted else { throw ValidationError("--param '\(name)' is given twice") }
            if let why = Limits.keyProblem(name) { throw ValidationError("--param name \(Limits.quoted(name)) \(why)") }
            if let why = Limits.valueProblem(value) { throw ValidationError("--param value of \(Limits.quoted(name)) \(why)") }
        }
        guard params.count <= Limits.maxEntries else { throw ValidationError("\(params.count) --param; the limit is \(Limits.maxEntries)") }
    }

    var overrides: [String: String] { Dictionary(uniqueKeysWithValues: params.map { Submitter.parseParam($0)! }) }
    var priorityValue: Priority? { priority.flatMap(Priority.init(rawValue:)) }
}

public struct WorkflowNameArgument: ParsableArguments, Sendable {
    @Argument(help: "The name of a stored workflow (ds-submit --no-start FILE stores one).")
    public var workflow: String

    public init() {}

    public func validate() throws {
        if let why = Limits.nameProblem(workflow) { throw ValidationError("workflow name \(Limits.quoted(workflow)) \(why)") }
    }
}

public struct ScheduleIDArgument: ParsableArguments, Sendable {
    @Argument(help: "Schedule id (ds-schedule list).")
    public var id: Int64

    public init() {}

    public func validate() throws {
        guard id > 0 else { throw ValidationError("a schedule id is a whole number from 1, not \(id)") }
    }
}

/// What ds-schedule does once its flags are read: each action checks its input, writes or reads
/// the database, and returns what the tool prints.
extension ScheduleTool {
    /// Opens the database the masters use; a missing one is a mistyped --db / DS_DB.
    static func store(_ global: GlobalOptions) throws -> Store {
        try global.resolve().openStore()
    }

    static func notFound(_ id: Int64) -> ControlRefusal {
        ControlRefusal(description: "no schedule \(id); see ds-schedule list", exitStatus: .dataError)
    }

    /// Schedules as a table: id, workflow, cron, zone, state, catch-up, next and last fire.
    public static func table(_ schedules: [ScheduleView]) -> String {
        var printer = TablePrinter(columns: ["ID", "WORKFLOW", "CRON", "TZ", "STATE", "CATCHUP", "NEXT_FIRE", "LAST_FIRE"])
        for v in schedules {
            printer.add([String(v.id), v.workflow, v.cron, v.timeZone, v.state, v.catchup.rawValue, v.nextFire ?? "-", v.lastFire ?? "-"])
        }
        return printer.render()
    }

    /// Stores a schedule; refuses (nothing written) a cron with no fire time within its bounds.
    public static func add(_ global: GlobalOptions, workflow: String, cron text: String, run: ScheduleRunOptions,
                           start startText: String?, end endText: String?, catchup: CatchUp, offline: Bool) async throws -> ScheduleRecord {
        let (zone, zoneName) = try zone(run.tz)
        let cron = try cron(text)
        let start = try startText.map { try instant($0, flag: "--start", zone: zone) }
        let end = try endText.map { try instant($0, flag: "--end", zone: zone) }
        if let start, let end, end < start {
            throw ControlRefusal(description: "--end is before --start: the schedule would never fire", exitStatus: .usage)
        }
        let now = ProcessStats.now()
        guard FireCalendar(cron, zone: zone, start: start, end: end).first(atOrAfter: now) != nil else {
            throw ControlRefusal(description: "--cron \(Limits.quoted(text)) has no fire time \(end == nil ? "from now on (up to 2099)" : "between now and --end")",
                                  exitStatus: .dataError)
        }
        let store = try store(global)
        let params = String(decoding: try JSONEncoder.sorted.encode(run.overrides), as: UTF8.self)
        let record = ScheduleRecord(id: nil, workflow: workflow, cron: cron.text, timeZone: zoneName, startTime: start, endTime: end,
                                    priority: run.priorityValue, paramsJson: params, catchup: catchup,
                                    state: offline ? ScheduleRecord.offline : ScheduleRecord.online, nextFireTime: nil,
                                    lastFireTime: nil, createdAt: now)
        return try await store.addSchedule(record, now: now)
    }

    /// Every schedule as shown; each one the masters cannot fire is told on stderr.
    public static func schedules(_ global: GlobalOptions) async throws -> [ScheduleView] {
        let views = try await store(global).schedules().map(ScheduleView.init)
        warnUnfirable(views)
        return views
    }

    static func warnUnfirable(_ views: [ScheduleView]) {
        for v in views { if let problem = v.problem { Tool.warn("ds-schedule", problem) } }
    }

    /// A schedule as shown and the instances it started (the `latest` fire times, oldest first;
    /// 0: all). When more exist, stderr says so.
    public static func show(_ global: GlobalOptions, _ id: Int64, latest: Int) async throws -> (ScheduleView, [ScheduledInstanceView]) {
        let store = try store(global)
        guard let s = try await store.schedule(id) else { throw notFound(id) }
        let view = ScheduleView(s)
        warnUnfirable([view])
        // Newest last: a cut drops the oldest.
        let read = try await store.instances(schedule: id, latest: ListOutput.fetchCount(latest))
        let kept = ListOutput.cut(read.reversed(), limit: latest, tool: "ds-schedule", noun: "instances (the latest fire times)")
        return (view, kept.reversed().map(ScheduledInstanceView.init))
    }

    /// Puts a schedule online or offline; warns of an online one with no fire time left.
    public static func setState(_ global: GlobalOptions, _ id: Int64, online: Bool) async throws -> ScheduleRecord {
        guard let s = try await store(global).setSchedule(id, online: online, now: ProcessStats.now()) else { throw notFound(id) }
        if online, s.nextFireTime == nil { Tool.warn("ds-schedule", "schedule \(id) is online but has no fire time left (past its --end)") }
        return s
    }

    public static func remove(_ global: GlobalOptions, _ id: Int64) async throws {
        guard try await store(global).removeSchedule(id) else { throw notFound(id) }
    }

    /// The next `count` fire times of a stored schedule (`id`) or of an expression, after `from`
    /// (default now), in the zone they are shown in; warns when there are none.
    public static func next(_ global: GlobalOptions, id: Int64?, cron: String?, tz: String?, from: String?, count: Int) async throws -> [FireTimeView] {
        let calendar: FireCalendar
        if let id {
            guard let s = try await store(global).schedule(id) else { throw notFound(id) }
            calendar = try s.calendar()
        } else {
            calendar = FireCalendar(try self.cron(cron ?? ""), zone: try zone(tz).zone)
        }
        let zone = calendar.zone
        let after = try from.map { try instant($0, flag: "--from", zone: zone) } ?? ProcessStats.now()
        let times = calendar.times(after: after, count: count)
        if times.isEmpty { Tool.warn("ds-schedule", "no fire time\(calendar.end == nil ? " up to 2099" : " before the schedule's end")") }
        return times.map { FireTimeView(fireTime: $0, fire: TimeText.iso($0, in: zone)) }
    }

    /// A cron expression checked, with its next fire time; a well-formed one that never fires is
    /// refused too (ds-schedule add refuses it), after the view is returned through `shown`.
    public static func check(cron text: String, tz: String?, shown: (CheckView) -> Void) throws {
        let expression = try cron(text)
        let (zone, zoneName) = try zone(tz)
        let next = FireCalendar(expression, zone: zone).next(after: ProcessStats.now())
        shown(CheckView(cron: expression.text, timeZone: zoneName, nextFireTime: next, nextFire: next.map { TimeText.iso($0, in: zone) }))
        if next == nil {
            throw ControlRefusal(description: "--cron \(Limits.quoted(expression.text)) has no fire time from now on (up to 2099)", exitStatus: .dataError)
        }
    }

    /// Stores one instance per business date from `from` to `to` in one transaction, then wakes
    /// the masters (without ZooKeeper they find the dates within seconds anyway).
    public static func backfill(_ global: GlobalOptions, workflow: String, from: String, to: String, parallel: Int,
                                run: ScheduleRunOptions) async throws -> [BackfillView] {
        let (zone, zoneName) = try zone(run.tz)
        let dates = try businessDates(from: from, to: to, zone: zone)
        let record = BackfillRecord(id: nil, workflow: workflow, fromDate: dates.first!.date, toDate: dates.last!.date,
                                    parallel: parallel, timeZone: zoneName, createdAt: ProcessStats.now())
        let (backfill, ids) = try await store(global).backfill(record, times: dates.map(\.time), priority: run.priorityValue,
                                                               params: run.overrides, now: ProcessStats.now())
        let configuration = try global.resolve()
        if let zk = try? await configuration.connectZooKeeper() {
            defer { zk.close() }
            try? await Submitter.notifyMasters(zk, configuration.paths, commandID: ids.last ?? 0)
        }
        return zip(ids, dates).map { BackfillView(backfillId: backfill.id!, instanceId: $0, businessDate: $1.date, scheduleTime: $1.time) }
    }
}

public struct FireTimeView: Encodable, Sendable {
    public var fireTime: Double
    public var fire: String
}

public struct BackfillView: Encodable, Sendable {
    public var backfillId: Int64
    public var instanceId: Int64
    public var businessDate: String
    public var scheduleTime: Double
}

public struct CheckView: Encodable, Sendable {
    public var cron: String
    public var timeZone: String
    public var nextFireTime: Double?
    public var nextFire: String?
}

extension Priority {
    /// A `--priority` flag's value, refused unless it is a name as written in workflow files: upper
    /// case only, in every tool (one rule for the case of names on the command line).
    public static func checkFlag(_ text: String?) throws {
        guard let text, Priority(rawValue: text) == nil else { return }
        throw ValidationError("--priority '\(text)' is not one of \(names) (upper case, as in workflow files)")
    }
}
