import Foundation

/// The bounded window: at most `queueWindow` items wait in `/queue/<group>`; the rest of the
/// ready attempts wait in the database as SUBMITTED and in this master's backlog, and are fed
/// in key order as room frees. ZooKeeper never holds a million nodes, and no listing of a
/// queue comes near its response size limit.
extension MasterScheduler {
    /// A ready attempt waiting outside ZooKeeper.
    struct BacklogEntry: Comparable, Sendable {
        var key: TaskQueueKey
        var group: String
        var instance: Int64
        var task: String
        var attempt: Int
        static func < (a: BacklogEntry, b: BacklogEntry) -> Bool { a.key < b.key }
        static func == (a: BacklogEntry, b: BacklogEntry) -> Bool { a.key == b.key }
    }

    /// How many more items each group's queue may take now.
    func room(for groups: Set<String>) async throws -> [String: Int] {
        var room: [String: Int] = [:]
        for group in groups {
            let queued = try await zk.exists(paths.queue(group))?.childCount ?? 0
            room[group] = max(0, options.queueWindow - Int(queued))
        }
        return room
    }

    /// Moves backlog entries into ZooKeeper while there is room, then records them DISPATCHED.
    func feedQueues() async throws {
        let groups = Set(backlog.filter { !$0.value.isEmpty }.keys)
        guard !groups.isEmpty else { return }
        let room = try await room(for: groups)
        var fed: [(id: Int64, path: String, task: QueuedTask)] = []
        for group in groups.sorted() {
            var left = room[group] ?? 0
            while left > 0, let entry = backlog[group]?.pop() {
                // In place, as in `commit`: no copy of the instance per task.
                guard let (task, command, env) = active[entry.instance]?.prepare(entry.task),
                      let instance = active[entry.instance] else { continue }
                let id = entry.key.taskInstanceId
                let path = paths.queue(group) + "/" + entry.key.description
                attempts[id] = AttemptRef(instance: entry.instance, task: entry.task, attempt: entry.attempt, queuePath: path)
                fed.append((id, path, QueuedTask(
                    taskInstanceId: id, workflowInstanceId: entry.instance, workflowName: instance.definition.name,
                    taskName: entry.task, attempt: entry.attempt, command: command, env: env, timeout: task.timeout,
                    timeoutStrategy: task.timeoutStrategy, master: options.identity)))
                left -= 1
            }
        }
        guard !fed.isEmpty else { return }
        try await createQueueNodes(fed.map { ($0.path, $0.task) })
        try await store.markDispatched(fed.map(\.id), session: session)
    }

    func createQueueNodes(_ nodes: [(path: String, task: QueuedTask)]) async throws {
        try await writeRound(creates: nodes.map { ($0.path, WireJSON.encode($0.task)) }, deletes: [])
    }

    /// A round's ZooKeeper writes as a few `multi`s of up to 200 operations: one request and one
    /// transaction each instead of one per node. A chunk that fails as a whole (a node created by
    /// an earlier try whose answer was lost, a result already deleted) is redone one node at a time.
    func writeRound(creates: [(path: String, data: Data)], deletes: [String]) async throws {
        let ops: [ZooKeeperOperation] = creates.map { .create(path: $0.path, data: $0.data, mode: .persistent) }
            + deletes.map { .delete(path: $0) }
        try await withThrowingDiscardingTaskGroup { group in
            for chunk in ops.chunked(200) {
                group.addTask { [zk] in
                    do {
                        try await zk.multi(chunk)
                    } catch let error as ZooKeeperError where [.nodeExists(""), .noNode("")].contains(error.cause.kindOnly) {
                        try await Self.writeOneByOne(chunk, zk)
                    }
                }
            }
        }
    }

    private static func writeOneByOne(_ ops: [ZooKeeperOperation], _ zk: ZooKeeperClient) async throws {
        for op in ops {
            switch op {
            case .create(let path, let data, _):
                do {
                    try await zk.create(path, data: data)
                } catch ZooKeeperError.nodeExists {
                } catch ZooKeeperError.noNode {
                    try await zk.ensurePath((path as NSString).deletingLastPathComponent)
                    do { try await zk.create(path, data: data) } catch ZooKeeperError.nodeExists {}
                }
            case .delete(let path, _):
                do { try await zk.delete(path) } catch ZooKeeperError.noNode {}
            default:
                break
            }
        }
    }

    var backlogCount: Int { backlog.values.reduce(0) { $0 + $1.count } }
}
