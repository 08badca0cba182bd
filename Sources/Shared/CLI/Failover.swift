import Foundation

/// What `ds-failover --list` finds.
public struct FailoverReport: Codable, Sendable {
    public struct Instance: Codable, Sendable {
        public var id: Int64
        public var name: String
        public var owner: String?
        public var ownerSession: Int64?
    }
    public struct Attempt: Codable, Sendable {
        public var taskInstanceId: Int64
        public var workflowInstanceId: Int64
        public var taskName: String
        public var state: TaskState
        public var reason: String
    }
    public struct QueueItem: Codable, Sendable {
        public var path: String
        public var workflowInstanceId: Int64
        public var workflowState: String
    }
    public var deadServers: [String] = []
    public var orphanedInstances: [Instance] = []
    public var orphanedTasks: [Attempt] = []
    public var staleQueueItems: [QueueItem] = []
}

/// What a forced failover moved (or, with `--dry-run`, would move).
public struct ForcedFailover: Codable, Sendable {
    public var type: String
    public var server: String
    public var session: Int64
    public var marker: String
    public var dryRun: Bool
    public var instances: [Int64] = []
    public var tasks: [Int64] = []
}

/// `ds-failover`: inspect orphaned work, and declare a hung master or worker dead now.
public enum Failover {
    /// Dead servers, instances whose owner session is not registered, attempts that are in no
    /// queue and on no live worker, and queue items of finished workflows.
    public static func list(zk: ZooKeeperClient, store: Store, paths: ZooKeeperPaths) async throws -> FailoverReport {
        var report = FailoverReport()
        let deadNames = try await zk.childrenIfPresent(paths.deadServers)
        report.deadServers = deadNames.sorted()
        let dead = Set(deadNames.compactMap(DeadServer.init).map(\.session))
        let masters = try await zk.childrenIfPresent(paths.masters)
        let liveMasters = try await zk.ephemeralOwners(of: masters, under: paths.masters).subtracting(dead)
        let running = try await store.runningInstances()
        for i in running where !(i.masterSession.map(liveMasters.contains) ?? false) {
            report.orphanedInstances.append(.init(id: i.id!, name: i.name, owner: i.host, ownerSession: i.masterSession))
        }
        var instancePriority: [Int64: Priority] = [:]
        for i in running { instancePriority[i.id!] = i.priority }
        for a in try await store.inFlightAttempts() {
            let key = TaskQueueKey(workflowPriority: instancePriority[a.workflowInstanceId] ?? .medium,
                                   workflowInstanceId: a.workflowInstanceId, taskPriority: a.priority, taskInstanceId: a.id!)
            let reason: String
            switch try await AttemptWhereabouts.locate(a.id!, queuePath: paths.queueItem(a.workerGroup, key), zk: zk, paths: paths) {
            case .queued, .reported: continue
            case .running(let holder):
                guard dead.contains(holder) else { continue }
                reason = "running on a worker declared dead"
            case .nowhere:
                reason = "in no queue and on no live worker"
            }
            report.orphanedTasks.append(.init(taskInstanceId: a.id!, workflowInstanceId: a.workflowInstanceId,
                                              taskName: a.taskName, state: a.state, reason: reason))
        }
        var queued: [(String, TaskQueueKey)] = []
        for group in try await zk.childrenIfPresent(paths.queue) {
            for name in try await zk.childrenIfPresent(paths.queue(group)) {
                if let key = TaskQueueKey(name) { queued.append((paths.queue(group) + "/" + name, key)) }
            }
        }
        let states = try await store.instanceStates(Array(Set(queued.map(\.1.workflowInstanceId))))
        for (path, key) in queued.sorted(by: { $0.0 < $1.0 }) {
            let state = states[key.workflowInstanceId]
            if state == nil || state!.isTerminal {
                report.staleQueueItems.append(.init(path: path, workflowInstanceId: key.workflowInstanceId,
                                                    workflowState: state?.rawValue ?? "UNKNOWN"))
            }
        }
        return report
    }

    /// Declares a registered server dead now: writes `/dead-servers/<type>_<host:port>_<session>`.
    /// Live masters then take over its instances (a master) or resubmit its tasks (a worker); the
    /// server itself, when it wakes, finds the record and fences itself.
    public static func force(type: String, server: String, dryRun: Bool, zk: ZooKeeperClient, store: Store,
                             paths: ZooKeeperPaths) async throws -> ForcedFailover {
        var session: Int64?
        if type == "master" {
            session = try await zk.exists(paths.masters + "/" + server)?.ephemeralOwner
        } else {
            for group in try await zk.childrenIfPresent(paths.workers) {
                if let s = try await zk.exists(paths.workerGroup(group) + "/" + server)?.ephemeralOwner { session = s }
            }
        }
        guard let session else { throw FailoverError.notRegistered(type: type, server: server) }
        let marker = paths.deadServer(DeadServer(type: type, identity: server, session: session))
        var result = ForcedFailover(type: type, server: server, session: session, marker: marker, dryRun: dryRun)
        if type == "master" {
            result.instances = try await store.runningInstances().filter { $0.masterSession == session }.map { $0.id! }
        } else {
            for a in try await store.inFlightAttempts() {
                if try await zk.exists(paths.running(a.id!))?.ephemeralOwner == session { result.tasks.append(a.id!) }
            }
        }
        if !dryRun {
            // The fence first: once the marker exists, masters act on it, and by then nothing the
            // hung server sends can be written any more.
            try await zk.lowerFence(of: session, paths)
            do { try await zk.create(marker) } catch ZooKeeperError.nodeExists {}
        }
        return result
    }
}

public enum FailoverError: Error, CustomStringConvertible, ExitStatusProviding {
    case notRegistered(type: String, server: String)
    public var description: String {
        switch self {
        case .notRegistered(let type, let server):
            return "no \(type) \(server) is registered; a server that is already gone is failed over by the masters on their own (see ds-failover --list)"
        }
    }
    public var exitStatus: ExitStatus { .dataError }
}
