import Foundation

/// The rounds driven by workers and timers: results reported, retries due, attempts claimed.
/// Each plans on copies of the runtimes it changes (see `InstanceRuntime`).
extension MasterScheduler {
    func processResults() async throws {
        let names = try await zk.children(paths.results) { [wakeups] _ in wakeups.mark(.results) }
        let ids = names.compactMap(Int64.init)
        // Other masters delete their results; an id no longer listed never comes back.
        foreignResults.formIntersection(ids)
        let mine = ids.filter { attemptOwners[$0] != nil }
        let unknown = ids.filter { attemptOwners[$0] == nil && !foreignResults.contains($0) }
        if !unknown.isEmpty { try await processUnexpectedResults(unknown) }
        guard !mine.isEmpty else { return }
        let messages = try await withThrowingTaskGroup(of: TaskResultMessage?.self) { group in
            for id in mine {
                group.addTask { [zk, paths] in
                    do {
                        let (data, _) = try await zk.getData(paths.result(id))
                        // A node that is no result of this attempt (written past the workers) is
                        // read as the attempt's failure, not as another attempt's result.
                        guard let m = try? WireJSON.decode(TaskResultMessage.self, data), m.taskInstanceId == id else {
                            return TaskResultMessage(taskInstanceId: id, state: .failure, exitCode: nil, worker: "?", pid: nil,
                                                     logPath: "", startTime: ProcessStats.now(), endTime: ProcessStats.now(),
                                                     outputs: [:], message: "its result node \(paths.result(id)) could not be read")
                        }
                        return m
                    } catch ZooKeeperError.noNode { return nil }
                }
            }
            var all: [TaskResultMessage] = []
            for try await m in group { if let m { all.append(m) } }
            return all
        }
        try FaultPoint.hit("master-results-read")
        // Supervisor deaths already stored for the tasks whose attempt just saw one (rare: read here,
        // before the round, so the round is planned from reads that succeeded).
        var supervisorDeaths: [Int64: Int] = [:]
        for m in messages where m.supervisorLost == true && m.state == .needFaultTolerance {
            guard let owner = attemptOwners[m.taskInstanceId], let runtime = runtimes[owner],
                  let ref = runtime.attempts[m.taskInstanceId] else { continue }
            supervisorDeaths[m.taskInstanceId] = try await store.supervisorDeaths(instance: owner, task: ref.task, run: runtime.instance.record.run)
        }
        var round = Round()
        for m in messages {
            guard let instanceID = attemptOwners[m.taskInstanceId], checkout(instanceID, &round),
                  let ref = round.runtimes[instanceID]!.attempts.removeValue(forKey: m.taskInstanceId) else { continue }
            // Its worker deletes its kill request after reporting; this covers one that died in between.
            if let node = round.runtimes[instanceID]!.killNodes.removeValue(forKey: m.taskInstanceId) { round.staleKillNodes.append(node) }
            let taskName = ref.task
            round.runtimes[instanceID]!.seenRunning.remove(m.taskInstanceId)
            round.consumed.append((m.taskInstanceId, instanceID))
            let outputsJSON = m.outputs.isEmpty ? nil : String(decoding: WireJSON.encode(m.outputs), as: UTF8.self)
            round.batch.outcomes.append(AttemptOutcome(
                taskInstanceId: m.taskInstanceId, workflowInstanceId: instanceID, state: m.state, host: m.worker, pid: m.pid, logPath: m.logPath,
                exitCode: m.exitCode, outputJson: outputsJSON, message: m.message, startTime: m.startTime, endTime: m.endTime))
            if m.state == .needFaultTolerance && round.runtimes[instanceID]!.instance.isHalting {
                // Stopped with its worker while its instance pauses or stops: it runs again on resume.
                round.batch.outcomes.removeLast()
                endHalted(m.taskInstanceId, ref, stop: round.runtimes[instanceID]!.instance.engine.state == .readyStop,
                          message: "stopped with its worker while the instance was halting", now: ProcessStats.now(), &round)
                continue
            }
            if let earlier = supervisorDeaths[m.taskInstanceId], earlier + 1 >= Limits.supervisorDeathsBeforeFailure {
                // No failover loop: a task that keeps killing its supervisor fails.
                let why = "its attempts saw the task supervisor die \(earlier + 1) times (a task that kills its parent process?); it fails instead of running again"
                round.batch.outcomes[round.batch.outcomes.count - 1].state = .failure
                round.batch.outcomes[round.batch.outcomes.count - 1].message = why
                logger.warning("instance \(instanceID): '\(taskName)' \(why)")
                apply(round.runtimes[instanceID]!.instance.engine.handle(.taskFinished(task: taskName, outcome: .failure)), to: instanceID, &round)
                continue
            }
            if m.state == .needFaultTolerance {
                // Killed by its worker's own stop, or with its task supervisor: it fails over as if the worker had died (a new
                // attempt with the same number, not a retry); the engine still waits for the task.
                logger.notice("instance \(instanceID): attempt \(m.taskInstanceId) of '\(taskName)' was stopped with its worker; resubmitting")
                newAttempt(instanceID, taskName, ref.attempt, &round)
                continue
            }
            if m.state == .success { round.runtimes[instanceID]!.instance.recordOutputs(of: taskName, m.outputs) }
            // Also when no timer saw it: it ended before this master looked (a short timeout, or a
            // takeover that came after its end). The row is one either way (its dedup key).
            if let timeout = round.runtimes[instanceID]!.instance.task(taskName).alertingTimeout,
               m.timedOut == true || m.endTime - m.startTime > timeout {
                round.batch.alerts.append(taskTimeoutAlert(m.taskInstanceId, ref, round.runtimes[instanceID]!, worker: m.worker,
                                                           killed: m.timedOut == true))
            }
            let outcome: TaskOutcome = m.state == .success ? .success : (m.state == .kill ? .killed : .failure)
            let effects = round.runtimes[instanceID]!.instance.engine.handle(.taskFinished(task: taskName, outcome: outcome))
            apply(effects, to: instanceID, &round)
        }
        try await commit(&round)
    }

    /// Starts the retries (and delayed starts) that are due. The timer only wakes the loop: the
    /// deadlines are the runtimes', so a round that fails leaves them due for the next pass.
    func processRetries() async throws {
        let now = ProcessStats.now()
        _ = retryTimers.takeDue(now: now)
        var round = Round()
        for (id, tasks) in takeDue(\.retries, now: now, &round) {
            for task in tasks.sorted() { apply(round.runtimes[id]!.instance.engine.handle(.retryDue(task: task)), to: id, &round) }
        }
        try await commit(&round)
    }

    /// Marks attempts RUNNING once their worker has claimed them, at most ten times a second:
    /// the mark is for people watching, and listing /running on every claim costs ZooKeeper work.
    func processRunning() async throws {
        let since = ContinuousClock.now - lastRunningScan
        if since < .milliseconds(100) {
            runningScanDue = true
            return
        }
        lastRunningScan = .now
        runningScanDue = false
        let names = try await zk.children(paths.running) { [wakeups] _ in wakeups.mark(.running) }
        var round = Round()
        let now = ProcessStats.now()
        let fresh = names.compactMap(Int64.init).filter { id in
            attemptOwners[id].flatMap { runtimes[$0] }.map { !$0.seenRunning.contains(id) } ?? false
        }
        // Which worker runs each, and where its log is: kept even if the worker dies before it
        // reports (ds-instance show, ds-logs). Read together, one round trip.
        let holders = try await withThrowingTaskGroup(of: (Int64, RunningTask?).self) { group in
            for id in fresh {
                group.addTask { [zk, paths] in
                    guard let (data, _) = try await zk.getDataIfPresent(paths.running(id)) else { return (id, nil) }
                    do { return (id, try WireJSON.decode(RunningTask.self, data)) } catch { return (id, nil) }  // no names, then
                }
            }
            var all: [Int64: RunningTask] = [:]
            for try await (id, holder) in group { all[id] = holder }
            return all
        }
        for id in fresh {
            guard let instanceID = attemptOwners[id], checkout(instanceID, &round),
                  let ref = round.runtimes[instanceID]!.attempts[id] else { continue }
            round.runtimes[instanceID]!.seenRunning.insert(id)
            scheduleTaskTimeout(id, ref, startedAt: holders[id]?.startTime ?? now, &round.runtimes[instanceID]!)
            round.batch.started.append((id, instanceID, now, holders[id]?.worker, holders[id]?.logPath))
        }
        try await commit(&round)
    }
}
