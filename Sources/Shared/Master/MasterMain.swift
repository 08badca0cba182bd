import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers

extension MasterScheduler {
    /// Connects, opens the store and schedules until SIGTERM. A lost session (see `SessionLease`)
    /// stops scheduling at once, and the master registers again with a new session once ZooKeeper
    /// answers: it never exits for an outage. With `listen`, serves `/metrics` and `/healthz` there
    /// while it runs.
    public static func main(configuration: Configuration, options: MasterOptions, listen: ListenAddress?,
                            logLevel: String) async throws {
        let logger = try Tool.logger("ds-master", level: logLevel)
        // Bound first: a taken port stops the start before the master registers.
        let server = try await DaemonListener.start(listen, logger: logger)
        var listening = options
        listening.listen = server?.published(host: options.host)
        let options = listening
        let sessions = SessionRenewal(configuration: configuration, logger: logger)
        let firstSession = try await sessions.first()
        defer { sessions.current?.close() }
        let store = try configuration.openStore(create: true)
        logger.info("database \(configuration.databasePath), \(configuration.zooKeeperSummary)")
        let current = NIOLockedValueBox<MasterScheduler?>(nil)
        Gauge(label: "ds_master_slots").record(options.maxWorkflows)
        let activeGauge = Gauge(label: "ds_master_active_instances")
        let paths = configuration.paths
        Telemetry.shared.onScrape {
            guard let scheduler = current.withLockedValue({ $0 }), let zk = sessions.current else { return }
            let figures = await scheduler.loadFigures()
            activeGauge.record(figures.active)
            // Every group with a queue node or a backlog here: the window's depth (all masters'
            // items together) and this master's backlog, 0 once it has drained.
            var groups = Set(figures.backlog.keys)
            do {
                for group in try await zk.childrenIfPresent(paths.queue) {
                    groups.insert(group)
                    let depth = try await zk.exists(paths.queue(group))?.childCount ?? 0
                    Gauge(label: "ds_queue_window_depth", dimensions: [("group", group)]).record(Int(depth))
                }
            } catch {
                // A scrape while ZooKeeper is away still answers: the depths stay as last read,
                // and ds_zookeeper_connected says why.
                logger.debug("metrics: queue depths not read: \(error)")
            }
            for group in groups {
                Gauge(label: "ds_master_backlog", dimensions: [("group", group)]).record(figures.backlog[group] ?? 0)
            }
        }
        Telemetry.shared.healthCheck {
            do { try await store.ping() } catch { return "database: \(error)" }
            return nil
        }
        try await Daemon.run(logger: logger, stop: .cancel) {
            try await DaemonListener.serving(server, logger: logger) {
                var zk: ZooKeeperClient? = firstSession
                while let session = zk {
                    let scheduler = MasterScheduler(zk: session, store: store, paths: configuration.paths, options: options, logger: logger)
                    current.withLockedValue { $0 = scheduler }
                    do {
                        try await scheduler.run()
                        return
                    } catch let error as MasterError where error.isSessionLoss {
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
        logger.info("master \(options.identity) stopped; stats: db_transactions=\(store.transactionCount) \(sessions.current?.requestCounts.summary(prefix: "zk_") ?? "")")
    }
}
