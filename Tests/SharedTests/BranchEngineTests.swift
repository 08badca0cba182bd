import Shared
import XCTest

/// A random workflow with CONDITIONS and SWITCH nodes and disabled tasks, valid by construction
/// (every task below a branch node is on one of its branches).
func randomBranchingDefinition(_ rng: inout SplitMix, tasks count: ClosedRange<Int> = 2...16,
                               strategy: FailureStrategy) -> WorkflowDefinition {
    let n = Int.random(in: count, using: &rng)
    var tasks: [TaskDefinition] = []
    for i in 0..<n {
        let deps = (0..<i).filter { _ in Double.random(in: 0..<1, using: &rng) < 0.3 }.map { "t\($0)" }
        var t = TaskDefinition(name: "t\(i)", command: "x", deps: deps)
        let roll = Double.random(in: 0..<1, using: &rng)
        if roll < 0.2 && !deps.isEmpty {
            t.type = .conditions
        } else if roll < 0.33 {
            t.type = .switchNode
        } else {
            t.retries = Int.random(in: 0...1, using: &rng)
            t.retryInterval = 3
            if Double.random(in: 0..<1, using: &rng) < 0.1 { t.enabled = false }
            if Double.random(in: 0..<1, using: &rng) < 0.1 { t.delay = 5 }
        }
        if t.isBranchNode { t.command = "" }
        tasks.append(t)
    }
    for b in tasks.indices where tasks[b].isBranchNode {
        let below = tasks.filter { $0.deps.contains(tasks[b].name) }.map(\.name)
        if tasks[b].type == .conditions {
            var success: [String] = [], failure: [String] = []
            for d in below {
                switch Int.random(in: 0..<10, using: &rng) {
                case 0: success.append(d); failure.append(d)
                case 1...4: failure.append(d)
                default: success.append(d)
                }
            }
            tasks[b].successBranch = success
            tasks[b].failureBranch = failure
            if Bool.random(using: &rng) {
                let named = tasks[b].deps.filter { _ in Bool.random(using: &rng) }
                if !named.isEmpty {
                    tasks[b].condition = BranchCondition(relation: Bool.random(using: &rng) ? .and : .or,
                                                         tasks: Dictionary(uniqueKeysWithValues: named.map { ($0, Bool.random(using: &rng) ? .success : .failure) }))
                }
            }
        } else {
            var cases: [SwitchCase] = []
            var placed: Set<String> = []
            for k in 0..<Int.random(in: 1...3, using: &rng) {
                let then = below.filter { _ in Double.random(in: 0..<1, using: &rng) < 0.4 }
                placed.formUnion(then)
                cases.append(SwitchCase(when: "${x} == \"\(k)\"", then: then))
            }
            tasks[b].cases = cases
            tasks[b].defaultBranch = below.filter { !placed.contains($0) || Double.random(in: 0..<1, using: &rng) < 0.2 }
        }
    }
    var definition = WorkflowDefinition(name: "w", tasks: tasks)
    definition.failureStrategy = strategy
    return definition
}

/// The engine with branch nodes: invariants of the rules on random runs, and a takeover's restore.
final class BranchEngineTests: XCTestCase {
    /// The branches a decision of `node` may choose.
    static func choices(_ node: TaskDefinition) -> [[String]] {
        node.type == .conditions ? [node.successBranch ?? [], node.failureBranch ?? []]
                                 : (node.cases ?? []).map(\.then) + [node.defaultBranch ?? []]
    }

    /// One random run driven to its end (or `cut` steps), with every row a master would store.
    struct Run {
        var engine: WorkflowEngine
        var rows: [StoredAttempt] = []
        var dispatched: [String: Int] = [:]
        var decided: [String: [String]] = [:]
        var retrying: [String] = []
        var finished: WorkflowState?
        var seq: Int64 = 0
        var clock = 100.0

        init(_ definition: WorkflowDefinition) { engine = WorkflowEngine(definition: definition) }

        /// Carries out effects as a master does: a decision at once (its own effects after), a
        /// dispatch as a row.
        mutating func record(_ first: [EngineEffect], _ rng: inout SplitMix) {
            var effects = first
            var next = 0
            while next < effects.count {
                let e = effects[next]
                next += 1
                switch e {
                case .dispatch(let task, let attempt):
                    seq += 1
                    dispatched[task, default: 0] += 1
                    rows.append(StoredAttempt(task: task, attempt: attempt, state: .dispatched, endTime: nil, dispatchSeq: seq, finishSeq: nil))
                case .decide(let task):
                    seq += 1
                    let definition = nodeDefinition(task)
                    if definition.type == .switchNode && Int.random(in: 0..<20, using: &rng) == 0 {
                        rows.append(StoredAttempt(task: task, attempt: 1, state: .failure, endTime: clock, dispatchSeq: seq, finishSeq: seq))
                        effects += engine.handle(.taskFinished(task: task, outcome: .failure))
                    } else {
                        let branch = BranchEngineTests.choices(definition).randomElement(using: &rng)!
                        decided[task] = branch
                        rows.append(StoredAttempt(task: task, attempt: 1, state: .success, endTime: clock, dispatchSeq: seq, finishSeq: seq,
                                                  branch: branch))
                        effects += engine.handle(.decided(task: task, branch: branch))
                    }
                case .scheduleRetry(let task, _, _), .scheduleDelay(let task, _): retrying.append(task)
                case .finish(let state): finished = state
                case .kill, .withdraw: XCTFail("no halts in these runs")
                }
            }
        }

        var definitionTasks: [TaskDefinition] = []
        func nodeDefinition(_ name: String) -> TaskDefinition { definitionTasks.first { $0.name == name }! }

        /// One step: a result of a random open attempt, or a retry coming due. False once nothing is left.
        mutating func step(_ rng: inout SplitMix) -> Bool {
            clock += 1
            let open = rows.indices.filter { rows[$0].state == .dispatched }
            if !retrying.isEmpty && (open.isEmpty || Bool.random(using: &rng)) {
                record(engine.handle(.retryDue(task: retrying.removeFirst())), &rng)
                return true
            }
            guard let i = open.randomElement(using: &rng) else { return false }
            let fail = Int.random(in: 0..<4, using: &rng) == 0
            rows[i].state = fail ? .failure : .success
            rows[i].endTime = clock
            seq += 1
            rows[i].finishSeq = seq
            record(engine.handle(.taskFinished(task: rows[i].task, outcome: fail ? .failure : .success)), &rng)
            return true
        }
    }

    func testRandomRunsKeepTheBranchRules() {
        var rng = SplitMix(state: 20261123)
        var seen: [String: Int] = [:]
        for round in 0..<3000 {
            let definition = randomBranchingDefinition(&rng, strategy: round.isMultiple(of: 3) ? .end : .continue)
            // The generator's definitions are valid, and the stored text reads back the same.
            do {
                let stored = try WorkflowDefinition.fromStored(definition.canonicalJSON())
                XCTAssertEqual(stored, definition, "round \(round)")
            } catch {
                XCTFail("round \(round): \(error)\n\(definition.canonicalJSON(pretty: true))")
                return
            }
            var run = Run(definition)
            run.definitionTasks = definition.tasks
            run.record(run.engine.handle(.start), &rng)
            var steps = 0
            while run.finished == nil && run.step(&rng) { steps += 1 }
            guard let state = run.finished else {
                XCTFail("round \(round): the instance never ended; progress \(run.engine.progress)")
                return
            }
            let problem = Self.violation(definition, run)
            if let problem {
                XCTFail("round \(round): \(problem)\n\(definition.canonicalJSON(pretty: true))\nprogress \(run.engine.progress)")
                return
            }
            seen[state.rawValue, default: 0] += 1
            for p in run.engine.progress { seen["\(p)", default: 0] += 1 }
            if run.engine.progress.contains(.failed) && state == .success { seen["failure handled by CONDITIONS", default: 0] += 1 }
            if run.engine.progress.enumerated().contains(where: { t in
                t.element == .notTaken && run.engine.graph.upstream[t.offset].contains { u in
                    run.engine.progress[u] == .succeeded && run.decided[run.engine.graph.names[u]] == nil }
            }) { seen["not taken beside a succeeded upstream", default: 0] += 1 }
        }
        for what in ["SUCCESS", "FAILURE", "notTaken", "disabled", "skipped", "failed", "failure handled by CONDITIONS",
                     "not taken beside a succeeded upstream"] {
            XCTAssertGreaterThan(seen[what, default: 0], 30, "only \(seen[what, default: 0]) of \(what): \(seen)")
        }
    }

    /// The rules, checked on a finished run from the final progress (settled states never change):
    /// - a task runs (or is decided) only once every task it needs has settled, never if one of
    ///   them failed or was skipped (unless it is a CONDITIONS node), never if a branch node it
    ///   needs decided without it, and only if at least one let it through: succeeded (with it on
    ///   its branch, for a branch node), or is disabled;
    /// - a task a branch node decided without, or none of whose upstream let it through and none
    ///   failed, is not taken;
    /// - a disabled task never runs; a branch node is decided, never dispatched, and other tasks
    ///   are dispatched, never decided;
    /// - the instance fails if and only if a task failed that has no task after it, or one that is
    ///   no CONDITIONS node, or a CONDITIONS node that was not taken;
    /// - under CONTINUE every task settles.
    static func violation(_ definition: WorkflowDefinition, _ run: Run) -> String? {
        let engine = run.engine
        let graph = engine.graph
        let p = engine.progress
        func lets(_ u: Int, through t: Int) -> Bool {
            if p[u] == .disabled { return true }
            guard p[u] == .succeeded else { return false }
            return run.decided[graph.names[u]].map { $0.contains(graph.names[t]) } ?? true
        }
        func bad(_ u: Int) -> Bool { p[u] == .failed || p[u] == .skipped }
        func vetoes(_ u: Int, _ t: Int) -> Bool { run.decided[graph.names[u]].map { !$0.contains(graph.names[t]) } ?? false }
        func settled(_ u: Int) -> Bool { [.succeeded, .failed, .skipped, .notTaken, .disabled].contains(p[u]) }
        var unhandledFailure = false
        for (t, task) in definition.tasks.enumerated() {
            let name = task.name
            let ups = graph.upstream[t]
            let ran = run.dispatched[name] != nil || run.decided[name] != nil
                || run.rows.contains { $0.task == name && $0.state == .failure && task.isBranchNode }
            if task.isBranchNode && run.dispatched[name] != nil { return "\(name) is a branch node and was dispatched" }
            if !task.isBranchNode && run.decided[name] != nil { return "\(name) was decided" }
            if ran {
                if !task.isEnabled { return "\(name) is disabled and ran" }
                if !ups.allSatisfy(settled) { return "\(name) ran before its upstream settled" }
                if ups.contains(where: { vetoes($0, t) }) { return "\(name) ran though a branch node decided without it" }
                if !ups.isEmpty {
                    if task.type == .conditions {
                        if !ups.contains(where: { lets($0, through: t) || bad($0) }) { return "\(name) ran though nothing before it was taken" }
                    } else {
                        if ups.contains(where: bad) { return "\(name) ran after a failure upstream" }
                        if !ups.contains(where: { lets($0, through: t) }) { return "\(name) ran though no upstream let it through" }
                    }
                }
            }
            switch p[t] {
            case .skipped:
                if task.type == .conditions || !ups.contains(where: bad) { return "\(name) skipped without a failure upstream" }
            case .notTaken:
                if ups.contains(where: { vetoes($0, t) }) { break }
                if ups.isEmpty || !ups.allSatisfy(settled) || ups.contains(where: { lets($0, through: t) || bad($0) }) {
                    return "\(name) not taken, but something upstream let it through or is pending"
                }
            case .disabled:
                if task.isEnabled || ran || ups.contains(where: { vetoes($0, t) }) { return "\(name) shown disabled wrongly" }
                if !ups.isEmpty && !ups.contains(where: { lets($0, through: t) }) { return "\(name) disabled though not reachable" }
            case .succeeded, .failed:
                if !ran { return "\(name) \(p[t]) without running" }
            case .waiting:
                if definition.failureStrategy == .continue { return "\(name) still waits under CONTINUE" }
                if engine.acceptsNewTasks { return "\(name) still waits though new tasks may start" }
            default:
                return "\(name) ended \(p[t])"
            }
            let below = graph.downstream[t]
            if p[t] == .failed && (below.isEmpty || below.contains { definition.tasks[$0].type != .conditions || p[$0] == .notTaken }) {
                unhandledFailure = true
            }
        }
        let expected: WorkflowState = unhandledFailure ? .failure : .success
        if run.finished != expected { return "ended \(String(describing: run.finished)), expected \(expected)" }
        return nil
    }

    func testRestoreAtAnyPointEqualsTheLiveEngine() {
        var rng = SplitMix(state: 11)
        var decisionsReplayed = 0
        for round in 0..<2000 {
            let definition = randomBranchingDefinition(&rng, strategy: round.isMultiple(of: 2) ? .end : .continue)
            var run = Run(definition)
            run.definitionTasks = definition.tasks
            run.record(run.engine.handle(.start), &rng)
            let cut = Int.random(in: 0...30, using: &rng)
            var step = 0
            while step < cut && run.finished == nil && run.step(&rng) { step += 1 }
            let restored = WorkflowEngine.restore(definition: definition, attempts: run.rows)
            if !run.engine.acceptsNewTasks {
                for task in run.retrying { _ = run.engine.handle(.retryDue(task: task)) }
            }
            decisionsReplayed += run.decided.count
            XCTAssertEqual(restored.engine.progress, run.engine.progress, "round \(round)")
            XCTAssertEqual(restored.engine.state, run.engine.state, "round \(round)")
            XCTAssertEqual(restored.inFlight, run.rows.indices.filter { run.rows[$0].state == .dispatched }, "round \(round)")
            XCTAssertTrue(restored.missingDispatches.isEmpty, "round \(round): \(restored.missingDispatches)")
        }
        XCTAssertGreaterThan(decisionsReplayed, 1000)
    }

    private func task(_ name: String, _ deps: [String] = [], type: TaskType = .shell) -> TaskDefinition {
        var t = TaskDefinition(name: name, command: type == .shell ? "x" : "", deps: deps)
        t.type = type
        return t
    }

    func testAFailureHandledByConditionsTakesTheFailureBranchAndTheInstanceSucceeds() {
        var cond = task("check", ["a"], type: .conditions)
        cond.successBranch = ["ok"]
        cond.failureBranch = ["cleanup"]
        let definition = WorkflowDefinition(name: "w", tasks: [
            task("a"), cond, task("ok", ["check"]), task("cleanup", ["check"]), task("join", ["ok", "cleanup"]),
        ])
        var engine = WorkflowEngine(definition: definition)
        XCTAssertEqual(engine.handle(.start), [.dispatch(task: "a", attempt: 1)])
        XCTAssertEqual(engine.handle(.taskFinished(task: "a", outcome: .failure)), [.decide(task: "check")])
        XCTAssertEqual(engine.handle(.decided(task: "check", branch: ["cleanup"])), [.dispatch(task: "cleanup", attempt: 1)])
        XCTAssertEqual(engine.progress(of: "ok"), .notTaken)
        // The join after the branch runs: its taken upstream succeeded.
        XCTAssertEqual(engine.handle(.taskFinished(task: "cleanup", outcome: .success)), [.dispatch(task: "join", attempt: 1)])
        XCTAssertEqual(engine.handle(.taskFinished(task: "join", outcome: .success)), [.finish(.success)])
    }

    func testNotTakenSpreadsUntilAJoinWithATakenUpstream() {
        var sw = task("route", type: .switchNode)
        sw.cases = [SwitchCase(when: "${x} == \"a\"", then: ["a1"])]
        sw.defaultBranch = ["b1"]
        let definition = WorkflowDefinition(name: "w", tasks: [
            sw, task("a1", ["route"]), task("a2", ["a1"]), task("b1", ["route"]), task("end", ["a2", "b1"]),
        ])
        var engine = WorkflowEngine(definition: definition)
        XCTAssertEqual(engine.handle(.start), [.decide(task: "route")])
        XCTAssertEqual(engine.handle(.decided(task: "route", branch: ["b1"])), [.dispatch(task: "b1", attempt: 1)])
        XCTAssertEqual(engine.progress(of: "a1"), .notTaken)
        XCTAssertEqual(engine.progress(of: "a2"), .notTaken)
        XCTAssertEqual(engine.handle(.taskFinished(task: "b1", outcome: .success)), [.dispatch(task: "end", attempt: 1)])
        XCTAssertEqual(engine.handle(.taskFinished(task: "end", outcome: .success)), [.finish(.success)])
        // A case that chooses nothing: everything below is not taken, and the instance succeeds.
        var none = WorkflowEngine(definition: definition)
        _ = none.handle(.start)
        XCTAssertEqual(none.handle(.decided(task: "route", branch: [])), [.finish(.success)])
        XCTAssertEqual(none.progress, [.succeeded, .notTaken, .notTaken, .notTaken, .notTaken])
    }

    func testAFailedDecisionFailsTheInstanceAndSkipsBelow() {
        var sw = task("route", type: .switchNode)
        sw.cases = [SwitchCase(when: "${x} == \"a\"", then: ["a1"])]
        sw.defaultBranch = []
        let definition = WorkflowDefinition(name: "w", tasks: [sw, task("a1", ["route"]), task("other")])
        var engine = WorkflowEngine(definition: definition)
        XCTAssertEqual(engine.handle(.start), [.decide(task: "route"), .dispatch(task: "other", attempt: 1)])
        XCTAssertEqual(engine.handle(.taskFinished(task: "route", outcome: .success)), [], "a branch node succeeds only by a decision")
        XCTAssertEqual(engine.handle(.taskFinished(task: "route", outcome: .failure)), [])
        XCTAssertEqual(engine.progress(of: "a1"), .skipped)
        XCTAssertEqual(engine.handle(.taskFinished(task: "other", outcome: .success)), [.finish(.failure)])
    }

    func testDisabledTasksPassThroughAndALongDisabledChainNeedsNoRecursion() {
        var b = task("b", ["a"])
        b.enabled = false
        let definition = WorkflowDefinition(name: "w", tasks: [task("a"), b, task("c", ["b"])])
        var engine = WorkflowEngine(definition: definition)
        _ = engine.handle(.start)
        XCTAssertEqual(engine.handle(.taskFinished(task: "a", outcome: .success)), [.dispatch(task: "c", attempt: 1)])
        XCTAssertEqual(engine.progress(of: "b"), .disabled)
        XCTAssertEqual(engine.handle(.taskFinished(task: "c", outcome: .success)), [.finish(.success)])

        // 10,000 disabled tasks in a chain, then one that runs: settled in one call.
        var chain: [TaskDefinition] = (0..<10_000).map { i in
            var t = task("d\(i)", i == 0 ? [] : ["d\(i - 1)"])
            t.enabled = false
            return t
        }
        chain.append(task("last", ["d9999"]))
        var long = WorkflowEngine(definition: WorkflowDefinition(name: "w", tasks: chain))
        XCTAssertEqual(long.handle(.start), [.dispatch(task: "last", attempt: 1)])
        // And a chain of 10,000 branch nodes each choosing the next is decided without recursion
        // in the engine (each decision is its own event).
        var nodes: [TaskDefinition] = (0..<10_000).map { i in
            var t = task("s\(i)", i == 0 ? [] : ["s\(i - 1)"], type: .switchNode)
            t.cases = [SwitchCase(when: "1 == 1", then: i == 9_999 ? [] : ["s\(i + 1)"])]
            t.defaultBranch = []
            return t
        }
        var decided = WorkflowEngine(definition: WorkflowDefinition(name: "w", tasks: nodes))
        var effects = decided.handle(.start)
        var count = 0
        while case .decide(let name)? = effects.first {
            count += 1
            let next = decided.graph.index[name]! + 1
            effects = decided.handle(.decided(task: name, branch: next < 10_000 ? ["s\(next)"] : []))
        }
        XCTAssertEqual(count, 10_000)
        XCTAssertEqual(effects, [.finish(.success)])
    }

    /// A branch node's decision binds the tasks right below it, whatever their other upstream did.
    func testATaskOffTheChosenBranchIsNotTakenBesideASucceededUpstream() {
        var sw = task("s", type: .switchNode)
        sw.cases = [SwitchCase(when: "1 == 1", then: ["a"])]
        sw.defaultBranch = ["b"]
        var off = task("off")
        off.enabled = false
        let definition = WorkflowDefinition(name: "w", tasks: [task("p"), off, sw, task("a", ["s"]), task("b", ["s", "p", "off"])])
        var engine = WorkflowEngine(definition: definition)
        XCTAssertEqual(engine.handle(.start), [.dispatch(task: "p", attempt: 1), .decide(task: "s")])
        XCTAssertEqual(engine.handle(.taskFinished(task: "p", outcome: .success)), [])
        XCTAssertEqual(engine.handle(.decided(task: "s", branch: ["a"])), [.dispatch(task: "a", attempt: 1)])
        XCTAssertEqual(engine.progress(of: "b"), .notTaken)
    }

    /// A failure handled by CONDITIONS counts only if every task right after it is a CONDITIONS
    /// node: a sibling it keeps from running makes the instance fail.
    func testAFailureWithASkippedSiblingBesideItsConditionsNodeFailsTheInstance() {
        var c = task("c", ["a"], type: .conditions)
        c.successBranch = []
        c.failureBranch = ["f"]
        let definition = WorkflowDefinition(name: "w", tasks: [task("a"), c, task("f", ["c"]), task("d", ["a"])])
        var engine = WorkflowEngine(definition: definition)
        _ = engine.handle(.start)
        XCTAssertEqual(engine.handle(.taskFinished(task: "a", outcome: .failure)), [.finish(.failure)])
        XCTAssertEqual(engine.progress(of: "d"), .skipped)
        XCTAssertEqual(engine.progress(of: "c"), .waiting, "END: nothing new starts after a failure that counts")
    }

    /// recover after a handled failure: the branch node decides again, and a success kept from the
    /// earlier run on the branch it no longer takes is not used, nor is anything below it run.
    func testKeptSuccessesBelowABranchNodeWaitForItsNewDecision() {
        var c = task("c", ["a"], type: .conditions)
        c.successBranch = ["s"]
        c.failureBranch = ["f"]
        var definition = WorkflowDefinition(name: "w", tasks: [task("a"), c, task("s", ["c"]), task("f", ["c"]), task("u", ["f"])])
        definition.failureStrategy = .continue
        // Run 1: a failed, c chose f, f succeeded, u failed. Recover keeps c (ignored) and f.
        var engine = WorkflowEngine(definition: definition, kept: ["c", "f"])
        XCTAssertEqual(engine.handle(.start), [.dispatch(task: "a", attempt: 1)], "nothing below c starts before c decides again")
        XCTAssertEqual(engine.handle(.taskFinished(task: "a", outcome: .success)), [.decide(task: "c")])
        XCTAssertEqual(engine.handle(.decided(task: "c", branch: ["s"])), [.dispatch(task: "s", attempt: 1)])
        XCTAssertEqual(engine.progress(of: "f"), .notTaken)
        XCTAssertEqual(engine.progress(of: "u"), .notTaken)
        // Decided the same way again, the kept success stands and what follows it runs.
        var same = WorkflowEngine(definition: definition, kept: ["c", "f"])
        _ = same.handle(.start)
        XCTAssertEqual(same.handle(.taskFinished(task: "a", outcome: .failure)), [.decide(task: "c")])
        XCTAssertEqual(same.handle(.decided(task: "c", branch: ["f"])), [.dispatch(task: "u", attempt: 1)])
        XCTAssertEqual(same.progress(of: "f"), .succeeded)
    }

    func testADelayedTaskStartsWhenItsTimerComesAndNotUnderEndAfterAFailure() {
        var slow = task("slow", ["a"])
        slow.delay = 300
        var definition = WorkflowDefinition(name: "w", tasks: [task("a"), slow, task("x")])
        var engine = WorkflowEngine(definition: definition)
        _ = engine.handle(.start)
        XCTAssertEqual(engine.handle(.taskFinished(task: "a", outcome: .success)), [.scheduleDelay(task: "slow", seconds: 300)])
        XCTAssertEqual(engine.progress(of: "slow"), .delayed)
        XCTAssertEqual(engine.handle(.retryDue(task: "slow")), [.dispatch(task: "slow", attempt: 1)])
        // END: a failure while it waits out its delay; it never starts and the instance ends.
        definition.failureStrategy = .end
        var ended = WorkflowEngine(definition: definition)
        _ = ended.handle(.start)
        _ = ended.handle(.taskFinished(task: "a", outcome: .success))
        XCTAssertEqual(ended.handle(.taskFinished(task: "x", outcome: .failure)), [.finish(.failure)])
        XCTAssertEqual(ended.progress(of: "slow"), .waiting)
        // Restored after a takeover, it is due one delay after its upstream ended.
        let restored = WorkflowEngine.restore(definition: WorkflowDefinition(name: "w", tasks: [task("a"), slow]), attempts: [
            StoredAttempt(task: "a", attempt: 1, state: .success, endTime: 1000, dispatchSeq: 1, finishSeq: 2)], runStart: 900)
        XCTAssertEqual(restored.engine.progress(of: "slow"), .delayed)
        XCTAssertEqual(restored.pendingRetries.map(\.at), [1300])
        XCTAssertEqual(restored.pendingRetries.map(\.attempt), [1])
    }

    /// A failure whose CONDITIONS node is then not taken (a SWITCH above it went elsewhere) was
    /// handled by nothing: the instance fails.
    func testAFailureWhoseConditionsNodeIsNotTakenCounts() {
        var sw = task("s", type: .switchNode)
        sw.cases = [SwitchCase(when: "1 == 1", then: ["other"])]
        sw.defaultBranch = ["c"]
        var c = task("c", ["x", "s"], type: .conditions)
        c.successBranch = []
        c.failureBranch = []
        var definition = WorkflowDefinition(name: "w", tasks: [task("x"), sw, c, task("other", ["s"])])
        definition.failureStrategy = .continue
        var engine = WorkflowEngine(definition: definition)
        _ = engine.handle(.start)
        XCTAssertEqual(engine.handle(.taskFinished(task: "x", outcome: .failure)), [])
        XCTAssertEqual(engine.handle(.decided(task: "s", branch: ["other"])), [.dispatch(task: "other", attempt: 1)])
        XCTAssertEqual(engine.progress(of: "c"), .notTaken)
        XCTAssertEqual(engine.handle(.taskFinished(task: "other", outcome: .success)), [.finish(.failure)])
    }

    func testKeptBranchNodesAreDecidedAgain() {
        var sw = task("route", type: .switchNode)
        sw.cases = [SwitchCase(when: "${x} == \"a\"", then: ["a1"])]
        sw.defaultBranch = ["b1"]
        let definition = WorkflowDefinition(name: "w", tasks: [sw, task("a1", ["route"]), task("b1", ["route"])])
        // A resumed run kept the node's success and a1's: the node decides again, and the task
        // not on its branch stays out (never started because its node's success was kept).
        var engine = WorkflowEngine(definition: definition, kept: ["route", "a1"])
        XCTAssertEqual(engine.handle(.start), [.decide(task: "route")])
        XCTAssertEqual(engine.handle(.decided(task: "route", branch: ["a1"])), [.finish(.success)])
        XCTAssertEqual(engine.progress(of: "b1"), .notTaken)
    }
}
