import Foundation

/// Pause and stop (`ds-instance`): a command in the database reaches the master that owns the
/// instance; the engine stops starting tasks and asks for the running ones to be withdrawn from the
/// queue (pause) or killed (stop). Where the instance stands is stored (READY_PAUSE, READY_STOP,
/// and where in the event order the owner applied it), so a master that takes it over rebuilds
/// the same engine and redoes the withdrawals and kills, which are idempotent.
extension MasterScheduler {
    /// An attempt to take back from the queue, or to kill, because its instance pauses or stops.
    struct Halt: Sendable {
        var id: Int64
        var ref: AttemptRef
        var stop: Bool
        /// Waiting in this master's backlog, never written to ZooKeeper.
        var inBacklog: Bool
        /// `ds-queue remove`: taken out of the queue if no worker has it, never killed; it ends KILL
        /// and its workflow follows its failure strategy.
        var remove = false
        /// The REMOVE command, deleted in the round that records what became of the attempt: a
        /// master that dies before leaves it to the next.
        var commandID: Int64?
    }

    /// Applies the pause and stop commands of this master's instances, each once: the command is
    /// deleted in the round that applies it. One for an instance this master no longer runs (it
    /// ended first) is deleted without effect.
    func claimControls() async throws {
        let requests = try await store.pendingControls(session: session)
        guard !requests.isEmpty else { return }
        var round = Round()
        for var request in requests {
            let id = request.instance
            let running = checkout(id, &round)
            if let attemptID = request.removeAttempt {
                let pending = round.runtimes[id]?.halts.contains(where: { $0.commandID == request.commandID }) ?? false
                if running, !pending, let (ref, inBacklog) = takeAwaited(attemptID, of: id, &round) {
                    logger.notice("instance \(id): attempt \(attemptID) of '\(ref.task)' to be removed from the queue")
                    round.runtimes[id]!.halts.append(Halt(id: attemptID, ref: ref, stop: true, inBacklog: inBacklog, remove: true,
                                                          commandID: request.commandID))
                } else if !pending {
                    round.batch.controls.append(request)  // nothing of it waits here any more: moot
                }
                continue
            }
            if running {
                let before = round.runtimes[id]!.instance.engine.state
                let effects = round.runtimes[id]!.instance.engine.handle(request.stop ? .stop : .pause)
                request.applied = round.runtimes[id]!.instance.engine.state != before || !effects.isEmpty
                if request.applied {
                    logger.notice("instance \(id): \(request.stop ? "stop" : "pause") requested; \(request.stop ? "killing its running tasks" : "its running tasks finish, nothing new starts")")
                }
                apply(effects, to: id, &round)
                if request.applied { purgeBacklog(of: id, stop: request.stop, &round) }
            }
            round.batch.controls.append(request)
        }
        try await commit(&round)
    }

    /// Where this master keeps an attempt it waits for, on the round's copy of its instance:
    /// awaited in ZooKeeper, or in the backlog (taken out of it, since it is about to end).
    func takeAwaited(_ id: Int64, of instanceID: Int64, _ round: inout Round) -> (AttemptRef, inBacklog: Bool)? {
        if let ref = round.runtimes[instanceID]!.attempts[id] { return (ref, false) }
        if let i = round.runtimes[instanceID]!.unclassified.firstIndex(where: { $0.entry.key.taskInstanceId == id }) {
            let item = round.runtimes[instanceID]!.unclassified.remove(at: i)
            round.runtimes[instanceID]!.attempts[id] = item.ref
            return (item.ref, false)
        }
        guard !round.backlogTaken.contains(id) else { return nil }
        for heap in backlog.values {
            var match = heap.filter { $0.key.taskInstanceId == id }
            guard let entry = match.pop() else { continue }
            round.backlogTaken.insert(id)
            return (ref(of: entry), true)
        }
        return nil
    }

    /// Takes every backlog entry of an instance that begins to pause or stop: none was ever in
    /// ZooKeeper, so each ends at once, without running.
    func purgeBacklog(of instanceID: Int64, stop: Bool, _ round: inout Round) {
        for heap in backlog.values where heap.contains(where: { $0.instance == instanceID }) {
            heap.forEach { entry in
                guard entry.instance == instanceID, !round.backlogTaken.contains(entry.key.taskInstanceId) else { return }
                round.backlogTaken.insert(entry.key.taskInstanceId)
                round.runtimes[instanceID]!.halts.append(haltFromBacklog(entry, stop: stop))
            }
        }
    }

    /// Finds the attempts of the runtimes' halt requests among those this master waits for.
    private func resolveHaltRequests(_ round: inout Round) {
        for instanceID in pendingWork({ !$0.haltRequests.isEmpty }) {
            checkout(instanceID, &round)
            var runtime = round.runtimes[instanceID]!
            var wanted: [String: Bool] = [:]
            for r in runtime.haltRequests { wanted["\(r.attempt)/\(r.task)"] = r.stop }
            runtime.haltRequests = []
            func stop(_ ref: AttemptRef) -> Bool? { wanted["\(ref.attempt)/\(ref.task)"] }
            for (id, wait) in runtime.dependentWaits {
                // Waiting on the master: it ends at once (KILL, or PAUSE to wait again on resume).
                guard let stop = stop(wait.ref) else { continue }
                runtime.dependentWaits.removeValue(forKey: id)
                runtime.halts.append(Halt(id: id, ref: wait.ref, stop: stop, inBacklog: true))
            }
            for wait in runtime.childWaits.values {
                if let stop = stop(wait.ref) { runtime.childHalts.append((wait.child, stop)) }
            }
            for (id, ref) in runtime.attempts {
                if let stop = stop(ref) { runtime.halts.append(Halt(id: id, ref: ref, stop: stop, inBacklog: false)) }
            }
            runtime.unclassified.removeAll { item in
                // Perhaps fed by a master that died before recording it: looked for like one in ZooKeeper.
                guard let stop = stop(item.ref) else { return false }
                runtime.attempts[item.entry.key.taskInstanceId] = item.ref
                runtime.halts.append(Halt(id: item.entry.key.taskInstanceId, ref: item.ref, stop: stop, inBacklog: false))
                return true
            }
            round.runtimes[instanceID] = runtime
        }
    }

    /// Carries out the halts: an attempt still in the queue (or backlog) is taken out and ends KILL
    /// (stop) or PAUSE (pause) without running; one a worker runs is sent a kill request (stop) or
    /// left to finish (pause); one that already reported is left to its result. Planned on copies:
    /// a step that fails leaves every halt to the next pass (each is idempotent).
    func processHalts() async throws {
        for node in staleKillNodes.prefix(1000) {
            do { try await zk.delete(node) } catch ZooKeeperError.noNode {}
        }
        staleKillNodes.removeFirst(min(1000, staleKillNodes.count))
        guard !withWork.isEmpty else { return }
        var round = Round()
        resolveHaltRequests(&round)
        var childHalts: [(child: Int64, stop: Bool)] = []
        var halts: [Halt] = []
        for instanceID in Set(withWork).union(round.runtimes.keys).sorted() {
            guard let runtime = runtime(instanceID, in: round), !runtime.childHalts.isEmpty || !runtime.halts.isEmpty else { continue }
            checkout(instanceID, &round)
            childHalts += runtime.childHalts
            halts += runtime.halts
            round.runtimes[instanceID]!.childHalts = []
            round.runtimes[instanceID]!.halts = []
        }
        if !childHalts.isEmpty { try await haltChildren(childHalts) }
        let outcomes = try await halts.concurrentMap(limit: Self.lookupConcurrency) { [zk, paths, identity = options.identity] h -> HaltOutcome in
            if h.inBacklog { return HaltOutcome(gone: true) }
            do {
                try await zk.multi([zk.fenceCheck(paths), .delete(path: h.ref.queuePath)])
                return HaltOutcome(gone: true)
            } catch let error as ZooKeeperError where ZooKeeperClient.isFenced(error) {
                throw MasterError.failedOver(identity)
            } catch let error as ZooKeeperError where error.cause == .noNode(h.ref.queuePath) {}
            switch try await AttemptWhereabouts.locate(h.id, queuePath: h.ref.queuePath, zk: zk, paths: paths) {
            case .queued, .reported:
                return HaltOutcome(gone: false)  // queued again cannot be; a result is consumed as usual
            case .nowhere:
                return HaltOutcome(gone: true)  // lost with its worker, or never fed: it ran, if at all, on no live worker
            case .running:
                guard h.stop && !h.remove else { return HaltOutcome(gone: false) }  // a pause lets it finish; a removal came too late
                return try await Self.writeKillRequest(h.id, zk: zk, paths: paths)
            }
        }
        // Queue items are gone now, their ends not yet stored: a takeover must not bring them back.
        try FaultPoint.hit("master-after-halt-delete")
        let now = ProcessStats.now()
        for (h, outcome) in zip(halts, outcomes) {
            if let node = outcome.killNode { round.runtimes[h.ref.instance]!.killNodes[h.id] = node }
            if let problem = outcome.killProblem {
                // Left RUNNING (only its worker can end it): the operator must see why the stop hangs.
                logger.error("stop of instance \(h.ref.instance): \(problem)")
                round.batch.notes.append((id: h.id, instance: h.ref.instance, message: problem))
            }
            if let command = h.commandID {
                round.batch.controls.append(ControlRequest(commandID: command, instance: h.ref.instance, stop: true, applied: false))
            }
        }
        for (h, outcome) in zip(halts, outcomes) where outcome.gone {
            guard round.runtimes[h.ref.instance]!.attempts.removeValue(forKey: h.id) != nil || h.inBacklog else { continue }
            round.runtimes[h.ref.instance]!.seenRunning.remove(h.id)
            endHalted(h.id, h.ref, stop: h.stop,
                      message: h.remove ? "removed from the queue (ds-queue remove)" : h.stop ? "stopped before a worker started it" : "paused before a worker started it",
                      now: now, &round)
        }
        try await commit(&round)
    }

    /// What carrying out one halt found: the attempt is gone (ends now), or a kill request was
    /// written, or could not be.
    struct HaltOutcome: Sendable {
        var gone: Bool
        var killNode: String? = nil
        var killProblem: String? = nil
    }

    /// Writes the kill request of a running attempt to the worker its `/running` node names. A
    /// worker's identity passed `ServerIdentity` when it started; one that does not now (a node
    /// written by something else) or a write ZooKeeper refuses is returned as a problem, not
    /// retried for ever and not dropped in silence.
    static func writeKillRequest(_ id: Int64, zk: ZooKeeperClient, paths: ZooKeeperPaths) async throws -> HaltOutcome {
        let (data, _) = try await zk.getData(paths.running(id))
        guard let holder = try? WireJSON.decode(RunningTask.self, data) else {
            return HaltOutcome(gone: false, killProblem: "kill request not written: the running node of attempt \(id) is unreadable")
        }
        if let problem = ServerIdentity.problem(holder.worker) {
            return HaltOutcome(gone: false, killProblem: "kill request not written: worker \(Limits.quoted(holder.worker)) \(problem)")
        }
        let node = paths.killRequest(holder.worker, id)
        do {
            try await zk.ensurePath(paths.killFolder(holder.worker))
            do { try await zk.create(node) } catch ZooKeeperError.nodeExists {}
        } catch let error as ZooKeeperError where !error.isTransient && error != .sessionExpired && error != .closing {
            return HaltOutcome(gone: false, killProblem: "kill request \(node) not written: \(error)")
        }
        return HaltOutcome(gone: false, killNode: node)
    }

    /// Records a halted attempt's end (KILL or PAUSE) and tells the engine, which runs it again on
    /// resume; on the round's copy of the instance (checked out already).
    func endHalted(_ id: Int64, _ ref: AttemptRef, stop: Bool, message: String, now: Double, _ round: inout Round) {
        if let node = round.runtimes[ref.instance]!.killNodes.removeValue(forKey: id) { round.staleKillNodes.append(node) }
        round.batch.outcomes.append(AttemptOutcome(
            taskInstanceId: id, workflowInstanceId: ref.instance, state: stop ? .kill : .pause, host: nil, pid: nil, logPath: nil,
            exitCode: nil, outputJson: nil, message: message, startTime: nil, endTime: now))
        apply(round.runtimes[ref.instance]!.instance.engine.handle(.taskFinished(task: ref.task, outcome: stop ? .killed : .withdrawn)),
              to: ref.instance, &round)
    }

    /// The pause and stop of a stored instance, where its owner applied them (nil: requested, not
    /// yet applied), for `WorkflowEngine.restore`.
    static func controls(of record: WorkflowInstanceRecord) -> [(event: EngineEvent, seq: Int64?)] {
        var controls: [(event: EngineEvent, seq: Int64?)] = []
        if let seq = record.pauseSeq { controls.append((.pause, seq)) } else if record.state == .readyPause { controls.append((.pause, nil)) }
        if let seq = record.stopSeq { controls.append((.stop, seq)) } else if record.state == .readyStop { controls.append((.stop, nil)) }
        return controls
    }
}
