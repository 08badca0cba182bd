import ArgumentParser
import Shared

@main
struct MasterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ds-master",
        abstract: "Run a ds master: claim workflow commands, run instances, dispatch tasks to the ZooKeeper queue.",
        discussion: "Stays in the foreground and logs to stderr. SIGTERM or SIGINT stops it gracefully.\n\n" + exitStatusHelp,
        version: dsVersion)

    @OptionGroup var global: GlobalOptions
    @Option(help: "Host name this master registers under (default: the machine's host name).")
    var host: String?
    @Option(help: "Port part of this master's identity host:port; unique per host.")
    var port: Int = 5678
    @Option(name: .customLong("max-workflows"), help: "Most top-level workflow instances this master runs at once.")
    var maxWorkflows: Int = 100
    @Option(name: .customLong("queue-window"), help: "Most items waiting in one group's ZooKeeper queue; more wait in the database.")
    var queueWindow: Int = 1000
    @Option(name: .customLong("dead-server-retention"),
            help: "How long a /dead-servers record of a server whose session is gone is kept (e.g. 1h, 10m, 0s).")
    var deadServerRetention: String = "1h"
    @Option(help: ArgumentHelp("""
        Serve HTTP here: /metrics (Prometheus text) and /healthz. Port 0 takes a free port; the address is \
        published in the master's registry node (env DS_LISTEN; default: no server).
        """, valueName: "host:port"))
    var listen: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    func validate() throws {
        guard (1...65535).contains(port) else { throw ValidationError("--port must be from 1 to 65535") }
        if let host, Failover.serverNameProblem("\(host):\(port)") != nil || host.contains(":") {
            throw ValidationError("--host '\(host)' is not a host name (no '/', ':' or control characters, not empty)")
        }
        guard maxWorkflows >= 1 else { throw ValidationError("--max-workflows must be at least 1") }
        guard queueWindow >= 1 else { throw ValidationError("--queue-window must be at least 1") }
        guard let retention = DurationText.parse(deadServerRetention), retention >= 0, retention <= 30 * 86_400 else {
            throw ValidationError("--dead-server-retention must be a duration from 0s to 30d, such as 1h or 10m")
        }
    }

    func run() async throws {
        do {
            var options = MasterOptions(host: host ?? ProcessStats.hostName(), port: port, maxWorkflows: maxWorkflows)
            options.queueWindow = queueWindow
            options.deadServerRetentionSeconds = DurationText.parse(deadServerRetention) ?? 3600
            try await MasterScheduler.main(configuration: try global.resolve(), options: options,
                                           listen: try ListenAddress.option(listen), logLevel: logLevel)
        } catch {
            Tool.fail("ds-master", error)
        }
    }
}
