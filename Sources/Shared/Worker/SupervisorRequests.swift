import Foundation

/// The requests the worker writes to `task-supervisor` (see its main.c and request.h for the
/// wire format): what a spawn request holds, and the task id every request carries.
extension TaskSupervisor {
    /// The longest request the supervisor reads (REQUEST_MAX_SIZE in its request.h); a longer one
    /// would make it exit as misused, taking every running task with it.
    static let maxRequestBytes = 16 << 20

    /// The spawn request for one task: log path, command and `NAME=value` entries, each ended by a
    /// NUL. A string that holds a NUL itself would be cut there, the rest read as one more
    /// environment variable, so it is refused (the task fails, the worker runs on), as is a
    /// request longer than `maxRequestBytes`. Each option (`log_max`, `nofile`, `uid`, `gid`,
    /// `groups`, `cwd`, `cgroup`, `memory_max`, `cpu_quota`: see the supervisor's request.h) goes as
    /// `\u{1}key=value`, which no environment name can begin with.
    static func spawnRequest(id: Int64, command: String, environment: [String: String], logPath: String,
                             options: [(String, String)] = []) throws -> [UInt8] {
        var message: [UInt8] = [UInt8(ascii: "S")]
        append(id, to: &message)
        for (what, field) in [("log path", logPath), ("command", command)] {
            if field.utf8.contains(0) { throw WorkerError.refusedItem("its \(what) holds a NUL character") }
            message.append(contentsOf: field.utf8)
            message.append(0)
        }
        for (key, value) in options {
            if value.utf8.contains(0) { throw WorkerError.refusedItem("its supervisor option \(key) holds a NUL character") }
            message.append(1)
            message.append(contentsOf: "\(key)=\(value)".utf8)
            message.append(0)
        }
        for (key, value) in environment.sorted(by: { $0.key < $1.key }) {
            if key.isEmpty || key.utf8.contains(0) || key.utf8.first == 1 || key.contains("=") || value.utf8.contains(0) {
                throw WorkerError.refusedItem("its environment variable \(Limits.quoted(key)) has a name or value no process can hold")
            }
            message.append(contentsOf: key.utf8)
            message.append(UInt8(ascii: "="))
            message.append(contentsOf: value.utf8)
            message.append(0)
        }
        if message.count > maxRequestBytes {
            throw WorkerError.refusedItem("its command and environment take \(Limits.size(message.count)); at most \(Limits.size(maxRequestBytes)) can start")
        }
        return message
    }

    static func append(_ id: Int64, to message: inout [UInt8]) {
        withUnsafeBytes(of: UInt64(bitPattern: id)) { message.append(contentsOf: $0) }
    }
}
