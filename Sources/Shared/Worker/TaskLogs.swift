import Foundation
import Metrics
import NIOConcurrencyHelpers

/// The task logs a worker keeps, `<folder>/<workflow-instance-id>/<task-instance-id>.log`, found by
/// task instance id only: the log server never builds a path from a request. Knows which logs are
/// still being written (their task runs), removes logs older than the retention, and serves
/// `GET /logs/<task-instance-id>?offset=N&follow=1`.
public final class TaskLogs: Sendable {
    public let folder: String
    /// Whether logs can be written here (`/healthz`).
    public let health = LogFolderHealth()
    private let state = NIOLockedValueBox<State>(State())
    /// Logs served (a 200 answer to `/logs/<id>`).
    let served = Counter(label: "ds_worker_log_requests_served_total")
    /// How often a follower looks for new bytes.
    static let followPoll: Duration = .milliseconds(100)

    struct State {
        /// Task instance id → workflow instance id: the log is `<folder>/<wf>/<id>.log`.
        var known: [Int64: Int64] = [:]
        var live: Set<Int64> = []
        /// Live tasks per workflow instance: the sweep leaves their folders.
        var liveInstances: [Int64: Int] = [:]
    }

    public init(folder: String) {
        self.folder = folder
    }

    /// A task of this worker is being claimed, or starts: its log is served (empty until the
    /// task writes) and followed from now on.
    /// Returns whether it was not live already.
    @discardableResult
    public func began(_ id: Int64, workflowInstance: Int64) -> Bool {
        state.withLockedValue {
            $0.known[id] = workflowInstance
            guard $0.live.insert(id).inserted else { return false }
            $0.liveInstances[workflowInstance, default: 0] += 1
            return true
        }
    }

    /// Its task ended: followers read to the end and stop.
    public func ended(_ id: Int64) {
        state.withLockedValue { s in
            guard s.live.remove(id) != nil, let wf = s.known[id] else { return }
            s.liveInstances[wf] = s.liveInstances[wf, default: 1] > 1 ? s.liveInstances[wf]! - 1 : nil
        }
    }

    /// A claim that did not go through: this worker holds no log of it.
    public func forget(_ id: Int64) {
        ended(id)
        _ = state.withLockedValue { $0.known.removeValue(forKey: id) }
    }

    public func isLive(_ id: Int64) -> Bool { state.withLockedValue { $0.live.contains(id) } }

    public func workflowInstance(of id: Int64) -> Int64? { state.withLockedValue { $0.known[id] } }

    /// `sweep` on a thread of its own: a walk of a large folder must not hold up the cooperative
    /// threads that claim tasks and answer requests.
    public func sweepInBackground(retention: Double?) async -> Sweep {
        await withCheckedContinuation { done in
            DispatchQueue.global(qos: .utility).async { done.resume(returning: self.sweep(retention: retention)) }
        }
    }

    /// What a sweep found.
    public struct Sweep: Sendable, Equatable {
        public var kept = 0
        public var removed = 0
    }

    /// Walks the folder: indexes every `<digits>/<digits>.log` (so logs of attempts run before a
    /// restart are served too), and when `retention` is given, removes those last written longer
    /// ago than that (never one still being written) and the instance folders left empty. Anything
    /// else in the folder (other names, symbolic links) is neither served nor touched.
    @discardableResult
    public func sweep(retention: Double?, now: Date = Date()) -> Sweep {
        var result = Sweep()
        let cutoff = retention.map { now.timeIntervalSince1970 - $0 }
        guard let instances = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return result }
        for name in instances {
            guard let wf = Self.number(name) else { continue }
            let dir = folder + "/" + name
            guard Self.isPlainDirectory(dir), let files = try? FileManager.default.contentsOfDirectory(atPath: dir) else { continue }
            var left = files.count
            for file in files {
                guard file.hasSuffix(".log"), let id = Self.number(String(file.dropLast(4))) else { continue }
                let path = dir + "/" + file
                var st = stat()
                guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
                let written = Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
                let expired: Bool = state.withLockedValue { s in
                    if let cutoff, written < cutoff, !s.live.contains(id) {
                        s.known.removeValue(forKey: id)
                        return true
                    }
                    s.known[id] = wf
                    return false
                }
                if expired && unlink(path) == 0 {
                    result.removed += 1
                    left -= 1
                } else {
                    result.kept += 1
                }
            }
            // Under the lock that `began` takes: a task of this instance that begins now finds the
            // folder gone and makes it again, never made and then removed under it.
            if left == 0 {
                state.withLockedValue { s in
                    if s.liveInstances[wf] == nil { rmdir(dir) }  // fails, harmlessly, if a file came meanwhile
                }
            }
        }
        return result
    }

    /// `/logs/<task-instance-id>`: nil for any other path. Unknown ids, and every path that is not
    /// exactly digits after `/logs/` (`..`, `%2e%2e`, an absolute path), are 404.
    public func route(_ request: HTTPRequest) async -> HTTPReply? {
        guard request.path.hasPrefix("/logs/") || request.path == "/logs" else { return nil }
        guard let id = Self.number(String(request.path.dropFirst("/logs/".count))) else {
            return .notFound("no such log: give /logs/<task-instance-id>")
        }
        var offset: Int64 = 0
        if let text = request.query["offset"] {
            guard let n = Self.number(text) else { return .text(.badRequest, "offset must be a byte offset from 0\n") }
            offset = n
        }
        let follow: Bool
        switch request.query["follow"] {
        case nil, "0", "false": follow = false
        case "1", "true": follow = true
        default: return .text(.badRequest, "follow must be 0 or 1\n")
        }
        guard let wf = workflowInstance(of: id) else { return .notFound("no log of task instance \(id) on this worker") }
        // Closed when the reply goes, whether or not its body was ever written (HEAD, a client gone).
        let first = OpenFile(Self.openLog(folder: folder, workflowInstance: wf, id: id))
        // A task being claimed or started has no file yet: its log is empty so far.
        guard first != nil || isLive(id) else { return .notFound("no log of task instance \(id) on this worker (removed?)") }
        return .stream(contentType: "text/plain; charset=utf-8") { [self, offset, first] out in
            served.increment()
            var opened = first
            while opened == nil {
                let live = isLive(id)
                opened = OpenFile(Self.openLog(folder: folder, workflowInstance: wf, id: id))
                if opened != nil { break }
                if !follow || !live || out.clientGone { return }
                try await Task.sleep(for: Self.followPoll)
            }
            let file = opened!
            let fd = file.fd
            var at = offset
            var buffer = [UInt8](repeating: 0, count: 64 << 10)
            while true {
                // Asked before reading: a task that has ended is read to its end once more.
                let live = follow && isLive(id)
                let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(at)) }
                if n > 0 {
                    try await out.write(buffer[0..<n])
                    at += Int64(n)
                    continue
                }
                if n < 0 && errno == EINTR { continue }
                if n < 0 || !live || out.clientGone { return }
                try await Task.sleep(for: Self.followPoll)
            }
        }
    }

    /// Opens `<folder>/<wf>/<id>.log` without following a symbolic link at either step, and only if
    /// it is a regular file: a link planted in the folder cannot make the server read elsewhere, and
    /// a FIFO cannot block it (opened without blocking, then refused).
    static func openLog(folder: String, workflowInstance: Int64, id: Int64) -> Int32 {
        let dir = open(folder + "/\(workflowInstance)", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard dir >= 0 else { return -1 }
        defer { close(dir) }
        return Self.regularFile(openat(dir, "\(id).log", O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK))
    }

    /// `fd` if it is an open regular file with one name (a hard link made to another file is no
    /// task's log); else closes it and returns -1.
    public static func regularFile(_ fd: Int32) -> Int32 {
        guard fd >= 0 else { return -1 }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_nlink == 1 else {
            close(fd)
            return -1
        }
        return fd
    }

    /// A descriptor closed with its last reference.
    final class OpenFile: Sendable {
        let fd: Int32
        init?(_ fd: Int32) {
            guard fd >= 0 else { return nil }
            self.fd = fd
        }
        deinit { close(fd) }
    }

    /// 1 to 18 ASCII digits, as a number; nil for anything else (signs, spaces, `..`, encodings).
    static func number(_ text: String) -> Int64? {
        guard (1...18).contains(text.utf8.count), text.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        return Int64(text)
    }

    static func isPlainDirectory(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }
}
