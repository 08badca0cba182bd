import Foundation

/// A workflow instance a master is running: the pure engine plus what dispatch needs.
struct ActiveInstance: Sendable {
    var record: WorkflowInstanceRecord
    let definition: WorkflowDefinition
    var engine: WorkflowEngine
    /// Built-ins, workflow params and overrides, resolved at start.
    let parameters: [String: String]
    let resolver: ParameterResolver
    /// What succeeded tasks printed, and what each task sees of it: a function of stored state.
    var outputs = OutputVisibility()

    /// Parameters resolve from the stored overrides and start time, so a master taking over
    /// resolves them exactly as the first one did.
    init(_ claimed: ClaimedInstance) {
        let record = claimed.instance
        let definition = claimed.definition
        let overrides = (try? JSONDecoder().decode([String: String].self, from: Data(record.paramsJson.utf8))) ?? [:]
        let runTime = Date(timeIntervalSince1970: record.startTime ?? ProcessStats.now())
        self.record = record
        self.definition = definition
        engine = WorkflowEngine(definition: definition)
        resolver = ParameterResolver(runTime: runTime)
        parameters = resolver.instanceParameters(workflow: definition.params, overrides: overrides)
    }

    var id: Int64 { record.id! }

    /// A task of the definition by name, through the engine's index (no second table of tasks).
    func task(_ name: String) -> TaskDefinition { definition.tasks[engine.graph.index[name]!] }

    /// Records the outputs of a task's succeeded attempt.
    mutating func recordOutputs(of taskName: String, _ printed: [String: String]) {
        if let i = engine.graph.index[taskName] { outputs.record(i, printed: printed) }
    }

    /// The command and environment of a task, with the outputs of the tasks upstream visible.
    mutating func prepare(_ taskName: String) -> (task: TaskDefinition, command: String, env: [String: String]) {
        let i = engine.graph.index[taskName]!
        let task = definition.tasks[i]
        var values = parameters
        values.merge(outputs.visible(to: i, in: engine.graph)) { _, new in new }
        var env = values
        for (k, v) in task.env { env[k] = resolver.substitute(v, values) }
        return (task, resolver.substitute(task.command, values), env)
    }
}
