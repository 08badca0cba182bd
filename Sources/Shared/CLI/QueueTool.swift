import Foundation

/// One line of `ds-queue list`: a ready attempt, where it waits, and its place in dispatch order.
public struct QueueRow: Sendable, Codable {
    /// "window" (a node in /queue/<group>) or "backlog" (a SUBMITTED row a master feeds in later).
    public var location: String
    public var group: String
    public var key: TaskQueueKey
    public var workflowPriority: Priority
    public var workflowInstanceId: Int64
    public var taskPriority: Priority
    public var taskInstanceId: Int64
    public var task: String?
    public var workflow: String?
    public var ageSeconds: Double?

    init(_ entry: QueueEntry, location: String, now: Double) {
        self.location = location
        group = entry.group
        key = entry.key
        workflowPriority = entry.key.workflowPriority
        workflowInstanceId = entry.key.workflowInstanceId
        taskPriority = entry.key.taskPriority
        taskInstanceId = entry.key.taskInstanceId
        task = entry.task
        workflow = entry.workflow
        ageSeconds = entry.readySince.map { max(0, now - $0) }
    }
}

/// A node in a group's queue that no master dispatches: a name that is no queue key, or a key of
/// no task attempt in the database. `ds-queue list` shows it as it is; `remove --raw` deletes it.
public struct MalformedQueueRow: Sendable, Codable {
    public var location = "malformed"
    public var group: String
    /// The node's name as it is in ZooKeeper.
    public var rawName: String
    public var problem: String
}

/// `ds-queue`: the priority queue, the window in ZooKeeper and the backlog behind it.
public enum QueueTool {
    static let tool = "ds-queue"

    /// One entry of the dispatch simulation: smallest key first.
    struct Pending: Comparable {
        var entry: QueueEntry
        var location: String
        static func < (a: Pending, b: Pending) -> Bool { a.entry.key < b.entry.key }
        static func == (a: Pending, b: Pending) -> Bool { a.entry.key == b.entry.key }
    }

    /// Prints the queue of each group (or of `group`) in the order a worker of the group will run
    /// it: the smallest key in the window first; each time one leaves the window, the master feeds
    /// the smallest key of the backlog in (`feedQueues`), which may pass items already waiting.
    /// The window is bounded (`--queue-window`), the backlog is read from a cursor: memory stays
    /// bounded however long the backlog. Without the database (a host that reaches only
    /// ZooKeeper) the window alone is listed, and stderr says so.
    /// `limit` 0 lists all; a list cut at it says so on stderr. `quiet` prints task instance ids only.
    public static func list(group: String?, limit: Int, json: Bool, quiet: Bool = false, configuration: Configuration) async throws -> ExitStatus {
        let zk = try await configuration.connectZooKeeper()
        defer { zk.close() }
        let paths = configuration.paths
        let store = configuration.databaseMayExist
            ? try configuration.openStore() : nil
        if store == nil { Tool.warn(tool, "no database at \(configuration.databasePath): listing the window in ZooKeeper only, without the backlog or names") }
        var groups = Set(try await zk.childrenIfPresent(paths.queue))
        if let store { groups.formUnion(try await store.backlogGroups()) }
        if let group { groups = groups.contains(group) ? [group] : [] }
        var printed = 0
        var malformed = 0
        let now = ProcessStats.now()
        if !json && !quiet { print(table.header()) }
        func printMalformed(_ row: MalformedQueueRow) {
            malformed += 1
            printed += 1
            print(quiet ? row.rawName : json ? WireJSON.string(row) : table.line([row.location, row.group, row.rawName, "?", "?", "?", "?", "?"]))
        }
        groupLoop: for g in groups.sorted() {
            let names = Limits.groupNameProblem(g) == nil ? try await zk.childrenIfPresent(paths.queue(g)) : []
            let keys = names.compactMap(TaskQueueKey.init).sorted()
            let known = try await store?.attemptNames(keys.map(\.taskInstanceId)) ?? [:]
            // What no master dispatches, first: a name that is no key, a key of no attempt.
            for name in names.sorted() where TaskQueueKey(name) == nil {
                if limit > 0, printed >= limit { ListOutput.warnCut(tool: tool, limit: limit, noun: "items"); break groupLoop }
                printMalformed(MalformedQueueRow(group: g, rawName: name, problem: "not a queue key (such as 2-000000000042-2-000000000107)"))
            }
            var window = MinHeap<Pending>()
            for k in keys {
                let problem = try await queuedProblem(k, named: known[k.taskInstanceId] != nil, group: g, zk: zk, paths: paths, store: store)
                if problem == .some(nil) { continue }  // claimed while this looked
                if let problem = problem ?? nil {
                    if limit > 0, printed >= limit { ListOutput.warnCut(tool: tool, limit: limit, noun: "items"); break groupLoop }
                    printMalformed(MalformedQueueRow(group: g, rawName: k.description, problem: problem))
                    continue
                }
                let n = known[k.taskInstanceId]
                window.push(Pending(entry: QueueEntry(key: k, group: g, task: n?.task, workflow: n?.workflow, readySince: n?.since),
                                    location: "window"))
            }
            let inWindow = Set(keys.map(\.taskInstanceId))
            // One backlog item is fed in for each item that leaves the window.
            var backlog = BacklogPages(store: store, group: g, skipping: inWindow)
            if window.isEmpty, let first = try await backlog.next() { window.push(Pending(entry: first, location: "backlog")) }
            while let next = window.pop() {
                if limit > 0, printed >= limit {
                    ListOutput.warnCut(tool: tool, limit: limit, noun: "items")
                    break groupLoop
                }
                let row = QueueRow(next.entry, location: next.location, now: now)
                print(quiet ? String(row.taskInstanceId) : json ? WireJSON.string(row) : line(row))
                printed += 1
                if let fed = try await backlog.next() { window.push(Pending(entry: fed, location: "backlog")) }
            }
        }
        if malformed > 0 {
            Tool.warn(tool, "\(malformed) malformed queue node\(malformed == 1 ? "" : "s") (WHERE malformed): no master dispatches them; "
                      + "delete each with ds-queue remove --raw NAME")
        }
        return .success
    }

    /// Why a well-formed key in the window is no real queue item: nil when it is one (or when
    /// there is no database to tell), `.some(nil)` when it left the window while this looked.
    /// A real item's attempt is SUBMITTED or DISPATCHED; any other state is looked at twice, as
    /// a worker may have claimed it (and started it) between the listing and the read.
    static func queuedProblem(_ k: TaskQueueKey, named: Bool, group: String, zk: ZooKeeperClient, paths: ZooKeeperPaths,
                              store: Store?) async throws -> String?? {
        guard let store else { return nil }
        let problem: String
        if !named {
            problem = "no task attempt \(k.taskInstanceId) in the database"
        } else if let state = try await store.attemptRecord(k.taskInstanceId)?.state, state != .submitted && state != .dispatched {
            problem = "task attempt \(k.taskInstanceId) is \(state.rawValue), not queued"
        } else {
            return nil
        }
        return try await zk.exists(paths.queueItem(group, k)) == nil ? .some(nil) : .some(problem)
    }

    /// The next item of each group: what a worker of the group claims next.
    public static func peek(group: String?, json: Bool, quiet: Bool = false, configuration: Configuration) async throws -> ExitStatus {
        let zk = try await configuration.connectZooKeeper()
        defer { zk.close() }
        let paths = configuration.paths
        let store = configuration.databaseMayExist
            ? try configuration.openStore() : nil
        var groups = try await zk.childrenIfPresent(paths.queue)
        if let group { groups = groups.filter { $0 == group } }
        if !json && !quiet { print(table.header()) }
        let now = ProcessStats.now()
        for g in groups.sorted() where Limits.groupNameProblem(g) == nil {
            guard let first = try await zk.childrenIfPresent(paths.queue(g)).compactMap(TaskQueueKey.init).min() else { continue }
            let n = try await store?.attemptNames([first.taskInstanceId])[first.taskInstanceId]
            let row = QueueRow(QueueEntry(key: first, group: g, task: n?.task, workflow: n?.workflow, readySince: n?.since),
                               location: "window", now: now)
            print(quiet ? String(row.taskInstanceId) : json ? WireJSON.string(row) : line(row))
        }
        return .success
    }

    /// `ds-queue remove`: through the owning master, which takes the item out of ZooKeeper or its
    /// backlog so that nothing puts it back; with `wait`, until it has (exit 1 if a worker got it first).
    public static func remove(_ target: String, wait: Bool, json: Bool, configuration: Configuration) async throws -> ExitStatus {
        guard let id = TaskQueueKey(target)?.taskInstanceId ?? Int64(target), id > 0 else {
            throw ControlRefusal(description: "\(Limits.quoted(target)) is neither a queue key (such as 2-000000000042-2-000000000107) nor a task instance id", exitStatus: .usage)
        }
        let zk = try await configuration.connectZooKeeper()
        defer { zk.close() }
        let store = try configuration.openStore()
        let instance = try await store.requestRemove(attempt: id, now: ProcessStats.now())
        try await Submitter.notifyMasters(zk, configuration.paths, commandID: instance)
        struct Removal: Encodable { var taskInstanceId: Int64; var instanceId: Int64; var state: TaskState? }
        guard wait else {
            print(json ? WireJSON.string(Removal(taskInstanceId: id, instanceId: instance, state: nil)) : "removing task \(id) of instance \(instance)")
            return .success
        }
        InterruptNotice.install(tool: tool, instanceID: instance)
        while true {
            let state = try await store.taskAttempts(of: instance).first { $0.id == id }?.state
            if let state, state != .submitted && state != .dispatched {
                print(json ? WireJSON.string(Removal(taskInstanceId: id, instanceId: instance, state: state))
                           : "task \(id) of instance \(instance): \(state.rawValue)")
                if state == .kill { return .success }
                Tool.warn(tool, "task \(id) was claimed by a worker before it could be removed; stop its instance with ds-instance stop \(instance)")
                return .failure
            }
            try await _Concurrency.Task.sleep(for: .milliseconds(100))
        }
    }

    /// `ds-queue remove --raw NAME`: deletes a malformed node (as `list` shows it) straight from
    /// ZooKeeper, in `group` or in the one group that has it. No master dispatches such a node, so
    /// none has to take it out; the queue item of a real attempt is refused (its master must).
    public static func removeRaw(_ name: String, group: String?, json: Bool, configuration: Configuration) async throws -> ExitStatus {
        guard !name.isEmpty, name != ".", name != "..", !name.contains("/"), name.utf8.count <= 1024 else {
            throw ControlRefusal(description: "--raw \(Limits.quoted(name)) is no node name (one path component, at most 1024 bytes)", exitStatus: .usage)
        }
        let zk = try await configuration.connectZooKeeper()
        defer { zk.close() }
        let paths = configuration.paths
        if let key = TaskQueueKey(name), configuration.databaseMayExist,
           let state = try await configuration.openStore().attemptRecord(key.taskInstanceId)?.state,
           state == .submitted || state == .dispatched {
            throw ControlRefusal(description: "\(Limits.quoted(name)) is the queue item of task \(key.taskInstanceId): remove it with ds-queue remove \(key.taskInstanceId), through its master",
                                 exitStatus: .usage)
        }
        var holders: [String] = []
        for g in try await zk.childrenIfPresent(paths.queue).sorted() where group == nil || g == group {
            guard Limits.groupNameProblem(g) == nil else { continue }
            if try await zk.exists(paths.queue(g) + "/" + name) != nil { holders.append(g) }
        }
        guard !holders.isEmpty else {
            throw ControlRefusal(description: "no queue node \(Limits.quoted(name))\(group.map { " in group \($0)" } ?? ""); see ds-queue list", exitStatus: .dataError)
        }
        guard holders.count == 1 else {
            throw ControlRefusal(description: "\(Limits.quoted(name)) is in groups \(holders.joined(separator: ", ")): say which with --group", exitStatus: .usage)
        }
        let path = paths.queue(holders[0]) + "/" + name
        try await zk.delete(path)
        struct Removed: Encodable { var group: String; var rawName: String }
        print(json ? WireJSON.string(Removed(group: holders[0], rawName: name)) : "removed queue node \(Limits.escaped(path))")
        return .success
    }

    /// One group in `ds-queue stats`.
    public struct GroupStats: Codable, Sendable {
        public var group: String
        public var window: Int
        public var backlog: Int
        /// By the workflow priority that leads the keys, HIGHEST first.
        public var windowByPriority: [Int]
        public var backlogByPriority: [Int]
        /// Seconds since the oldest item of the window was queued.
        public var oldestWindowAgeSeconds: Double?
        public var workers: [String]
    }

    /// One worker in `ds-queue stats`.
    public struct WorkerStats: Codable, Sendable {
        public var worker: String
        public var groups: [String]
        public var slots: Int?
        public var running: Int
        public var freeSlots: Int?
    }

    public struct Stats: Codable, Sendable {
        public var groups: [GroupStats]
        public var workers: [WorkerStats]
        /// Groups with items waiting and no worker registered: nothing will run them.
        public var groupsWithoutWorkers: [String]
    }

    /// Depth per group and priority (window and backlog), the oldest item's age, running tasks and
    /// free slots per worker, and groups with items but no worker, from ZooKeeper alone: masters
    /// publish their backlog counts in their registry nodes.
    public static func stats(json: Bool, configuration: Configuration) async throws -> ExitStatus {
        let zk = try await configuration.connectZooKeeper()
        defer { zk.close() }
        let paths = configuration.paths
        var backlog: [String: [Int]] = [:]
        for m in try await zk.childrenIfPresent(paths.masters) {
            guard let (data, _) = try await zk.getDataIfPresent(paths.masters + "/" + m),
                  let beat = try? WireJSON.decode(Heartbeat.self, data) else { continue }
            for (g, counts) in beat.backlog ?? [:] where counts.count == 5 {
                backlog[g] = zip(backlog[g] ?? [0, 0, 0, 0, 0], counts).map { $0 + $1 }
            }
        }
        var workersByGroup: [String: [String]] = [:]
        var workers: [String: WorkerStats] = [:]
        for g in try await zk.childrenIfPresent(paths.workers) where Limits.groupNameProblem(g) == nil {
            for w in try await zk.childrenIfPresent(paths.workerGroup(g)) {
                workersByGroup[g, default: []].append(w)
                if workers[w] == nil {
                    // A heartbeat that does not decode (another version) leaves slots unknown, shown as ?.
                    let beat = try await zk.getDataIfPresent(paths.workerGroup(g) + "/" + w).flatMap { try? WireJSON.decode(Heartbeat.self, $0.0) }
                    workers[w] = WorkerStats(worker: w, groups: [], slots: beat?.slots, running: 0, freeSlots: nil)
                }
                workers[w]!.groups.append(g)
            }
        }
        for id in try await zk.childrenIfPresent(paths.running) {
            guard let (data, _) = try await zk.getDataIfPresent(paths.running + "/" + id),
                  let holder = try? WireJSON.decode(RunningTask.self, data), workers[holder.worker] != nil else { continue }
            workers[holder.worker]!.running += 1
        }
        for (w, s) in workers { workers[w]!.freeSlots = s.slots.map { max(0, $0 - s.running) } }
        let queued = try await zk.childrenIfPresent(paths.queue).filter { Limits.groupNameProblem($0) == nil }
        let now = ProcessStats.now()
        var groups: [GroupStats] = []
        for g in Set(queued).union(backlog.keys).union(workersByGroup.keys).sorted() {
            let keys = try await zk.childrenIfPresent(paths.queue(g)).compactMap(TaskQueueKey.init)
            var byPriority = [0, 0, 0, 0, 0]
            for k in keys { byPriority[k.workflowPriority.rank] += 1 }
            // The smallest creation time among the window's nodes (a bounded number of lookups).
            let created = try await keys.concurrentMap(limit: 64) { k in try await zk.exists(paths.queueItem(g, k))?.createdMillis }
            let oldest = created.compactMap { $0 }.min().map { Double($0) / 1000 }
            let b = backlog[g] ?? [0, 0, 0, 0, 0]
            groups.append(GroupStats(group: g, window: keys.count, backlog: b.reduce(0, +), windowByPriority: byPriority,
                                     backlogByPriority: b, oldestWindowAgeSeconds: oldest.map { max(0, now - $0) },
                                     workers: (workersByGroup[g] ?? []).sorted()))
        }
        let stats = Stats(groups: groups, workers: workers.values.sorted { $0.worker < $1.worker },
                          groupsWithoutWorkers: groups.filter { $0.window + $0.backlog > 0 && $0.workers.isEmpty }.map(\.group))
        if json {
            print(WireJSON.string(stats))
            return .success
        }
        var table = TablePrinter(columns: ["GROUP", "WINDOW", "BACKLOG", "HIGHEST", "HIGH", "MEDIUM", "LOW", "LOWEST", "OLDEST", "WORKERS"])
        for g in groups {
            let total = zip(g.windowByPriority, g.backlogByPriority).map { String($0 + $1) }
            table.add([g.group, String(g.window), String(g.backlog)] + total + [g.oldestWindowAgeSeconds.map(age) ?? "-", String(g.workers.count)])
        }
        print(table.render(), terminator: "")
        var workerTable = TablePrinter(columns: ["WORKER", "GROUPS", "SLOTS", "RUNNING", "FREE"])
        for w in stats.workers {
            workerTable.add([w.worker, w.groups.sorted().joined(separator: ","), w.slots.map(String.init) ?? "?", String(w.running),
                             w.freeSlots.map(String.init) ?? "?"])
        }
        print("")
        print(workerTable.render(), terminator: "")
        if !stats.groupsWithoutWorkers.isEmpty {
            print("")
            print("items wait in groups with no worker: \(stats.groupsWithoutWorkers.joined(separator: ", ")) (start ds-worker --group G)")
        }
        return .success
    }

    /// Fixed least widths: a list streams, so widths cannot come from the rows.
    static let table = TablePrinter(columns: ["WHERE", "GROUP", "KEY", "WORKFLOW", "INSTANCE", "TASK", "TASK_ID", "AGE"],
                                    widths: [7, 12, 29, 20, 8, 20, 7])

    static func line(_ r: QueueRow) -> String {
        table.line([r.location, r.group, r.key.description, r.workflow ?? "?", String(r.workflowInstanceId), r.task ?? "?",
                    String(r.taskInstanceId), r.ageSeconds.map(age) ?? "?"])
    }

    static func age(_ s: Double) -> String {
        s < 60 ? String(format: "%.1fs", s) : s < 3600 ? String(format: "%.1fm", s / 60) : String(format: "%.1fh", s / 3600)
    }

    /// How `push`'s refusals name what they refuse, after the tool's own "ds-queue: " prefix.
    static let pushSource = "push"

    /// The command of `push` from standard input, at most `Limits.maxCommandBytes`, refused
    /// (exit 65) unless it is UTF-8, as ds-submit refuses a workflow file's: never repaired to U+FFFD.
    public static func readCommandFromStandardInput() throws -> String {
        let data = try Submitter.readInput("-")
        guard data.count <= Limits.maxCommandBytes else {
            throw WorkflowValidationError(source: pushSource, problems: [ValidationProblem(
                field: "command", message: "standard input holds more than \(Limits.maxCommandBytes) bytes, the limit of a command")])
        }
        guard let text = String(validating: data, as: UTF8.self) else {
            throw WorkflowValidationError(source: pushSource, problems: [ValidationProblem(
                field: "command", message: "standard input is not valid UTF-8; nothing was pushed")])
        }
        return text
    }

    /// Refuses (exit 65) a command line argument that is not UTF-8: Swift would hand the option
    /// its value with U+FFFD in place of the bad bytes, and `push` would run something else.
    public static func checkArgumentsAreUTF8() throws {
        for i in 1..<Int(CommandLine.argc) {
            guard let raw = CommandLine.unsafeArgv[i] else { continue }
            guard String(validatingCString: raw) != nil else {
                throw WorkflowValidationError(source: pushSource, problems: [ValidationProblem(
                    field: "arguments", message: "argument \(i) is not valid UTF-8; nothing was pushed")])
            }
        }
    }

    /// `ds-queue push`: an ad-hoc SHELL task, run as a one-task instance of a workflow of its own
    /// name, so that `ds-instance` and the result store see it like any other.
    public static func push(command: String, name: String, priority: Priority, group: String, env: [String: String], wait: Bool,
                            json: Bool, configuration: Configuration) async throws -> ExitStatus {
        struct Task: Encodable {
            var name: String, command: String, priority: Priority, worker_group: String, env: [String: String]
        }
        struct Workflow: Encodable { var name: String, priority: Priority, tasks: [Task] }
        guard !command.allSatisfy(\.isWhitespace) else {
            throw WorkflowValidationError(source: pushSource, problems: [
                ValidationProblem(field: "command", message: "is empty: give --command, or the command on standard input")])
        }
        let text = try JSONEncoder.sorted.encode(Workflow(name: name, priority: priority, tasks: [
            Task(name: name, command: command, priority: priority, worker_group: group, env: env)]))
        // Through the same parser and checks as a workflow file: every bound and rule applies.
        let definition = try WorkflowParser.parse(text, source: pushSource)
        try Submitter.checkResolution(definition, overrides: [:], source: pushSource)
        var request = SubmitRequest(input: "-")
        request.wait = wait
        request.json = json
        request.reuseAnyVersion = true
        let (status, submitted) = try await Submitter.submit(definition, request, tool: tool, configuration: configuration, printID: false)
        guard !wait, let submitted else { return status }
        // The task's own id comes once a master has dispatched it; a moment is enough when one runs.
        let store = try configuration.openStore()
        var taskID: Int64?
        let deadline = ProcessStats.now() + 5
        while taskID == nil && ProcessStats.now() < deadline {
            taskID = try await store.taskAttempts(of: submitted.instanceId).first?.id
            if taskID == nil { try await _Concurrency.Task.sleep(for: .milliseconds(50)) }
        }
        if json {
            struct Pushed: Encodable { var instanceId: Int64; var taskInstanceId: Int64?; var workflow: String }
            print(WireJSON.string(Pushed(instanceId: submitted.instanceId, taskInstanceId: taskID, workflow: name)))
        } else {
            print("instance \(submitted.instanceId) task \(taskID.map(String.init) ?? "-")")
            if taskID == nil { Tool.warn(tool, "no master has dispatched it yet; see ds-instance show \(submitted.instanceId)") }
        }
        return .success
    }
}

/// The backlog of one group in key order, read a page at a time: memory stays bounded however
/// long the backlog. Attempts also in the window (fed, not yet recorded DISPATCHED) are skipped.
struct BacklogPages {
    let store: Store?
    let group: String
    let skipping: Set<Int64>
    private var page: ArraySlice<QueueEntry> = []
    private var last: TaskQueueKey?
    private var exhausted = false
    static let pageSize = 1000

    init(store: Store?, group: String, skipping: Set<Int64>) {
        self.store = store
        self.group = group
        self.skipping = skipping
        exhausted = store == nil
    }

    mutating func next() async throws -> QueueEntry? {
        while true {
            if let entry = page.popFirst() {
                if skipping.contains(entry.key.taskInstanceId) { continue }
                return entry
            }
            guard !exhausted, let store else { return nil }
            let fetched = try await store.backlogPage(group: group, after: last, limit: Self.pageSize)
            exhausted = fetched.count < Self.pageSize
            last = fetched.last?.key
            page = fetched[...]
            if fetched.isEmpty { return nil }
        }
    }
}
