import Foundation

/// The name of a queue node: it sorts in dispatch order (workflow priority, workflow instance
/// id, task priority, task instance id), so the first child of `/queue/<group>` runs first.
public struct TaskQueueKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var workflowPriority: Priority
    public var workflowInstanceId: Int64
    public var taskPriority: Priority
    public var taskInstanceId: Int64

    public init(workflowPriority: Priority, workflowInstanceId: Int64, taskPriority: Priority, taskInstanceId: Int64) {
        self.workflowPriority = workflowPriority
        self.workflowInstanceId = workflowInstanceId
        self.taskPriority = taskPriority
        self.taskInstanceId = taskInstanceId
    }

    /// e.g. `1-000000000042-0-000000000107`.
    public var description: String {
        "\(workflowPriority.rank)-\(pad(workflowInstanceId))-\(taskPriority.rank)-\(pad(taskInstanceId))"
    }

    /// The largest instance id a name holds: names pad ids to 12 digits, and a longer id would sort
    /// as text before shorter ones, so workers (who order a queue by name) and masters (who order
    /// their backlog with `<`) would disagree; such a name does not decode. SQLite ids reach it
    /// after a trillion rows.
    public static let maxId: Int64 = 999_999_999_999

    /// Decodes a name exactly as `description` writes it: a priority digit (0 to 4), an id of 12
    /// digits, a priority digit, an id of 12 digits. Nil for any other text (signs, other widths,
    /// empty fields), so that every name that decodes sorts as its key does.
    public init?(_ text: String) {
        let parts = text.utf8.split(separator: UInt8(ascii: "-"), omittingEmptySubsequences: false)
        guard parts.count == 4,
              zip(parts, Self.fieldWidths).allSatisfy({ part, width in
                  part.count == width && part.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
              }),
              let wp = Int(Substring(parts[0])), let wi = Int64(Substring(parts[1])),
              let tp = Int(Substring(parts[2])), let ti = Int64(Substring(parts[3])),
              Priority.allCases.indices.contains(wp), Priority.allCases.indices.contains(tp)
        else { return nil }
        self.init(workflowPriority: Priority.allCases[wp], workflowInstanceId: wi,
                  taskPriority: Priority.allCases[tp], taskInstanceId: ti)
    }

    private static let fieldWidths = [1, 12, 1, 12]

    /// The order of the node names (which workers sort as text), field by field: the master's
    /// backlog compares keys millions of times and must not build two strings each time.
    public static func < (a: TaskQueueKey, b: TaskQueueKey) -> Bool {
        (a.workflowPriority.rank, a.workflowInstanceId, a.taskPriority.rank, a.taskInstanceId)
            < (b.workflowPriority.rank, b.workflowInstanceId, b.taskPriority.rank, b.taskInstanceId)
    }

    private func pad(_ n: Int64) -> String {
        let s = String(n)
        return String(repeating: "0", count: max(0, 12 - s.count)) + s
    }
}

/// A task ready to run, as a master writes it into `/queue/<group>/<key>`.
public struct QueuedTask: Codable, Sendable, Equatable {
    public var taskInstanceId: Int64
    public var workflowInstanceId: Int64
    public var workflowName: String
    public var taskName: String
    public var attempt: Int
    public var command: String
    public var env: [String: String]
    public var timeout: Double?
    public var timeoutStrategy: TimeoutStrategy
    /// The master that dispatched it.
    public var master: String
    /// The OS user it runs as (the task's or workflow's `tenant`); nil: the worker's default tenant.
    public var tenant: String?
    /// The output parameters it may set (the workflow's `params` and the task's `outputs`); nil,
    /// in an item written before the field, is none.
    public var outputs: [String]?
    /// The task's `memory_max` in bytes and `cpu_quota` in percent of a core (nil: none asked).
    public var memoryMax: Int64?
    public var cpuQuota: Int?

    public init(taskInstanceId: Int64, workflowInstanceId: Int64, workflowName: String, taskName: String, attempt: Int,
                command: String, env: [String: String], timeout: Double?, timeoutStrategy: TimeoutStrategy, master: String,
                tenant: String? = nil, outputs: [String]? = nil) {
        self.tenant = tenant
        self.outputs = outputs
        self.taskInstanceId = taskInstanceId
        self.workflowInstanceId = workflowInstanceId
        self.workflowName = workflowName
        self.taskName = taskName
        self.attempt = attempt
        self.command = command
        self.env = env
        self.timeout = timeout
        self.timeoutStrategy = timeoutStrategy
        self.master = master
    }
}

/// Who runs a task, in the ephemeral `/running/<task-instance-id>` of the worker's session.
public struct RunningTask: Codable, Sendable {
    public var worker: String
    public var pid: Int32?
    public var startTime: Double
    public var logPath: String
    /// The worker's log server, `host:port`, when it listens (`ds-logs` reads the log there).
    public var listen: String?
}

/// How an attempt ended, in `/results/<task-instance-id>` until a master has stored it.
public struct TaskResultMessage: Codable, Sendable {
    public var taskInstanceId: Int64
    public var state: TaskState
    public var exitCode: Int32?
    public var worker: String
    public var pid: Int32?
    public var logPath: String
    public var startTime: Double
    public var endTime: Double
    public var outputs: [String: String]
    public var message: String?
    /// Killed at its timeout (FAIL, WARNFAIL).
    public var timedOut: Bool?
    /// NEED_FAULT_TOLERANCE because the worker's task supervisor died while it ran (a task may have
    /// killed it): masters fail a task whose attempts keep doing so (`Limits.supervisorDeathsBeforeFailure`).
    public var supervisorLost: Bool?

    /// How the message of such an attempt begins, as stored: what masters count.
    public static let supervisorLostMessage = "killed: the task supervisor of its worker died while it ran"

    public init(taskInstanceId: Int64, state: TaskState, exitCode: Int32?, worker: String, pid: Int32?, logPath: String,
                startTime: Double, endTime: Double, outputs: [String: String], message: String?) {
        self.taskInstanceId = taskInstanceId
        self.state = state
        self.exitCode = exitCode
        self.worker = worker
        self.pid = pid
        self.logPath = logPath
        self.startTime = startTime
        self.endTime = endTime
        self.outputs = outputs
        self.message = message
    }
}

/// The heartbeat a daemon keeps in its registry node.
public struct Heartbeat: Codable, Sendable {
    public var pid: Int32
    public var startTime: Double
    public var loadAverage: Double
    public var rssBytes: Int64
    public var activeInstances: Int?
    public var slots: Int?
    public var freeSlots: Int?
    public var groups: [String]?
    /// A master's database: the id it was made with, and the path this master opened.
    public var database: String?
    public var databasePath: String?
    /// A master's backlog: per worker group, the ready attempts waiting outside ZooKeeper, by the
    /// workflow priority that leads their keys (5 counts, HIGHEST first). Published within a
    /// second of a change, so that `ds-queue stats` needs ZooKeeper only.
    public var backlog: [String: [Int]]?
    /// The daemon's HTTP address, `host:port`, when it listens (`/metrics`, `/healthz`; a worker's `/logs`).
    public var listen: String?
}

/// The snake_case JSON used on the wire and in `--json` output.
public enum WireJSON {
    public static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // A non-finite number is written as a string rather than making the encoder throw: with
        // it, encoding these plain value types cannot fail, so `encode` cannot trap.
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }()
    public static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return d
    }()
    public static func encode<T: Encodable>(_ value: T) -> Data { try! encoder.encode(value) }
    public static func decode<T: Decodable>(_ type: T.Type, _ data: Data) throws -> T { try decoder.decode(type, from: data) }
    public static func string<T: Encodable>(_ value: T) -> String { String(decoding: encode(value), as: UTF8.self) }
}

/// Kinds of alert.
public enum AlertKind: String, Codable, Sendable, CaseIterable {
    /// A task still runs after its timeout (WARN), or was killed at it (WARNFAIL).
    case taskTimeout = "TASK_TIMEOUT"
    /// A workflow instance still runs after its workflow's `timeout`.
    case workflowTimeout = "WORKFLOW_TIMEOUT"
    /// An instance of a workflow whose `warning` is SUCCESS or ALL succeeded.
    case workflowSuccess = "WORKFLOW_SUCCESS"
    /// An instance of a workflow whose `warning` is FAILURE or ALL ended FAILURE or STOP.
    case workflowFailure = "WORKFLOW_FAILURE"
    /// A master or a worker left the registry: it stopped, died or lost its session.
    case serverDown = "SERVER_DOWN"
}

/// An alert as stored, and as an alert command will read it on its standard input (snake_case
/// keys: `task_instance`, `timeout_seconds`).
public struct AlertContent: Codable, Sendable, Equatable {
    public var kind: AlertKind
    /// One line for a human: what happened, to what, where.
    public var title: String
    public var workflow: String?
    public var instance: Int64?
    public var run: Int?
    public var task: String?
    public var taskInstance: Int64?
    public var attempt: Int?
    public var worker: String?
    public var timeoutSeconds: Double?
    /// How the instance ended (WORKFLOW_SUCCESS, WORKFLOW_FAILURE).
    public var state: String?
    /// The fire time of a scheduled instance (seconds since the epoch).
    public var scheduleTime: Double?
    /// The server that left (SERVER_DOWN): `master` or `worker`, and its `host:port`.
    public var serverType: String?
    public var server: String?
    /// When it was noticed (seconds since the epoch).
    public var time: Double
    /// Set on delivery only: the alert's row id and its event key (a command that may see an
    /// alert twice, after a master died while delivering it, tells them apart by these), and
    /// which delivery this is (1 for the first).
    public var id: Int64?
    public var key: String?
    public var delivery: Int?

    public init(kind: AlertKind, title: String, time: Double) {
        self.kind = kind
        self.title = title
        self.time = time
    }
}
