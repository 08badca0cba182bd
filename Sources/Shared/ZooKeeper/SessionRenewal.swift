import Foundation
import Logging
import NIOConcurrencyHelpers

/// A daemon's ZooKeeper session of the moment. A daemon that loses its session (its lease ended,
/// the session expired, or it was failed over) fences itself, drops the session, and carries on
/// with a new one once ZooKeeper answers again: an outage, however long, never ends a daemon.
public final class SessionRenewal: Sendable {
    private let state = NIOLockedValueBox<(client: ZooKeeperClient?, stopping: Bool)>((nil, false))
    private let configuration: Configuration
    private let logger: Logger

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        Telemetry.shared.watchSession { [state] in state.withLockedValue { $0.client } }
    }

    /// The session in use, or nil while a new one is being made.
    public var current: ZooKeeperClient? { state.withLockedValue { $0.client } }

    /// A graceful stop was asked for: no new session is made.
    public var isStopping: Bool { state.withLockedValue { $0.stopping } }
    public func stop() { state.withLockedValue { $0.stopping = true } }

    /// The first session: a ZooKeeper that cannot be reached at start is a configuration to check,
    /// so this throws (exit 69) rather than wait.
    public func first() async throws -> ZooKeeperClient {
        let zk = try await configuration.connectZooKeeper(logger: logger)
        state.withLockedValue { $0.client = zk }
        return zk
    }

    /// Closes the lost session (its ephemeral nodes go at once if a server can still be reached,
    /// else when it expires) and makes a new one, waiting as long as ZooKeeper is unreachable.
    /// Returns nil if a stop was asked for meanwhile. Errors other than unreachability (refused
    /// credentials, a tree that admits others) throw: waiting would not mend them.
    public func renew() async throws -> ZooKeeperClient? {
        let old = state.withLockedValue { s -> ZooKeeperClient? in
            defer { s.client = nil }
            return s.client
        }
        old?.close()
        var pause = Duration.milliseconds(250)
        while !isStopping {
            do {
                let zk = try await configuration.connectZooKeeper()
                let stopping = state.withLockedValue { s -> Bool in
                    if !s.stopping { s.client = zk }
                    return s.stopping
                }
                if stopping {
                    zk.close()
                    return nil
                }
                logger.notice("new ZooKeeper session 0x\(String(UInt64(bitPattern: zk.sessionID), radix: 16)) with \(configuration.zkConnect)")
                return zk
            } catch let error as ZooKeeperError where error.isTransient || error.isUnavailable {
                logger.warning("ZooKeeper unreachable (\(error)); trying again in \(pause)")
                try await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(5))
            }
        }
        return nil
    }
}

extension ZooKeeperError {
    /// No session could be made: the ensemble is down or out of reach.
    public var isUnavailable: Bool {
        if case .unavailable = self { return true }
        return false
    }
}
