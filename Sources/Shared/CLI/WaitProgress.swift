import Foundation

/// What the live table of `--wait` adds to the final one: the clock its RUNNING tasks' elapsed
/// time is read on, and why each waiting task (and the instance) waits.
struct LiveNotes: Sendable {
    var now: Double
    /// Task name to what it waits for, or where its attempt stands (as `ds-instance show` says).
    var tasks: [String: String] = [:]
    /// Why the instance itself waits (a serial predecessor, its backfill's turn, a master).
    var instance: String?
    /// What holds the instance back that a master would otherwise start: a running instance of its
    /// serial workflow, or its backfill's earlier dates.
    var heldBack: String?
}

extension InstanceReport {
    /// The latest attempt of each task in the instance's current run, or a success an earlier run
    /// handed on to it.
    func latestAttempts() -> [String: TaskInstanceRecord] {
        var latest: [String: TaskInstanceRecord] = [:]
        let kept = Set(instance.kept.values)
        for t in tasks where t.run == instance.run || (kept.contains(t.id ?? -1) && latest[t.taskName] == nil) { latest[t.taskName] = t }
        return latest
    }

    /// The table `--wait` redraws on a terminal: each task's state, the elapsed time of a RUNNING
    /// one on `live.now`, and a NOTE saying what a waiting task waits for; the instance's own wait
    /// on a line above it. Pure: the clock is given.
    func liveTable(_ live: LiveNotes) -> String {
        let latest = latestAttempts()
        var printer = TablePrinter(columns: ["TASK", "STATE", "ATTEMPT", "WORKER", "EXIT", "DURATION", "NOTE"])
        for name in order {
            let note = live.tasks[name] ?? ""
            guard let t = latest[name] else { printer.add([name, neverRun[name] ?? "-", "", "", "", "", note]); continue }
            let state = t.state.rawValue + (t.run != instance.run ? " (run \(t.run))" : "")
            let duration = t.state.isTerminal || t.run != instance.run ? Self.duration(t.startTime, t.endTime)
                : t.state == .running ? Self.duration(t.startTime, max(live.now, t.startTime ?? live.now)) : ""
            printer.add([name, state, String(t.attempt), t.host ?? "", t.exitCode.map(String.init) ?? "", duration,
                         note])
        }
        let header = live.instance.map { "instance \(instance.id ?? 0) \(Limits.escaped($0))\n" } ?? ""
        return header + printer.render()
    }
}

/// The progress of `--wait` off a terminal: one line per task state change, for a CI log.
struct ProgressLog {
    /// Each task's last state and attempt printed.
    private var printed: [String: (TaskState, Int)] = [:]

    /// Whether some task's latest attempt changed since the last `lines`.
    func changed(_ report: InstanceReport) -> Bool {
        report.latestAttempts().values.contains { t in
            t.run == report.instance.run && printed[t.taskName].map { $0.0 != t.state || $0.1 != t.attempt } ?? true
        }
    }

    /// `<time> <workflow>#<instance> <task> <STATE> attempt n [reason]` for each task whose
    /// latest attempt changed state (or attempt) since the last call; the reason is the attempt's
    /// message, else what it waits for, else its exit status if not 0; values escaped.
    mutating func lines(_ report: InstanceReport, notes: [String: String], now: Double) -> [String] {
        var out: [String] = []
        let latest = report.latestAttempts()
        let label = "\(Limits.escaped(report.instance.name))#\(report.instance.id ?? 0)"
        for name in report.order {
            guard let t = latest[name], t.run == report.instance.run else { continue }
            if let last = printed[name], last.0 == t.state, last.1 == t.attempt { continue }
            printed[name] = (t.state, t.attempt)
            var line = "\(Self.time(now)) \(label) \(Limits.escaped(name)) \(t.state.rawValue) attempt \(t.attempt)"
            if let reason = t.message ?? notes[name], !reason.isEmpty {
                line += " " + Limits.escaped(reason)
            } else if t.state.isTerminal, let exit = t.exitCode, exit != 0 {
                line += " exit \(exit)"
            }
            out.append(line)
        }
        return out
    }

    static let formatter: DateFormatter = {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "yyyy-MM-dd'T'HH:mm:ss"
        return f
    }()

    static func time(_ t: Double) -> String { formatter.string(from: Date(timeIntervalSince1970: t)) }
}

extension InstanceWatcher {
    /// What each task of `report` waits for, and the instance: `ds-instance show`'s notes, with
    /// the groups ZooKeeper last said have no worker and the pools' current use.
    func notes(_ report: InstanceReport, emptyGroups: Set<String>, now: Double) async throws -> LiveNotes {
        var pools: [String: PoolUsage] = [:]
        let waiting = report.tasks.filter { $0.run == report.instance.run && $0.state == .submitted }
        for name in Set(waiting.compactMap(\.pool)) { pools[name] = try await store.pool(name) }
        let view = InstanceTool.view(report.instance, definition, report.tasks, emptyGroups: emptyGroups, pools: pools)
        let latest = report.latestAttempts()
        var live = LiveNotes(now: now)
        for row in view.tasks {
            guard let note = row.note else { continue }
            if row.attempt == nil || row.attempt?.id == latest[row.task]?.id { live.tasks[row.task] = note }
        }
        live.heldBack = try await InstanceTool.waitReasons([report.instance], store: store)[instanceID]
        live.instance = live.heldBack ?? (report.instance.state.isTerminal ? nil : InstanceTool.note(for: report.instance))
        return live
    }
}
