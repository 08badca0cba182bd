import Foundation

/// A round's effects and its commit: the engine's effects are planned on the round's copies of
/// the runtimes; `commit` stores them, swaps the copies in, then publishes to ZooKeeper.
extension MasterScheduler {
    /// Carries out an engine's effects on the round's copy of the instance (checked out already).
    func apply(_ effects: [EngineEffect], to instanceID: Int64, _ round: inout Round) {
        let now = ProcessStats.now()
        // A decision's own effects join the list (no recursion down a chain of branch nodes).
        var effects = effects
        var next = 0
        while next < effects.count {
            let effect = effects[next]
            next += 1
            switch effect {
            case .decide(let taskName):
                effects += decide(instanceID, taskName, &round)
            case .dispatch(let taskName, let attempt):
                newAttempt(instanceID, taskName, attempt, &round)
            case .scheduleRetry(let taskName, let attempt, let seconds):
                logger.info("instance \(instanceID): task '\(taskName)' failed; attempt \(attempt) in \(seconds)s")
                round.runtimes[instanceID]!.retries[taskName] = now + seconds
            case .scheduleDelay(let taskName, let seconds):
                logger.info("instance \(instanceID): task '\(taskName)' is ready; starts in \(DurationText.format(seconds)) (delay)")
                round.runtimes[instanceID]!.retries[taskName] = now + seconds
            case .kill(let taskName, let attempt):
                round.runtimes[instanceID]!.haltRequests.append((taskName, attempt, true))
            case .withdraw(let taskName, let attempt):
                round.runtimes[instanceID]!.haltRequests.append((taskName, attempt, false))
            case .finish(let state):
                round.batch.finishedInstances.append((instanceID, state, now))
                round.batch.alerts += endAlerts(instanceID, state, now: now, round.runtimes[instanceID]!)
                logger.info("instance \(instanceID) of '\(round.runtimes[instanceID]!.instance.definition.name)' ended \(state.rawValue)")
            }
        }
    }

    /// Decides a branch node on the spot: its row is stored ended, with the branch it chose, at
    /// its place among this round's outcomes; returns the engine's effects of the decision.
    func decide(_ instanceID: Int64, _ taskName: String, _ round: inout Round) -> [EngineEffect] {
        let now = ProcessStats.now()
        let task = round.runtimes[instanceID]!.instance.task(taskName)
        var record = TaskInstanceRecord(
            id: nil, workflowInstanceId: instanceID, taskName: taskName, attempt: 1, state: .success,
            priority: task.priority, workerGroup: task.workerGroup, submitTime: now, run: round.runtimes[instanceID]!.instance.record.run)
        (record.startTime, record.endTime) = (now, now)
        let event: EngineEvent
        switch round.runtimes[instanceID]!.instance.decide(taskName) {
        case .success(let decision):
            record.message = decision.message
            record.branchJson = String(decoding: WireJSON.encode(decision.branch), as: UTF8.self)
            event = .decided(task: taskName, branch: decision.branch)
            logger.info("instance \(instanceID): \(task.type.rawValue) '\(taskName)': \(decision.message)")
        case .failure(let problem):
            record.state = .failure
            record.message = problem.description
            event = .taskFinished(task: taskName, outcome: .failure)
            logger.warning("instance \(instanceID): \(task.type.rawValue) '\(taskName)' failed: \(problem)")
        }
        round.batch.decisions.append((round.batch.outcomes.count, record))
        return round.runtimes[instanceID]!.instance.engine.handle(event)
    }

    /// A new attempt row for a task the engine started (or whose attempt was lost with its worker).
    func newAttempt(_ instanceID: Int64, _ taskName: String, _ attempt: Int, _ round: inout Round) {
        let task = round.runtimes[instanceID]!.instance.task(taskName)
        var record = TaskInstanceRecord(
            id: nil, workflowInstanceId: instanceID, taskName: taskName, attempt: attempt, state: .dispatched,
            priority: task.priority, workerGroup: task.workerGroup, submitTime: ProcessStats.now(),
            run: round.runtimes[instanceID]!.instance.record.run, pool: task.pool)
        if task.type == .subProcess || task.type == .dependent {
            // Runs from now on the master: a child is stored with it (Store.startChild), or it waits
            // for its dependencies (processDependents).
            record.state = .running
            record.startTime = record.submitTime
            record.runsOnMaster = true
            if task.type == .subProcess { record.childRequest = round.runtimes[instanceID]!.instance.childRequest(taskName) }
        }
        round.batch.newAttempts.append(record)
    }

    /// Stores the round (one transaction), swaps its copies in, then publishes it to ZooKeeper
    /// (queue items, results consumed). A failure before the swap drops the copies: memory stays
    /// as storage still has it. A failure after it leaves memory as storage now has it, and only
    /// ZooKeeper behind: an awaited attempt whose item was not written is found nowhere by
    /// `reconcile` and resubmitted, a stored result left behind is deleted by
    /// `processUnexpectedResults`, as after a takeover. `round` is empty afterwards.
    func commit(_ round: inout Round) async throws {
        defer { round = Round() }
        if !round.batch.newAttempts.isEmpty {
            do { try await placeNewAttempts(&round) } catch { throw discarded(round, error) }
        }
        let applied: AppliedBatch
        do {
            applied = round.batch.isEmpty ? AppliedBatch(inserted: [], lostOwnership: [])
                : try await store.apply(round.batch, session: session)
        } catch {
            throw discarded(round, error)
        }
        try FaultPoint.hit("master-after-commit")
        var childrenMoved = false
        for attempt in applied.inserted where attempt.runsOnMaster && round.runtimes[attempt.workflowInstanceId] != nil {
            let instanceID = attempt.workflowInstanceId
            let ref = AttemptRef(instance: instanceID, task: attempt.taskName, attempt: attempt.attempt, queuePath: "")
            if attempt.childRequest == nil {
                round.runtimes[instanceID]!.dependentWaits[attempt.id!] = DependentWait(ref: ref, since: attempt.submitTime)
                lastDependentCheck = .now - .seconds(60)
                wakeups.mark(.dependents)
                continue
            }
            if let problem = applied.childProblems[attempt.id!] {
                round.runtimes[instanceID]!.unpreparable.append((attempt.id!, attempt.taskName, "no child instance started: \(problem)"))
            } else if let child = attempt.childInstanceId {
                round.runtimes[instanceID]!.childWaits[attempt.id!] = ChildWait(ref: ref, child: child)
                childrenMoved = true
                logger.info("instance \(instanceID): SUB_PROCESS '\(attempt.taskName)' started child instance \(child)")
            }
        }
        for finished in round.batch.finishedInstances where round.runtimes[finished.id]?.instance.record.parentInstanceId != nil {
            childrenMoved = true
        }
        for attempt in applied.inserted where attempt.state == .submitted {
            guard let instance = round.runtimes[attempt.workflowInstanceId]?.instance else { continue }
            let key = TaskQueueKey(workflowPriority: instance.record.priority, workflowInstanceId: attempt.workflowInstanceId,
                                   taskPriority: attempt.priority, taskInstanceId: attempt.id!)
            round.backlogAdded.append(BacklogEntry(key: key, group: attempt.workerGroup, instance: attempt.workflowInstanceId,
                                                   task: attempt.taskName, attempt: attempt.attempt, submitTime: attempt.submitTime,
                                                   pool: attempt.pool))
        }
        var readySince: [Double] = []
        for attempt in applied.inserted where attempt.state == .dispatched && !applied.lostOwnership.contains(attempt.workflowInstanceId) {
            if let item = enqueue(attempt.id!, instance: attempt.workflowInstanceId, task: attempt.taskName, attempt: attempt.attempt, &round) {
                round.queued.append(item)
                readySince.append(attempt.submitTime)
            }
        }
        install(round, lost: applied.lostOwnership)
        // Only results stored under this master's ownership are deleted: a master failed over while
        // it hung must leave the results it read to the new owner.
        let consumed = round.consumed.filter { !applied.lostOwnership.contains($0.instance) }.map(\.id)
        try await publish(creates: round.queued, deletes: consumed.map { paths.result($0) })
        metrics.dispatched(readySince: readySince)
        metrics.stored(round.batch, lost: applied.lostOwnership)
        if !consumed.isEmpty && backlogCount > 0 { wakeups.mark(.feed) }
        if !round.batch.finishedInstances.isEmpty { wakeups.mark(.commands) }
        // Another master may run the child, or the parent: wake every master's command pass.
        if childrenMoved { try await signalMasters() }
    }

    /// New attempts go to ZooKeeper as far as the window has room (in key order: the sort is
    /// stable and ids follow insertion order); the rest wait as SUBMITTED in the backlog.
    private func placeNewAttempts(_ round: inout Round) async throws {
        var room = try await self.room(for: Set(round.batch.newAttempts.map(\.workerGroup)))
        for g in room.keys where !(backlog[g]?.isEmpty ?? true) { room[g] = 0 }  // the backlog goes first
        // Sort keys made once per attempt, not per comparison (a round can hold a million).
        let new = round.batch.newAttempts
        let keys = new.enumerated().map { i, a in
            (round.runtimes[a.workflowInstanceId]?.instance.record.priority.rank ?? 0, a.workflowInstanceId, a.priority.rank, i)
        }
        round.batch.newAttempts = new.indices.sorted { keys[$0] < keys[$1] }.map { new[$0] }
        for i in round.batch.newAttempts.indices {
            let g = round.batch.newAttempts[i].workerGroup
            if round.batch.newAttempts[i].runsOnMaster {
                continue  // SUB_PROCESS, DEPENDENT: no queue
            } else if round.batch.newAttempts[i].pool != nil {
                round.batch.newAttempts[i].state = .submitted  // it waits for a slot of its pool (feedPools)
            } else if room[g, default: 0] > 0 {
                room[g]! -= 1
            } else {
                round.batch.newAttempts[i].state = .submitted
            }
        }
    }

    /// Says which instances' plan a failed round drops, and hands the error on.
    private func discarded(_ round: Round, _ error: Error) -> Error {
        if !round.runtimes.isEmpty {
            logger.notice("round not stored (\(error)): its plan for instances \(round.runtimes.keys.sorted()) is discarded")
        }
        return error
    }

    /// Writes what an installed round publishes. Memory already holds what storage holds; if the
    /// write fails, the checks that repair ZooKeeper from it run on the next pass.
    func publish(creates: [(path: String, data: Data)], deletes: [String]) async throws {
        do {
            try await writeRound(creates: creates, deletes: deletes)
        } catch {
            if !creates.isEmpty { wakeups.mark(.reconcile) }
            if !deletes.isEmpty { wakeups.mark(.results) }
            throw error
        }
    }
}
