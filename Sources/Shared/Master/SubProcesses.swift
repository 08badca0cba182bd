import Foundation

/// SUB_PROCESS: a node's attempt starts a child instance (in the transaction that stores the
/// attempt) and ends with it. The child is an instance like any other, claimed by any master with a
/// free slot; the parent waits in memory, holding no thread, and an instance that only waits for
/// children holds no `--max-workflows` slot, so nesting of any depth runs with two slots.
extension MasterScheduler {
    /// A SUB_PROCESS attempt this master waits for: its child instance.
    struct ChildWait: Sendable {
        var ref: AttemptRef
        var child: Int64
    }

    /// Instances that hold a slot: those with something running that is not a child's wait, and
    /// those claimed whose first round is still to be stored.
    var busyInstanceCount: Int {
        runtimes.values.filter { $0.instance.engine.activeTaskCount > $0.masterWaits || $0.instance.engine.activeTaskCount == 0 }.count
            + unresumed.count
    }

    /// Ends the SUB_PROCESS attempts whose child has ended, as the child did: SUCCESS succeeds,
    /// STOP is a kill, PAUSE a withdrawal (the node runs again on resume), anything else fails.
    func processChildren() async throws {
        var waits: [Int64: (attempt: Int64, wait: ChildWait)] = [:]  // by child
        for runtime in runtimes.values {
            for (id, wait) in runtime.childWaits { waits[wait.child] = (id, wait) }
        }
        guard !waits.isEmpty else { return }
        let ended = try await store.endedChildren(Array(waits.keys))
        guard !ended.isEmpty else { return }
        var round = Round()
        let now = ProcessStats.now()
        for child in ended {
            guard let (id, wait) = waits[child.id], checkout(wait.ref.instance, &round),
                  round.runtimes[wait.ref.instance]!.childWaits.removeValue(forKey: id) != nil else { continue }
            let (state, outcome): (TaskState, TaskOutcome) = switch child.state {
            case .success: (.success, .success)
            case .stop: (.kill, .killed)
            case .pause: (.pause, .withdrawn)
            default: (.failure, .failure)
            }
            let message = "child instance \(child.id) ended \(child.state.rawValue)" + (child.message.map { ": \($0)" } ?? "")
            round.batch.outcomes.append(AttemptOutcome(
                taskInstanceId: id, workflowInstanceId: wait.ref.instance, state: state, host: nil, pid: nil, logPath: nil,
                exitCode: nil, outputJson: nil, message: message, startTime: nil, endTime: child.end ?? now))
            logger.info("instance \(wait.ref.instance): SUB_PROCESS '\(wait.ref.task)': \(message)")
            apply(round.runtimes[wait.ref.instance]!.instance.engine.handle(.taskFinished(task: wait.ref.task, outcome: outcome)),
                  to: wait.ref.instance, &round)
        }
        try await commit(&round)
    }

    /// Carries a pause or stop of a parent to its children: a STOP or PAUSE command for each, which
    /// their masters apply; each child's end then ends its node's attempt (processChildren).
    func haltChildren(_ halts: [(child: Int64, stop: Bool)]) async throws {
        for h in halts {
            do {
                _ = try await store.control(h.child, h.stop ? .stop : .pause, now: ProcessStats.now())
            } catch is ControlRefusal {
                // Ended already, or halting already: its end reaches the parent as usual.
            }
        }
        if !halts.isEmpty { try await signalMasters() }
    }

    /// Wakes every master's command pass: a child to claim, a child's end for its parent.
    func signalMasters() async throws { try await Submitter.notifyMasters(zk, paths, commandID: 0) }
}

extension ActiveInstance {
    /// The child a SUB_PROCESS node starts: its workflow and the node's parameters, resolved with
    /// what the node sees (the instance's parameters and the outputs of the tasks upstream).
    mutating func childRequest(_ taskName: String) -> ChildRequest {
        let i = engine.graph.index[taskName]!
        let task = definition.tasks[i]
        var request = ChildRequest(workflow: task.workflow ?? "", version: task.version, params: [:])
        if let parameterProblem {
            request.problem = parameterProblem
            return request
        }
        let values = values(seenBy: i)
        do {
            for (k, v) in task.params ?? [:] {
                request.params[k] = try resolver.substitute(v, values, limit: Limits.maxValueBytes, what: "parameter \(k)")
            }
        } catch {
            request.problem = "its params cannot be resolved: \(error)"
        }
        return request
    }
}
