import Foundation

/// A workflow instance a master is running: the pure engine plus what dispatch needs.
struct ActiveInstance: Sendable {
    var record: WorkflowInstanceRecord
    let definition: WorkflowDefinition
    var engine: WorkflowEngine
    /// Built-ins, workflow params and overrides, resolved at start.
    let parameters: [String: String]
    /// Why the parameters could not be resolved (only input stored past ds-submit's checks):
    /// every task of the instance then fails with it, and the master goes on.
    let parameterProblem: String?
    /// The run time and stored zone the built-ins and DEPENDENT windows are read in; nil when
    /// this host does not know the zone (`parameterProblem` says so).
    let clock: InstanceClock?
    let resolver: ParameterResolver
    /// What succeeded tasks printed, and what each task sees of it: a function of stored state.
    var outputs = OutputVisibility()

    /// Parameters resolve from the stored overrides and start time, so a master taking over
    /// resolves them exactly as the first one did.
    init(_ claimed: ClaimedInstance) {
        let record = claimed.instance
        let definition = claimed.definition
        self.record = record
        self.definition = definition
        engine = WorkflowEngine(definition: definition, kept: Set(record.kept.keys))
        // The instance's stored zone, never this master's: a zone this host does not know fails
        // every task with the reason, and the resolver below is never used.
        var clockProblem: String?
        do {
            clock = try record.clock(now: ProcessStats.now())
        } catch {
            clock = nil
            clockProblem = "the instance's \(error)"
        }
        resolver = clock?.resolver ?? ParameterResolver(runTime: Date(timeIntervalSince1970: 0), timeZone: TimeZone(identifier: "UTC")!)
        do {
            if let clockProblem { throw PreparationError(clockProblem) }
            let overrides = try JSONDecoder().decode([String: String].self, from: Data(record.paramsJson.utf8))
            parameters = try resolver.instanceParameters(workflow: definition.params, overrides: overrides)
            parameterProblem = nil
        } catch let problem as PreparationError {
            parameters = [:]
            parameterProblem = problem.description
        } catch {
            parameters = [:]
            parameterProblem = "the instance's parameters cannot be used: \(error)"
        }
        // What the successes an earlier run hands on printed stays visible downstream.
        for a in claimed.keptAttempts { recordStoredOutputs(a) }
    }

    /// The outputs a stored, succeeded attempt printed.
    mutating func recordStoredOutputs(_ attempt: TaskInstanceRecord) {
        guard attempt.state == .success || attempt.state == .forcedSuccess, let json = attempt.outputJson,
              let outputs = try? JSONDecoder().decode([String: String].self, from: Data(json.utf8)) else { return }
        recordOutputs(of: attempt.taskName, outputs)
    }

    /// A pause or a stop is under way: nothing new may go to a worker.
    var isHalting: Bool { engine.state == .readyPause || engine.state == .readyStop }

    var id: Int64 { record.id! }

    /// A task of the definition by name, through the engine's index (no second table of tasks).
    func task(_ name: String) -> TaskDefinition { definition.tasks[engine.graph.index[name]!] }

    /// Records the outputs of a task's succeeded attempt.
    mutating func recordOutputs(of taskName: String, _ printed: [String: String]) {
        if let i = engine.graph.index[taskName] { outputs.record(i, printed: printed) }
    }

    /// The parameters task `i` sees: the instance's, then what the tasks upstream printed.
    mutating func values(seenBy i: Int) -> [String: String] {
        var values = parameters
        values.merge(outputs.visible(to: i, in: engine.graph)) { _, new in new }
        return values
    }

    /// What a task's queue item needs: its definition, command and environment, with the outputs
    /// of the tasks upstream visible.
    struct Prepared {
        var task: TaskDefinition
        var command: String
        var env: [String: String]
    }

    /// The command and environment of a task, or why it cannot run (a bound of `Limits` that only
    /// resolution shows: a command whose parameters make it too long, say). Such a task fails
    /// with the reason stored; the master never writes what ZooKeeper or a worker would refuse.
    mutating func prepare(_ taskName: String) -> Result<Prepared, PreparationError> {
        let i = engine.graph.index[taskName]!
        let task = definition.tasks[i]
        if let parameterProblem { return .failure(PreparationError(parameterProblem)) }
        if let problem = Limits.groupNameProblem(task.workerGroup) {
            return .failure(PreparationError("worker group \(Limits.quoted(task.workerGroup)) \(problem)"))
        }
        let values = values(seenBy: i)
        do {
            let (command, env) = try resolver.resolve(task, values)
            return .success(Prepared(task: task, command: command, env: env))
        } catch {
            return .failure(PreparationError("\(error)"))
        }
    }
}

/// Why a master could not build a task's queue item; stored as the attempt's message.
struct PreparationError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension ActiveInstance {
    /// A decided branch node: the tasks its branch chose, and what to show for it.
    struct Decision {
        var branch: [String]
        var message: String
    }

    /// Decides a CONDITIONS or SWITCH node from what the instance holds now: the outcomes of its
    /// upstream tasks, or the parameters it sees. Pure; the decision is stored, never made twice.
    mutating func decide(_ taskName: String) -> Result<Decision, PreparationError> {
        let i = engine.graph.index[taskName]!
        let task = definition.tasks[i]
        func names(_ list: [String]) -> String { list.isEmpty ? "no task" : list.map { Limits.quoted($0) }.joined(separator: ", ") }
        if task.type == .conditions {
            // No condition: every dep that was taken succeeded (one on a branch not taken is no failure).
            let taken = task.deps.filter { engine.progress(of: $0) != .notTaken }
            let condition = task.condition ?? BranchCondition(tasks: Dictionary(uniqueKeysWithValues: taken.map { ($0, .success) }))
            let held = condition.holds { engine.progress(of: $0) ?? .waiting }
            let branch = held ? task.successBranch ?? [] : task.failureBranch ?? []
            return .success(Decision(branch: branch, message: "condition \(held ? "held: success" : "did not hold: failure") branch, \(names(branch))"))
        }
        if let parameterProblem { return .failure(PreparationError(parameterProblem)) }
        let values = values(seenBy: i)
        for (n, c) in (task.cases ?? []).enumerated() {
            do {
                if try SwitchExpression.parse(c.when).evaluate(values) {
                    return .success(Decision(branch: c.then, message: "case \(n) held (\(c.when)): \(names(c.then))"))
                }
            } catch {
                return .failure(PreparationError("case \(n) (\(c.when)) cannot be decided: \(error)"))
            }
        }
        let branch = task.defaultBranch ?? []
        return .success(Decision(branch: branch, message: "no case held: default branch, \(names(branch))"))
    }
}
