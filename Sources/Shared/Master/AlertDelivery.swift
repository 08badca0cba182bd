import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Alert delivery through `--alert-command`. A master leases one due alert at a time (a
/// transaction: no two masters hold the same alert), runs the command with the alert as JSON on
/// its standard input, and records the outcome: SENT, PENDING again with a retry time, or FAILED
/// once its retries are spent. A master that dies while its command runs leaves the alert to
/// another once the lease is over (the command may then see it twice: `id` tells them apart).
extension MasterScheduler {
    /// How often a master with an alert command looks for alerts when it found none.
    static let alertPollSeconds = 0.25

    nonisolated func alertLoop(_ command: String, owner: String) async throws {
        let lease = options.alertTimeoutSeconds + 30
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

/// Runs an alert command: `/bin/sh -c COMMAND`, in its own process group, the input on its
/// standard input (a file, so a command that does not read it never blocks the master), its
/// output discarded, the end of its standard error kept for the record.
enum AlertCommand {
    /// Nil when the command exited 0; otherwise what went wrong, for `last_error`.
    static func run(_ command: String, input: Data, timeout: Double, environment: [String: String]) async -> String? {
        let folder = FileManager.default.temporaryDirectory.path
        let stem = "\(folder)/ds-alert-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        defer { unlink(stem + ".in"); unlink(stem + ".err") }
        guard FileManager.default.createFile(atPath: stem + ".in", contents: input) else { return "cannot write \(stem).in" }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stem + ".in", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, stem + ".err", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
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
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { _, new in new }
        let words: [String] = ["/bin/sh", "-c", command]
        let argv = words.map { word -> UnsafeMutablePointer<CChar>? in strdup(word) } + [nil]
        let envp = env.map { entry -> UnsafeMutablePointer<CChar>? in strdup("\(entry.key)=\(entry.value)") } + [nil]
        defer { for p in argv + envp { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, "/bin/sh", &actions, &attributes, argv, envp)
        guard rc == 0 else { return "cannot start /bin/sh: \(String(cString: strerror(rc)))" }
        let deadline = ProcessStats.now() + timeout
        var status: Int32 = 0
        var timedOut = false
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid || (r == -1 && errno != EINTR) { break }
            if ProcessStats.now() >= deadline && !timedOut {
                timedOut = true
                kill(-pid, SIGKILL)
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        // The whole group: what the command left running in the background goes too.
        kill(-pid, SIGKILL)
        let stderrTail: String = {
            guard let data = FileManager.default.contents(atPath: stem + ".err"), !data.isEmpty else { return "" }
            let text = String(decoding: data.suffix(400), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            return text.isEmpty ? "" : ": " + text.replacingOccurrences(of: "\n", with: " | ")
        }()
        if timedOut { return "killed after its timeout of \(DurationText.format(timeout))\(stderrTail)" }
        let exited = status & 0x7f == 0
        if exited {
            let code = (status >> 8) & 0xff
            return code == 0 ? nil : "exit \(code)\(stderrTail)"
        }
        return "killed by signal \(status & 0x7f)\(stderrTail)"
    }
}
