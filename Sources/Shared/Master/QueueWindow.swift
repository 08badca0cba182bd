import Foundation

/// The bounded window: at most `queueWindow` items wait in `/queue/<group>`; the rest of the
/// ready attempts wait in the database as SUBMITTED and in this master's backlog, and are fed
/// in key order as room frees. ZooKeeper never holds a million nodes, and no listing of a
/// queue comes near its response size limit.
extension MasterScheduler {
    /// A ready attempt waiting outside ZooKeeper.
    struct BacklogEntry: Comparable, Sendable {
        var key: TaskQueueKey
        var group: String
        var instance: Int64
        var task: String
        var attempt: Int
        /// When the engine made it ready: the dispatch latency runs from here.
        var submitTime: Double
        /// Its task's pool: it waits for a slot there, not for room in its group's queue.
        var pool: String?
        /// Where it waits in `backlog`: its worker group, or `pool/<name>` (no group name holds a '/').
        var heapKey: String { pool.map { MasterScheduler.poolKeyPrefix + $0 } ?? group }
        static func < (a: BacklogEntry, b: BacklogEntry) -> Bool { a.key < b.key }
        static func == (a: BacklogEntry, b: BacklogEntry) -> Bool { a.key == b.key }
    }

    /// How many more items each group's queue may take now.
    func room(for groups: Set<String>) async throws -> [String: Int] {
        var room: [String: Int] = [:]
        for group in groups {
            let queued = try await zk.exists(paths.queue(group))?.childCount ?? 0
            room[group] = max(0, options.queueWindow - Int(queued))
        }
        return room
    }

    static let poolKeyPrefix = "pool/"

    /// Moves backlog entries into ZooKeeper while there is room, then records them DISPATCHED.
    /// Each group's entries are planned on the backlog as it is and taken out of it only once their
    /// items are written: a write that fails leaves every entry where it waits.
    func feedQueues() async throws {
        try await feedPools()
        let groups = Set(backlog.filter { !$0.value.isEmpty && !$0.key.hasPrefix(Self.poolKeyPrefix) }.keys)
        guard !groups.isEmpty else { return }
        let room = try await room(for: groups)
        var fed: [Int64] = []
        var readySince: [Double] = []
        var nodes: [(path: String, data: Data)] = []
        var planned: [String: (count: Int, halted: [BacklogEntry])] = [:]
        for group in groups.sorted() {
            guard let waiting = backlog[group] else { continue }
            var left = room[group] ?? 0
            var plan: (count: Int, halted: [BacklogEntry]) = (0, [])
            for entry in waiting.ascending() {
                guard left > 0 else { break }
                plan.count += 1
                if let instance = active[entry.instance], instance.isHalting {
                    plan.halted.append(entry)
                    continue
                }
                guard let item = enqueue(entry.key.taskInstanceId, instance: entry.instance, task: entry.task, attempt: entry.attempt) else { continue }
                fed.append(entry.key.taskInstanceId)
                readySince.append(entry.submitTime)
                nodes.append(item)
                left -= 1
            }
            planned[group] = plan
        }
        try await writeRound(creates: nodes, deletes: [])
        for (group, plan) in planned {
            backlog[group]?.removeSmallest(plan.count)
            for entry in plan.halted { haltFromBacklog(entry, stop: active[entry.instance]?.engine.state == .readyStop) }
        }
        guard !fed.isEmpty else { return }
        metrics.dispatched(readySince: readySince)
        try await store.markDispatched(fed, session: session)
    }

    /// Gives waiting attempts of pooled tasks the slots their pools have free (a transaction that
    /// marks them DISPATCHED, counting the holders again), then writes their queue items. A slot is
    /// taken before its item exists: a master that dies in between leaves a DISPATCHED attempt in
    /// no queue, which the next reconcile finds and resubmits (its slot comes free with it).
    ///
    /// The entries are planned on the backlog as it is, and taken out of it only once the take is
    /// stored: a take that fails (a busy database) leaves every entry waiting for the next feed.
    func feedPools() async throws {
        for key in backlog.keys.sorted() where key.hasPrefix(Self.poolKeyPrefix) && !(backlog[key]?.isEmpty ?? true) {
            let pool = String(key.dropFirst(Self.poolKeyPrefix.count))
            let free = try await store.freePoolSlots(pool)
            guard free > 0, let waiting = backlog[key] else { continue }
            var picked: [BacklogEntry] = []
            var halted: [BacklogEntry] = []
            for entry in waiting.ascending() {
                guard picked.count < free else { break }
                if let instance = active[entry.instance], instance.isHalting {
                    halted.append(entry)
                } else {
                    picked.append(entry)
                }
            }
            let taken = Set(try await store.takePoolSlots(pool, ids: picked.map(\.key.taskInstanceId), session: session))
            // Stored: the plan is carried out. Entries that got no slot (taken by another master
            // first) wait on.
            backlog[key]?.removeSmallest(picked.count + halted.count)
            for entry in halted { haltFromBacklog(entry, stop: active[entry.instance]?.engine.state == .readyStop) }
            var nodes: [(path: String, data: Data)] = []
            var readySince: [Double] = []
            for entry in picked {
                guard taken.contains(entry.key.taskInstanceId) else {
                    backlog[key, default: MinHeap()].push(entry)
                    continue
                }
                guard let item = enqueue(entry.key.taskInstanceId, instance: entry.instance, task: entry.task, attempt: entry.attempt) else { continue }
                nodes.append(item)
                readySince.append(entry.submitTime)
            }
            try await writeRound(creates: nodes, deletes: [])
            metrics.dispatched(readySince: readySince)
        }
    }

    /// Readies an attempt for its queue: its command and environment, with upstream outputs passed
    /// on; the node it goes to; and the attempt recorded as awaited. Nil if its instance is gone,
    /// or if the item cannot be built within `Limits`: the attempt then waits in `unpreparable`
    /// to be failed with the reason (`failUnpreparable`), and nothing goes to ZooKeeper.
    func enqueue(_ id: Int64, instance instanceID: Int64, task taskName: String, attempt: Int) -> (path: String, data: Data)? {
        // Prepared in place: a copy taken out and put back would duplicate the instance's tables.
        guard let prepared = active[instanceID]?.prepare(taskName), let instance = active[instanceID] else { return nil }
        touched.insert(instanceID)
        let item: ActiveInstance.Prepared
        switch prepared {
        case .success(let p): item = p
        case .failure(let why):
            unpreparable.append((id, instanceID, taskName, "not dispatched: \(why)"))
            return nil
        }
        let key = TaskQueueKey(workflowPriority: instance.record.priority, workflowInstanceId: instanceID,
                               taskPriority: item.task.priority, taskInstanceId: id)
        let path = paths.queueItem(item.task.workerGroup, key)
        var queued = QueuedTask(
            taskInstanceId: id, workflowInstanceId: instanceID, workflowName: instance.definition.name, taskName: taskName,
            attempt: attempt, command: item.command, env: item.env, timeout: item.task.timeout, timeoutStrategy: item.task.timeoutStrategy,
            master: options.identity)
        queued.memoryMax = item.task.memoryMax.flatMap(ResourceLimits.parseSize)
        queued.cpuQuota = item.task.cpuQuota
        let data = WireJSON.encode(queued)
        guard data.count <= Limits.maxQueueItemBytes else {
            unpreparable.append((id, instanceID, taskName, "not dispatched: its queue item would be \(Limits.size(data.count)), over the limit of \(Limits.size(Limits.maxQueueItemBytes)) (command, environment and the outputs of the tasks upstream)"))
            return nil
        }
        attempts[id] = AttemptRef(instance: instanceID, task: taskName, attempt: attempt, queuePath: path)
        return (path, data)
    }

    /// Fails the attempts `enqueue` could not build, with the reason stored as their message, and
    /// lets the engine go on (a retry, the failure strategy). Repeated while failing one makes more.
    func failUnpreparable() async throws {
        while !unpreparable.isEmpty {
            let failed = unpreparable
            unpreparable = []
            var round = Round()
            let now = ProcessStats.now()
            for f in failed where active[f.instance] != nil {
                touched.insert(f.instance)
                logger.warning("instance \(f.instance): task \(Limits.quoted(f.task)) \(f.message)")
                round.batch.outcomes.append(AttemptOutcome(
                    taskInstanceId: f.id, workflowInstanceId: f.instance, state: .failure, host: nil, pid: nil, logPath: nil,
                    exitCode: nil, outputJson: nil, message: f.message, startTime: now, endTime: now))
                apply(active[f.instance]!.engine.handle(.taskFinished(task: f.task, outcome: .failure)), to: f.instance, &round)
            }
            try await commit(&round)
        }
    }

    /// A round's ZooKeeper writes as a few `multi`s of up to 200 operations: one request and one
    /// transaction each instead of one per node. A chunk that fails as a whole (a node created by
    /// an earlier try whose answer was lost, a result already deleted) is redone one node at a time.
    func writeRound(creates: [(path: String, data: Data)], deletes: [String]) async throws {
        let ops: [ZooKeeperOperation] = creates.map { .create(path: $0.path, data: $0.data, mode: .persistent) }
            + deletes.map { .delete(path: $0) }
        // Each multi first checks this master's fence: once it has been failed over, nothing it
        // writes goes through, however late it wakes.
        let fence = zk.fenceCheck(paths)
        try await withThrowingDiscardingTaskGroup { group in
            // ZooKeeper closes the connection on a request over jute.maxbuffer (1 MB): bounded by bytes too.
            for chunk in ops.chunked(199, maxWeight: Self.maxMultiBytes, weight: { $0.payloadBytes }) {
                group.addTask { [zk, identity = options.identity] in
                    do {
                        try await zk.multi([fence] + chunk)
                    } catch let error as ZooKeeperError where ZooKeeperClient.isFenced(error) {
                        throw MasterError.failedOver(identity)
                    } catch let error as ZooKeeperError where [.nodeExists(""), .noNode("")].contains(error.cause.kindOnly) {
                        try await Self.writeOneByOne(chunk, fence: fence, identity: identity, zk)
                    }
                }
            }
        }
    }

    /// The most node data one `multi` of a round carries.
    static let maxMultiBytes = 512 << 10

    private static func writeOneByOne(_ ops: [ZooKeeperOperation], fence: ZooKeeperOperation, identity: String,
                                      _ zk: ZooKeeperClient) async throws {
        func write(_ op: ZooKeeperOperation) async throws {
            do {
                try await zk.multi([fence, op])
            } catch let error as ZooKeeperError where ZooKeeperClient.isFenced(error) {
                throw MasterError.failedOver(identity)
            }
        }
        for op in ops {
            switch op {
            case .create(let path, _, _):
                do {
                    try await write(op)
                } catch let error as ZooKeeperError where error.cause == .nodeExists(path) {
                } catch let error as ZooKeeperError where error.cause == .noNode(path) {
                    try await zk.ensurePath((path as NSString).deletingLastPathComponent)
                    do { try await write(op) } catch let error as ZooKeeperError where error.cause == .nodeExists(path) {}
                }
            case .delete(let path, _):
                do { try await write(op) } catch let error as ZooKeeperError where error.cause == .noNode(path) {}
            default:
                break
            }
        }
    }

    var backlogCount: Int { backlog.values.reduce(0) { $0 + $1.count } }

    /// The attempt a backlog entry stands for, with the queue node it would have had.
    func ref(of entry: BacklogEntry) -> AttemptRef {
        AttemptRef(instance: entry.instance, task: entry.task, attempt: entry.attempt, queuePath: paths.queueItem(entry.group, entry.key))
    }

    /// A backlog entry of a pausing or stopping instance ends at once, without running.
    func haltFromBacklog(_ entry: BacklogEntry, stop: Bool) {
        pendingHalts.append(Halt(id: entry.key.taskInstanceId, ref: ref(of: entry), stop: stop, inBacklog: true))
    }

    /// The backlog by worker group, without the attempts that wait for a pool.
    var groupBacklogs: [String: MinHeap<BacklogEntry>] { backlog.filter { !$0.key.hasPrefix(Self.poolKeyPrefix) } }
}
