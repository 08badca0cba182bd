import Foundation

/// Failover: dead masters' instances are adopted, attempts lost with their worker are resubmitted,
/// late results are recorded without effect. Every step is idempotent, so a master that dies
/// half-way leaves a state the next one completes.
extension MasterScheduler {
    /// Reads /dead-servers; a master that finds itself there was failed over while hung, and stops.
    func processDeadServers() async throws {
        let names = try await zk.children(paths.deadServers) { [wakeups] _ in wakeups.mark(.deadServers) }
        deadSessions = Set(names.compactMap(DeadServer.init).map(\.session))
        if deadSessions.contains(session) { throw MasterError.failedOver(options.identity) }
    }

    /// Reads the master registry and adopts the instances of masters that are gone.
    func processMasters() async throws {
        // Owner sessions are read before the registry: a master registers before it claims, so
        // an owner alive now is in the listing that follows.
        let owners = try await store.ownerSessions()
        let names = try await zk.children(paths.masters) { [wakeups] _ in wakeups.mark(.masters) }
        let byName = try await zk.ephemeralOwnersByName(of: names, under: paths.masters)
        try await store.recordAlerts(departures(type: "master", from: knownMasters, to: byName))
        knownMasters = byName
        let live = Set(byName.values).union([session])
        let dead = owners.sessions.subtracting(live.subtracting(deadSessions))
        guard !dead.isEmpty || owners.unowned else { return }
        // A session declared dead while it lives (a hung master) may still wake and write: its
        // fence goes first (ds-failover lowers it too; this covers a ds-failover that died).
        for s in dead.intersection(live) { try await zk.lowerFence(of: s, paths) }
        try await adopt(deadSessions: dead)
    }

    private func adopt(deadSessions dead: Set<Int64>) async throws {
        let lock = paths.locks + "/failover-master"
        do {
            try await zk.create(lock, data: Data(options.identity.utf8), mode: .ephemeral)
        } catch ZooKeeperError.nodeExists {
            // Ours if an earlier create went through but its answer was lost; otherwise another
            // master is at it, and if it dies, its lock goes and the next pass retries.
            guard try await zk.exists(lock)?.ephemeralOwner == session else { return }
        }
        do {
            try await adoptHoldingLock(deadSessions: dead)
        } catch {
            try? await zk.delete(lock)  // best effort: the error goes on; a lock left behind is ours to take again
            throw error
        }
        do { try await zk.delete(lock) } catch ZooKeeperError.noNode {}
    }

    private func adoptHoldingLock(deadSessions dead: Set<Int64>) async throws {
        try FaultPoint.hit("takeover-after-lock")
        let (adopted, previous) = try await store.adoptOrphans(host: options.identity, session: session, deadSessions: dead)
        // Stored as ours now: memory has them once the round below is stored, else resumeOwned
        // reads them on the next pass (a later listing finds no dead owner to adopt them from).
        unresumed.formUnion(adopted.map { $0.instance.id! })
        try FaultPoint.hit("takeover-after-transfer")
        for owner in previous {
            do { try await zk.create(paths.deadServer(owner)) } catch ZooKeeperError.nodeExists {}
        }
        try await store.recordAlerts(previous.map(serverDownAlert))
        var round = Round()
        for claimed in adopted { resume(claimed, &round) }
        try await commit(&round)
        try await classifyAdoptedBacklog()
        try FaultPoint.hit("takeover-after-resume")
        if !adopted.isEmpty {
            logger.notice("took over \(adopted.count) instances of dead masters \(previous.map { "\($0.identity)_\($0.session)" }.joined(separator: ", "))")
            foreignResults.removeAll()
            wakeups.mark(.reconcile)
            wakeups.mark(.results)
        }
    }

    /// Rebuilds an adopted instance from its stored attempts and carries on where its master
    /// stopped: its runtime goes into the round, installed once the round is stored.
    func resume(_ claimed: ClaimedInstance, _ round: inout Round) {
        var runtime = InstanceRuntime(ActiveInstance(claimed))
        let restored = WorkflowEngine.restore(definition: claimed.definition, kept: Set(claimed.instance.kept.keys),
                                              attempts: claimed.attempts.map(\.stored), controls: Self.controls(of: claimed.instance),
                                              runStart: claimed.instance.runStartTime ?? claimed.instance.startTime ?? ProcessStats.now())
        runtime.instance.engine = restored.engine
        // A pause or stop the dead owner never applied was applied now, after everything stored:
        // its place is recorded, or the next takeover would replay later results before it.
        for c in Self.controls(of: claimed.instance) where c.seq == nil {
            round.batch.controls.append(ControlRequest(commandID: nil, instance: claimed.instance.id!, stop: c.event == .stop, applied: true))
        }
        for a in claimed.attempts { runtime.instance.recordStoredOutputs(a) }
        let id = runtime.id
        let instance = runtime.instance
        scheduleWorkflowTimeout(&runtime)
        for i in restored.inFlight {
            let a = claimed.attempts[i]
            let task = instance.task(a.taskName)
            if task.type == .dependent {
                let ref = AttemptRef(instance: id, task: a.taskName, attempt: a.attempt, queuePath: "")
                if instance.isHalting {
                    runtime.halts.append(Halt(id: a.id!, ref: ref, stop: instance.engine.state == .readyStop, inBacklog: true))
                } else {
                    runtime.dependentWaits[a.id!] = DependentWait(ref: ref, since: a.startTime ?? a.submitTime)
                }
                continue
            }
            if let child = a.childInstanceId {
                // A SUB_PROCESS attempt: it waits for its child, wherever that runs.
                let ref = AttemptRef(instance: id, task: a.taskName, attempt: a.attempt, queuePath: "")
                runtime.childWaits[a.id!] = ChildWait(ref: ref, child: child)
                if instance.isHalting { runtime.childHalts.append((child, instance.engine.state == .readyStop)) }
                continue
            }
            let key = TaskQueueKey(workflowPriority: instance.record.priority, workflowInstanceId: id,
                                   taskPriority: task.priority, taskInstanceId: a.id!)
            let ref = AttemptRef(instance: id, task: a.taskName, attempt: a.attempt, queuePath: paths.queueItem(task.workerGroup, key))
            if instance.isHalting {
                // The pause or stop is carried out again: withdrawing and killing are idempotent.
                runtime.attempts[a.id!] = ref
                runtime.halts.append(Halt(id: a.id!, ref: ref, stop: instance.engine.state == .readyStop, inBacklog: false))
                continue
            }
            if let command = claimed.removals[a.id!], a.state == .submitted || a.state == .dispatched {
                // Removed (ds-queue remove), perhaps taken out of the queue already by a master that
                // died before storing it: the removal is carried out again, never the task resubmitted.
                runtime.attempts[a.id!] = ref
                runtime.halts.append(Halt(id: a.id!, ref: ref, stop: true, inBacklog: false, remove: true, commandID: command))
                continue
            }
            if a.state == .submitted {
                runtime.unclassified.append((ref, BacklogEntry(key: key, group: task.workerGroup, instance: id, task: a.taskName,
                                                               attempt: a.attempt, submitTime: a.submitTime, pool: a.pool)))
                continue
            }
            runtime.attempts[a.id!] = ref
            if a.state == .running {
                runtime.seenRunning.insert(a.id!)
                scheduleTaskTimeout(a.id!, ref, startedAt: a.startTime ?? ProcessStats.now(), &runtime)
            }
        }
        for r in restored.pendingRetries { runtime.retries[r.task] = r.at }
        round.runtimes[id] = runtime
        for (task, attempt) in restored.missingDispatches {
            apply([instance.task(task).isBranchNode ? .decide(task: task) : .dispatch(task: task, attempt: attempt)], to: id, &round)
        }
        if let state = restored.finish, restored.inFlight.isEmpty {
            round.batch.finishedInstances.append((id, state, ProcessStats.now()))
            round.batch.alerts += endAlerts(id, state, now: ProcessStats.now(), round.runtimes[id]!)
        }
    }

    /// SUBMITTED attempts of adopted instances: the dead master may have fed some into ZooKeeper
    /// before recording them DISPATCHED. Those are attached to; the others go back to the backlog
    /// (feeding one twice would run it twice). Nothing is stored: the copies are swapped in once
    /// every lookup has succeeded.
    func classifyAdoptedBacklog() async throws {
        let ids = pendingWork { !$0.unclassified.isEmpty }
        guard !ids.isEmpty else { return }
        let pending = ids.flatMap { runtimes[$0]!.unclassified }
        let fed = try await pending.concurrentMap(limit: Self.lookupConcurrency) { [zk, paths] item in
            try await AttemptWhereabouts.locate(item.entry.key.taskInstanceId, queuePath: item.ref.queuePath,
                                                zk: zk, paths: paths) != .nowhere
        }
        var round = Round()
        for id in ids {
            checkout(id, &round)
            round.runtimes[id]!.unclassified = []
        }
        for (i, item) in pending.enumerated() {
            if fed[i] {
                round.runtimes[item.ref.instance]!.attempts[item.entry.key.taskInstanceId] = item.ref
            } else {
                round.backlogAdded.append(item.entry)
            }
        }
        install(round)
        wakeups.mark(.feed)
    }

    /// Reads the worker registry; a worker that left is recorded in /dead-servers. Each listing
    /// reads every worker's session afresh: a worker restarted under the same identity between two
    /// listings has a new session, and its old one left (a session cached by name would hide that).
    func processWorkers() async throws {
        let groups = try await zk.children(paths.workers) { [wakeups] _ in wakeups.mark(.workers) }
        var nodes: [String: String] = [:]  // identity -> one of its registry nodes
        for group in groups {
            // Only a listing that succeeded may declare a worker gone: a connection loss throws and
            // the pass is retried. A group removed since the listing above is empty.
            let names = try await zk.childrenIfPresent(paths.workerGroup(group)) { [wakeups] _ in wakeups.mark(.workers) }
            for name in names where nodes[name] == nil { nodes[name] = paths.workerGroup(group) + "/" + name }
        }
        let listed = Array(nodes)
        let stats = try await listed.concurrentMap(limit: Self.lookupConcurrency) { [zk] item in try await zk.exists(item.value) }
        var current: [String: Int64] = [:]
        for (item, stat) in zip(listed, stats) {
            if let stat { current[item.key] = stat.ephemeralOwner }  // gone since the listing: left
        }
        for (identity, workerSession) in knownWorkers where current[identity] != workerSession {
            logger.warning("worker \(identity) (session \(workerSession)) left the registry; its lost tasks are resubmitted")
            let marker = paths.deadServer(DeadServer(type: "worker", identity: identity, session: workerSession))
            do { try await zk.create(marker) } catch ZooKeeperError.nodeExists {}
        }
        try await store.recordAlerts(departures(type: "worker", from: knownWorkers, to: current))
        knownWorkers = current
    }

    /// The SERVER_DOWN alert of each server of `known` (nil: none listed yet) that is not
    /// in `current` under the same session, keyed by its session: every master that sees the
    /// departure records the same, single row.
    func departures(type: String, from known: [String: Int64]?, to current: [String: Int64]) -> [AlertRecord] {
        guard let previous = known else { return [] }
        return previous.filter { current[$0.key] != $0.value && $0.value != session }.sorted { $0.key < $1.key }.map {
            serverDownAlert(DeadServer(type: type, identity: $0.key, session: $0.value))
        }
    }

    /// The SERVER_DOWN alert of a server's session: one row however many masters see it go, by
    /// the registry or (a master that died while none watched) by the instances it left.
    func serverDownAlert(_ server: DeadServer) -> AlertRecord {
        var content = AlertContent(kind: .serverDown, title: "\(server.type) \(server.identity) left the registry (it stopped, died or lost its ZooKeeper session)",
                                   time: ProcessStats.now())
        (content.serverType, content.server) = (server.type, server.identity)
        return AlertRecord(content, dedupKey: "\(AlertKind.serverDown.rawValue):\(server.type)_\(server.identity)_\(server.session)")
    }

    /// Checks every attempt this master waits for. One that is nowhere, or held by a session
    /// declared dead, was lost with its worker: it is marked NEED_FAULT_TOLERANCE and a new attempt
    /// (not a retry) is queued.
    func reconcile() async throws {
        // An attempt being halted is the halt's to settle: one it took out of the queue is nowhere,
        // and must not be taken for lost and run again.
        let halting = Set(runtimes.values.flatMap { $0.halts.map(\.id) })
        let refs = runtimes.values.flatMap { runtime in runtime.attempts.filter { !halting.contains($0.key) } }
        guard !refs.isEmpty else { return }
        let whereabouts = try await refs.concurrentMap(limit: Self.lookupConcurrency) { [zk, paths] item in
            try await AttemptWhereabouts.locate(item.key, queuePath: item.value.queuePath, zk: zk, paths: paths)
        }
        let found = zip(refs, whereabouts)
        var round = Round()
        let now = ProcessStats.now()
        for ((id, ref), whereabouts) in found {
            switch whereabouts {
            case .reported: wakeups.mark(.results)
            case .queued: break
            case .running(let holder) where !deadSessions.contains(holder): break
            case .running, .nowhere:
                guard checkout(ref.instance, &round), round.runtimes[ref.instance]!.attempts.removeValue(forKey: id) != nil else { continue }
                round.runtimes[ref.instance]!.seenRunning.remove(id)
                let instance = round.runtimes[ref.instance]!.instance
                if instance.isHalting {
                    // Nothing new starts in a pausing or stopping instance: it runs again on resume.
                    endHalted(id, ref, stop: instance.engine.state == .readyStop, message: "lost with its worker while the instance was halting",
                              now: now, &round)
                    continue
                }
                logger.warning("instance \(ref.instance): attempt \(id) of '\(ref.task)' was lost; resubmitting")
                round.batch.superseded.append((id, ref.instance, "lost with its worker; superseded by a new attempt", now))
                newAttempt(ref.instance, ref.task, ref.attempt, &round)
            }
        }
        try await commit(&round)
    }

    /// Results no attempt of this master waits for: a superseded attempt's late result, or one for
    /// an instance another master owns (left to it).
    func processUnexpectedResults(_ ids: [Int64]) async throws {
        for id in ids {
            guard let owner = try await store.owner(ofAttempt: id) else {
                // No attempt has this id: every real attempt is stored before its queue item exists,
                // so this result was written past the masters (a refused hand-made item, a stray
                // node). Deleted, so that an attempt that gets the id later is never matched to it.
                logger.notice("result \(paths.result(id)) belongs to no attempt; deleted")
                do { try await zk.delete(paths.result(id)) } catch ZooKeeperError.noNode {}
                continue
            }
            let mineOrOver = owner.masterSession == session || owner.instanceState.isTerminal
            guard mineOrOver, !(owner.attempt.state == .dispatched || owner.attempt.state == .running) else {
                foreignResults.insert(id)
                continue
            }
            let data: Data
            do { data = try await zk.getData(paths.result(id)).0 } catch ZooKeeperError.noNode { continue }
            let message = try? WireJSON.decode(TaskResultMessage.self, data)
            if let message, owner.attempt.state == message.state, owner.attempt.host == message.worker,
               owner.attempt.endTime == message.endTime {
                // Stored by a round whose deletes were then lost (a connection loss): only the node is left.
                do { try await zk.delete(paths.result(id)) } catch ZooKeeperError.noNode {}
                continue
            }
            let note = "late result ignored: \(message?.state.rawValue ?? "?") from \(message?.worker ?? "?") after this attempt was \(owner.attempt.state.rawValue)"
            try await store.recordLateResult(attempt: id, note: note, session: session)
            logger.notice("attempt \(id): \(note)")
            do { try await zk.delete(paths.result(id)) } catch ZooKeeperError.noNode {}
        }
    }

    /// At most this many ZooKeeper lookups in flight at once for one check of many attempts.
    static let lookupConcurrency = 64
}
