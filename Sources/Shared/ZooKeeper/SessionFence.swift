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
        var owners: Set<Int64> = []
        for name in names {
            if let stat = try await exists(parent + "/" + name) { owners.insert(stat.ephemeralOwner) }
        }
        return owners
    }
}
