import ArgumentParser
import Foundation
import Shared

@main
struct PoolCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ds-pool",
        abstract: "Make, resize, list and remove task pools: named slots shared across workflows.",
        discussion: """
            A task that names a pool ("pool": "db-heavy") waits until the pool has a free slot; it holds the \
            slot from its dispatch to its end. Pools live in the database (--db / DS_DB): masters read them \
            there, so a change takes effect within a second, on every master. A smaller size takes no slot \
            back: tasks that hold one finish. ds-submit refuses a workflow that names a pool that does not exist.

            """ + exitStatusHelp,
        version: dsVersion,
        subcommands: [Set.self, List.self, Remove.self])

    func run() async { Tool.missingSubcommand("ds-pool", help: Self.helpMessage()) }
}

/// A pool name: the rules of a worker group's (1 to 64 letters, digits, '.', '_' and '-').
struct PoolName: ParsableArguments {
    @Argument(help: "Pool name: 1 to 64 letters, digits, '.', '_' and '-'.")
    var name: String

    func validate() throws {
        if let problem = Limits.groupNameProblem(name) { throw ValidationError("pool name \(Limits.quoted(name)) \(problem)") }
    }
}

extension PoolCommand {
    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a pool, or change its number of slots.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var pool: PoolName
        @Argument(help: "Number of slots, 0 to \(Store.maxPoolSlots) (0 holds every task of the pool back).")
        var slots: Int

        func validate() throws {
            guard (0...Store.maxPoolSlots).contains(slots) else {
                throw ValidationError("slots must be a whole number from 0 to \(Store.maxPoolSlots), not \(slots)")
            }
        }

        func run() async {
            await Tool.run("ds-pool") {
                let configuration = try global.resolve()
                let isNew = !configuration.databaseMayExist
                let store = try configuration.openStore(create: true)
                if isNew { Tool.warn("ds-pool", "created a new database \(configuration.databasePath); only masters started with this --db / DS_DB use its pools") }
                try await store.setPool(pool.name, slots: slots, now: ProcessStats.now())
                return .success
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List pools: slots, slots in use, tasks waiting. A name tasks use that is no pool shows SLOTS '-'.")
        @OptionGroup var global: GlobalOptions
        @Flag(help: "One JSON object per line (snake_case).")
        var json = false
        @OptionGroup var output: ListOutput

        func validate() throws { try ListOutput.check(quiet: output.quiet, json: json, limit: nil) }

        func run() async {
            await Tool.run("ds-pool") {
                let store = try global.resolve().openStore()
                let pools = try await store.pools()
                if json || output.quiet {
                    for p in pools { print(output.quiet ? p.name : WireJSON.string(p)) }
                    return .success
                }
                var printer = TablePrinter(columns: ["POOL", "SLOTS", "IN_USE", "WAITING"])
                for p in pools { printer.add([p.name, p.slots.map(String.init) ?? "-", String(p.inUse), String(p.waiting)]) }
                print(printer.render(), terminator: "")
                return .success
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a pool. Its tasks that wait go on waiting until a pool of that name is made again.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var pool: PoolName

        func run() async {
            await Tool.run("ds-pool") {
                let store = try global.resolve().openStore()
                guard try await store.removePool(pool.name) else {
                    throw ControlRefusal(description: "no pool named \(Limits.quoted(pool.name)); see ds-pool list", exitStatus: .dataError)
                }
                return .success
            }
        }
    }
}
