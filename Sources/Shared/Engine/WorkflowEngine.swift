/// What happened to a workflow instance: the only input of the engine.
public enum EngineEvent: Sendable, Equatable {
    case start
    /// An attempt of a task ended.
    case taskFinished(task: String, outcome: TaskOutcome)
    /// The retry interval of a failed task has passed.
    case retryDue(task: String)
    /// `ds-instance pause`: running tasks finish, nothing new starts; the instance ends PAUSE.
    case pause
    /// `ds-instance stop`: running tasks are killed, nothing new starts; the instance ends STOP.
    case stop
}

/// How one attempt of a task ended.
public enum TaskOutcome: String, Sendable, Equatable, Codable {
    case success, failure, killed
    /// Taken back out of the queue before any worker started it (a pause or a stop).
    case withdrawn
}

/// What the engine wants done: the only output of the engine.
public enum EngineEffect: Sendable, Equatable {
    /// Run attempt `attempt` (1-based) of the task now.
    case dispatch(task: String, attempt: Int)
    /// Send `.retryDue(task)` after `seconds`.
    case scheduleRetry(task: String, attempt: Int, seconds: Double)
    /// Kill the attempt's whole process group (a stop); its end comes back as a result.
    case kill(task: String, attempt: Int)
    /// Take the attempt back out of the queue if no worker has started it yet (a pause); a
    /// started one runs on. Either way its end comes back as a result.
    case withdraw(task: String, attempt: Int)
    /// The instance is over.
    case finish(WorkflowState)
}

/// The progress of one task inside the engine.
public enum TaskProgress: Sendable, Equatable {
    case waiting, running(attempt: Int), retrying(attempt: Int), succeeded, failed, skipped
    /// Cut short by a pause or a stop (killed, withdrawn, or a retry that never came): it runs
    /// again when the instance is resumed.
    case cancelled
    var isActive: Bool {
        switch self { case .running, .retrying: return true; default: return false }
    }
}

/// A workflow instance as a pure state machine: `handle(event) -> effects`. No I/O, no clock.
///
/// Scheduling is linear in the size of the DAG: each task keeps a count of unfinished upstream
/// tasks, and each result touches only the finished task's downstream edges.
public struct WorkflowEngine: Sendable {
    public let graph: TaskGraph
    public let failureStrategy: FailureStrategy
    public let retries: [Int]
    public let retryIntervals: [Double]
    public private(set) var progress: [TaskProgress]
    public private(set) var state: WorkflowState = .submitted
    private var pendingUpstream: [Int]
    private var activeCount = 0
    private var openCount: Int
    private var anyFailed = false

    /// `kept`: tasks whose success an earlier run of the instance keeps (resume, recover,
    /// start-from): they count as succeeded from the start and never run.
    public init(definition: WorkflowDefinition, kept: Set<String> = []) {
        graph = TaskGraph(definition.tasks)
        failureStrategy = definition.failureStrategy
        retries = definition.tasks.map(\.retries)
        retryIntervals = definition.tasks.map(\.retryInterval)
        progress = Array(repeating: .waiting, count: graph.count)
        pendingUpstream = graph.upstream.map(\.count)
        openCount = graph.count
        for name in kept {
            guard let i = graph.index[name], progress[i] == .waiting else { continue }
            progress[i] = .succeeded
            openCount -= 1
            for d in graph.downstream[i] { pendingUpstream[d] -= 1 }
        }
    }

    public func progress(of task: String) -> TaskProgress? { graph.index[task].map { progress[$0] } }

    public mutating func handle(_ event: EngineEvent) -> [EngineEffect] {
        guard !state.isTerminal else { return [] }
        var effects: [EngineEffect] = []
        switch event {
        case .start:
            guard state == .submitted else { return [] }
            state = .running
            for i in 0..<graph.count where pendingUpstream[i] == 0 && progress[i] == .waiting { dispatch(i, attempt: 1, &effects) }
        case .taskFinished(let name, let outcome):
            guard let i = graph.index[name], case .running(let attempt) = progress[i] else { return [] }
            activeCount -= 1
            if outcome == .success {
                progress[i] = .succeeded
                openCount -= 1
                for d in graph.downstream[i] {
                    pendingUpstream[d] -= 1
                    if pendingUpstream[d] == 0 && progress[d] == .waiting && mayStartNew { dispatch(d, attempt: 1, &effects) }
                }
            } else if isHalting && (outcome != .failure || attempt <= retries[i]) {
                // Cut short by the pause or stop, or a failure that would have been retried: the
                // task runs again on resume, and it fails nothing now.
                progress[i] = .cancelled
            } else if outcome == .failure && attempt <= retries[i] && mayStartNew {
                progress[i] = .retrying(attempt: attempt + 1)
                activeCount += 1
                effects.append(.scheduleRetry(task: name, attempt: attempt + 1, seconds: retryIntervals[i]))
            } else {
                progress[i] = .failed
                openCount -= 1
                anyFailed = true
                skipDownstream(of: i)
                if !mayStartNew { refusePendingRetries() }
            }
        case .retryDue(let name):
            guard let i = graph.index[name], case .retrying(let attempt) = progress[i] else { return [] }
            activeCount -= 1
            if mayStartNew {
                dispatch(i, attempt: attempt, &effects)
            } else {
                progress[i] = .failed
                openCount -= 1
                anyFailed = true
            }
        case .pause, .stop:
            guard state == .running || (state == .readyPause && event == .stop) else { return [] }
            state = event == .stop ? .readyStop : .readyPause
            for i in 0..<graph.count {
                switch progress[i] {
                case .running(let attempt):
                    effects.append(event == .stop ? .kill(task: graph.names[i], attempt: attempt)
                                                  : .withdraw(task: graph.names[i], attempt: attempt))
                case .retrying:
                    progress[i] = .cancelled
                    activeCount -= 1
                default: break
                }
            }
        }
        if activeCount == 0 {
            if state == .readyStop {
                state = .stop
                effects.append(.finish(state))
            } else if openCount == 0 || (state == .running && !mayStartNew) {
                state = anyFailed ? .failure : .success
                effects.append(.finish(state))
            } else if state == .readyPause {
                state = .pause
                effects.append(.finish(state))
            }
        }
        return effects
    }

    /// Once END has seen a failure, a retry still waiting out its interval would be refused when it
    /// came due: it fails now. The instance then ends without waiting for timers, and its state
    /// never depends on whether a timer fired before a later event (a pause, say), which no
    /// stored row records.
    private mutating func refusePendingRetries() {
        for i in 0..<graph.count {
            guard case .retrying = progress[i] else { continue }
            progress[i] = .failed
            activeCount -= 1
            openCount -= 1
            skipDownstream(of: i)
        }
    }

    /// A pause or a stop is under way.
    private var isHalting: Bool { state == .readyPause || state == .readyStop }

    /// END stops starting tasks after the first failure; CONTINUE never does; a pause or a stop always does.
    private var mayStartNew: Bool { !isHalting && !(anyFailed && failureStrategy == .end) }

    /// Whether a task may still start (false once END has seen a failure, or a pause or stop came).
    public var acceptsNewTasks: Bool { mayStartNew }

    private mutating func dispatch(_ i: Int, attempt: Int, _ effects: inout [EngineEffect]) {
        progress[i] = .running(attempt: attempt)
        activeCount += 1
        effects.append(.dispatch(task: graph.names[i], attempt: attempt))
    }

    /// Marks every task that (transitively) needs task `i` as never to run.
    private mutating func skipDownstream(of i: Int) {
        var stack = graph.downstream[i]
        while let d = stack.popLast() {
            guard progress[d] == .waiting else { continue }
            progress[d] = .skipped
            openCount -= 1
            stack.append(contentsOf: graph.downstream[d])
        }
    }
}
