import Foundation
import GRDB

/// Append-only, named migrations: a migration is never modified once it has shipped.
enum Migrations {
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1-core") { db in
            try db.create(table: "workflow_definition") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("name", .text).notNull()
                t.column("version", .integer).notNull()
                t.column("json", .text).notNull()
                t.column("created_at", .double).notNull()
                t.uniqueKey(["name", "version"])
            }
            try db.create(table: "workflow_instance") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("definition_id", .integer).notNull().references("workflow_definition")
                t.column("name", .text).notNull()
                t.column("version", .integer).notNull()
                t.column("state", .text).notNull()
                t.column("priority", .text).notNull()
                t.column("params_json", .text).notNull()
                t.column("host", .text)
                t.column("submit_time", .double).notNull()
                t.column("start_time", .double)
                t.column("end_time", .double)
            }
            try db.create(index: "workflow_instance_by_state", on: "workflow_instance", columns: ["state"])
            try db.create(table: "task_instance") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("workflow_instance_id", .integer).notNull().references("workflow_instance")
                t.column("task_name", .text).notNull()
                t.column("attempt", .integer).notNull()
                t.column("state", .text).notNull()
                t.column("priority", .text).notNull()
                t.column("worker_group", .text).notNull()
                t.column("host", .text)
                t.column("pid", .integer)
                t.column("log_path", .text)
                t.column("exit_code", .integer)
                t.column("output_json", .text)
                t.column("message", .text)
                t.column("submit_time", .double).notNull()
                t.column("start_time", .double)
                t.column("end_time", .double)
            }
            try db.create(index: "task_instance_by_workflow", on: "task_instance", columns: ["workflow_instance_id"])
            try db.create(table: "command") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("type", .text).notNull()
                t.column("workflow_instance_id", .integer).notNull().references("workflow_instance")
                t.column("priority_rank", .integer).notNull()
                t.column("submit_time", .double).notNull()
            }
            try db.create(index: "command_by_order", on: "command", columns: ["priority_rank", "id"])
        }
        m.registerMigration("v2-owner-session") { db in
            // The ZooKeeper session of the owning master: a master restarted under the same
            // host:port is a new owner, and its dead incarnation's instances are failed over.
            try db.alter(table: "workflow_instance") { t in t.add(column: "master_session", .integer) }
            try db.create(index: "task_instance_by_state", on: "task_instance", columns: ["state"])
        }
        m.registerMigration("v3-event-sequence") { db in
            // One counter orders every dispatch and every stored outcome, across masters: a master
            // taking over replays the history in the order the engine saw it.
            try db.alter(table: "task_instance") { t in
                t.add(column: "dispatch_seq", .integer)
                t.add(column: "finish_seq", .integer)
            }
            try db.create(table: "sequence") { t in
                t.primaryKey("name", .text)
                t.column("value", .integer).notNull()
            }
            try db.execute(sql: "INSERT INTO sequence (name, value) VALUES ('event', 0)")
        }
        m.registerMigration("v4-database-identity") { db in
            // A random id, made once: masters advertise it, so `ds-submit --wait` can tell when no
            // running master serves the database it wrote to (a DS_DB pointing elsewhere).
            try db.create(table: "database_identity") { t in t.column("id", .text).notNull() }
            let bytes = (0..<16).map { _ in UInt8.random(in: 0...255) }
            try db.execute(sql: "INSERT INTO database_identity (id) VALUES (?)",
                           arguments: [bytes.map { String(format: "%02x", $0) }.joined()])
        }
        m.registerMigration("v5-instance-message") { db in
            // A master fails an instance it cannot run (a stored definition that no longer reads)
            // with the reason, instead of exiting on it at every start.
            try db.alter(table: "workflow_instance") { t in t.add(column: "message", .text) }
        }
        m.registerMigration("v6-instance-control") { db in
            // Runs: resume, recover, rerun and start-from run an instance again as run n+1; its
            // attempts carry the run, and the successes an earlier run handed on are named in
            // kept_json (task name -> the attempt that succeeded). Where the owning master applied a
            // pause or a stop, in the event order, so that a takeover replays it at the same point.
            try db.alter(table: "workflow_instance") { t in
                t.add(column: "run", .integer).notNull().defaults(to: 1)
                t.add(column: "kept_json", .text)
                t.add(column: "pause_seq", .integer)
                t.add(column: "stop_seq", .integer)
            }
            try db.alter(table: "task_instance") { t in t.add(column: "run", .integer).notNull().defaults(to: 1) }
            // The task a START_FROM command starts from.
            try db.alter(table: "command") { t in t.add(column: "task_name", .text) }
            try db.create(index: "command_by_instance", on: "command", columns: ["workflow_instance_id"])
            try db.create(index: "workflow_instance_by_name", on: "workflow_instance", columns: ["name", "id"])
        }
        m.registerMigration("v7-command-attempt") { db in
            // The attempt a REMOVE command (`ds-queue remove`) takes out of the queue.
            try db.alter(table: "command") { t in t.add(column: "task_instance_id", .integer) }
        }
        m.registerMigration("v8-branch") { db in
            // A decided CONDITIONS or SWITCH node: the tasks its branch chose, as a JSON list, so
            // that a master taking over rebuilds the same instance without deciding again.
            try db.alter(table: "task_instance") { t in t.add(column: "branch_json", .text) }
        }
        m.registerMigration("v9-alert") { db in
            // What operators are told: task timeouts and workflow timeouts now, delivered by the
            // schedules issue's --alert-command. dedup_key makes each event one row, whichever
            // master (or how many) noticed it.
            try db.create(table: "alert") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("kind", .text).notNull()
                t.column("dedup_key", .text).notNull().unique()
                t.column("workflow_instance_id", .integer)
                t.column("task_instance_id", .integer)
                t.column("content_json", .text).notNull()
                t.column("create_time", .double).notNull()
                t.column("state", .text).notNull().defaults(to: "PENDING")
                t.column("attempts", .integer).notNull().defaults(to: 0)
                t.column("last_error", .text)
                t.column("sent_time", .double)
            }
            try db.create(index: "alert_by_state", on: "alert", columns: ["state", "id"])
            try db.alter(table: "workflow_instance") { t in t.add(column: "run_start_time", .double) }
        }
        m.registerMigration("v10-serial-execution") { db in
            // The execution type of the instance's definition (nil: PARALLEL), so that a claim
            // finds the instances it may start in SQL, without reading definitions.
            try db.alter(table: "workflow_instance") { t in t.add(column: "execution", .text) }
            // The instances of a name that run, and those that wait to start: a claim probes them
            // per command. Partial, so that 200,000 finished instances of one name cost nothing
            // (the claim took 82 s on such a table without them, 1.6 ms with them). The queries
            // must spell the state lists exactly so for SQLite to use them.
            try db.execute(sql: "CREATE INDEX workflow_instance_active_by_name ON workflow_instance(name) WHERE state IN \(WorkflowState.activeSQL)")
            try db.execute(sql: "CREATE INDEX workflow_instance_waiting_by_name ON workflow_instance(name) WHERE state IN \(WorkflowState.waitingSQL)")
        }
        m.registerMigration("v11-task-pool") { db in
            // Named pools of slots shared across workflows (ds-pool). A slot is held by an attempt
            // of a pooled task while it is DISPATCHED or RUNNING: counted from the rows, never
            // kept as a counter, so no master's or worker's death can leak one.
            try db.create(table: "task_pool") { t in
                t.primaryKey("name", .text)
                t.column("slots", .integer).notNull()
                t.column("created_at", .double).notNull()
            }
            try db.alter(table: "task_instance") { t in t.add(column: "pool", .text) }
            try db.create(index: "task_instance_by_pool", on: "task_instance", columns: ["pool", "state"])
        }
        m.registerMigration("v12-sub-process") { db in
            // A SUB_PROCESS attempt starts a child instance in the same transaction: the attempt
            // names its child, the child names its parent instance and attempt.
            try db.alter(table: "task_instance") { t in
                t.add(column: "child_instance_id", .integer)
                // SUB_PROCESS and DEPENDENT attempts run on their master: in no queue, on no worker.
                t.add(column: "on_master", .boolean).notNull().defaults(to: false)
            }
            try db.alter(table: "workflow_instance") { t in
                t.add(column: "parent_instance_id", .integer)
                t.add(column: "parent_task_instance_id", .integer)
            }
            try db.create(index: "workflow_instance_by_parent", on: "workflow_instance", columns: ["parent_instance_id"])
        }
        m.registerMigration("v13-schedule") { db in
            // Cron schedules (ds-schedule). next_fire_time is the fire time a master fires next:
            // the master that fires moves it on in the transaction that stores the instance, so a
            // fire time starts one instance however many masters see it due.
            try db.create(table: "schedule") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("workflow", .text).notNull()
                t.column("cron", .text).notNull()
                t.column("time_zone", .text).notNull()
                t.column("start_time", .double)
                t.column("end_time", .double)
                t.column("priority", .text)
                t.column("params_json", .text).notNull()
                t.column("catchup", .text).notNull()
                t.column("state", .text).notNull()
                t.column("next_fire_time", .double)
                t.column("last_fire_time", .double)
                t.column("created_at", .double).notNull()
            }
            try db.create(index: "schedule_due", on: "schedule", columns: ["state", "next_fire_time"])
            // Backfills (ds-schedule backfill): one instance per business date, at most
            // `parallel` of them running at once.
            try db.create(table: "backfill") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("workflow", .text).notNull()
                t.column("from_date", .text).notNull()
                t.column("to_date", .text).notNull()
                t.column("parallel", .integer).notNull()
                t.column("time_zone", .text).notNull()
                t.column("created_at", .double).notNull()
            }
            try db.alter(table: "workflow_instance") { t in
                // The fire time (or backfill date's time) the instance stands for: built-in
                // parameters resolve from it, in time_zone, not from when a master got to it.
                t.add(column: "schedule_id", .integer)
                t.add(column: "schedule_time", .double)
                t.add(column: "time_zone", .text)
                t.add(column: "backfill_id", .integer)
                // A missed fire time run late under the schedule's catch-up policy.
                t.add(column: "caught_up", .boolean)
            }
            // The last line of defence against a double fire: one instance per (schedule, fire time).
            try db.execute(sql: "CREATE UNIQUE INDEX workflow_instance_by_fire ON workflow_instance(schedule_id, schedule_time) WHERE schedule_id IS NOT NULL")
            // A claim counts the running instances of a backfill for each of its waiting dates.
            try db.execute(sql: "CREATE INDEX workflow_instance_by_backfill ON workflow_instance(backfill_id, state) WHERE backfill_id IS NOT NULL")
            // Delivery by --alert-command: a master leases an alert while its command runs
            // (owner, lease_until); a failure is retried at next_attempt_time.
            try db.alter(table: "alert") { t in
                t.add(column: "owner", .text)
                t.add(column: "lease_until", .double)
                t.add(column: "next_attempt_time", .double)
            }
        }
        m.registerMigration("v14-mend-shipped-schemas") { db in
            // v10, v12 and v13 were edited after they had shipped, and a database that ran a
            // shipped text never runs the edited one: each lacks what the edit added. Mended here,
            // each part only where it is missing (a database made by the final texts has it all).
            // The texts are frozen, as a migration's are: not read from constants that may change.
            // v10 as shipped (3396305): no partial indexes of the instances that run or wait.
            try db.execute(sql: "CREATE INDEX IF NOT EXISTS workflow_instance_active_by_name ON workflow_instance(name) WHERE state IN ('RUNNING', 'READY_PAUSE', 'READY_STOP')")
            try db.execute(sql: "CREATE INDEX IF NOT EXISTS workflow_instance_waiting_by_name ON workflow_instance(name) WHERE state IN ('SUBMITTED', 'WAITING_THREAD')")
            // v12 as shipped (60027b8): no on_master, so no SUB_PROCESS or DEPENDENT attempt could be stored.
            if try !db.columns(in: "task_instance").contains(where: { $0.name == "on_master" }) {
                try db.alter(table: "task_instance") { t in t.add(column: "on_master", .boolean).notNull().defaults(to: false) }
            }
            // v13 as shipped (4adbaab): no caught_up, so no instance could be stored, and the
            // backfill index without the state a claim counts by.
            if try !db.columns(in: "workflow_instance").contains(where: { $0.name == "caught_up" }) {
                try db.alter(table: "workflow_instance") { t in t.add(column: "caught_up", .boolean) }
            }
            if try db.indexes(on: "workflow_instance").first(where: { $0.name == "workflow_instance_by_backfill" })?.columns == ["backfill_id"] {
                try db.execute(sql: "DROP INDEX workflow_instance_by_backfill")
                try db.execute(sql: "CREATE INDEX workflow_instance_by_backfill ON workflow_instance(backfill_id, state) WHERE backfill_id IS NOT NULL")
            }
        }
        m.registerMigration("v15-instance-by-name-and-time") { db in
            // A DEPENDENT item looks for the latest instance of a name in a window of its fire
            // time, else its start time, about once a second per waiting item: by (name, id) it
            // read every instance the name ever had (45-58 ms at 200,000 of them). This index
            // bounds the read to the window, newest first; the query spells the expression
            // exactly so (Store.latestInWindowSQL), or SQLite cannot use it.
            try db.execute(sql: "CREATE INDEX workflow_instance_by_name_and_time ON workflow_instance(name, COALESCE(schedule_time, start_time))")
        }
        m.registerMigration("v16-prune") { db in
            // ds-instance prune and --prune-older-than select the oldest finished top-level
            // instances (parent_instance_id IS NULL) by end time: partial, so that the running ones
            // cost nothing, and spelled exactly as the query (Store.prunableSQL), or SQLite cannot
            // use it. The parent comes first: by end_time alone, SQLite preferred
            // workflow_instance_by_parent, which reads every top-level instance and sorts them.
            try db.execute(sql: "CREATE INDEX workflow_instance_prunable ON workflow_instance(parent_instance_id, end_time) WHERE state IN ('SUCCESS', 'FAILURE', 'STOP')")
            // A pruned instance's alerts go with it; without this, every batch read every alert.
            try db.execute(sql: "CREATE INDEX alert_by_instance ON alert(workflow_instance_id)")
            // The claim's serial checks (another instance of the name runs; an earlier start of it
            // waits): since v15, SQLite preferred workflow_instance_by_name_and_time (name=?) to
            // v10's partial indexes on (name) and read every instance the name ever had (a sqlite3
            // run of the check took 35 ms at 200,000 of them, per claim; 3 ms, startup included,
            // with these). With the state in the index too, SQLite takes these; v10's are redundant.
            try db.execute(sql: "CREATE INDEX workflow_instance_active_by_name_state ON workflow_instance(name, state) WHERE state IN ('RUNNING', 'READY_PAUSE', 'READY_STOP')")
            try db.execute(sql: "CREATE INDEX workflow_instance_waiting_by_name_state ON workflow_instance(name, state) WHERE state IN ('SUBMITTED', 'WAITING_THREAD')")
            try db.execute(sql: "DROP INDEX IF EXISTS workflow_instance_active_by_name")
            try db.execute(sql: "DROP INDEX IF EXISTS workflow_instance_waiting_by_name")
        }
        return m
    }
}
