import CZooKeeper
import Foundation
import NIOConcurrencyHelpers

// With ZooKeeperCallbacks.swift, the only file that imports the ZooKeeper C module. Every C call goes through `check`,
// every completion through one boxed continuation, every watch through one boxed closure.

/// An asynchronous client for one ZooKeeper session over `libzookeeper_mt`.
///
/// Operations are pipelined: each call sends its request and suspends until the C client's
/// completion thread answers, so many calls may be in flight at once.
public final class ZooKeeperClient: @unchecked Sendable {
    public let connectString: String
    public let sessionTimeoutMillis: Int
    /// Who this session authenticated as; nil for an unauthenticated (world) client.
    public let credentials: ZooKeeperCredentials?
    private let handle: OpaquePointer
    private let session: SessionHub
    /// The ACL of every node this client creates: the authenticated identity alone, or the world.
    private let acl: UnsafeMutablePointer<ACL_vector>
    private let closeLock = NSLock()
    private var closed = false
    /// See `lastHeardNanos`.
    private let heard = NIOLockedValueBox<UInt64>(0)

    private init(connectString: String, sessionTimeoutMillis: Int, credentials: ZooKeeperCredentials?, handle: OpaquePointer,
                 session: SessionHub) {
        self.connectString = connectString
        self.sessionTimeoutMillis = sessionTimeoutMillis
        self.credentials = credentials
        self.handle = handle
        self.session = session
        acl = credentials == nil ? ds_open_acl_unsafe() : ds_creator_all_acl()
    }

    /// Opens a session; throws `ZooKeeperError.unavailable` if none is established in time. With
    /// `credentials` the session authenticates with them (scheme digest) before anything else,
    /// and every node it creates belongs to that identity alone.
    public static func connect(_ connectString: String, sessionTimeoutMillis: Int = 10_000,
                               credentials: ZooKeeperCredentials? = nil) async throws -> ZooKeeperClient {
        if ProcessInfo.processInfo.environment["DS_ZK_CLIENT_LOG"] == nil {
            zoo_set_debug_level(ZooLogLevel(rawValue: 0))  // 0 silences the C client's own logging
        }
        let hub = SessionHub()
        let context = Unmanaged.passRetained(hub).toOpaque()  // lives as long as the process
        guard let zh = zookeeper_init(connectString, globalWatcher, Int32(sessionTimeoutMillis), nil, context, 0) else {
            let unresolved = GlobalOptions.unresolvedHosts(connectString)
            if !unresolved.isEmpty {
                throw InputError.configuration("--zk / DS_ZK '\(connectString)': cannot resolve \(unresolved.joined(separator: ", ")); check the host names")
            }
            throw ZooKeeperError.unavailable(connectString: connectString, timeoutMillis: sessionTimeoutMillis)
        }
        // By default the C client resolves the server names again (getaddrinfo, a netlink dump) every
        // time it polls its socket, which is for every request: once a minute is enough for DNS
        // changes, and it still resolves afresh on every reconnect.
        zoo_set_servers_resolution_delay(zh, 60_000)
        let client = ZooKeeperClient(connectString: connectString, sessionTimeoutMillis: sessionTimeoutMillis,
                                     credentials: credentials, handle: zh, session: hub)
        let deadline = ContinuousClock.now + .milliseconds(sessionTimeoutMillis)
        while zoo_state(zh) != ZOO_CONNECTED_STATE {
            if ContinuousClock.now >= deadline || zoo_state(zh) == ZOO_EXPIRED_SESSION_STATE {
                client.close()
                throw ZooKeeperError.unavailable(connectString: connectString, timeoutMillis: sessionTimeoutMillis)
            }
            try? await Task.sleep(for: .milliseconds(10))
        }
        if let credentials {
            do { try await client.authenticate(credentials) } catch { client.close(); throw error }
        }
        return client
    }

    /// Adds digest credentials to the session. The C client keeps them and sends them again, ahead
    /// of any queued request, each time it reconnects (`send_auth_info` when a connection is
    /// established), so they hold for the whole session; a new session is a new client, which
    /// `connect` authenticates in turn.
    private func authenticate(_ credentials: ZooKeeperCredentials) async throws {
        let data = credentials.authData
        do {
            _ = try await request("(digest authentication)", watcher: nil) { box in
                data.withCString { zoo_add_auth(handle, "digest", $0, Int32(strlen($0)), voidCompletion, box) }
            }
        } catch let error as ZooKeeperError where error.isTransient {
            // The connection dropped before the answer: the client sends the credentials again
            // first thing on the next connection, and a refusal then fails every later request.
        }
    }

    /// A new stream of this session's state changes.
    public func sessionEvents() -> AsyncStream<SessionEvent> { session.subscribe() }

    /// The id of this session, as ZooKeeper records it in `ephemeralOwner`.
    public var sessionID: Int64 { zoo_client_id(handle).pointee.client_id }

    /// Requests sent so far, by kind (a multi counts once): for the daemons' stop-time stats.
    public let requestCounts = Counters(metric: "ds_zookeeper_requests_total")

    public var isConnected: Bool { zoo_state(handle) == ZOO_CONNECTED_STATE }

    /// The session timeout the server granted (it may differ from the one asked for), in
    /// milliseconds; the requested one until a connection has told.
    public var negotiatedTimeoutMillis: Int {
        let granted = Int(zoo_recv_timeout(handle))
        return granted > 0 ? granted : sessionTimeoutMillis
    }

    /// When (`MonotonicTime`) the latest request was sent that a server then answered: the
    /// server heard from this session at that time or after, so it cannot expire the session
    /// before `lastHeardNanos` plus the negotiated timeout. 0 before any answer.
    public var lastHeardNanos: UInt64 { heard.withLockedValue { $0 } }

    /// Records that a request sent at `sent` was answered by a server.
    private func heardFrom(sentAt sent: UInt64) {
        heard.withLockedValue { $0 = max($0, sent) }
    }

    /// The session as `/metrics` and `/healthz` report it; safe to ask after `close()`.
    public var sessionState: SessionState {
        closeLock.lock()
        defer { closeLock.unlock() }
        if closed { return .closed }
        let state = zoo_state(handle)
        if state == ZOO_CONNECTED_STATE { return .connected }
        if state == ZOO_EXPIRED_SESSION_STATE || state == ZOO_AUTH_FAILED_STATE { return .expired }
        return .disconnected
    }

    public enum SessionState: String, Sendable { case connected, disconnected, expired, closed }

    /// Ends the session; its ephemeral nodes go at once.
    public func close() {
        closeLock.lock()
        defer { closeLock.unlock() }
        guard !closed else { return }
        closed = true
        zookeeper_close(handle)
    }

    // MARK: Operations

    @discardableResult
    public func create(_ path: String, data: Data = Data(), mode: CreateMode = .persistent) async throws -> String {
        let reply = try await call("create", path) { box in
            data.withUnsafeBytes { raw in
                zoo_acreate(handle, path, raw.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(data.count),
                            acl, mode.flags, stringCompletion, box)
            }
        }
        if case .string(let created) = reply { return created }
        return path
    }

    public func delete(_ path: String, version: Int32 = -1) async throws {
        _ = try await call("delete", path) { box in zoo_adelete(handle, path, version, voidCompletion, box) }
    }

    @discardableResult
    public func setData(_ path: String, _ data: Data, version: Int32 = -1) async throws -> ZNodeStat? {
        let reply = try await call("setData", path) { box in
            data.withUnsafeBytes { raw in
                zoo_aset(handle, path, raw.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(data.count),
                         version, statCompletion, box)
            }
        }
        if case .stat(let s) = reply { return s }
        return nil
    }

    /// The node's data and stat; with `watch`, the closure fires once on its next change.
    public func getData(_ path: String, watch: (@Sendable (WatchEvent) -> Void)? = nil) async throws -> (Data, ZNodeStat) {
        let watcher = WatchBox.retain(watch, registeredOn: [ZOK])
        let reply = try await call("getData", path, watcher: watcher) { box in
            zoo_awget(handle, path, watcher == nil ? nil : oneShotWatcher, watcher, dataCompletion, box)
        }
        if case .data(let d, let s) = reply { return (d, s) }
        throw ZooKeeperError.other(code: -2, message: "unexpected reply", path: path)
    }

    /// The node's children (names, unsorted); with `watch`, the closure fires once on the next change.
    public func children(_ path: String, watch: (@Sendable (WatchEvent) -> Void)? = nil) async throws -> [String] {
        let watcher = WatchBox.retain(watch, registeredOn: [ZOK])
        let reply = try await call("getChildren", path, watcher: watcher) { box in
            zoo_awget_children(handle, path, watcher == nil ? nil : oneShotWatcher, watcher, stringsCompletion, box)
        }
        if case .strings(let s) = reply { return s }
        return []
    }

    /// The node's stat, or nil if it does not exist; a watch is set either way.
    public func exists(_ path: String, watch: (@Sendable (WatchEvent) -> Void)? = nil) async throws -> ZNodeStat? {
        let watcher = WatchBox.retain(watch, registeredOn: [ZOK, ZNONODE])
        do {
            let reply = try await call("exists", path, watcher: watcher) { box in
                zoo_awexists(handle, path, watcher == nil ? nil : oneShotWatcher, watcher, statCompletion, box)
            }
            if case .stat(let s) = reply { return s }
            return nil
        } catch ZooKeeperError.noNode { return nil }
    }

    /// The node's ACL. ZooKeeper shows it only to a client with read or admin permission on it.
    public func getACL(_ path: String) async throws -> [ZooKeeperACL] {
        let reply = try await call("getACL", path) { box in zoo_aget_acl(handle, path, aclCompletion, box) }
        if case .acl(let entries) = reply { return entries }
        throw ZooKeeperError.other(code: -2, message: "unexpected reply", path: path)
    }

    /// Runs all operations atomically: all take effect or none does.
    public func multi(_ operations: [ZooKeeperOperation]) async throws {
        guard !operations.isEmpty else { return }
        let batch = MultiBatch(operations, acl: acl)
        do {
            _ = try await call("multi", operations[0].path) { box in
                batch.box = box
                return zoo_amulti(handle, Int32(operations.count), batch.ops, batch.results, multiCompletion,
                                  Unmanaged.passRetained(batch).toOpaque())
            }
        } catch let error as ZooKeeperError {
            let index = batch.firstFailure() ?? 0
            let cause = batch.error(at: index) ?? error
            throw ZooKeeperError.multiFailed(index: index, cause: cause)
        }
    }

    /// Creates an ephemeral registry node. A node left by a dead session of the same identity
    /// vanishes once ZooKeeper expires that session, which can take longer than one session
    /// timeout: a leader election gives every session a fresh timeout. So a daemon restarted at
    /// once waits while the node stays unchanged, and gives up (`nodeExists`) as soon as the node
    /// changes, because a live server rewrites its node at every heartbeat (`heartbeatSeconds`),
    /// or after `patience`.
    public func register(_ path: String, data: Data, patience: Duration? = nil) async throws {
        let deadline = ContinuousClock.now + (patience ?? .milliseconds(3 * sessionTimeoutMillis) + .seconds(30))
        var holder: (owner: Int64, version: Int32)?
        while true {
            do {
                try await create(path, data: data, mode: .ephemeral)
                return
            } catch ZooKeeperError.nodeExists {
                guard let stat = try await exists(path) else { continue }  // gone since: try again now
                // Ours if an earlier create went through and only its answer was lost.
                if stat.ephemeralOwner == sessionID { return }
                if let holder, holder.owner == stat.ephemeralOwner, holder.version != stat.version {
                    throw ZooKeeperError.nodeExists(path)  // its owner heartbeats: a live server
                }
                holder = (stat.ephemeralOwner, stat.version)
                guard ContinuousClock.now < deadline else { throw ZooKeeperError.nodeExists(path) }
                try await Task.sleep(for: .milliseconds(250))
            } catch let error as ZooKeeperError where error.isTransient {
                // The create may or may not have gone through: the next try tells which.
                guard ContinuousClock.now < deadline else { throw error }
                try await Task.sleep(for: .milliseconds(250))
            }
        }
    }

    /// Creates `path` and any missing parents as persistent nodes. Each create is repeated after a
    /// transient fault (it is idempotent: a node made by a try whose answer was lost exists).
    public func ensurePath(_ path: String) async throws {
        var prefix = ""
        for component in path.split(separator: "/") {
            prefix += "/" + component
            try await retryingTransientFaults {
                do { try await create(prefix) } catch ZooKeeperError.nodeExists {}
            }
        }
    }

    // MARK: Plumbing

    /// Sends one request; a request the C client refuses up front never reaches its completion.
    private func call(_ kind: String, _ path: String, watcher: UnsafeMutableRawPointer? = nil,
                      _ send: (UnsafeMutableRawPointer) -> Int32) async throws -> Reply {
        requestCounts.count(kind)
        let fault = FaultInjector.zooKeeper?.fault(kind: kind, path: path)
        if fault == .before {
            WatchBox.release(watcher)
            throw ZooKeeperError.connectionLoss(path)
        }
        let reply: Reply
        do {
            reply = try await request(path, watcher: watcher, send)
        } catch where fault == .after {
            throw ZooKeeperError.connectionLoss(path)
        }
        if fault == .after { throw ZooKeeperError.connectionLoss(path) }
        return reply
    }

    private func request(_ path: String, watcher: UnsafeMutableRawPointer?,
                         _ send: (UnsafeMutableRawPointer) -> Int32) async throws -> Reply {
        // Read before the request is handed to the C client, which sends it then or later: a
        // conservative bound on when the server heard from us.
        let sent = MonotonicTime.nowNanos()
        do {
            let reply = try await sendRequest(path, watcher: watcher, send)
            heardFrom(sentAt: sent)
            return reply
        } catch let error as ZooKeeperError where error.isServerAnswer {
            heardFrom(sentAt: sent)
            throw error
        }
    }

    private func sendRequest(_ path: String, watcher: UnsafeMutableRawPointer?,
                             _ send: (UnsafeMutableRawPointer) -> Int32) async throws -> Reply {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Reply, Error>) in
            let box = ReplyBox(path: path, watcher: watcher, continuation: continuation)
            let context = Unmanaged.passRetained(box).toOpaque()
            let rc = send(context)
            if rc != ZOK.rawValue {
                Unmanaged<ReplyBox>.fromOpaque(context).release()
                WatchBox.release(watcher)
                // An expired handle refuses requests with assorted codes (ZMARSHALLINGERROR for a
                // multi); callers need to know the session is gone, not that marshalling failed.
                let state = zoo_state(handle)
                continuation.resume(throwing: state == ZOO_EXPIRED_SESSION_STATE ? ZooKeeperError.sessionExpired
                                    : state == ZOO_AUTH_FAILED_STATE ? ZooKeeperError.authFailed : zooKeeperError(rc, path: path))
            }
        }
    }
}
