import CZooKeeper
import Foundation
import NIOConcurrencyHelpers

// The only file that imports the ZooKeeper C module. Every C call goes through `check`,
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

// MARK: - Replies and completions

enum Reply: @unchecked Sendable {
    case none, string(String), stat(ZNodeStat?), data(Data, ZNodeStat), strings([String]), acl([ZooKeeperACL])
}

private final class ReplyBox: @unchecked Sendable {
    let path: String
    let watcher: UnsafeMutableRawPointer?
    let continuation: CheckedContinuation<Reply, Error>
    init(path: String, watcher: UnsafeMutableRawPointer?, continuation: CheckedContinuation<Reply, Error>) {
        self.path = path; self.watcher = watcher; self.continuation = continuation
    }

    static func finish(_ data: UnsafeRawPointer?, rc: Int32, _ reply: @autoclosure () -> Reply) {
        guard let data else { return }
        let box = Unmanaged<ReplyBox>.fromOpaque(data).takeRetainedValue()
        if let w = box.watcher, !Unmanaged<WatchBox>.fromOpaque(w).takeUnretainedValue().registers(rc) {
            WatchBox.release(w)
        }
        if rc == ZOK.rawValue {
            box.continuation.resume(returning: reply())
        } else {
            box.continuation.resume(throwing: zooKeeperError(rc, path: box.path))
        }
    }
}

private func zooKeeperError(_ rc: Int32, path: String) -> ZooKeeperError {
    switch rc {
    case ZNONODE.rawValue: return .noNode(path)
    case ZNODEEXISTS.rawValue: return .nodeExists(path)
    case ZBADVERSION.rawValue: return .badVersion(path)
    case ZNOTEMPTY.rawValue: return .notEmpty(path)
    case ZCONNECTIONLOSS.rawValue: return .connectionLoss(path)
    case ZSESSIONEXPIRED.rawValue, ZINVALIDSTATE.rawValue: return .sessionExpired
    case ZCLOSING.rawValue: return .closing
    case ZOPERATIONTIMEOUT.rawValue: return .operationTimeout(path)
    case ZNOAUTH.rawValue: return .noAuth(path)
    case ZAUTHFAILED.rawValue: return .authFailed
    default: return .other(code: rc, message: String(cString: zerror(rc)), path: path)
    }
}

private func stat(_ s: UnsafePointer<Stat>?) -> ZNodeStat? {
    guard let s = s?.pointee else { return nil }
    return ZNodeStat(version: s.version, childrenVersion: s.cversion, createdMillis: s.ctime, modifiedMillis: s.mtime,
                     ephemeralOwner: s.ephemeralOwner, dataLength: s.dataLength, childCount: s.numChildren)
}

private let voidCompletion: void_completion_t = { rc, data in ReplyBox.finish(data, rc: rc, .none) }
private let stringCompletion: string_completion_t = { rc, value, data in
    ReplyBox.finish(data, rc: rc, value.map { .string(String(cString: $0)) } ?? .none)
}
private let statCompletion: stat_completion_t = { rc, s, data in ReplyBox.finish(data, rc: rc, .stat(stat(s))) }
private let dataCompletion: data_completion_t = { rc, value, length, s, data in
    ReplyBox.finish(data, rc: rc, {
        let bytes = value.map { Data(bytes: $0, count: Int(max(length, 0))) } ?? Data()
        return .data(bytes, stat(s) ?? ZNodeStat(version: 0, childrenVersion: 0, createdMillis: 0, modifiedMillis: 0,
                                                 ephemeralOwner: 0, dataLength: 0, childCount: 0))
    }())
}
private let stringsCompletion: strings_completion_t = { rc, strings, data in
    ReplyBox.finish(data, rc: rc, {
        guard let v = strings?.pointee, v.count > 0, let items = v.data else { return .strings([]) }
        return .strings((0..<Int(v.count)).map { String(cString: items[$0]!) })
    }())
}
private let aclCompletion: acl_completion_t = { rc, acl, _, data in
    ReplyBox.finish(data, rc: rc, {
        guard let v = acl?.pointee, v.count > 0, let entries = v.data else { return .acl([]) }
        return .acl((0..<Int(v.count)).map { i in
            let entry = entries[i]
            return ZooKeeperACL(scheme: entry.id.scheme.map { String(cString: $0) } ?? "",
                                id: entry.id.id.map { String(cString: $0) } ?? "",
                                permissions: ZooKeeperACL.Permissions(rawValue: entry.perms))
        })
    }())
}
private let multiCompletion: void_completion_t = { rc, data in
    guard let data else { return }
    let batch = Unmanaged<MultiBatch>.fromOpaque(data).takeRetainedValue()
    if let box = batch.box { ReplyBox.finish(UnsafeRawPointer(box), rc: rc, .none) }
}

// MARK: - Multi

/// Owns the C memory of one `multi` until its completion has run.
private final class MultiBatch: @unchecked Sendable {
    let ops: UnsafeMutablePointer<zoo_op_t>
    let results: UnsafeMutablePointer<zoo_op_result_t>
    let count: Int
    private var strings: [UnsafeMutablePointer<CChar>] = []
    private var buffers: [UnsafeMutableRawPointer] = []
    var box: UnsafeMutableRawPointer?

    init(_ operations: [ZooKeeperOperation], acl: UnsafeMutablePointer<ACL_vector>) {
        count = operations.count
        ops = .allocate(capacity: count)
        results = .allocate(capacity: count)
        results.initialize(repeating: zoo_op_result_t(), count: count)
        for (i, op) in operations.enumerated() {
            var cop = zoo_op_t()
            switch op {
            case .create(let path, let data, let mode):
                let pathBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: path.utf8.count + 32)
                strings.append(pathBuffer)
                zoo_create_op_init(&cop, keep(path), bytes(data), Int32(data.count), acl, mode.flags,
                                   pathBuffer, Int32(path.utf8.count + 32))
            case .delete(let path, let version):
                zoo_delete_op_init(&cop, keep(path), version)
            case .setData(let path, let data, let version):
                let statBuffer = UnsafeMutablePointer<Stat>.allocate(capacity: 1)
                buffers.append(UnsafeMutableRawPointer(statBuffer))
                zoo_set_op_init(&cop, keep(path), bytes(data), Int32(data.count), version, statBuffer)
            case .check(let path, let version):
                zoo_check_op_init(&cop, keep(path), version)
            }
            ops[i] = cop
        }
    }

    private func keep(_ s: String) -> UnsafePointer<CChar> {
        let p = strdup(s)!
        strings.append(p)
        return UnsafePointer(p)
    }

    private func bytes(_ data: Data) -> UnsafePointer<CChar>? {
        guard !data.isEmpty else { return nil }
        let p = UnsafeMutableRawPointer.allocate(byteCount: data.count, alignment: 1)
        data.copyBytes(to: p.assumingMemoryBound(to: UInt8.self), count: data.count)
        buffers.append(p)
        return UnsafePointer(p.assumingMemoryBound(to: CChar.self))
    }

    func firstFailure() -> Int? {
        (0..<count).first { results[$0].err != ZOK.rawValue && results[$0].err != ZRUNTIMEINCONSISTENCY.rawValue }
    }

    func error(at index: Int) -> ZooKeeperError? {
        guard index < count, results[index].err != ZOK.rawValue else { return nil }
        let path = ops[index].create_op.path.map { String(cString: $0) } ?? ""
        return zooKeeperError(results[index].err, path: ops[index].type == ZOO_CREATE_OP ? path : pathOf(index))
    }

    private func pathOf(_ index: Int) -> String {
        let op = ops[index]
        let p: UnsafePointer<CChar>? = op.type == ZOO_DELETE_OP ? op.delete_op.path
            : op.type == ZOO_SETDATA_OP ? op.set_op.path : op.check_op.path
        return p.map { String(cString: $0) } ?? ""
    }

    deinit {
        strings.forEach { free($0) }
        buffers.forEach { $0.deallocate() }
        // results[i].value points into our own create buffers (strings), never malloc'd by the client.
        ops.deallocate()
        results.deallocate()
    }
}

// MARK: - Watches and session events

/// A one-shot watch closure kept alive for the C client until it fires.
private final class WatchBox: @unchecked Sendable {
    let fire: @Sendable (WatchEvent) -> Void
    let registeredOn: [ZOO_ERRORS]
    init(_ fire: @escaping @Sendable (WatchEvent) -> Void, registeredOn: [ZOO_ERRORS]) {
        self.fire = fire; self.registeredOn = registeredOn
    }
    func registers(_ rc: Int32) -> Bool { registeredOn.contains { $0.rawValue == rc } }

    static func retain(_ fire: (@Sendable (WatchEvent) -> Void)?, registeredOn: [ZOO_ERRORS]) -> UnsafeMutableRawPointer? {
        fire.map { Unmanaged.passRetained(WatchBox($0, registeredOn: registeredOn)).toOpaque() }
    }
    static func release(_ pointer: UnsafeMutableRawPointer?) {
        if let pointer { Unmanaged<WatchBox>.fromOpaque(pointer).release() }
    }
}

// Session events reach per-path watchers too, without removing them: only a node event
// consumes (and frees) the watch. On expiry the whole client is discarded.
private let oneShotWatcher: watcher_fn = { _, type, _, path, context in
    guard let context, type != ZOO_SESSION_EVENT else { return }
    let box = Unmanaged<WatchBox>.fromOpaque(context).takeRetainedValue()
    let p = path.map { String(cString: $0) } ?? ""
    switch type {
    case ZOO_CREATED_EVENT: box.fire(.created(p))
    case ZOO_DELETED_EVENT: box.fire(.deleted(p))
    case ZOO_CHANGED_EVENT: box.fire(.dataChanged(p))
    case ZOO_CHILD_EVENT: box.fire(.childrenChanged(p))
    default: box.fire(.other(p))
    }
}

private let globalWatcher: watcher_fn = { _, type, state, _, context in
    guard let context, type == ZOO_SESSION_EVENT else { return }
    let hub = Unmanaged<SessionHub>.fromOpaque(context).takeUnretainedValue()
    if state == ZOO_CONNECTED_STATE {
        hub.publish(.connected)
    } else if state == ZOO_EXPIRED_SESSION_STATE || state == ZOO_AUTH_FAILED_STATE {
        hub.publish(.expired)
    } else {
        hub.publish(.disconnected)
    }
}

/// Fans session events out to every subscriber.
final class SessionHub: @unchecked Sendable {
    private let lock = NSLock()
    private var subscribers: [AsyncStream<SessionEvent>.Continuation] = []

    func subscribe() -> AsyncStream<SessionEvent> {
        let (stream, continuation) = AsyncStream<SessionEvent>.makeStream()
        lock.withLock { subscribers.append(continuation) }
        return stream
    }

    func publish(_ event: SessionEvent) {
        let current = lock.withLock { subscribers }
        for s in current { s.yield(event) }
    }
}

extension CreateMode {
    fileprivate var flags: Int32 {
        switch self {
        case .persistent: return ZOO_PERSISTENT
        case .ephemeral: return ZOO_EPHEMERAL
        case .persistentSequential: return ZOO_PERSISTENT_SEQUENTIAL
        case .ephemeralSequential: return ZOO_EPHEMERAL_SEQUENTIAL
        }
    }
}
