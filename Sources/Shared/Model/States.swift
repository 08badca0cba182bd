/// The state of a workflow instance (DESIGN §3).
public enum WorkflowState: String, Codable, Sendable, CaseIterable {
    case submitted = "SUBMITTED", running = "RUNNING", readyPause = "READY_PAUSE", pause = "PAUSE",
         readyStop = "READY_STOP", stop = "STOP", failure = "FAILURE", success = "SUCCESS",
         waitingThread = "WAITING_THREAD", failover = "FAILOVER"

    public var isTerminal: Bool { [.success, .failure, .stop, .pause].contains(self) }

    /// Owned by a master that runs it: failover covers exactly these.
    public var isActive: Bool { Self.active.contains(self) }
    public static let active: [WorkflowState] = [.running, .readyPause, .readyStop]
    /// The active states as an SQL list.
    static let activeSQL = "('RUNNING', 'READY_PAUSE', 'READY_STOP')"
    /// The states of an instance that waits for a master to start it, as an SQL list.
    static let waitingSQL = "('SUBMITTED', 'WAITING_THREAD')"
}

/// The state of one task attempt (DESIGN §3).
public enum TaskState: String, Codable, Sendable, CaseIterable {
    case submitted = "SUBMITTED", dispatched = "DISPATCHED", running = "RUNNING", success = "SUCCESS",
         failure = "FAILURE", kill = "KILL", pause = "PAUSE", delayExecution = "DELAY_EXECUTION",
         needFaultTolerance = "NEED_FAULT_TOLERANCE", forcedSuccess = "FORCED_SUCCESS"

    public var isTerminal: Bool { [.success, .failure, .kill, .pause, .needFaultTolerance, .forcedSuccess].contains(self) }
}
