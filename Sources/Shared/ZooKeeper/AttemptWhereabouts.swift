/// Where an attempt stands in its life, as ZooKeeper shows it.
public enum AttemptWhereabouts: Sendable, Equatable {
    /// Its queue node waits for a worker.
    case queued
    /// A worker holds it; `session` owns the ephemeral `/running` node.
    case running(session: Int64)
    /// Its result waits for a master.
    case reported
    /// None of these: lost with its worker, or never queued.
    case nowhere

    /// Looks in the order of an attempt's life: queue, then running, then result. A worker moves
    /// an attempt forward with one `multi` (claim: queue → running; report: running → result),
    /// and only a master deletes a result, so an attempt that is alive is seen by a later read
    /// even if it moves between two of them. Found nowhere therefore means lost.
    public static func locate(_ taskInstanceID: Int64, queuePath: String, zk: ZooKeeperClient,
                              paths: ZooKeeperPaths) async throws -> AttemptWhereabouts {
        if try await zk.exists(queuePath) != nil { return .queued }
        if let stat = try await zk.exists(paths.running(taskInstanceID)) { return .running(session: stat.ephemeralOwner) }
        if try await zk.exists(paths.result(taskInstanceID)) != nil { return .reported }
        return .nowhere
    }
}
