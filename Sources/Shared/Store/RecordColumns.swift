import Foundation

// Each record's columns, read from a row by name and written in the same order: the one place
// a column's name meets its property.

/// A bound value, NULL for nil.
private func value(_ v: (any SQLBindable)?) -> SQLValue { v?.sqlValue ?? .null }

extension WorkflowDefinitionRecord {
    public init(row r: SQLRow) throws {
        self.init(id: try r["id"], name: try r["name"], version: try r["version"], json: try r["json"], createdAt: try r["created_at"])
    }

    public var columnValues: [(String, SQLValue)] {
        [("name", value(name)), ("version", value(version)), ("json", value(json)), ("created_at", value(createdAt))]
    }
}

extension WorkflowInstanceRecord {
    public init(row r: SQLRow) throws {
        self.init(id: try r["id"], definitionId: try r["definition_id"], name: try r["name"], version: try r["version"],
                  state: try r["state"], priority: try r["priority"], paramsJson: try r["params_json"], host: try r["host"],
                  masterSession: try r["master_session"], submitTime: try r["submit_time"], startTime: try r["start_time"],
                  endTime: try r["end_time"], message: try r["message"], run: try r["run"], keptJson: try r["kept_json"],
                  pauseSeq: try r["pause_seq"], stopSeq: try r["stop_seq"], runStartTime: try r["run_start_time"],
                  execution: try r["execution"], parentInstanceId: try r["parent_instance_id"],
                  parentTaskInstanceId: try r["parent_task_instance_id"], scheduleId: try r["schedule_id"],
                  scheduleTime: try r["schedule_time"], timeZone: try r["time_zone"], backfillId: try r["backfill_id"],
                  caughtUp: try r["caught_up"])
    }

    public var columnValues: [(String, SQLValue)] {
        [("definition_id", value(definitionId)), ("name", value(name)), ("version", value(version)), ("state", value(state)),
         ("priority", value(priority)), ("params_json", value(paramsJson)), ("host", value(host)),
         ("master_session", value(masterSession)), ("submit_time", value(submitTime)), ("start_time", value(startTime)),
         ("end_time", value(endTime)), ("message", value(message)), ("run", value(run)), ("kept_json", value(keptJson)),
         ("pause_seq", value(pauseSeq)), ("stop_seq", value(stopSeq)), ("run_start_time", value(runStartTime)),
         ("execution", value(execution)), ("parent_instance_id", value(parentInstanceId)),
         ("parent_task_instance_id", value(parentTaskInstanceId)), ("schedule_id", value(scheduleId)),
         ("schedule_time", value(scheduleTime)), ("time_zone", value(timeZone)), ("backfill_id", value(backfillId)),
         ("caught_up", value(caughtUp))]
    }
}

extension TaskInstanceRecord {
    public init(row r: SQLRow) throws {
        self.init(id: try r["id"], workflowInstanceId: try r["workflow_instance_id"], taskName: try r["task_name"],
                  attempt: try r["attempt"], state: try r["state"], priority: try r["priority"], workerGroup: try r["worker_group"],
                  host: try r["host"], pid: try r["pid"], logPath: try r["log_path"], exitCode: try r["exit_code"],
                  outputJson: try r["output_json"], message: try r["message"], submitTime: try r["submit_time"],
                  startTime: try r["start_time"], endTime: try r["end_time"], dispatchSeq: try r["dispatch_seq"],
                  finishSeq: try r["finish_seq"], run: try r["run"], branchJson: try r["branch_json"], pool: try r["pool"],
                  childInstanceId: try r["child_instance_id"], runsOnMaster: try r["on_master"])
    }

    public var columnValues: [(String, SQLValue)] {
        [("workflow_instance_id", value(workflowInstanceId)), ("task_name", value(taskName)), ("attempt", value(attempt)),
         ("state", value(state)), ("priority", value(priority)), ("worker_group", value(workerGroup)), ("host", value(host)),
         ("pid", value(pid)), ("log_path", value(logPath)), ("exit_code", value(exitCode)), ("output_json", value(outputJson)),
         ("message", value(message)), ("submit_time", value(submitTime)), ("start_time", value(startTime)),
         ("end_time", value(endTime)), ("dispatch_seq", value(dispatchSeq)), ("finish_seq", value(finishSeq)),
         ("run", value(run)), ("branch_json", value(branchJson)), ("pool", value(pool)),
         ("child_instance_id", value(childInstanceId)), ("on_master", value(runsOnMaster))]
    }
}

extension CommandRecord {
    public init(row r: SQLRow) throws {
        self.init(id: try r["id"], type: try r["type"], workflowInstanceId: try r["workflow_instance_id"],
                  priorityRank: try r["priority_rank"], submitTime: try r["submit_time"], taskName: try r["task_name"],
                  taskInstanceId: try r["task_instance_id"])
    }

    public var columnValues: [(String, SQLValue)] {
        [("type", value(type)), ("workflow_instance_id", value(workflowInstanceId)), ("priority_rank", value(priorityRank)),
         ("submit_time", value(submitTime)), ("task_name", value(taskName)), ("task_instance_id", value(taskInstanceId))]
    }
}

extension ScheduleRecord {
    public init(row r: SQLRow) throws {
        self.init(id: try r["id"], workflow: try r["workflow"], cron: try r["cron"], timeZone: try r["time_zone"],
                  startTime: try r["start_time"], endTime: try r["end_time"], priority: try r["priority"],
                  paramsJson: try r["params_json"], catchup: try r["catchup"], state: try r["state"],
                  nextFireTime: try r["next_fire_time"], lastFireTime: try r["last_fire_time"], createdAt: try r["created_at"])
    }

    public var columnValues: [(String, SQLValue)] {
        [("workflow", value(workflow)), ("cron", value(cron)), ("time_zone", value(timeZone)), ("start_time", value(startTime)),
         ("end_time", value(endTime)), ("priority", value(priority)), ("params_json", value(paramsJson)),
         ("catchup", value(catchup)), ("state", value(state)), ("next_fire_time", value(nextFireTime)),
         ("last_fire_time", value(lastFireTime)), ("created_at", value(createdAt))]
    }
}

extension BackfillRecord {
    public init(row r: SQLRow) throws {
        self.init(id: try r["id"], workflow: try r["workflow"], fromDate: try r["from_date"], toDate: try r["to_date"],
                  parallel: try r["parallel"], timeZone: try r["time_zone"], createdAt: try r["created_at"], cancelledAt: try r["cancelled_at"])
    }

    public var columnValues: [(String, SQLValue)] {
        [("workflow", value(workflow)), ("from_date", value(fromDate)), ("to_date", value(toDate)), ("parallel", value(parallel)),
         ("time_zone", value(timeZone)), ("created_at", value(createdAt)), ("cancelled_at", value(cancelledAt))]
    }
}

extension AlertRecord {
    public init(row r: SQLRow) throws {
        id = try r["id"]
        kind = try r["kind"]
        dedupKey = try r["dedup_key"]
        workflowInstanceId = try r["workflow_instance_id"]
        taskInstanceId = try r["task_instance_id"]
        contentJson = try r["content_json"]
        createTime = try r["create_time"]
        state = try r["state"]
        attempts = try r["attempts"]
        lastError = try r["last_error"]
        sentTime = try r["sent_time"]
        owner = try r["owner"]
        leaseUntil = try r["lease_until"]
        nextAttemptTime = try r["next_attempt_time"]
        ackTime = try r["ack_time"]
        ackBy = try r["ack_by"]
    }

    public var columnValues: [(String, SQLValue)] {
        [("kind", value(kind)), ("dedup_key", value(dedupKey)), ("workflow_instance_id", value(workflowInstanceId)),
         ("task_instance_id", value(taskInstanceId)), ("content_json", value(contentJson)), ("create_time", value(createTime)),
         ("state", value(state)), ("attempts", value(attempts)), ("last_error", value(lastError)), ("sent_time", value(sentTime)),
         ("owner", value(owner)), ("lease_until", value(leaseUntil)), ("next_attempt_time", value(nextAttemptTime)),
         ("ack_time", value(ackTime)), ("ack_by", value(ackBy))]
    }
}
