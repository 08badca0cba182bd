import Foundation

extension WorkerDaemon {
    // MARK: Helpers

    /// The longest line of output searched for `${setValue(...)}`: longer ones that mention it
    /// fail the task, so a task printing without newlines cannot fill the worker's memory.
    static let maxOutputLineBytes = 1 << 20

    /// Output parameters printed as `${setValue(k=v)}`, within `Limits`; only the log's lines that
    /// mention it are kept in memory, each at most `maxOutputLineBytes`.
    static func outputs(ofLog path: String) -> OutputScanner {
        var scanner = OutputScanner()
        // Not blocking on a FIFO planted in its place, not following a link; a log that cannot be
        // read fails the task, whose output parameters would otherwise be lost without a word.
        let opened = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        let why = opened < 0 ? String(cString: strerror(errno)) : "it is not a regular file"
        let fd = TaskLogs.regularFile(opened)
        guard fd >= 0 else {
            scanner.refuse("its log \(path) cannot be read back for output parameters: \(why)")
            return scanner
        }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        let marker = Data("setValue(".utf8)
        var carry = Data()
        var skippingLongLine = false
        func skipLong(_ part: Data) {
            if part.range(of: marker) != nil {
                scanner.refuse("a line of output longer than \(Limits.size(maxOutputLineBytes)) holds ${setValue(...)}; output parameters must be shorter")
            }
        }
        func scan(_ lines: Data) {
            guard lines.range(of: marker) != nil else { return }
            for line in lines.split(separator: 0x0a) where line.range(of: marker) != nil {
                if line.count > maxOutputLineBytes { skipLong(line) } else { scanner.scan(bytes: Array(line)) }
            }
        }
        while scanner.problem == nil, let chunk = try? handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            carry.append(chunk)
            if let lastNewline = carry.lastIndex(of: 0x0a) {
                var lines = carry[carry.startIndex...lastNewline]
                if skippingLongLine, let first = lines.firstIndex(of: 0x0a) {
                    skipLong(lines[...first])
                    lines = lines[(first + 1)...]
                    skippingLongLine = false
                }
                scan(lines)
                carry = Data(carry[(lastNewline + 1)...])
            }
            if carry.count > maxOutputLineBytes {
                skipLong(carry)
                carry = Data(carry.suffix(marker.count))  // a marker split at the cut is still seen
                skippingLongLine = true
            }
        }
        if skippingLongLine { skipLong(carry) } else { scan(carry) }
        return scanner
    }

    /// Why a queue item must not run, or nil: masters check all of this before they write one,
    /// so only an item written past them (by hand, or by another version) can fail here. What
    /// no process can hold (a NUL, a name with `=`) is refused where the spawn request is built
    /// (`TaskSupervisor.spawnRequest`), the one place every string to a task passes.
    static func queueItemProblem(_ task: QueuedTask) -> String? {
        if task.command.utf8.count > Limits.maxCommandBytes { return "its command is longer than \(Limits.maxCommandBytes) bytes" }
        if let k = task.env.keys.first(where: Limits.isReserved) {
            return "it sets the environment variable \(Limits.quoted(k)), which is reserved"
        }
        return nil
    }

    /// Appends a `[ds]` line to a task's log: only to the regular file the supervisor made, never
    /// through a link or into a FIFO put in its place.
    static func appendToLog(_ path: String, _ text: String) {
        let fd = TaskLogs.regularFile(open(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC))
        guard fd >= 0 else { return }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        try? handle.write(contentsOf: Data(text.utf8))
    }

    /// Makes the folder of a task's log (its workflow instance's), 0750 whatever the umask: tasks
    /// (other users) can neither write in it nor read it. A folder that cannot be made fails the
    /// task with why.
    static func makeLogFolder(for logPath: String) throws {
        let folder = (logPath as NSString).deletingLastPathComponent
        if mkdir(folder, 0o750) == 0 {
            chmod(folder, 0o750)
            return
        }
        if errno == EEXIST { return }
        // The worker's own folder was removed under it: made again, as at start.
        if errno == ENOENT, (try? WorkerDaemon.checkLogFolder((folder as NSString).deletingLastPathComponent)) != nil,
           mkdir(folder, 0o750) == 0 {
            chmod(folder, 0o750)
            return
        }
        if errno == EEXIST { return }
        throw TaskLogError(path: logPath, errno: errno, creating: true)
    }

    /// Whether the log holds anything (then it was written, and the folder takes writes again).
    static func logHasBytes(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && st.st_size > 0
    }

    static func format(_ seconds: Double) -> String { DurationText.format(seconds) }
}

extension WorkerDaemon {
    // MARK: Environment and outputs

    /// A task's environment, built (see `TaskEnvironment`): the base for its user, the names of
    /// `--pass-env`, its `env` and parameters from the queue item, then its `DS_*` context.
    static func environment(of task: QueuedTask, user: TenantUser?, passing: [String]) -> [String: String] {
        var environment = TaskEnvironment.base(user: user.map { ($0.name, $0.home) }, passing: passing)
        environment.merge(task.env) { _, new in new }
        environment["DS_TASK_INSTANCE_ID"] = String(task.taskInstanceId)
        environment["DS_WORKFLOW_INSTANCE_ID"] = String(task.workflowInstanceId)
        environment["DS_TASK_NAME"] = task.taskName
        environment["DS_WORKFLOW_NAME"] = task.workflowName
        environment["DS_TASK_ATTEMPT"] = String(task.attempt)
        return environment
    }

    /// The outputs a task printed that it may set (its item's `outputs`: the workflow's `params`
    /// and the task's own `outputs`); each other name is ignored, with a `[ds]` line in its log.
    /// Ignored, not failed: a task that prints more than it declares did its work.
    static func declared(_ printed: [String: String], task: QueuedTask, logPath: String) -> [String: String] {
        let allowed = Set(task.outputs ?? [])
        let ignored = printed.keys.filter { !allowed.contains($0) }.sorted()
        if !ignored.isEmpty {
            appendToLog(logPath, "[ds] output parameters ignored, not declared: \(ignored.map { Limits.quoted($0) }.joined(separator: ", ")); declare them in the workflow's params or the task's outputs\n")
        }
        return printed.filter { allowed.contains($0.key) }
    }

    /// Writes why a task did not start to its log, made here (nothing else writes it then).
    static func writeRefusal(_ path: String, _ text: String) {
        // Made as the supervisor makes a log: only a new file, never what a task planted there.
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0o640)
        guard fd >= 0 else { return }
        fchmod(fd, 0o640)
        defer { close(fd) }
        _ = text.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
    }
}
