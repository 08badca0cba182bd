import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Alert delivery through `--alert-command`. A master leases one due alert at a time (a
/// transaction: no two masters hold the same alert), runs the command with the alert as JSON on
/// its standard input, and records the outcome: SENT, PENDING again with a retry time, or FAILED
/// once its retries are spent. A master that dies while its command runs leaves the alert to
/// another once the lease is over (the command may then see it twice: `id` tells them apart). A
/// master that stops (SIGTERM) while its command runs waits for the command (to its timeout) and
/// records the outcome before it exits.
extension MasterScheduler {
    /// How often a master with an alert command looks for alerts when it found none.
    static let alertPollSeconds = 0.25

    nonisolated func alertLoop(_ command: String, owner: String) async throws {
        let lease = options.alertTimeoutSeconds + 30
        // Each command in cgroups of its own where the host has them: a hung command's
        // descendants die with it, also those in a new session.
        let containment = (try? Containment.detect(root: nil, worker: "alerts-" + owner)) ?? .none
        logger.info("alerts: containment: \(containment.summary)")
        containment.killAll()
        while !Task.isCancelled {
            let alert: AlertRecord?
            do {
                alert = try await store.leaseAlert(owner: owner, now: ProcessStats.now(), lease: lease)
            } catch is CancellationError {
                return
            } catch {
                logger.warning("alerts: \(error); retrying")
                alert = nil
            }
            guard let alert, let id = alert.id else {
                try await Task.sleep(for: .seconds(Self.alertPollSeconds))
                continue
            }
            var content = alert.content ?? AlertContent(kind: alert.kind, title: "alert \(id) (its stored content does not read)", time: alert.createTime)
            (content.id, content.key, content.delivery) = (id, alert.dedupKey, alert.attempts)
            let outcome = await AlertCommand.run(command, input: WireJSON.encode(content), timeout: options.alertTimeoutSeconds,
                                                 cgroups: containment.directories(task: id),
                                                 environment: ["DS_ALERT_ID": String(id), "DS_ALERT_KIND": alert.kind.rawValue,
                                                               "DS_ALERT_DELIVERY": String(alert.attempts)])
            let now = ProcessStats.now()
            let retryAt: Double? = alert.attempts <= options.alertRetries ? now + min(60, pow(2, Double(alert.attempts - 1))) : nil
            if let problem = outcome {
                let next = retryAt.map { "retry at \(TimeText.iso($0))" } ?? "no retry left: FAILED"
                logger.warning("alert \(id) (\(alert.kind.rawValue)): delivery \(alert.attempts) failed: \(problem); \(next)")
            } else {
                logger.info("alert \(id) (\(alert.kind.rawValue)) delivered")
            }
            do {
                try await store.finishAlert(id, owner: owner, sent: outcome == nil, error: outcome, retryAt: retryAt, now: now)
            } catch is CancellationError {
                return
            } catch {
                // The lease runs out and another delivery follows: better twice than never.
                logger.warning("alerts: the delivery of alert \(id) was not recorded: \(error)")
            }
        }
    }
}

/// Runs an alert command: `/bin/sh -c COMMAND`, in its own process group, with the input on its
/// standard input (a pipe, written whole before it starts: an alert is a few KiB at most, less
/// than a pipe holds, so a command that never reads it cannot block the master), its output
/// discarded, and the last bytes of its standard error kept for the record (read as it writes: a
/// command that prints gigabytes costs no memory and no disk). It inherits no other descriptor
/// of the master (the ZooKeeper session's socket least of all), and nothing of the group
/// outlives it.
enum AlertCommand {
    /// The end of a failed command's standard error kept in `last_error`.
    static let stderrTailBytes = 400

    /// Nil when the command exited 0; otherwise what went wrong, for `last_error`.
    /// `cgroups`: directories to make, join before the command runs, kill whole and remove after.
    static func run(_ command: String, input: Data, timeout: Double, cgroups: [String] = [],
                    environment: [String: String]) async -> String? {
        for dir in cgroups where mkdir(dir, 0o755) != 0 && errno != EEXIST {
            return "cannot make its cgroup \(dir): \(String(cString: strerror(errno)))"
        }
        defer { Containment.killAndRemove(cgroups) }
        var inPipe: [Int32] = [-1, -1], errPipe: [Int32] = [-1, -1]
        guard pipe(&inPipe) == 0 else { return "cannot make a pipe: \(String(cString: strerror(errno)))" }
        guard pipe(&errPipe) == 0 else {
            close(inPipe[0]); close(inPipe[1])
            return "cannot make a pipe: \(String(cString: strerror(errno)))"
        }
        for fd in inPipe + errPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        _ = fcntl(errPipe[0], F_SETFL, O_NONBLOCK)
        defer { close(errPipe[0]) }
        // The input goes into the pipe before the command starts; larger input would need a writer.
        let written = input.prefix(60_000).withUnsafeBytes { write(inPipe[1], $0.baseAddress, $0.count) }
        close(inPipe[1])
        guard written == min(input.count, 60_000) else {
            close(inPipe[0]); close(errPipe[1])
            return "cannot write the alert to the command's pipe: \(String(cString: strerror(errno)))"
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        // Every other descriptor of the master is closed in the child (glibc's closefrom action is
        // not in Swift's Glibc module): what is open now, as /proc lists it.
        for fd in Self.openDescriptors() where fd > 2 { posix_spawn_file_actions_addclose(&actions, fd) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attributes, 0)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var defaults = sigset_t()
        sigfillset(&defaults)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        // The master's environment, without its credentials: an alert script has no use for them.
        var env = CredentialFreeEnvironment.of()
        env.merge(environment) { _, new in new }
        // With cgroups, a first shell moves itself into them, then becomes the command: nothing
        // the command starts is ever outside.
        let join = #"c=$1; shift; for d do echo $$ > "$d/cgroup.procs" || exit 126; done; exec /bin/sh -c "$c""#
        let words: [String] = cgroups.isEmpty ? ["/bin/sh", "-c", command] : ["/bin/sh", "-c", join, "sh", command] + cgroups
        let argv = words.map { word -> UnsafeMutablePointer<CChar>? in strdup(word) } + [nil]
        let envp = env.map { entry -> UnsafeMutablePointer<CChar>? in strdup("\(entry.key)=\(entry.value)") } + [nil]
        defer { for p in argv + envp { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, "/bin/sh", &actions, &attributes, argv, envp)
        close(inPipe[0])
        close(errPipe[1])
        guard rc == 0 else { return "cannot start /bin/sh: \(String(cString: strerror(rc)))" }
        var tail = StderrTail(limit: stderrTailBytes)
        let deadline = ProcessStats.now() + timeout
        var timedOut = false
        var waitProblem: String?
        while true {
            tail.drain(errPipe[0])
            // Exited, but not reaped: its pid, and so its group id, cannot be taken by another
            // process before the group is killed below.
            var info = siginfo_t()
            if waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == -1 {
                if errno == EINTR { continue }
                waitProblem = "cannot wait for it: \(String(cString: strerror(errno)))"
                break
            }
            if info._sifields._sigchld.si_pid == pid { break }
            if ProcessStats.now() >= deadline && !timedOut {
                timedOut = true
                kill(-pid, SIGKILL)
            }
            // Not Task.sleep: in a stopping master (a cancelled task) it returns at once, and this
            // loop would spin until the command ends. The command is waited for, to its timeout.
            await pauseIgnoringCancellation(milliseconds: 20)
        }
        // The whole group: what the command left running in the background goes too (and
        // what left the group, by its cgroups, when the deferred removal kills them).
        kill(-pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        tail.drain(errPipe[0])
        let said = tail.text.isEmpty ? "" : ": " + tail.text
        if let waitProblem { return waitProblem + said }
        if timedOut { return "killed after its timeout of \(DurationText.format(timeout))\(said)" }
        if status & 0x7f == 0 {
            let code = (status >> 8) & 0xff
            return code == 0 ? nil : "exit \(code)\(said)"
        }
        return "killed by signal \(status & 0x7f)\(said)"
    }
}

extension AlertCommand {
    /// Sleeps whether or not the task is cancelled.
    static func pauseIgnoringCancellation(milliseconds: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(milliseconds)) { continuation.resume() }
        }
    }

    /// This process's open descriptors.
    static func openDescriptors() -> [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).compactMap { Int32($0) }
    }
}

/// The last bytes read from a non-blocking descriptor.
struct StderrTail {
    let limit: Int
    private(set) var bytes: [UInt8] = []

    init(limit: Int) { self.limit = limit }

    /// Reads what is there now (never blocks: a background child may hold the pipe open).
    mutating func drain(_ fd: Int32) {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                bytes.append(contentsOf: buffer[..<n])
                if bytes.count > limit { bytes.removeFirst(bytes.count - limit) }
            } else if n == -1 && errno == EINTR {
                continue
            } else {
                return
            }
        }
    }

    /// One line of text: control characters (NUL, line breaks) as spaces, trimmed.
    var text: String {
        let decoded = String(decoding: bytes, as: UTF8.self)
        let scalars = decoded.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7f ? " " : Character($0) }
        return String(scalars).trimmingCharacters(in: .whitespaces)
    }
}
