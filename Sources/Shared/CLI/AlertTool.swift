import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An alert as `ds-alert` prints it with `--json`: every key always present (null when it does
/// not apply), times as RFC 3339 UTC strings, durations in seconds; no internal column (the
/// delivering master and its lease). man/ds-alert.1 lists the keys; a test checks that it does.
public struct AlertView: Encodable, Sendable {
    public var id: Int64
    public var kind: String
    public var state: String
    public var title: String
    /// The event's key: one alert per key (`WORKFLOW_FAILURE:12:1`), as the alert command gets it.
    public var key: String
    public var createdAt: String
    public var workflow: String?
    public var instance: Int64?
    public var run: Int?
    public var task: String?
    public var taskInstance: Int64?
    public var attempt: Int?
    public var worker: String?
    public var serverType: String?
    public var server: String?
    public var timeoutSeconds: Double?
    /// How the instance ended (WORKFLOW_SUCCESS, WORKFLOW_FAILURE alerts).
    public var instanceState: String?
    public var scheduleTime: String?
    /// Deliveries tried so far, and how the last failed one failed (the command's exit and the end of its stderr).
    public var deliveries: Int
    public var lastError: String?
    public var sentAt: String?
    public var nextAttemptAt: String?
    public var acked: Bool
    public var ackedAt: String?
    public var ackedBy: String?
    /// The row it shows (not encoded): the human output prints its times in local time.
    let record: AlertRecord

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case id, kind, state, title, key, createdAt = "created_at", workflow, instance, run, task, taskInstance = "task_instance",
             attempt, worker, serverType = "server_type", server, timeoutSeconds = "timeout_seconds", instanceState = "instance_state",
             scheduleTime = "schedule_time", deliveries, lastError = "last_error", sentAt = "sent_at", nextAttemptAt = "next_attempt_at",
             acked, ackedAt = "acked_at", ackedBy = "acked_by"
    }

    public init(_ a: AlertRecord) {
        record = a
        let c = a.content
        id = a.id ?? 0
        (kind, state, key) = (a.kind.rawValue, a.state, a.dedupKey)
        title = c?.title ?? "(its stored content does not read)"
        createdAt = TimeText.utc(a.createTime)
        workflow = c?.workflow
        instance = a.workflowInstanceId ?? c?.instance
        (run, task, attempt, worker) = (c?.run, c?.task, c?.attempt, c?.worker)
        taskInstance = a.taskInstanceId ?? c?.taskInstance
        (serverType, server, timeoutSeconds, instanceState) = (c?.serverType, c?.server, c?.timeoutSeconds, c?.state)
        scheduleTime = c?.scheduleTime.map(TimeText.utc)
        (deliveries, lastError) = (a.attempts, a.lastError)
        sentAt = a.sentTime.map(TimeText.utc)
        // A retry time means something only while the alert waits for it.
        nextAttemptAt = a.state == "PENDING" ? a.nextAttemptTime.map(TimeText.utc) : nil
        (acked, ackedAt, ackedBy) = (a.ackTime != nil, a.ackTime.map(TimeText.utc), a.ackTime == nil ? nil : a.ackBy)
    }

    /// Every key, null included: a script reads `.acked_by` without asking whether it is there.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id); try c.encode(kind, forKey: .kind); try c.encode(state, forKey: .state)
        try c.encode(title, forKey: .title); try c.encode(key, forKey: .key); try c.encode(createdAt, forKey: .createdAt)
        try c.encode(workflow, forKey: .workflow); try c.encode(instance, forKey: .instance); try c.encode(run, forKey: .run)
        try c.encode(task, forKey: .task); try c.encode(taskInstance, forKey: .taskInstance); try c.encode(attempt, forKey: .attempt)
        try c.encode(worker, forKey: .worker); try c.encode(serverType, forKey: .serverType); try c.encode(server, forKey: .server)
        try c.encode(timeoutSeconds, forKey: .timeoutSeconds); try c.encode(instanceState, forKey: .instanceState)
        try c.encode(scheduleTime, forKey: .scheduleTime); try c.encode(deliveries, forKey: .deliveries)
        try c.encode(lastError, forKey: .lastError); try c.encode(sentAt, forKey: .sentAt); try c.encode(nextAttemptAt, forKey: .nextAttemptAt)
        try c.encode(acked, forKey: .acked); try c.encode(ackedAt, forKey: .ackedAt); try c.encode(ackedBy, forKey: .ackedBy)
    }
}

/// `ds-alert`: the alerts masters recorded, as tables and JSON, and their acknowledgement.
public enum AlertTool {
    static let tool = "ds-alert"

    /// The newest `limit` alerts of `query` (0: all): a table, ids only (`quiet`), or one JSON array.
    public static func list(_ query: AlertQuery, limit: Int, json: Bool, quiet: Bool, configuration: Configuration) async throws -> ExitStatus {
        var query = query
        query.limit = ListOutput.fetchCount(limit)
        let alerts = ListOutput.cut(try await configuration.openStore().alerts(query), limit: limit, tool: tool, noun: "alerts")
        if quiet {
            for a in alerts { print(a.id ?? 0) }
        } else if json {
            print(WireJSON.string(alerts.map(AlertView.init)))
        } else {
            var printer = TablePrinter(columns: ["ID", "KIND", "STATE", "CREATED", "DELIVERIES", "ACKED_BY", "WORKFLOW", "INSTANCE", "TITLE"])
            for a in alerts.map(AlertView.init) {
                printer.add([String(a.id), a.kind, a.state, InstanceTool.time(a.record.createTime), String(a.deliveries),
                             a.ackedBy ?? (a.acked ? "?" : "-"), a.workflow ?? "-", a.instance.map(String.init) ?? "-", a.title])
            }
            print(printer.render(), terminator: "")
        }
        return .success
    }

    /// Everything about one alert; an unknown id exits 65 naming it.
    public static func show(_ id: Int64, json: Bool, configuration: Configuration) async throws -> ExitStatus {
        guard let alert = try await configuration.openStore().alert(id) else { throw unknown([id]) }
        let view = AlertView(alert)
        print(json ? WireJSON.string(view) : human(view), terminator: json ? "\n" : "")
        return .success
    }

    /// Acknowledges every alert of `ids` as `by`, or none when one is unknown (exit 65 naming them).
    public static func ack(_ ids: [Int64], by: String, json: Bool, configuration: Configuration) async throws -> ExitStatus {
        switch try await configuration.openStore().acknowledgeAlerts(ids, by: by, now: ProcessStats.now()) {
        case .unknown(let missing):
            throw unknown(missing)
        case .done(let newly, let alerts):
            if json { print(WireJSON.string(alerts.map(AlertView.init))); return .success }
            for a in alerts.map(AlertView.init) {
                let who = Limits.quoted(a.ackedBy ?? "?", max: 128)
                print(newly.contains(a.id) ? "alert \(a.id): acknowledged by \(who)"
                      : "alert \(a.id): already acknowledged by \(who) at \(InstanceTool.time(a.record.ackTime ?? 0))")
            }
            return .success
        }
    }

    static func unknown(_ ids: [Int64]) -> ControlRefusal {
        let named = ids.prefix(10).map(String.init).joined(separator: ", ") + (ids.count > 10 ? " and \(ids.count - 10) more" : "")
        return ControlRefusal(description: "no alert \(named) (nothing was acknowledged or changed); see ds-alert list --limit 0",
                              exitStatus: .dataError)
    }

    /// The human `show`: one `label: value` line each, every value escaped.
    static func human(_ a: AlertView) -> String {
        var lines: [(String, String?)] = [
            ("alert", "\(a.id)"), ("kind", a.kind), ("state", a.state), ("title", a.title), ("key", a.key),
            ("created", InstanceTool.time(a.record.createTime)),
            ("workflow", a.workflow), ("instance", a.instance.map { i in a.run.map { "\(i) (run \($0))" } ?? "\(i)" }),
            ("task", a.task), ("task instance", a.taskInstance.map { t in a.attempt.map { "\(t) (attempt \($0))" } ?? "\(t)" }),
            ("worker", a.worker), ("server", a.server.map { s in a.serverType.map { "\($0) \(s)" } ?? s }),
            ("timeout", a.timeoutSeconds.map(DurationText.format)), ("instance state", a.instanceState),
            ("schedule time", a.record.content?.scheduleTime.map(InstanceTool.time)),
            ("deliveries", "\(a.deliveries)"), ("last error", a.lastError),
            ("sent", a.record.sentTime.map(InstanceTool.time)),
            ("next attempt", a.nextAttemptAt == nil ? nil : a.record.nextAttemptTime.map(InstanceTool.time)),
        ]
        lines.append(("acknowledged", a.acked ? "by \(a.ackedBy ?? "?") at \(InstanceTool.time(a.record.ackTime ?? 0))" : "no"))
        let shown = lines.compactMap { label, value in value.map { (label, $0) } }
        let width = shown.map(\.0.count).max() ?? 0
        return shown.map { label, value in
            label + ":" + String(repeating: " ", count: width - label.count + 2) + Limits.escaped(value)
        }.joined(separator: "\n") + "\n"
    }

    /// Who acknowledges by default: the login name of the user running the tool.
    public static func defaultAcknowledger(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let entry = getpwuid(getuid()), let name = entry.pointee.pw_name, !String(cString: name).isEmpty { return String(cString: name) }
        return environment["USER"].flatMap { $0.isEmpty ? nil : $0 } ?? "uid \(getuid())"
    }

    /// Why `--by` is refused, or nil: 1 to 128 characters, no control or invisible character.
    public static func acknowledgerProblem(_ name: String) -> String? {
        if name.isEmpty { return "is empty: give who acknowledges, such as --by alice" }
        if name.count > 128 { return "is \(name.count) characters long; at most 128" }
        if Limits.escaped(name) != name { return "holds a control or invisible character" }
        return nil
    }
}
