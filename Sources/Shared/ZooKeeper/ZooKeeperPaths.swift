import Foundation

/// The znode layout under the cluster root (DESIGN §3).
public struct ZooKeeperPaths: Sendable {
    public let root: String
    public init(root: String) { self.root = root == "/" ? "" : root }

    public var masters: String { root + "/nodes/master" }
    public var workers: String { root + "/nodes/worker" }
    public func workerGroup(_ group: String) -> String { workers + "/" + Self.znodeSafe(group) }
    public var queue: String { root + "/queue" }
    public func queue(_ group: String) -> String { queue + "/" + Self.znodeSafe(group) }

    /// A group stored past validation that is no znode name (`..`, a control character) maps to
    /// one no worker can serve (`%` is no group character), where lookups find nothing: a master
    /// fails such a task (`enqueue`) instead of looping on ZooKeeper's "bad arguments".
    static func znodeSafe(_ group: String) -> String {
        Limits.groupNameProblem(group) == nil ? group : "%invalid-group"
    }
    public var running: String { root + "/running" }
    public func running(_ taskInstanceID: Int64) -> String { running + "/\(taskInstanceID)" }
    public var results: String { root + "/results" }
    public func result(_ taskInstanceID: Int64) -> String { results + "/\(taskInstanceID)" }
    public var deadServers: String { root + "/dead-servers" }
    public func deadServer(_ dead: DeadServer) -> String { deadServers + "/" + dead.name }
    /// A queue item's node: `/queue/<group>/<key>`.
    public func queueItem(_ group: String, _ key: TaskQueueKey) -> String { queue(group) + "/" + key.description }
    public var kill: String { root + "/kill" }
    /// A worker's kill requests: `/kill/<host:port>`. Only for an identity that passes
    /// `ServerIdentity.problem`, which every worker's does (it refuses to start otherwise).
    public func killFolder(_ workerIdentity: String) -> String { kill + "/" + workerIdentity }
    public func killRequest(_ workerIdentity: String, _ taskInstanceID: Int64) -> String { killFolder(workerIdentity) + "/\(taskInstanceID)" }
    public var locks: String { root + "/lock" }
    /// One ephemeral node per live daemon session. Every write a master or worker makes with a
    /// `multi` checks its own; failing a hung server over deletes it first, so whatever the server
    /// sends after it wakes is refused by ZooKeeper itself, not by its own good timing.
    public var fences: String { root + "/fence" }
    public func fence(_ session: Int64) -> String { fences + "/\(session)" }
    /// Touched by `ds-submit` so that masters claim a new command at once instead of polling.
    public var commandSignal: String { root + "/signal/commands" }

    /// The persistent folders every daemon expects.
    public var skeleton: [String] { [masters, workers, queue, running, results, deadServers, kill, locks, fences, root + "/signal"] }
}
