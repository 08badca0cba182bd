import Foundation

/// Why a daemon stopped acting for its ZooKeeper session.
public enum LeaseLoss: Sendable, Equatable, CustomStringConvertible {
    /// No server answered for the session timeout less the margin: the session may be expired.
    case lapsed
    /// The client was told the session expired.
    case expired
    /// The session's fence node is gone: a master or `ds-failover` failed it over while it lived.
    case fenceLowered

    /// Why, as the daemons' fencing messages say it.
    public var description: String {
        switch self {
        case .lapsed: "no ZooKeeper server answered for its session timeout less the margin"
        case .expired: "its ZooKeeper session expired"
        case .fenceLowered: "it was failed over while it could not answer"
        }
    }
}

/// How long a daemon may go on acting for its ZooKeeper session without hearing from a server.
///
/// The timing argument. A ZooKeeper server expires a session no earlier than the negotiated
/// timeout after it last heard from the client (every request and ping touches the session; the
/// leader expires it at the first tick after `last touch + timeout`). A request that was answered
/// was heard by a server at or after the moment it was *sent*, so the session cannot expire before
/// `sent + timeout`, measured on the client's monotonic clock (clock rates differ by parts per
/// million, not by the margin). Until it expires, no master can see the daemon's ephemeral nodes
/// vanish, so none can fail over its work. A daemon that stops acting at
/// `sent + timeout - margin` (a worker: its tasks are killed by then; a master: it writes nothing
/// more) therefore stops before anyone can start a second copy of that work, whatever the network
/// does: a partition, a frozen process or a dead ensemble. The margin covers the kill itself and a
/// scheduler's delay in noticing the deadline. The deadline is enforced in two places: by the
/// daemon, and for a worker also by its task supervisor (a separate process), which keeps the
/// deadline the worker last gave it and kills every task itself when it passes, so even a worker
/// frozen with SIGSTOP cannot let its tasks outlive the lease.
public enum SessionLease {
    /// The margin for a negotiated timeout: a tenth of it, at least 300 ms, at most half of it.
    /// Small on purpose: the C client notices a dead connection only after two thirds of the
    /// timeout without an answer and then moves to another server; the lease must leave that
    /// move room (a fifth left too little: a partition of one ZooKeeper server fenced workers
    /// whose sessions were about to live on, in `scripts/chaos.sh`). The kill itself takes
    /// microseconds.
    public static func marginNanos(timeoutMillis: Int) -> UInt64 {
        let timeout = UInt64(max(timeoutMillis, 1)) * 1_000_000
        return min(max(timeout / 10, 300_000_000), timeout / 2)
    }

    /// The moment (`MonotonicTime`) until which the daemon may act for its session: 0 if no server
    /// has answered yet.
    public static func deadline(_ zk: ZooKeeperClient) -> UInt64 {
        let heard = zk.lastHeardNanos
        guard heard > 0 else { return 0 }
        let timeout = zk.negotiatedTimeoutMillis
        return heard + UInt64(timeout) * 1_000_000 - marginNanos(timeoutMillis: timeout)
    }

    /// How often a daemon that sends nothing else probes its session.
    static func probeIntervalNanos(_ zk: ZooKeeperClient) -> UInt64 {
        UInt64(max(50, zk.negotiatedTimeoutMillis / 6)) * 1_000_000
    }

    /// Keeps the lease while the session lives: probes the session's fence node whenever no other
    /// request was answered for a probe interval, reports each new deadline to `renewed`, and
    /// returns once the lease is lost. `renewed` runs on every extension, in order.
    public static func hold(_ zk: ZooKeeperClient, fence: String,
                            renewed: @escaping @Sendable (UInt64) -> Void) async throws -> LeaseLoss {
        let interval = probeIntervalNanos(zk)
        let sessions = zk.sessionEvents()
        return try await withThrowingTaskGroup(of: LeaseLoss?.self) { group in
            group.addTask {
                for await event in sessions where event == .expired { return .expired }
                return nil
            }
            group.addTask {
                while true {
                    // A probe may hang until the client gives up on the connection: the deadline is
                    // watched by the task beside this one meanwhile.
                    if MonotonicTime.nowNanos() &- zk.lastHeardNanos >= interval {
                        do {
                            if try await zk.exists(fence) == nil { return .fenceLowered }
                        } catch let error as ZooKeeperError where error.isTransient {
                            // No answer proves nothing; the deadline decides.
                        } catch let error as ZooKeeperError where error.cause == .sessionExpired {
                            return .expired
                        }
                    }
                    try await Task.sleep(for: .nanoseconds(Int64(interval)))
                }
            }
            group.addTask {
                var told: UInt64 = 0
                while true {
                    let deadline = deadline(zk)
                    if deadline != told {
                        told = deadline
                        renewed(deadline)
                    }
                    let now = MonotonicTime.nowNanos()
                    if deadline <= now { return .lapsed }
                    // A renewal reaches the supervisor within half a probe interval, while the
                    // deadline it extends is still most of a session timeout away.
                    try await Task.sleep(for: .nanoseconds(Int64(min(deadline - now, interval / 2))))
                }
            }
            defer { group.cancelAll() }
            while let outcome = try await group.next() {
                if let outcome { return outcome }
            }
            return .expired
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
