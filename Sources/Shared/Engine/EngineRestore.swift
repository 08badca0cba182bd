/// One stored attempt, as the engine needs it to replay history.
public struct StoredAttempt: Sendable, Equatable {
    public var task: String
    public var attempt: Int
    public var state: TaskState
    public var endTime: Double?
    /// Where the attempt's dispatch and its stored outcome stand in the global event order.
    public var dispatchSeq: Int64
    public var finishSeq: Int64?
    /// A decided branch node: the tasks its decision chose.
    public var branch: [String]?

    public init(task: String, attempt: Int, state: TaskState, endTime: Double?, dispatchSeq: Int64, finishSeq: Int64?,
                branch: [String]? = nil) {
        self.branch = branch
        self.task = task
        self.attempt = attempt
        self.state = state
        self.endTime = endTime
        self.dispatchSeq = dispatchSeq
        self.finishSeq = finishSeq
    }
}

/// An engine rebuilt from stored attempts, and what is left to do to carry on.
public struct RestoredRun: Sendable {
    public var engine: WorkflowEngine
    /// Indexes (into the attempts given) of attempts still DISPATCHED or RUNNING: reattach to them.
    public var inFlight: [Int]
    /// Attempts the engine has started that have no row: dispatch them now (a branch node: decide it).
    public var missingDispatches: [(task: String, attempt: Int)]
    /// Retries waiting out their interval, and delayed tasks waiting out their delay (attempt 1): due at `at`.
    public var pendingRetries: [(task: String, attempt: Int, at: Double)]
    /// Effects the replay produced that were never carried out (a finish after the last result).
    public var finish: WorkflowState?
}

extension WorkflowEngine {
    /// Replays stored attempts through a fresh engine, in the global event order the store
    /// recorded (dispatches and outcomes share one sequence), so that the engine sees results
    /// in the order the first master did: under END the order decides what may still start.
    /// Superseded (NEED_FAULT_TOLERANCE) attempts are skipped: their replacement carries the
    /// same attempt number. Pure.
    ///
    /// `kept` are the successes an earlier run carried into this one; `attempts` are this run's.
    /// `controls` are the pauses and stops the owning master applied, at their place in the same
    /// order; one requested but not applied yet has no place (`nil`) and comes after everything.
    ///
    /// `runStart`: when the run started; with the end times of the attempts replayed, it dates the
    /// moment each delayed task became ready.
    public static func restore(definition: WorkflowDefinition, kept: Set<String> = [], attempts: [StoredAttempt],
                               controls: [(event: EngineEvent, seq: Int64?)] = [], runStart: Double = 0) -> RestoredRun {
        var engine = WorkflowEngine(definition: definition, kept: kept)
        var finish: WorkflowState?
        var retryAttempt: [String: Int] = [:]
        var clock = runStart
        var readyAt: [String: Double] = [:]
        func absorb(_ effects: [EngineEffect]) {
            for e in effects {
                switch e {
                case .scheduleRetry(let task, let attempt, _): retryAttempt[task] = attempt
                case .scheduleDelay(let task, _):
                    retryAttempt[task] = 1
                    readyAt[task] = clock
                case .finish(let state): finish = state
                case .dispatch, .decide, .kill, .withdraw: break
                }
            }
        }
        absorb(engine.handle(.start))
        var inFlight: [Int] = []
        var lastEnd: [String: Double] = [:]
        // Each live attempt contributes its dispatch event and, once stored, its outcome event.
        // Controls carry index -1 - k (k their position in `controls`).
        var events: [(seq: Int64, index: Int, isFinish: Bool)] = []
        for (k, c) in controls.enumerated() { events.append((c.seq ?? Int64.max, -1 - k, false)) }
        for (i, a) in attempts.enumerated() {
            // A superseded attempt's dispatch still marks when its retry came due.
            events.append((a.dispatchSeq, i, false))
            if a.state == .needFaultTolerance { continue }
            if let f = a.finishSeq, a.state.isTerminal { events.append((f, i, true)) } else { inFlight.append(i) }
        }
        func order(_ e: (seq: Int64, index: Int, isFinish: Bool)) -> (Int64, Int, Int) {
            (e.seq, e.isFinish ? 1 : 0, e.index < 0 ? -1 - e.index : e.index)
        }
        events.sort { order($0) < order($1) }
        for event in events {
            if event.index < 0 {
                absorb(engine.handle(controls[-1 - event.index].event))
                continue
            }
            let a = attempts[event.index]
            if event.isFinish, let end = a.endTime { clock = end }
            if !event.isFinish {
                // A later attempt's dispatch is the moment its retry came due.
                if retryAttempt[a.task] == a.attempt {
                    retryAttempt.removeValue(forKey: a.task)
                    absorb(engine.handle(.retryDue(task: a.task)))
                }
                continue
            }
            switch a.state {
            case .success, .forcedSuccess:
                if let i = engine.graph.index[a.task], definition.tasks[i].isBranchNode {
                    absorb(engine.handle(.decided(task: a.task, branch: a.branch ?? [])))
                } else {
                    absorb(engine.handle(.taskFinished(task: a.task, outcome: .success)))
                }
            case .kill:
                absorb(engine.handle(.taskFinished(task: a.task, outcome: .killed)))
            case .pause:
                absorb(engine.handle(.taskFinished(task: a.task, outcome: .withdrawn)))
            default:
                absorb(engine.handle(.taskFinished(task: a.task, outcome: .failure)))
            }
            if let end = a.endTime { lastEnd[a.task] = end }
        }
        // A retry that comes due once END has stopped new work is refused, leaving no row behind:
        // carry those out now rather than wait for their timers.
        for (i, name) in engine.graph.names.enumerated() where !engine.acceptsNewTasks {
            if case .retrying = engine.progress[i] { absorb(engine.handle(.retryDue(task: name))) }
            if engine.progress[i] == .delayed { absorb(engine.handle(.retryDue(task: name))) }
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
            case .delayed:
                retries.append((name, 1, (readyAt[name] ?? runStart) + engine.delays[i]))
            default: break
            }
        }
        return RestoredRun(engine: engine, inFlight: inFlight, missingDispatches: missing, pendingRetries: retries,
                           finish: finish)
    }
}
