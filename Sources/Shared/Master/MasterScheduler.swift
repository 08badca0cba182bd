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

    var active: [Int64: ActiveInstance] = [:]
    /// Attempts this master dispatched (or adopted) and waits for, by task instance id.
    var attempts: [Int64: AttemptRef] = [:]
    var seenRunning: Set<Int64> = []
    nonisolated let retryTimers = RetryTimers()
    /// Task timeouts that alert (WARN, WARNFAIL) and workflow timeouts.
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
    /// Ready attempts beyond the queue window, per group, smallest key first.
    var backlog: [String: MinHeap<BacklogEntry>] = [:]
    var lastRunningScan = ContinuousClock.now - .seconds(1)
    /// A /running change came in during the quiet period; the 100 ms ticker looks again.
    var runningScanDue = false
    /// SUBMITTED attempts of adopted instances, not yet checked against ZooKeeper.
    var unclassified: [(ref: AttemptRef, entry: BacklogEntry)] = []
    /// Instances whose memory the current pass of the loop has changed. If the pass fails half-way
    /// (a connection loss, a busy database), memory may be ahead of what is stored: they are dropped
    /// and adopted again from storage (`reload`) before anything else happens.
    var touched: Set<Int64> = []
    /// Instances to adopt again from storage after a failed pass.
    var pendingReload: Set<Int64> = []
    /// Attempts whose queue item could not be built (`enqueue`), to fail with the reason.
    var unpreparable: [(id: Int64, instance: Int64, task: String, message: String)] = []
    /// Attempts of pausing or stopping instances to take out of the queue or kill (`processHalts`).
    var pendingHalts: [Halt] = []
    /// Attempts the engine asked to halt (instance, task, attempt, stop), not yet looked up.
    var haltRequests: [(instance: Int64, task: String, attempt: Int, stop: Bool)] = []
    /// Kill requests this master wrote, by attempt: deleted if the attempt ends without its worker
    /// (which deletes its own once it has reported), so none outlives a worker that never returns.
    var killNodes: [Int64: String] = [:]
    /// SUB_PROCESS attempts waiting for their child instance, by attempt id.
    var childWaits: [Int64: ChildWait] = [:]
    /// Children to pause or stop with their parent.
    var childHalts: [(child: Int64, stop: Bool)] = []
    /// DEPENDENT attempts waiting for what they depend on, by attempt id; when they were last checked.
    var dependentWaits: [Int64: DependentWait] = [:]
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
                    if await !self.dependentWaits.isEmpty { wakeups.mark(.dependents) }
                }
            }
            group.addTask { try await self.scheduleLoop() }
            if let command = options.alertCommand {
                group.addTask { [session] in try await self.alertLoop(command, owner: "\(self.options.identity)#\(session)") }
            }
            group.addTask { try await self.eventLoop() }
        }
    }

    private func eventLoop() async throws {
        for kind in [Wake.deadServers, .masters, .workers, .commands, .results, .running] { wakeups.mark(kind) }
        for await _ in wakeups.stream {
            try Task.checkCancellation()
            let dirty = wakeups.take()
            touched = []
            do {
                if !pendingReload.isEmpty { try await reload() }
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
                // Whatever the pass changed in memory may not be stored: adopt it again from storage.
                pendingReload.formUnion(touched)
                let undone = touched.isEmpty ? "" : "; instances \(touched.sorted()) are read again from storage"
                logger.warning("\(error)\(undone); retrying shortly")
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
                                  rssBytes: ProcessStats.residentBytes(), activeInstances: active.count,
                                  database: store.databaseID, databasePath: store.path, backlog: backlogCounts(),
                                  listen: options.listen))
    }

    /// Instances running here, and the backlog's size per group: for `/metrics`.
    public func loadFigures() -> (active: Int, backlog: [String: Int]) {
        (active.count, groupBacklogs.mapValues(\.count))
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

    private func claimCommands() async throws {
        while busyInstanceCount < options.maxWorkflows,
              let claimed = try await store.claimCommand(host: options.identity, session: session, now: ProcessStats.now()) {
            var instance = ActiveInstance(claimed)
            if let submitted = claimed.commandSubmitTime { metrics.claimLatency.record(seconds: ProcessStats.now() - submitted) }
            touched.insert(instance.id)
            logger.info("instance \(instance.id) of '\(instance.definition.name)' v\(claimed.instance.version) started")
            let effects = instance.engine.handle(.start)
            active[instance.id] = instance
            scheduleWorkflowTimeout(instance)
            var round = Round()
            apply(effects, to: instance.id, &round)
            try await commit(&round)
        }
        // Full: the commands left wait for a slot here or on another master, first come first served.
        if busyInstanceCount >= options.maxWorkflows { try await store.markWaiting() }
    }

    // MARK: Results

    private func processResults() async throws {
        let names = try await zk.children(paths.results) { [wakeups] _ in wakeups.mark(.results) }
        let ids = names.compactMap(Int64.init)
        // Other masters delete their results; an id no longer listed never comes back.
        foreignResults.formIntersection(ids)
        let mine = ids.filter { attempts[$0] != nil }
        let unknown = ids.filter { attempts[$0] == nil && !foreignResults.contains($0) }
        if !unknown.isEmpty { try await processUnexpectedResults(unknown) }
        guard !mine.isEmpty else { return }
        let messages = try await withThrowingTaskGroup(of: TaskResultMessage?.self) { group in
            for id in mine {
                group.addTask { [zk, paths] in
                    do {
                        let (data, _) = try await zk.getData(paths.result(id))
                        // A node that is no result of this attempt (written past the workers) is
                        // read as the attempt's failure, not as another attempt's result.
                        guard let m = try? WireJSON.decode(TaskResultMessage.self, data), m.taskInstanceId == id else {
                            return TaskResultMessage(taskInstanceId: id, state: .failure, exitCode: nil, worker: "?", pid: nil,
                                                     logPath: "", startTime: ProcessStats.now(), endTime: ProcessStats.now(),
                                                     outputs: [:], message: "its result node \(paths.result(id)) could not be read")
                        }
                        return m
                    } catch ZooKeeperError.noNode { return nil }
                }
            }
            var all: [TaskResultMessage] = []
            for try await m in group { if let m { all.append(m) } }
            return all
        }
        try FaultPoint.hit("master-results-read")
        // Supervisor deaths already stored for the tasks whose attempt just saw one (rare: read here,
        // before the round, so the round is planned from reads that succeeded).
        var supervisorDeaths: [Int64: Int] = [:]
        for m in messages where m.supervisorLost == true && m.state == .needFaultTolerance {
            guard let ref = attempts[m.taskInstanceId], let instance = active[ref.instance] else { continue }
            supervisorDeaths[m.taskInstanceId] = try await store.supervisorDeaths(instance: ref.instance, task: ref.task, run: instance.record.run)
        }
        var round = Round()
        for m in messages {
            guard let ref = attempts.removeValue(forKey: m.taskInstanceId) else { continue }
            // Its worker deletes its kill request after reporting; this covers one that died in between.
            if let node = killNodes.removeValue(forKey: m.taskInstanceId) { staleKillNodes.append(node) }
            let (instanceID, taskName) = (ref.instance, ref.task)
            touched.insert(instanceID)
            seenRunning.remove(m.taskInstanceId)
            round.consumed.append((m.taskInstanceId, instanceID))
            let outputsJSON = m.outputs.isEmpty ? nil : String(decoding: WireJSON.encode(m.outputs), as: UTF8.self)
            round.batch.outcomes.append(AttemptOutcome(
                taskInstanceId: m.taskInstanceId, workflowInstanceId: instanceID, state: m.state, host: m.worker, pid: m.pid, logPath: m.logPath,
                exitCode: m.exitCode, outputJson: outputsJSON, message: m.message, startTime: m.startTime, endTime: m.endTime))
            guard active[instanceID] != nil else { continue }
            if m.state == .needFaultTolerance && active[instanceID]!.isHalting {
                // Stopped with its worker while its instance pauses or stops: it runs again on resume.
                round.batch.outcomes.removeLast()
                endHalted(m.taskInstanceId, ref, stop: active[instanceID]!.engine.state == .readyStop,
                          message: "stopped with its worker while the instance was halting", now: ProcessStats.now(), &round)
                continue
            }
            if let earlier = supervisorDeaths[m.taskInstanceId], earlier + 1 >= Limits.supervisorDeathsBeforeFailure {
                // No failover loop: a task that keeps killing its supervisor fails.
                let why = "its attempts saw the task supervisor die \(earlier + 1) times (a task that kills its parent process?); it fails instead of running again"
                round.batch.outcomes[round.batch.outcomes.count - 1].state = .failure
                round.batch.outcomes[round.batch.outcomes.count - 1].message = why
                logger.warning("instance \(instanceID): '\(taskName)' \(why)")
                apply(active[instanceID]!.engine.handle(.taskFinished(task: taskName, outcome: .failure)), to: instanceID, &round)
                continue
            }
            if m.state == .needFaultTolerance {
                // Killed by its worker's own stop, or with its task supervisor: it fails over as if the worker had died (a new
                // attempt with the same number, not a retry); the engine still waits for the task.
                logger.notice("instance \(instanceID): attempt \(m.taskInstanceId) of '\(taskName)' was stopped with its worker; resubmitting")
                newAttempt(instanceID, taskName, ref.attempt, &round)
                continue
            }
            if m.state == .success { active[instanceID]!.recordOutputs(of: taskName, m.outputs) }
            // Also when no timer saw it: it ended before this master looked (a short timeout, or a
            // takeover that came after its end). The row is one either way (its dedup key).
            if let timeout = active[instanceID]!.task(taskName).alertingTimeout,
               m.timedOut == true || m.endTime - m.startTime > timeout {
                round.batch.alerts.append(taskTimeoutAlert(m.taskInstanceId, ref, worker: m.worker, killed: m.timedOut == true))
            }
            let outcome: TaskOutcome = m.state == .success ? .success : (m.state == .kill ? .killed : .failure)
            let effects = active[instanceID]!.engine.handle(.taskFinished(task: taskName, outcome: outcome))
            apply(effects, to: instanceID, &round)
        }
        try await commit(&round)
    }

    private func processRetries() async throws {
        let due = retryTimers.takeDue(now: ProcessStats.now())
        guard !due.isEmpty else { return }
        var round = Round()
        for (instanceID, task) in due where active[instanceID] != nil {
            touched.insert(instanceID)
            let effects = active[instanceID]!.engine.handle(.retryDue(task: task))
            apply(effects, to: instanceID, &round)
        }
        try await commit(&round)
    }

    /// Marks attempts RUNNING once their worker has claimed them, at most ten times a second:
    /// the mark is for people watching, and listing /running on every claim costs ZooKeeper work.
    private func processRunning() async throws {
        let since = ContinuousClock.now - lastRunningScan
        if since < .milliseconds(100) {
            runningScanDue = true
            return
        }
        lastRunningScan = .now
        runningScanDue = false
        let names = try await zk.children(paths.running) { [wakeups] _ in wakeups.mark(.running) }
        var round = Round()
        let now = ProcessStats.now()
        let fresh = names.compactMap(Int64.init).filter { !seenRunning.contains($0) && attempts[$0] != nil }
        // Which worker runs each, and where its log is: kept even if the worker dies before it
        // reports (ds-instance show, ds-logs). Read together, one round trip.
        let holders = try await withThrowingTaskGroup(of: (Int64, RunningTask?).self) { group in
            for id in fresh {
                group.addTask { [zk, paths] in
                    guard let (data, _) = try await zk.getDataIfPresent(paths.running(id)) else { return (id, nil) }
                    do { return (id, try WireJSON.decode(RunningTask.self, data)) } catch { return (id, nil) }  // no names, then
                }
            }
            var all: [Int64: RunningTask] = [:]
            for try await (id, holder) in group { all[id] = holder }
            return all
        }
        for id in fresh {
            guard let ref = attempts[id] else { continue }
            touched.insert(ref.instance)
            seenRunning.insert(id)
            scheduleTaskTimeout(id, ref, startedAt: holders[id]?.startTime ?? now)
            round.batch.started.append((id, ref.instance, now, holders[id]?.worker, holders[id]?.logPath))
        }
        try await commit(&round)
    }

    // MARK: Effects

    /// What one pass of the loop writes: one database transaction, then pipelined ZooKeeper calls.
    struct Round {
        var batch = SchedulingBatch()
        /// Queue nodes to create: path and encoded `QueuedTask`.
        var queued: [(path: String, data: Data)] = []
        /// Results stored this round, with their instance: deleted once stored, if still ours.
        var consumed: [(id: Int64, instance: Int64)] = []
    }

    func apply(_ effects: [EngineEffect], to instanceID: Int64, _ round: inout Round) {
        touched.insert(instanceID)
        let now = ProcessStats.now()
        // A decision's own effects join the list (no recursion down a chain of branch nodes).
        var effects = effects
        var next = 0
        while next < effects.count {
            let effect = effects[next]
            next += 1
            switch effect {
            case .decide(let taskName):
                effects += decide(instanceID, taskName, &round)
            case .dispatch(let taskName, let attempt):
                newAttempt(instanceID, taskName, attempt, &round)
            case .scheduleRetry(let taskName, let attempt, let seconds):
                logger.info("instance \(instanceID): task '\(taskName)' failed; attempt \(attempt) in \(seconds)s")
                retryTimers.schedule(instance: instanceID, taskName, at: now + seconds)
            case .scheduleDelay(let taskName, let seconds):
                logger.info("instance \(instanceID): task '\(taskName)' is ready; starts in \(DurationText.format(seconds)) (delay)")
                retryTimers.schedule(instance: instanceID, taskName, at: now + seconds)
            case .kill(let taskName, let attempt):
                halt(instanceID, task: taskName, attempt: attempt, stop: true)
            case .withdraw(let taskName, let attempt):
                halt(instanceID, task: taskName, attempt: attempt, stop: false)
            case .finish(let state):
                round.batch.finishedInstances.append((instanceID, state, now))
                round.batch.alerts += endAlerts(instanceID, state, now: now)
                logger.info("instance \(instanceID) of '\(active[instanceID]!.definition.name)' ended \(state.rawValue)")
            }
        }
    }

    /// Decides a branch node on the spot: its row is stored ended, with the branch it chose, at
    /// its place among this round's outcomes; returns the engine's effects of the decision.
    func decide(_ instanceID: Int64, _ taskName: String, _ round: inout Round) -> [EngineEffect] {
        let now = ProcessStats.now()
        let task = active[instanceID]!.task(taskName)
        var record = TaskInstanceRecord(
            id: nil, workflowInstanceId: instanceID, taskName: taskName, attempt: 1, state: .success,
            priority: task.priority, workerGroup: task.workerGroup, submitTime: now, run: active[instanceID]!.record.run)
        (record.startTime, record.endTime) = (now, now)
        let event: EngineEvent
        switch active[instanceID]!.decide(taskName) {
        case .success(let decision):
            record.message = decision.message
            record.branchJson = String(decoding: WireJSON.encode(decision.branch), as: UTF8.self)
            event = .decided(task: taskName, branch: decision.branch)
            logger.info("instance \(instanceID): \(task.type.rawValue) '\(taskName)': \(decision.message)")
        case .failure(let problem):
            record.state = .failure
            record.message = problem.description
            event = .taskFinished(task: taskName, outcome: .failure)
            logger.warning("instance \(instanceID): \(task.type.rawValue) '\(taskName)' failed: \(problem)")
        }
        round.batch.decisions.append((round.batch.outcomes.count, record))
        return active[instanceID]!.engine.handle(event)
    }

    /// A new attempt row for a task the engine started (or whose attempt was lost with its worker).
    func newAttempt(_ instanceID: Int64, _ taskName: String, _ attempt: Int, _ round: inout Round) {
        touched.insert(instanceID)
        let task = active[instanceID]!.task(taskName)
        var record = TaskInstanceRecord(
            id: nil, workflowInstanceId: instanceID, taskName: taskName, attempt: attempt, state: .dispatched,
            priority: task.priority, workerGroup: task.workerGroup, submitTime: ProcessStats.now(),
            run: active[instanceID]!.record.run, pool: task.pool)
        if task.type == .subProcess || task.type == .dependent {
            // Runs from now on the master: a child is stored with it (Store.startChild), or it waits
            // for its dependencies (processDependents).
            record.state = .running
            record.startTime = record.submitTime
            record.runsOnMaster = true
            if task.type == .subProcess { record.childRequest = active[instanceID]!.childRequest(taskName) }
        }
        round.batch.newAttempts.append(record)
    }

    func commit(_ round: inout Round) async throws {
        guard !round.batch.isEmpty || !round.consumed.isEmpty else { return }
        // New attempts go to ZooKeeper as far as the window has room (in key order: the sort is
        // stable and ids follow insertion order); the rest wait as SUBMITTED in the backlog.
        if !round.batch.newAttempts.isEmpty {
            var room = try await self.room(for: Set(round.batch.newAttempts.map(\.workerGroup)))
            for g in room.keys where !(backlog[g]?.isEmpty ?? true) { room[g] = 0 }  // the backlog goes first
            // Sort keys made once per attempt, not per comparison (a round can hold a million).
            let new = round.batch.newAttempts
            let keys = new.enumerated().map { i, a in
                (active[a.workflowInstanceId]?.record.priority.rank ?? 0, a.workflowInstanceId, a.priority.rank, i)
            }
            round.batch.newAttempts = new.indices.sorted { keys[$0] < keys[$1] }.map { new[$0] }
            for i in round.batch.newAttempts.indices {
                let g = round.batch.newAttempts[i].workerGroup
                if round.batch.newAttempts[i].runsOnMaster {
                    continue  // SUB_PROCESS, DEPENDENT: no queue
                } else if round.batch.newAttempts[i].pool != nil {
                    round.batch.newAttempts[i].state = .submitted  // it waits for a slot of its pool (feedPools)
                } else if room[g, default: 0] > 0 {
                    room[g]! -= 1
                } else {
                    round.batch.newAttempts[i].state = .submitted
                }
            }
        }
        let applied = round.batch.isEmpty ? AppliedBatch(inserted: [], lostOwnership: [])
            : try await store.apply(round.batch, session: session)
        if !applied.lostOwnership.isEmpty { forget(applied.lostOwnership) }
        try FaultPoint.hit("master-after-commit")
        var childrenMoved = false
        for attempt in applied.inserted where attempt.runsOnMaster {
            let ref = AttemptRef(instance: attempt.workflowInstanceId, task: attempt.taskName, attempt: attempt.attempt, queuePath: "")
            if attempt.childRequest == nil {
                dependentWaits[attempt.id!] = DependentWait(ref: ref, since: attempt.submitTime)
                lastDependentCheck = .now - .seconds(60)
                wakeups.mark(.dependents)
                continue
            }
            if let problem = applied.childProblems[attempt.id!] {
                unpreparable.append((attempt.id!, attempt.workflowInstanceId, attempt.taskName, "no child instance started: \(problem)"))
            } else if let child = attempt.childInstanceId {
                childWaits[attempt.id!] = ChildWait(ref: ref, child: child)
                childrenMoved = true
                logger.info("instance \(attempt.workflowInstanceId): SUB_PROCESS '\(attempt.taskName)' started child instance \(child)")
            }
        }
        for finished in round.batch.finishedInstances where active[finished.id]?.record.parentInstanceId != nil { childrenMoved = true }
        for attempt in applied.inserted where attempt.state == .submitted {
            guard let instance = active[attempt.workflowInstanceId] else { continue }
            let key = TaskQueueKey(workflowPriority: instance.record.priority, workflowInstanceId: attempt.workflowInstanceId,
                                   taskPriority: attempt.priority, taskInstanceId: attempt.id!)
            let entry = BacklogEntry(key: key, group: attempt.workerGroup, instance: attempt.workflowInstanceId, task: attempt.taskName,
                                     attempt: attempt.attempt, submitTime: attempt.submitTime, pool: attempt.pool)
            backlog[entry.heapKey, default: MinHeap()].push(entry)
        }
        var readySince: [Double] = []
        for attempt in applied.inserted where attempt.state == .dispatched {
            if let item = enqueue(attempt.id!, instance: attempt.workflowInstanceId, task: attempt.taskName, attempt: attempt.attempt) {
                round.queued.append(item)
                readySince.append(attempt.submitTime)
            }
        }
        // An instance never finishes with attempts in the backlog (they count as running in its
        // engine); feedQueues skips any entry whose instance is gone, so nothing is purged here.
        for finished in round.batch.finishedInstances { active.removeValue(forKey: finished.id) }
        if !round.batch.finishedInstances.isEmpty {
            // A run's timers end with it: a retry or delay of this run must not fire in the next.
            let ended = Set(round.batch.finishedInstances.map(\.id))
            timeoutTimers.cancel(instances: ended)
            retryTimers.cancel(instances: ended)
        }
        // Only results stored under this master's ownership are deleted: a master failed over while
        // it hung must leave the results it read to the new owner.
        let consumed = round.consumed.filter { !applied.lostOwnership.contains($0.instance) }.map(\.id)
        try await writeRound(creates: round.queued, deletes: consumed.map { paths.result($0) })
        metrics.dispatched(readySince: readySince)
        metrics.stored(round.batch, lost: applied.lostOwnership)
        if !consumed.isEmpty && backlogCount > 0 { wakeups.mark(.feed) }
        if !round.batch.finishedInstances.isEmpty { wakeups.mark(.commands) }
        // Another master may run the child, or the parent: wake every master's command pass.
        if childrenMoved { try await signalMasters() }
        round = Round()
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
