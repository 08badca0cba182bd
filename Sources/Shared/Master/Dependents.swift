import Foundation

/// DEPENDENT: a node's attempt waits, on the master, until what it depends on has succeeded, then
/// succeeds; it fails when a dependency fails, or when its `timeout` has passed. Checked when
/// this master's command pass runs (a command, an instance's end here, and every few seconds),
/// never in a tight loop; the wait holds no thread and no `--max-workflows` slot.
extension MasterScheduler {
    struct DependentWait: Sendable {
        var ref: AttemptRef
        /// When the attempt started: its timeout counts from here.
        var since: Double
    }

    /// How often waiting DEPENDENT nodes are checked at most.
    static let dependentCheckSeconds = 1.0

    /// Whether any DEPENDENT attempt waits (for the ticker that wakes `processDependents`).
    var hasDependentWaits: Bool { runtimes.values.contains { !$0.dependentWaits.isEmpty } }

    func processDependents() async throws {
        guard hasDependentWaits, ContinuousClock.now - lastDependentCheck >= .seconds(Self.dependentCheckSeconds) else { return }
        lastDependentCheck = .now
        var round = Round()
        let now = ProcessStats.now()
        let waits = runtimes.values.flatMap(\.dependentWaits).sorted { $0.key < $1.key }
        for (id, wait) in waits {
            guard let instance = runtime(wait.ref.instance, in: round)?.instance else { continue }
            let task = instance.task(wait.ref.task)
            // As DolphinScheduler: a scheduled instance's windows are around its fire time, in its
            // schedule's zone (a backfilled date waits for that date's upstream runs); any other's
            // around its start, in the zone stored with it.
            var states: [DependencyState] = []
            if let clock = instance.clock {
                for item in task.dependsOn ?? [] {
                    states.append(try await store.dependencyState(item, runTime: clock.runTime.timeIntervalSince1970,
                                                                  timeZone: clock.zone, besides: instance.id))
                }
            } else {
                states.append(.failed(instance.parameterProblem ?? "the instance's time zone is not known"))
            }
            let relation = task.relation ?? .and
            let satisfied = states.compactMap { if case .satisfied(let s) = $0 { s } else { nil } }
            let failed = states.compactMap { if case .failed(let s) = $0 { s } else { nil } }
            let pending = states.compactMap { if case .pending(let s) = $0 { s } else { nil } }
            var outcome: (TaskState, String)?
            if relation == .and ? satisfied.count == states.count : !satisfied.isEmpty {
                outcome = (.success, satisfied.joined(separator: "; "))
            } else if relation == .and ? !failed.isEmpty : failed.count == states.count {
                outcome = (.failure, failed.joined(separator: "; "))
            } else if let timeout = task.timeout, timeout > 0, now - wait.since >= timeout {
                outcome = (.failure, "timed out after \(DurationText.format(timeout)) waiting for: \(pending.joined(separator: "; "))")
            }
            guard let (state, message) = outcome, checkout(wait.ref.instance, &round),
                  round.runtimes[wait.ref.instance]!.dependentWaits.removeValue(forKey: id) != nil else { continue }
            round.batch.outcomes.append(AttemptOutcome(
                taskInstanceId: id, workflowInstanceId: wait.ref.instance, state: state, host: nil, pid: nil, logPath: nil,
                exitCode: nil, outputJson: nil, message: message, startTime: nil, endTime: now))
            logger.info("instance \(wait.ref.instance): DEPENDENT '\(wait.ref.task)' \(state.rawValue): \(message)")
            apply(round.runtimes[wait.ref.instance]!.instance.engine.handle(.taskFinished(task: wait.ref.task, outcome: state == .success ? .success : .failure)),
                  to: wait.ref.instance, &round)
        }
        try await commit(&round)
    }
}
