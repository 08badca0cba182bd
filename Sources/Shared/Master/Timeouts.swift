import Foundation

/// Timeouts that alert: a task's (WARN, WARNFAIL), from when its worker started it, and a
/// workflow's, from when its instance started. The worker kills at a task's timeout on its own
/// (FAIL, WARNFAIL); the master only records alerts, one row per event however many masters see it.
extension MasterScheduler {
    /// Arms the alert of an attempt its worker has started, if its task's timeout alerts. A master
    /// that takes over arms it again from the stored start: a deadline already past fires at once.
    func scheduleTaskTimeout(_ id: Int64, _ ref: AttemptRef, startedAt: Double, _ runtime: inout InstanceRuntime) {
        guard let timeout = runtime.instance.task(ref.task).alertingTimeout else { return }
        runtime.timeouts[.task(id: id)] = startedAt + timeout
    }

    /// Arms a workflow's timeout, from the start of the instance's current run.
    func scheduleWorkflowTimeout(_ runtime: inout InstanceRuntime) {
        let instance = runtime.instance
        guard let timeout = instance.definition.timeout, timeout > 0 else { return }
        runtime.timeouts[.workflow(run: instance.record.run)] = (instance.record.runStartTime ?? instance.record.startTime ?? ProcessStats.now()) + timeout
    }

    /// Records the alerts of the timeouts that are due. The timer only wakes the loop: the
    /// deadlines are the runtimes', so a round that fails leaves them due for the next pass.
    func processTimeouts() async throws {
        let now = ProcessStats.now()
        _ = timeoutTimers.takeDue(now: now)
        var round = Round()
        for (instanceID, keys) in takeDue(\.timeouts, now: now, &round) {
            let runtime = round.runtimes[instanceID]!
            for key in keys {
                switch key {
                case .task(let id):
                    // Ended before its deadline came round: nothing to say.
                    guard let ref = runtime.attempts[id] else { continue }
                    round.batch.alerts.append(taskTimeoutAlert(id, ref, runtime, worker: nil, killed: false))
                case .workflow(let run):
                    guard runtime.instance.record.run == run, !runtime.instance.engine.state.isTerminal,
                          let alert = workflowTimeoutAlert(instanceID, now: now, runtime) else { continue }
                    round.batch.alerts.append(alert)
                }
            }
        }
        try await commit(&round)
    }

    /// The alert of an instance whose current run has outlived its workflow's timeout, or nil if
    /// it has not (or has no timeout). Checked by the timer, and again when the instance ends: a
    /// master that took over after the deadline, with results waiting, ends it before any timer.
    func workflowTimeoutAlert(_ instanceID: Int64, now: Double, _ runtime: InstanceRuntime) -> AlertRecord? {
        let instance = runtime.instance
        guard let timeout = instance.definition.timeout, timeout > 0,
              let start = instance.record.runStartTime ?? instance.record.startTime, now - start >= timeout else { return nil }
        let run = instance.record.run
        let finished = instance.engine.state.isTerminal
        var content = AlertContent(kind: .workflowTimeout,
                                   title: "instance \(instanceID) of '\(instance.definition.name)' \(finished ? "ran longer than" : "still runs after") its workflow's timeout of \(DurationText.format(timeout))",
                                   time: now)
        (content.workflow, content.instance, content.run, content.timeoutSeconds) = (instance.definition.name, instanceID, run, timeout)
        logger.warning("\(content.title)")
        return AlertRecord(content, dedupKey: "\(AlertKind.workflowTimeout.rawValue):\(instanceID):\(run)")
    }

    /// The alerts of an instance that ends in `state`: its workflow's timeout, if the run outlived
    /// it, and the end itself if the workflow's `warning` asks for it. Keyed by instance and run.
    func endAlerts(_ instanceID: Int64, _ state: WorkflowState, now: Double, _ runtime: InstanceRuntime) -> [AlertRecord] {
        var alerts: [AlertRecord] = []
        if let alert = workflowTimeoutAlert(instanceID, now: now, runtime) { alerts.append(alert) }
        let instance = runtime.instance
        guard let warning = instance.definition.warning, warning.alerts(on: state) else { return alerts }
        let kind: AlertKind = state == .success ? .workflowSuccess : .workflowFailure
        let run = instance.record.run
        var content = AlertContent(kind: kind, title: "instance \(instanceID) of '\(instance.definition.name)' ended \(state.rawValue)", time: now)
        (content.workflow, content.instance, content.run, content.state) = (instance.definition.name, instanceID, run, state.rawValue)
        content.scheduleTime = instance.record.scheduleTime
        alerts.append(AlertRecord(content, dedupKey: "\(kind.rawValue):\(instanceID):\(run)"))
        return alerts
    }

    /// The alert of a task past its timeout: still running (WARN), or killed at it (WARNFAIL).
    /// Keyed by attempt, so the deadline's timer and the killed attempt's result make one row.
    func taskTimeoutAlert(_ id: Int64, _ ref: AttemptRef, _ runtime: InstanceRuntime, worker: String?, killed: Bool) -> AlertRecord {
        let instance = runtime.instance
        let timeout = instance.task(ref.task).timeout ?? 0
        let what = killed ? "was killed at its timeout of" : (runtime.attempts[id] == nil ? "ran longer than its timeout of" : "still runs after its timeout of")
        var content = AlertContent(kind: .taskTimeout,
                                   title: "task '\(ref.task)' of instance \(ref.instance) ('\(instance.definition.name)'), attempt \(ref.attempt), \(what) \(DurationText.format(timeout))",
                                   time: ProcessStats.now())
        (content.workflow, content.instance, content.run) = (instance.definition.name, ref.instance, instance.record.run)
        (content.task, content.taskInstance, content.attempt, content.worker, content.timeoutSeconds) = (ref.task, id, ref.attempt, worker, timeout)
        logger.warning("\(content.title)")
        return AlertRecord(content, dedupKey: "\(AlertKind.taskTimeout.rawValue):\(id)")
    }
}
