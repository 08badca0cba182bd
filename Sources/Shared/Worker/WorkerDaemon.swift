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
            return "worker \(id): \(why); killed its running tasks (fenced) before any master could start them elsewhere"
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
    /// Bytes of a task's output written to its log; past it one marker line, the rest dropped.
    public var maxLogBytes: UInt64 = ByteSize.defaultMaxLog
    /// Who tasks may run as (`--tenants`, `--default-tenant`).
    public var tenants = TenantPolicy()
    /// Names of the worker's environment passed on to every task (`--pass-env`).
    public var passEnv: [String] = []
    /// `--cgroup-root`: the delegated cgroup v2 directory task cgroups go under (nil: found).
    public var cgroupRoot: String?
    /// `--containment none`: no cgroups even where there are some (subreaper only).
    public var noContainment = false
    /// `--max-memory` in bytes: no task gets more, one that asks nothing gets this.
    public var maxMemory: Int64?

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
            // The worker's own folder: 0750, whatever the umask (tasks cannot write in it).
            var st = stat()
            if lstat(folder, &st) == 0, st.st_uid == geteuid(), (st.st_mode & S_IFMT) == S_IFDIR { chmod(folder, 0o750) }
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
