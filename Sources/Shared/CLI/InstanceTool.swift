import Foundation

/// One task's line in `ds-instance show`: an attempt, or a task with no attempt in the current run
/// and what it waits for.
public struct TaskView: Sendable, Codable {
    public var task: String
    public var attempt: TaskInstanceRecord?
    /// Why a task has not run, or where its attempt stands ("waiting for a worker of group gpu").
    public var note: String?
    /// A task with no attempt that will never have one in this run: SKIPPED (on a branch not
    /// taken) or DISABLED (`"enabled": false`).
    public var state: String?

    public static let skipped = "SKIPPED", disabled = "DISABLED"
}

/// What `ds-instance show` prints.
public struct InstanceView: Sendable, Codable {
    public var instance: WorkflowInstanceRecord
    /// Why the instance itself waits, if it does.
    public var note: String?
    /// The start-time parameter overrides.
    public var params: [String: String]
    /// Every attempt of every run, in creation order, then one entry per task that has none in
    /// the current run (and no success handed on to it).
    public var tasks: [TaskView]
}

/// `ds-instance`: look at instances and their definitions, and control them.
public enum InstanceTool {
    static let tool = "ds-instance"

    // MARK: Reading

    /// The newest `limit` instances of `query` (0: all); `quiet` prints their ids only.
    public static func list(_ query: InstanceQuery, limit: Int, json: Bool, quiet: Bool = false, configuration: Configuration) async throws -> ExitStatus {
        let store = try configuration.openStore()
        var query = query
        query.limit = ListOutput.fetchCount(limit) ?? Int.max
        let instances = ListOutput.cut(try await store.instances(query), limit: limit, tool: tool, noun: "instances")
        if json || quiet {
            for i in instances { print(quiet ? String(i.id!) : WireJSON.string(i)) }
            return .success
        }
        var printer = TablePrinter(columns: ["ID", "WORKFLOW", "VERSION", "STATE", "RUN", "SUBMITTED", "DURATION", "MASTER", "NOTE"])
        let now = ProcessStats.now()
        let waits = try await waitReasons(instances, store: store)
        for i in instances {
            let duration = i.startTime.map { InstanceReport.duration($0, i.endTime ?? now) } ?? ""
            printer.add([String(i.id!), i.name, String(i.version),
                         i.state.rawValue, String(i.run), Self.time(i.submitTime), duration, i.host ?? "", waits[i.id!] ?? note(for: i) ?? ""])
        }
        print(printer.render(), terminator: "")
        return .success
    }

    /// What holds back each waiting instance that a master would otherwise start, for `list` and
    /// `show` alike: a running instance of its serial workflow, or its backfill's earlier dates.
    /// One read per workflow name and per backfill, however many instances wait on them.
    static func waitReasons(_ instances: [WorkflowInstanceRecord], store: Store) async throws -> [Int64: String] {
        var reasons: [Int64: String] = [:]
        var blockers: [String: Int64?] = [:]
        var backfillRunning: [Int64: [Int64]] = [:]
        for i in instances where [.submitted, .waitingThread].contains(i.state) {
            if let e = i.execution, e != .parallel {
                if blockers[i.name] == nil { blockers[i.name] = .some(try await store.serialBlocker(of: i)) }
                if let blocker = blockers[i.name] ?? nil {
                    reasons[i.id!] = "waits for instance \(blocker) of \(Limits.quoted(i.name)) to end (execution \(e.rawValue))"
                    continue
                }
            }
            if let backfill = i.backfillId {
                if backfillRunning[backfill] == nil {
                    backfillRunning[backfill] = try await store.instances(backfill: backfill).filter(\.state.isActive).compactMap(\.id)
                }
                let running = backfillRunning[backfill] ?? []
                if !running.isEmpty {
                    reasons[i.id!] = "waits for its turn in backfill \(backfill): dates start in order, --parallel at a time; running: "
                        + running.prefix(5).map(String.init).joined(separator: ", ") + (running.count > 5 ? ", …" : "")
                }
            }
        }
        return reasons
    }

    /// Why an instance waits, for `list` and `show`, when nothing of `waitReasons` holds it back.
    static func note(for i: WorkflowInstanceRecord) -> String? {
        switch i.state {
        case .waitingThread: return "waits for a free master slot (every master is at --max-workflows)"
        case .submitted: return "waits for a master to claim it"
        case .readyPause: return "pausing: running tasks finish, nothing new starts"
        case .readyStop: return "stopping: running tasks are being killed"
        default: return i.message
        }
    }

    public static func show(_ id: Int64, json: Bool, dot: Bool, configuration: Configuration) async throws -> ExitStatus {
        let store = try configuration.openStore()
        guard let instance = try await store.instance(id) else {
            throw ControlRefusal(description: "instance \(id) does not exist in \(store.path); see ds-instance list", exitStatus: .dataError)
        }
        let definition = try await store.definition(of: instance)
        let attempts = try await store.taskAttempts(of: id)
        // Which worker groups have no worker: only asked when a task waits in a queue, and only if
        // ZooKeeper answers (show reads the database; ZooKeeper adds a hint).
        // and which worker holds a running attempt (stored with its result only).
        var emptyGroups: Set<String> = []
        var holders: [Int64: String] = [:]
        let live = attempts.filter { $0.run == instance.run && [.submitted, .dispatched, .running].contains($0.state) }
        let queuedGroups = Set(live.filter { $0.state != .running }.map(\.workerGroup))
        if !live.isEmpty, let zk = try? await ZooKeeperClient.connect(configuration.zkConnect, sessionTimeoutMillis: 3000,
                                                                      credentials: configuration.zkCredentials) {
            defer { zk.close() }
            // Hints only: if ZooKeeper fails half-way, none of them is shown rather than a wrong one.
            do {
                var empty: Set<String> = []
                var found: [Int64: String] = [:]
                for g in queuedGroups where try await zk.childrenIfPresent(configuration.paths.workerGroup(g)).isEmpty { empty.insert(g) }
                for a in live.prefix(1000) where a.state != .submitted {
                    if let (data, _) = try await zk.getDataIfPresent(configuration.paths.running(a.id!)),
                       let holder = try? WireJSON.decode(RunningTask.self, data) {
                        found[a.id!] = holder.worker
                    }
                }
                (emptyGroups, holders) = (empty, found)
            } catch {
                Tool.warn(tool, "ZooKeeper: \(error); workers and empty groups not shown")
            }
        }
        var shown = attempts
        for i in shown.indices where shown[i].host == nil { shown[i].host = holders[shown[i].id ?? 0] }
        var pools: [String: PoolUsage] = [:]
        for name in Set(live.filter { $0.state == .submitted }.compactMap(\.pool)) { pools[name] = try await store.pool(name) }
        var view = Self.view(instance, definition, shown, emptyGroups: emptyGroups, pools: pools)
        if let reason = try await waitReasons([instance], store: store)[id] { view.note = reason }
        if dot {
            // Each task as it stands in the current run: its latest attempt there, else the success
            // handed on to it, else what it waits for.
            var states: [String: String] = [:]
            var notes: [String: String] = [:]
            let kept = instance.kept
            for t in view.tasks {
                if let a = t.attempt {
                    if a.run == instance.run && a.state != .needFaultTolerance { states[t.task] = a.state.rawValue }
                } else {
                    if let state = t.state { states[t.task] = state }
                    if let note = t.note { notes[t.task] = note }
                }
            }
            for t in view.tasks where states[t.task] == nil {
                if let a = t.attempt, kept[t.task] == a.id { states[t.task] = a.state.rawValue + " (run \(a.run))" }
            }
            print(DotGraph.render(definition, states: states, notes: notes, title: "instance \(id): \(instance.name) v\(instance.version) \(instance.state.rawValue)"),
                  terminator: "")
            return .success
        }
        if json {
            print(WireJSON.string(view))
            return .success
        }
        print("instance \(id)  \(instance.name) v\(instance.version)  \(instance.state.rawValue)  run \(instance.run)" + (instance.host.map { "  master \($0)" } ?? ""))
        print("submitted \(time(instance.submitTime))" + (instance.startTime.map { "  started \(time($0))" } ?? "")
              + (instance.endTime.map { "  ended \(time($0))" } ?? "")
              + (instance.startTime.map { "  duration \(InstanceReport.duration($0, instance.endTime ?? ProcessStats.now()))" } ?? ""))
        if let text = definition.description { print("description \(Limits.escaped(text))") }
        if !view.params.isEmpty { print("parameters " + TablePrinter.pairs(view.params)) }
        if let fire = ScheduledInstanceView(instance).scheduleFire {
            let origin = instance.scheduleId.map { "schedule \($0)" } ?? instance.backfillId.map { "backfill \($0)" } ?? "parent's"
            print("scheduled  \(origin), fire time \(fire) (\(instance.timeZone ?? InstanceClock.unzonedName)), system.biz.date \(ScheduledInstanceView(instance).bizDate ?? "")")
        }
        if let note = view.note { print("note       \(Limits.escaped(note))") }
        print("")
        var printer = TablePrinter(columns: ["TASK", "ID", "RUN", "ATTEMPT", "STATE", "WORKER", "START", "END", "DURATION", "EXIT", "LOG", "MESSAGE"])
        for t in view.tasks {
            guard let a = t.attempt else {
                printer.add([t.task, "", "", "", t.state ?? "-", "", "", "", "", "", "", t.note ?? ""])
                continue
            }
            printer.add([t.task, a.id.map(String.init) ?? "", String(a.run), String(a.attempt), a.state.rawValue, a.host ?? "", a.startTime.map(time) ?? "",
                         a.endTime.map(time) ?? "", a.state.isTerminal ? InstanceReport.duration(a.startTime, a.endTime) : "",
                         a.exitCode.map(String.init) ?? "", a.logPath ?? "",
                         [a.message, t.note].compactMap { $0 }.joined(separator: "; ")])
        }
        print(printer.render(), terminator: "")
        let hints = InstanceReport.logHints(attempts, run: instance.run)
        if !hints.isEmpty { print("\n" + hints.joined(separator: "\n")) }
        return .success
    }

    /// The rows of `show`: every attempt, and what each task without one waits for.
    static func view(_ instance: WorkflowInstanceRecord, _ definition: WorkflowDefinition, _ attempts: [TaskInstanceRecord],
                     emptyGroups: Set<String>, pools: [String: PoolUsage] = [:]) -> InstanceView {
        let graph = TaskGraph(definition.tasks)
        var latest: [String: TaskInstanceRecord] = [:]
        for a in attempts where a.run == instance.run && a.state != .needFaultTolerance { latest[a.taskName] = a }
        let kept = instance.kept
        // Which tasks the run decided never to run: replayed from its attempts, as a master would.
        let engine = WorkflowEngine.restore(definition: definition, kept: Set(kept.keys),
                                            attempts: attempts.filter { $0.run == instance.run && $0.id != nil }.map(\.stored),
                                            controls: MasterScheduler.controls(of: instance)).engine
        var rows: [TaskView] = attempts.map { a in
            var note: String?
            if a.run == instance.run && latest[a.taskName]?.id == a.id {
                switch a.state {
                case .running where a.childInstanceId != nil:
                    note = "runs as child instance \(a.childInstanceId!) (ds-instance show \(a.childInstanceId!))"
                case .submitted where a.pool != nil:
                    let pool = a.pool!
                    if let usage = pools[pool], let slots = usage.slots {
                        note = "waiting for pool \(pool): \(usage.inUse)/\(slots) in use"
                    } else {
                        note = "waiting for pool \(pool), which does not exist: make it with ds-pool set \(pool) N"
                    }
                case .dispatched where emptyGroups.contains(a.workerGroup), .submitted where emptyGroups.contains(a.workerGroup):
                    note = "waiting for a worker of group \(a.workerGroup): none is registered"
                case .dispatched: note = "queued for a worker of group \(a.workerGroup)"
                case .submitted: note = "waiting in the master's backlog for room in the queue of group \(a.workerGroup)"
                default: break
                }
            } else if a.run != instance.run && kept[a.taskName] == a.id {
                note = engine.progress(of: a.taskName) == .notTaken
                    ? "success not used by run \(instance.run): not on the branch taken now"
                    : "success kept for run \(instance.run)"
            }
            return TaskView(task: a.taskName, attempt: a, note: note)
        }
        func succeeded(_ name: String) -> Bool {
            if let a = latest[name] { return a.state == .success || a.state == .forcedSuccess }
            return kept[name] != nil
        }
        func failed(_ name: String) -> Bool {
            guard let a = latest[name] else { return false }
            return [.failure, .kill].contains(a.state)
        }
        // A failed task each task (transitively) needs, found once per task in dependency order:
        // linear, where a search per task would be quadratic on a 10,000-task chain.
        var failedAncestor: [String?] = Array(repeating: nil, count: graph.count)
        var pending = graph.upstream.map(\.count)
        var ready = (0..<graph.count).filter { pending[$0] == 0 }
        while let t = ready.popLast() {
            for d in graph.downstream[t] {
                if failedAncestor[d] == nil { failedAncestor[d] = failed(graph.names[t]) ? graph.names[t] : failedAncestor[t] }
                pending[d] -= 1
                if pending[d] == 0 { ready.append(d) }
            }
        }
        for (i, name) in graph.names.enumerated() where latest[name] == nil && kept[name] == nil {
            let ups = graph.upstream[i].map { graph.names[$0] }
            let upstreamFailed = failedAncestor[i]
            let note: String
            if engine.progress[i] == .notTaken {
                let deciders = ups.filter { latest[$0]?.branch != nil }
                note = deciders.isEmpty ? "not run: no task it needs was taken"
                                        : "not run: not on the branch \(deciders.map { Limits.quoted($0) }.joined(separator: ", ")) took"
                rows.append(TaskView(task: name, attempt: nil, note: note, state: TaskView.skipped))
                continue
            }
            if engine.progress[i] == .delayed {
                rows.append(TaskView(task: name, attempt: nil, note: "ready; starts once its delay of \(DurationText.format(engine.delays[i])) has passed",
                                     state: TaskState.delayExecution.rawValue))
                continue
            }
            if engine.progress[i] == .disabled {
                rows.append(TaskView(task: name, attempt: nil, note: "disabled (enabled: false); what depends on it runs as if it succeeded",
                                     state: TaskView.disabled))
                continue
            }
            switch instance.state {
            case .stop, .pause:
                note = "not started: the instance was \(instance.state == .stop ? "stopped" : "paused")"
            case .readyStop, .readyPause:
                note = "will not start: the instance is \(instance.state == .readyStop ? "stopping" : "pausing")"
            case .submitted, .waitingThread:
                note = "waits for the instance to start"
            default:
                if let upstreamFailed {
                    note = "upstream \(Limits.quoted(upstreamFailed)) failed; will not run"
                } else if instance.state == .failure {
                    note = "not run: the instance ended after a failure"
                } else {
                    let waiting = ups.filter { !succeeded($0) }
                    note = waiting.isEmpty ? "ready" : "waiting for upstream \(waiting.prefix(5).map { Limits.quoted($0) }.joined(separator: ", "))\(waiting.count > 5 ? ", …" : "")"
                }
            }
            rows.append(TaskView(task: name, attempt: nil, note: note))
        }
        let params = (try? JSONDecoder().decode([String: String].self, from: Data(instance.paramsJson.utf8))) ?? [:]
        return InstanceView(instance: instance, note: note(for: instance), params: params, tasks: rows)
    }

    /// Stored definitions; `quiet` prints each workflow name once, or with `name` its version numbers.
    public static func definitions(_ name: String?, json: Bool, quiet: Bool = false, configuration: Configuration) async throws -> ExitStatus {
        let store = try configuration.openStore()
        let all = try await store.definitions(named: name)
        if let name, all.isEmpty {
            throw ControlRefusal(description: "no workflow named \(Limits.quoted(name)) is stored; see ds-instance definitions", exitStatus: .dataError)
        }
        if quiet {
            var seen: Set<String> = []
            for d in all where name != nil || seen.insert(d.name).inserted { print(name == nil ? d.name : String(d.version)) }
            return .success
        }
        if json {
            for d in all { print(WireJSON.string(d)) }
            return .success
        }
        var printer = TablePrinter(columns: ["WORKFLOW", "VERSION", "TASKS", "INSTANCES", "STORED", "DESCRIPTION"])
        for d in all {
            // The first line, cut: the whole text is in --json and ds-instance definition.
            let line = d.description.map { $0.split(separator: "\n", omittingEmptySubsequences: false)[0] }.map { $0.count > 60 ? $0.prefix(59) + "…" : String($0) }
            printer.add([d.name, String(d.version), String(d.tasks), String(d.instances), time(d.createdAt), line ?? "-"])
        }
        print(printer.render(), terminator: "")
        return .success
    }

    /// Prints a stored version as workflow JSON that `ds-submit` accepts again.
    public static func definition(_ name: String, version: Int?, dot: Bool, configuration: Configuration) async throws -> ExitStatus {
        let store = try configuration.openStore()
        guard let record = try await store.storedDefinition(named: name, version: version) else {
            throw ControlRefusal(description: "no stored definition \(Limits.quoted(name))\(version.map { " version \($0)" } ?? ""); see ds-instance definitions", exitStatus: .dataError)
        }
        let definition = try WorkflowDefinition.fromStored(record.json)
        if dot {
            print(DotGraph.render(definition, title: "\(definition.name) v\(record.version)"), terminator: "")
        } else {
            print(definition.canonicalJSON(pretty: true))
        }
        return .success
    }

    // MARK: Waiting and control

    /// Follows an instance until it ends (as `ds-submit --wait`): 0 when it ends in `goal`, else 1.
    public static func wait(_ id: Int64, goal: WorkflowState = .success, json: Bool, configuration: Configuration) async throws -> ExitStatus {
        let store = try configuration.openStore()
        guard let instance = try await store.instance(id) else {
            throw ControlRefusal(description: "instance \(id) does not exist in \(store.path); see ds-instance list", exitStatus: .dataError)
        }
        let definition = try await store.definition(of: instance)
        let zk = try await configuration.connectZooKeeper()
        defer { zk.close() }
        if !json && !Tool.stdoutIsTerminal && !instance.state.isTerminal {
            InterruptNotice.install(tool: tool, instanceID: id)
            Tool.warn(tool, "waiting for instance \(id) of '\(instance.name)' (\(instance.state.rawValue))")
        }
        return try await follow(id, definition: definition, goal: goal, json: json, store: store, zk: zk, configuration: configuration)
    }

    static func follow(_ id: Int64, definition: WorkflowDefinition, goal: WorkflowState, json: Bool, store: Store, zk: ZooKeeperClient,
                       configuration: Configuration) async throws -> ExitStatus {
        InterruptNotice.install(tool: tool, instanceID: id)
        var watcher = InstanceWatcher(store: store, zk: zk, paths: configuration.paths, definition: definition, instanceID: id)
        watcher.tool = tool
        let final = try await watcher.waitForEnd(live: !json && Tool.stdoutIsTerminal)
        final.print(json: json, tool: tool)
        if final.instance.state != goal {
            Tool.warn(tool, "instance \(id) ended \(final.instance.state.rawValue), not \(goal.rawValue)")
            return .failure
        }
        return .success
    }

    /// Applies a verb; with `wait`, follows the instance until it ends.
    public static func control(_ id: Int64, _ verb: ControlVerb, wait: Bool, json: Bool, configuration: Configuration) async throws -> ExitStatus {
        // ZooKeeper first, as ds-submit: nothing is written for a cluster that cannot be told.
        let zk = try await configuration.connectZooKeeper()
        defer { zk.close() }
        let store = try configuration.openStore()
        let outcome = try await store.control(id, verb, now: ProcessStats.now())
        if outcome.commandWritten { try await Submitter.notifyMasters(zk, configuration.paths, commandID: id) }
        if json && !wait { print(WireJSON.string(outcome)) }
        if !json {
            var line = "instance \(id): \(verb.name): \(outcome.from.rawValue) -> \(outcome.to.rawValue)"
            if outcome.run != 1 && ![ControlVerb.stop, .pause].contains(verb) {
                line += ", run \(outcome.run)" + (outcome.kept.isEmpty ? ", every task runs" : ", keeping \(outcome.kept.count) succeeded task\(outcome.kept.count == 1 ? "" : "s")")
            }
            if wait { Tool.warn(tool, line) } else { print(line) }
        }
        guard wait else { return .success }
        let instance = try await store.instance(id)!
        return try await follow(id, definition: try await store.definition(of: instance), goal: verb.goal, json: json, store: store, zk: zk,
                                configuration: configuration)
    }

    static let timeFormatter: DateFormatter = {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return f
    }()

    static func time(_ t: Double) -> String { timeFormatter.string(from: Date(timeIntervalSince1970: t)) }
}
