import Foundation

extension QueueTool {
    /// One change of the queue, as `watch` prints it.
    public struct QueueEvent: Codable, Sendable {
        /// "added", "claimed" (a worker took it) or "removed" (taken back by a master, or gone unclaimed).
        public var event: String
        public var group: String
        public var key: TaskQueueKey
        public var taskInstanceId: Int64
        public var worker: String?
        public var time: Double
        /// True for an item claimed without ever being seen in the window: added and claimed
        /// between two listings (see `watch`). Absent otherwise.
        public var unseen: Bool?
    }

    /// The most task instance ids `watch` remembers having seen queued, the oldest forgotten
    /// first: a watch left running for weeks must not grow without end.
    static let maxRememberedItems = 100_000

    /// Prints additions, claims and removals as they happen, until interrupted. Each listing
    /// re-arms its watch; a change between two listings is seen by comparing them.
    ///
    /// ZooKeeper watches fire once: an item added and claimed between a notification and the next
    /// listing is never in a listing of the window. `/running` and `/results` are watched too, so such a claim is
    /// still printed, as `claimed` with `unseen` (its key and group from the database); without
    /// the database its key is not known, and stderr says how many such claims were missed.
    public static func watch(group: String?, json: Bool, configuration: Configuration) async throws -> ExitStatus {
        let zk = try await configuration.connectZooKeeper()
        defer { zk.close() }
        let paths = configuration.paths
        // Opened once it exists: a watch may start before the first master has made it.
        var store: Store?
        func openStore() throws -> Store? {
            if store == nil, configuration.databaseMayExist {
                store = try configuration.openStore()
            }
            return store
        }
        let (changes, signal) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        var known: [String: Set<String>] = [:]
        var seenQueued = RecentIDs(limit: maxRememberedItems)
        var running: Set<Int64> = []
        var first = true
        signal.yield(())
        Tool.warn(tool, "watching \(paths.queue)\(group.map { "/" + $0 } ?? ""); Ctrl-C stops")
        for await _ in changes {
            // Before any daemon made the tree there is no /queue to watch the children of: its creation is.
            if try await zk.exists(paths.queue, watch: { _ in signal.yield(()) }) == nil { continue }
            var groups = try await zk.childrenIfPresent(paths.queue) { _ in signal.yield(()) }
            if let group { groups = groups.filter { $0 == group } }
            for g in groups.sorted() where Limits.groupNameProblem(g) == nil {
                let now = Set(try await zk.childrenIfPresent(paths.queue(g)) { _ in signal.yield(()) }.filter { TaskQueueKey($0) != nil })
                defer { known[g] = now }
                for name in now { seenQueued.insert(TaskQueueKey(name)!.taskInstanceId) }
                guard !first else { continue }
                let before = known[g] ?? []
                for name in now.subtracting(before).sorted() { emit(QueueEvent(event: "added", group: g, key: TaskQueueKey(name)!,
                                                                              taskInstanceId: TaskQueueKey(name)!.taskInstanceId,
                                                                              worker: nil, time: ProcessStats.now()), json: json) }
                for name in before.subtracting(now).sorted() {
                    let key = TaskQueueKey(name)!
                    let (event, worker) = try await whatBecameOf(key.taskInstanceId, zk: zk, paths: paths, store: try openStore())
                    emit(QueueEvent(event: event, group: g, key: key, taskInstanceId: key.taskInstanceId, worker: worker,
                                    time: ProcessStats.now()), json: json)
                }
            }
            // Claims of items never seen queued: added and claimed between two listings. A claim
            // leaves a /running node while the task runs, then a /results node until a master has
            // stored it: a task that ends at once is still seen in one of them.
            let runningNow = Set(try await zk.childrenIfPresent(paths.running) { _ in signal.yield(()) }.compactMap { Int64($0) })
                .union(try await zk.childrenIfPresent(paths.results) { _ in signal.yield(()) }.compactMap { Int64($0) })
            defer { running = runningNow }
            if first { first = false; continue }
            var missed = 0
            for id in runningNow.subtracting(running).sorted() where !seenQueued.contains(id) {
                seenQueued.insert(id)
                guard let (key, g) = try await queueKey(of: id, store: try openStore()) else { missed += 1; continue }
                guard group == nil || group == g else { continue }
                let worker = try await whatBecameOf(id, zk: zk, paths: paths, store: store).1
                emit(QueueEvent(event: "claimed", group: g, key: key, taskInstanceId: id, worker: worker, time: ProcessStats.now(), unseen: true),
                     json: json)
            }
            if missed > 0 {
                Tool.warn(tool, "\(missed) item\(missed == 1 ? " was" : "s were") added and claimed between two listings (ZooKeeper watches fire once) "
                          + "and, without the database at \(configuration.databasePath), cannot be named")
            }
        }
        return .success
    }

    /// The queue key and group an attempt had, from the database; nil without it.
    static func queueKey(of id: Int64, store: Store?) async throws -> (TaskQueueKey, String)? {
        guard let store, let attempt = try await store.attemptRecord(id),
              let instance = try await store.instance(attempt.workflowInstanceId) else { return nil }
        return (TaskQueueKey(workflowPriority: instance.priority, workflowInstanceId: attempt.workflowInstanceId,
                             taskPriority: attempt.priority, taskInstanceId: id), attempt.workerGroup)
    }

    /// Why an item left the queue. A claim leaves a `/running` node, then a result; a task that
    /// ended at once may have left both before this looks, and then the database tells (its
    /// attempt names the worker that ran it). Without the database, or before the master has
    /// stored anything, the item "left": claimed or removed, this cannot tell.
    static func whatBecameOf(_ id: Int64, zk: ZooKeeperClient, paths: ZooKeeperPaths, store: Store?) async throws -> (String, String?) {
        if let (data, _) = try await zk.getDataIfPresent(paths.running(id)) {
            return ("claimed", (try? WireJSON.decode(RunningTask.self, data))?.worker)
        }
        if let (data, _) = try await zk.getDataIfPresent(paths.result(id)) {
            return ("claimed", (try? WireJSON.decode(TaskResultMessage.self, data))?.worker)
        }
        guard let store else { return ("left", nil) }
        // A master stores a claimed attempt's outcome (with its worker) before it deletes the result,
        // and a removal's KILL or PAUSE just after it deletes the node: a moment tells.
        for _ in 0..<30 {
            guard let attempt = try await store.attemptRecord(id) else { return ("left", nil) }
            if let host = attempt.host { return ("claimed", host) }
            if attempt.state == .running { return ("claimed", nil) }
            if attempt.state == .kill || attempt.state == .pause { return ("removed", nil) }
            try await _Concurrency.Task.sleep(for: .milliseconds(100))
        }
        return ("left", nil)
    }

    static func emit(_ e: QueueEvent, json: Bool) {
        if json {
            print(WireJSON.string(e))
        } else {
            print("\(InstanceTool.time(e.time))  \(e.event.padding(toLength: 7, withPad: " ", startingAt: 0))  \(e.group)  \(e.key)"
                  + (e.worker.map { "  \(Limits.escaped($0))" } ?? "") + (e.unseen == true ? "  (added and claimed between two listings)" : ""))
        }
        fflush(nil)  // a pipe gets each line as it happens (nil: every output stream)
    }
}

/// Task instance ids seen, at most `limit`, the smallest (oldest: ids only grow) forgotten first.
struct RecentIDs {
    let limit: Int
    private var ids: Set<Int64> = []

    init(limit: Int) { self.limit = limit }

    func contains(_ id: Int64) -> Bool { ids.contains(id) }

    mutating func insert(_ id: Int64) {
        ids.insert(id)
        if ids.count > limit {
            // A tenth at a time, so that the sort is rare.
            for old in ids.sorted().prefix(limit / 10) { ids.remove(old) }
        }
    }
}
