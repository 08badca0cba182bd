/// What happened to a workflow instance: the only input of the engine.
public enum EngineEvent: Sendable, Equatable {
    case start
    /// An attempt of a task ended.
    case taskFinished(task: String, outcome: TaskOutcome)
    /// A branch node (CONDITIONS, SWITCH) was decided: the tasks of `branch` run, the node's other
    /// downstream tasks are not taken. A node that cannot be decided ends `.taskFinished(.failure)`.
    case decided(task: String, branch: [String])
    /// The retry interval of a failed task, or the delay of a ready one, has passed.
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
    /// Decide the branch node now, on the master, and send back `.decided` (or, if it cannot be
    /// decided, `.taskFinished(.failure)`).
    case decide(task: String)
    /// Send `.retryDue(task)` after `seconds`.
    case scheduleRetry(task: String, attempt: Int, seconds: Double)
    /// The task is ready and has a delay: send `.retryDue(task)` after `seconds` to start it.
    case scheduleDelay(task: String, seconds: Double)
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
    case waiting, running(attempt: Int), retrying(attempt: Int), succeeded, failed
    /// Ready, waiting out its `delay` before its first attempt.
    case delayed
    /// Will not run: a task it needs failed (or was itself skipped).
    case skipped
    /// On a branch its CONDITIONS or SWITCH node did not take (or every task it needs was).
    case notTaken
    /// `"enabled": false`: never runs; its downstream runs as if it had succeeded.
    case disabled
    /// Cut short by a pause or a stop (killed, withdrawn, or a retry that never came): it runs
    /// again when the instance is resumed.
    case cancelled
    var isActive: Bool {
        switch self { case .running, .retrying, .delayed: return true; default: return false }
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
    public let delays: [Double]
    public private(set) var progress: [TaskProgress]
    public private(set) var state: WorkflowState = .submitted
    /// CONDITIONS and SWITCH nodes, decided on the master; CONDITIONS nodes also run after a failure.
    private let isBranch: [Bool]
    private let isConditions: [Bool]
    private let isEnabled: [Bool]
    /// A failure of a task whose every downstream task is a CONDITIONS node is handled there: it
    /// fails neither the instance nor, under END, what else runs. A task with other downstream
    /// tasks too leaves them skipped, and its failure counts; so does one whose CONDITIONS node is
    /// then not taken (a branch above it went elsewhere).
    private let failureHandled: [Bool]
    /// Successes an earlier run hands on: such a task does not run again; it succeeds when it would
    /// have started (at once, unless a branch node above it decides again, which may not take it).
    private var isKept: [Bool]
    /// Tasks a decided branch node did not choose: not taken, whatever their other upstream did.
    private var vetoed: [Bool]
    private var pendingUpstream: [Int]
    /// Per task, how many of its upstream tasks succeeded (or are disabled, or chose it on their
    /// branch), and how many failed or were skipped: a task runs once none is pending, if any
    /// let it through; one whose every upstream was not taken is not taken either.
    private var goodUpstream: [Int]
    private var badUpstream: [Int]
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
        delays = definition.tasks.map { $0.delay ?? 0 }
        isBranch = definition.tasks.map(\.isBranchNode)
        isConditions = definition.tasks.map { $0.type == .conditions }
        isEnabled = definition.tasks.map(\.isEnabled)
        failureHandled = graph.downstream.map { !$0.isEmpty && $0.allSatisfy { definition.tasks[$0].type == .conditions } }
        progress = Array(repeating: .waiting, count: graph.count)
        pendingUpstream = graph.upstream.map(\.count)
        goodUpstream = Array(repeating: 0, count: graph.count)
        badUpstream = Array(repeating: 0, count: graph.count)
        openCount = graph.count
        vetoed = Array(repeating: false, count: graph.count)
        // A branch node is decided again in every run: what it reads may have changed.
        isKept = Array(repeating: false, count: graph.count)
        for name in kept { if let i = graph.index[name], !isBranch[i] { isKept[i] = true } }
    }

    public func progress(of task: String) -> TaskProgress? { graph.index[task].map { progress[$0] } }

    public mutating func handle(_ event: EngineEvent) -> [EngineEffect] {
        guard !state.isTerminal else { return [] }
        var effects: [EngineEffect] = []
        switch event {
        case .start:
            guard state == .submitted else { return [] }
            state = .running
            for i in 0..<graph.count where pendingUpstream[i] == 0 && progress[i] == .waiting { ready(i, &effects) }
        case .decided(let name, let branch):
            guard let i = graph.index[name], isBranch[i], case .running = progress[i] else { return [] }
            activeCount -= 1
            settle(i, .succeeded, branch: Set(branch.compactMap { graph.index[$0] }), &effects)
        case .taskFinished(let name, let outcome):
            guard let i = graph.index[name], case .running(let attempt) = progress[i] else { return [] }
            // A branch node succeeds only by a decision, which names its branch.
            if isBranch[i] && outcome == .success { return [] }
            activeCount -= 1
            if outcome == .success {
                settle(i, .succeeded, branch: nil, &effects)
            } else if isHalting && (outcome != .failure || attempt <= retries[i]) {
                // Cut short by the pause or stop, or a failure that would have been retried: the
                // task runs again on resume, and it fails nothing now.
                progress[i] = .cancelled
            } else if outcome == .failure && attempt <= retries[i] && mayStartNew {
                progress[i] = .retrying(attempt: attempt + 1)
                activeCount += 1
                effects.append(.scheduleRetry(task: name, attempt: attempt + 1, seconds: retryIntervals[i]))
            } else {
                settle(i, .failed, branch: nil, &effects)
                if !mayStartNew { refusePendingRetries(&effects) }
            }
        case .retryDue(let name):
            guard let i = graph.index[name] else { return [] }
            if progress[i] == .delayed {
                activeCount -= 1
                // Under END after a failure it does not start: it waits, as every task not started.
                if mayStartNew { dispatch(i, attempt: 1, &effects, delayed: true) } else { progress[i] = .waiting }
                break
            }
            guard case .retrying(let attempt) = progress[i] else { return [] }
            activeCount -= 1
            if mayStartNew {
                dispatch(i, attempt: attempt, &effects)
            } else {
                settle(i, .failed, branch: nil, &effects)
            }
        case .pause, .stop:
            guard state == .running || (state == .readyPause && event == .stop) else { return [] }
            state = event == .stop ? .readyStop : .readyPause
            for i in 0..<graph.count {
                switch progress[i] {
                case .running(let attempt):
                    effects.append(event == .stop ? .kill(task: graph.names[i], attempt: attempt)
                                                  : .withdraw(task: graph.names[i], attempt: attempt))
                case .retrying, .delayed:
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
    private mutating func refusePendingRetries(_ effects: inout [EngineEffect]) {
        for i in 0..<graph.count {
            if progress[i] == .delayed {
                // Not started, so not failed: it waits, as every task END keeps from starting.
                progress[i] = .waiting
                activeCount -= 1
                continue
            }
            guard case .retrying = progress[i] else { continue }
            activeCount -= 1
            settle(i, .failed, branch: nil, &effects)
        }
    }

    /// A pause or a stop is under way.
    private var isHalting: Bool { state == .readyPause || state == .readyStop }

    /// END stops starting tasks after the first failure; CONTINUE never does; a pause or a stop always does.
    private var mayStartNew: Bool { !isHalting && !(anyFailed && failureStrategy == .end) }

    /// Tasks running, retrying or waiting out a delay.
    public var activeTaskCount: Int { activeCount }

    /// Whether a task may still start (false once END has seen a failure, or a pause or stop came).
    public var acceptsNewTasks: Bool { mayStartNew }

    private mutating func dispatch(_ i: Int, attempt: Int, _ effects: inout [EngineEffect], delayed: Bool = false) {
        activeCount += 1
        if attempt == 1 && !delayed && delays[i] > 0 {
            progress[i] = .delayed
            effects.append(.scheduleDelay(task: graph.names[i], seconds: delays[i]))
            return
        }
        progress[i] = .running(attempt: attempt)
        effects.append(isBranch[i] ? .decide(task: graph.names[i]) : .dispatch(task: graph.names[i], attempt: attempt))
    }

    /// A task none of whose upstream tasks is pending any more: starts it (as far as new tasks may
    /// start), or ends it without running if it is disabled or every task it needs was not taken.
    private mutating func ready(_ i: Int, _ effects: inout [EngineEffect]) {
        if let fate = fateWhenReady(i) { settle(i, fate, branch: nil, &effects) } else if isKept[i] { settle(i, .succeeded, branch: nil, &effects) }
        else if mayStartNew { dispatch(i, attempt: 1, &effects) }
    }

    private func fateWhenReady(_ i: Int) -> TaskProgress? {
        if !graph.upstream[i].isEmpty && goodUpstream[i] == 0 && badUpstream[i] == 0 { return .notTaken }
        return isEnabled[i] ? nil : .disabled
    }

    /// Task `first` has ended as `result` (succeeded, failed, skipped, not taken, disabled): passes
    /// that on to its downstream tasks, and theirs in turn, without recursion (a 10,000-task chain
    /// of disabled tasks settles in one call). `branch`: the downstream tasks a decided branch
    /// node chose; the others are not taken.
    private mutating func settle(_ first: Int, _ result: TaskProgress, branch: Set<Int>?, _ effects: inout [EngineEffect]) {
        var work: [(task: Int, branch: Set<Int>?)] = []
        func end(_ i: Int, _ result: TaskProgress, _ branch: Set<Int>?) {
            progress[i] = result
            openCount -= 1
            // A CONDITIONS node that is not taken handles nothing: the failures it was to handle
            // count, whichever of the two ended first.
            if result == .failed && (!failureHandled[i] || graph.downstream[i].contains { progress[$0] == .notTaken }) { anyFailed = true }
            if result == .notTaken && isConditions[i] && graph.upstream[i].contains(where: { progress[$0] == .failed }) { anyFailed = true }
            work.append((i, branch))
        }
        end(first, result, branch)
        while let (i, branch) = work.popLast() {
            let result = progress[i]
            for d in graph.downstream[i] {
                pendingUpstream[d] -= 1
                switch result {
                case .succeeded where branch?.contains(d) ?? true, .disabled: goodUpstream[d] += 1
                case .succeeded: vetoed[d] = true
                case .failed, .skipped: badUpstream[d] += 1
                default: break
                }
                guard progress[d] == .waiting else { continue }
                if vetoed[d] {
                    end(d, .notTaken, nil)
                } else if badUpstream[d] > 0 && !isConditions[d] {
                    end(d, .skipped, nil)
                } else if pendingUpstream[d] == 0 {
                    if let fate = fateWhenReady(d) { end(d, fate, nil) } else if isKept[d] { end(d, .succeeded, nil) }
                    else if mayStartNew { dispatch(d, attempt: 1, &effects) }
                }
            }
        }
    }
}
