import ArgumentParser
import Foundation
import Shared

@main
struct InstanceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ds-instance",
        abstract: "List, show, wait for and control workflow instances; print stored definitions.",
        discussion: """
            Control verbs are commands in the database: the master that owns the instance (or the one \
            that takes it over if it dies) applies each once. --json gives machine output (lists: one \
            JSON object per line; `definition` always prints JSON). A verb the instance's state forbids \
            exits 1 and changes nothing; a stop or pause asked again while one is under way changes \
            nothing and succeeds.

            """ + exitStatusHelp,
        version: dsVersion,
        subcommands: [List.self, Show.self, Wait.self, Stop.self, Pause.self, Resume.self, Recover.self, Rerun.self, StartFrom.self,
                      Prune.self, Definitions.self, Definition.self])

    func run() async { Tool.missingSubcommand("ds-instance", help: Self.helpMessage()) }
}

/// Runs a subcommand's work with the shared exit handling.
func runReporting(_ body: () async throws -> ExitStatus) async -> Never { await Tool.run("ds-instance", body) }

/// An instance id argument: a positive integer.
struct InstanceID: ParsableArguments {
    @Argument(help: "Workflow instance id (see ds-instance list).")
    var id: Int64

    func validate() throws {
        guard id >= 1 else { throw ValidationError("instance id must be a positive integer, not \(id)") }
    }
}

extension InstanceCommand {
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List instances, newest first.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only instances in this state (\(WorkflowState.allCases.map(\.rawValue).joined(separator: ", "))).")
        var state: String?
        @Option(help: "Only instances of this workflow.")
        var workflow: String?
        @Option(help: "Only instances submitted since: a Unix time, an ISO 8601 date or time, or an age such as 2h or 7d.")
        var since: String?
        @Option(parsing: .unconditional, help: "At most this many, the newest (0: all); a list cut here says so on stderr.")
        var limit: Int = 100
        @Flag(help: "One JSON object per line (snake_case).")
        var json = false
        @OptionGroup var output: ListOutput

        func validate() throws {
            if let state, WorkflowState(rawValue: state) == nil {
                throw ValidationError("--state '\(state)' is not one of \(WorkflowState.allCases.map(\.rawValue).joined(separator: ", ")) (upper case, as every table prints them)")
            }
            try ListOutput.check(quiet: output.quiet, json: json, limit: limit)
            if let since, TimeText.parse(since, now: Date().timeIntervalSince1970) == nil {
                throw ValidationError("--since '\(since)' is not a Unix time, an ISO 8601 date (2026-11-23, 2026-11-23T10:00:00Z) or an age (90m, 2h, 7d)")
            }
        }

        func run() async {
            await runReporting {
                var query = InstanceQuery()
                query.state = state.flatMap { WorkflowState(rawValue: $0) }
                query.workflow = workflow
                query.since = since.flatMap { TimeText.parse($0, now: Date().timeIntervalSince1970) }
                return try await InstanceTool.list(query, limit: limit, json: json, quiet: output.quiet, configuration: try global.resolve())
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show an instance and one row per task attempt; tasks that have not run say what they wait for.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var instance: InstanceID
        @Flag(help: "Print the DAG as Graphviz DOT, coloured by state.")
        var dot = false
        @Flag(help: "One JSON object (snake_case).")
        var json = false

        func validate() throws {
            if dot && json { throw ValidationError("--dot and --json are exclusive") }
        }

        func run() async {
            await runReporting { try await InstanceTool.show(instance.id, json: json, dot: dot, configuration: try global.resolve()) }
        }
    }

    struct Wait: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Wait until an instance ends: exit 0 on SUCCESS, 1 otherwise (as ds-submit --wait).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var instance: InstanceID
        @Flag(help: "Print the final instance and its attempts as JSON.")
        var json = false

        func run() async {
            await runReporting { try await InstanceTool.wait(instance.id, json: json, configuration: try global.resolve()) }
        }
    }

    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Kill the running tasks (their whole process groups) and start nothing new: the instance ends STOP.")
        @OptionGroup var control: ControlOptions
        func run() async { await control.perform(.stop) }
    }

    struct Pause: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Let the running tasks finish and start nothing new: the instance ends PAUSE.")
        @OptionGroup var control: ControlOptions
        func run() async { await control.perform(.pause) }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Continue a PAUSE or STOP instance: successes are kept, every other task runs.")
        @OptionGroup var control: ControlOptions
        func run() async { await control.perform(.resume) }
    }

    struct Recover: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-run the failed and killed tasks of a FAILURE instance and what depends on them, keeping successes.")
        @OptionGroup var control: ControlOptions
        func run() async { await control.perform(.recover) }
    }

    struct Rerun: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run an ended instance again from the start, as its next run (earlier attempts stay).")
        @OptionGroup var control: ControlOptions
        func run() async { await control.perform(.rerun) }
    }

    struct StartFrom: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "start-from",
            abstract: "Run TASK and everything downstream of it again; other successes are kept.")
        @OptionGroup var control: ControlOptions
        @Argument(help: "The task to start from.") var task: String
        func run() async { await control.perform(.startFrom(task)) }
    }

    struct Prune: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove finished instances that ended long ago, with their attempts, commands and alerts.",
            discussion: """
                Only instances that ended for good (SUCCESS, FAILURE, STOP; never a running, waiting or PAUSE one) \
                whose end time is older than --older-than go, in batches of 500 top-level instances per transaction. \
                A sub-workflow instance goes with its top-level instance, and only when its whole tree has ended. \
                Prints each removed instance id on standard output, one per line, and a count on standard error.
                """)
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("older-than"), help: "Instances that ended at least this long ago, such as 30d, 12h or 90m (1s to 100 years).")
        var olderThan: String
        @Option(help: "Only instances in this state: SUCCESS, FAILURE or STOP (repeatable).")
        var state: [String] = []
        @Flag(name: .customLong("dry-run"), help: "Print what would go; change nothing.")
        var dryRun = false

        func validate() throws {
            do { _ = try PrunePolicy.parse(olderThan: olderThan, states: state) } catch { throw ValidationError("\(error)") }
        }

        func run() async {
            await runReporting {
                try await InstanceTool.prune(try PrunePolicy.parse(olderThan: olderThan, states: state), dryRun: dryRun,
                                             configuration: try global.resolve())
            }
        }
    }

    struct Definitions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List stored workflow definitions: names and versions (-q: each name once, or NAME's version numbers).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Only the versions of this workflow.") var name: String?
        @Flag(help: "One JSON object per line.") var json = false
        @OptionGroup var output: ListOutput
        func validate() throws { try ListOutput.check(quiet: output.quiet, json: json, limit: nil) }
        func run() async {
            await runReporting { try await InstanceTool.definitions(name, json: json, quiet: output.quiet, configuration: try global.resolve()) }
        }
    }

    struct Definition: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a stored definition as workflow JSON that ds-submit accepts again (the latest version by default).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Workflow name.") var name: String
        @Option(help: "The version to print (default: the latest).") var version: Int?
        @Flag(help: "Print the DAG as Graphviz DOT instead.") var dot = false
        func validate() throws {
            if let version, version < 1 { throw ValidationError("--version must be at least 1") }
        }
        func run() async {
            await runReporting { try await InstanceTool.definition(name, version: version, dot: dot, configuration: try global.resolve()) }
        }
    }
}

/// What every control verb takes.
struct ControlOptions: ParsableArguments {
    @OptionGroup var global: GlobalOptions
    @OptionGroup var instance: InstanceID
    @Flag(help: "Wait until the instance ends: exit 0 if it ends as the verb intends (STOP for stop, PAUSE for pause, else SUCCESS).")
    var wait = false
    @Flag(help: "Machine-readable output.")
    var json = false

    func perform(_ verb: ControlVerb) async {
        await runReporting { try await InstanceTool.control(instance.id, verb, wait: wait, json: json, configuration: try global.resolve()) }
    }
}
