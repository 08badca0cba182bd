import CSupport
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
        let name = Containment.directoryName(worker: "alerts-" + owner, cluster: zk.connectString + paths.root)
        let containment = (try? Containment.detect(root: nil, worker: name)) ?? .none
        logger.info("alerts: containment: \(containment.summary)")
        containment.killAll()
        defer {
            containment.killAll()
            containment.removeRoots()
        }
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
                                                               "DS_ALERT_DELIVERY": String(alert.attempts)],
                                                 user: options.alertTenant)
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
                    environment: [String: String], user: TenantUser? = nil) async -> String? {
        defer { Containment.killAndRemove(cgroups) }  // also those made before one that failed
        for dir in cgroups where mkdir(dir, 0o755) != 0 && errno != EEXIST {
            return "cannot make its cgroup \(dir): \(String(cString: strerror(errno)))"
        }
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
        // Built, not inherited (see `TaskEnvironment`): the base for the user it runs as, then its own.
        var env = TaskEnvironment.base(user: user.map { ($0.name, $0.home) })
        env.merge(environment) { _, new in new }
        let envp = env.map { entry -> UnsafeMutablePointer<CChar>? in strdup("\(entry.key)=\(entry.value)") } + [nil]
        defer { for p in envp { free(p) } }
        // As `--alert-tenant` (its groups, gid and uid, in its home or /), or as the master's own user.
        let cwd = user?.supervisorOptions.first { $0.0 == "cwd" }?.1
        let groups = user?.groups ?? []
        // Its cgroups are joined in the child before exec (and before it becomes the user): nothing
        // the command starts is ever outside them.
        let dirs = cgroups.map { strdup($0) }
        defer { dirs.forEach { free($0) } }
        let pid = groups.withUnsafeBufferPointer { groupList in
            dirs.withUnsafeBufferPointer { dirList in
                (cwd ?? "").withCString { folder in
                    var who = ds_child_user(has_user: user == nil ? 0 : 1, uid: user?.uid ?? 0, gid: user?.gid ?? 0,
                                            groups: groupList.baseAddress, ngroups: groupList.count, cwd: cwd == nil ? nil : folder,
                                            cgroups: dirList.baseAddress, ncgroups: dirList.count, nofile: 0)
                    return ds_spawn_shell_as(command, envp, inPipe[0], -1, errPipe[1], &who)
                }
            }
        }
        close(inPipe[0])
        close(errPipe[1])
        guard pid > 0 else { return "cannot start /bin/sh\(user.map { " as \(Limits.quoted($0.name))" } ?? ""): \(String(cString: strerror(-pid)))" }
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
