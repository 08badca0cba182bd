import ArgumentParser
import Foundation
import Shared

@main
struct QueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ds-queue",
        abstract: "Inspect the priority queue (the window in ZooKeeper and the backlog behind it), or push an ad-hoc task.",
        discussion: """
            Keys sort as the dispatch order: workflow priority, workflow instance, task priority, task \
            instance. --json prints one JSON object per line.

            """ + exitStatusHelp,
        version: dsVersion,
        subcommands: [List.self, Stats.self, Peek.self, Watch.self, Push.self, Remove.self])

    func run() async { Tool.missingSubcommand("ds-queue", help: Self.helpMessage()) }
}

/// Runs a subcommand's work with the shared exit handling.
func runReporting(_ body: () async throws -> ExitStatus) async -> Never { await Tool.run("ds-queue", body) }

func checkGroup(_ group: String?) throws {
    if let group, let why = Limits.groupNameProblem(group) {
        throw ValidationError("--group \(Limits.quoted(group)) \(why)")
    }
}

extension QueueCommand {
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the queue in dispatch order: per group, the order in which its workers will claim the items.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only this worker group.") var group: String?
        @Option(parsing: .unconditional, help: "At most this many items (default 0: all); a list cut here says so on stderr.") var limit = 0
        @Flag(help: "One JSON object per line (snake_case).") var json = false
        @OptionGroup var output: ListOutput

        func validate() throws {
            try checkGroup(group)
            try ListOutput.check(quiet: output.quiet, json: json, limit: limit)
        }

        func run() async {
            await runReporting {
                try await QueueTool.list(group: group, limit: limit, json: json, quiet: output.quiet, configuration: try global.resolve())
            }
        }
    }

    struct Peek: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The next item of each group: what its workers claim next.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only this worker group.") var group: String?
        @Flag(help: "One JSON object per line (snake_case).") var json = false
        @OptionGroup var output: ListOutput

        func validate() throws {
            try checkGroup(group)
            try ListOutput.check(quiet: output.quiet, json: json, limit: nil)
        }

        func run() async {
            await runReporting { try await QueueTool.peek(group: group, json: json, quiet: output.quiet, configuration: try global.resolve()) }
        }
    }

    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Depth per group and priority, the oldest item's age, running tasks and free slots per worker, groups with no worker; from ZooKeeper alone.")
        @OptionGroup var global: GlobalOptions
        @Flag(help: "One JSON object (snake_case).") var json = false

        func run() async {
            await runReporting { try await QueueTool.stats(json: json, configuration: try global.resolve()) }
        }
    }

    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print additions, claims and removals as they happen (NDJSON with --json), until interrupted.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only this worker group.") var group: String?
        @Flag(help: "One JSON object per line (snake_case).") var json = false

        func validate() throws { try checkGroup(group) }

        func run() async {
            await runReporting { try await QueueTool.watch(group: group, json: json, configuration: try global.resolve()) }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Take a queued task out of the queue: it ends KILL and its workflow follows its failure strategy.",
            discussion: """
                The owning master removes it, so nothing puts it back. A task a worker already runs is refused: stop its \
                instance with ds-instance stop. With --raw, TARGET is the name of a malformed node (WHERE malformed in \
                ds-queue list), which no master dispatches: it is deleted from ZooKeeper directly.
                """)
        @OptionGroup var global: GlobalOptions
        @Argument(help: "A queue key (as ds-queue list prints it) or a task instance id; with --raw, a node's name.") var target: String
        @Flag(help: "Wait until it is removed: exit 1 if a worker claimed it first.") var wait = false
        @Flag(help: "TARGET is the raw name of a malformed queue node, as ds-queue list shows it: delete that node.") var raw = false
        @Option(help: "With --raw: the group whose queue holds the node (needed when several do).") var group: String?
        @Flag(help: "Machine-readable output.") var json = false

        func validate() throws {
            try checkGroup(group)
            if group != nil && !raw { throw ValidationError("--group goes with --raw; a key or task id names its item alone") }
            if raw && wait { throw ValidationError("--wait goes without --raw: a malformed node is deleted at once") }
        }

        func run() async {
            await runReporting {
                if raw { return try await QueueTool.removeRaw(target, group: group, json: json, configuration: try global.resolve()) }
                return try await QueueTool.remove(target, wait: wait, json: json, configuration: try global.resolve())
            }
        }
    }

    struct Push: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run an ad-hoc SHELL command as a one-task workflow instance; prints its instance and task ids.",
            discussion: "The command comes from --command, or else from standard input. ds-instance, the logs and the result store see it like any other task.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "The shell command (default: read from standard input).") var command: String?
        @Option(help: "Name of its workflow and task.") var name: String = "adhoc"
        @Option(help: "HIGHEST, HIGH, MEDIUM, LOW or LOWEST.") var priority: String = "MEDIUM"
        @Option(help: "Worker group.") var group: String = "default"
        @Option(name: .customLong("env"), help: "An environment variable for the task, NAME=value; repeatable.") var env: [String] = []
        @Flag(help: "Wait until it ends: exit 0 on SUCCESS, 1 otherwise.") var wait = false
        @Flag(help: "Machine-readable output.") var json = false

        func validate() throws {
            try checkGroup(group)
            try Priority.checkFlag(priority)
            var seen: Set<String> = []
            for e in env {
                guard let (k, _) = Submitter.parseParam(e) else { throw ValidationError("--env '\(e)' is not of the form NAME=value") }
                guard seen.insert(k).inserted else { throw ValidationError("--env '\(k)' is given twice") }
            }
        }

        func run() async {
            await runReporting {
                try QueueTool.checkArgumentsAreUTF8()
                var text = command
                if text == nil { text = try QueueTool.readCommandFromStandardInput() }
                let variables = Dictionary(uniqueKeysWithValues: env.map { Submitter.parseParam($0)! })
                return try await QueueTool.push(command: text!, name: name, priority: Priority(rawValue: priority)!, group: group,
                                                env: variables, wait: wait, json: json, configuration: try global.resolve())
            }
        }
    }
}
