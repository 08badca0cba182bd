import Foundation

/// A daemon cut off from ZooKeeper for longer than its session timeout must assume the
/// session is gone: the servers expire it, but the client only hears so once it reconnects,
/// which may be never while the ensemble is down.
public enum SessionFence {
    /// Returns once the client has been disconnected for a whole session timeout.
    public static func waitForLoss(_ zk: ZooKeeperClient) async throws {
        var disconnectedSince: ContinuousClock.Instant?
        while true {
            try await Task.sleep(for: .milliseconds(250))
            if zk.isConnected {
                disconnectedSince = nil
            } else if let since = disconnectedSince {
                if ContinuousClock.now - since >= .milliseconds(zk.sessionTimeoutMillis) { return }
            } else {
                disconnectedSince = .now
            }
        }
    }
}

/// A handled death, as recorded under `/dead-servers/<type>_<host:port>_<session>`.
public struct DeadServer: Sendable, Hashable {
    public var type: String
    public var identity: String
    public var session: Int64

    public init(type: String, identity: String, session: Int64) {
        self.type = type
        self.identity = identity
        self.session = session
    }

    public init?(_ name: String) {
        guard let first = name.firstIndex(of: "_"), let last = name.lastIndex(of: "_"), first < last,
              let session = Int64(name[name.index(after: last)...]) else { return nil }
        self.init(type: String(name[..<first]), identity: String(name[name.index(after: first)..<last]), session: session)
    }

    public var name: String { "\(type)_\(identity)_\(session)" }
}

extension ZooKeeperClient {
    /// The sessions holding the ephemeral registry nodes `names` under `parent`; a node gone
    /// since the listing is left out.
    public func ephemeralOwners(of names: [String], under parent: String) async throws -> Set<Int64> {
        Set(try await ephemeralOwnersByName(of: names, under: parent).values)
    }

    /// The session of each of `names` under `parent` that still exists.
    public func ephemeralOwnersByName(of names: [String], under parent: String) async throws -> [String: Int64] {
        var owners: [String: Int64] = [:]
        for name in names {
            if let stat = try await exists(parent + "/" + name) { owners[name] = stat.ephemeralOwner }
        }
        return owners
    }
}

extension ZooKeeperClient {
    /// The children of `path`, or none if the node does not exist. Any other failure throws:
    /// a listing that failed must never read as an empty one.
    public func childrenIfPresent(_ path: String, watch: (@Sendable (WatchEvent) -> Void)? = nil) async throws -> [String] {
        do { return try await children(path, watch: watch) } catch ZooKeeperError.noNode { return [] }
    }

    /// The data of `path`, or nil if the node does not exist (it went between a listing and this
    /// read). Any other failure throws: a read that failed must never read as a node that is gone.
    public func getDataIfPresent(_ path: String) async throws -> (Data, ZNodeStat)? {
        do { return try await getData(path) } catch ZooKeeperError.noNode { return nil }
    }
}

extension ZooKeeperError {
    /// A fault that passes while the session lives: a connection loss (a leader election, a
    /// server restart) or an operation timeout. The request may or may not have been applied.
    public var isTransient: Bool {
        switch cause {
        case .connectionLoss, .operationTimeout: return true
        default: return false
        }
    }
}

extension ZooKeeperClient {
    /// Runs `body` again after each transient fault, while the session lives: for start-up steps
    /// that must not turn a leader election into an exit. `body` must be safe to repeat.
    public func retryingTransientFaults<T>(isolation: isolated (any Actor)? = #isolation,
                                           _ body: () async throws -> T) async throws -> T {
        while true {
            do {
                return try await body()
            } catch let error as ZooKeeperError where error.isTransient {
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }
}

extension ZooKeeperClient {
    /// Creates this session's fence node (see `ZooKeeperPaths.fence`); a daemon does so once,
    /// right after it registers.
    public func raiseFence(_ paths: ZooKeeperPaths) async throws {
        try await retryingTransientFaults {
            do { try await create(paths.fence(sessionID), mode: .ephemeral) } catch ZooKeeperError.nodeExists {}
        }
    }

    /// The operation that makes a `multi` fail once this session has been failed over.
    public func fenceCheck(_ paths: ZooKeeperPaths) -> ZooKeeperOperation { .check(path: paths.fence(sessionID), version: -1) }

    /// Whether a `multi` that began with `fenceCheck` failed because the fence is gone.
    public static func isFenced(_ error: ZooKeeperError) -> Bool {
        if case .multiFailed(0, .noNode) = error { return true }
        return false
    }

    /// Fails a hung server's session over in ZooKeeper: deletes its fence node, so that no write it
    /// makes after it wakes goes through. Idempotent.
    public func lowerFence(of session: Int64, _ paths: ZooKeeperPaths) async throws {
        do { try await delete(paths.fence(session)) } catch ZooKeeperError.noNode {}
    }
}
