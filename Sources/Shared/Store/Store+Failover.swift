import Foundation

extension Store {
    /// How many attempts of `task` in `run` of the instance ended because their worker's task
    /// supervisor died under them (`TaskResultMessage.supervisorLostMessage`).
    public func supervisorDeaths(instance: Int64, task: String, run: Int) async throws -> Int {
        try await read("counting supervisor deaths of '\(task)' in instance \(instance)") { db in
            try Int.fetchOne(db, sql: """
                SELECT COUNT(*) FROM task_instance
                WHERE workflow_instance_id = ? AND task_name = ? AND run = ? AND state = 'NEED_FAULT_TOLERANCE'
                  AND substr(message, 1, ?) = ?
                """, arguments: [instance, task, run, TaskResultMessage.supervisorLostMessage.count,
                                 TaskResultMessage.supervisorLostMessage]) ?? 0
        }
    }
}
