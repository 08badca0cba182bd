import Foundation
import Logging

/// Why a master stopped on its own.
public enum MasterError: Error, CustomStringConvertible, ExitStatusProviding {
    case sessionExpired(String)
    /// The master stopped acting for its session (see `SessionLease`).
    case leaseLost(String, LeaseLoss)
    case alreadyRegistered(String)
    case failedOver(String)

    /// A loss of the session, after which the master registers again with a new one; any master
    /// (this one too) adopts the instances it ran.
    public var isSessionLoss: Bool {
        switch self {
        case .sessionExpired, .leaseLost, .failedOver: return true
        case .alreadyRegistered: return false
        }
    }

    public var description: String {
        switch self {
        case .sessionExpired(let id):
            return "master \(id): ZooKeeper session expired; stopped scheduling (fenced)"
        case .leaseLost(let id, let why):
            return "master \(id): \(why); stopped scheduling (fenced) before any master could adopt its instances"
        case .alreadyRegistered(let id):
            return "master \(id): another master is registered under this host:port; give this one another --port"
        case .failedOver(let id):
            return "master \(id): found itself in /dead-servers (failed over while unresponsive); stopped (fenced)"
        }
    }
    public var exitStatus: ExitStatus {
        switch self {
        case .sessionExpired, .leaseLost, .failedOver: return .unavailable
        case .alreadyRegistered: return .config
        }
    }
}

/// Options of one master.
public struct MasterOptions: Sendable {
    public var host: String
    public var port: Int
    public var maxWorkflows: Int
    public var heartbeatSeconds: Double = 5
    /// A safety net for a lost `/signal/commands` notification; claims are otherwise driven by the watch.
    public var commandRescanSeconds: Double = 5
    /// A safety net for failover: orphans and lost attempts are otherwise found through watches.
    public var reconcileSeconds: Double = 10
    /// Most items waiting in one group's ZooKeeper queue; more ready attempts wait in the database.
    public var queueWindow: Int = 1000
    /// How long a `/dead-servers` record of a session that is gone is kept for operators.
    public var deadServerRetentionSeconds: Double = 3600
    /// How often a master looks for records to prune (on its reconcile timer).
    public var deadServerPruneSeconds: Double = 60
    /// Where this master's HTTP server listens, as published in its registry node.
    public var listen: String?
    /// The command that delivers alerts (`/bin/sh -c`, the alert as JSON on stdin); nil: this
    /// master delivers none (they wait, PENDING, for a master that does).
    public var alertCommand: String?
    /// Deliveries after a failed one, before an alert is FAILED.
    public var alertRetries: Int = 3
    /// How long an alert command may run before it is killed (a failed delivery).
    public var alertTimeoutSeconds: Double = 30
    /// The user alert commands run as (`--alert-tenant`); nil: the master's own.
    public var alertTenant: TenantUser?
    /// A fire time later than this when a master comes to it was missed (no master ran): the
    /// schedule's catch-up policy applies to it.
    public var misfireThresholdSeconds: Double = 5
    /// Finished instances this master prunes (`--prune-older-than`, `--prune-state`); nil: none.
    public var prune: PrunePolicy?
    /// How often it prunes, jittered (`--prune-every`); also once soon after it starts.
    public var pruneEverySeconds: Double = 3600

    public init(host: String, port: Int, maxWorkflows: Int) {
        self.host = host
        self.port = port
        self.maxWorkflows = maxWorkflows
    }

    public var identity: String { ServerIdentity.make(host: host, port: port) }
}

/// A master: claims START commands, runs instances through the engine, dispatches ready
/// tasks into the ZooKeeper queue and stores the results workers report.
///
/// One event loop mutates the state; ZooKeeper watches and timers only mark what is dirty.
public actor MasterScheduler {
    enum Wake: Hashable, Sendable { case commands, results, running, retries, timeouts, dependents, masters, workers, deadServers, reconcile, feed }

    /// An attempt this master dispatched and waits for.
    struct AttemptRef: Sendable {
        var instance: Int64
        var task: String
        var attempt: Int
        var queuePath: String
    }

    let zk: ZooKeeperClient
    let store: Store
    let paths: ZooKeeperPaths
    let options: MasterOptions
    let logger: Logger
    let startTime = ProcessStats.now()
    nonisolated let wakeups = Wakeups<Wake>()

    /// The instances this master runs. A round changes copies of them and swaps those in once
    /// stored (`Round`, `install`); only `install` and `forget` write here.
    var runtimes: [Int64: InstanceRuntime] = [:]
    /// Which instance waits for each attempt awaited in ZooKeeper: an index over `runtimes`, kept by `install`.
    var attemptOwners: [Int64: Int64] = [:]
    /// Instances whose runtime has halts, unclassified or unpreparable attempts: an index kept by `install`.
    var withWork: Set<Int64> = []
    /// Instances stored as this master's (a claim, a takeover) whose first round was not stored (`resumeOwned`).
    var unresumed: Set<Int64> = []
    /// Wake-ups for retry and delay deadlines (the deadlines themselves are the runtimes').
    nonisolated let retryTimers = RetryTimers()
    /// Wake-ups for timeouts that alert (WARN, WARNFAIL) and workflow timeouts.
    nonisolated let timeoutTimers = DeadlineTimers<TimeoutKey>()
    /// This master's ZooKeeper session: instances it owns carry it.
    var session: Int64 = 0
    /// Sessions that /dead-servers declares dead.
    var deadSessions: Set<Int64> = []
    /// Registered workers (identity → session), to name the dead in /dead-servers.
    var knownWorkers: [String: Int64] = [:]
    /// Masters in the registry at the last listing (nil before the first), by identity.
    var knownMasters: [String: Int64]?
    /// Results of attempts another master owns: not looked up again.
    var foreignResults: Set<Int64> = []
    /// Ready attempts beyond the queue window, per group, smallest key first: an index of the
    /// runtimes' SUBMITTED attempts, changed by `install` (and by the feed once it has stored).
    var backlog: [String: MinHeap<BacklogEntry>] = [:]
    var lastRunningScan = ContinuousClock.now - .seconds(1)
    /// A /running change came in during the quiet period; the 100 ms ticker looks again.
    var runningScanDue = false
    /// When waiting DEPENDENT nodes were last checked.
    var lastDependentCheck = ContinuousClock.now - .seconds(60)
    /// Kill requests to delete on the next pass.
    var staleKillNodes: [String] = []
    /// When /dead-servers was last pruned.
    var lastDeadServerPrune = ContinuousClock.now - .seconds(3600)
    let metrics = MasterMetrics()

    public init(zk: ZooKeeperClient, store: Store, paths: ZooKeeperPaths, options: MasterOptions, logger: Logger) {
        self.zk = zk
        self.store = store
        self.paths = paths
        self.options = options
        self.logger = logger
    }

    /// Runs until cancelled (graceful stop) or fenced by an expired session.
    public func run() async throws {
        // Both ride through a connection loss: ensurePath retries each create, register its create.
        for p in paths.skeleton { try await zk.ensurePath(p) }
        session = zk.sessionID
        try await register()
        try await zk.raiseFence(paths)
        logger.info("master \(options.identity) registered; max \(options.maxWorkflows) workflows")
        let sessions = zk.sessionEvents()
        // Every loop is a child: the first to throw (an expired session) cancels the rest.
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { [zk, logger, wakeups] in
                for await event in sessions {
                    switch event {
                    case .expired: break  // the lease below ends at once
                    case .disconnected: logger.warning("disconnected from ZooKeeper \(zk.connectString); reconnecting")
                    case .connected:
                        logger.info("connected to ZooKeeper")
                        wakeups.mark(.reconcile)
                    }
                }
            }
            group.addTask { [zk, paths, identity = options.identity] in
                // Past the lease another master may adopt this one's instances: every loop of this
                // session ends (the group is cancelled by this throw) and nothing more is written.
                let loss = try await SessionLease.hold(zk, fence: paths.fence(zk.sessionID)) { _ in }
                throw MasterError.leaseLost(identity, loss)
            }
            group.addTask { try await self.heartbeatLoop() }
            group.addTask { try await self.backlogPublishLoop() }
            group.addTask { [wakeups, options] in
                while !Task.isCancelled {
                    try await Task.sleep(for: .seconds(options.commandRescanSeconds))
                    wakeups.mark(.commands)
                    wakeups.mark(.masters)
                }
            }
            group.addTask { [wakeups, options] in
                while !Task.isCancelled {
                    try await Task.sleep(for: .seconds(options.reconcileSeconds))
                    wakeups.mark(.reconcile)
                }
            }
            group.addTask { [retryTimers, wakeups] in try await retryTimers.run { wakeups.mark(.retries) } }
            group.addTask { [timeoutTimers, wakeups] in try await timeoutTimers.run { wakeups.mark(.timeouts) } }
            group.addTask { [wakeups] in
                // Room in a full queue frees as workers claim; look again while a backlog waits.
                while !Task.isCancelled {
                    try await Task.sleep(for: .milliseconds(100))
                    if await self.backlogCount > 0 { wakeups.mark(.feed) }
                    if await self.runningScanDue { wakeups.mark(.running) }
                    if await self.hasDependentWaits { wakeups.mark(.dependents) }
                }
            }
            group.addTask { try await self.scheduleLoop() }
            if let command = options.alertCommand {
                group.addTask { [session] in try await self.alertLoop(command, owner: "\(self.options.identity)#\(session)") }
            }
            if let policy = options.prune { group.addTask { try await self.pruneLoop(policy) } }
            group.addTask { try await self.eventLoop() }
        }
    }

    private func eventLoop() async throws {
        for kind in [Wake.deadServers, .masters, .workers, .commands, .results, .running] { wakeups.mark(kind) }
        for await _ in wakeups.stream {
            try Task.checkCancellation()
            let dirty = wakeups.take()
            do {
                // Instances stored as ours whose first round failed, and adopted attempts not yet
                // looked for in ZooKeeper: carried on before anything else.
                if !unresumed.isEmpty { try await resumeOwned() }
                try await classifyAdoptedBacklog()
                if dirty.contains(.deadServers) { try await processDeadServers() }
                if dirty.contains(.masters) || dirty.contains(.deadServers) { try await processMasters() }
                if dirty.contains(.workers) { try await processWorkers() }
                if dirty.contains(.reconcile) || dirty.contains(.workers) || dirty.contains(.deadServers) {
                    try await reconcile()
                }
                if dirty.contains(.results) { try await processResults() }
                if dirty.contains(.retries) { try await processRetries() }
                if dirty.contains(.timeouts) { try await processTimeouts() }
                if dirty.contains(.dependents) { try await processDependents() }
                if dirty.contains(.running) { try await processRunning() }
                if dirty.contains(.commands) {
                    // The watch first: a command written while the table is read still wakes us.
                    _ = try await zk.exists(paths.commandSignal) { [wakeups] _ in wakeups.mark(.commands) }
                    try await claimControls()
                    try await processChildren()
                    try await claimCommands()
                }
                if dirty.contains(.feed) { try await feedQueues() }
                if dirty.contains(.reconcile) { try await pruneDeadServers() }
                try await processHalts()
                try await failUnpreparable()
            } catch let error as ZooKeeperError where error.cause == .sessionExpired {
                throw MasterError.sessionExpired(options.identity)
            } catch let error as MasterError {
                throw error
            } catch let error where error is ZooKeeperError || error is StoreError {
                // The round that failed dropped its copies: memory is as storage has it. The pass is
                // tried again shortly, from fresh reads.
                logger.warning("\(error); retrying shortly")
                try await Task.sleep(for: .milliseconds(200))
                dirty.forEach { wakeups.mark($0) }
            }
        }
        throw CancellationError()
    }

    // MARK: Registry

    private func register() async throws {
        let path = paths.masters + "/" + options.identity
        do {
            try await zk.register(path, data: heartbeat())
        } catch ZooKeeperError.nodeExists {
            throw MasterError.alreadyRegistered(options.identity)
        }
    }

    private func heartbeat() -> Data {
        WireJSON.encode(Heartbeat(pid: getpid(), startTime: startTime, loadAverage: ProcessStats.loadAverage(),
                                  rssBytes: ProcessStats.residentBytes(), activeInstances: runtimes.count,
                                  database: store.databaseID, databasePath: store.path, backlog: backlogCounts(),
                                  listen: options.listen))
    }

    /// Instances running here, and the backlog's size per group: for `/metrics`.
    public func loadFigures() -> (active: Int, backlog: [String: Int]) {
        (runtimes.count, groupBacklogs.mapValues(\.count))
    }

    /// The backlog per group and workflow priority, for the heartbeat.
    func backlogCounts() -> [String: [Int]] {
        var counts: [String: [Int]] = [:]
        for (group, heap) in groupBacklogs where !heap.isEmpty {
            var byPriority = [0, 0, 0, 0, 0]
            heap.forEach { byPriority[$0.key.workflowPriority.rank] += 1 }
            counts[group] = byPriority
        }
        return counts
    }

    /// Publishes the backlog counts within a second of a change (the heartbeat carries them too).
    private func backlogPublishLoop() async throws {
        var published: [String: Int] = [:]
        while true {
            try await Task.sleep(for: .seconds(1))
            let totals = groupBacklogs.filter { !$0.value.isEmpty }.mapValues(\.count)
            guard totals != published else { continue }
            // Marked published only once written: a failed write is tried again next second.
            do {
                try await zk.setData(paths.masters + "/" + options.identity, heartbeat())
                published = totals
            } catch {
                // An expired session ends the master through its session watch, not here.
                logger.debug("backlog counts not published (\(error)); trying again in a second")
            }
        }
    }

    private func heartbeatLoop() async throws {
        while true {
            try await Task.sleep(for: .seconds(options.heartbeatSeconds))
            _ = try? await zk.setData(paths.masters + "/" + options.identity, heartbeat())
        }
    }

    // MARK: Commands

    func claimCommands() async throws {
        while busyInstanceCount < options.maxWorkflows,
              let claimed = try await store.claimCommand(host: options.identity, session: session, now: ProcessStats.now()) {
            // Stored as ours now; memory has it once its first round is stored (else resumeOwned).
            unresumed.insert(claimed.instance.id!)
            var runtime = InstanceRuntime(ActiveInstance(claimed))
            if let submitted = claimed.commandSubmitTime { metrics.claimLatency.record(seconds: ProcessStats.now() - submitted) }
            let id = runtime.id
            logger.info("instance \(id) of '\(runtime.instance.definition.name)' v\(claimed.instance.version) started")
            let effects = runtime.instance.engine.handle(.start)
            scheduleWorkflowTimeout(&runtime)
            var round = Round()
            round.runtimes[id] = runtime
            apply(effects, to: id, &round)
            try await commit(&round)
        }
        // Full: the commands left wait for a slot here or on another master, first come first served.
        if busyInstanceCount >= options.maxWorkflows { try await store.markWaiting() }
    }
}


extension ZooKeeperError {
    /// The case without its associated path, for matching a kind of failure.
    var kindOnly: ZooKeeperError {
        switch self {
        case .connectionLoss: return .connectionLoss("")
        case .operationTimeout: return .operationTimeout("")
        case .nodeExists: return .nodeExists("")
        case .noNode: return .noNode("")
        default: return self
        }
    }
}
