import Foundation

/// One thing wrong with a workflow file, naming the task and field where it lies.
public struct ValidationProblem: Sendable, Equatable, CustomStringConvertible {
    public var task: String?
    public var field: String?
    public var message: String

    public init(task: String? = nil, field: String? = nil, message: String) {
        self.task = task
        self.field = field
        self.message = message
    }

    public var description: String {
        var where_: [String] = []
        if let task { where_.append("task \(task)") }
        if let field { where_.append("field '\(field)'") }
        return where_.isEmpty ? message : where_.joined(separator: ", ") + ": " + message
    }
}

/// A workflow file that cannot be accepted; nothing was written.
public struct WorkflowValidationError: Error, CustomStringConvertible, ExitStatusProviding {
    public var source: String
    public var problems: [ValidationProblem]
    public var exitStatus: ExitStatus { .dataError }
    public var description: String {
        // A file with thousands of mistakes gets the first ones, and a count of the rest.
        let shown = problems.prefix(20).map { "\(source): invalid workflow: \($0)" }
        let more = problems.count > 20 ? ["\(source): invalid workflow: and \(problems.count - 20) more problems"] : []
        return (shown + more).joined(separator: "\n")
    }
}

/// Parses and validates workflow JSON (format version 1) before anything is written. JSON is
/// read with its types kept (`StrictJSON`): `1` is a number, duplicate keys are an error. Every
/// bound of `Limits` is checked here, so a definition that passes cannot trap or stall a daemon.
public enum WorkflowParser {
    static let workflowKeys: Set<String> = ["name", "priority", "failure_strategy", "params", "tasks", "format_version", "description", "timeout", "execution", "warning", "tenant"]
    static let taskKeys: Set<String> = ["name", "type", "command", "deps", "retries", "retry_interval", "timeout",
                                        "timeout_strategy", "memory_max", "cpu_quota", "priority", "worker_group", "env", "description", "enabled", "pool", "delay", "workflow", "version", "params", "depends_on", "relation",
                                        "condition", "success_branch", "failure_branch", "cases", "default_branch", "tenant", "outputs"]

    /// Parses `data`; `source` names the input in messages (a path or `-`).
    /// `maxBytes` bounds the input; a stored definition, which holds every default, passes no bound.
    public static func parse(_ data: Data, source: String, maxBytes: Int = Limits.maxDefinitionBytes) throws -> WorkflowDefinition {
        var problems = Problems()
        func error() -> WorkflowValidationError { WorkflowValidationError(source: source, problems: problems.list) }

        if data.count > maxBytes {
            problems.add("the file is \(Limits.size(data.count)); a workflow may be at most \(Limits.size(maxBytes))")
            throw error()
        }
        if data.allSatisfy({ [0x20, 0x0a, 0x0d, 0x09].contains($0) }) {
            problems.add("the file is empty; expected a JSON object with 'name' and 'tasks'")
            throw error()
        }
        let root: JSONValue
        do {
            root = try StrictJSON.parse(data)
        } catch {
            problems.add("malformed JSON: \(error)")
            throw self.error(source, problems.list)
        }
        guard case .object(let members) = root else {
            problems.add("the top level must be a JSON object with 'name' and 'tasks'")
            throw error()
        }
        for (key, _) in members where !workflowKeys.contains(key) {
            problems.add("unknown key; allowed keys are \(workflowKeys.sorted().joined(separator: ", "))", field: key)
        }
        if let v = root["format_version"], v.integer != 1 {
            problems.add("unsupported format version \(v.brief); this ds reads format_version 1", field: "format_version")
        }
        let name = problems.string(root["name"], field: "name", task: nil, required: true)
        if let name, let problem = Limits.nameProblem(name) { problems.add("\(Limits.quoted(name)) \(problem)", field: "name") }
        var workflow = WorkflowDefinition(name: name ?? "", tasks: [])
        if let v = root["description"] { workflow.description = problems.description(v, task: nil) }
        if let p = root["priority"] { workflow.priority = problems.enumValue(p, field: "priority", task: nil) ?? .medium }
        if let f = root["failure_strategy"] {
            workflow.failureStrategy = problems.enumValue(f, field: "failure_strategy", task: nil) ?? .end
        }
        if let p = root["params"] { workflow.params = problems.stringMap(p, field: "params", task: nil) }
        if let v = root["timeout"] { workflow.timeout = problems.duration(v, field: "timeout", task: nil) }
        if let v = root["execution"] {
            let e: ExecutionType? = problems.enumValue(v, field: "execution", task: nil)
            workflow.execution = e == .parallel ? nil : e
        }
        if let v = root["warning"] {
            let w: WarningType? = problems.enumValue(v, field: "warning", task: nil)
            workflow.warning = w == WarningType.none ? nil : w
        }

        if let v = root["tenant"] { workflow.tenant = problems.tenant(v, task: nil) }

        guard case .array(let rawTasks)? = root["tasks"] else {
            problems.add(root["tasks"] == nil ? "missing; a workflow needs a list of tasks" : "must be a list of task objects", field: "tasks")
            throw error()
        }
        if rawTasks.isEmpty { problems.add("is empty; a workflow needs at least one task", field: "tasks") }
        if rawTasks.count > Limits.maxTasks {
            problems.add("has \(rawTasks.count) tasks; a workflow may have at most \(Limits.maxTasks)", field: "tasks")
            throw error()
        }

        var seen: Set<String> = []
        for (index, raw) in rawTasks.enumerated() {
            guard case .object(let members) = raw else {
                problems.add("task #\(index + 1) must be a JSON object", field: "tasks")
                continue
            }
            let rawName = problems.string(raw["name"], field: "name", task: "#\(index + 1)", required: true)
            var label = "#\(index + 1)"
            if let rawName {
                if let problem = Limits.nameProblem(rawName) {
                    problems.add("\(Limits.quoted(rawName)) \(problem)", task: label, field: "name")
                } else {
                    label = Limits.quoted(rawName)
                    if !seen.insert(rawName).inserted { problems.add("duplicate task name; task names must be unique", task: label, field: "name") }
                }
            }
            for (key, _) in members where !taskKeys.contains(key) {
                problems.add("unknown key; allowed keys are \(taskKeys.sorted().joined(separator: ", "))", task: label, field: key)
            }
            var task = TaskDefinition(name: rawName ?? "", command: "")
            if let v = raw["type"] { task.type = problems.enumValue(v, field: "type", task: label) ?? .shell }
            task.command = problems.string(raw["command"], field: "command", task: label, required: !task.runsOnMaster) ?? ""
            if task.command.utf8.count > Limits.maxCommandBytes {
                problems.add("is \(Limits.size(task.command.utf8.count)); a command may be at most \(Limits.size(Limits.maxCommandBytes)) (put long scripts in a file the command runs)",
                             task: label, field: "command")
            }
            if task.command.utf8.contains(0) {
                problems.add("must not hold a NUL character (it would cut the command where the task starts)", task: label, field: "command")
            }
            if let d = raw["deps"] {
                if case .array(let list) = d, list.count <= Limits.maxTasks {
                    for item in list {
                        if case .string(let dep) = item { task.deps.append(dep) }
                        else { problems.add("must be a list of task names; \(item.brief) is not a name", task: label, field: "deps") }
                    }
                    if Set(task.deps).count != task.deps.count {
                        problems.add("lists a dependency twice", task: label, field: "deps")
                    }
                } else {
                    problems.add("must be a list of task names", task: label, field: "deps")
                }
            }
            if let r = raw["retries"] {
                if let n = r.integer, n >= 0, n <= 100 { task.retries = n }
                else { problems.add("\(r.brief) is not a whole number from 0 to 100", task: label, field: "retries") }
            }
            if let v = raw["retry_interval"] { task.retryInterval = problems.duration(v, field: "retry_interval", task: label) ?? 0 }
            if let v = raw["timeout"] { task.timeout = problems.duration(v, field: "timeout", task: label) }
            if let v = raw["delay"], let d = problems.duration(v, field: "delay", task: label), d > 0 { task.delay = d }
            if let v = raw["timeout_strategy"] {
                task.timeoutStrategy = problems.enumValue(v, field: "timeout_strategy", task: label) ?? .fail
            }
            if let v = raw["memory_max"], let m = problems.string(v, field: "memory_max", task: label, required: false) {
                if let problem = ResourceLimits.memoryProblem(m) { problems.add(problem, task: label, field: "memory_max") }
                task.memoryMax = m
            }
            if let v = raw["cpu_quota"] {
                let range = ResourceLimits.cpuQuotaRange
                if let n = v.integer, range.contains(n) { task.cpuQuota = n }
                else { problems.add("\(v.brief) is not a whole number of percent of one core from \(range.lowerBound) to \(range.upperBound) (150 is 1.5 cores)", task: label, field: "cpu_quota") }
            }
            if let v = raw["priority"] { task.priority = problems.enumValue(v, field: "priority", task: label) ?? .medium }
            if let v = raw["worker_group"] {
                let g = problems.string(v, field: "worker_group", task: label, required: false) ?? "default"
                if let problem = Limits.groupNameProblem(g) { problems.add("\(Limits.quoted(g)) \(problem)", task: label, field: "worker_group") }
                task.workerGroup = g
            }
            if let v = raw["env"] { task.env = problems.stringMap(v, field: "env", task: label, numbers: false) }
            if let v = raw["pool"], let p = problems.string(v, field: "pool", task: label, required: false) {
                if let problem = Limits.groupNameProblem(p) { problems.add("\(Limits.quoted(p)) \(problem)", task: label, field: "pool") }
                task.pool = p
            }
            if let v = raw["description"] { task.description = problems.description(v, task: label) }
            if let v = raw["enabled"] {
                if case .bool(let b) = v { task.enabled = b ? nil : false }
                else { problems.add("\(v.brief) is not true or false", task: label, field: "enabled") }
            }
            if let v = raw["tenant"] { task.tenant = problems.tenant(v, task: label) }
            if let v = raw["outputs"] { task.outputs = problems.outputNames(v, task: label) }
            BranchFields.parse(raw, into: &task, label: label, &problems)
            BranchFields.parseSubProcess(raw, into: &task, label: label, workflow: name, &problems)
            BranchFields.parseDependent(raw, into: &task, label: label, &problems)
            workflow.tasks.append(task)
        }

        let allNames = Set(workflow.tasks.map(\.name))
        for task in workflow.tasks {
            for dep in task.deps where !allNames.contains(dep) {
                problems.add("unknown dependency \(Limits.quoted(dep)); no task of that name in this workflow", task: Limits.quoted(task.name), field: "deps")
            }
            if task.deps.contains(task.name) { problems.add("a task cannot depend on itself", task: Limits.quoted(task.name), field: "deps") }
        }
        BranchFields.check(workflow.tasks, &problems)
        if problems.list.isEmpty, let cycle = TaskGraph(workflow.tasks).findCycle() {
            problems.add("dependency cycle: \(cycle.joined(separator: " -> "))", task: Limits.quoted(cycle[0]), field: "deps")
        }
        guard problems.list.isEmpty else { throw error() }
        return workflow
    }

    private static func error(_ source: String, _ problems: [ValidationProblem]) -> WorkflowValidationError {
        WorkflowValidationError(source: source, problems: problems)
    }

    /// The problems found so far, and the readers of typed fields that add to them.
    struct Problems {
        var list: [ValidationProblem] = []

        mutating func add(_ message: String, task: String? = nil, field: String? = nil) {
            list.append(ValidationProblem(task: task, field: field, message: message))
        }

        mutating func string(_ v: JSONValue?, field: String, task: String?, required: Bool) -> String? {
            guard let v else {
                if required { add("missing; it is required", task: task, field: field) }
                return nil
            }
            guard case .string(let s) = v else { add("must be a string, not \(v.kind)", task: task, field: field); return nil }
            return s
        }

        /// A description: any string within a parameter value's bounds; an empty one is none.
        mutating func description(_ v: JSONValue, task: String?) -> String? {
            guard let s = string(v, field: "description", task: task, required: false) else { return nil }
            if let problem = Limits.valueProblem(s) { add(problem, task: task, field: "description"); return nil }
            return s.isEmpty ? nil : s
        }

        mutating func enumValue<E: RawRepresentable & CaseIterable>(_ v: JSONValue, field: String, task: String?) -> E?
        where E.RawValue == String {
            if case .string(let s) = v, let e = E(rawValue: s) { return e }
            add("\(v.brief) is not one of \(E.allCases.map(\.rawValue).joined(separator: " "))", task: task, field: field)
            return nil
        }

        mutating func duration(_ v: JSONValue, field: String, task: String?) -> Double? {
            var seconds: Double?
            if let n = v.double, n >= 0 { seconds = n }
            if case .string(let s) = v, let d = DurationText.parse(s) { seconds = d }
            if let seconds {
                if seconds <= Limits.maxDurationSeconds { return seconds + 0 }  // + 0: -0 becomes 0
                add("\(v.brief) is longer than the limit of 30d", task: task, field: field)
                return nil
            }
            add("\(v.brief) is not a duration such as 30s, 5m, 1h30m or a number of seconds (digits and a unit: ms s m h d)", task: task, field: field)
            return nil
        }

        /// Names to values: strings, or numbers kept as written (`"n": 3` is the text `3`).
        /// A `tenant`: a POSIX portable user name (see `Limits.tenantProblem`).
        mutating func tenant(_ v: JSONValue, task: String?) -> String? {
            guard let name = string(v, field: "tenant", task: task, required: false) else { return nil }
            if let problem = Limits.tenantProblem(name) {
                add("\(Limits.quoted(name)) \(problem)", task: task, field: "tenant")
                return nil
            }
            return name
        }

        /// A task's `outputs`: distinct parameter names, at most `Limits.maxOutputs`.
        mutating func outputNames(_ v: JSONValue, task: String?) -> [String]? {
            guard case .array(let list) = v, list.count <= Limits.maxOutputs else {
                add("must be a list of at most \(Limits.maxOutputs) output parameter names, as [\"NAME\", ...]", task: task, field: "outputs")
                return nil
            }
            var names: [String] = []
            for item in list {
                guard case .string(let name) = item else {
                    add("must be a list of names; \(item.brief) is not a name", task: task, field: "outputs")
                    continue
                }
                if let problem = Limits.keyProblem(name) {
                    add("\(Limits.quoted(name)) \(problem)", task: task, field: "outputs")
                } else if names.contains(name) {
                    add("lists \(Limits.quoted(name)) twice", task: task, field: "outputs")
                } else {
                    names.append(name)
                }
            }
            return names
        }

        /// With `numbers` false (`env`: an environment holds text, and `5` quietly read as `"5"`
        /// hid a typo such as a missing quote), a number is refused naming its key.
        mutating func stringMap(_ v: JSONValue, field: String, task: String?, numbers: Bool = true) -> [String: String] {
            guard case .object(let members) = v else { add("must be an object of names to string values", task: task, field: field); return [:] }
            if members.count > Limits.maxEntries {
                add("has \(members.count) entries; the limit is \(Limits.maxEntries)", task: task, field: field)
                return [:]
            }
            var result: [String: String] = [:]
            for (k, value) in members {
                if let problem = Limits.keyProblem(k) { add("name \(Limits.quoted(k)) \(problem)", task: task, field: field) }
                switch value {
                case .string(let s): result[k] = s
                case .number(let n) where numbers: result[k] = n
                case .number(let n): add("value of \(Limits.quoted(k)) must be a string, not the number \(n): write \"\(n)\"", task: task, field: field)
                default: add("value of \(Limits.quoted(k)) must be a string\(numbers ? " or a number" : ""), not \(value.kind)", task: task, field: field)
                }
                if let s = result[k], let problem = Limits.valueProblem(s) {
                    add("value of \(Limits.quoted(k)) \(problem)", task: task, field: field)
                }
            }
            return result
        }
    }
}
