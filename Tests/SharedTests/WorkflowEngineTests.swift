import Foundation
import Shared
import XCTest

/// The engine, without I/O: random DAGs and random results against a reference model and the invariants.
final class WorkflowEngineTests: XCTestCase {
    /// A random DAG with random retries and retry intervals, and a fate fixed in advance for every
    /// attempt: how it ends and how long it runs. `seed` alone decides it, so a failure replays.
    static func randomScenario(seed: UInt64) -> EngineScenario {
        var rng = SplitMix(state: seed)
        let n = Int.random(in: 1...25, using: &rng)
        let edgeChance = [0.1, 0.2, 0.4].randomElement(using: &rng)!
        let failureChance = [0.0, 0.15, 0.35, 0.6].randomElement(using: &rng)!
        var tasks: [TaskDefinition] = []
        var outcomes: [String: [TaskOutcome]] = [:]
        var durations: [String: [Double]] = [:]
        for i in 0..<n {
            // Edges only to earlier tasks: always acyclic.
            let deps = (0..<i).filter { _ in Double.random(in: 0..<1, using: &rng) < edgeChance }.map { "t\($0)" }
            var t = TaskDefinition(name: "t\(i)", command: "true", deps: deps)
            t.retries = Int.random(in: 0...2, using: &rng)
            t.retryInterval = Bool.random(using: &rng) ? 0 : Double.random(in: 0..<6, using: &rng)
            outcomes[t.name] = (0...t.retries).map { _ in
                let r = Double.random(in: 0..<1, using: &rng)
                return r >= failureChance ? .success : r < failureChance * 0.85 ? .failure : .killed
            }
            durations[t.name] = (0...t.retries).map { _ in Double.random(in: 0.5..<10, using: &rng) }
            tasks.append(t)
        }
        tasks.shuffle(using: &rng)  // the engine must not rely on the order of the list
        var w = WorkflowDefinition(name: "random", tasks: tasks)
        w.failureStrategy = Bool.random(using: &rng) ? .end : .continue
        return EngineScenario(definition: w, outcomes: outcomes, durations: durations)
    }

    /// Runs the engine through a scenario. The driver knows none of the scheduling rules: it keeps a
    /// clock, starts what the engine dispatches, and delivers the pending attempt ends and due
    /// retries earliest first (ties by task name), as the reference model orders its events. It
    /// checks only what must hold whatever the rules are, and reports what the engine did.
    static func drive(_ scenario: EngineScenario) -> (summary: RunSummary, violations: [String], engine: WorkflowEngine) {
        let definition = scenario.definition
        let byName = Dictionary(uniqueKeysWithValues: definition.tasks.map { ($0.name, $0) })
        var engine = WorkflowEngine(definition: definition)
        var now = 0.0
        var pending: [String: (time: Double, attempt: Int, isRetry: Bool)] = [:]
        var starts: [String: [Double]] = [:]
        var succeeded: Set<String> = []
        var failedForGood = false  // a result no rule can retry was delivered: killed, or the last attempt failed
        var finishes: [(state: WorkflowState, time: Double)] = []
        var violations: [String] = []

        func absorb(_ effects: [EngineEffect]) {
            for effect in effects {
                switch effect {
                case .decide(let name), .scheduleDelay(let name, _):
                    violations.append("\(name) decided or delayed in a workflow without branch nodes or delays")
                case .dispatch(let name, let attempt):
                    guard let task = byName[name] else { violations.append("dispatch of unknown task \(name)"); continue }
                    let before = starts[name, default: []].count
                    if !finishes.isEmpty { violations.append("\(name) attempt \(attempt) dispatched after the instance finished") }
                    if !Set(task.deps).isSubset(of: succeeded) { violations.append("\(name) started before its dependencies succeeded") }
                    if succeeded.contains(name) { violations.append("\(name) dispatched after it succeeded") }
                    if pending[name] != nil { violations.append("\(name) dispatched while an attempt runs or a retry is pending") }
                    if attempt != before + 1 { violations.append("\(name) attempt \(attempt) dispatched after \(before) attempts") }
                    if failedForGood && definition.failureStrategy == .end {
                        violations.append("END started \(name) attempt \(attempt) after a task failed for good")
                    }
                    guard (1...task.retries + 1).contains(attempt) else {
                        violations.append("\(name): attempt \(attempt) with retries \(task.retries)"); continue
                    }
                    starts[name, default: []].append(now)
                    pending[name] = (now + scenario.durations[name]![attempt - 1], attempt, false)
                case .scheduleRetry(let name, let attempt, let seconds):
                    guard let task = byName[name] else { violations.append("retry of unknown task \(name)"); continue }
                    let before = starts[name, default: []].count
                    if attempt != before + 1 || attempt > task.retries + 1 {
                        violations.append("\(name): retry as attempt \(attempt) after \(before) attempts, retries \(task.retries)")
                    }
                    if seconds != task.retryInterval { violations.append("\(name): retry in \(seconds)s, retry_interval is \(task.retryInterval)s") }
                    if pending[name] != nil { violations.append("\(name): retry scheduled while something is pending for it") }
                    pending[name] = (now + seconds, attempt, true)
                case .finish(let state):
                    finishes.append((state, now))
                case .kill, .withdraw:
                    violations.append("\(effect) without a pause or stop")
                }
            }
        }

        absorb(engine.handle(.start))
        var events = 0
        while let next = pending.min(by: { ($0.value.time, $0.key) < ($1.value.time, $1.key) }) {
            events += 1
            guard events <= 10_000 else { violations.append("no end after 10000 events"); break }
            pending[next.key] = nil
            now = next.value.time
            if next.value.isRetry {
                absorb(engine.handle(.retryDue(task: next.key)))
            } else {
                let outcome = scenario.outcomes[next.key]![next.value.attempt - 1]
                if outcome == .success { succeeded.insert(next.key) }
                if outcome == .killed || (outcome == .failure && next.value.attempt == byName[next.key]!.retries + 1) {
                    failedForGood = true
                }
                absorb(engine.handle(.taskFinished(task: next.key, outcome: outcome)))
            }
        }

        if finishes.count != 1 { violations.append("the instance finished \(finishes.count) times: \(finishes)") }
        if let last = finishes.last, last.state != engine.state {
            violations.append("finished \(last.state) but the engine's state is \(engine.state)")
        }
        var fates: [String: RunSummary.Fate] = [:]
        for t in definition.tasks {
            switch engine.progress(of: t.name) {
            case .succeeded?: fates[t.name] = .succeeded
            case .failed?: fates[t.name] = .failed
            case .waiting?, .skipped?: fates[t.name] = .neverRan
            case let other: violations.append("\(t.name) is \(String(describing: other)) after the end")
            }
        }
        let summary = RunSummary(starts: starts, fates: fates, state: finishes.first?.state ?? engine.state,
                                 endTime: finishes.first?.time ?? -1)
        return (summary, violations, engine)
    }

    static func describe(_ s: EngineScenario) -> String {
        let lines = s.definition.tasks.map { t in
            "  \(t.name) deps \(t.deps) retries \(t.retries) interval \(t.retryInterval) "
                + "outcomes \(s.outcomes[t.name]!.map(\.rawValue)) durations \(s.durations[t.name]!)"
        }
        return "\(s.definition.failureStrategy.rawValue), \(s.definition.tasks.count) tasks:\n" + lines.joined(separator: "\n")
    }

    /// Compares the engine with the reference model on one scenario; returns the failure text or nil.
    func mismatch(_ scenario: EngineScenario, expected: RunSummary) -> String? {
        var (observed, violations, engine) = Self.drive(scenario)
        if scenario.definition.failureStrategy == .continue {
            // CONTINUE abandons only what needs a failed task: the engine marks all of it skipped.
            for (t, fate) in expected.fates where fate == .neverRan && engine.progress(of: t) != .skipped {
                violations.append("CONTINUE: \(t) never ran but is \(String(describing: engine.progress(of: t)))")
            }
        }
        // Events after the end change nothing.
        for t in scenario.definition.tasks {
            for event in [EngineEvent.start, .retryDue(task: t.name), .taskFinished(task: t.name, outcome: .failure),
                          .taskFinished(task: t.name, outcome: .success)] where !engine.handle(event).isEmpty {
                violations.append("\(event) after the end had effects")
            }
        }
        guard observed != expected || !violations.isEmpty else { return nil }
        return "violations: \(violations)\nexpected (reference model): \(expected)\nengine: \(observed)\n\(Self.describe(scenario))"
    }

    /// The engine against an independent reference model (EngineReferenceModel.swift), on random
    /// DAGs, failure strategies, retries and attempt outcomes. Each round has its own seed; set
    /// DS_ENGINE_SEED to replay one.
    func testRandomDagsAgainstReferenceModel() {
        let seeds: [UInt64]
        if let replay = ProcessInfo.processInfo.environment["DS_ENGINE_SEED"].flatMap(UInt64.init) {
            seeds = [replay]
        } else {
            seeds = (0..<3000).map { 20261122 &+ UInt64($0) }
        }
        var failures = 0
        var seen: [String: Int] = [:]
        for seed in seeds {
            let scenario = Self.randomScenario(seed: seed)
            let (expected, extra) = EngineReferenceModel.run(scenario)
            if let problem = mismatch(scenario, expected: expected) {
                XCTFail("seed \(seed) (replay with DS_ENGINE_SEED=\(seed)):\n\(problem)")
                failures += 1
                if failures == 5 { return }
            }
            // What the rounds exercised, so that a generator change cannot quietly stop covering a rule.
            let strategy = scenario.definition.failureStrategy.rawValue
            let fates = Array(expected.fates.values)
            seen["\(expected.state)", default: 0] += 1
            if extra.retriedAttempts > 0 { seen["retried", default: 0] += 1 }
            if extra.retriedAttempts > 0 && expected.state == .success { seen["success after a retry", default: 0] += 1 }
            if extra.refusedRetries > 0 { seen["\(strategy) refused a retry", default: 0] += 1 }
            if fates.contains(.neverRan) && fates.contains(.succeeded) { seen["\(strategy) left tasks unrun", default: 0] += 1 }
            if scenario.outcomes.values.contains(where: { $0.contains(.killed) }) { seen["killed", default: 0] += 1 }
        }
        guard seeds.count > 1 else { return }
        for what in ["success", "failure", "retried", "success after a retry", "END refused a retry",
                     "END left tasks unrun", "CONTINUE left tasks unrun", "killed"] {
            XCTAssertGreaterThan(seen[what, default: 0], 30, "only \(seen[what, default: 0]) rounds: \(what)")
        }
        XCTAssertNil(seen["CONTINUE refused a retry"], "CONTINUE never refuses a retry")
    }

    /// The reference model itself on runs worked out by hand from the rules, and the engine on them.
    func testReferenceModelOnHandCheckedRuns() {
        func task(_ name: String, deps: [String] = [], retries: Int = 0, interval: Double = 0) -> TaskDefinition {
            var t = TaskDefinition(name: name, command: "x", deps: deps)
            t.retries = retries
            t.retryInterval = interval
            return t
        }
        typealias Attempt = (TaskOutcome, Double)
        func scenario(_ strategy: FailureStrategy, _ tasks: [(TaskDefinition, [Attempt])]) -> EngineScenario {
            var w = WorkflowDefinition(name: "w", tasks: tasks.map(\.0))
            w.failureStrategy = strategy
            return EngineScenario(definition: w,
                                  outcomes: Dictionary(uniqueKeysWithValues: tasks.map { ($0.0.name, $0.1.map(\.0)) }),
                                  durations: Dictionary(uniqueKeysWithValues: tasks.map { ($0.0.name, $0.1.map(\.1)) }))
        }
        let cases: [(String, EngineScenario, RunSummary)] = [
            ("END: a fails at 1; b, running, finishes at 2; c, after b, never starts",
             scenario(.end, [(task("a"), [(.failure, 1)]), (task("b"), [(.success, 2)]), (task("c", deps: ["b"]), [(.success, 1)])]),
             RunSummary(starts: ["a": [0], "b": [0]], fates: ["a": .failed, "b": .succeeded, "c": .neverRan],
                        state: .failure, endTime: 2)),
            ("END: b fails for good at 2, which refuses a's retry (due at 6) at once; c's failure at 3 gets no retry; d ends it at 4",
             scenario(.end, [(task("a", retries: 1, interval: 5), [(.failure, 1), (.success, 1)]),
                             (task("b"), [(.failure, 2)]),
                             (task("c", retries: 2), [(.failure, 3), (.success, 1), (.success, 1)]),
                             (task("d"), [(.success, 4)]),
                             (task("e", deps: ["d"]), [(.success, 1)])]),
             RunSummary(starts: ["a": [0], "b": [0], "c": [0], "d": [0]],
                        fates: ["a": .failed, "b": .failed, "c": .failed, "d": .succeeded, "e": .neverRan],
                        state: .failure, endTime: 4)),
            ("CONTINUE: killed a is not retried; c is retried at 3 and succeeds at 5; d runs; b and e need a",
             scenario(.continue, [(task("a", retries: 2), [(.killed, 1), (.success, 1), (.success, 1)]),
                                  (task("b", deps: ["a"]), [(.success, 1)]),
                                  (task("c", retries: 1, interval: 1), [(.failure, 2), (.success, 2)]),
                                  (task("d", deps: ["c"]), [(.success, 1)]),
                                  (task("e", deps: ["b", "d"]), [(.success, 1)])]),
             RunSummary(starts: ["a": [0], "c": [0, 3], "d": [5]],
                        fates: ["a": .failed, "b": .neverRan, "c": .succeeded, "d": .succeeded, "e": .neverRan],
                        state: .failure, endTime: 6)),
            ("END: a succeeds on its third attempt; b follows; SUCCESS",
             scenario(.end, [(task("a", retries: 2, interval: 0.5), [(.failure, 1), (.failure, 1), (.success, 1)]),
                             (task("b", deps: ["a"]), [(.success, 1)])]),
             RunSummary(starts: ["a": [0, 1.5, 3], "b": [4]], fates: ["a": .succeeded, "b": .succeeded],
                        state: .success, endTime: 5)),
        ]
        for (what, scenario, expected) in cases {
            XCTAssertEqual(EngineReferenceModel.run(scenario).summary, expected, "reference model: \(what)")
            if let problem = mismatch(scenario, expected: expected) { XCTFail("engine: \(what)\n\(problem)") }
        }
    }

    func testEndStopsDispatchButRunningTasksFinish() {
        var w = WorkflowDefinition(name: "w", tasks: [
            TaskDefinition(name: "a", command: "x"), TaskDefinition(name: "b", command: "x"),
            TaskDefinition(name: "c", command: "x", deps: ["b"]),
        ])
        w.failureStrategy = .end
        var engine = WorkflowEngine(definition: w)
        XCTAssertEqual(engine.handle(.start), [.dispatch(task: "a", attempt: 1), .dispatch(task: "b", attempt: 1)])
        XCTAssertEqual(engine.handle(.taskFinished(task: "a", outcome: .failure)), [])
        XCTAssertEqual(engine.state, .running, "b is still running")
        XCTAssertEqual(engine.handle(.taskFinished(task: "b", outcome: .success)), [.finish(.failure)], "c never starts")
    }

    func testRetryIsScheduledThenDispatchedAsNextAttempt() {
        var t = TaskDefinition(name: "a", command: "x")
        t.retries = 1
        t.retryInterval = 5
        var engine = WorkflowEngine(definition: WorkflowDefinition(name: "w", tasks: [t]))
        _ = engine.handle(.start)
        XCTAssertEqual(engine.handle(.taskFinished(task: "a", outcome: .failure)),
                       [.scheduleRetry(task: "a", attempt: 2, seconds: 5)])
        XCTAssertEqual(engine.handle(.retryDue(task: "a")), [.dispatch(task: "a", attempt: 2)])
        XCTAssertEqual(engine.handle(.taskFinished(task: "a", outcome: .failure)), [.finish(.failure)])
    }

    func testDuplicateOrUnknownResultsAreIgnored() {
        var engine = WorkflowEngine(definition: WorkflowDefinition(name: "w", tasks: [
            TaskDefinition(name: "a", command: "x"), TaskDefinition(name: "b", command: "x", deps: ["a"])]))
        _ = engine.handle(.start)
        XCTAssertEqual(engine.handle(.taskFinished(task: "a", outcome: .success)), [.dispatch(task: "b", attempt: 1)])
        XCTAssertEqual(engine.handle(.taskFinished(task: "a", outcome: .success)), [], "a second result for a is ignored")
        XCTAssertEqual(engine.handle(.taskFinished(task: "zzz", outcome: .success)), [])
    }

    func testTenThousandTaskChainNeedsNoDeepRecursion() {
        let tasks = (0..<10_000).map { TaskDefinition(name: "t\($0)", command: "x", deps: $0 == 0 ? [] : ["t\($0 - 1)"]) }
        XCTAssertNil(TaskGraph(tasks).findCycle())
        var engine = WorkflowEngine(definition: WorkflowDefinition(name: "chain", tasks: tasks))
        var next = engine.handle(.start)
        var count = 0
        while case .dispatch(let name, _)? = next.first {
            count += 1
            next = engine.handle(.taskFinished(task: name, outcome: .success))
        }
        XCTAssertEqual(count, 10_000)
        XCTAssertEqual(next, [.finish(.success)])
    }
}
