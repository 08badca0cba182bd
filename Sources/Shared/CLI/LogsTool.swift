import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// `ds-logs`: prints (or follows) task logs from the worker that ran them, through its log server;
/// from the file itself when the worker is gone and the file is on this machine.
public enum LogsTool {
    static let tool = "ds-logs"

    public struct Options: Sendable {
        public var follow = false
        /// Only the last N lines (of what exists when asked; new lines follow with `follow`).
        public var lines: Int?
        /// The only folder whose files are read on this machine (`--log-dir`); nil: `$DS_HOME/logs`.
        public var logRoot: String?
        public init(follow: Bool, lines: Int?, logRoot: String? = nil) {
            self.follow = follow
            self.lines = lines
            self.logRoot = logRoot
        }
    }

    /// Where an attempt's log can be read.
    enum Source: Equatable {
        /// `logPath`: where the worker writes it, read here if the worker goes and the file is on this machine.
        case http(address: String, worker: String, logPath: String?)
        case local(path: String)
        /// Queued, or never ran (withdrawn or removed before a worker claimed it).
        case notStarted
        case unreachable(String)
    }

    /// What the tool has open: the database always, ZooKeeper when it answers.
    struct Context: Sendable {
        let store: Store
        let zk: ZooKeeperClient?
        let paths: ZooKeeperPaths
        /// The log root: only files under it are read here.
        let logRoot: String

        /// The attempt's log on this machine, if the stored path is one under the log root.
        func localLog(_ stored: String?, of a: TaskInstanceRecord) -> Result<String, LocalLogPath.Refusal>? {
            stored.map { LocalLogPath.check($0, root: logRoot, workflowInstance: a.workflowInstanceId, id: a.id!) }
        }
    }

    // MARK: Entry points

    /// `ds-logs TASK_INSTANCE_ID`.
    public static func attempt(_ id: Int64, options: Options, configuration: Configuration) async throws -> ExitStatus {
        let context = try await open(configuration, logRoot: options.logRoot)
        defer { context.zk?.close() }
        guard let record = try await context.store.attemptRecord(id) else {
            throw ControlRefusal(description: "task instance \(id) does not exist in \(context.store.path); ds-instance show ID lists an instance's task instance ids",
                                 exitStatus: .dataError)
        }
        let out = Output(prefix: nil)
        let shown = try await show(record, options: options, context: context, out: out)
        if case .unreachable(let why) = shown { throw ControlRefusal(description: why, exitStatus: .unavailable) }
        if shown == .notStarted, !options.follow { try await noLog(id, context: context) }
        guard options.follow else { return .success }
        let end = try await outcome(of: id, context: context)
        if end.state == .success { return .success }
        Tool.warn(tool, "task instance \(id) ('\(record.taskName)') ended \(end.state.rawValue)" + (end.message.map { ": \($0)" } ?? ""))
        return .failure
    }

    /// `ds-logs --instance ID`: every attempt of the instance, each line prefixed by its task name.
    public static func instance(_ id: Int64, options: Options, configuration: Configuration) async throws -> ExitStatus {
        let context = try await open(configuration, logRoot: options.logRoot)
        defer { context.zk?.close() }
        guard let instance = try await context.store.instance(id) else {
            throw ControlRefusal(description: "instance \(id) does not exist in \(context.store.path); see ds-instance list", exitStatus: .dataError)
        }
        let definition = try await context.store.definition(of: instance)
        let width = definition.tasks.map(\.name.count).max() ?? 1
        func output(for a: TaskInstanceRecord, in attempts: [TaskInstanceRecord]) -> Output {
            let name = labels(attempts)[a.id!] ?? a.taskName
            return Output(prefix: name.padding(toLength: max(width, name.count), withPad: " ", startingAt: 0) + " | ")
        }
        var unreachable: [String] = []
        if !options.follow {
            let attempts = try await context.store.taskAttempts(of: id)
            for a in attempts {
                switch try await show(a, options: options, context: context, out: output(for: a, in: attempts)) {
                case .unreachable(let why):
                    Tool.warn(tool, why)
                    unreachable.append(why)
                case .notStarted:
                    try await noLog(a.id!, context: context)
                default:
                    break
                }
            }
            return unreachable.isEmpty ? .success : .unavailable
        }
        // Follow: every attempt as it starts, side by side, until the instance has ended and every
        // attempt's log has been read to its end.
        let failures = NIOLockedValueBox<[String]>([])
        try await withThrowingTaskGroup(of: Void.self) { group in
            var followed: Set<Int64> = []
            while true {
                let current = try await context.store.instance(id)
                let attempts = try await context.store.taskAttempts(of: id)
                for a in attempts where !followed.contains(a.id!) {
                    // Not yet started: looked at again on the next pass.
                    if !a.state.isTerminal, try await source(of: a, context: context) == .notStarted { continue }
                    followed.insert(a.id!)
                    let out = output(for: a, in: attempts)
                    group.addTask {
                        if case .unreachable(let why) = try await show(a, options: options, context: context, out: out) {
                            Tool.warn(tool, why)
                            failures.withLockedValue { $0.append(why) }
                        }
                    }
                }
                if current?.state.isTerminal ?? true { break }
                try await Task.sleep(for: .milliseconds(250))
            }
            try await group.waitForAll()
        }
        let final = try await context.store.instance(id)
        if !failures.withLockedValue({ $0 }).isEmpty { return .unavailable }
        guard let final, final.state == .success else {
            Tool.warn(tool, "instance \(id) ended \(final?.state.rawValue ?? "?")" + (final?.message.map { ": \($0)" } ?? ""))
            return .failure
        }
        return .success
    }

    /// Nothing printed for an attempt that has no log: says why, so that it is not taken for an empty one.
    static func noLog(_ id: Int64, context: Context) async throws {
        guard let now = try await context.store.attemptRecord(id) else { return }
        Tool.warn(tool, now.state.isTerminal
            ? "task instance \(id) ('\(now.taskName)') never ran on a worker: \(now.state.rawValue)" + (now.message.map { ", \($0)" } ?? "")
            : "task instance \(id) ('\(now.taskName)') has not started (\(now.state.rawValue)); follow it with ds-logs -f \(id)")
    }

    /// Each attempt's label in `--instance` output: its task's name for the task's first attempt in
    /// the instance, `NAME#N` for its Nth (a retry, a failover's new attempt or a later run), in the
    /// order they were made; so no two attempts print alike (a failover's attempt printed as the
    /// first did, by its attempt number).
    static func labels(_ attempts: [TaskInstanceRecord]) -> [Int64: String] {
        var seen: [String: Int] = [:]
        var labels: [Int64: String] = [:]
        for a in attempts.sorted(by: { ($0.id ?? 0) < ($1.id ?? 0) }) {
            let n = seen[a.taskName, default: 0] + 1
            seen[a.taskName] = n
            if let id = a.id { labels[id] = n > 1 ? "\(a.taskName)#\(n)" : a.taskName }
        }
        return labels
    }

    static func open(_ configuration: Configuration, logRoot: String?) async throws -> Context {
        let store = try configuration.openStore()
        // ZooKeeper names the worker that runs an attempt and where it listens; without it, only
        // logs on this machine can be read.
        var zk: ZooKeeperClient?
        do {
            zk = try await ZooKeeperClient.connect(configuration.zkConnect, sessionTimeoutMillis: 5000,
                                                   credentials: configuration.zkCredentials)
        } catch {
            Tool.warn(tool, "ZooKeeper \(configuration.zkConnect): \(error); reading only logs on this machine")
        }
        return Context(store: store, zk: zk, paths: configuration.paths, logRoot: logRoot ?? configuration.home + "/logs")
    }

    // MARK: One attempt

    /// Prints one attempt's log (its last `lines`), following it with `follow` until its task ends.
    /// Returns where it was read, or why it could not be.
    static func show(_ a: TaskInstanceRecord, options: Options, context: Context, out: Output) async throws -> Source {
        let id = a.id!
        var where_ = try await source(of: a, context: context)
        if options.follow {
            // A queued attempt: wait for a worker to claim it, or for it to end without running.
            while where_ == .notStarted {
                if let r = try await context.store.attemptRecord(id), r.state.isTerminal { return .notStarted }
                try await Task.sleep(for: .milliseconds(200))
                where_ = try await source(of: try await context.store.attemptRecord(id) ?? a, context: context)
            }
        }
        switch where_ {
        case .notStarted, .unreachable:
            return where_
        case .local(let path):
            return try await readLocal(path, id: id, options: options, context: context, out: out)
        case .http(let address, let worker, let knownPath):
            // Bytes printed so far (with -n: once the tail is out): every retry goes on from there.
            var offset: Int64 = 0
            var tailed = false
            // A log a running task's worker does not serve yet (it is being claimed) is asked again,
            // for a while.
            var notServedLeft = 40
            while true {
                do {
                    if !tailed {
                        try await fetch(address, id: id, offset: &offset, follow: false, lines: options.lines, out: out)
                        tailed = true
                        if !options.follow { break }
                    }
                    try await fetch(address, id: id, offset: &offset, follow: true, lines: nil, out: out)
                    break
                } catch let error as HTTPGetError {
                    if case .status = error { notServedLeft -= 1 }
                    // Still running there: the connection broke, or the server went quiet; again.
                    if notServedLeft > 0, try await runsOn(id, worker: worker, context: context) {
                        try await Task.sleep(for: .milliseconds(250))
                        continue
                    }
                    // It runs there no more (it ended, or its worker went): the rest from the file,
                    // if it is on this machine.
                    if case .success(let path)? = context.localLog(try await logPath(of: a, known: knownPath, context: context), of: a) {
                        return try await readLocal(path, id: id, from: offset,
                                                   options: Options(follow: options.follow, lines: tailed ? nil : options.lines),
                                                   context: context, out: out)
                    }
                    out.finish()
                    return .unreachable(offset == 0
                        ? "the log of task instance \(id) ('\(a.taskName)') is on worker \(worker) (\(address)), which did not serve it: \(error)"
                        : "lost the connection to worker \(worker) (\(address)) while reading task instance \(id): \(error)")
                }
            }
            out.finish()
            return where_
        }
    }

    /// Where an attempt's log is: its worker's log server (the `/running` node names it while the
    /// task runs, the registry after), else the file when it is on this machine.
    static func source(of a: TaskInstanceRecord, context: Context) async throws -> Source {
        let id = a.id!
        var worker = a.host
        var address: String?
        var logPath = a.logPath
        if !a.state.isTerminal, let zk = context.zk {
            if let (data, _) = try await zk.getDataIfPresent(context.paths.running(id)), let running = try? WireJSON.decode(RunningTask.self, data) {
                worker = running.worker
                address = running.listen
                logPath = running.logPath
            } else if let (data, _) = try await zk.getDataIfPresent(context.paths.result(id)),
                      let result = try? WireJSON.decode(TaskResultMessage.self, data) {
                // Ended, not yet stored by a master.
                worker = result.worker
                logPath = result.logPath
            } else if a.host == nil {
                return .notStarted
            }
        }
        guard let worker else {
            switch context.localLog(logPath, of: a) {
            case nil: return .notStarted
            case .success(let path)?: return .local(path: path)
            case .failure(let refusal)?: return .unreachable("the log of task instance \(id) ('\(a.taskName)') is not read: \(refusal)")
            }
        }
        if address == nil, let zk = context.zk,
           let (data, _) = try await zk.getDataIfPresent(context.paths.workerGroup(a.workerGroup) + "/" + worker),
           let heartbeat = try? WireJSON.decode(Heartbeat.self, data) {
            address = heartbeat.listen
        }
        if let address { return .http(address: address, worker: worker, logPath: logPath) }
        let local = context.localLog(logPath, of: a)
        if case .success(let path)? = local, access(path, R_OK) == 0 { return .local(path: path) }
        let why = context.zk == nil ? "ZooKeeper is unreachable"
            : "it is not registered (stopped or dead) or serves no logs (started without --listen)"
        let notHere = if case .failure(let refusal)? = local { "not read here: \(refusal)" } else { "the file is not on this machine" }
        return .unreachable("the log of task instance \(id) ('\(a.taskName)') is on worker \(worker)"
                            + (logPath.map { " at \($0)" } ?? "") + ", which is unreachable: \(why); \(notHere)")
    }

    /// The attempt's log file as its worker named it (stored with its result, or in its claim).
    static func logPath(of a: TaskInstanceRecord, known: String?, context: Context) async throws -> String? {
        if let path = known ?? a.logPath { return path }
        return try await context.store.attemptRecord(a.id!)?.logPath
    }

    /// Whether the attempt still runs on that worker (its `/running` node names it).
    static func runsOn(_ id: Int64, worker: String, context: Context) async throws -> Bool {
        guard let zk = context.zk, let (data, _) = try await zk.getDataIfPresent(context.paths.running(id)),
              let running = try? WireJSON.decode(RunningTask.self, data) else { return false }
        return running.worker == worker
    }

    /// GETs the log from `offset` and prints it (or its last `lines`); `offset` moves past what was
    /// printed, also when the connection breaks half-way.
    static func fetch(_ address: String, id: Int64, offset: inout Int64, follow: Bool, lines: Int?, out: Output) async throws {
        var tail = lines.map { Tail(lines: $0) }
        var read: Int64 = 0
        // Following, a quiet task sends nothing: after a minute of silence the caller checks that
        // it still runs there, and asks again.
        try await HTTPGet.stream(address, "/logs/\(id)?offset=\(offset)" + (follow ? "&follow=1" : ""),
                                 idleTimeout: .seconds(follow ? 60 : 30)) { buffer in
            let bytes = buffer.readableBytesView
            if tail != nil {
                tail!.add(bytes)
                read += Int64(bytes.count)
            } else {
                out.write(bytes)
                offset += Int64(bytes.count)
            }
        }
        if let tail {
            out.write(tail.text)
            offset += read
        }
    }

    /// Reads a log file on this machine; with `follow`, until the attempt has ended and the file
    /// has been read to its end after that.
    static func readLocal(_ path: String, id: Int64, from offset: Int64 = 0, options: Options, context: Context,
                          out: Output) async throws -> Source {
        guard let handle = LocalLogPath.open(path) else {
            return .unreachable("cannot read the log of task instance \(id) at \(path)")
        }
        defer { try? handle.close() }
        if offset > 0 { try handle.seek(toOffset: UInt64(offset)) }
        var tail = options.lines.map { Tail(lines: $0) }
        while let chunk = try handle.read(upToCount: 1 << 16), !chunk.isEmpty {
            if tail != nil { tail!.add(chunk) } else { out.write(chunk) }
        }
        if let tail { out.write(tail.text) }
        guard options.follow else {
            out.finish()
            return .local(path: path)
        }
        while true {
            let ended = try await ended(id, context: context) != nil
            while let chunk = try handle.read(upToCount: 1 << 16), !chunk.isEmpty { out.write(chunk) }
            if ended { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        out.finish()
        return .local(path: path)
    }

    // MARK: Outcome

    /// How an attempt ended: stored by a master, else reported by its worker; nil while it runs.
    static func ended(_ id: Int64, context: Context) async throws -> (state: TaskState, message: String?)? {
        if let r = try await context.store.attemptRecord(id), r.state.isTerminal { return (r.state, r.message) }
        if let zk = context.zk, let (data, _) = try await zk.getDataIfPresent(context.paths.result(id)),
           let result = try? WireJSON.decode(TaskResultMessage.self, data) {
            return (result.state, result.message)
        }
        return nil
    }

    /// Waits for the attempt's end once its log is complete (the worker reports just after).
    static func outcome(of id: Int64, context: Context) async throws -> (state: TaskState, message: String?) {
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline {
            if let end = try await ended(id, context: context) { return end }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ControlRefusal(description: "task instance \(id): its log ended but its outcome is not known after 2 minutes; see ds-instance show",
                             exitStatus: .tempFail)
    }

    // MARK: Output

    /// Standard output, whole lines at a time, each prefixed (for `--instance`); shared by the
    /// followers of one run so that their lines never mix. A reader that went away (`| head`) ends
    /// the tool as it ends any Unix filter: by SIGPIPE.
    final class Output: Sendable {
        let prefix: [UInt8]?
        private let partial = NIOLockedValueBox<[UInt8]>([])
        static let lock = NIOLock()

        init(prefix: String?) {
            self.prefix = prefix.map { Array($0.utf8) }
        }

        func write(_ bytes: some Sequence<UInt8>) {
            guard let prefix else { return Self.emit(Array(bytes)) }
            let text: [UInt8] = partial.withLockedValue { partial in
                partial.append(contentsOf: bytes)
                guard let last = partial.lastIndex(of: 0x0a) else { return [] }
                var text: [UInt8] = []
                text.reserveCapacity(last + 1 + prefix.count * 64)
                var start = 0
                partial.withUnsafeBufferPointer { buffer in
                    while start <= last {
                        let end = Tail.newline(in: buffer, from: start)!  // there is one at `last` at the latest
                        text.append(contentsOf: prefix)
                        text.append(contentsOf: buffer[start...end])
                        start = end + 1
                    }
                }
                partial.removeSubrange(...last)
                return text
            }
            Self.emit(text)
        }

        /// Prints a last line that has no newline.
        func finish() {
            guard prefix != nil else { return }
            let rest = partial.withLockedValue { p in
                defer { p = [] }
                return p
            }
            if !rest.isEmpty { write(rest + [0x0a]) }
        }

        static func emit(_ bytes: [UInt8]) {
            guard !bytes.isEmpty else { return }
            lock.withLock {
                bytes.withUnsafeBytes { raw in
                    var done = 0
                    while done < raw.count {
                        let n = Foundation.write(STDOUT_FILENO, raw.baseAddress! + done, raw.count - done)
                        if n > 0 {
                            done += n
                        } else if n < 0 && errno == EINTR {
                            continue
                        } else {
                            if errno == EPIPE {
                                // SwiftNIO ignores SIGPIPE; die of it as a filter would.
                                signal(SIGPIPE, SIG_DFL)
                                raise(SIGPIPE)
                            }
                            Tool.fail(LogsTool.tool, InputError.unreadable("standard output", String(cString: strerror(errno))))
                        }
                    }
                }
            }
        }
    }

    /// The last N lines of a byte stream (a last line without a newline counts): the bytes kept in
    /// one buffer with the offsets of their line ends, trimmed now and then, so a long log costs
    /// one pass and memory for about 2N lines.
    struct Tail {
        let lines: Int
        var data: [UInt8] = []
        /// The offset just past each newline in `data`, ascending.
        var ends: [Int] = []

        init(lines: Int) {
            self.lines = lines
        }

        mutating func add(_ bytes: some Sequence<UInt8>) {
            guard lines > 0 else { return }
            var from = data.count
            data.append(contentsOf: bytes)
            data.withUnsafeBufferPointer { buffer in
                while let end = Self.newline(in: buffer, from: from) {
                    ends.append(end + 1)
                    from = end + 1
                }
            }
            if ends.count > 2 * lines + 1024 {
                let cut = ends[ends.count - lines - 1]
                data.removeFirst(cut)
                ends = ends.suffix(lines).map { $0 - cut }
            }
        }

        var text: [UInt8] {
            guard lines > 0 else { return [] }
            let partial = data.count > (ends.last ?? 0)
            let whole = partial ? lines - 1 : lines
            let start = whole == 0 ? (ends.last ?? 0) : (ends.count > whole ? ends[ends.count - whole - 1] : 0)
            return Array(data[start...])
        }

        /// The index of the first newline at or after `from`.
        static func newline(in buffer: UnsafeBufferPointer<UInt8>, from: Int) -> Int? {
            guard from < buffer.count, let base = buffer.baseAddress,
                  let hit = memchr(base + from, 0x0a, buffer.count - from) else { return nil }
            return base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
        }
    }
}
