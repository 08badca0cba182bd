import Foundation

/// The fields of CONDITIONS and SWITCH nodes: read with each task, then checked across tasks.
enum BranchFields {
    static let branchOnly = ["condition", "success_branch", "failure_branch", "cases", "default_branch"]
    /// Most cases of one SWITCH node.
    static let maxCases = 100

    /// Reads the branch fields of one task; refuses them on a SHELL task, and refuses what a
    /// worker would need (a command, retries, a group, ...) on a branch node.
    static func parse(_ raw: JSONValue, into task: inout TaskDefinition, label: String, _ problems: inout WorkflowParser.Problems) {
        guard task.isBranchNode else {
            for key in branchOnly where raw[key] != nil {
                problems.add("only CONDITIONS and SWITCH nodes have \(key); this task is \(task.type.rawValue)", task: label, field: key)
            }
            return
        }
        let kind = task.type.rawValue
        // Stored definitions hold every default; only a value that would do something is refused.
        refuse(["command", "retries", "retry_interval", "timeout", "worker_group", "env", "pool", "delay"], on: task, raw,
               because: "a \(kind) node is decided on the master and runs nothing on a worker", label: label, &problems)
        if task.enabled == false {
            problems.add("a \(kind) node cannot be disabled (it would take every branch); disable the tasks of a branch instead",
                         task: label, field: "enabled")
        }
        if task.deps.isEmpty && task.type == .conditions {
            problems.add("a CONDITIONS node needs deps: the tasks whose outcome it branches on", task: label, field: "deps")
        }
        func names(_ key: String) -> [String]? {
            guard let v = raw[key] else { return nil }
            guard case .array(let items) = v, items.count <= Limits.maxTasks else {
                problems.add("must be a list of task names", task: label, field: key)
                return []
            }
            var list: [String] = []
            for item in items {
                if case .string(let n) = item { list.append(n) }
                else { problems.add("must be a list of task names; \(item.brief) is not a name", task: label, field: key) }
            }
            if Set(list).count != list.count { problems.add("names a task twice", task: label, field: key) }
            return list
        }
        switch task.type {
        case .conditions:
            for key in ["cases", "default_branch"] where raw[key] != nil {
                problems.add("a CONDITIONS node has success_branch and failure_branch; \(key) belongs to SWITCH", task: label, field: key)
            }
            task.successBranch = names("success_branch") ?? []
            task.failureBranch = names("failure_branch") ?? []
            if let c = raw["condition"] { task.condition = condition(c, deps: task.deps, label: label, &problems) }
        case .switchNode:
            for key in ["condition", "success_branch", "failure_branch"] where raw[key] != nil {
                problems.add("a SWITCH node has cases and default_branch; \(key) belongs to CONDITIONS", task: label, field: key)
            }
            task.defaultBranch = names("default_branch") ?? []
            var cases: [SwitchCase] = []
            _ = objects(raw, "cases", max: maxCases, keys: ["when", "then"], shape: "{\"when\": condition, \"then\": [tasks]}",
                        missing: "a SWITCH node needs a list of {\"when\": condition, \"then\": [tasks]}", label: label, &problems) { item, field, problems in
                let when = problems.string(item["when"], field: field + ".when", task: label, required: true) ?? ""
                if item["when"] != nil {
                    do { _ = try SwitchExpression.parse(when) } catch {
                        problems.add("\(Limits.quoted(when)) \(error)", task: label, field: field + ".when")
                    }
                }
                var then: [String] = []
                if let v = item["then"], case .array(let list) = v, list.count <= Limits.maxTasks {
                    for t in list {
                        if case .string(let n) = t { then.append(n) }
                        else { problems.add("must be a list of task names; \(t.brief) is not a name", task: label, field: field + ".then") }
                    }
                } else {
                    problems.add(item["then"] == nil ? "missing; the tasks this case chooses ([] for none)" : "must be a list of task names",
                                 task: label, field: field + ".then")
                }
                cases.append(SwitchCase(when: when, then: then))
            }
            task.cases = cases
        default: break
        }
    }

    static func condition(_ v: JSONValue, deps: [String], label: String, _ problems: inout WorkflowParser.Problems) -> BranchCondition? {
        guard case .object(let members) = v else {
            problems.add("must be an object {\"relation\": \"AND\", \"tasks\": {\"name\": \"SUCCESS\"}}", task: label, field: "condition")
            return nil
        }
        for (key, _) in members where key != "relation" && key != "tasks" {
            problems.add("unknown key \(Limits.quoted(key)); a condition has relation and tasks", task: label, field: "condition")
        }
        var result = BranchCondition(tasks: [:])
        if let r = v["relation"] { result.relation = problems.enumValue(r, field: "condition.relation", task: label) ?? .and }
        guard case .object(let tasks)? = v["tasks"], !tasks.isEmpty else {
            problems.add("must name at least one upstream task and its outcome: {\"name\": \"SUCCESS\" or \"FAILURE\"}",
                         task: label, field: "condition.tasks")
            return nil
        }
        for (name, outcome) in tasks {
            if !deps.contains(name) {
                problems.add("\(Limits.quoted(name)) is not in this node's deps; a condition reads only the tasks it waits for",
                             task: label, field: "condition.tasks")
            }
            if let o: BranchCondition.Outcome = problems.enumValue(outcome, field: "condition.tasks", task: label) { result.tasks[name] = o }
        }
        return result
    }

    /// The fields of a SUB_PROCESS node: the workflow it starts (not its own), a version, params.
    static func parseSubProcess(_ raw: JSONValue, into task: inout TaskDefinition, label: String, workflow: String?,
                                _ problems: inout WorkflowParser.Problems) {
        guard task.type == .subProcess else {
            for key in ["workflow", "version", "params"] where raw[key] != nil {
                problems.add("only SUB_PROCESS nodes have \(key); this task is \(task.type.rawValue)", task: label, field: key)
            }
            return
        }
        refuse(["command", "timeout", "worker_group", "env", "pool"], on: task, raw,
               because: "a SUB_PROCESS node starts a workflow instance on a master and runs nothing on a worker", label: label, &problems)
        let name = problems.string(raw["workflow"], field: "workflow", task: label, required: true)
        if let name {
            if let problem = Limits.nameProblem(name) { problems.add("\(Limits.quoted(name)) \(problem)", task: label, field: "workflow") }
            if name == workflow {
                problems.add("a workflow cannot start itself (it would nest for ever)", task: label, field: "workflow")
            }
            task.workflow = name
        }
        if let v = raw["version"] {
            if let n = v.integer, n >= 1 { task.version = n } else { problems.add("\(v.brief) is not a version (a whole number from 1)", task: label, field: "version") }
        }
        if let p = raw["params"] { task.params = problems.stringMap(p, field: "params", task: label) }
    }

    /// Refuses the worker's fields a node that runs on the master would ignore. Stored definitions
    /// hold every default: only a value that would do something is refused.
    static func refuse(_ fields: [String], on task: TaskDefinition, _ raw: JSONValue, because why: String, label: String,
                       _ problems: inout WorkflowParser.Problems) {
        for field in fields {
            let set = switch field {
            case "command": !task.command.isEmpty
            case "retries": task.retries != 0
            case "retry_interval": task.retryInterval != 0
            case "timeout": task.timeout != nil
            case "worker_group": task.workerGroup != "default"
            case "env": !task.env.isEmpty
            case "pool": task.pool != nil
            case "delay": task.delay != nil
            case "timeout_strategy": task.timeoutStrategy != .fail
            default: raw[field] != nil
            }
            if set { problems.add("\(why); remove \(field)", task: label, field: field) }
        }
    }

    /// A list of 1 to `max` objects with the keys `keys` at `raw[key]`: each with its index and
    /// field name (`key[n]`) to `each`; what is not such a list or object is a problem named.
    static func objects(_ raw: JSONValue, _ key: String, max: Int, keys: [String], shape: String, missing: String, label: String,
                        _ problems: inout WorkflowParser.Problems, _ each: (JSONValue, String, inout WorkflowParser.Problems) -> Void) -> Bool {
        guard case .array(let items)? = raw[key], !items.isEmpty, items.count <= max else {
            problems.add(raw[key] == nil ? "missing; \(missing)" : "must be a list of 1 to \(max) \(shape) objects", task: label, field: key)
            return false
        }
        for (n, item) in items.enumerated() {
            let field = "\(key)[\(n)]"
            guard case .object(let members) = item else {
                problems.add("must be an object \(shape)", task: label, field: field)
                continue
            }
            for (k, _) in members where !keys.contains(k) {
                problems.add("unknown key \(Limits.quoted(k)); an item has \(keys.joined(separator: " and "))", task: label, field: field)
            }
            each(item, field, &problems)
        }
        return true
    }

    /// The most items one DEPENDENT node waits for.
    static let maxDependencies = 100

    /// The fields of a DEPENDENT node: `depends_on` (1 to 100 `{"workflow", "task"?, "window"}`),
    /// `relation` (AND, OR); its `timeout` fails it once it has waited that long.
    static func parseDependent(_ raw: JSONValue, into task: inout TaskDefinition, label: String, _ problems: inout WorkflowParser.Problems) {
        guard task.type == .dependent else {
            for key in ["depends_on", "relation"] where raw[key] != nil {
                problems.add("only DEPENDENT nodes have \(key); this task is \(task.type.rawValue)", task: label, field: key)
            }
            return
        }
        refuse(["command", "worker_group", "env", "pool", "timeout_strategy"], on: task, raw,
               because: "a DEPENDENT node waits on the master and runs nothing on a worker", label: label, &problems)
        if let r = raw["relation"] { task.relation = problems.enumValue(r, field: "relation", task: label) }
        var list: [DependencyItem] = []
        let read = objects(raw, "depends_on", max: maxDependencies, keys: ["workflow", "task", "window"],
                           shape: "{\"workflow\": name, \"task\": name, \"window\": \"today\"}",
                           missing: "a DEPENDENT node needs a list of {\"workflow\": name, \"window\": \"today\"}", label: label, &problems) { item, field, problems in
            let workflow = problems.string(item["workflow"], field: field + ".workflow", task: label, required: true) ?? ""
            if item["workflow"] != nil, let problem = Limits.nameProblem(workflow) {
                problems.add("\(Limits.quoted(workflow)) \(problem)", task: label, field: field + ".workflow")
            }
            let taskName = item["task"] == nil ? nil : problems.string(item["task"], field: field + ".task", task: label, required: false)
            if let taskName, let problem = Limits.nameProblem(taskName) {
                problems.add("\(Limits.quoted(taskName)) \(problem)", task: label, field: field + ".task")
            }
            var window = DependencyWindow.today
            if let w = item["window"] { window = problems.enumValue(w, field: field + ".window", task: label) ?? .today }
            else { problems.add("missing; one of \(DependencyWindow.allCases.map(\.rawValue).joined(separator: " "))", task: label, field: field + ".window") }
            list.append(DependencyItem(workflow: workflow, task: taskName, window: window))
        }
        guard read else { return }
        task.dependsOn = list
    }

    /// Across tasks: a branch names only tasks that depend on its node, and every task that
    /// depends on a branch node is on one of its branches (else whether it runs would be a guess).
    static func check(_ tasks: [TaskDefinition], _ problems: inout WorkflowParser.Problems) {
        var dependents: [String: [String]] = [:]
        for t in tasks { for d in t.deps { dependents[d, default: []].append(t.name) } }
        for node in tasks where node.isBranchNode {
            let label = Limits.quoted(node.name)
            let below = Set(dependents[node.name] ?? [])
            let targets = node.branchTargets
            for t in targets where !below.contains(t) {
                problems.add("a branch names \(Limits.quoted(t)), which does not list \(label) in its deps", task: label, field: "branches")
            }
            let onBranch = Set(targets)
            for t in dependents[node.name] ?? [] where !onBranch.contains(t) {
                let fields = node.type == .conditions ? "success_branch or failure_branch" : "a case's then or default_branch"
                problems.add("task \(Limits.quoted(t)) depends on this \(node.type.rawValue) node but is on none of its branches; name it in \(fields)",
                             task: label, field: "branches")
            }
        }
    }
}
