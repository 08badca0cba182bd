/// One stored attempt, as the engine needs it to replay history.
public struct StoredAttempt: Sendable, Equatable {
    public var task: String
    public var attempt: Int
    public var state: TaskState
    public var endTime: Double?

    public init(task: String, attempt: Int, state: TaskState, endTime: Double?) {
        self.task = task
        self.attempt = attempt
        self.state = state
        self.endTime = endTime
    }
}

/// An engine rebuilt from stored attempts, and what is left to do to carry on.
public struct RestoredRun: Sendable {
    public var engine: WorkflowEngine
    /// Indexes (into the attempts given) of attempts still DISPATCHED or RUNNING: reattach to them.
    public var inFlight: [Int]
    /// Attempts the engine has started that have no row: dispatch them now.
    public var missingDispatches: [(task: String, attempt: Int)]
    /// Retries waiting out their interval: due at `at`.
    public var pendingRetries: [(task: String, attempt: Int, at: Double)]
    /// Effects the replay produced that were never carried out (a finish after the last result).
    public var finish: WorkflowState?
}

extension WorkflowEngine {
    /// Replays stored attempts (in creation order) through a fresh engine. Pure.
    ///
    /// Creation order is causal: a task's attempt is created only after its upstream attempts
    /// succeeded, and a retry after the failed attempt; superseded (NEED_FAULT_TOLERANCE)
    /// attempts are skipped because their replacement carries the same attempt number.
    public static func restore(definition: WorkflowDefinition, attempts: [StoredAttempt]) -> RestoredRun {
        var engine = WorkflowEngine(definition: definition)
        var finish: WorkflowState?
        var retryAttempt: [String: Int] = [:]
        func absorb(_ effects: [EngineEffect]) {
            for e in effects {
                switch e {
                case .scheduleRetry(let task, let attempt, _): retryAttempt[task] = attempt
                case .finish(let state): finish = state
                case .dispatch: break
                }
            }
        }
        absorb(engine.handle(.start))
        var inFlight: [Int] = []
        var lastEnd: [String: Double] = [:]
        for (i, a) in attempts.enumerated() where a.state != .needFaultTolerance {
            if retryAttempt[a.task] == a.attempt {
                retryAttempt.removeValue(forKey: a.task)
                absorb(engine.handle(.retryDue(task: a.task)))
            }
            switch a.state {
            case .success, .forcedSuccess:
                absorb(engine.handle(.taskFinished(task: a.task, outcome: .success)))
            case .failure:
                absorb(engine.handle(.taskFinished(task: a.task, outcome: .failure)))
            case .kill:
                absorb(engine.handle(.taskFinished(task: a.task, outcome: .killed)))
            default:
                inFlight.append(i)
            }
            if let end = a.endTime { lastEnd[a.task] = end }
        }
        var missing: [(String, Int)] = []
        var retries: [(String, Int, Double)] = []
        let live = Set(inFlight.map { "\(attempts[$0].task)#\(attempts[$0].attempt)" })
        for (i, name) in engine.graph.names.enumerated() {
            switch engine.progress[i] {
            case .running(let attempt) where !live.contains("\(name)#\(attempt)"):
                missing.append((name, attempt))
            case .retrying(let attempt):
                retries.append((name, attempt, (lastEnd[name] ?? 0) + engine.retryIntervals[i]))
            default: break
            }
        }
        return RestoredRun(engine: engine, inFlight: inFlight, missingDispatches: missing, pendingRetries: retries,
                           finish: finish)
    }
}
