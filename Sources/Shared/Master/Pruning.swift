import Foundation

/// `--prune-older-than`: a master removes finished instances on a timer, as `ds-instance prune`
/// does. Once soon after it starts (a few seconds, jittered, so that masters started together do
/// not prune together), then every `--prune-every` (1 h by default) with a tenth of jitter. Any
/// number of masters may prune at once: each batch selects and deletes in one transaction, so two
/// prunes only split the work (SQLite serialises them; a row deleted by one is not seen by the other).
extension MasterScheduler {
    nonisolated func pruneLoop(_ policy: PrunePolicy) async throws {
        let every = options.pruneEverySeconds
        var delay = Double.random(in: 1...5)
        while !Task.isCancelled {
            try await Task.sleep(for: .seconds(delay))
            delay = every * Double.random(in: 0.9...1.1)
            do {
                let report = try await store.prune(policy, now: ProcessStats.now())
                if report.instances.isEmpty {
                    logger.debug("prune: no finished instance older than \(DurationText.format(policy.olderThan))")
                } else {
                    let age = DurationText.format(policy.olderThan)
                    logger.info("prune: removed \(report.instances.count) instances (\(report.topLevel) top-level) and \(report.attempts) attempts older than \(age) in \(report.batches) batches")
                }
            } catch is CancellationError {
                return
            } catch {
                // The next round prunes what this one left: a busy database is no reason to stop.
                logger.warning("prune: \(error); trying again in a minute")
                delay = min(delay, 60)
            }
        }
    }
}
