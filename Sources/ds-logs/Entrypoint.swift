import ArgumentParser
import Foundation
import Shared

@main
struct LogsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ds-logs",
        abstract: "Print or follow a task's log, from the worker that ran it.",
        discussion: """
            Finds the worker from the attempt (ds-instance show lists attempt ids) and reads the log from \
            its log server (ds-worker --listen). If the worker is gone, reads the file when it is on this \
            machine; otherwise exits 69 naming the worker that holds it. With -f, exits 0 if the task \
            (or, with --instance, the instance) succeeded and 1 otherwise.

            """ + exitStatusHelp,
        version: dsVersion)

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The task instance (attempt) id, as ds-instance show lists it.")
    var taskInstance: Int64?
    @Option(help: "Every task of this workflow instance, each line prefixed by its task name.")
    var instance: Int64?
    @Flag(name: [.customShort("f"), .long], help: "Follow: print new lines as they come until the task (or instance) ends.")
    var follow = false
    @Option(name: [.customShort("n"), .long], help: "Only the last N lines of each log (then new ones with -f).")
    var lines: Int?
    @Option(name: .customLong("log-dir"), help: ArgumentHelp(
        "The workers' log folder on this machine (their --log-dir; default: $DS_HOME/logs). A log is read from a file only under it, at the path its worker writes; never from another path stored in ZooKeeper or the database.",
        valueName: "dir"))
    var logDir: String?

    func validate() throws {
        switch (taskInstance, instance) {
        case (nil, nil): throw ValidationError("give a task instance id, or --instance ID")
        case (.some, .some): throw ValidationError("give a task instance id or --instance ID, not both")
        default: break
        }
        if let id = taskInstance ?? instance, id < 1 { throw ValidationError("ids are positive numbers") }
        if let lines, !(0...1_000_000_000).contains(lines) { throw ValidationError("-n must be from 0 to 1000000000") }
    }

    func run() async throws {
        await Tool.run("ds-logs") {
            let configuration = try global.resolve()
            let options = LogsTool.Options(follow: follow, lines: lines, logRoot: logDir)
            if let instance { return try await LogsTool.instance(instance, options: options, configuration: configuration) }
            return try await LogsTool.attempt(taskInstance!, options: options, configuration: configuration)
        }
    }
}
