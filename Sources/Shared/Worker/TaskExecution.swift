import Foundation
import Logging

extension WorkerDaemon {
    // MARK: Running

    func execute(_ task: QueuedTask, logPath: String) async {
        let id = task.taskInstanceId
        let startTime = ProcessStats.now()
        var result = TaskResultMessage(taskInstanceId: id, state: .failure, exitCode: nil, worker: options.identity,
                                       pid: nil, logPath: logPath, startTime: startTime, endTime: startTime,
                                       outputs: [:], message: nil)
        logs.began(id, workflowInstance: task.workflowInstanceId)
        defer {
            logs.ended(id)
            supervisor.forget(id)
        }
        metrics.started.increment()
        do {
            if let problem = Self.queueItemProblem(task) { throw WorkerError.refusedItem(problem) }
            // Made every time (one mkdir): the retention sweep may have removed the instance's
            // folder since its last task here; `began` above keeps it from doing so from now on.
            try Self.makeLogFolder(for: logPath)
            let tenant: TenantUser?
            switch options.tenants.user(for: task.tenant) {
            case .success(let user): tenant = user
            case .failure(let refusal):
                Self.writeRefusal(logPath, "[ds] not started: \(refusal)\n")
                throw refusal
            }
            let environment = Self.environment(of: task, user: tenant, passing: options.passEnv)
            if supervisor.isLost { try supervisor.restart() }  // before the event loop got to it
            let process = try await supervisor.spawn(id: id, command: task.command, environment: environment, logPath: logPath,
                                                     logMax: options.maxLogBytes,
                                                     options: (tenant?.supervisorOptions ?? []) + supervisorOptions(task))
            running[id] = process
            // A fence, the end of a stop's grace period, or a kill request that came while this
            // spawn was in flight found no process to kill: kill it now.
            if fenced != nil || killedForStop.contains(id) || killRequested.contains(id) { process.signalGroup(SIGKILL) }
            result.pid = process.pid
            let exit = await waitWithTimeout(process, task: task, logPath: logPath)
            switch supervisor.endCause(id) {
            case .leaseEnded?:
                // Killed because this worker's session may be gone: it fails over with the session,
                // and no result may claim otherwise.
                Self.appendToLog(logPath, "[ds] killed: worker \(options.identity) lost its ZooKeeper session lease; the task fails over\n")
                return
            case .supervisorLost?:
                Self.appendToLog(logPath, "[ds] killed: the task supervisor of worker \(options.identity) died while the task ran\n")
                throw TaskEnd.supervisorLost
            case nil:
                break
            }
            if let written = supervisor.logWriteError(id) {
                // The output had nowhere to go: the supervisor killed the task; its exit says nothing.
                throw TaskLogError(path: logPath, errno: written, creating: false)
            }
            if Self.logHasBytes(logPath) { logs.health.wrote() }
            result.endTime = ProcessStats.now()
            result.exitCode = exit.exit.code
            let outOfMemory = supervisor.wasOutOfMemory(id)
            result.timedOut = exit.timedOut ? true : nil
            (result.state, result.message) = Self.verdict(exit.exit, timedOut: exit.timedOut, killRequested: killRequested.contains(id),
                                                          killedForStop: killedForStop.contains(id), timeout: task.timeout ?? 0,
                                                          worker: options.identity)
            if outOfMemory && result.state != .kill {
                let limit = Limits.size(Int(effectiveMemoryMax(task) ?? 0))
                result.state = .failure
                result.message = "OOM: the kernel killed a process of the task for using more than its memory limit of \(limit)" + (result.message.map { " (\($0))" } ?? "")
                Self.appendToLog(logPath, "[ds] \(result.message!)\n")
            }
            // Off the actor: a long log must not stop this worker claiming, stopping or fencing.
            let printed = await Task.detached { Self.outputs(ofLog: logPath) }.value
            if let warning = printed.unclosedWarning { Self.appendToLog(logPath, warning + "\n") }
            if let problem = printed.problem {
                // Refused whole: a task's outputs are used together, and a result must stay small.
                Self.appendToLog(logPath, "[ds] \(problem)\n")
                if result.state == .success {
                    result.state = .failure
                    result.message = problem
                }
            } else {
                result.outputs = Self.declared(printed.outputs, task: task, logPath: logPath)
            }
        } catch let error where error is SupervisorLostDuringStart || (error as? TaskEnd) == .supervisorLost {
            // Not the task's own failure as far as anyone can tell: it runs again elsewhere, a new
            // attempt and not a retry; masters fail a task whose attempts keep taking workers down.
            result.endTime = ProcessStats.now()
            result.state = .needFaultTolerance
            result.supervisorLost = true
            result.message = "\(TaskResultMessage.supervisorLostMessage) (worker \(options.identity); a task may have killed it)"
        } catch let error as TaskLogError {
            result.endTime = ProcessStats.now()
            result.message = error.description
            logger.error("task \(id) '\(task.taskName)': \(error)")
            if error.isFolderFault { logs.health.failed("task \(id): \(error)") }
        } catch let error as SupervisorUnavailable {
            result.endTime = ProcessStats.now()
            result.state = .needFaultTolerance
            result.message = "not started: \(error); runs again"
        } catch let refusal as TenantRefusal {
            result.endTime = ProcessStats.now()
            result.message = "not started: \(refusal)"
            logger.error("task \(id) '\(task.taskName)': \(refusal)")
        } catch {
            result.endTime = ProcessStats.now()
            result.message = "could not start: \(error)"
            logger.error("task \(id) '\(task.taskName)': \(error)")
        }
        // A fenced worker writes nothing: its tasks fail over, like those of a dead worker.
        if fenced != nil { return }
        metrics.finished(result.state)
        // The slot stays taken until the result is written: the window in which a dying worker
        // leaves a finished but unrecorded task (which then runs again elsewhere) stays short.
        await report(result)
        // Best effort: the master that wrote the request deletes it too once it has the result.
        if killRequested.remove(id) != nil {
            do {
                try await zk.delete(killFolder + "/\(id)")
            } catch {
                // The master that wrote it deletes it once it has the result.
                logger.debug("task \(id): kill request left for its master: \(error)")
            }
        }
        running.removeValue(forKey: id)
        wakeups.mark(.slotFreed)
        wakeups.mark(.queue)
    }

    /// The memory limit a task runs under: what it asks, at most `--max-memory`.
    func effectiveMemoryMax(_ task: QueuedTask) -> Int64? {
        guard let ceiling = options.maxMemory else { return task.memoryMax }
        return min(task.memoryMax ?? ceiling, ceiling)
    }

    /// The supervisor options of a task: its cgroups and limits. A limit this worker cannot
    /// enforce fails the attempt with the reason; the task never runs unlimited.
    func supervisorOptions(_ task: QueuedTask) throws -> [(String, String)] {
        let containment = supervisor.containment
        let memory = effectiveMemoryMax(task)
        if let problem = containment.problem(memoryMax: memory, cpuQuota: task.cpuQuota) { throw WorkerError.refusedItem(problem) }
        var options = containment.directories(task: task.taskInstanceId).map { ("cgroup", $0) }
        if let memory { options.append(("memory_max", String(memory))) }
        if let quota = task.cpuQuota {
            options.append(("cpu_quota", String(min(quota, ProcessInfo.processInfo.activeProcessorCount * 100))))
        }
        return options
    }

    /// How a finished task is reported. A kill (a stop of its instance, or the end of this worker's
    /// grace period) counts only if the task's shell died by a signal: a kill that came after the
    /// task had exited on its own killed nothing, and its real end stands. Reported as KILL, a
    /// success would run again on resume; as NEED_FAULT_TOLERANCE, on another worker.
    static func verdict(_ exit: ProcessExit, timedOut: Bool, killRequested: Bool, killedForStop: Bool, timeout: Double,
                        worker: String) -> (state: TaskState, message: String?) {
        let signaled = if case .signaled = exit { true } else { false }
        if killRequested && signaled {
            // The instance is being stopped: KILL, which is never retried.
            return (.kill, "killed: its workflow instance was stopped")
        } else if timedOut {
            return (.failure, "timed out after \(format(timeout)) and was killed")
        } else if killedForStop && signaled {
            // Not the task's failure: it fails over to another worker, as after a kill -9 of
            // this one (a new attempt, not a retry), so a rolling restart fails no workflow.
            return (.needFaultTolerance, "killed: worker \(worker) stopped and the grace period ran out; runs again on another worker")
        }
        switch exit {
        case .exited(0): return (.success, nil)
        case .exited(let c): return (.failure, "exited with status \(c)")
        case .signaled(let s): return (.failure, "killed by signal \(s)")
        }
    }

    func waitWithTimeout(_ process: TaskProcess, task: QueuedTask, logPath: String) async -> (exit: ProcessExit, timedOut: Bool) {
        guard let timeout = task.timeout, timeout > 0 else { return (await process.waitForExit(), false) }
        return await withTaskGroup(of: (ProcessExit?, Bool).self) { group in
            group.addTask { (await process.waitForExit(), false) }
            group.addTask {
                // Clamped: a queue item is input, and Int(1e308) would trap the worker.
                try? await Task.sleep(for: .milliseconds(Int(min(timeout, Limits.maxDurationSeconds) * 1000)))
                if Task.isCancelled { return (nil, false) }
                if task.timeoutStrategy.kills {
                    // SIGKILL at once, to the whole group: a TERM first would let a child that
                    // ignores it outlive its shell, and once the shell is reaped its group can
                    // no longer be signalled safely (the supervisor never signals a reaped pid).
                    process.signalGroup(SIGKILL)
                    return (nil, true)
                }
                Self.appendToLog(logPath, "[ds] warning: task is still running after its timeout of \(Self.format(timeout))\n")
                return (nil, false)
            }
            var timedOut = false
            var exit: ProcessExit = .exited(0)
            for await (e, t) in group {
                timedOut = timedOut || t
                if let e {
                    exit = e
                    group.cancelAll()
                }
            }
            return (exit, timedOut)
        }
    }

    /// Creates `/results/<id>` and deletes `/running/<id>` in one multi; retries while the
    /// session lives, since the result must survive before the worker forgets the task.
    func report(_ result: TaskResultMessage) async {
        let id = result.taskInstanceId
        while true {
            // Past the lease the session may be gone and the task failed over: a result written
            // now could contradict the new attempt's.
            if SessionLease.deadline(zk) <= MonotonicTime.nowNanos() {
                logger.error("task \(id): result not reported, the session lease has ended; the task fails over")
                return
            }
            do {
                try await zk.multi([
                    .create(path: paths.result(id), data: WireJSON.encode(result), mode: .persistent),
                    .delete(path: paths.running(id)),
                ])
                return
            } catch let error as ZooKeeperError {
                switch error.cause {
                case .nodeExists, .noNode:
                    // Already reported by an earlier try whose answer was lost.
                    try? await zk.delete(paths.running(id))
                    return
                case .sessionExpired, .closing:
                    logger.error("task \(id): result not reported, session gone: \(error)")
                    return
                default:
                    // Cancelled means the worker is fencing itself: the result must not be written.
                    if Task.isCancelled { return }
                    logger.warning("task \(id): reporting result failed (\(error)); retrying")
                    try? await Task.sleep(for: .milliseconds(200))
                }
            } catch {
                return
            }
        }
    }

    /// `/kill/<host:port>`: where masters ask this worker to kill tasks.
    nonisolated var killFolder: String { paths.killFolder(options.identity) }

    /// Kills the process groups of the tasks masters asked to kill, at once and whole (SIGKILL to
    /// the group: no process of a stopped task's group survives it). A request for a task this
    /// worker does not run (it ended, or ran elsewhere) is deleted; the others are deleted once the
    /// task's result is written.
    func processKills() async throws {
        let names = try await zk.children(killFolder) { [wakeups] _ in wakeups.mark(.kills) }
        for name in names {
            guard let id = Int64(name), running[id] != nil else {
                do { try await zk.delete(killFolder + "/" + name) } catch ZooKeeperError.noNode {}
                continue
            }
            guard killRequested.insert(id).inserted else { continue }
            logger.notice("task \(id): kill requested (its workflow instance is being stopped)")
            if case let process?? = running[id] { process.signalGroup(SIGKILL) }
        }
    }

    /// Kills every running task and records why this worker must stop; the first reason stays.
    func fence(_ reason: WorkerError) {
        killAll(signal: SIGKILL)
        if fenced == nil { fenced = reason }
    }

    func killAll(signal: Int32) {
        for case let process? in running.values { process.signalGroup(signal) }
    }

    /// How a task's run ended other than by its exit.
    enum TaskEnd: Error { case supervisorLost }
}
