import ArgumentParser
import Foundation
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
    @Option(name: .customLong("alert-command"), help: ArgumentHelp("""
        Deliver alerts by running this with /bin/sh -c, the alert as one JSON object on standard input; exit 0 \
        means delivered (env DS_ALERT_COMMAND; default: this master delivers none).
        """, valueName: "command"))
    var alertCommand: String?
    @Option(name: .customLong("alert-retries"), help: "Deliveries tried again after a failed one (1 s, 2 s, 4 s ... apart) before an alert is FAILED.")
    var alertRetries: Int = 3
    @Option(name: .customLong("alert-timeout"), help: "How long an alert command may run before it is killed and the delivery failed.")
    var alertTimeout: String = "30s"
    @Option(name: .customLong("alert-tenant"), help: ArgumentHelp("""
        The OS user alert commands run as (its groups, HOME, in its home folder), with a built environment \
        (default: this master's own user).
        """, valueName: "user"))
    var alertTenant: String?
    @Option(name: .customLong("misfire-threshold"),
            help: "A fire time this late when a master comes to it was missed (no master ran): its schedule's --catchup applies.")
    var misfireThreshold: String = "5s"
    @Option(name: .customLong("prune-older-than"), help: ArgumentHelp("""
        Remove finished instances (SUCCESS, FAILURE, STOP) that ended this long ago, with their attempts, commands \
        and alerts, as ds-instance prune does: soon after the start, then every --prune-every (default: none).
        """, valueName: "duration"))
    var pruneOlderThan: String?
    @Option(name: .customLong("prune-state"), help: "With --prune-older-than: only instances in this state (SUCCESS, FAILURE or STOP; repeatable).")
    var pruneState: [String] = []
    @Option(name: .customLong("prune-every"), help: "With --prune-older-than: how often to prune (jittered by a tenth), from 1s to 7d.")
    var pruneEvery: String = "1h"
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    func validate() throws {
        guard (1...65535).contains(port) else { throw ValidationError("--port must be from 1 to 65535") }
        if let host, let problem = ServerIdentity.problem(host: host, port: port) {
            throw ValidationError("--host \(Limits.quoted(host)) / --port \(port): \(problem)")
        }
        guard maxWorkflows >= 1 else { throw ValidationError("--max-workflows must be at least 1") }
        guard queueWindow >= 1 else { throw ValidationError("--queue-window must be at least 1") }
        guard let retention = DurationText.parse(deadServerRetention), retention >= 0, retention <= 30 * 86_400 else {
            throw ValidationError("--dead-server-retention must be a duration from 0s to 30d, such as 1h or 10m")
        }
        guard (0...100).contains(alertRetries) else { throw ValidationError("--alert-retries must be from 0 to 100") }
        guard let t = DurationText.parse(alertTimeout), t > 0, t <= 3600 else {
            throw ValidationError("--alert-timeout must be a duration from 1ms to 1h, such as 30s")
        }
        // Under a second, a master waking at a fire time would find it missed already.
        guard let m = DurationText.parse(misfireThreshold), m >= 1, m <= 86_400 else {
            throw ValidationError("--misfire-threshold must be a duration from 1s to 1d, such as 5s or 1m")
        }
        if pruneOlderThan == nil && (!pruneState.isEmpty || pruneEvery != "1h") {
            throw ValidationError("--prune-state and --prune-every go with --prune-older-than DURATION, which says what to prune")
        }
        _ = try prunePolicy()
        guard let every = DurationText.parse(pruneEvery), every >= 1, every <= 7 * 86_400 else {
            throw ValidationError("--prune-every must be a duration from 1s to 7d, such as 1h or 30m")
        }
        if let alertTenant, let problem = Limits.tenantProblem(alertTenant) {
            throw ValidationError("--alert-tenant \(Limits.quoted(alertTenant)) \(problem)")
        }
        if let command = resolvedAlertCommand, command.trimmingCharacters(in: .whitespaces).isEmpty || command.contains("\0") {
            throw ValidationError("--alert-command is empty (or holds a NUL byte): give a command, or leave it out to deliver no alerts")
        }
    }

    /// What --prune-older-than and --prune-state select, if given.
    func prunePolicy() throws -> PrunePolicy? {
        guard let pruneOlderThan else { return nil }
        do {
            return try PrunePolicy.parse(olderThan: pruneOlderThan, states: pruneState, flag: "--prune-older-than", stateFlag: "--prune-state")
        } catch {
            throw ValidationError("\(error)")
        }
    }

    /// The flag, else DS_ALERT_COMMAND.
    var resolvedAlertCommand: String? { alertCommand ?? ProcessInfo.processInfo.environment["DS_ALERT_COMMAND"] }

    func run() async throws {
        do {
            var options = MasterOptions(host: try host ?? ServerIdentity.defaultHost(), port: port, maxWorkflows: maxWorkflows)
            options.queueWindow = queueWindow
            options.deadServerRetentionSeconds = DurationText.parse(deadServerRetention) ?? 3600
            options.alertCommand = resolvedAlertCommand
            options.alertRetries = alertRetries
            options.alertTimeoutSeconds = DurationText.parse(alertTimeout) ?? 30
            options.misfireThresholdSeconds = DurationText.parse(misfireThreshold) ?? 5
            options.prune = try prunePolicy()
            options.pruneEverySeconds = DurationText.parse(pruneEvery) ?? 3600
            if let alertTenant {
                guard let user = try TenantUser.lookUp(alertTenant) else {
                    throw InputError.configuration("--alert-tenant \(Limits.quoted(alertTenant)) does not exist on this host; create the user (useradd) or name another")
                }
                options.alertTenant = user
            }
            try await MasterScheduler.main(configuration: try global.resolve(), options: options,
                                           listen: try ListenAddress.option(listen), logLevel: logLevel)
        } catch {
            Tool.fail("ds-master", error)
        }
    }
}
