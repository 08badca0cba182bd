import Foundation

/// Where one dependency of a DEPENDENT node stands.
public enum DependencyState: Sendable, Equatable {
    case satisfied(String)
    case failed(String)
    case pending(String)
}

extension Store {
    /// The latest instance of a name in a window [from, to) of its fire or start time, besides one.
    /// The time is spelled as in the index `workflow_instance_by_name_and_time` (migration
    /// v15), so that SQLite reads only the window's rows of the name, newest first, not every
    /// instance the workflow ever had (a master checks each waiting item about once a second).
    static let latestInWindowSQL = """
        SELECT * FROM workflow_instance
        WHERE name = ? AND COALESCE(schedule_time, start_time) >= ? AND COALESCE(schedule_time, start_time) < ? AND id <> ?
        ORDER BY COALESCE(schedule_time, start_time) DESC, id DESC LIMIT 1
        """

    /// Where `item` stands for an instance that ran at `runTime` (`besides`: that instance, never
    /// its own dependency): the latest instance of the workflow that started in the window (a
    /// scheduled one by its fire time), and the latest attempt of the task in its current run if
    /// one is named.
    public func dependencyState(_ item: DependencyItem, runTime: Double, timeZone: TimeZone, besides: Int64) async throws -> DependencyState {
        let (from, to) = item.window.interval(runTime: runTime, timeZone: timeZone)
        let what = "\(Limits.quoted(item.workflow))\(item.task.map { " task \(Limits.quoted($0))" } ?? "") \(item.window.rawValue)"
        return try await read("reading instances of '\(item.workflow)'") { db in
            guard let instance = try WorkflowInstanceRecord.fetchOne(db, sql: Self.latestInWindowSQL,
                                                                     arguments: [item.workflow, from, to, besides]) else {
                return .pending("no instance of \(what) yet")
            }
            let id = instance.id!
            guard let taskName = item.task else {
                switch instance.state {
                case .success: return .satisfied("instance \(id) of \(what) succeeded")
                case .failure, .stop: return .failed("instance \(id) of \(what) ended \(instance.state.rawValue)")
                default: return .pending("instance \(id) of \(what) is \(instance.state.rawValue)")
                }
            }
            let attempt = try TaskInstanceRecord.fetchOne(db, sql: """
                SELECT * FROM task_instance WHERE workflow_instance_id = ? AND task_name = ? AND run = ? ORDER BY id DESC LIMIT 1
                """, arguments: [id, taskName, instance.run])
            switch attempt?.state {
            case .success?, .forcedSuccess?: return .satisfied("task \(Limits.quoted(taskName)) of instance \(id) succeeded")
            case .failure?, .kill?:
                if instance.state.isTerminal { return .failed("task \(Limits.quoted(taskName)) of instance \(id) of \(what) ended \(attempt!.state.rawValue)") }
                return .pending("task \(Limits.quoted(taskName)) of instance \(id) failed; the instance still runs")
            default:
                if instance.state.isTerminal && instance.state != .pause {
                    return .failed("task \(Limits.quoted(taskName)) never succeeded in instance \(id) of \(what), which ended \(instance.state.rawValue)")
                }
                return .pending("task \(Limits.quoted(taskName)) of instance \(id) of \(what) has not succeeded yet")
            }
        }
    }
}
