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
        subcommands: [Add.self, List.self, Show.self, Online.self, Offline.self, Remove.self, Next.self, Check.self, Backfill.self,
                      Backfills.self, Cancel.self])

    func run() async { Tool.missingSubcommand("ds-schedule", help: Self.helpMessage()) }
}

extension ScheduleCommand {
    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Schedule a stored workflow on a cron expression; prints the schedule id.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var workflow: WorkflowNameArgument
        @Option(help: "Cron expression: Quartz (6 or 7 fields, from seconds) or classic 5-field.")
        var cron: String
        @OptionGroup var run: ScheduleRunOptions
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
                let stored = try await ScheduleTool.add(global, workflow: workflow.workflow, cron: cron, run: self.run, start: start, end: end,
                                                        catchup: CatchUp(rawValue: catchup)!, offline: offline)
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
        @OptionGroup var output: ListOutput

        func validate() throws { try ListOutput.check(quiet: output.quiet, json: json, limit: nil) }

        func run() async {
            await Tool.run("ds-schedule") {
                let schedules = try await ScheduleTool.schedules(global)
                if json || output.quiet {
                    for v in schedules { print(output.quiet ? String(v.id) : WireJSON.string(v)) }
                } else {
                    print(ScheduleTool.table(schedules), terminator: "")
                }
                return .success
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a schedule and the instances it started (newest last; --limit of them).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var schedule: ScheduleIDArgument
        @Option(parsing: .unconditional, help: "Most instances to list, the latest fire times (0: all); a list cut here says so on stderr.")
        var limit: Int = 20
        @Flag(help: "JSON: the schedule, then one line per instance.")
        var json = false
        @OptionGroup var output: ListOutput

        func validate() throws { try ListOutput.check(quiet: output.quiet, json: json, limit: limit) }

        func run() async {
            await Tool.run("ds-schedule") {
                let (v, instances) = try await ScheduleTool.show(global, schedule.id, latest: limit)
                if output.quiet {
                    for i in instances { print(i.instanceId) }
                    return .success
                }
                if json {
                    print(WireJSON.string(v))
                    for i in instances { print(WireJSON.string(i)) }
                    return .success
                }
                print(ScheduleTool.table([v]), terminator: "")
                print("params: \(v.params.isEmpty ? "-" : TablePrinter.pairs(v.params))")
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
        @OptionGroup var schedule: ScheduleIDArgument
        @Flag(help: "Print the schedule as JSON (snake_case).")
        var json = false

        func run() async { await setState(global, schedule.id, online: true, json: json) }
    }

    struct Offline: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Take a schedule offline: it fires no more until put online.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var schedule: ScheduleIDArgument
        @Flag(help: "Print the schedule as JSON (snake_case).")
        var json = false

        func run() async { await setState(global, schedule.id, online: false, json: json) }
    }

    static func setState(_ global: GlobalOptions, _ id: Int64, online: Bool, json: Bool) async -> Never {
        await Tool.run("ds-schedule") {
            let s = try await ScheduleTool.setState(global, id, online: online)
            if json { print(WireJSON.string(ScheduleView(s))) }
            return .success
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a schedule. The instances it started stay.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var schedule: ScheduleIDArgument

        func run() async {
            await Tool.run("ds-schedule") {
                try await ScheduleTool.remove(global, schedule.id)
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
                for t in try await ScheduleTool.next(global, id: id, cron: cron, tz: tz, from: from, count: n) {
                    print(json ? WireJSON.string(t) : t.fire)
                }
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
                try ScheduleTool.check(cron: cron, tz: tz) { view in
                    if json {
                        print(WireJSON.string(view))
                    } else {
                        print("\(view.cron)\tnext: \(view.nextFire ?? "none up to 2099")")
                    }
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
                date at a time, oldest first; --parallel N runs up to N at once. Prints the instance ids, one per line; \
                the backfill's id comes first, on standard error ('ds-schedule: backfill ID: ...'): see ds-schedule \
                backfills, and ds-schedule cancel ID.
                """)
        @OptionGroup var global: GlobalOptions
        @OptionGroup var workflow: WorkflowNameArgument
        @Option(help: "First business date, yyyy-MM-dd.")
        var from: String
        @Option(help: "Last business date, yyyy-MM-dd (inclusive).")
        var to: String
        @Option(help: "Most dates running at once.")
        var parallel: Int = 1
        @OptionGroup var run: ScheduleRunOptions
        @Flag(help: "One JSON object per instance: backfill_id, instance_id, business_date, schedule_time.")
        var json = false

        func validate() throws {
            guard (1...1000).contains(parallel) else { throw ValidationError("--parallel must be from 1 to 1000, not \(parallel)") }
        }

        func run() async {
            await Tool.run("ds-schedule") {
                let instances = try await ScheduleTool.backfill(global, workflow: workflow.workflow, from: from, to: to, parallel: parallel, run: self.run)
                if let first = instances.first, let last = instances.last {
                    Tool.warn("ds-schedule", "backfill \(first.backfillId): \(instances.count) dates of \(Limits.quoted(workflow.workflow)) from \(first.businessDate) to \(last.businessDate) (ds-schedule cancel \(first.backfillId) stops it)")
                }
                for i in instances { print(json ? WireJSON.string(i) : String(i.instanceId)) }
                return .success
            }
        }
    }

    struct Backfills: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List backfills: workflow, range of dates, state, and how many dates are done, running and waiting.")
        @OptionGroup var global: GlobalOptions
        @Flag(help: "One JSON object per line (snake_case; created_at and cancelled_at RFC 3339 UTC).")
        var json = false
        @OptionGroup var output: ListOutput

        func validate() throws { try ListOutput.check(quiet: output.quiet, json: json, limit: nil) }

        func run() async {
            await Tool.run("ds-schedule") {
                let backfills = try await ScheduleTool.backfills(global)
                if json || output.quiet {
                    for b in backfills { print(output.quiet ? String(b.id) : WireJSON.string(b)) }
                } else {
                    print(ScheduleTool.backfillTable(backfills), terminator: "")
                }
                return .success
            }
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cancel a backfill: stop its running dates (as ds-instance stop does) and drop its waiting ones.",
            discussion: """
                In one transaction: a date that waits ends STOP and never starts; one that runs is stopped by its \
                master, which kills its tasks; one that ended stays as it is. Cancelling again is harmless (exit 0). \
                An unknown id exits 65.
                """)
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Backfill id (printed on standard error by ds-schedule backfill; ds-schedule backfills).")
        var id: Int64
        @Flag(help: "Print what was done as JSON: backfill_id, stopping, dropped, ended, cancelled_at, already_cancelled.")
        var json = false

        func validate() throws {
            guard id > 0 else { throw ValidationError("a backfill id is a whole number from 1, not \(id)") }
        }

        func run() async {
            await Tool.run("ds-schedule") {
                let view = try await ScheduleTool.cancel(global, backfill: id)
                print(json ? WireJSON.string(view) : view.sentence)
                return .success
            }
        }
    }
}
