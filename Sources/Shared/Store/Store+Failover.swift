import Foundation

extension Store {
    /// How many attempts of `task` in `run` of the instance ended because their worker's task
    /// supervisor died under them (`TaskResultMessage.supervisorLostMessage`).
    public func supervisorDeaths(instance: Int64, task: String, run: Int) async throws -> Int {
        // The length is our own constant, spelled into the SQL: PostgreSQL's substr takes an
        // integer, not the bigint a bound value would be.
        try await read("counting supervisor deaths of '\(task)' in instance \(instance)") { db in
            try Int.fetchOne(db, sql: """
                SELECT COUNT(*) FROM task_instance
                WHERE workflow_instance_id = ? AND task_name = ? AND run = ? AND state = 'NEED_FAULT_TOLERANCE'
                  AND substr(message, 1, \(TaskResultMessage.supervisorLostMessage.count)) = ?
                """, arguments: [instance, task, run, TaskResultMessage.supervisorLostMessage]) ?? 0
        }
    }
}
