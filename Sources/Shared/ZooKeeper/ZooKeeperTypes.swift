import Foundation

/// The metadata ZooKeeper keeps for one node.
public struct ZNodeStat: Sendable, Equatable {
    public var version: Int32
    public var childrenVersion: Int32
    public var createdMillis: Int64
    public var modifiedMillis: Int64
    public var ephemeralOwner: Int64
    public var dataLength: Int32
    public var childCount: Int32
}

/// How a node is created.
public enum CreateMode: Sendable {
    case persistent, ephemeral, persistentSequential, ephemeralSequential
}

/// A change of the client's session, as the global watcher reports it.
public enum SessionEvent: Sendable, Equatable {
    case connected
    /// The connection dropped; the client reconnects on its own while the session lives.
    case disconnected
    /// The session is gone and every ephemeral node of it with it. The client is unusable.
    case expired
}

/// What a one-shot watch reports when it fires.
public enum WatchEvent: Sendable, Equatable {
    case created(String), deleted(String), dataChanged(String), childrenChanged(String), other(String)
}

/// One operation of an atomic `multi`.
public enum ZooKeeperOperation: Sendable {
    case create(path: String, data: Data, mode: CreateMode)
    case delete(path: String, version: Int32 = -1)
    case setData(path: String, data: Data, version: Int32 = -1)
    case check(path: String, version: Int32)

    public var path: String {
        switch self {
        case .create(let p, _, _), .delete(let p, _), .setData(let p, _, _), .check(let p, _): return p
        }
    }

    /// About what the operation adds to a request: its path and data.
    public var payloadBytes: Int {
        switch self {
        case .create(let p, let d, _), .setData(let p, let d, _): return p.utf8.count + d.count + 16
        case .delete(let p, _), .check(let p, _): return p.utf8.count + 16
        }
    }
}

/// One entry of a znode's ACL: who (`scheme:id`) may do what.
public struct ZooKeeperACL: Sendable, Equatable, CustomStringConvertible {
    /// The bits of ZooKeeper's wire protocol (`ZOO_PERM_*`).
    public struct Permissions: OptionSet, Sendable, Hashable {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }
        public static let read = Permissions(rawValue: 1 << 0)
        public static let write = Permissions(rawValue: 1 << 1)
        public static let create = Permissions(rawValue: 1 << 2)
        public static let delete = Permissions(rawValue: 1 << 3)
        public static let admin = Permissions(rawValue: 1 << 4)
        public static let all: Permissions = [.read, .write, .create, .delete, .admin]

        /// As zkCli.sh writes them: `cdrwa`, or the subset.
        public var letters: String {
            [(Permissions.create, "c"), (.delete, "d"), (.read, "r"), (.write, "w"), (.admin, "a")]
                .filter { contains($0.0) }.map(\.1).joined()
        }
    }

    public var scheme: String
    public var id: String
    public var permissions: Permissions

    public init(scheme: String, id: String, permissions: Permissions) {
        self.scheme = scheme
        self.id = id
        self.permissions = permissions
    }

    public var description: String { "\(scheme):\(id):\(permissions.letters)" }
}

/// Errors from ZooKeeper, each naming the path or connect string it concerns.
public enum ZooKeeperError: Error, CustomStringConvertible, Equatable {
    /// No session could be established within the session timeout.
    case unavailable(connectString: String, timeoutMillis: Int)
    case noNode(String)
    case nodeExists(String)
    case badVersion(String)
    case notEmpty(String)
    case connectionLoss(String)
    case sessionExpired
    case closing
    case operationTimeout(String)
    /// The node's ACL does not admit this client's identity (ZooKeeper's NoAuth).
    case noAuth(String)
    /// The server rejected the credentials; the session is unusable.
    case authFailed
    /// A `multi` failed; `index` is the first operation that failed.
    indirect case multiFailed(index: Int, cause: ZooKeeperError)
    case other(code: Int32, message: String, path: String)

    public var description: String {
        switch self {
        case .unavailable(let c, let t):
            return "ZooKeeper unavailable: no session with '\(c)' within \(t) ms; start ZooKeeper or point --zk / DS_ZK at a live ensemble"
        case .noNode(let p): return "ZooKeeper: no node \(p)"
        case .nodeExists(let p): return "ZooKeeper: node \(p) already exists"
        case .badVersion(let p): return "ZooKeeper: node \(p) changed concurrently (version conflict)"
        case .notEmpty(let p): return "ZooKeeper: node \(p) has children"
        case .connectionLoss(let p): return "ZooKeeper: connection lost during an operation on \(p); retry"
        case .sessionExpired: return "ZooKeeper: session expired"
        case .closing: return "ZooKeeper: client is closing"
        case .operationTimeout(let p): return "ZooKeeper: operation on \(p) timed out; retry"
        case .noAuth(let p):
            return "ZooKeeper refused access to \(p) (NoAuth): its ACL does not admit these credentials; "
                + "give the ones the tree was created with (--zk-auth, DS_ZK_AUTH or DS_ZK_AUTH_FILE), or use another --zk-root"
        case .authFailed:
            return "ZooKeeper rejected the --zk-auth credentials (AuthFailed); check them and the servers' authProvider settings"
        case .multiFailed(let i, let cause): return "ZooKeeper: multi failed at operation \(i): \(cause)"
        case .other(let code, let message, let path): return "ZooKeeper: \(message) (code \(code)) on \(path)"
        }
    }

    /// Whether a server answered the request (it refused it for a reason of its own): proof that
    /// the session was alive when the request was sent. A lost connection, a timeout or a closed
    /// client proves nothing.
    public var isServerAnswer: Bool {
        switch cause {
        case .noNode, .nodeExists, .badVersion, .notEmpty, .noAuth: return true
        default: return false
        }
    }

    /// The error of the operation itself, looking through a failed `multi`.
    public var cause: ZooKeeperError {
        if case .multiFailed(_, let c) = self { return c.cause }
        return self
    }
}
