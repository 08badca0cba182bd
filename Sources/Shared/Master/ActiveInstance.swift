import Foundation

/// A workflow instance a master is running: the pure engine plus what dispatch needs.
struct ActiveInstance: Sendable {
    var record: WorkflowInstanceRecord
    let definition: WorkflowDefinition
    var engine: WorkflowEngine
    /// Built-ins, workflow params and overrides, resolved at start.
    let parameters: [String: String]
    let resolver: ParameterResolver
    /// Output parameters each task printed.
    var outputs: [String: [String: String]] = [:]
    /// Output parameters of all upstream tasks, as each task saw them at dispatch.
    var inherited: [String: [String: String]] = [:]

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

    /// The command and environment of a task, with upstream outputs visible; records them as inherited.
    mutating func prepare(_ taskName: String) -> (task: TaskDefinition, command: String, env: [String: String]) {
        let task = self.task(taskName)
        var visible: [String: String] = [:]
        for dep in task.deps {
            if let up = inherited[dep] { visible.merge(up) { _, new in new } }
            if let own = outputs[dep] { visible.merge(own) { _, new in new } }
        }
        if !visible.isEmpty { inherited[taskName] = visible }
        var values = parameters
        values.merge(visible) { _, new in new }
        var env = values
        for (k, v) in task.env { env[k] = resolver.substitute(v, values) }
        return (task, resolver.substitute(task.command, values), env)
    }
}
