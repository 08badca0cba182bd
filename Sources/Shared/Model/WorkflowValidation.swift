import Foundation

/// One thing wrong with a workflow file, naming the task and field where it lies.
public struct ValidationProblem: Sendable, Equatable, CustomStringConvertible {
    public var task: String?
    public var field: String?
    public var message: String

    public var description: String {
        var where_: [String] = []
        if let task { where_.append("task '\(task)'") }
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
        problems.map { "\(source): invalid workflow: \($0)" }.joined(separator: "\n")
    }
}

/// Parses and validates workflow JSON (format version 1) before anything is written.
public enum WorkflowParser {
    static let workflowKeys: Set<String> = ["name", "priority", "failure_strategy", "params", "tasks", "format_version", "description"]
    static let taskKeys: Set<String> = ["name", "type", "command", "deps", "retries", "retry_interval", "timeout",
                                        "timeout_strategy", "priority", "worker_group", "env", "description"]

    /// Parses `data`; `source` names the input in messages (a path or `-`).
    public static func parse(_ data: Data, source: String) throws -> WorkflowDefinition {
        var problems: [ValidationProblem] = []
        func fail(_ message: String, task: String? = nil, field: String? = nil) {
            problems.append(ValidationProblem(task: task, field: field, message: message))
        }
        func error() -> WorkflowValidationError { WorkflowValidationError(source: source, problems: problems) }

        if data.allSatisfy({ [0x20, 0x0a, 0x0d, 0x09].contains($0) }) {
            fail("the file is empty; expected a JSON object with 'name' and 'tasks'")
            throw error()
        }
        let root: Any
        do {
            root = try JSONSerialization.jsonObject(with: data, options: [])
        } catch {
            let detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error.localizedDescription)"
            fail("malformed JSON: \(detail)")
            throw self.error(source, problems)
        }
        guard let object = root as? [String: Any] else {
            fail("the top level must be a JSON object with 'name' and 'tasks'")
            throw error()
        }
        for key in object.keys.sorted() where !workflowKeys.contains(key) {
            fail("unknown key; allowed keys are \(workflowKeys.sorted().joined(separator: ", "))", field: key)
        }
        if let v = object["format_version"], (v as? Int) != 1 || v is Bool {
            fail("unsupported format version \(v); this ds reads format_version 1", field: "format_version")
        }
        let name = string(object["name"], field: "name", task: nil, required: true, fail)
        if let name, name.isEmpty || name.contains("/") {
            fail("must be a non-empty name without '/'", field: "name")
        }
        var workflow = WorkflowDefinition(name: name ?? "", tasks: [])
        if let p = object["priority"] { workflow.priority = enumValue(p, field: "priority", task: nil, fail) ?? .medium }
        if let f = object["failure_strategy"] {
            workflow.failureStrategy = enumValue(f, field: "failure_strategy", task: nil, fail) ?? .end
        }
        if let p = object["params"] { workflow.params = stringMap(p, field: "params", task: nil, fail) }

        guard let rawTasks = object["tasks"] as? [Any] else {
            fail(object["tasks"] == nil ? "missing; a workflow needs a list of tasks" : "must be a list of task objects", field: "tasks")
            throw error()
        }
        if rawTasks.isEmpty { fail("is empty; a workflow needs at least one task", field: "tasks") }

        var seen: Set<String> = []
        for (index, raw) in rawTasks.enumerated() {
            guard let t = raw as? [String: Any] else {
                fail("task #\(index + 1) must be a JSON object", field: "tasks")
                continue
            }
            let taskName = string(t["name"], field: "name", task: "#\(index + 1)", required: true, fail) ?? "#\(index + 1)"
            if taskName.isEmpty { fail("task #\(index + 1) has an empty name", field: "name") }
            if !seen.insert(taskName).inserted { fail("duplicate task name; task names must be unique", task: taskName, field: "name") }
            for key in t.keys.sorted() where !taskKeys.contains(key) {
                fail("unknown key; allowed keys are \(taskKeys.sorted().joined(separator: ", "))", task: taskName, field: key)
            }
            var task = TaskDefinition(name: taskName, command: "")
            if let v = t["type"] { task.type = enumValue(v, field: "type", task: taskName, fail) ?? .shell }
            if task.type != .shell {
                fail("type \(task.type.rawValue) is not supported yet; only SHELL tasks run", task: taskName, field: "type")
            }
            task.command = string(t["command"], field: "command", task: taskName, required: true, fail) ?? ""
            if let d = t["deps"] {
                if let list = d as? [Any], list.allSatisfy({ $0 is String }) {
                    task.deps = list as! [String]
                    if Set(task.deps).count != task.deps.count {
                        fail("lists a dependency twice", task: taskName, field: "deps")
                    }
                } else {
                    fail("must be a list of task names", task: taskName, field: "deps")
                }
            }
            if let r = t["retries"] {
                if let n = r as? Int, !(r is Bool), n >= 0, n <= 100 { task.retries = n }
                else { fail("must be a whole number from 0 to 100", task: taskName, field: "retries") }
            }
            if let v = t["retry_interval"] { task.retryInterval = duration(v, field: "retry_interval", task: taskName, fail) ?? 0 }
            if let v = t["timeout"] { task.timeout = duration(v, field: "timeout", task: taskName, fail) }
            if let v = t["timeout_strategy"] {
                task.timeoutStrategy = enumValue(v, field: "timeout_strategy", task: taskName, fail) ?? .fail
            }
            if let v = t["priority"] { task.priority = enumValue(v, field: "priority", task: taskName, fail) ?? .medium }
            if let v = t["worker_group"] {
                let g = string(v, field: "worker_group", task: taskName, required: false, fail) ?? "default"
                if let problem = Limits.groupNameProblem(g) { fail("'\(g.debugDescription.dropFirst().dropLast())' \(problem)", task: taskName, field: "worker_group") }
                task.workerGroup = g
            }
            if let v = t["env"] { task.env = stringMap(v, field: "env", task: taskName, fail) }
            workflow.tasks.append(task)
        }

        let names = Set(workflow.tasks.map(\.name))
        for task in workflow.tasks {
            for dep in task.deps where !names.contains(dep) {
                fail("unknown dependency '\(dep)'; no task of that name in this workflow", task: task.name, field: "deps")
            }
            if task.deps.contains(task.name) { fail("a task cannot depend on itself", task: task.name, field: "deps") }
        }
        if problems.isEmpty, let cycle = TaskGraph(workflow.tasks).findCycle() {
            fail("dependency cycle: \(cycle.joined(separator: " -> "))", task: cycle[0], field: "deps")
        }
        guard problems.isEmpty else { throw error() }
        return workflow
    }

    private static func error(_ source: String, _ problems: [ValidationProblem]) -> WorkflowValidationError {
        WorkflowValidationError(source: source, problems: problems)
    }

    typealias Fail = (String, String?, String?) -> Void

    private static func string(_ v: Any?, field: String, task: String?, required: Bool,
                               _ fail: (String, String?, String?) -> Void) -> String? {
        guard let v else {
            if required { fail("missing; it is required", task, field) }
            return nil
        }
        guard let s = v as? String else { fail("must be a string", task, field); return nil }
        return s
    }

    private static func enumValue<E: RawRepresentable & CaseIterable>(_ v: Any, field: String, task: String?,
                                                                      _ fail: (String, String?, String?) -> Void) -> E?
    where E.RawValue == String {
        if let s = v as? String, let e = E(rawValue: s) { return e }
        fail("'\(v)' is not one of \(E.allCases.map(\.rawValue).joined(separator: " "))", task, field)
        return nil
    }

    private static func duration(_ v: Any, field: String, task: String?, _ fail: (String, String?, String?) -> Void) -> Double? {
        var seconds: Double?
        if let n = v as? Double, !(v is Bool), n >= 0, n.isFinite { seconds = n }
        if let s = v as? String, let d = DurationText.parse(s) { seconds = d }
        if let seconds {
            if seconds <= Limits.maxDurationSeconds { return seconds }
            fail("'\(v)' is longer than the limit of 30d", task, field)
            return nil
        }
        fail("'\(v)' is not a duration such as 30s, 5m, 2h or a number of seconds", task, field)
        return nil
    }

    private static func stringMap(_ v: Any, field: String, task: String?, _ fail: (String, String?, String?) -> Void) -> [String: String] {
        guard let map = v as? [String: Any] else { fail("must be an object of names to string values", task, field); return [:] }
        var result: [String: String] = [:]
        for (k, value) in map {
            if let s = value as? String { result[k] = s }
            else if let n = value as? NSNumber, !(value is Bool) { result[k] = n.stringValue }
            else { fail("value of '\(k)' must be a string", task, field) }
            if k.isEmpty || k.contains("=") { fail("'\(k)' is not a valid parameter name", task, field) }
        }
        return result
    }
}
