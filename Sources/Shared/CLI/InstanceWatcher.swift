import Foundation

/// An instance and its task attempts, as `--wait` and `--json` print it.
public struct InstanceReport: Codable, Sendable {
    public var instance: WorkflowInstanceRecord
    public var tasks: [TaskInstanceRecord]
    /// Task names in definition order, for the table.
    var order: [String]
    /// Tasks with no attempt that never run in this run: SKIPPED or DISABLED (as `show` says).
    var neverRun: [String: String] = [:]

    enum CodingKeys: String, CodingKey { case instance, tasks }

    public init(instance: WorkflowInstanceRecord, tasks: [TaskInstanceRecord], order: [String]) {
        self.instance = instance
        self.tasks = tasks
        self.order = order
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        instance = try c.decode(WorkflowInstanceRecord.self, forKey: .instance)
        tasks = try c.decode([TaskInstanceRecord].self, forKey: .tasks)
        order = []
    }

    /// One row per task: its latest attempt in the instance's current run; a success an earlier run
    /// handed on is shown with its run; `-` for a task that has not run.
    public func table() -> String {
        var latest: [String: TaskInstanceRecord] = [:]
        let kept = Set(instance.kept.values)
        for t in tasks where t.run == instance.run || (kept.contains(t.id ?? -1) && latest[t.taskName] == nil) { latest[t.taskName] = t }
        var printer = TablePrinter(columns: ["TASK", "STATE", "ATTEMPT", "WORKER", "EXIT", "DURATION"])
        for name in order {
            guard let t = latest[name] else { printer.add([name, neverRun[name] ?? "-", "", "", "", ""]); continue }
            if t.run != instance.run {
                printer.add([name, t.state.rawValue + " (run \(t.run))", String(t.attempt), t.host ?? "", t.exitCode.map(String.init) ?? "",
                             Self.duration(t.startTime, t.endTime)])
                continue
            }
            printer.add([name, t.state.rawValue, String(t.attempt), t.host ?? "", t.exitCode.map(String.init) ?? "",
                         t.state.isTerminal ? Self.duration(t.startTime, t.endTime) : ""])
        }
        return printer.render()
    }

    /// The end of a wait: the JSON, or the table and closing line, then (on stderr) the command that
    /// shows each failed task's log.
    public func print(json: Bool, tool: String) {
        if json {
            Swift.print(WireJSON.string(self))
        } else {
            Swift.print(table(), terminator: "")
            Swift.print(closingLine())
        }
        for hint in Self.logHints(tasks, run: instance.run) { Tool.warn(tool, hint) }
    }

    /// "task 'b' failed; its log: ds-logs 12", for the latest attempt of each task of `run` that
    /// failed or was killed after it started.
    static func logHints(_ attempts: [TaskInstanceRecord], run: Int) -> [String] {
        var latest: [String: TaskInstanceRecord] = [:]
        var order: [String] = []
        for a in attempts where a.run == run && a.state != .needFaultTolerance {
            if latest.updateValue(a, forKey: a.taskName) == nil { order.append(a.taskName) }
        }
        return order.compactMap { name in
            guard let a = latest[name], [.failure, .kill].contains(a.state), a.host != nil, let id = a.id else { return nil }
            return "task '\(name)' \(a.state == .kill ? "was killed" : "failed"); its log: ds-logs \(id)"
        }
    }

    /// "instance 7 etl SUCCESS in 1.204s", and why it ended without running, if it did.
    public func closingLine() -> String {
        let took = Self.duration(instance.startTime, instance.endTime)
        return "instance \(instance.id!) \(instance.name) \(instance.state.rawValue)" + (took.isEmpty ? "" : " in \(took)")
            + (instance.message.map { ": " + $0 } ?? "")
    }

    static func duration(_ start: Double?, _ end: Double?) -> String {
        guard let start, let end else { return "" }
        let s = max(0, end - start)
        return s < 10 ? String(format: "%.3fs", s) : String(format: "%.1fs", s)
    }
}

/// Follows an instance until it ends, reading the database; says so when nothing can run it.
struct InstanceWatcher {
    let store: Store
    let zk: ZooKeeperClient
    let paths: ZooKeeperPaths
    let definition: WorkflowDefinition
    let instanceID: Int64
    /// The tool whose name prefixes its warnings.
    var tool = "ds-submit"

    /// `live`: redraw the table on stdout (a terminal); `progress`: one line per task state change
    /// on stderr (off a terminal, for a CI log).
    func waitForEnd(live: Bool, progress: Bool = !Tool.stderrIsTerminal) async throws -> InstanceReport {
        var warned: Set<String> = []
        var log = ProgressLog()
        var notes = LiveNotes(now: 0)
        var notesTaken = 0.0
        var emptyGroups: Set<String> = []
        var heldBackSaid: String?
        // The first look comes after two seconds: a master that is just starting is not missing.
        var lastCheck = ProcessStats.now()
        var drawnLines = 0
        // This tool's own session, once expired, can tell no more about servers.
        var zkUsable = true
        while true {
            guard let instance = try await store.instance(instanceID) else { throw StoreError.notFound("instance \(instanceID)") }
            // After "is gone": a new owner session means a master took the instance over.
            if let session = instance.masterSession, let host = instance.host, warned.contains(where: { $0.hasPrefix("session:") }),
               !warned.contains("session:\(session)"), warned.insert("adopted:\(session)").inserted {
                Tool.warn(tool, "instance \(instanceID) taken over by master \(host)")
            }
            var report = InstanceReport(instance: instance, tasks: try await store.taskAttempts(of: instanceID),
                                        order: definition.tasks.map(\.name))
            let now = ProcessStats.now()
            // What tasks wait for, read again each second (a 10,000-task view is not free).
            // A line's reason is read for the state it reports.
            if (live || progress) && (now - notesTaken >= 1 || instance.state.isTerminal || (progress && log.changed(report))) {
                notes = try await self.notes(report, emptyGroups: emptyGroups, now: now)
                notesTaken = now
            }
            notes.now = now
            if progress {
                for line in log.lines(report, notes: notes.tasks, now: now) { FileHandle.standardError.write(Data((line + "\n").utf8)) }
                if let held = notes.heldBack, held != heldBackSaid, !instance.state.isTerminal {
                    Tool.warn(tool, "instance \(instanceID) \(held)")
                }
                heldBackSaid = notes.heldBack
            }
            if instance.state.isTerminal {
                for t in InstanceTool.view(instance, definition, report.tasks, emptyGroups: []).tasks {
                    if let state = t.state { report.neverRun[t.task] = state }
                }
                if live && drawnLines > 0 { print("\u{1B}[\(drawnLines)A\u{1B}[J", terminator: "") }
                return report
            }
            if live {
                let text = report.liveTable(notes)
                if drawnLines > 0 { print("\u{1B}[\(drawnLines)A\u{1B}[J", terminator: "") }
                print(text, terminator: "")
                drawnLines = text.split(separator: "\n", omittingEmptySubsequences: false).count - 1
            }
            if now - lastCheck > 2 && zkUsable {
                lastCheck = now
                // A warning comes only from a listing that succeeded; a failed one is tried again later.
                do {
                    // Not connected: a request would wait for the connection, and with it the wait.
                    guard zk.isConnected else { throw ZooKeeperError.connectionLoss(paths.masters) }
                    try await warnAboutMissingServers(report, &warned, &emptyGroups)
                    if warned.remove("zookeeper") != nil { Tool.warn(tool, "ZooKeeper answers again") }
                } catch let error as ZooKeeperError {
                    // The database stays the truth of the instance's state: the wait goes on.
                    if warned.insert("zookeeper").inserted {
                        Tool.warn(tool, "ZooKeeper \(zk.connectString) does not answer (\(error)); instance \(instanceID) waits: "
                                  + "its masters and workers stop what they cannot vouch for and carry on once they reach ZooKeeper again")
                    }
                    if error.cause == .sessionExpired { zkUsable = false }
                }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// "waiting for a worker of group gpu": a task with no one to run it is visible, never silent.
    /// The same for an instance no master will claim (none registered, or none serving this
    /// database) and for one whose master died (it waits for a failover).
    private func warnAboutMissingServers(_ report: InstanceReport, _ warned: inout Set<String>, _ emptyGroups: inout Set<String>) async throws {
        let masters = try await zk.childrenIfPresent(paths.masters)
        if report.instance.host == nil {
            if masters.isEmpty, !warned.contains("master") {
                warned.insert("master")
                Tool.warn(tool, "no master is registered under \(paths.masters); instance \(instanceID) waits for one (start ds-master)")
            } else if !masters.isEmpty, !warned.contains("database") {
                var served: [String] = []
                for m in masters {
                    let data: Data
                    do { data = try await zk.getData(paths.masters + "/" + m).0 } catch ZooKeeperError.noNode { continue }
                    guard let beat = try? WireJSON.decode(Heartbeat.self, data) else { continue }
                    // A master of an older version advertises no database: it may serve this one.
                    guard let id = beat.database else { return }
                    if id == store.databaseID { return }
                    served.append("\(m) serves \(beat.databasePath ?? id)")
                }
                guard !served.isEmpty else { return }
                warned.insert("database")
                Tool.warn(tool, "no running master serves the database \(store.path), where instance \(instanceID) waits (\(served.joined(separator: "; "))); check --db / DS_DB")
            }
        } else if let owner = report.instance.host, let session = report.instance.masterSession,
                  !masters.contains(owner), !warned.contains("session:\(session)") {
            warned.insert("session:\(session)")
            Tool.warn(tool, "master \(owner), which ran instance \(instanceID), is gone; waiting for another master to take it over"
                      + (masters.isEmpty ? " (none is registered: start ds-master)" : ""))
        }
        let waitingGroups = Set(report.tasks.filter { $0.state == .dispatched }.map(\.workerGroup))
        // For the notes: every group a task waits in, queued or in the master's backlog.
        var empty: Set<String> = []
        for group in Set(report.tasks.filter { [.dispatched, .submitted].contains($0.state) }.map(\.workerGroup))
        where try await zk.childrenIfPresent(paths.workerGroup(group)).isEmpty { empty.insert(group) }
        emptyGroups = empty
        for group in waitingGroups.sorted() where !warned.contains("group:" + group) {
            if empty.contains(group) {
                warned.insert("group:" + group)
                Tool.warn(tool, "waiting for a worker of group \(group): none is registered (start ds-worker --group \(group))")
            }
        }
    }
}
