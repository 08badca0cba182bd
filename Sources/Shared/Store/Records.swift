import Foundation

// One record type per table. Times are Unix seconds (Double): millisecond hops stay measurable.

/// A stored, versioned workflow definition: one row per (name, version).
public struct WorkflowDefinitionRecord: Codable, Sendable, StoredRecord {
    public static let tableName = "workflow_definition"
    public var id: Int64?
    public var name: String
    public var version: Int
    public var json: String
    public var createdAt: Double

    enum CodingKeys: String, CodingKey { case id, name, version, json, createdAt = "created_at" }
}

/// One run of a workflow definition.
public struct WorkflowInstanceRecord: Codable, Sendable, StoredRecord {
    public static let tableName = "workflow_instance"
    public var id: Int64?
    public var definitionId: Int64
    public var name: String
    public var version: Int
    public var state: WorkflowState
    public var priority: Priority
    /// `--param` overrides given at start, as JSON.
    public var paramsJson: String
    /// The master that owns the instance (`host:port`), nil until one claims it.
    public var host: String?
    /// The owner's ZooKeeper session id; ownership ends with that session.
    public var masterSession: Int64?
    public var submitTime: Double
    public var startTime: Double?
    public var endTime: Double?
    /// Why the instance ended without running, e.g. a stored definition that cannot be read.
    public var message: String?
    /// 1 for the first run; resume, recover, rerun and start-from each start the next.
    public var run: Int = 1
    /// Successes an earlier run hands on to this one: task name -> the attempt (id) that succeeded.
    public var keptJson: String?
    /// Where the owner applied a pause or a stop in the event order; nil until applied.
    public var pauseSeq: Int64?
    public var stopSeq: Int64?
    /// When a master started the current run (a workflow's timeout counts from it).
    public var runStartTime: Double?
    /// The definition's execution type; nil for PARALLEL.
    public var execution: ExecutionType?
    /// A child instance: the instance and the SUB_PROCESS attempt that started it.
    public var parentInstanceId: Int64?
    public var parentTaskInstanceId: Int64?
    /// A scheduled or backfilled instance: its schedule (nil for a backfill), the fire time it
    /// stands for and the zone its built-in parameters resolve in.
    public var scheduleId: Int64?
    public var scheduleTime: Double?
    public var timeZone: String?
    public var backfillId: Int64?
    /// A missed fire time its schedule's catch-up policy ran late (nil otherwise).
    public var caughtUp: Bool?

    enum CodingKeys: String, CodingKey {
        case id, definitionId = "definition_id", name, version, state, priority, paramsJson = "params_json", host,
             masterSession = "master_session", submitTime = "submit_time", startTime = "start_time", endTime = "end_time",
             message, run, keptJson = "kept_json", pauseSeq = "pause_seq", stopSeq = "stop_seq", runStartTime = "run_start_time", execution,
             parentInstanceId = "parent_instance_id", parentTaskInstanceId = "parent_task_instance_id",
             scheduleId = "schedule_id", scheduleTime = "schedule_time", timeZone = "time_zone", backfillId = "backfill_id",
             caughtUp = "caught_up"
    }

    /// The kept successes: task name -> attempt id.
    public var kept: [String: Int64] {
        guard let keptJson, let kept = try? JSONDecoder().decode([String: Int64].self, from: Data(keptJson.utf8)) else { return [:] }
        return kept
    }
}

/// One attempt of one task: retries and failovers add rows.
public struct TaskInstanceRecord: Codable, Sendable, StoredRecord {
    public static let tableName = "task_instance"
    public var id: Int64?
    public var workflowInstanceId: Int64
    public var taskName: String
    public var attempt: Int
    public var state: TaskState
    public var priority: Priority
    public var workerGroup: String
    /// The worker that ran it (`host:port`).
    public var host: String?
    public var pid: Int32?
    public var logPath: String?
    public var exitCode: Int32?
    public var outputJson: String?
    public var message: String?
    public var submitTime: Double
    public var startTime: Double?
    public var endTime: Double?
    /// Position of this attempt's dispatch, and of its stored outcome, in its instance's event order.
    public var dispatchSeq: Int64?
    public var finishSeq: Int64?
    /// The run of the instance this attempt belongs to.
    public var run: Int = 1
    /// A decided branch node (CONDITIONS, SWITCH): the tasks its branch chose, as a JSON list.
    public var branchJson: String?
    /// The task's pool: the attempt holds one of its slots while DISPATCHED or RUNNING.
    public var pool: String?
    /// A SUB_PROCESS attempt: the child instance it started.
    public var childInstanceId: Int64?
    /// A SUB_PROCESS attempt about to be stored: the child to start with it (not a column).
    public var childRequest: ChildRequest? = nil
    /// An attempt a master carries out itself (SUB_PROCESS, DEPENDENT): never queued, on no worker.
    public var runsOnMaster = false

    /// The tasks a decided branch node chose.
    public var branch: [String]? {
        branchJson.flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) }
    }

    /// The row as the engine replays it. Rows from before sequences existed fall back to creation order.
    public var stored: StoredAttempt {
        StoredAttempt(task: taskName, attempt: attempt, state: state, endTime: endTime, dispatchSeq: dispatchSeq ?? id!,
                      finishSeq: finishSeq ?? (state.isTerminal ? id! : nil), branch: branch)
    }

    enum CodingKeys: String, CodingKey {
        case id, workflowInstanceId = "workflow_instance_id", taskName = "task_name", attempt, state, priority, run, branchJson = "branch_json", pool, childInstanceId = "child_instance_id", runsOnMaster = "on_master",
             workerGroup = "worker_group", host, pid, logPath = "log_path", exitCode = "exit_code",
             outputJson = "output_json", message, submitTime = "submit_time", startTime = "start_time", endTime = "end_time",
             dispatchSeq = "dispatch_seq", finishSeq = "finish_seq"
    }
}

/// A request for a master: (re)start an instance (claimed exactly once, by any master with a free
/// slot), or pause or stop one (applied once, by the master that owns it or takes it over).
public struct CommandRecord: Codable, Sendable, StoredRecord {
    public static let tableName = "command"
    public var id: Int64?
    public var type: String
    public var workflowInstanceId: Int64
    /// Priority rank (0 HIGHEST … 4 LOWEST): masters claim in this order, then by id.
    public var priorityRank: Int
    public var submitTime: Double
    /// The task a START_FROM command starts from.
    public var taskName: String?
    /// The attempt a REMOVE command takes out of the queue.
    public var taskInstanceId: Int64?

    enum CodingKeys: String, CodingKey {
        case id, type, workflowInstanceId = "workflow_instance_id", priorityRank = "priority_rank", submitTime = "submit_time",
             taskName = "task_name", taskInstanceId = "task_instance_id"
    }

    /// Commands any master with a free slot may claim: they (re)start an unowned instance.
    public static let startTypes = ["START", "RESUME", "RECOVER", "RERUN", "START_FROM"]
    /// Commands for the master that owns a running instance.
    public static let controlTypes = ["PAUSE", "STOP", "REMOVE"]
    static let controlTypesSQL = "('PAUSE', 'STOP', 'REMOVE')"
}

/// The child instance a SUB_PROCESS attempt starts: a stored workflow (latest version, or
/// `version`) with the node's parameters resolved by the parent.
public struct ChildRequest: Sendable, Equatable {
    public var workflow: String
    public var version: Int?
    public var params: [String: String]
    /// Why no child can start (its params did not resolve): the attempt fails with it.
    public var problem: String?

    public init(workflow: String, version: Int?, params: [String: String]) {
        self.workflow = workflow
        self.version = version
        self.params = params
    }
}

/// A cron schedule of a stored workflow (by name: each fire runs its latest version).
public struct ScheduleRecord: Codable, Sendable, StoredRecord {
    public static let tableName = "schedule"
    public var id: Int64?
    public var workflow: String
    public var cron: String
    public var timeZone: String
    /// Fire times before `startTime` or after `endTime` are not fired.
    public var startTime: Double?
    public var endTime: Double?
    /// Nil: the workflow's own priority.
    public var priority: Priority?
    public var paramsJson: String
    public var catchup: CatchUp
    /// ONLINE or OFFLINE.
    public var state: String
    /// The next fire time to fire; nil when none is left (past `endTime`, or year 2099).
    public var nextFireTime: Double?
    public var lastFireTime: Double?
    public var createdAt: Double

    public static let online = "ONLINE", offline = "OFFLINE"

    public init(id: Int64? = nil, workflow: String, cron: String, timeZone: String, startTime: Double? = nil, endTime: Double? = nil,
                priority: Priority? = nil, paramsJson: String = "{}", catchup: CatchUp = .none, state: String = ScheduleRecord.online,
                nextFireTime: Double? = nil, lastFireTime: Double? = nil, createdAt: Double) {
        (self.id, self.workflow, self.cron, self.timeZone, self.startTime, self.endTime) = (id, workflow, cron, timeZone, startTime, endTime)
        (self.priority, self.paramsJson, self.catchup, self.state) = (priority, paramsJson, catchup, state)
        (self.nextFireTime, self.lastFireTime, self.createdAt) = (nextFireTime, lastFireTime, createdAt)
    }

    enum CodingKeys: String, CodingKey {
        case id, workflow, cron, timeZone = "time_zone", startTime = "start_time", endTime = "end_time", priority,
             paramsJson = "params_json", catchup, state, nextFireTime = "next_fire_time", lastFireTime = "last_fire_time",
             createdAt = "created_at"
    }
}

/// A backfill: one instance of `workflow` per business date from `fromDate` to `toDate`.
public struct BackfillRecord: Codable, Sendable, StoredRecord {
    public static let tableName = "backfill"
    public var id: Int64?
    public var workflow: String
    public var fromDate: String
    public var toDate: String
    public var parallel: Int
    public var timeZone: String
    public var createdAt: Double
    /// When `ds-schedule cancel` cancelled it (nil: it was not).
    public var cancelledAt: Double?

    public init(id: Int64? = nil, workflow: String, fromDate: String, toDate: String, parallel: Int, timeZone: String, createdAt: Double,
                cancelledAt: Double? = nil) {
        (self.id, self.workflow, self.fromDate, self.toDate) = (id, workflow, fromDate, toDate)
        (self.parallel, self.timeZone, self.createdAt, self.cancelledAt) = (parallel, timeZone, createdAt, cancelledAt)
    }

    enum CodingKeys: String, CodingKey {
        case id, workflow, fromDate = "from_date", toDate = "to_date", parallel, timeZone = "time_zone", createdAt = "created_at",
             cancelledAt = "cancelled_at"
    }
}

extension WorkflowInstanceRecord {
    /// The instance's clock: its run time and stored zone (see InstanceClock).
    public func clock(now: Double) throws -> InstanceClock {
        try InstanceClock(scheduleTime: scheduleTime, startTime: startTime, timeZone: timeZone, now: now)
    }
}

extension ScheduleRecord {
    /// The schedule's fire times. A row written past ds-schedule's checks (a zone this host does
    /// not know, a cron that no longer reads) is refused, naming the schedule.
    public func calendar() throws -> FireCalendar {
        do {
            return FireCalendar(try CronExpression(cron), zone: try InstanceClock.zone(named: timeZone), start: startTime, end: endTime)
        } catch let e as CronExpression.ParseError {
            throw ControlRefusal(description: "schedule \(id ?? 0): cron \(Limits.quoted(cron)): \(e)", exitStatus: .dataError)
        } catch {
            throw ControlRefusal(description: "schedule \(id ?? 0): \(error)", exitStatus: .dataError)
        }
    }
}
