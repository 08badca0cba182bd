import Foundation

/// Whether the ds tree in ZooKeeper admits only the configured identity.
///
/// A queue item is a command that a worker runs, so whoever can create one under the root runs
/// commands on the workers. With credentials configured, the tools create every node for that
/// identity alone, and refuse to start on an existing tree that anyone else can still reach.
public enum TreeAccess {
    /// The most top-level children a root may have to be checked: ds makes about ten, so a root
    /// with many more is something else (and each one checked costs a request at every start).
    public static let maxTopLevelNodes = 256

    /// Throws `TreeAccessError` unless the root, if it exists, and each of its top-level children
    /// admit this client's identity with read, write, create and delete, and nobody else at all.
    /// Deeper nodes are not read: they are only reachable through these, and converting a tree
    /// (`setAcl -R`) changes them all. Without credentials only reads the root, so that a
    /// protected tree fails here, before anything is written, rather than half-way through.
    public static func verify(_ zk: ZooKeeperClient, _ paths: ZooKeeperPaths) async throws {
        let root = paths.root.isEmpty ? "/" : paths.root
        guard let credentials = zk.credentials else {
            try await zk.retryingTransientFaults {
                do { _ = try await zk.childrenIfPresent(root) } catch ZooKeeperError.noAuth(let path) {
                    throw TreeAccessError.refused(root: root, path: path, user: nil)
                }
            }
            return
        }
        // "/" holds ZooKeeper's own nodes and whatever else shares the ensemble.
        guard !paths.root.isEmpty else { throw TreeAccessError.sharedRoot }
        let offenders: [(path: String, entry: ZooKeeperACL)] = try await zk.retryingTransientFaults {
            do {
                guard try await zk.exists(root) != nil else { return [] }  // a fresh root: created ours
                let children = try await zk.childrenIfPresent(root)
                guard children.count <= maxTopLevelNodes else {
                    throw TreeAccessError.notATree(root: root, children: children.count)
                }
                var found: [(path: String, entry: ZooKeeperACL)] = []
                for path in [root] + children.sorted().map({ root + "/" + $0 }) {
                    let acl: [ZooKeeperACL]
                    do { acl = try await zk.getACL(path) } catch ZooKeeperError.noNode { continue }  // gone since
                    found += intruders(in: acl, for: credentials).map { (path, $0) }
                }
                return found
            } catch ZooKeeperError.noAuth(let path) {
                throw TreeAccessError.refused(root: root, path: path, user: credentials.user)
            }
        }
        guard offenders.isEmpty else {
            throw TreeAccessError.open(root: root, user: credentials.user, connect: zk.connectString,
                                       offenders: offenders.map { "\($0.path) \($0.entry)" })
        }
    }

    /// What the tools need on every node of the tree (admin is not needed, nor refused).
    static let needed: ZooKeeperACL.Permissions = [.read, .write, .create, .delete]

    /// The entries of `acl` that let in someone else, or that give this identity too little.
    static func intruders(in acl: [ZooKeeperACL], for credentials: ZooKeeperCredentials) -> [ZooKeeperACL] {
        acl.filter { entry in
            if entry.scheme == "digest" && entry.id == credentials.digestID { return !entry.permissions.isSuperset(of: needed) }
            return !entry.permissions.isEmpty  // an entry that grants nothing lets nobody in
        }
    }
}

/// Why a tool with `--zk-auth` will not use the ds tree in ZooKeeper. Each says how to fix it.
public enum TreeAccessError: Error, CustomStringConvertible, ExitStatusProviding {
    /// Nodes of the tree admit others besides the identity (or it too little): `offenders` are
    /// `path scheme:id:perms`.
    case open(root: String, user: String, connect: String, offenders: [String])
    /// ZooKeeper refused to show `path` (NoAuth): the tree belongs to other credentials, or, for
    /// `user` nil, to credentials the client does not have.
    case refused(root: String, path: String, user: String?)
    case sharedRoot
    case notATree(root: String, children: Int)

    /// Offending entries listed in a message; the rest are counted.
    static let listed = 8

    public var description: String {
        switch self {
        case .open(let root, let user, let connect, let offenders):
            let more = offenders.count > Self.listed ? "\n  ... and \(offenders.count - Self.listed) more" : ""
            return """
                ZooKeeper tree \(root) admits others besides digest user \(user) (or gives that user too little):
                \(offenders.prefix(Self.listed).map { "  " + $0 }.joined(separator: "\n"))\(more)
                With --zk-auth every node of the tree must belong to that identity alone: anyone who can change \
                the queue can run commands on the workers. Convert the tree once, with every ds daemon stopped, \
                in zkCli.sh -server \(connect) (as a ZooKeeper superuser if another identity holds admin rights):
                  addauth digest \(user):<password>
                  setAcl -R \(root) auth::cdrwa
                or point --zk-root (DS_ZK_ROOT) at a fresh root.
                """
        case .refused(let root, let path, let user?):
            return "ZooKeeper refused \(path) to digest user \(user) (NoAuth): the tree \(root) belongs to other credentials. "
                + "Give the ones it was created with (--zk-auth, DS_ZK_AUTH or DS_ZK_AUTH_FILE), or point --zk-root at another root."
        case .refused(let root, let path, nil):
            return "ZooKeeper refused \(path) (NoAuth): the tree \(root) is protected by an ACL. "
                + "Give the credentials it was created with: --zk-auth user:password, DS_ZK_AUTH or DS_ZK_AUTH_FILE."
        case .sharedRoot:
            return "--zk-auth needs a root of its own: --zk-root / holds ZooKeeper's own nodes; use e.g. --zk-root /dolphinscheduler"
        case .notATree(let root, let children):
            return "\(root) has \(children) children, more than the \(TreeAccess.maxTopLevelNodes) a ds root may have: "
                + "it is not a ds tree; point --zk-root at a root of its own"
        }
    }

    public var exitStatus: ExitStatus { .config }
}
