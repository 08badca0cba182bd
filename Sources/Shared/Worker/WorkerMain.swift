import Foundation
import Logging
import Metrics

extension WorkerDaemon {
    /// Connects and runs tasks until SIGTERM (graceful, bounded by the grace period) or fencing.
    /// With `listen`, serves `/logs`, `/metrics` and `/healthz` there while it runs.
    public static func main(configuration: Configuration, options: WorkerOptions, listen: ListenAddress?,
                            logLevel: String) async throws {
        let logger = try Tool.logger("ds-worker", level: logLevel)
        try WorkerDaemon.checkLogFolder(options.logDirectory)
        // Bound first: a taken port stops the start before the worker registers.
        let server = try await DaemonListener.start(listen, logger: logger)
        var options = options
        // A wildcard address is no address to connect to: others reach this worker by its host.
        options.listen = server?.published(host: options.host)
        let supervisor = try TaskSupervisor()
        let zk = try await configuration.connectZooKeeper(logger: logger)
        defer { zk.close() }
        logger.info("\(configuration.zooKeeperSummary)")
        let retention = options.logRetentionSeconds
        let worker = WorkerDaemon(zk: zk, paths: configuration.paths, options: options, supervisor: supervisor, logger: logger)
        let found = await worker.logs.sweepInBackground(retention: retention)
        if found.removed > 0 { logger.info("removed \(found.removed) task logs older than the log retention; \(found.kept) kept") }
        Telemetry.shared.watchSession(zk)
        Gauge(label: "ds_worker_slots").record(options.slots)
        let inUse = Gauge(label: "ds_worker_slots_in_use")
        Telemetry.shared.onScrape { inUse.record(await worker.runningCount) }
        try await Daemon.run(logger: logger, stop: .notify({ worker.beginGracefulStop() })) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                if let retention {
                    group.addTask {
                        // Hourly, or more often for a short retention.
                        let every = min(3600, max(1, retention / 4))
                        while true {
                            try await Task.sleep(for: .milliseconds(Int(every * 1000)))
                            let swept = await worker.logs.sweepInBackground(retention: retention)
                            if swept.removed > 0 { logger.info("removed \(swept.removed) task logs older than the log retention") }
                        }
                    }
                }
                defer { group.cancelAll() }
                try await DaemonListener.serving(server, logger: logger, extra: worker.logs.route) { try await worker.run() }
            }
        }
    }
}
