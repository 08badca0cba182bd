import Foundation

/// Where `ds-logs` may read a task's log on this machine: only a file under the log root it is
/// configured with (`--log-dir`, default `$DS_HOME/logs`), of the form the workers write,
/// `<root>/<worker>/<workflow-instance-id>/<task-instance-id>.log`, for that very attempt. A path
/// stored in ZooKeeper or the database is input (a forged result can name `/etc/shadow`): it is
/// checked, never trusted.
public enum LocalLogPath {
    /// The path to read for attempt `id` of workflow instance `workflowInstance`, or why not.
    public static func check(_ stored: String, root: String, workflowInstance: Int64, id: Int64) -> Result<String, Refusal> {
        guard let realRoot = resolve(root) else { return .failure(Refusal(reason: "the log root \(root) does not exist here")) }
        let parts = stored.split(separator: "/", omittingEmptySubsequences: false)
        guard stored.hasPrefix("/"), !parts.dropFirst().contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
            return .failure(Refusal(reason: "\(Limits.quoted(stored)) is not a plain absolute path"))
        }
        guard let real = resolve(stored) else { return .failure(Refusal(reason: "\(stored) is not on this machine")) }
        let tail = "/\(workflowInstance)/\(id).log"
        guard real.hasPrefix(realRoot + "/"), real.hasSuffix(tail) else {
            return .failure(Refusal(reason: "\(stored) is not a log of task instance \(id) under the log root \(realRoot)"))
        }
        let worker = real.dropFirst(realRoot.count + 1).dropLast(tail.count)
        guard !worker.isEmpty, !worker.contains("/") else {
            return .failure(Refusal(reason: "\(stored) is not a log of task instance \(id) under the log root \(realRoot)"))
        }
        return .success(real)
    }

    /// Opens a checked path: not through a link, not blocking on a FIFO, a regular file only.
    public static func open(_ path: String) -> FileHandle? {
        let fd = TaskLogs.regularFile(Glibc.open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC))
        return fd >= 0 ? FileHandle(fileDescriptor: fd, closeOnDealloc: true) : nil
    }

    /// Why a stored path is not read.
    public struct Refusal: Error, Equatable, CustomStringConvertible {
        public var reason: String
        public var description: String { reason }
    }

    static func resolve(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }
}
