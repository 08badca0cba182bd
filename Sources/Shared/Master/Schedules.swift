import Foundation

/// Cron firing. Every master fires due schedules; the store's compare-and-set of a schedule's next
/// fire time makes each fire time start one instance however many masters race for it, and any
/// master left running goes on firing when others die (no leader to lose, no lock to wait out).
extension MasterScheduler {
    /// Longest sleep between two looks at the schedules: a schedule added, or put online, fires
    /// within about this much of its first fire time even when no master knew of it.
    static let scheduleRescanSeconds = 1.0
    /// Most schedules one firing transaction handles.
    static let schedulesPerTransaction = 50

    nonisolated func scheduleLoop() async throws {
        var refused: Set<Int64> = []
        while !Task.isCancelled {
            var soonest: Double?
            var again = false
            do {
                let seenAt = ProcessStats.now()
                let due = try await store.dueSchedules(now: seenAt)
                soonest = due.soonest
                // In batches, each one transaction; in an order of its own: masters that saw the
                // same schedules due share the work instead of queueing for the same rows.
                for batch in due.due.shuffled().chunked(Self.schedulesPerTransaction) {
                    let round = try await store.fire(schedules: batch, now: ProcessStats.now(), seenAt: seenAt,
                                                     misfireThreshold: options.misfireThresholdSeconds)
                    for (id, why) in round.refused.sorted(by: { $0.key < $1.key }) where refused.insert(id).inserted {
                        // Only a row written past ds-schedule's checks: said once, not every second.
                        logger.error("\(why); the schedule does not fire until it is fixed")
                    }
                    var last: Int64?
                    for firing in round.firings {
                        refused.remove(firing.scheduleID)
                        report(firing)
                        again = again || firing.moreDue
                        last = firing.fired.last?.instance ?? last
                    }
                    if let last {
                        wakeups.mark(.commands)
                        try? await Submitter.notifyMasters(zk, paths, commandID: last)
                    }
                }
            } catch is CancellationError {
                return
            } catch {
                // A busy database or a transient fault: the next look retries; nothing was fired.
                logger.warning("schedules: \(error); retrying")
            }
            if again { continue }
            let wait = min(Self.scheduleRescanSeconds, max(0.001, (soonest ?? .infinity) - ProcessStats.now()))
            try await Task.sleep(for: .seconds(wait))
        }
    }

    private nonisolated func report(_ firing: ScheduleFiring) {
        let id = firing.scheduleID
        if let skipped = firing.skipped {
            let until = skipped.before.map { "before \(TimeText.iso($0))" } ?? "on"
            logger.notice("schedule \(id): skipped the fire times missed from \(TimeText.iso(skipped.from)) \(until) (catch-up policy)")
        }
        for f in firing.fired {
            let late = f.late ? " (missed, caught up)" : ""
            logger.info("schedule \(id): fire time \(TimeText.iso(f.time)) started instance \(f.instance)\(late)")
        }
    }
}
