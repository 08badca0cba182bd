import Foundation
import Logging
import Metrics

/// Why a worker stopped on its own.
public enum WorkerError: Error, CustomStringConvertible, ExitStatusProviding {
    case sessionExpired(String)
    /// The worker stopped acting for its session (see `SessionLease`): its tasks were killed.
    case leaseLost(String, LeaseLoss)
    case alreadyRegistered(String)
    case failedOver(String)
    case supervisorLost(String)
    /// A queue item that must not run (fails its task, never the worker).
    case refusedItem(String)
    /// The log folder cannot take a task's log: every task would fail at once.
    case logFolderUnwritable(String, String)

    public var description: String {
        switch self {
        case .refusedItem(let why):
            return "queue item refused: \(why)"
        case .logFolderUnwritable(let folder, let why):
            return "cannot write task logs under \(folder): \(why); give --log-dir (or DS_HOME) a folder this user can write"
        case .supervisorLost(let id):
            return "worker \(id): its task-supervisor exited unexpectedly; killed the task groups it left behind and stopped (their tasks fail over to other workers)"
        case .failedOver(let id):
            return "worker \(id): found itself in /dead-servers (failed over while unresponsive); killed its running tasks and stopped (fenced)"
        case .sessionExpired(let id):
            return "worker \(id): ZooKeeper session expired; killed its running tasks (fenced)"
        case .leaseLost(let id, let why):
            let cause = switch why {
            case .lapsed: "no ZooKeeper server answered for its session timeout less the margin"
            case .expired: "its ZooKeeper session expired"
            case .fenceLowered: "it was failed over while it could not answer"
            }
            return "worker \(id): \(cause); killed its running tasks (fenced) before any master could start them elsewhere"
        case .alreadyRegistered(let id):
            return "worker \(id): another worker is registered under this host:port; give this one another --port"
        }
    }
    /// A loss of the session, after which the worker registers again with a new one: its tasks
    /// were killed and fail over, and nothing about the worker itself is wrong.
    public var isSessionLoss: Bool {
        switch self {
        case .sessionExpired, .leaseLost, .failedOver: return true
        default: return false
        }
    }

    public var exitStatus: ExitStatus {
        switch self {
        case .sessionExpired, .leaseLost, .failedOver: return .unavailable
        case .supervisorLost: return .software
        case .alreadyRegistered, .logFolderUnwritable: return .config
        case .refusedItem: return .dataError
        }
    }
}

/// Options of one worker.
public struct WorkerOptions: Sendable {
    public var host: String
    public var port: Int
    public var groups: [String]
    public var slots: Int
    public var logDirectory: String
    /// How long a graceful stop lets running tasks finish before killing them.
    public var graceSeconds: Double
    public var heartbeatSeconds: Double = 5
    /// Where this worker's HTTP server listens, as published in its registry node and `/running`
    /// nodes; nil when it does not listen.
    public var listen: String?
    /// Logs last written longer ago than this are removed (nil: kept forever).
    public var logRetentionSeconds: Double? = 7 * 86_400

    public init(host: String, port: Int, groups: [String], slots: Int, logDirectory: String, graceSeconds: Double) {
        self.host = host
        self.port = port
        self.groups = groups
        self.slots = slots
        self.logDirectory = logDirectory
        self.graceSeconds = graceSeconds
    }

    public var identity: String { "\(host):\(port)" }
}

/// A worker: pulls tasks from the ZooKeeper queue while it has a free slot, runs each in a
/// process group of its own, writes one log file per task and reports the result.
/// It never opens the database.
public actor WorkerDaemon {
    enum Wake: Hashable, Sendable { case queue, queueChanged, slotFreed, stop, graceOver, expired, failedOver, supervisorLost, peersChanged, kills }

    let zk: ZooKeeperClient
    let paths: ZooKeeperPaths
    let options: WorkerOptions
    let supervisor: TaskSupervisor
    let logger: Logger
    public nonisolated let logs: TaskLogs
    let startTime = ProcessStats.now()
    nonisolated let wakeups = Wakeups<Wake>()

    var running: [Int64: TaskProcess?] = [:]
    /// Queue items from the last listing, smallest key first, not yet tried.
    var candidates: ArraySlice<(key: String, group: String)> = []
    /// Queue nodes that are no task (written by hand, or by another program): left for an operator,
    /// said once, and skipped by every listing after, so they neither spin the claim loop nor hide
    /// the items behind them. Only nodes still listed are kept.
    var refusedItems: Set<String> = []
    /// Set by the queue watch: the listing may be stale (new items, perhaps of higher priority).
    var queueChanged = true
    /// This worker's share of each group's listings, from the group's registered workers.
    var shares: [String: ClaimShare] = [:]
    /// Set by the registry watch: the group's workers changed, so the shares must be read again.
    var peersChanged = true
    /// The head of the last listing: found again at the head of the next, no peer took it.
    var lastHead: String?
    var headIsStale = false
    var lastListing = ContinuousClock.now - .seconds(1)
    var stopping = false
    var killedForStop: Set<Int64> = []
    /// Tasks a master asked to kill (`/kill/<me>/<id>`, an instance being stopped): they end KILL.
    var killRequested: Set<Int64> = []
    /// Claims whose multi got no answer (a connection loss): they hold a slot until the
    /// `/running` node says whether they went through.
    var uncertainClaims: [Int64: (task: QueuedTask, logPath: String)] = [:]
    /// Set once the worker has fenced itself; `run()` throws it however its loops ended.
    var fenced: WorkerError?
    /// The worker's own environment, read once: every task starts from it.
    let baseEnvironment = CredentialFreeEnvironment.of()
    let metrics = WorkerMetrics()

    /// One worker for one ZooKeeper session; `logs` and `supervisor` outlive it (a worker whose
    /// session is lost registers again as a new `WorkerDaemon`, see `WorkerDaemon.main`).
    public init(zk: ZooKeeperClient, paths: ZooKeeperPaths, options: WorkerOptions, supervisor: TaskSupervisor, logs: TaskLogs,
                logger: Logger) {
        self.zk = zk
        self.paths = paths
        self.options = options
        self.supervisor = supervisor
        self.logger = logger
        self.logs = logs
        supervisor.whenLost { [wakeups] in wakeups.mark(.supervisorLost) }
        supervisor.whenLeaseEnds { [wakeups] in wakeups.mark(.expired) }
    }

    /// Makes the log folder and writes a probe file in it: a worker that cannot keep its tasks' logs
    /// would register and fail every task it claims at once, so it refuses to start instead.
    public static func checkLogFolder(_ folder: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            // Foundation's message names no cause; mkdir's errno does (permission, a file in the way).
            let why = mkdir(folder, 0o755) == 0 ? "cannot create it" : String(cString: strerror(errno))
            throw WorkerError.logFolderUnwritable(folder, why)
        }
        let probe = folder + "/.ds-write-probe-\(getpid())"
        let fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw WorkerError.logFolderUnwritable(folder, String(cString: strerror(errno))) }
        close(fd)
        unlink(probe)
    }

    /// Stops claiming; running tasks get the grace period, then their groups are killed.
    public nonisolated func beginGracefulStop() { wakeups.mark(.stop) }

    /// Runs until a graceful stop completes, or throws when fenced by an expired session.
    public func run() async throws {
        // Both ride through a connection loss: ensurePath retries each create, register its create.
        for p in paths.skeleton { try await zk.ensurePath(p) }
        for g in options.groups { try await zk.ensurePath(paths.queue(g)) }
        try await zk.ensurePath(killFolder)
        try await register()
        try await zk.raiseFence(paths)
        logger.info("worker \(options.identity) registered in \(options.groups.joined(separator: ",")) with \(options.slots) slots")
        let sessions = zk.sessionEvents()
        // A discarding group: a million finished tasks leave nothing behind.
        do { try await withThrowingDiscardingTaskGroup { group in
            group.addTask { [zk, logger] in
                for await event in sessions {
                    switch event {
                    case .expired: break  // the lease below ends at once
                    case .disconnected: logger.warning("disconnected from ZooKeeper \(zk.connectString); reconnecting")
                    case .connected: logger.info("connected to ZooKeeper")
                    }
                }
            }
            group.addTask { try await self.heartbeatLoop() }
            group.addTask { [zk, paths, supervisor, logger, wakeups] in
                // The supervisor holds every deadline too: it kills the tasks itself if this
                // worker cannot (frozen, starved), see `SessionLease`.
                let loss = try await SessionLease.hold(zk, fence: paths.fence(zk.sessionID)) { supervisor.renewLease(until: $0) }
                logger.error("ZooKeeper session lease lost (\(loss)): killing running tasks")
                await self.fence(.leaseLost(self.options.identity, loss))
                wakeups.mark(.expired)
            }
            try await zk.retryingTransientFaults { try await watchOwnDeathRecord() }
            try await eventLoop(group: &group)
            group.cancelAll()
        } } catch {
            if let fenced { throw fenced }
            // After a graceful stop the group's cancelled loops end by throwing CancellationError.
            guard stopping, error is CancellationError else { throw error }
        }
        if let fenced { throw fenced }
        zk.close()
        logger.info("worker \(options.identity) stopped; stats: \(zk.requestCounts.summary(prefix: "zk_"))")
    }

    private func eventLoop(group: inout ThrowingDiscardingTaskGroup<Error>) async throws {
        wakeups.mark(.queue)
        wakeups.mark(.kills)
        for await _ in wakeups.stream {
            let dirty = wakeups.take()
            if dirty.contains(.expired) {
                fence(.leaseLost(options.identity, .lapsed))
                throw fenced!
            }
            if dirty.contains(.supervisorLost) {
                // Its tasks were killed with it (a task may have killed it); they fail over, and
                // the worker runs on with a new one.
                logger.error("task-supervisor exited unexpectedly: its task groups were killed and fail over; starting a new one")
                do {
                    try supervisor.restart()
                } catch {
                    logger.error("task-supervisor cannot start again: \(error)")
                    fence(.supervisorLost(options.identity))
                    throw fenced!
                }
            }
            if dirty.contains(.queueChanged) { queueChanged = true }
            if dirty.contains(.peersChanged) { peersChanged = true }
            if dirty.contains(.failedOver) {
                do {
                    if try await watchOwnDeathRecord() {
                        fence(.failedOver(options.identity))
                        throw fenced!
                    }
                } catch let error as ZooKeeperError where error.cause != .sessionExpired {
                    // Only a read that succeeded decides; look again shortly.
                    logger.warning("\(error); checking /dead-servers again shortly")
                    try await Task.sleep(for: .milliseconds(200))
                    wakeups.mark(.failedOver)
                }
            }
            if dirty.contains(.stop) && !stopping {
                stopping = true
                logger.info("stopping: no new tasks; \(running.count) running get \(options.graceSeconds)s to finish")
                group.addTask { [wakeups, options] in
                    try await Task.sleep(for: .milliseconds(Int(min(options.graceSeconds, Limits.maxDurationSeconds) * 1000)))
                    wakeups.mark(.graceOver)
                }
            }
            if dirty.contains(.kills) {
                do {
                    try await processKills()
                } catch let error as ZooKeeperError where error.cause != .sessionExpired {
                    logger.warning("\(error); reading kill requests again shortly")
                    try await Task.sleep(for: .milliseconds(200))
                    wakeups.mark(.kills)
                }
            }
            if dirty.contains(.graceOver) && !running.isEmpty {
                logger.warning("grace period over: killing \(running.count) running tasks")
                killedForStop.formUnion(running.keys)
                killAll(signal: SIGKILL)
            }
            do {
                // Also while stopping: a claim that went through must run (and, after the grace
                // period, fail over); one that did not must free its slot, or the stop never ends.
                try await settleUncertainClaims(group: &group)
            } catch let error as ZooKeeperError where error.cause != .sessionExpired {
                logger.warning("\(error); settling lost claims again shortly")
                try await Task.sleep(for: .milliseconds(200))
                wakeups.mark(.queue)
                continue
            }
            if stopping {
                if running.isEmpty { return }
                continue
            }
            do {
                try await claimWhileFree(group: &group)
            } catch let error as ZooKeeperError where error.cause == .sessionExpired {
                fence(.sessionExpired(options.identity))
                throw fenced!
            } catch let error as WorkerError {
                fence(error)
                throw fenced!
            } catch let error as ZooKeeperError {
                logger.warning("\(error); retrying shortly")
                try await Task.sleep(for: .milliseconds(200))
                wakeups.mark(.queue)
            }
        }
    }

    // MARK: Registry

    /// Watches for `/dead-servers/worker_<me>_<session>`: a master (or `ds-failover`) wrote it
    /// because this worker was declared dead while its session lived on. Returns whether it exists.
    @discardableResult
    private func watchOwnDeathRecord() async throws -> Bool {
        let marker = paths.deadServer(DeadServer(type: "worker", identity: options.identity, session: zk.sessionID))
        return try await zk.exists(marker) { [wakeups] _ in wakeups.mark(.failedOver) } != nil
    }

    private func register() async throws {
        for g in options.groups {
            try await zk.ensurePath(paths.workerGroup(g))
            do {
                try await zk.register(paths.workerGroup(g) + "/" + options.identity, data: heartbeat())
            } catch ZooKeeperError.nodeExists {
                throw WorkerError.alreadyRegistered(options.identity)
            }
        }
    }

    /// Tasks running now (slots in use), for `/metrics`.
    public var runningCount: Int { running.count }

    private func heartbeat() -> Data {
        WireJSON.encode(Heartbeat(pid: getpid(), startTime: startTime, loadAverage: ProcessStats.loadAverage(),
                                  rssBytes: ProcessStats.residentBytes(), slots: options.slots,
                                  freeSlots: options.slots - running.count, groups: options.groups, listen: options.listen))
    }

    private func heartbeatLoop() async throws {
        while true {
            try await Task.sleep(for: .seconds(options.heartbeatSeconds))
            let data = heartbeat()
            for g in options.groups { _ = try? await zk.setData(paths.workerGroup(g) + "/" + options.identity, data) }
        }
    }

    // MARK: Claiming

    /// Claims queue items in key order, dealt out among the group's workers (see `ClaimShare`),
    /// while a slot is free. Each claim is one `multi`: delete the queue node and create
    /// `/running/<id>`; whoever wins the multi owns the task. Claims for several free slots go out
    /// together, and the queue is listed again only when the last listing is used up, or when it
    /// changed and 25 ms have passed (so newly queued higher-priority items are seen, without
    /// listing the whole queue for every claim).
    private func claimWhileFree(group: inout ThrowingDiscardingTaskGroup<Error>) async throws {
        while running.count < options.slots {
            if candidates.isEmpty || (queueChanged && ContinuousClock.now - lastListing > .milliseconds(25)) {
                guard queueChanged || candidates.isEmpty else { return }
                try await listQueues()
            }
            guard !candidates.isEmpty else { return }
            let share = headIsStale ? .alone : shares[candidates.first!.group] ?? .alone
            headIsStale = false
            let (batch, used) = share.pick(from: candidates, wanted: options.slots - running.count)
            candidates = candidates.dropFirst(used)
            // Every claim's outcome is kept, even when another claim of the batch failed: a claim
            // that went through must run, or its task would hang on this worker.
            let outcomes = await withTaskGroup(of: ClaimOutcome.self) { claims in
                for candidate in batch {
                    claims.addTask { await self.claim(candidate.key, in: candidate.group) }
                }
                var all: [ClaimOutcome] = []
                for await c in claims { all.append(c) }
                return all
            }
            var failure: Error?
            for outcome in outcomes {
                switch outcome {
                case .won(let task, let logPath):
                    running[task.taskInstanceId] = .some(nil)
                    group.addTask { await self.execute(task, logPath: logPath) }
                case .uncertain(let task, let logPath, let error):
                    running[task.taskInstanceId] = .some(nil)
                    uncertainClaims[task.taskInstanceId] = (task, logPath)
                    failure = error  // the loop settles it after a pause
                case .lost:
                    break
                case .refused(let key, let group):
                    refusedItems.insert(group + "/" + key)
                case .failed(let error):
                    failure = error
                }
            }
            if let failure { throw failure }
        }
    }

    /// Claims whose answer was lost: a `/running` node of this session means the claim went
    /// through (run the task); none means it did not (the item is still queued, or another worker
    /// has it). Decided only from a read that succeeded.
    private func settleUncertainClaims(group: inout ThrowingDiscardingTaskGroup<Error>) async throws {
        for (id, claim) in uncertainClaims {
            let mine = try await zk.exists(paths.running(id))?.ephemeralOwner == zk.sessionID
            uncertainClaims.removeValue(forKey: id)
            if mine {
                logger.notice("task \(id): the claim whose answer was lost went through; running it")
                group.addTask { await self.execute(claim.task, logPath: claim.logPath) }
            } else {
                running.removeValue(forKey: id)
                killRequested.remove(id)
                logs.forget(id)
            }
        }
    }

    enum ClaimOutcome: Sendable {
        case won(QueuedTask, String)
        /// Another worker took it first, or it is gone.
        case lost
        /// The node is no task: skipped from now on.
        case refused(String, String)
        /// The multi got no answer: it may have gone through.
        case uncertain(QueuedTask, String, Error)
        /// Nothing was claimed (the item could not be read).
        case failed(Error)
    }

    private func listQueues() async throws {
        if peersChanged {
            peersChanged = false
            for g in options.groups {
                let names = try await zk.children(paths.workerGroup(g)) { [wakeups] _ in wakeups.mark(.peersChanged) }
                shares[g] = ClaimShare(me: options.identity, registered: names)
            }
        }
        queueChanged = false
        lastListing = .now
        var all: [(key: String, group: String)] = []
        var listed: Set<String> = []
        for g in options.groups {
            // The watch is re-armed by every listing; a change marks the queue dirty again.
            let names = try await zk.children(paths.queue(g)) { [wakeups] _ in wakeups.mark(.queueChanged) }
            for name in names where !refusedItems.contains(g + "/" + name) {
                if TaskQueueKey(name) == nil {
                    refusedItems.insert(g + "/" + name)
                    logger.error("queue node \(paths.queue(g))/\(name) is not named as a task; leaving it for an operator")
                } else {
                    all.append((name, g))
                }
            }
            listed.formUnion(names.map { g + "/" + $0 })
        }
        refusedItems.formIntersection(listed)
        all.sort { $0.key < $1.key }
        candidates = all[...]
        headIsStale = lastHead != nil && all.first?.key == lastHead
        lastHead = all.first?.key
    }

    /// One claim: read the item, then delete it (at the version read) and create the running node
    /// in one multi. Whoever wins the multi owns the task.
    private nonisolated func claim(_ key: String, in group: String) async -> ClaimOutcome {
        let queuePath = paths.queue(group) + "/" + key
        let task: QueuedTask
        let version: Int32
        let created: Int64
        do {
            let (data, stat) = try await zk.getData(queuePath)
            task = try WireJSON.decode(QueuedTask.self, data)
            version = stat.version
            created = stat.createdMillis
        } catch ZooKeeperError.noNode {
            return .lost
        } catch is DecodingError {
            logger.error("queue item \(queuePath) is not a task; leaving it for an operator")
            return .refused(key, group)
        } catch {
            return .failed(error)
        }
        let logPath = logPath(for: task)
        let claim = RunningTask(worker: options.identity, pid: nil, startTime: ProcessStats.now(), logPath: logPath,
                                listen: options.listen)
        // Served (empty) from the moment the running node names this worker: a ds-logs that reads
        // the node at once finds the log, not a 404. Forgotten if the claim does not go through.
        let fresh = logs.began(task.taskInstanceId, workflowInstance: task.workflowInstanceId)
        let outcome = await multiClaim(task, queuePath: queuePath, version: version, claim: claim, logPath: logPath, key: key, group: group)
        switch outcome {
        case .won:
            metrics.queueWait.recordMilliseconds(max(0, Int64(Date().timeIntervalSince1970 * 1000) - created))
        case .uncertain:
            break  // settled later: forgotten then if it did not go through
        default:
            if fresh { logs.forget(task.taskInstanceId) }  // not one this worker already runs
        }
        return outcome
    }

    private nonisolated func multiClaim(_ task: QueuedTask, queuePath: String, version: Int32, claim: RunningTask, logPath: String,
                                        key: String, group: String) async -> ClaimOutcome {
        do {
            try await zk.multi([
                zk.fenceCheck(paths),
                .delete(path: queuePath, version: version),
                .create(path: paths.running(task.taskInstanceId), data: WireJSON.encode(claim), mode: .ephemeral),
            ])
        } catch let error as ZooKeeperError where ZooKeeperClient.isFenced(error) {
            return .failed(WorkerError.failedOver(options.identity))  // declared dead while it hung
        } catch let error as ZooKeeperError where error.cause == .nodeExists(paths.running(task.taskInstanceId)) {
            // A claim deletes the item in the same multi that creates the running node: both at
            // once is no race but a node written past the tools. Said once and skipped, not retried.
            logger.error("queue item \(queuePath): task \(task.taskInstanceId) already has a running node; leaving it for an operator")
            return .refused(key, group)
        } catch let error as ZooKeeperError where [.noNode(queuePath), .badVersion(queuePath)].contains(error.cause) {
            return .lost  // another worker won this item
        } catch let error as ZooKeeperError where error.cause != .sessionExpired && error.cause != .closing {
            return .uncertain(task, logPath, error)
        } catch {
            return .failed(error)
        }
        return .won(task, logPath)
    }

    private nonisolated func logPath(for task: QueuedTask) -> String {
        // Only ids: names are shown, never trusted as path components.
        "\(options.logDirectory)/\(task.workflowInstanceId)/\(task.taskInstanceId).log"
    }

    // MARK: Running

    private func execute(_ task: QueuedTask, logPath: String) async {
        let id = task.taskInstanceId
        var environment = baseEnvironment
        environment.merge(task.env) { _, new in new }
        environment["DS_TASK_INSTANCE_ID"] = String(id)
        environment["DS_WORKFLOW_INSTANCE_ID"] = String(task.workflowInstanceId)
        environment["DS_TASK_NAME"] = task.taskName
        environment["DS_WORKFLOW_NAME"] = task.workflowName
        environment["DS_TASK_ATTEMPT"] = String(task.attempt)
        let startTime = ProcessStats.now()
        var result = TaskResultMessage(taskInstanceId: id, state: .failure, exitCode: nil, worker: options.identity,
                                       pid: nil, logPath: logPath, startTime: startTime, endTime: startTime,
                                       outputs: [:], message: nil)
        logs.began(id, workflowInstance: task.workflowInstanceId)
        defer { logs.ended(id) }
        metrics.started.increment()
        do {
            if let problem = Self.queueItemProblem(task) { throw WorkerError.refusedItem(problem) }
            // Made every time (one mkdir): the retention sweep may have removed the instance's
            // folder since its last task here; `began` above keeps it from doing so from now on.
            let folder = (logPath as NSString).deletingLastPathComponent
            if mkdir(folder, 0o755) != 0 && errno != EEXIST {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            }
            if supervisor.isLost { try supervisor.restart() }  // before the event loop got to it
            let process = try await supervisor.spawn(id: id, command: task.command, environment: environment, logPath: logPath)
            running[id] = process
            // A fence, the end of a stop's grace period, or a kill request that came while this
            // spawn was in flight found no process to kill: kill it now.
            if fenced != nil || killedForStop.contains(id) || killRequested.contains(id) { process.signalGroup(SIGKILL) }
            result.pid = process.pid
            let exit = await waitWithTimeout(process, task: task, logPath: logPath)
            switch supervisor.endCause(id) {
            case .leaseEnded?:
                // Killed because this worker's session may be gone: it fails over with the session,
                // and no result may claim otherwise.
                Self.appendToLog(logPath, "[ds] killed: worker \(options.identity) lost its ZooKeeper session lease; the task fails over\n")
                return
            case .supervisorLost?:
                Self.appendToLog(logPath, "[ds] killed: the task supervisor of worker \(options.identity) died while the task ran\n")
                throw TaskEnd.supervisorLost
            case nil:
                break
            }
            result.endTime = ProcessStats.now()
            result.exitCode = exit.exit.code
            result.timedOut = exit.timedOut ? true : nil
            (result.state, result.message) = Self.verdict(exit.exit, timedOut: exit.timedOut, killRequested: killRequested.contains(id),
                                                          killedForStop: killedForStop.contains(id), timeout: task.timeout ?? 0,
                                                          worker: options.identity)
            // Off the actor: a long log must not stop this worker claiming, stopping or fencing.
            let printed = await Task.detached { Self.outputs(ofLog: logPath) }.value
            if let problem = printed.problem {
                // Refused whole: a task's outputs are used together, and a result must stay small.
                Self.appendToLog(logPath, "[ds] \(problem)\n")
                if result.state == .success {
                    result.state = .failure
                    result.message = problem
                }
            } else {
                result.outputs = printed.outputs
            }
        } catch let error where error is SupervisorLostDuringStart || (error as? TaskEnd) == .supervisorLost {
            // Not the task's own failure as far as anyone can tell: it runs again elsewhere, a new
            // attempt and not a retry; masters fail a task whose attempts keep taking workers down.
            result.endTime = ProcessStats.now()
            result.state = .needFaultTolerance
            result.supervisorLost = true
            result.message = "\(TaskResultMessage.supervisorLostMessage) (worker \(options.identity); a task may have killed it)"
        } catch let error as SupervisorUnavailable {
            result.endTime = ProcessStats.now()
            result.state = .needFaultTolerance
            result.message = "not started: \(error); runs again"
        } catch {
            result.endTime = ProcessStats.now()
            result.message = "could not start: \(error)"
            logger.error("task \(id) '\(task.taskName)': \(error)")
        }
        // A fenced worker writes nothing: its tasks fail over, like those of a dead worker.
        if fenced != nil { return }
        metrics.finished(result.state)
        // The slot stays taken until the result is written: the window in which a dying worker
        // leaves a finished but unrecorded task (which then runs again elsewhere) stays short.
        await report(result)
        // Best effort: the master that wrote the request deletes it too once it has the result.
        if killRequested.remove(id) != nil {
            do {
                try await zk.delete(killFolder + "/\(id)")
            } catch {
                // The master that wrote it deletes it once it has the result.
                logger.debug("task \(id): kill request left for its master: \(error)")
            }
        }
        running.removeValue(forKey: id)
        wakeups.mark(.slotFreed)
        wakeups.mark(.queue)
    }

    /// How a finished task is reported. A kill (a stop of its instance, or the end of this worker's
    /// grace period) counts only if the task's shell died by a signal: a kill that came after the
    /// task had exited on its own killed nothing, and its real end stands. Reported as KILL, a
    /// success would run again on resume; as NEED_FAULT_TOLERANCE, on another worker.
    static func verdict(_ exit: ProcessExit, timedOut: Bool, killRequested: Bool, killedForStop: Bool, timeout: Double,
                        worker: String) -> (state: TaskState, message: String?) {
        let signaled = if case .signaled = exit { true } else { false }
        if killRequested && signaled {
            // The instance is being stopped: KILL, which is never retried.
            return (.kill, "killed: its workflow instance was stopped")
        } else if timedOut {
            return (.failure, "timed out after \(format(timeout)) and was killed")
        } else if killedForStop && signaled {
            // Not the task's failure: it fails over to another worker, as after a kill -9 of
            // this one (a new attempt, not a retry), so a rolling restart fails no workflow.
            return (.needFaultTolerance, "killed: worker \(worker) stopped and the grace period ran out; runs again on another worker")
        }
        switch exit {
        case .exited(0): return (.success, nil)
        case .exited(let c): return (.failure, "exited with status \(c)")
        case .signaled(let s): return (.failure, "killed by signal \(s)")
        }
    }

    private func waitWithTimeout(_ process: TaskProcess, task: QueuedTask, logPath: String) async -> (exit: ProcessExit, timedOut: Bool) {
        guard let timeout = task.timeout, timeout > 0 else { return (await process.waitForExit(), false) }
        return await withTaskGroup(of: (ProcessExit?, Bool).self) { group in
            group.addTask { (await process.waitForExit(), false) }
            group.addTask {
                // Clamped: a queue item is input, and Int(1e308) would trap the worker.
                try? await Task.sleep(for: .milliseconds(Int(min(timeout, Limits.maxDurationSeconds) * 1000)))
                if Task.isCancelled { return (nil, false) }
                if task.timeoutStrategy.kills {
                    // SIGKILL at once, to the whole group: a TERM first would let a child that
                    // ignores it outlive its shell, and once the shell is reaped its group can
                    // no longer be signalled safely (the supervisor never signals a reaped pid).
                    process.signalGroup(SIGKILL)
                    return (nil, true)
                }
                Self.appendToLog(logPath, "[ds] warning: task is still running after its timeout of \(Self.format(timeout))\n")
                return (nil, false)
            }
            var timedOut = false
            var exit: ProcessExit = .exited(0)
            for await (e, t) in group {
                timedOut = timedOut || t
                if let e {
                    exit = e
                    group.cancelAll()
                }
            }
            return (exit, timedOut)
        }
    }

    /// Creates `/results/<id>` and deletes `/running/<id>` in one multi; retries while the
    /// session lives, since the result must survive before the worker forgets the task.
    private func report(_ result: TaskResultMessage) async {
        let id = result.taskInstanceId
        while true {
            // Past the lease the session may be gone and the task failed over: a result written
            // now could contradict the new attempt's.
            if SessionLease.deadline(zk) <= MonotonicTime.nowNanos() {
                logger.error("task \(id): result not reported, the session lease has ended; the task fails over")
                return
            }
            do {
                try await zk.multi([
                    .create(path: paths.result(id), data: WireJSON.encode(result), mode: .persistent),
                    .delete(path: paths.running(id)),
                ])
                return
            } catch let error as ZooKeeperError {
                switch error.cause {
                case .nodeExists, .noNode:
                    // Already reported by an earlier try whose answer was lost.
                    try? await zk.delete(paths.running(id))
                    return
                case .sessionExpired, .closing:
                    logger.error("task \(id): result not reported, session gone: \(error)")
                    return
                default:
                    // Cancelled means the worker is fencing itself: the result must not be written.
                    if Task.isCancelled { return }
                    logger.warning("task \(id): reporting result failed (\(error)); retrying")
                    try? await Task.sleep(for: .milliseconds(200))
                }
            } catch {
                return
            }
        }
    }

    /// `/kill/<host:port>`: where masters ask this worker to kill tasks.
    nonisolated var killFolder: String { paths.killFolder(options.identity) }

    /// Kills the process groups of the tasks masters asked to kill, at once and whole (SIGKILL to
    /// the group: no process of a stopped task's group survives it). A request for a task this
    /// worker does not run (it ended, or ran elsewhere) is deleted; the others are deleted once the
    /// task's result is written.
    private func processKills() async throws {
        let names = try await zk.children(killFolder) { [wakeups] _ in wakeups.mark(.kills) }
        for name in names {
            guard let id = Int64(name), running[id] != nil else {
                do { try await zk.delete(killFolder + "/" + name) } catch ZooKeeperError.noNode {}
                continue
            }
            guard killRequested.insert(id).inserted else { continue }
            logger.notice("task \(id): kill requested (its workflow instance is being stopped)")
            if case let process?? = running[id] { process.signalGroup(SIGKILL) }
        }
    }

    /// Kills every running task and records why this worker must stop; the first reason stays.
    func fence(_ reason: WorkerError) {
        killAll(signal: SIGKILL)
        if fenced == nil { fenced = reason }
    }

    func killAll(signal: Int32) {
        for case let process? in running.values { process.signalGroup(signal) }
    }

    /// How a task's run ended other than by its exit.
    enum TaskEnd: Error { case supervisorLost }

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

    static func appendToLog(_ path: String, _ text: String) {
        guard let handle = FileHandle(forWritingAtPath: path) else { return }
        defer { try? handle.close() }
        _ = try? handle.seekToEnd()
        try? handle.write(contentsOf: Data(text.utf8))
    }

    static func format(_ seconds: Double) -> String { DurationText.format(seconds) }
}

/// What a worker counts for `/metrics` (swift-metrics handles, made once).
struct WorkerMetrics: Sendable {
    let started = Counter(label: "ds_worker_tasks_started_total")
    let succeeded = Counter(label: "ds_worker_tasks_finished_total", dimensions: [("state", "success")])
    let failed = Counter(label: "ds_worker_tasks_finished_total", dimensions: [("state", "failure")])
    let killed = Counter(label: "ds_worker_tasks_finished_total", dimensions: [("state", "kill")])
    let handedBack = Counter(label: "ds_worker_tasks_finished_total", dimensions: [("state", "need_fault_tolerance")])
    /// From the item's creation in the queue (its znode's ctime, on ZooKeeper's clock) to this
    /// worker's claim: how long tasks wait for a worker.
    let queueWait = Metrics.Timer(label: "ds_worker_claim_latency_seconds")

    func finished(_ state: TaskState) {
        switch state {
        case .success: succeeded.increment()
        case .kill: killed.increment()
        case .needFaultTolerance: handedBack.increment()
        default: failed.increment()
        }
    }
}
