import Shared
import XCTest

/// The engine, without I/O: random DAGs and random failures against the invariants.
final class WorkflowEngineTests: XCTestCase {
    /// A small deterministic generator, so that a failing seed can be replayed.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    func randomWorkflow(_ rng: inout SplitMix, strategy: FailureStrategy) -> WorkflowDefinition {
        let n = Int.random(in: 1...30, using: &rng)
        var tasks: [TaskDefinition] = []
        for i in 0..<n {
            // Edges only to earlier tasks: always acyclic.
            let deps = (0..<i).filter { _ in Double.random(in: 0..<1, using: &rng) < 0.2 }.map { "t\($0)" }
            var t = TaskDefinition(name: "t\(i)", command: "true", deps: deps)
            t.retries = Int.random(in: 0...2, using: &rng)
            tasks.append(t)
        }
        var w = WorkflowDefinition(name: "random", tasks: tasks)
        w.failureStrategy = strategy
        return w
    }

    func testRandomDagsKeepInvariants() {
        var rng = SplitMix(state: 20261122)
        for round in 0..<3000 {
            let strategy: FailureStrategy = round.isMultiple(of: 2) ? .end : .continue
            let definition = randomWorkflow(&rng, strategy: strategy)
            let failureRate = [0.0, 0.1, 0.4][round % 3]
            var engine = WorkflowEngine(definition: definition)
            let deps = Dictionary(uniqueKeysWithValues: definition.tasks.map { ($0.name, Set($0.deps)) })
            let retries = Dictionary(uniqueKeysWithValues: definition.tasks.map { ($0.name, $0.retries) })
            var running: [(String, Int)] = []
            var retryPending: [String] = []
            var succeeded: Set<String> = []
            var finallyFailed: Set<String> = []
            var dispatched: Set<String> = []   // "name#attempt"
            var firstAttemptAfterFailure = false
            var finished: [WorkflowState] = []

            func absorb(_ effects: [EngineEffect]) {
                for e in effects {
                    switch e {
                    case .dispatch(let name, let attempt):
                        XCTAssertTrue(deps[name]!.isSubset(of: succeeded), "seed round \(round): \(name) started before its dependencies succeeded")
                        XCTAssertFalse(succeeded.contains(name), "round \(round): \(name) dispatched after it succeeded")
                        XCTAssertTrue(dispatched.insert("\(name)#\(attempt)").inserted, "round \(round): \(name) attempt \(attempt) twice")
                        XCTAssertLessThanOrEqual(attempt, retries[name]! + 1, "round \(round): too many attempts of \(name)")
                        if attempt == 1 && !finallyFailed.isEmpty && strategy == .end { firstAttemptAfterFailure = true }
                        running.append((name, attempt))
                    case .scheduleRetry(let name, _, _):
                        retryPending.append(name)
                    case .finish(let state):
                        finished.append(state)
                    }
                }
            }

            absorb(engine.handle(.start))
            while !running.isEmpty || !retryPending.isEmpty {
                if !retryPending.isEmpty && (running.isEmpty || Bool.random(using: &rng)) {
                    let name = retryPending.remove(at: Int.random(in: 0..<retryPending.count, using: &rng))
                    absorb(engine.handle(.retryDue(task: name)))
                    if engine.progress(of: name) == .failed { finallyFailed.insert(name) }
                    continue
                }
                let (name, _) = running.remove(at: Int.random(in: 0..<running.count, using: &rng))
                let fails = Double.random(in: 0..<1, using: &rng) < failureRate
                if !fails { succeeded.insert(name) }
                absorb(engine.handle(.taskFinished(task: name, outcome: fails ? .failure : .success)))
                if fails, engine.progress(of: name) == .failed { finallyFailed.insert(name) }
            }

            XCTAssertEqual(finished.count, 1, "round \(round): the instance must finish exactly once")
            XCTAssertFalse(firstAttemptAfterFailure, "round \(round): END started a task after a failure")
            let expected: WorkflowState = finallyFailed.isEmpty ? .success : .failure
            XCTAssertEqual(finished.last, expected, "round \(round)")
            XCTAssertEqual(engine.state, expected)
            if finallyFailed.isEmpty {
                XCTAssertEqual(succeeded.count, definition.tasks.count, "round \(round): SUCCESS means every task succeeded")
            }
            if strategy == .continue {
                // Every task whose upstream all succeeded has run: CONTINUE abandons only what needs a failure.
                for t in definition.tasks where deps[t.name]!.isSubset(of: succeeded) {
                    XCTAssertTrue(succeeded.contains(t.name) || finallyFailed.contains(t.name),
                                  "round \(round): CONTINUE left \(t.name) unrun")
                }
            }
            // Events after the end change nothing.
            XCTAssertEqual(engine.handle(.start), [])
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
