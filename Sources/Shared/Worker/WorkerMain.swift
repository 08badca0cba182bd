import Foundation
import Logging

extension WorkerDaemon {
    /// Connects and runs tasks until SIGTERM (graceful, bounded by the grace period) or fencing.
    public static func main(configuration: Configuration, options: WorkerOptions, logLevel: String) async throws {
        let logger = try Tool.logger("ds-worker", level: logLevel)
        try WorkerDaemon.checkLogFolder(options.logDirectory)
        let supervisor = try TaskSupervisor()
        let zk = try await configuration.connectZooKeeper(logger: logger)
        defer { zk.close() }
        logger.info("\(configuration.zooKeeperSummary)")
        let worker = WorkerDaemon(zk: zk, paths: configuration.paths, options: options, supervisor: supervisor, logger: logger)
        try await Daemon.run(logger: logger, stop: .notify({ worker.beginGracefulStop() })) { try await worker.run() }
    }
}
