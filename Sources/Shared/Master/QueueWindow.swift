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

    /// Moves backlog entries into ZooKeeper while there is room, recording them DISPATCHED. The
    /// entries are planned on copies and on the backlog as it is; once the marks are stored the
    /// copies are swapped in and the entries leave the backlog, then the items are written. A
    /// mark that fails leaves every entry waiting; a write that fails leaves DISPATCHED attempts
    /// this master awaits, which `reconcile` finds in the queue or nowhere (and resubmits): an
    /// entry is never fed twice.
    func feedQueues() async throws {
        try await feedPools()
        let groups = Set(backlog.filter { !$0.value.isEmpty && !$0.key.hasPrefix(Self.poolKeyPrefix) }.keys)
        guard !groups.isEmpty else { return }
        let room = try await room(for: groups)
        var fed: [Int64] = []
        var readySince: [Double] = []
        var round = Round()
        var planned: [String: Int] = [:]
        for group in groups.sorted() {
            guard let waiting = backlog[group] else { continue }
            var left = room[group] ?? 0
            var count = 0
            for entry in waiting.ascending() {
                guard left > 0 else { break }
                count += 1
                if haltIfHalting(entry, &round) { continue }
                guard let item = enqueue(entry.key.taskInstanceId, instance: entry.instance, task: entry.task,
                                         attempt: entry.attempt, &round) else { continue }
                fed.append(entry.key.taskInstanceId)
                readySince.append(entry.submitTime)
                round.queued.append(item)
                left -= 1
            }
            planned[group] = count
        }
        if !fed.isEmpty { try await store.markDispatched(fed, session: session) }
        install(round)
        for (group, count) in planned { backlog[group]?.removeSmallest(count) }
        try await publish(creates: round.queued, deletes: [])
        metrics.dispatched(readySince: readySince)
    }

    /// Gives waiting attempts of pooled tasks the slots their pools have free (a transaction that
    /// marks them DISPATCHED, counting the holders again), then writes their queue items. A slot is
    /// taken before its item exists: a master that dies in between leaves a DISPATCHED attempt in
    /// no queue, which the next reconcile finds and resubmits (its slot comes free with it).
    ///
    /// The entries are planned on copies and on the backlog as it is, and taken out of it only once
    /// the take is stored: a take that fails (a busy database) leaves every entry waiting.
    func feedPools() async throws {
        for key in backlog.keys.sorted() where key.hasPrefix(Self.poolKeyPrefix) && !(backlog[key]?.isEmpty ?? true) {
            let pool = String(key.dropFirst(Self.poolKeyPrefix.count))
            let free = try await store.freePoolSlots(pool)
            guard free > 0, let waiting = backlog[key] else { continue }
            var round = Round()
            var picked: [BacklogEntry] = []
            var halted = 0
            for entry in waiting.ascending() {
                guard picked.count < free else { break }
                if haltIfHalting(entry, &round) {
                    halted += 1
                } else {
                    picked.append(entry)
                }
            }
            let taken = Set(try await store.takePoolSlots(pool, ids: picked.map(\.key.taskInstanceId), session: session))
            // Stored: the plan is carried out. Entries that got no slot (taken by another master
            // first) wait on.
            var readySince: [Double] = []
            var untaken: [BacklogEntry] = []
            for entry in picked {
                guard taken.contains(entry.key.taskInstanceId) else {
                    untaken.append(entry)
                    continue
                }
                guard let item = enqueue(entry.key.taskInstanceId, instance: entry.instance, task: entry.task,
                                         attempt: entry.attempt, &round) else { continue }
                round.queued.append(item)
                readySince.append(entry.submitTime)
            }
            install(round)
            backlog[key]?.removeSmallest(picked.count + halted)
            for entry in untaken { backlog[key, default: MinHeap()].push(entry) }
            try await publish(creates: round.queued, deletes: [])
            metrics.dispatched(readySince: readySince)
        }
    }

    /// Readies an attempt for its queue, on the round's copy of its instance: its command and
    /// environment, with upstream outputs passed on; the node it goes to; and the attempt recorded
    /// as awaited. Nil if its instance is gone, or if the item cannot be built within `Limits`:
    /// the attempt then waits among the instance's `unpreparable` to be failed with the reason
    /// (`failUnpreparable`), and nothing goes to ZooKeeper.
    func enqueue(_ id: Int64, instance instanceID: Int64, task taskName: String, attempt: Int,
                 _ round: inout Round) -> (path: String, data: Data)? {
        guard checkout(instanceID, &round) else { return nil }
        let item: ActiveInstance.Prepared
        switch round.runtimes[instanceID]!.instance.prepare(taskName) {
        case .success(let p): item = p
        case .failure(let why):
            round.runtimes[instanceID]!.unpreparable.append((id, taskName, "not dispatched: \(why)"))
            return nil
        }
        let instance = round.runtimes[instanceID]!.instance
        let key = TaskQueueKey(workflowPriority: instance.record.priority, workflowInstanceId: instanceID,
                               taskPriority: item.task.priority, taskInstanceId: id)
        let path = paths.queueItem(item.task.workerGroup, key)
        var queued = QueuedTask(
            taskInstanceId: id, workflowInstanceId: instanceID, workflowName: instance.definition.name, taskName: taskName,
            attempt: attempt, command: item.command, env: item.env, timeout: item.task.timeout, timeoutStrategy: item.task.timeoutStrategy,
            master: options.identity, tenant: instance.definition.tenant(of: item.task),
            outputs: instance.definition.declaredOutputs(of: item.task))
        queued.memoryMax = item.task.memoryMax.flatMap(ResourceLimits.parseSize)
        queued.cpuQuota = item.task.cpuQuota
        let data = WireJSON.encode(queued)
        guard data.count <= Limits.maxQueueItemBytes else {
            round.runtimes[instanceID]!.unpreparable.append((id, taskName, "not dispatched: its queue item would be \(Limits.size(data.count)), over the limit of \(Limits.size(Limits.maxQueueItemBytes)) (command, environment and the outputs of the tasks upstream)"))
            return nil
        }
        round.runtimes[instanceID]!.attempts[id] = AttemptRef(instance: instanceID, task: taskName, attempt: attempt, queuePath: path)
        return (path, data)
    }

    /// Fails the attempts `enqueue` could not build, with the reason stored as their message, and
    /// lets the engine go on (a retry, the failure strategy). Repeated while failing one makes more.
    func failUnpreparable() async throws {
        while true {
            let ids = pendingWork { !$0.unpreparable.isEmpty }
            guard !ids.isEmpty else { return }
            var round = Round()
            let now = ProcessStats.now()
            for instanceID in ids {
                checkout(instanceID, &round)
                let failed = round.runtimes[instanceID]!.unpreparable
                round.runtimes[instanceID]!.unpreparable = []
                for f in failed {
                    logger.warning("instance \(instanceID): task \(Limits.quoted(f.task)) \(f.message)")
                    round.batch.outcomes.append(AttemptOutcome(
                        taskInstanceId: f.id, workflowInstanceId: instanceID, state: .failure, host: nil, pid: nil, logPath: nil,
                        exitCode: nil, outputJson: nil, message: f.message, startTime: now, endTime: now))
                    apply(round.runtimes[instanceID]!.instance.engine.handle(.taskFinished(task: f.task, outcome: .failure)),
                          to: instanceID, &round)
                }
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

    /// The halt of a backlog entry of a pausing or stopping instance: it ends at once, without running.
    func haltFromBacklog(_ entry: BacklogEntry, stop: Bool) -> Halt {
        Halt(id: entry.key.taskInstanceId, ref: ref(of: entry), stop: stop, inBacklog: true)
    }

    /// Ends a backlog entry of a pausing or stopping instance (on the round's copy) instead of
    /// feeding it; false if its instance runs on.
    func haltIfHalting(_ entry: BacklogEntry, _ round: inout Round) -> Bool {
        guard checkout(entry.instance, &round), round.runtimes[entry.instance]!.instance.isHalting else { return false }
        let stop = round.runtimes[entry.instance]!.instance.engine.state == .readyStop
        round.runtimes[entry.instance]!.halts.append(haltFromBacklog(entry, stop: stop))
        return true
    }

    /// The backlog by worker group, without the attempts that wait for a pool.
    var groupBacklogs: [String: MinHeap<BacklogEntry>] { backlog.filter { !$0.key.hasPrefix(Self.poolKeyPrefix) } }
}
