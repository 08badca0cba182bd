/// Dispatch priority of a workflow or a task; HIGHEST goes first.
public enum Priority: String, Codable, Sendable, CaseIterable, Comparable {
    case highest = "HIGHEST", high = "HIGH", medium = "MEDIUM", low = "LOW", lowest = "LOWEST"

    /// 0 for HIGHEST … 4 for LOWEST: the digit that leads a queue key.
    public var rank: Int {
        switch self {  // not allCases.firstIndex: queue keys compare ranks in the backlog's hot loop
        case .highest: return 0
        case .high: return 1
        case .medium: return 2
        case .low: return 3
        case .lowest: return 4
        }
    }

    public static func < (a: Priority, b: Priority) -> Bool { a.rank < b.rank }

    public static var names: String { allCases.map(\.rawValue).joined(separator: " ") }
}

/// What a workflow does once a task has failed for good.
public enum FailureStrategy: String, Codable, Sendable, CaseIterable {
    /// Start nothing new; the tasks already running finish; the workflow ends FAILURE.
    case end = "END"
    /// Keep running every task that does not depend on the failed one; the workflow ends FAILURE.
    case `continue` = "CONTINUE"
}

/// How a new instance of a workflow stands beside one that runs (DolphinScheduler 3's execution
/// types), by workflow name: PARALLEL runs both; SERIAL_WAIT starts it once no other instance of
/// the workflow runs, in submission order; SERIAL_DISCARD ends it STOP without running if another
/// runs when a master comes to start it; SERIAL_PRIORITY waits like SERIAL_WAIT but the waiting
/// instances start by workflow priority (then submission order).
public enum ExecutionType: String, Codable, Sendable, CaseIterable {
    case parallel = "PARALLEL", serialWait = "SERIAL_WAIT", serialDiscard = "SERIAL_DISCARD", serialPriority = "SERIAL_PRIORITY"
}

/// Which ends of an instance alert (DolphinScheduler's warning type): NONE, SUCCESS, FAILURE
/// (FAILURE and STOP), ALL. Nil in a definition is NONE.
public enum WarningType: String, Codable, Sendable, CaseIterable {
    case none = "NONE", success = "SUCCESS", failure = "FAILURE", all = "ALL"

    /// Whether an instance that ended in `state` alerts.
    public func alerts(on state: WorkflowState) -> Bool {
        switch state {
        case .success: return self == .success || self == .all
        case .failure, .stop: return self == .failure || self == .all
        default: return false
        }
    }
}

/// What a schedule does with the fire times it missed because no master ran (late by more than
/// the masters' misfire threshold): NONE skips them, LAST runs only the latest, ALL runs each.
public enum CatchUp: String, Codable, Sendable, CaseIterable {
    case none, last, all
}

/// What happens when a task outlives its timeout: FAIL kills its whole process group (SIGKILL)
/// and fails the attempt; WARN records an alert and lets it run; WARNFAIL does both.
public enum TimeoutStrategy: String, Codable, Sendable, CaseIterable {
    case fail = "FAIL", warn = "WARN", warnFail = "WARNFAIL"

    /// The worker kills the task at its timeout.
    public var kills: Bool { self != .warn }
    /// The master records an alert at the timeout.
    public var alerts: Bool { self != .fail }
}

/// Kinds of task. Only SHELL runs yet; the logic nodes come with their own issue.
public enum TaskType: String, Codable, Sendable, CaseIterable {
    case shell = "SHELL", subProcess = "SUB_PROCESS", conditions = "CONDITIONS", switchNode = "SWITCH", dependent = "DEPENDENT"
}
