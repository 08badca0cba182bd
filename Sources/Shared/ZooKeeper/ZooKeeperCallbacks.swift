import CZooKeeper
import Foundation
import NIOConcurrencyHelpers

// The C client's side of ZooKeeperClient: completions that resume continuations, multi
// batches, watch boxes and the session hub.

// MARK: - Replies and completions

enum Reply: @unchecked Sendable {
    case none, string(String), stat(ZNodeStat?), data(Data, ZNodeStat), strings([String]), acl([ZooKeeperACL])
}

final class ReplyBox: @unchecked Sendable {
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

func zooKeeperError(_ rc: Int32, path: String) -> ZooKeeperError {
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

func stat(_ s: UnsafePointer<Stat>?) -> ZNodeStat? {
    guard let s = s?.pointee else { return nil }
    return ZNodeStat(version: s.version, childrenVersion: s.cversion, createdMillis: s.ctime, modifiedMillis: s.mtime,
                     ephemeralOwner: s.ephemeralOwner, dataLength: s.dataLength, childCount: s.numChildren)
}

let voidCompletion: void_completion_t = { rc, data in ReplyBox.finish(data, rc: rc, .none) }
let stringCompletion: string_completion_t = { rc, value, data in
    ReplyBox.finish(data, rc: rc, value.map { .string(String(cString: $0)) } ?? .none)
}
let statCompletion: stat_completion_t = { rc, s, data in ReplyBox.finish(data, rc: rc, .stat(stat(s))) }
let dataCompletion: data_completion_t = { rc, value, length, s, data in
    ReplyBox.finish(data, rc: rc, {
        let bytes = value.map { Data(bytes: $0, count: Int(max(length, 0))) } ?? Data()
        return .data(bytes, stat(s) ?? ZNodeStat(version: 0, childrenVersion: 0, createdMillis: 0, modifiedMillis: 0,
                                                 ephemeralOwner: 0, dataLength: 0, childCount: 0))
    }())
}
let stringsCompletion: strings_completion_t = { rc, strings, data in
    ReplyBox.finish(data, rc: rc, {
        guard let v = strings?.pointee, v.count > 0, let items = v.data else { return .strings([]) }
        return .strings((0..<Int(v.count)).map { String(cString: items[$0]!) })
    }())
}
let aclCompletion: acl_completion_t = { rc, acl, _, data in
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
let multiCompletion: void_completion_t = { rc, data in
    guard let data else { return }
    let batch = Unmanaged<MultiBatch>.fromOpaque(data).takeRetainedValue()
    if let box = batch.box { ReplyBox.finish(UnsafeRawPointer(box), rc: rc, .none) }
}

// MARK: - Multi

/// Owns the C memory of one `multi` until its completion has run.
final class MultiBatch: @unchecked Sendable {
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
final class WatchBox: @unchecked Sendable {
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
let oneShotWatcher: watcher_fn = { _, type, _, path, context in
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

let globalWatcher: watcher_fn = { _, type, state, _, context in
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
    var flags: Int32 {
        switch self {
        case .persistent: return ZOO_PERSISTENT
        case .ephemeral: return ZOO_EPHEMERAL
        case .persistentSequential: return ZOO_PERSISTENT_SEQUENTIAL
        case .ephemeralSequential: return ZOO_EPHEMERAL_SEQUENTIAL
        }
    }
}
