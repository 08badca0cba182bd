import ArgumentParser
import Foundation
import Shared

@main
struct ScheduleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ds-schedule",
        abstract: "Cron schedules of stored workflows, and backfill runs over past business dates.",
        discussion: """
            Masters fire due schedules: each fire time starts one instance of the workflow's latest version, \
            however many masters run, and any master left running goes on firing. Its system.biz.date and the \
            other built-ins come from the fire time in the schedule's zone. Store a workflow without running it \
            with ds-submit --no-start FILE. Cron: Quartz (sec min hour day-of-month month day-of-week [year]) or \
            classic 5-field; check an expression with 'ds-schedule next --cron EXPR -n 5'. A malformed expression \
            exits 65 and names the field.

            """ + exitStatusHelp,
        version: dsVersion,
        subcommands: [Add.self, List.self, Show.self, Online.self, Offline.self, Remove.self, Next.self, Check.self, Backfill.self])
}

/// The options a schedule and a backfill share.
struct RunOptions: ParsableArguments {
    @Option(help: "Time zone of the fire times (IANA name, e.g. Europe/Berlin; default: the local zone).")
    var tz: String?
    @Option(help: "Workflow priority of the instances: HIGHEST, HIGH, MEDIUM, LOW or LOWEST (default: the workflow's).")
    var priority: String?
    @Option(name: .customLong("param"), help: "Override a parameter of every instance, k=v; repeatable.")
    var params: [String] = []

    func validate() throws {
        if let priority, Priority(rawValue: priority) == nil {
            throw ValidationError("--priority '\(priority)' is not one of \(Priority.names)")
        }
        var seen: Set<String> = []
        for p in params {
            guard let (name, value) = Submitter.parseParam(p) else { throw ValidationError("--param '\(p)' is not of the form name=value") }
            guard seen.insert(name).inserted else { throw ValidationError("--param '\(name)' is given twice") }
            if let why = Limits.keyProblem(name) { throw ValidationError("--param name \(Limits.quoted(name)) \(why)") }
            if let why = Limits.valueProblem(value) { throw ValidationError("--param value of \(Limits.quoted(name)) \(why)") }
        }
        guard params.count <= Limits.maxEntries else { throw ValidationError("\(params.count) --param; the limit is \(Limits.maxEntries)") }
    }

    var overrides: [String: String] {
        Dictionary(uniqueKeysWithValues: params.map { Submitter.parseParam($0)! })
    }
}

struct WorkflowName: ParsableArguments {
    @Argument(help: "The name of a stored workflow (ds-submit --no-start FILE stores one).")
    var workflow: String

    func validate() throws {
        if let why = Limits.nameProblem(workflow) { throw ValidationError("workflow name \(Limits.quoted(workflow)) \(why)") }
    }
}

struct ScheduleID: ParsableArguments {
    @Argument(help: "Schedule id (ds-schedule list).")
    var id: Int64

    func validate() throws {
        guard id > 0 else { throw ValidationError("a schedule id is a whole number from 1, not \(id)") }
    }
}

/// Opens the database the masters use; a missing one is a mistyped --db / DS_DB.
func openStore(_ global: GlobalOptions) throws -> Store {
    try Store(path: try global.resolve().databasePath, create: false)
}

func notFound(_ id: Int64) -> ControlRefusal {
    ControlRefusal(description: "no schedule \(id); see ds-schedule list", exitStatus: .dataError)
}

func printTable(_ schedules: [ScheduleRecord]) {
    var printer = TablePrinter(columns: ["ID", "WORKFLOW", "CRON", "TZ", "STATE", "CATCHUP", "NEXT_FIRE", "LAST_FIRE"])
    for s in schedules {
        let v = ScheduleView(s)
        printer.add([String(v.id), v.workflow, v.cron, v.timeZone, v.state, v.catchup.rawValue, v.nextFire ?? "-", v.lastFire ?? "-"])
    }
    print(printer.render(), terminator: "")
}

extension ScheduleCommand {
    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Schedule a stored workflow on a cron expression; prints the schedule id.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var workflow: WorkflowName
        @Option(help: "Cron expression: Quartz (6 or 7 fields, from seconds) or classic 5-field.")
        var cron: String
        @OptionGroup var run: RunOptions
        @Option(help: "No fire time before this (a date or time, in --tz when it has no offset).")
        var start: String?
        @Option(help: "No fire time after this.")
        var end: String?
        @Option(help: "Fire times missed while no master ran: none (skip them), last (run the latest), all (run each).")
        var catchup: String = "none"
        @Flag(help: "Store it OFFLINE: it fires once put online (ds-schedule online ID).")
        var offline = false
        @Flag(help: "Print the schedule as JSON (snake_case).")
        var json = false

        func validate() throws {
            guard CatchUp(rawValue: catchup) != nil else { throw ValidationError("--catchup '\(catchup)' is not one of none, last, all") }
        }

        func run() async {
            await Tool.run("ds-schedule") {
                let (zone, zoneName) = try ScheduleTool.zone(self.run.tz)
                let cron = try ScheduleTool.cron(self.cron)
                let start = try self.start.map { try ScheduleTool.instant($0, flag: "--start", zone: zone) }
                let end = try self.end.map { try ScheduleTool.instant($0, flag: "--end", zone: zone) }
                if let start, let end, end < start {
                    throw ControlRefusal(description: "--end is before --start: the schedule would never fire", exitStatus: .usage)
                }
                let now = ProcessStats.now()
                guard FireCalendar(cron, zone: zone, start: start, end: end).first(atOrAfter: now) != nil else {
                    throw ControlRefusal(description: "--cron \(Limits.quoted(self.cron)) has no fire time \(end == nil ? "from now on (up to 2099)" : "between now and --end")",
                                          exitStatus: .dataError)
                }
                let store = try openStore(global)
                let params = String(decoding: try JSONEncoder.sorted.encode(self.run.overrides), as: UTF8.self)
                let record = ScheduleRecord(id: nil, workflow: workflow.workflow, cron: cron.text, timeZone: zoneName,
                                            startTime: start, endTime: end, priority: self.run.priority.flatMap(Priority.init(rawValue:)),
                                            paramsJson: params, catchup: CatchUp(rawValue: catchup)!,
                                            state: offline ? ScheduleRecord.offline : ScheduleRecord.online, nextFireTime: nil,
                                            lastFireTime: nil, createdAt: now)
                let stored = try await store.addSchedule(record, now: now)
                print(json ? WireJSON.string(ScheduleView(stored)) : String(stored.id!))
                return .success
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List schedules: cron, zone, state, next and last fire time.")
        @OptionGroup var global: GlobalOptions
        @Flag(help: "One JSON object per line (snake_case).")
        var json = false

        func run() async {
            await Tool.run("ds-schedule") {
                let schedules = try await openStore(global).schedules()
                if json {
                    for s in schedules { print(WireJSON.string(ScheduleView(s))) }
                } else {
                    printTable(schedules)
                }
                return .success
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a schedule and the instances it started (newest last; --limit of them).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var schedule: ScheduleID
        @Option(help: "Most instances to list (the latest fire times).")
        var limit: Int = 20
        @Flag(help: "JSON: the schedule, then one line per instance.")
        var json = false

        func validate() throws {
            guard limit >= 0 else { throw ValidationError("--limit must be 0 or more") }
        }

        func run() async {
            await Tool.run("ds-schedule") {
                let store = try openStore(global)
                guard let s = try await store.schedule(schedule.id) else { throw notFound(schedule.id) }
                let instances = try await store.instances(schedule: schedule.id, latest: limit).map(ScheduledInstanceView.init)
                if json {
                    print(WireJSON.string(ScheduleView(s)))
                    for i in instances { print(WireJSON.string(i)) }
                    return .success
                }
                printTable([s])
                let v = ScheduleView(s)
                print("params: \(v.params.isEmpty ? "-" : v.params.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))")
                print("priority: \(v.priority?.rawValue ?? "the workflow's"); start: \(v.start ?? "-"); end: \(v.end ?? "-")")
                var printer = TablePrinter(columns: ["INSTANCE", "FIRE_TIME", "BIZ_DATE", "STATE", "LATE"])
                for i in instances {
                    printer.add([String(i.instanceId), i.scheduleFire ?? "-", i.bizDate ?? "-", i.state.rawValue,
                                 (i.late.map { DurationText.format($0) } ?? "-") + (i.caughtUp ? " (caught up)" : "")])
                }
                print(printer.render(), terminator: "")
                return .success
            }
        }
    }

    struct Online: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Put a schedule online: it fires from its next fire time after now (what fell due while offline is not run).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var schedule: ScheduleID
        @Flag(help: "Print the schedule as JSON (snake_case).")
        var json = false

        func run() async { await setState(global, schedule.id, online: true, json: json) }
    }

    struct Offline: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Take a schedule offline: it fires no more until put online.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var schedule: ScheduleID
        @Flag(help: "Print the schedule as JSON (snake_case).")
        var json = false

        func run() async { await setState(global, schedule.id, online: false, json: json) }
    }

    static func setState(_ global: GlobalOptions, _ id: Int64, online: Bool, json: Bool) async -> Never {
        await Tool.run("ds-schedule") {
            guard let s = try await openStore(global).setSchedule(id, online: online, now: ProcessStats.now()) else { throw notFound(id) }
            if online, s.nextFireTime == nil { Tool.warn("ds-schedule", "schedule \(id) is online but has no fire time left (past its --end)") }
            if json { print(WireJSON.string(ScheduleView(s))) }
            return .success
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a schedule. The instances it started stay.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var schedule: ScheduleID

        func run() async {
            await Tool.run("ds-schedule") {
                guard try await openStore(global).removeSchedule(schedule.id) else { throw notFound(schedule.id) }
                return .success
            }
        }
    }

    struct Next: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The next fire times of a stored schedule (ID), or of an expression (--cron) from any instant.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Schedule id; or give --cron instead.")
        var id: Int64?
        @Option(help: "A cron expression to try, instead of a stored schedule.")
        var cron: String?
        @Option(help: "With --cron: time zone (default: the local zone).")
        var tz: String?
        @Option(help: "List fire times after this instant (default: now).")
        var from: String?
        @Option(name: .short, help: "How many fire times.")
        var n: Int = 5
        @Flag(help: "One JSON object per line: fire_time (Unix seconds) and fire (ISO 8601 in the zone).")
        var json = false

        func validate() throws {
            guard (id == nil) != (cron == nil) else { throw ValidationError("give a schedule id or --cron EXPR, one of them") }
            if id != nil && tz != nil { throw ValidationError("--tz goes with --cron; a stored schedule has its own zone") }
            guard (1...ScheduleTool.maxListedFireTimes).contains(n) else {
                throw ValidationError("-n must be from 1 to \(ScheduleTool.maxListedFireTimes), not \(n)")
            }
            if let id, id <= 0 { throw ValidationError("a schedule id is a whole number from 1, not \(id)") }
        }

        func run() async {
            await Tool.run("ds-schedule") {
                let calendar: FireCalendar
                if let id {
                    guard let s = try await openStore(global).schedule(id) else { throw notFound(id) }
                    calendar = try s.calendar()
                } else {
                    calendar = FireCalendar(try ScheduleTool.cron(cron!), zone: try ScheduleTool.zone(tz).zone)
                }
                let zone = calendar.zone, end = calendar.end
                let from = try self.from.map { try ScheduleTool.instant($0, flag: "--from", zone: zone) } ?? ProcessStats.now()
                let times = calendar.times(after: from, count: n)
                for t in times {
                    if json {
                        print(WireJSON.string(FireTimeView(fireTime: t, fire: TimeText.iso(t, in: zone))))
                    } else {
                        print(TimeText.iso(t, in: zone))
                    }
                }
                if times.isEmpty { Tool.warn("ds-schedule", "no fire time\(end == nil ? " up to 2099" : " before the schedule's end")") }
                return .success
            }
        }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a cron expression: exit 0 and print it with its next fire time, or exit 65 naming the field at fault.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "The cron expression.")
        var cron: String
        @Option(help: "Time zone (default: the local zone).")
        var tz: String?
        @Flag(help: "Print cron, time_zone, next_fire_time and next_fire as JSON.")
        var json = false

        func run() async {
            await Tool.run("ds-schedule") {
                let expression = try ScheduleTool.cron(cron)
                let (zone, zoneName) = try ScheduleTool.zone(tz)
                let next = FireCalendar(expression, zone: zone).next(after: ProcessStats.now())
                if json {
                    print(WireJSON.string(CheckView(cron: expression.text, timeZone: zoneName, nextFireTime: next,
                                                    nextFire: next.map { TimeText.iso($0, in: zone) })))
                } else {
                    print("\(expression.text)\tnext: \(next.map { TimeText.iso($0, in: zone) } ?? "none up to 2099")")
                }
                // Well formed, but a schedule of it would never fire (ds-schedule add refuses it too).
                if next == nil {
                    throw ControlRefusal(description: "--cron \(Limits.quoted(expression.text)) has no fire time from now on (up to 2099)", exitStatus: .dataError)
                }
                return .success
            }
        }
    }

    struct Backfill: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a stored workflow once per business date from --from to --to (DolphinScheduler's complement).",
            discussion: """
                Each instance's system.biz.date is its business date: it runs as a daily schedule at midnight would \
                have run it the next day (schedule time: the start of the next day in --tz). Serial by default: one \
                date at a time, oldest first; --parallel N runs up to N at once. Prints the instance ids, one per line.
                """)
        @OptionGroup var global: GlobalOptions
        @OptionGroup var workflow: WorkflowName
        @Option(help: "First business date, yyyy-MM-dd.")
        var from: String
        @Option(help: "Last business date, yyyy-MM-dd (inclusive).")
        var to: String
        @Option(help: "Most dates running at once.")
        var parallel: Int = 1
        @OptionGroup var run: RunOptions
        @Flag(help: "One JSON object per instance: backfill_id, instance_id, business_date, schedule_time.")
        var json = false

        func validate() throws {
            guard (1...1000).contains(parallel) else { throw ValidationError("--parallel must be from 1 to 1000, not \(parallel)") }
        }

        func run() async {
            await Tool.run("ds-schedule") {
                let (zone, zoneName) = try ScheduleTool.zone(self.run.tz)
                let dates = try ScheduleTool.businessDates(from: from, to: to, zone: zone)
                let store = try openStore(global)
                let record = BackfillRecord(id: nil, workflow: workflow.workflow, fromDate: dates.first!.date, toDate: dates.last!.date,
                                            parallel: parallel, timeZone: zoneName, createdAt: ProcessStats.now())
                let (backfill, ids) = try await store.backfill(record, times: dates.map(\.time), priority: self.run.priority.flatMap(Priority.init(rawValue:)),
                                                               params: self.run.overrides, now: ProcessStats.now())
                for (id, date) in zip(ids, dates) {
                    if json {
                        print(WireJSON.string(BackfillView(backfillId: backfill.id!, instanceId: id, businessDate: date.date, scheduleTime: date.time)))
                    } else {
                        print(id)
                    }
                }
                fflush(nil)
                // Wakes the masters at once; without ZooKeeper they find the dates within seconds anyway.
                let configuration = try global.resolve()
                if let zk = try? await configuration.connectZooKeeper() {
                    defer { zk.close() }
                    try? await Submitter.notifyMasters(zk, configuration.paths, commandID: ids.last ?? 0)
                }
                return .success
            }
        }
    }
}

struct FireTimeView: Encodable {
    var fireTime: Double
    var fire: String
}

struct BackfillView: Encodable {
    var backfillId: Int64
    var instanceId: Int64
    var businessDate: String
    var scheduleTime: Double
}

struct CheckView: Encodable {
    var cron: String
    var timeZone: String
    var nextFireTime: Double?
    var nextFire: String?
}
