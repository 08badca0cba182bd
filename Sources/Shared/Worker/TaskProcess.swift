import CSupport
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A failed system call, with errno turned into words.
public struct SystemCallError: Error, CustomStringConvertible {
    public var call: String
    public var errno: Int32
    public var description: String { "\(call): \(String(cString: strerror(errno)))" }
}

/// Every call of this file that can fail goes through here.
@discardableResult
func posixCheck(_ call: String, _ rc: Int32) throws -> Int32 {
    if rc == -1 { throw SystemCallError(call: call, errno: errno) }
    return rc
}

/// How a task's process ended.
public enum ProcessExit: Sendable, Equatable {
    case exited(Int32)
    case signaled(Int32)

    public var succeeded: Bool { self == .exited(0) }
    /// The shell convention: the exit status, or 128 + the signal.
    public var code: Int32 {
        switch self {
        case .exited(let c): return c
        case .signaled(let s): return 128 + s
        }
    }

    /// From a wait status (WIFEXITED / WTERMSIG spelled out: Swift does not import the C macros).
    init(waitStatus status: Int32) {
        let signal = status & 0x7f
        self = signal == 0 ? .exited((status >> 8) & 0xff) : .signaled(signal)
    }
}

/// The supervisor died before it could start the task: no verdict on the task, which runs again.
public struct SupervisorUnavailable: Error, CustomStringConvertible {
    public var description: String { "the task supervisor died before it could start the task" }
}

/// The supervisor died while it started the task: the task may have run (and killed it).
public struct SupervisorLostDuringStart: Error, CustomStringConvertible {
    public var description: String { "the task supervisor died while it started the task" }
}

/// A running task: the leader of its own process group, a child of the worker's supervisor.
public struct TaskProcess: Sendable {
    public let id: Int64
    public let pid: pid_t
    let supervisor: TaskSupervisor

    /// Signals the task's whole process group.
    public func signalGroup(_ signal: Int32) { supervisor.signal(id, signal) }
    public func waitForExit() async -> ProcessExit { await supervisor.waitForExit(id) }
}

/// The worker's end of `task-supervisor`, the one helper process that starts every task of this
/// worker and is their parent (see its source for the protocol). It is started from a thread of
/// its own that lives as long as the worker, because PR_SET_PDEATHSIG fires when the *thread*
/// that started the supervisor ends; the same thread then reads the supervisor's events.
public final class TaskSupervisor: @unchecked Sendable {
    /// The supervisor beside the worker's executable.
    public static let path: String = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return (exe as NSString).deletingLastPathComponent + "/task-supervisor"
    }()

    private let lock = NSLock()
    private let sendLock = NSLock()
    private var requests: Int32 = -1
    private var supervisorPID: pid_t = 0
    private var starts: [Int64: CheckedContinuation<pid_t, Error>] = [:]
    private var exitWaiters: [Int64: CheckedContinuation<ProcessExit, Never>] = [:]
    /// Exits that arrived before anyone waited for them.
    private var exits: [Int64: ProcessExit] = [:]
    private var pids: [Int64: pid_t] = [:]
    private var lost = false
    private var onLost: (@Sendable () -> Void)?
    private var onLeaseEnded: (@Sendable () -> Void)?
    /// Tasks killed because the supervisor died under them, or because the worker's lease ended:
    /// their exits are no verdict on the task (see `endCause`).
    private var killedBy: [Int64: EndCause] = [:]
    /// The lease last given, sent again to a supervisor started after a loss.
    private var lease: UInt64 = 0
    /// Tasks whose log could not be written (errno), reported before their exit.
    private var logWriteErrors: [Int64: Int32] = [:]
    /// Log paths of tasks being started, to name them in errors.
    private var logPaths: [Int64: String] = [:]
    /// Tasks of which the kernel killed a process for memory ('M' events), until asked.
    private var outOfMemory: Set<Int64> = []
    /// The cgroups tasks run in; every task cgroup is killed when the supervisor dies.
    public let containment: Containment
    /// Held true from the moment a lost supervisor is noticed until its tasks are killed and
    /// reaped: `restart` waits for it, or the cleanup (which kills every child of the worker)
    /// would kill the new supervisor too, and forget the tasks it started.
    private let cleanup = NSCondition()
    private var cleaning = false

    /// Why a task ended other than on its own.
    public enum EndCause: Sendable, Equatable {
        /// The supervisor exited (a task may have killed it): the task's group was killed.
        case supervisorLost
        /// The worker's ZooKeeper lease ended: the supervisor killed every task itself.
        case leaseEnded
    }

    /// Starts the supervisor.
    public init(containment: Containment = .none) throws {
        self.containment = containment
        guard access(Self.path, X_OK) == 0 else {
            throw InputError.configuration("task supervisor \(Self.path) is missing or not executable; install it beside ds-worker")
        }
        Glibc.signal(SIGPIPE, SIG_IGN)  // a dead supervisor must surface as an error, not kill the worker
        // The tasks of a supervisor that dies become this worker's children, not init's, so that
        // `supervisorLost` finds and kills them all, also one whose start was never reported.
        _ = ds_become_child_subreaper()
        try start()
    }

    /// Starts a supervisor process after the last one was lost; the tasks it ran were killed and
    /// their waits have returned. The lease last given holds for the new one.
    public func restart() throws {
        guard lock.withLock({ lost }) else { return }
        cleanup.lock()
        while cleaning { cleanup.wait() }
        cleanup.unlock()
        try start()
        let lease = lock.withLock { () -> UInt64 in
            lost = false
            return self.lease
        }
        if lease > 0 { renewLease(until: lease) }
    }

    private func start() throws {
        let started = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var startError: Error?
        let thread = Thread { [self] in
            var events: Int32 = -1
            do {
                events = try self.launch()
                try self.awaitReady(events)
            } catch {
                startError = error
            }
            started.signal()
            if startError == nil { self.readEvents(events) }
        }
        thread.stackSize = 256 * 1024
        thread.start()
        started.wait()
        if let startError { throw startError }
    }

    /// Tells the supervisor until when (`MonotonicTime`) the worker's session lease holds: past it,
    /// the supervisor kills every task itself and starts none (see `SessionLease`).
    public func renewLease(until deadline: UInt64) {
        lock.withLock { lease = deadline }
        var message: [UInt8] = [UInt8(ascii: "L")]
        Self.append(Int64(bitPattern: deadline), to: &message)
        _ = send(message)
    }

    /// Drops what is kept of task `id` once its attempt is over, however it ended (early returns
    /// and throws included): why it ended, a log error, an OOM mark, an exit nobody waited for.
    public func forget(_ id: Int64) {
        lock.withLock {
            killedBy[id] = nil
            logWriteErrors[id] = nil
            outOfMemory.remove(id)
            exits[id] = nil
            logPaths[id] = nil
        }
    }

    /// Why task `id` ended other than on its own, if it did; asked once, after its exit.
    public func endCause(_ id: Int64) -> EndCause? { lock.withLock { killedBy.removeValue(forKey: id) } }

    /// Why task `id`'s output could not be written to its log (the supervisor then killed it); asked once, after its exit.
    public func logWriteError(_ id: Int64) -> Int32? { lock.withLock { logWriteErrors.removeValue(forKey: id) } }
    /// Whether the kernel killed a process of task `id` for passing its memory limit; asked once, after its exit.
    public func wasOutOfMemory(_ id: Int64) -> Bool { lock.withLock { outOfMemory.remove(id) != nil } }

    /// Spawns the supervisor with a pipe each way; returns the events end.
    private func launch() throws -> Int32 {
        var toChild: [Int32] = [0, 0], fromChild: [Int32] = [0, 0]
        // At start-up, before any task: nothing else spawns while these are not yet close-on-exec.
        try posixCheck("pipe", pipe(&toChild))
        try posixCheck("pipe", pipe(&fromChild))
        for fd in toChild + fromChild { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, toChild[0], 0)
        posix_spawn_file_actions_adddup2(&actions, fromChild[1], 1)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigfillset(&defaults)
        sigdelset(&defaults, SIGKILL)
        sigdelset(&defaults, SIGSTOP)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        // Its own process group: a ^C at the worker's terminal is the worker's to handle.
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup(Self.path), strdup(String(getpid())), nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, Self.path, &actions, &attributes, argv, environ)
        close(toChild[0])
        close(fromChild[1])
        if rc != 0 {
            close(toChild[1])
            close(fromChild[0])
            throw SystemCallError(call: "posix_spawn \(Self.path)", errno: rc)
        }
        lock.withLock {
            if requests >= 0 { close(requests) }  // the lost supervisor's
            requests = toChild[1]
            supervisorPID = pid
        }
        return fromChild[0]
    }

    /// The supervisor's first event says it runs and speaks this protocol; anything else (an
    /// older or foreign executable, one that exits) is a broken installation.
    private func awaitReady(_ fd: Int32) throws {
        var event = [UInt8](repeating: 0, count: 16)
        var filled = 0
        while filled < 16 {
            let n = event.withUnsafeMutableBytes { read(fd, $0.baseAddress! + filled, 16 - filled) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            filled += n
        }
        let (kind, version) = event.withUnsafeBytes { ($0.loadUnaligned(fromByteOffset: 8, as: Int32.self),
                                                      $0.loadUnaligned(fromByteOffset: 12, as: Int32.self)) }
        guard filled == 16, kind == Int32(UInt8(ascii: "R")), version == 4 else {
            close(fd)
            let pid = lock.withLock { supervisorPID }
            var status: Int32 = 0
            kill(pid, SIGKILL)
            while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
            let how = filled > 0 ? "answered in a protocol this worker does not speak"
                : { switch ProcessExit(waitStatus: status) {
                    case .exited(let code): return "exited with status \(code)"
                    case .signaled(let signal): return "was killed by signal \(signal)"
                } }()
            throw InputError.configuration("task supervisor \(Self.path) did not start (\(how)); install the one built with this ds-worker beside it")
        }
    }

    /// Starts `/bin/sh -c command` through the supervisor, which creates the log (exclusively) and
    /// relays the task's output into it, at most `logMax` bytes (nil: no cap); `options` are more
    /// supervisor options (`uid`, `gid`, `groups`, `cwd`: see its request.h).
    public func spawn(id: Int64, command: String, environment: [String: String], logPath: String,
                      logMax: UInt64? = nil, options: [(String, String)] = []) async throws -> TaskProcess {
        var options = options
        if let logMax { options.append(("log_max", String(logMax))) }
        if let nofile = DescriptorLimit.forTasks { options.append(("nofile", String(nofile))) }
        let message = try Self.spawnRequest(id: id, command: command, environment: environment, logPath: logPath, options: options)
        let pid = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<pid_t, Error>) in
            let isLost: Bool = lock.withLock {
                if !lost {
                    starts[id] = continuation
                    logPaths[id] = logPath
                }
                return lost
            }
            if isLost { return continuation.resume(throwing: SupervisorUnavailable()) }
            // A request the supervisor never read started nothing: the task runs again, and the
            // event thread, about to see the supervisor's end, starts another.
            if send(message) != nil, let start = lock.withLock({ () -> CheckedContinuation<pid_t, Error>? in
                logPaths[id] = nil
                return starts.removeValue(forKey: id)
            }) {
                start.resume(throwing: SupervisorUnavailable())
            }
        }
        return TaskProcess(id: id, pid: pid, supervisor: self)
    }

    func waitForExit(_ id: Int64) async -> ProcessExit {
        await withCheckedContinuation { continuation in
            let ready: ProcessExit? = lock.withLock {
                if let exit = exits.removeValue(forKey: id) { return exit }
                exitWaiters[id] = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    func signal(_ id: Int64, _ signal: Int32) {
        var message: [UInt8] = [UInt8(ascii: "K")]
        Self.append(id, to: &message)
        withUnsafeBytes(of: signal) { message.append(contentsOf: $0) }
        // A lost supervisor's tasks were killed when it was found lost (`supervisorLost`).
        _ = send(message)
    }

    /// Writes one length-prefixed request. Its own lock keeps requests whole, and the state lock
    /// is never held while writing: the event thread must always be free to drain events.
    private func send(_ message: [UInt8]) -> Error? {
        sendLock.withLock { sendLocked(message) }
    }

    private func sendLocked(_ message: [UInt8]) -> Error? {
        var framed = [UInt8]()
        framed.reserveCapacity(message.count + 4)
        withUnsafeBytes(of: UInt32(message.count)) { framed.append(contentsOf: $0) }
        framed.append(contentsOf: message)
        var done = 0
        while done < framed.count {
            let n = framed.withUnsafeBytes { write(requests, $0.baseAddress! + done, framed.count - done) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return SystemCallError(call: "write to task supervisor", errno: errno) }
            done += n
        }
        return nil
    }

    /// The event loop of the supervisor's thread: 16-byte records until end of file.
    private func readEvents(_ fd: Int32) {
        var buffer = [UInt8](repeating: 0, count: 16 * 256)
        var filled = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + filled, $0.count - filled) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            filled += n
            var at = 0
            while filled - at >= 16 {
                let (id, kind, value) = buffer.withUnsafeBytes { raw in
                    (Int64(bitPattern: raw.loadUnaligned(fromByteOffset: at, as: UInt64.self)),
                     raw.loadUnaligned(fromByteOffset: at + 8, as: Int32.self),
                     raw.loadUnaligned(fromByteOffset: at + 12, as: Int32.self))
                }
                handle(id: id, kind: UInt8(truncatingIfNeeded: kind), value: value)
                at += 16
            }
            buffer.replaceSubrange(0..<(filled - at), with: buffer[at..<filled])
            filled -= at
        }
        supervisorLost()
    }

    private func handle(id: Int64, kind: UInt8, value: Int32) {
        switch kind {
        case UInt8(ascii: "P"):
            let start: CheckedContinuation<pid_t, Error>? = lock.withLock {
                pids[id] = value
                logPaths[id] = nil
                return starts.removeValue(forKey: id)
            }
            start?.resume(returning: value)
        case UInt8(ascii: "O"):
            let (start, path) = lock.withLock { (starts.removeValue(forKey: id), logPaths.removeValue(forKey: id)) }
            start?.resume(throwing: TaskLogError(path: path ?? "?", errno: value, creating: true))
        case UInt8(ascii: "W"):
            lock.withLock { logWriteErrors[id] = value }
        case UInt8(ascii: "F"):
            let start = lock.withLock {
                logPaths[id] = nil
                return starts.removeValue(forKey: id)
            }
            start?.resume(throwing: value == ETIME ? SystemCallError(call: "start (the worker's ZooKeeper lease has ended)", errno: value)
                          : value == EOPNOTSUPP ? SystemCallError(call: "start (a limit the task asks for has no cgroup controller here)", errno: value)
                          : SystemCallError(call: "start /bin/sh", errno: value))
        case UInt8(ascii: "E"):
            // Sent before the exits of the tasks it killed: each is marked before its exit is seen.
            let handler: (@Sendable () -> Void)? = lock.withLock {
                for id in pids.keys { killedBy[id] = .leaseEnded }
                return onLeaseEnded
            }
            handler?()
        case UInt8(ascii: "M"):
            // Sent just before the task's exit.
            _ = lock.withLock { outOfMemory.insert(id) }
        case UInt8(ascii: "X"):
            let exit = ProcessExit(waitStatus: value)
            let waiter: CheckedContinuation<ProcessExit, Never>? = lock.withLock {
                pids[id] = nil
                guard let waiter = exitWaiters.removeValue(forKey: id) else {
                    exits[id] = exit
                    return nil
                }
                return waiter
            }
            waiter?.resume(returning: exit)
        default:
            break
        }
    }

    /// The supervisor exited (killed, or crashed): its tasks are orphans now. Kill their groups,
    /// end every wait, and tell the worker, which starts another (`restart`).
    private func supervisorLost() {
        // Before `lost`: a restart that sees the loss waits until the cleanup below is over.
        cleanup.lock()
        cleaning = true
        cleanup.unlock()
        defer {
            cleanup.lock()
            cleaning = false
            cleanup.broadcast()
            cleanup.unlock()
        }
        let (pending, running, pid): ([CheckedContinuation<pid_t, Error>], [pid_t], pid_t) = lock.withLock {
            lost = true
            defer {
                starts.removeAll()
                logPaths.removeAll()
            }
            return (Array(starts.values), Array(pids.values), supervisorPID)
        }
        for p in running { killpg(p, SIGKILL) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        // Also what left the task's process group (`setsid`) and was not adopted here.
        containment.killAll()
        Self.killAdoptedOrphans()
        // A start under way may have run the task (which may have killed the supervisor before it
        // was reported): it counts as killed with it.
        for start in pending { start.resume(throwing: SupervisorLostDuringStart()) }
        // The waits as they are now, not as they were before the cleanup: a task's wait may have
        // begun meanwhile, and would otherwise never end (its exit stored, its waiter forgotten).
        let waiters: [CheckedContinuation<ProcessExit, Never>] = lock.withLock {
            for id in pids.keys {
                if killedBy[id] == nil { killedBy[id] = .supervisorLost }
                if exitWaiters[id] == nil { exits[id] = .signaled(SIGKILL) }
            }
            pids.removeAll()
            defer { exitWaiters.removeAll() }
            return Array(exitWaiters.values)
        }
        for waiter in waiters { waiter.resume(returning: .signaled(SIGKILL)) }
        lock.withLock { onLost }?()
    }

    /// Kills and reaps every child of this worker: with the supervisor dead, they can only be
    /// what it left (its tasks and what they started, adopted as this process is a subreaper).
    private static func killAdoptedOrphans() {
        let me = getpid()
        for _ in 0..<3 {
            let orphans = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry -> pid_t? in
                guard let pid = pid_t(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                      let close = stat.lastIndex(of: ")") else { return nil }
                let fields = stat[stat.index(after: close)...].split(separator: " ")
                return fields.count > 2 && pid_t(fields[1]) == me ? pid : nil
            }
            if orphans.isEmpty { return }
            for pid in orphans {
                killpg(pid, SIGKILL)
                kill(pid, SIGKILL)
            }
            var status: Int32 = 0
            for pid in orphans { while waitpid(pid, &status, 0) == -1 && errno == EINTR {} }
        }
    }

    /// Whether the supervisor has exited and no other has started since.
    public var isLost: Bool { lock.withLock { lost } }

    /// `handler` runs each time the supervisor reports that the lease ended and it killed its tasks.
    public func whenLeaseEnds(_ handler: @escaping @Sendable () -> Void) {
        lock.withLock { onLeaseEnded = handler }
    }

    /// `handler` runs each time the supervisor exits while the worker lives (at once if it already
    /// has): its running tasks have then been killed, and their waits return `signaled(SIGKILL)`.
    public func whenLost(_ handler: @escaping @Sendable () -> Void) {
        let already: Bool = lock.withLock {
            onLost = handler
            return lost
        }
        if already { handler() }
    }
}
