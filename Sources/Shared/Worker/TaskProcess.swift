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
}

/// A task's shell, started in a process group of its own so that the whole tree can be signalled.
public struct TaskProcess: Sendable {
    public let pid: pid_t

    /// Checked once at start-up: without the supervisor no task can run.
    public static func checkSupervisor() throws {
        guard access(supervisorPath, X_OK) == 0 else {
            throw InputError.configuration("task supervisor \(supervisorPath) is missing or not executable; install it beside ds-worker")
        }
    }

    /// The supervisor that sits between this worker and each task, beside the worker's executable.
    public static let supervisorPath: String = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return (exe as NSString).deletingLastPathComponent + "/task-supervisor"
    }()

    /// Starts `/bin/sh -c command` under the task supervisor, in a new process group led by the
    /// supervisor, with stdout and stderr appended to `logPath`, stdin from /dev/null, and default
    /// signal dispositions (the daemon handles SIGTERM itself; tasks must not inherit that).
    public static func spawn(command: String, environment: [String: String], logPath: String) throws -> TaskProcess {
        // The supervisor closes every inherited descriptor above 2 before the task starts.
        let logFD = try posixCheck("open \(logPath)", open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644))
        defer { close(logFD) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, logFD, 1)
        posix_spawn_file_actions_adddup2(&actions, logFD, 2)

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
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv: [UnsafeMutablePointer<CChar>?] = [strdup(supervisorPath), strdup(String(getpid())), strdup("/bin/sh"),
                                                    strdup("-c"), strdup(command), nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, supervisorPath, &actions, &attributes, argv, envp)
        if rc != 0 { throw SystemCallError(call: "posix_spawn \(supervisorPath)", errno: rc) }
        return TaskProcess(pid: pid)
    }

    /// Waits for the shell to exit, on a thread of its own so that no task of the cooperative pool blocks.
    public func waitForExit() async -> ProcessExit {
        await withCheckedContinuation { continuation in
            let pid = self.pid
            let thread = Thread {
                var status: Int32 = 0
                while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
                // WIFEXITED / WTERMSIG, spelled out: Swift does not import the C macros.
                let signal = status & 0x7f
                continuation.resume(returning: signal == 0 ? .exited((status >> 8) & 0xff) : .signaled(signal))
            }
            thread.stackSize = 64 * 1024
            thread.start()
        }
    }

    /// Signals the task's whole process group.
    public func signalGroup(_ signal: Int32) {
        _ = killpg(pid, signal)
    }
}
