import Foundation
import Metrics

/// What a master counts for `/metrics` (swift-metrics handles, made once; swift-prometheus renders them).
struct MasterMetrics: Sendable {
    /// Queue items written to ZooKeeper (from a round or fed from the backlog).
    let dispatched = Counter(label: "ds_master_tasks_dispatched_total")
    let succeeded = Counter(label: "ds_master_tasks_succeeded_total")
    /// Attempts that ended FAILURE (retried or not) or KILL.
    let failed = Counter(label: "ds_master_tasks_failed_total")
    /// Attempts run again elsewhere: lost with a dead worker, or handed back by a stopping one.
    let failedOver = Counter(label: "ds_master_tasks_failed_over_total")
    /// From a command's submission to a master claiming it (an instance starting to run).
    let claimLatency = Metrics.Timer(label: "ds_master_command_claim_latency_seconds")
    /// From the engine's decision that a task runs to its item being in the ZooKeeper queue.
    let dispatchLatency = Metrics.Timer(label: "ds_master_dispatch_latency_seconds")

    /// Queue items written, with when each attempt became ready.
    func dispatched(readySince: [Double]) {
        guard !readySince.isEmpty else { return }
        dispatched.increment(by: readySince.count)
        let now = ProcessStats.now()
        for t in readySince { dispatchLatency.record(seconds: now - t) }
    }

    /// The outcomes a round stored (from workers, and the master's own: unpreparable items, halts),
    /// and the attempts it superseded after their worker died.
    func stored(_ batch: SchedulingBatch, lost: Set<Int64>) {
        for o in batch.outcomes where !lost.contains(o.workflowInstanceId) {
            switch o.state {
            case .success, .forcedSuccess: succeeded.increment()
            case .failure, .kill: failed.increment()
            case .needFaultTolerance: failedOver.increment()
            default: break  // withdrawn by a pause: it runs again on resume
            }
        }
        failedOver.increment(by: batch.superseded.filter { !lost.contains($0.instance) }.count)
    }
}

extension Metrics.Timer {
    func record(seconds: Double) {
        guard seconds.isFinite else { return }
        recordNanoseconds(Int64(max(0, min(seconds, 1e9)) * 1e9))
    }
}
