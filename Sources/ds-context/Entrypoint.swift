import ArgumentParser
import Foundation
import Shared

@main
struct ContextCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ds-context",
        abstract: "Named sets of --zk, --db, --home ... in one file: list them, pick the current one, show what a tool uses.",
        discussion: """
            The file is $XDG_CONFIG_HOME/ds/config (default ~/.config/ds/config), TOML: current = "NAME" and one \
            [contexts.NAME] table per context, with any of zk, zk_root, zk_session_timeout, zk_auth_file, db, \
            db_password_file and home (strings; a leading ~/ in a path is the home folder). Every tool and daemon \
            uses the context --context NAME or DS_CONTEXT names, else the file's current one: a flag beats its \
            environment variable, which beats the context, which beats the default. No file: nothing changes. \
            A malformed file, an unknown key or context, or a file others can read that names credentials \
            (zk_auth_file, db_password_file, a db URL with a password) exits 78 and says what to fix.

            """ + exitStatusHelp,
        version: dsVersion,
        subcommands: [List.self, Use.self, Show.self])

    func run() async { Tool.missingSubcommand("ds-context", help: Self.helpMessage()) }
}

extension ContextCommand {
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the contexts; * marks the one in force.")
        @Option(name: .customLong("context"), help: ArgumentHelp("Mark this context as in force (env DS_CONTEXT).", valueName: "name"))
        var context: String?
        @Flag(help: "One JSON object per context and line (name, current, settings).")
        var json = false

        func run() async { await Tool.run("ds-context") { try ContextTool.list(flag: context, json: json) } }
    }

    struct Use: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make NAME the current context: rewrites only the file's 'current' line, keeping its mode and the rest.")
        @Argument(help: "A context the file defines.")
        var name: String

        func run() async { await Tool.run("ds-context") { try ContextTool.use(name) } }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show each setting a tool would use with these options, and where it comes from (flag, environment, context, default).")
        @OptionGroup var global: GlobalOptions

        func run() async { await Tool.run("ds-context") { try ContextTool.show(global) } }
    }
}
