import Shared

/// A run of a workflow fixed in advance: how every attempt of every task ends and how long it
/// takes. Given the rules, this decides the whole run, including the order in which results
/// arrive (by time; ties by task name).
struct EngineScenario {
    var definition: WorkflowDefinition
    /// `outcomes[task][k - 1]`: how attempt k of the task ends (retries + 1 entries).
    var outcomes: [String: [TaskOutcome]]
    /// `durations[task][k - 1]`: how long attempt k of the task runs (retries + 1 entries).
    var durations: [String: [Double]]
}

/// What a run did, in terms that do not depend on how an engine stores its state.
struct RunSummary: Equatable, CustomStringConvertible {
    enum Fate: String, Equatable { case succeeded, failed, neverRan }
    /// Start time of each attempt of each task that ran, in attempt order.
    var starts: [String: [Double]]
    var fates: [String: Fate]
    var state: WorkflowState
    /// When the instance finished: the time of the result or retry that ended it.
    var endTime: Double

    var description: String {
        let tasks = fates.keys.sorted { $0.count != $1.count ? $0.count < $1.count : $0 < $1 }
        let lines = tasks.map { t in "  \(t): \(fates[t]!.rawValue), starts \(starts[t] ?? [])" }
        return "\(state) at \(endTime)\n" + lines.joined(separator: "\n")
    }
}

/// A reference model of the rules, written from README ("Failure strategy") and `FailureStrategy`'s
/// documentation, not from `WorkflowEngine`: a clock, plain sets, and a rescan of every task after
/// each event. It shares nothing with the engine but the definition types.
///
/// The rules:
/// - a task starts (attempt 1) as soon as every task it depends on has succeeded;
/// - an attempt that fails (`failure`) is retried after `retryInterval` while the task has attempts
///   left (`retries` + 1 in all); a `killed` attempt is never retried;
/// - a task whose last attempt failed, or that was killed, has failed for good;
/// - END: once any task has failed for good, nothing new starts: no first attempt, no retry (a
///   failure with retries left fails for good, and a retry still waiting out its interval is
///   refused at once, which fails the task for good); attempts already running finish;
/// - CONTINUE: everything keeps going; what depends on a failed task never runs;
/// - the instance ends when nothing runs, no retry is pending and nothing more may start: FAILURE
///   if any task failed for good, else SUCCESS.
enum EngineReferenceModel {
    struct Extra {
        /// Retries refused because END had stopped the instance (when they came due, or when the
        /// failure happened).
        var refusedRetries = 0
        var retriedAttempts = 0
    }

    static func run(_ scenario: EngineScenario) -> (summary: RunSummary, extra: Extra) {
        let tasks = scenario.definition.tasks
        let strategy = scenario.definition.failureStrategy
        var clock = 0.0
        var succeeded: Set<String> = []
        var failed: Set<String> = []
        var runningUntil: [String: Double] = [:]   // task -> when its current attempt ends
        var retryDueAt: [String: Double] = [:]     // task -> when its next attempt may start
        var starts: [String: [Double]] = [:]
        var extra = Extra()
        var stopped: Bool { strategy == .end && !failed.isEmpty }

        func startAttempt(_ task: String) {
            starts[task, default: []].append(clock)
            runningUntil[task] = clock + scenario.durations[task]![starts[task]!.count - 1]
        }
        /// A task fails for good; under END every pending retry is refused with it.
        func failForGood(_ task: String) {
            failed.insert(task)
            guard strategy == .end else { return }
            for t in retryDueAt.keys.sorted() {
                extra.refusedRetries += 1
                failed.insert(t)
            }
            retryDueAt = [:]
        }
        func startEverythingReady() {
            guard !stopped else { return }
            for t in tasks where starts[t.name] == nil && Set(t.deps).isSubset(of: succeeded) { startAttempt(t.name) }
        }

        startEverythingReady()
        while true {
            // The next event: the earliest end of an attempt or due retry; ties by task name.
            let ends = runningUntil.map { (time: $0.value, task: $0.key, isRetry: false) }
            let dues = retryDueAt.map { (time: $0.value, task: $0.key, isRetry: true) }
            guard let next = (ends + dues).min(by: { ($0.time, $0.task) < ($1.time, $1.task) }) else { break }
            clock = next.time
            let task = tasks.first { $0.name == next.task }!
            if next.isRetry {
                retryDueAt[task.name] = nil
                if stopped {
                    extra.refusedRetries += 1
                    failForGood(task.name)
                } else {
                    extra.retriedAttempts += 1
                    startAttempt(task.name)
                }
            } else {
                runningUntil[task.name] = nil
                let attempt = starts[task.name]!.count
                let attemptsLeft = task.retries + 1 - attempt
                switch scenario.outcomes[task.name]![attempt - 1] {
                case .success:
                    succeeded.insert(task.name)
                case .failure where attemptsLeft > 0 && !stopped:
                    retryDueAt[task.name] = clock + task.retryInterval
                case .failure where attemptsLeft > 0:
                    extra.refusedRetries += 1
                    failForGood(task.name)
                case .failure, .killed, .withdrawn:
                    failForGood(task.name)
                }
            }
            startEverythingReady()
        }

        var fates: [String: RunSummary.Fate] = [:]
        for t in tasks {
            fates[t.name] = succeeded.contains(t.name) ? .succeeded : failed.contains(t.name) ? .failed : .neverRan
        }
        return (RunSummary(starts: starts, fates: fates, state: failed.isEmpty ? .success : .failure, endTime: clock), extra)
    }
}
