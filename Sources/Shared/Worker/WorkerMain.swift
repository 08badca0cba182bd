import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers

extension WorkerDaemon {
    /// Connects and runs tasks until SIGTERM (graceful, bounded by the grace period). A lost
    /// session (see `SessionLease`) kills the worker's tasks, and the worker registers again with a
    /// new session once ZooKeeper answers: it never exits for an outage. With `listen`, serves
    /// `/logs`, `/metrics` and `/healthz` there while it runs.
    public static func main(configuration: Configuration, options: WorkerOptions, listen: ListenAddress?,
                            logLevel: String) async throws {
        let logger = try Tool.logger("ds-worker", level: logLevel)
        try WorkerDaemon.checkLogFolder(options.logDirectory)
        // Bound first: a taken port stops the start before the worker registers.
        let server = try await DaemonListener.start(listen, logger: logger)
        var listening = options
        // A wildcard address is no address to connect to: others reach this worker by its host.
        listening.listen = server?.published(host: options.host)
        let options = listening
        let containment = options.noContainment ? Containment.none
            : try Containment.detect(root: options.cgroupRoot, worker: Containment.directoryName(
                worker: options.identity, cluster: configuration.zkConnect + configuration.zkRoot))
        logger.info("containment: \(containment.summary)\(options.noContainment ? " (--containment none)" : "")")
        if let max = options.maxMemory, !containment.limitsMemory {
            throw InputError.configuration("--max-memory \(Limits.size(Int(max))): this worker has no memory controller to enforce it (containment: \(containment.summary))")
        }
        // The cgroups of tasks a killed worker left behind: their processes die now.
        containment.killAll()
        defer { containment.removeRoots() }
        let supervisor = try TaskSupervisor(containment: containment)
        let sessions = SessionRenewal(configuration: configuration, logger: logger)
        let firstSession = try await sessions.first()
        defer { sessions.current?.close() }
        logger.info("\(configuration.zooKeeperSummary)")
        let retention = options.logRetentionSeconds
        // One log folder and server for every session: a log outlives the session that wrote it.
        let logs = TaskLogs(folder: options.logDirectory)
        Telemetry.shared.healthCheck { logs.health.current.map { "task logs cannot be written: \($0)" } }
        let found = await logs.sweepInBackground(retention: retention)
        if found.removed > 0 { logger.info("removed \(found.removed) task logs older than the log retention; \(found.kept) kept") }
        let current = NIOLockedValueBox<WorkerDaemon?>(nil)
        Gauge(label: "ds_worker_slots").record(options.slots)
        let inUse = Gauge(label: "ds_worker_slots_in_use")
        Telemetry.shared.onScrape { inUse.record(await current.withLockedValue { $0 }?.runningCount ?? 0) }
        let stop: @Sendable () -> Void = {
            sessions.stop()
            current.withLockedValue { $0 }?.beginGracefulStop()
        }
        try await Daemon.run(logger: logger, stop: .notify(stop)) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                if let retention {
                    group.addTask {
                        // Hourly, or more often for a short retention.
                        let every = min(3600, max(1, retention / 4))
                        while true {
                            try await Task.sleep(for: .milliseconds(Int(every * 1000)))
                            let swept = await logs.sweepInBackground(retention: retention)
                            if swept.removed > 0 { logger.info("removed \(swept.removed) task logs older than the log retention") }
                        }
                    }
                }
                defer { group.cancelAll() }
                try await DaemonListener.serving(server, logger: logger, extra: logs.route) {
                    var zk: ZooKeeperClient? = firstSession
                    while let session = zk {
                        if supervisor.isLost { try supervisor.restart() }
                        let worker = WorkerDaemon(zk: session, paths: configuration.paths, options: options, supervisor: supervisor,
                                                  logs: logs, logger: logger)
                        current.withLockedValue { $0 = worker }
                        // A stop that came while the session was being made reaches this worker too.
                        if sessions.isStopping { worker.beginGracefulStop() }
                        do {
                            try await worker.run()
                            return
                        } catch let error as WorkerError where error.isSessionLoss {
                            logger.error("\(error); registering again with a new session once ZooKeeper answers")
                            current.withLockedValue { $0 = nil }
                            zk = try await sessions.renew()
                        } catch let error as ZooKeeperError where error.cause == .sessionExpired || error.isTransient {
                            // Lost while it registered (an expiry, or an answer that never came): the same remedy.
                            logger.error("ZooKeeper: \(error) while registering; registering again with a new session once ZooKeeper answers")
                            current.withLockedValue { $0 = nil }
                            zk = try await sessions.renew()
                        }
                    }
                }
            }
        }
    }
}
