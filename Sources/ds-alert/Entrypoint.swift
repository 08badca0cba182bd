import ArgumentParser
import Foundation
import Shared

@main
struct DSAlertCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ds-alert",
        abstract: "List, show and acknowledge the alerts masters recorded (timeouts, workflow ends, servers that left).",
        discussion: """
            Masters record one alert per event in the database (--db / DS_DB), whether or not they deliver \
            it with --alert-command. Acknowledging one records who did it and when, and nothing else: its \
            delivery goes on as before. Acknowledge what a list selects with \
            'ds-alert list --unacked --state FAILED -q | xargs -r ds-alert ack'.

            """ + exitStatusHelp,
        version: dsVersion,
        subcommands: [List.self, Show.self, Ack.self])

    func run() async { Tool.missingSubcommand("ds-alert", help: Self.helpMessage()) }
}

/// Refuses an alert id below 1, naming it (exit 64).
func checkAlertIDs(_ ids: [Int64]) throws {
    if let bad = ids.first(where: { $0 < 1 }) { throw ValidationError("an alert id is a whole number from 1, not \(bad)") }
}

extension DSAlertCommand {
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List alerts, newest first: kind, state, deliveries, who acknowledged it, title.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only alerts in this state (\(AlertRecord.states.joined(separator: ", "))).")
        var state: String?
        @Option(parsing: .unconditional, help: ArgumentHelp("Only alerts about this workflow instance.", valueName: "id"))
        var instance: Int64?
        @Option(help: ArgumentHelp("Only alerts about instances of this workflow.", valueName: "name"))
        var workflow: String?
        @Flag(help: "Only alerts no one has acknowledged.")
        var unacked = false
        @Option(parsing: .unconditional, help: "At most this many, newest first (0: all); a list cut here says so on stderr.")
        var limit = 100
        @Flag(help: "One JSON array of alert objects (keys in ds-alert(1)).")
        var json = false
        @OptionGroup var output: ListOutput

        func validate() throws {
            try ListOutput.check(quiet: output.quiet, json: json, limit: limit)
            if let state, !AlertRecord.states.contains(state) {
                throw ValidationError("--state \(Limits.quoted(state)) is not one of \(AlertRecord.states.joined(separator: ", ")) (upper case, as every table prints them)")
            }
            if let instance, instance < 1 { throw ValidationError("--instance \(instance) is not an instance id: give a whole number from 1") }
            if let workflow, let problem = Limits.nameProblem(workflow) {
                throw ValidationError("--workflow \(Limits.quoted(workflow)) \(problem)")
            }
        }

        func run() async {
            await Tool.run("ds-alert") {
                var query = AlertQuery()
                (query.state, query.instance, query.workflow, query.unacked) = (state, instance, workflow, unacked)
                return try await AlertTool.list(query, limit: limit, json: json, quiet: output.quiet, configuration: try global.resolve())
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Everything about one alert: what it is about, its deliveries and their last error, its acknowledgement.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: ArgumentHelp("The alert's id (ds-alert list).", valueName: "id"))
        var id: Int64
        @Flag(help: "One JSON object (keys in ds-alert(1)).")
        var json = false

        func validate() throws { try checkAlertIDs([id]) }

        func run() async {
            await Tool.run("ds-alert") { try await AlertTool.show(id, json: json, configuration: try global.resolve()) }
        }
    }

    struct Ack: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Acknowledge alerts: records who and when; again changes nothing. An unknown id: nothing is written.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: ArgumentHelp("The alerts' ids (ds-alert list -q).", valueName: "id"))
        var ids: [Int64]
        @Option(help: ArgumentHelp("Who acknowledges (default: the user running ds-alert).", valueName: "name"))
        var by: String?
        @Flag(help: "One JSON array of the alerts, as acknowledged (keys in ds-alert(1)).")
        var json = false

        func validate() throws {
            try checkAlertIDs(ids)
            if let by, let problem = AlertTool.acknowledgerProblem(by) { throw ValidationError("--by \(Limits.quoted(by)) \(problem)") }
        }

        func run() async {
            await Tool.run("ds-alert") {
                try await AlertTool.ack(ids, by: by ?? AlertTool.defaultAcknowledger(), json: json, configuration: try global.resolve())
            }
        }
    }
}
