import Foundation

/// `/dead-servers` gains a record for every server that leaves (each worker stop, each takeover),
/// and every master lists it on every change: unpruned, the listing grows past ZooKeeper's
/// response limit and then fails for ever. A record is needed only while the session it names
/// can still act: a hung server whose session lives reads it and fences itself, and masters
/// treat that session's nodes as dead. Once the session is gone (it no longer holds the server's
/// registry node, so it closed or expired and can never read the record again), the record is
/// kept for `deadServerRetentionSeconds` for operators (`ds-failover --list`), then deleted.
///
/// Bound: the records of the servers that left within the retention period, plus one per hung
/// server whose session still lives.
extension MasterScheduler {
    func pruneDeadServers() async throws {
        let now = ContinuousClock.now
        let interval = min(options.deadServerPruneSeconds, options.deadServerRetentionSeconds)
        guard now - lastDeadServerPrune >= .seconds(interval) else { return }
        let names = try await zk.childrenIfPresent(paths.deadServers)
        let records = names.compactMap { name in DeadServer(name).map { (name, $0) } }
        guard !records.isEmpty else {
            lastDeadServerPrune = now
            return
        }
        // Sessions that hold a registry node now; read from listings that succeeded (a failure throws).
        var live = try await zk.ephemeralOwners(of: try await zk.childrenIfPresent(paths.masters), under: paths.masters)
        for group in try await zk.childrenIfPresent(paths.workers) {
            let registry = paths.workerGroup(group)
            live.formUnion(try await zk.ephemeralOwners(of: try await zk.childrenIfPresent(registry), under: registry))
        }
        let cutoff = Int64((ProcessStats.now() - options.deadServerRetentionSeconds) * 1000)
        let candidates = records.filter { !live.contains($0.1.session) && $0.1.session != session }
        let ages = try await candidates.concurrentMap(limit: Self.lookupConcurrency) { [zk, paths] record in
            try await zk.exists(paths.deadServers + "/" + record.0)?.createdMillis
        }
        var pruned = 0
        for (record, created) in zip(candidates, ages) {
            guard let created, created <= cutoff else { continue }
            do {
                try await zk.delete(paths.deadServers + "/" + record.0)
                pruned += 1
            } catch ZooKeeperError.noNode {}  // another master pruned it
        }
        lastDeadServerPrune = now
        if pruned > 0 { logger.info("pruned \(pruned) /dead-servers records of sessions that are gone") }
    }
}
