import ArgumentParser
import Foundation
import Shared

@main
struct FailoverCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ds-failover",
        abstract: "List dead servers and orphaned work; fail a master or worker over now.",
        discussion: """
            --list shows dead servers, instances owned by masters not in the registry, attempts in no queue \
            and on no live worker, and queue items of finished workflows. --master or --worker declares a \
            registered (but hung) server dead: live masters take over its work, and the server fences \
            itself when it wakes.

            """ + exitStatusHelp,
        version: dsVersion)

    @OptionGroup var global: GlobalOptions
    @Flag(help: "List dead servers and orphaned work.")
    var list = false
    @Option(help: "Fail over this master (host:port) now.")
    var master: String?
    @Option(help: "Fail over this worker (host:port) now.")
    var worker: String?
    @Flag(name: .customLong("dry-run"), help: "Print what would move; change nothing.")
    var dryRun = false
    @Flag(help: "Machine-readable output (snake_case JSON).")
    var json = false

    func validate() throws {
        let modes = [list, master != nil, worker != nil].filter { $0 }.count
        guard modes == 1 else { throw ValidationError("give exactly one of --list, --master HOST:PORT, --worker HOST:PORT") }
        if dryRun && list { throw ValidationError("--dry-run goes with --master or --worker") }
        for (flag, server) in [("--master", master), ("--worker", worker)] {
            if let server, let why = ServerIdentity.problem(server) { throw ValidationError("\(flag) '\(server)' \(why)") }
        }
    }

    func run() async throws {
        do {
            let configuration = try global.resolve()
            let zk = try await configuration.connectZooKeeper()
            defer { zk.close() }
            let store = try configuration.openStore()
            if list {
                let report = try await Failover.list(zk: zk, store: store, paths: configuration.paths)
                print(json ? WireJSON.string(report) : FailoverPrinter.human(report), terminator: json ? "\n" : "")
            } else {
                let type = master != nil ? "master" : "worker"
                let moved = try await Failover.force(type: type, server: master ?? worker!, dryRun: dryRun, zk: zk, store: store,
                                                     paths: configuration.paths)
                print(json ? WireJSON.string(moved) : FailoverPrinter.human(moved), terminator: json ? "\n" : "")
            }
        } catch {
            Tool.fail("ds-failover", error)
        }
    }
}
