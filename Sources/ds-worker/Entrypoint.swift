import ArgumentParser
import Foundation
import Shared

@main
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ds-worker",
        abstract: "Run a ds worker: claim tasks from the ZooKeeper priority queue and run them.",
        discussion: """
            Stays in the foreground and logs to stderr; never opens the database. SIGTERM or SIGINT stops \
            claiming and lets running tasks finish for --grace, then kills them.

            """ + exitStatusHelp,
        version: dsVersion)

    @OptionGroup var global: GlobalOptions
    @Option(help: "Host name this worker registers under (default: the machine's host name).")
    var host: String?
    @Option(help: "Port part of this worker's identity host:port; unique per host.")
    var port: Int = 1234
    @Option(name: .customLong("group"), help: "Worker group to serve; repeat for several (default: default).")
    var groups: [String] = []
    @Option(help: "Tasks run at once, 1 to \(Limits.maxWorkerSlots) (each is a process, its pipe and log, and a ZooKeeper claim; default: the number of cores).")
    var slots: Int = ProcessInfo.processInfo.activeProcessorCount
    @Option(name: .customLong("log-dir"),
            help: "Folder of task logs; each worker keeps its own in a subfolder named host:port (default: $DS_HOME/logs).")
    var logDir: String?
    @Option(help: ArgumentHelp("""
        Serve HTTP here: /logs/<task-instance-id> (read by ds-logs), /metrics and /healthz. Port 0 takes a free \
        port; the address is published in the worker's registry node (env DS_LISTEN; default: no server).
        """, valueName: "host:port"))
    var listen: String?
    @Option(name: .customLong("log-retention"),
            help: "Remove task logs last written longer ago than this, e.g. 7d or 12h; 0 keeps them forever.")
    var logRetention: String = "7d"
    @Option(name: .customLong("max-log-size"), help: ArgumentHelp("""
        Bytes of a task's output kept in its log, e.g. 512K, 64M or 1G; past it one marker line is written \
        and the rest of the output is read and dropped (the task runs on).
        """, valueName: "size"))
    var maxLogSize: String = "1G"
    @Option(help: "How long a graceful stop waits for running tasks, e.g. 60s.")
    var grace: String = "60s"
    @Option(name: .customLong("cgroup-root"), help: ArgumentHelp("""
        Delegated cgroup v2 directory this worker may write; each task runs in <dir>/<host:port>/task-<id>, \
        killed whole when the task ends (default: ds in the cgroup v2 hierarchy, when there is one).
        """, valueName: "dir"))
    var cgroupRoot: String?
    @Option(help: ArgumentHelp("""
        auto: each task in its own cgroups (v2, or v1 controllers with v2 cgroup.kill, or v1), as logged at start; \
        none: no cgroups, the supervisor only kills what it adopts, and tasks asking memory_max or cpu_quota fail.
        """, valueName: "auto|none"))
    var containment: String = "auto"
    @Option(name: .customLong("max-memory"), help: ArgumentHelp("""
        Memory ceiling of each task, e.g. 2G: a task asking more (memory_max), or nothing, gets this much. \
        Needs a memory controller.
        """, valueName: "size"))
    var maxMemory: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"
    @Option(name: .customLong("tenants"), help: ArgumentHelp("""
        OS users a workflow's or task's "tenant" may name, comma-separated; repeatable. A task naming another \
        fails its attempt. root runs only when listed here (default: none).
        """, valueName: "user,..."))
    var tenants: [String] = []
    @Option(name: .customLong("default-tenant"), help: ArgumentHelp("""
        The OS user tasks that name no tenant run as (default: this worker's own user).
        """, valueName: "user"))
    var defaultTenant: String?
    @Option(name: .customLong("pass-env"), help: ArgumentHelp("""
        Pass this variable of the worker's environment on to every task, comma-separated; repeatable. Tasks get \
        only PATH, HOME, USER, LOGNAME, LANG, TZ, SHELL, their DS_* context, env and params otherwise.
        """, valueName: "NAME,..."))
    var passEnv: [String] = []

    var tenantNames: [String] { tenants.flatMap { $0.split(separator: ",").map(String.init) } }
    var passNames: [String] { passEnv.flatMap { $0.split(separator: ",").map(String.init) } }

    func validate() throws {
        guard (1...65535).contains(port) else { throw ValidationError("--port must be from 1 to 65535") }
        if let host, let problem = ServerIdentity.problem(host: host, port: port) {
            throw ValidationError("--host \(Limits.quoted(host)) / --port \(port): \(problem)")
        }
        guard (1...Limits.maxWorkerSlots).contains(slots) else {
            throw ValidationError("--slots \(slots) is out of range: give 1 to \(Limits.maxWorkerSlots) tasks at once (each is a process, its output pipe and log file, and a ZooKeeper claim)")
        }
        guard let seconds = DurationText.parse(grace), seconds <= Limits.maxDurationSeconds else {
            throw ValidationError("--grace '\(grace)' is not a duration from 0s to 30d, such as 60s")
        }
        for g in groups {
            if let problem = Limits.groupNameProblem(g) { throw ValidationError("--group '\(g)' \(problem)") }
        }
        guard ByteSize.parse(maxLogSize) != nil else {
            throw ValidationError("--max-log-size '\(maxLogSize)' is not a size above 0, such as 512K, 64M or 1G")
        }
        for name in tenantNames + (defaultTenant.map { [$0] } ?? []) {
            if let problem = Limits.tenantProblem(name) { throw ValidationError("--tenants/--default-tenant \(Limits.quoted(name)) \(problem)") }
        }
        for name in passNames {
            if let problem = TaskEnvironment.passProblem(name) { throw ValidationError("--pass-env \(Limits.quoted(name)) \(problem)") }
        }
        guard ["auto", "none"].contains(containment) else { throw ValidationError("--containment '\(containment)' is not auto or none") }
        if let maxMemory, let problem = ResourceLimits.memoryProblem(maxMemory) { throw ValidationError("--max-memory: \(problem)") }
        guard let retention = DurationText.parse(logRetention), retention == 0 || (1...3650 * 86_400).contains(retention) else {
            throw ValidationError("--log-retention '\(logRetention)' is not 0 (keep forever) or a duration from 1s to 3650d, such as 7d")
        }
    }

    func run() async throws {
        do {
            let configuration = try global.resolve()
            let host = try host ?? ServerIdentity.defaultHost()
            // One subfolder per worker identity: workers sharing a folder (the default one, on one
            // host) never index, serve or remove each other's logs.
            var options = WorkerOptions(
                host: host, port: port, groups: groups.isEmpty ? ["default"] : groups, slots: slots,
                logDirectory: (logDir ?? configuration.home + "/logs") + "/" + ServerIdentity.make(host: host, port: port), graceSeconds: DurationText.parse(grace)!)
            let retention = DurationText.parse(logRetention)!
            options.logRetentionSeconds = retention > 0 ? retention : nil
            options.maxLogBytes = ByteSize.parse(maxLogSize)!
            options.tenants = TenantPolicy(allowed: Set(tenantNames), defaultTenant: defaultTenant)
            options.passEnv = passNames
            options.cgroupRoot = cgroupRoot
            options.noContainment = containment == "none"
            options.maxMemory = maxMemory.flatMap(ResourceLimits.parseSize)
            let listen = try ListenAddress.option(listen)
            try await WorkerDaemon.main(configuration: configuration, options: options, listen: listen, logLevel: logLevel)
        } catch {
            Tool.fail("ds-worker", error)
        }
    }
}
