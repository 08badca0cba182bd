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
        let workerOnly: [(String, Bool)] = [
            ("command", !task.command.isEmpty), ("retries", task.retries != 0), ("retry_interval", task.retryInterval != 0),
            ("timeout", task.timeout != nil), ("worker_group", task.workerGroup != "default"), ("env", !task.env.isEmpty), ("pool", task.pool != nil), ("delay", task.delay != nil),
        ]
        for (field, set) in workerOnly where set {
            problems.add("a \(kind) node is decided on the master and runs nothing on a worker; remove \(field)", task: label, field: field)
        }
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
            guard case .array(let items)? = raw["cases"], !items.isEmpty, items.count <= maxCases else {
                problems.add(raw["cases"] == nil ? "missing; a SWITCH node needs a list of {\"when\": condition, \"then\": [tasks]}"
                                                 : "must be a list of 1 to \(maxCases) {\"when\": condition, \"then\": [tasks]} objects",
                             task: label, field: "cases")
                task.cases = []
                return
            }
            var cases: [SwitchCase] = []
            for (n, item) in items.enumerated() {
                let field = "cases[\(n)]"
                guard case .object(let members) = item else {
                    problems.add("must be an object {\"when\": condition, \"then\": [tasks]}", task: label, field: field)
                    continue
                }
                for (key, _) in members where key != "when" && key != "then" {
                    problems.add("unknown key \(Limits.quoted(key)); a case has when and then", task: label, field: field)
                }
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
        let workerOnly: [(String, Bool)] = [
            ("command", !task.command.isEmpty), ("timeout", task.timeout != nil), ("worker_group", task.workerGroup != "default"),
            ("env", !task.env.isEmpty), ("pool", task.pool != nil),
        ]
        for (field, set) in workerOnly where set {
            problems.add("a SUB_PROCESS node starts a workflow instance on a master and runs nothing on a worker; remove \(field)",
                         task: label, field: field)
        }
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
        let workerOnly: [(String, Bool)] = [
            ("command", !task.command.isEmpty), ("worker_group", task.workerGroup != "default"), ("env", !task.env.isEmpty),
            ("pool", task.pool != nil), ("timeout_strategy", raw["timeout_strategy"] != nil && task.timeoutStrategy != .fail),
        ]
        for (field, set) in workerOnly where set {
            problems.add("a DEPENDENT node waits on the master and runs nothing on a worker; remove \(field)", task: label, field: field)
        }
        if let r = raw["relation"] { task.relation = problems.enumValue(r, field: "relation", task: label) }
        guard case .array(let items)? = raw["depends_on"], !items.isEmpty, items.count <= maxDependencies else {
            problems.add(raw["depends_on"] == nil ? "missing; a DEPENDENT node needs a list of {\"workflow\": name, \"window\": \"today\"}"
                                                  : "must be a list of 1 to \(maxDependencies) {\"workflow\", \"task\", \"window\"} objects",
                         task: label, field: "depends_on")
            return
        }
        var list: [DependencyItem] = []
        for (n, item) in items.enumerated() {
            let field = "depends_on[\(n)]"
            guard case .object(let members) = item else {
                problems.add("must be an object {\"workflow\": name, \"task\": name, \"window\": \"today\"}", task: label, field: field)
                continue
            }
            for (key, _) in members where !["workflow", "task", "window"].contains(key) {
                problems.add("unknown key \(Limits.quoted(key)); an item has workflow, task and window", task: label, field: field)
            }
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
