import Foundation
import Logging

extension MasterScheduler {
    /// Connects, opens the store and schedules until SIGTERM or fencing.
    public static func main(configuration: Configuration, options: MasterOptions, logLevel: String) async throws {
        let logger = try Tool.logger("ds-master", level: logLevel)
        let zk = try await configuration.connectZooKeeper(logger: logger)
        defer { zk.close() }
        let store = try Store(path: configuration.databasePath)
        logger.info("database \(configuration.databasePath), \(configuration.zooKeeperSummary)")
        let scheduler = MasterScheduler(zk: zk, store: store, paths: configuration.paths, options: options, logger: logger)
        try await Daemon.run(logger: logger, stop: .cancel) { try await scheduler.run() }
        logger.info("master \(options.identity) stopped; stats: db_transactions=\(store.transactionCount) \(zk.requestCounts.summary(prefix: "zk_"))")
    }
}
