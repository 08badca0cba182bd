import Foundation
import Logging

extension Configuration {
    /// Connects as every tool does: authenticated when credentials are configured, and only to a
    /// tree that admits nobody else (`TreeAccess.verify`), before the tool changes anything.
    /// A daemon passes its `logger`: without credentials it warns, once, what that means.
    public func connectZooKeeper(logger: Logger? = nil) async throws -> ZooKeeperClient {
        if zkCredentials == nil, let logger {
            logger.warning("ZooKeeper access is unauthenticated: anyone who can reach \(zkConnect) can change \(zkRoot) and so run commands on the workers; protect it with --zk-auth user:password (or DS_ZK_AUTH_FILE), see \"Securing ZooKeeper\" in the README")
        }
        let zk = try await ZooKeeperClient.connect(zkConnect, sessionTimeoutMillis: sessionTimeoutMillis, credentials: zkCredentials)
        do {
            try await TreeAccess.verify(zk, paths)
        } catch {
            zk.close()
            throw error
        }
        return zk
    }

    /// Where and as whom a tool talks to ZooKeeper, for its start-up log line.
    public var zooKeeperSummary: String {
        "ZooKeeper \(zkConnect)\(zkRoot)" + (zkCredentials.map { " as \($0)" } ?? " unauthenticated")
    }
}
