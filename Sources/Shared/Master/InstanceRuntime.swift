import Foundation

/// Everything a master holds of one instance it runs: the engine, the attempts it waits for, and
/// what waits on the master (children, dependencies, halts, kill requests, timers), as data.
///
/// A value: a round plans on copies (`Round.runtimes`) and `install` swaps them in only once the
/// round is stored. A round that fails half-way (a connection loss, a busy database) drops its
/// copies, so memory can never run ahead of storage and nothing has to be read again.
struct InstanceRuntime: Sendable {
    var instance: ActiveInstance
    /// Attempts in (or on their way to) ZooKeeper that it waits for, by task instance id.
    var attempts: [Int64: MasterScheduler.AttemptRef] = [:]
    /// Attempts already marked RUNNING.
    var seenRunning: Set<Int64> = []
    /// SUBMITTED attempts of an adopted instance, not yet checked against ZooKeeper: the dead
    /// owner may have fed some before recording them DISPATCHED (`classifyAdoptedBacklog`).
    var unclassified: [(ref: MasterScheduler.AttemptRef, entry: MasterScheduler.BacklogEntry)] = []
    /// SUB_PROCESS attempts waiting for their child instance, by attempt id.
    var childWaits: [Int64: MasterScheduler.ChildWait] = [:]
    /// DEPENDENT attempts waiting for what they depend on, by attempt id.
    var dependentWaits: [Int64: MasterScheduler.DependentWait] = [:]
    /// Attempts to take out of the queue or kill because the instance pauses or stops (`processHalts`).
    var halts: [MasterScheduler.Halt] = []
    /// Attempts the engine asked to halt, not yet looked up among those awaited.
    var haltRequests: [(task: String, attempt: Int, stop: Bool)] = []
    /// Children to pause or stop with it.
    var childHalts: [(child: Int64, stop: Bool)] = []
    /// Kill requests this master wrote, by attempt: deleted if the attempt ends without its worker
    /// (which deletes its own once it has reported), so none outlives a worker that never returns.
    var killNodes: [Int64: String] = [:]
    /// Attempts whose queue item could not be built (`enqueue`), to fail with the reason.
    var unpreparable: [(id: Int64, task: String, message: String)] = []
    /// When each task's retry (or start delay) is due. The timers only wake the loop; this is what fires.
    var retries: [String: Double] = [:]
    /// When each alerting timeout is due (task attempts, the workflow's run).
    var timeouts: [TimeoutKey: Double] = [:]

    init(_ instance: ActiveInstance) { self.instance = instance }

    var id: Int64 { instance.id }

    /// Work the pass finds through `MasterScheduler.withWork` rather than by a scan of every runtime.
    var hasPendingWork: Bool {
        !halts.isEmpty || !haltRequests.isEmpty || !childHalts.isEmpty || !unclassified.isEmpty || !unpreparable.isEmpty
    }

    /// Waits on the master that hold no `--max-workflows` slot.
    var masterWaits: Int { childWaits.count + dependentWaits.count }
}

extension MasterScheduler {
    /// What one round plans and writes: copies of the runtimes it changes, one database
    /// transaction, then pipelined ZooKeeper calls.
    struct Round {
        var batch = SchedulingBatch()
        /// Queue nodes to create: path and encoded `QueuedTask`.
        var queued: [(path: String, data: Data)] = []
        /// Results stored this round, with their instance: deleted once stored, if still ours.
        var consumed: [(id: Int64, instance: Int64)] = []
        /// The runtimes this round changes, started or adopted: swapped in by `install`.
        var runtimes: [Int64: InstanceRuntime] = [:]
        /// Backlog entries the round adds, and those it takes out (by attempt id).
        var backlogAdded: [BacklogEntry] = []
        var backlogTaken: Set<Int64> = []
        /// Kill requests that outlived their attempt, to delete once the round is installed.
        var staleKillNodes: [String] = []
    }

    /// Copies an instance's runtime into the round, once; false if this master does not run it.
    @discardableResult
    func checkout(_ id: Int64, _ round: inout Round) -> Bool {
        if round.runtimes[id] != nil { return true }
        guard let runtime = runtimes[id] else { return false }
        round.runtimes[id] = runtime
        return true
    }

    /// Checks out every instance with a deadline in `deadlines` (retries, timeouts) due at `now`
    /// and takes those deadlines off the round's copies, instances in id order: a round that
    /// fails drops the copies, and leaves the deadlines due for the next pass.
    func takeDue<Key: Hashable>(_ deadlines: WritableKeyPath<InstanceRuntime, [Key: Double]>, now: Double,
                                _ round: inout Round) -> [(instance: Int64, keys: [Key])] {
        var due: [(instance: Int64, keys: [Key])] = []
        for id in runtimes.keys.sorted() where runtimes[id]![keyPath: deadlines].values.contains(where: { $0 <= now }) {
            checkout(id, &round)
            let keys = round.runtimes[id]![keyPath: deadlines].filter { $0.value <= now }.map(\.key)
            for key in keys { round.runtimes[id]![keyPath: deadlines].removeValue(forKey: key) }
            due.append((id, keys))
        }
        return due
    }

    /// The runtime as the round sees it: its copy if it has one.
    func runtime(_ id: Int64, in round: Round) -> InstanceRuntime? { round.runtimes[id] ?? runtimes[id] }

    /// Swaps a round's copies in, once what they plan is stored: the indexes (attempt owners,
    /// pending work, the backlog) and the timers' wake-ups follow. Instances that ended leave;
    /// those whose ownership the store found lost are dropped whole. No await: nothing else runs
    /// between the first change and the last.
    func install(_ round: Round, lost: Set<Int64> = []) {
        let ended = Set(round.batch.finishedInstances.map(\.id))
        for (id, copy) in round.runtimes where !lost.contains(id) && !ended.contains(id) {
            let old = runtimes[id]
            for a in old?.attempts.keys ?? [:].keys where copy.attempts[a] == nil { attemptOwners.removeValue(forKey: a) }
            for a in copy.attempts.keys { attemptOwners[a] = id }
            for (task, at) in copy.retries where old?.retries[task] != at { retryTimers.schedule(instance: id, task, at: at) }
            for (key, at) in copy.timeouts where old?.timeouts[key] != at { timeoutTimers.schedule(instance: id, key, at: at) }
            runtimes[id] = copy
            if copy.hasPendingWork { withWork.insert(id) } else { withWork.remove(id) }
        }
        unresumed.subtract(round.runtimes.keys)
        if !round.backlogTaken.isEmpty {
            for (key, heap) in backlog where heap.contains(where: { round.backlogTaken.contains($0.key.taskInstanceId) }) {
                backlog[key] = heap.filter { !round.backlogTaken.contains($0.key.taskInstanceId) }
            }
        }
        // An instance never finishes with attempts in the backlog (they count as running in its
        // engine); feedQueues skips any entry whose instance is gone, so nothing is purged here.
        for entry in round.backlogAdded where runtimes[entry.instance] != nil && !lost.contains(entry.instance) {
            backlog[entry.heapKey, default: MinHeap()].push(entry)
        }
        staleKillNodes += round.staleKillNodes
        if !ended.isEmpty {
            for id in ended {
                for a in runtimes.removeValue(forKey: id)?.attempts.keys ?? [:].keys { attemptOwners.removeValue(forKey: a) }
                withWork.remove(id)
            }
            // A run's timers end with it: a retry or delay of this run must not fire in the next.
            timeoutTimers.cancel(instances: ended)
            retryTimers.cancel(instances: ended)
        }
        if !lost.isEmpty { forget(lost) }
    }

    /// Drops instances another master now owns (this one was failed over while unresponsive).
    func forget(_ instances: Set<Int64>) {
        logger.warning("instances \(instances.sorted()) are owned by another master now; dropped")
        for id in instances {
            for a in runtimes.removeValue(forKey: id)?.attempts.keys ?? [:].keys { attemptOwners.removeValue(forKey: a) }
            withWork.remove(id)
        }
        unresumed.subtract(instances)
        for (group, heap) in backlog where heap.contains(where: { instances.contains($0.instance) }) {
            backlog[group] = heap.filter { !instances.contains($0.instance) }
        }
        retryTimers.cancel(instances: instances)
        timeoutTimers.cancel(instances: instances)
    }

    /// The instances with halts, halt requests, unclassified or unpreparable attempts, whose
    /// `predicate` holds, in id order.
    func pendingWork(_ predicate: (InstanceRuntime) -> Bool) -> [Int64] {
        withWork.filter { runtimes[$0].map(predicate) ?? false }.sorted()
    }

    /// Instances this master owns in storage (a claimed command, an adoption) whose first round
    /// failed, so memory has nothing of them yet. The only instances ever read again: the claim or
    /// the takeover is its own transaction, stored before the round that installs the runtime.
    /// A failed read throws and is retried: an owned instance is never taken for one it does not own.
    func resumeOwned() async throws {
        let ids = unresumed.subtracting(runtimes.keys)
        guard !ids.isEmpty else {
            unresumed = []
            return
        }
        let owned = try await store.ownedInstances(ids, session: session, now: ProcessStats.now())
        var round = Round()
        for claimed in owned { resume(claimed, &round) }
        try await commit(&round)
        // Those not returned ended, or another master owns them now.
        unresumed.subtract(ids)
        logger.notice("read \(owned.count) instances this master owns again from storage: their first round was not stored")
        wakeups.mark(.results)
        wakeups.mark(.reconcile)
        wakeups.mark(.feed)
    }
}
