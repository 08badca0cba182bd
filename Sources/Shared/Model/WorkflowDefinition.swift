import Foundation

/// One task of a workflow definition, with every default filled in.
public struct TaskDefinition: Codable, Sendable, Equatable {
    public var name: String
    public var type: TaskType = .shell
    public var command: String
    public var deps: [String] = []
    public var retries: Int = 0
    /// Seconds between a failed attempt and the next.
    public var retryInterval: Double = 0
    /// Seconds; nil for none.
    public var timeout: Double?
    public var timeoutStrategy: TimeoutStrategy = .fail
    /// The most memory the task's processes may use together, as written (`256M`): past it the
    /// kernel kills them and the attempt fails with OOM. See `ResourceLimits`.
    public var memoryMax: String?
    /// CPU time in percent of one core (`150`: one and a half cores).
    public var cpuQuota: Int?
    public var priority: Priority = .medium
    public var workerGroup: String = "default"
    public var env: [String: String] = [:]
    /// A task pool (`ds-pool`): the task waits for one of its slots, shared across workflows.
    public var pool: String?
    /// Seconds between the task becoming ready and its start (DolphinScheduler's delay execution).
    public var delay: Double?
    /// SUB_PROCESS: the stored workflow to start (its latest version, or `version`), and the
    /// parameters it is given (values may use the parent's `${...}`).
    public var workflow: String?
    public var version: Int?
    public var params: [String: String]?
    /// DEPENDENT: what it waits for, and whether all (AND) or one (OR) must have succeeded.
    public var dependsOn: [DependencyItem]?
    public var relation: BranchCondition.Relation?
    /// `false` skips the task: its downstream runs as if it had succeeded. Nil is true (omitted
    /// from the stored text, so definitions written before the field store the same text).
    public var enabled: Bool?
    /// CONDITIONS: which upstream outcomes choose the success branch (nil: every dep succeeded).
    public var condition: BranchCondition?
    /// CONDITIONS: the tasks run when the condition holds, and when it does not.
    public var successBranch: [String]?
    public var failureBranch: [String]?
    /// SWITCH: the first case whose condition holds chooses its tasks; none, the default branch.
    public var cases: [SwitchCase]?
    public var defaultBranch: [String]?
    /// The OS user the task runs as on its worker (DolphinScheduler's tenant); nil: the workflow's.
    public var tenant: String?
    /// Output parameters the task may set with `${setValue(NAME=value)}` besides the workflow's
    /// `params` (DolphinScheduler's OUT parameters); any other name it prints is ignored.
    public var outputs: [String]?
    /// Free text for people (nil: none), stored and shown, never run.
    public var description: String?

    public var isEnabled: Bool { enabled ?? true }
    /// The timeout whose passing writes an alert (WARN, WARNFAIL), if any.
    public var alertingTimeout: Double? {
        guard timeoutStrategy.alerts, let timeout, timeout > 0 else { return nil }
        return timeout
    }
    /// CONDITIONS and SWITCH run on the master, as a decision: no worker, no command.
    public var isBranchNode: Bool { type == .conditions || type == .switchNode }
    /// Nodes that run on the master rather than a worker: branch nodes and SUB_PROCESS.
    public var runsOnMaster: Bool { type != .shell }

    /// Every task a branch node names, each once, in the order first named.
    public var branchTargets: [String] {
        var seen: Set<String> = []
        let all = (successBranch ?? []) + (failureBranch ?? []) + (cases ?? []).flatMap(\.then) + (defaultBranch ?? [])
        return all.filter { seen.insert($0).inserted }
    }

    public init(name: String, command: String, deps: [String] = []) {
        self.name = name
        self.command = command
        self.deps = deps
    }

    enum CodingKeys: String, CodingKey {
        case name, type, command, deps, retries, retryInterval = "retry_interval", timeout,
             timeoutStrategy = "timeout_strategy", memoryMax = "memory_max", cpuQuota = "cpu_quota", priority, workerGroup = "worker_group", env, pool, delay, workflow, version, params, dependsOn = "depends_on", relation, enabled, condition,
             successBranch = "success_branch", failureBranch = "failure_branch", cases, defaultBranch = "default_branch",
             tenant, outputs, description
    }
}

/// The condition of a CONDITIONS node: each named upstream task must have ended as stated (AND),
/// or one of them must have (OR). A task is SUCCESS if it succeeded (or is disabled), FAILURE if
/// it failed or was skipped because a task it needs failed; a task on a branch not taken is
/// neither. Without a condition, a node checks that every dep that was taken succeeded.
public struct BranchCondition: Codable, Sendable, Equatable {
    public enum Relation: String, Codable, Sendable, CaseIterable { case and = "AND", or = "OR" }
    public enum Outcome: String, Codable, Sendable, CaseIterable { case success = "SUCCESS", failure = "FAILURE" }
    public var relation: Relation = .and
    public var tasks: [String: Outcome]

    public init(relation: Relation = .and, tasks: [String: Outcome]) {
        self.relation = relation
        self.tasks = tasks
    }
}

/// One case of a SWITCH node: a condition (see `SwitchExpression`) and the tasks it chooses.
public struct SwitchCase: Codable, Sendable, Equatable {
    public var when: String
    public var then: [String]

    public init(when: String, then: [String]) {
        self.when = when
        self.then = then
    }
}

/// A validated workflow (format version 1), normalised: what is stored and what runs.
public struct WorkflowDefinition: Codable, Sendable, Equatable {
    public var name: String
    public var priority: Priority = .medium
    public var failureStrategy: FailureStrategy = .end
    public var params: [String: String] = [:]
    /// Seconds an instance may run before an alert says it still runs (nil: none). The instance
    /// runs on: a workflow's timeout warns, as DolphinScheduler's does.
    public var timeout: Double?
    /// Nil is PARALLEL (omitted from the stored text).
    public var execution: ExecutionType?
    /// Which ends of an instance alert; nil is NONE (omitted from the stored text).
    public var warning: WarningType?
    /// The OS user its tasks run as (a task's own `tenant` wins); nil: the worker's default.
    public var tenant: String?
    /// Free text for people (nil: none), stored and shown (ds-instance definitions, show).
    public var description: String?
    public var tasks: [TaskDefinition]

    public init(name: String, tasks: [TaskDefinition]) {
        self.name = name
        self.tasks = tasks
    }

    enum CodingKeys: String, CodingKey {
        case name, priority, failureStrategy = "failure_strategy", params, timeout, execution, warning, tenant, description, tasks
    }

    /// The tenant task `task` runs as: its own, else the workflow's; nil for the worker's default.
    public func tenant(of task: TaskDefinition) -> String? { task.tenant ?? tenant }

    /// The output parameters task `task` may set: the workflow's `params` and the task's `outputs`.
    public func declaredOutputs(of task: TaskDefinition) -> [String] {
        Array(Set(params.keys).union(task.outputs ?? [])).sorted()
    }

    /// Stable JSON: sorted keys, so equal definitions store equal text.
    public func canonicalJSON(pretty: Bool = false) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        // Durations are bounded at validation; this keeps a stray non-finite number from trapping.
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }

    /// A stored definition, checked again as at submit: text written past ds-submit (by hand,
    /// by another version) must not reach the engine unchecked.
    public static func fromStored(_ json: String) throws -> WorkflowDefinition {
        try WorkflowParser.parse(Data(json.utf8), source: "stored definition", maxBytes: .max)
    }
}
