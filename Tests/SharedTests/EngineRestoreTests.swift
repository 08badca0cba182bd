import Shared
import XCTest

/// A random acyclic workflow (edges only to earlier tasks), each task with 0 or 1 retries 3 s apart.
func randomDefinition(_ rng: inout SplitMix, tasks count: ClosedRange<Int>, edgeChance: Double,
                      strategy: FailureStrategy) -> WorkflowDefinition {
    let n = Int.random(in: count, using: &rng)
    var tasks: [TaskDefinition] = []
    for i in 0..<n {
        var t = TaskDefinition(name: "t\(i)", command: "x",
                               deps: (0..<i).filter { _ in Double.random(in: 0..<1, using: &rng) < edgeChance }.map { "t\($0)" })
        t.retries = Int.random(in: 0...1, using: &rng)
        t.retryInterval = 3
        tasks.append(t)
    }
    var definition = WorkflowDefinition(name: "w", tasks: tasks)
    definition.failureStrategy = strategy
    return definition
}

/// Takeover rebuilds an engine from stored attempts; it must be the engine the dead master had.
final class EngineRestoreTests: XCTestCase {
    func testRestoreAtAnyPointEqualsTheLiveEngine() {
        var rng = SplitMix(state: 7)
        for round in 0..<1500 {
            let definition = randomDefinition(&rng, tasks: 1...20, edgeChance: 0.25,
                                              strategy: round.isMultiple(of: 2) ? .end : .continue)
            var engine = WorkflowEngine(definition: definition)
            var rows: [StoredAttempt] = []
            var clock = 100.0
            var seq: Int64 = 0
            var retrying: [String] = []
            func record(_ effects: [EngineEffect]) {
                for e in effects {
                    if case .dispatch(let task, let attempt) = e {
                        seq += 1
                        rows.append(StoredAttempt(task: task, attempt: attempt, state: .dispatched, endTime: nil,
                                                  dispatchSeq: seq, finishSeq: nil))
                    }
                    if case .scheduleRetry(let task, _, _) = e { retrying.append(task) }
                }
            }
            record(engine.handle(.start))
            let cut = Int.random(in: 0...40, using: &rng)
            var step = 0
            while step < cut {
                step += 1
                clock += 1
                let open = rows.indices.filter { rows[$0].state == .dispatched }
                if !retrying.isEmpty && (open.isEmpty || Bool.random(using: &rng)) {
                    record(engine.handle(.retryDue(task: retrying.removeFirst())))
                    continue
                }
                guard let i = open.randomElement(using: &rng) else { break }
                switch Int.random(in: 0..<10, using: &rng) {
                case 0:
                    // Lost with its worker: superseded by a new row for the same attempt.
                    rows[i].state = .needFaultTolerance
                    rows[i].endTime = clock
                    seq += 1
                    rows.append(StoredAttempt(task: rows[i].task, attempt: rows[i].attempt, state: .dispatched, endTime: nil,
                                              dispatchSeq: seq, finishSeq: nil))
                case 1, 2:
                    rows[i].state = .failure
                    rows[i].endTime = clock
                    seq += 1
                    rows[i].finishSeq = seq
                    record(engine.handle(.taskFinished(task: rows[i].task, outcome: .failure)))
                default:
                    rows[i].state = .success
                    rows[i].endTime = clock
                    seq += 1
                    rows[i].finishSeq = seq
                    record(engine.handle(.taskFinished(task: rows[i].task, outcome: .success)))
                }
            }
            let restored = WorkflowEngine.restore(definition: definition, attempts: rows)
            // A retry whose timer has not fired yet but that END will refuse is carried out at once
            // on restore; the live engine would do the same when the timer fires.
            if !engine.acceptsNewTasks {
                for task in retrying { _ = engine.handle(.retryDue(task: task)) }
                retrying.removeAll()
            }
            XCTAssertEqual(restored.engine.progress, engine.progress, "round \(round)")
            XCTAssertEqual(restored.engine.state, engine.state, "round \(round)")
            XCTAssertEqual(restored.inFlight, rows.indices.filter { rows[$0].state == .dispatched }, "round \(round)")
            XCTAssertTrue(restored.missingDispatches.isEmpty, "round \(round): \(restored.missingDispatches)")
            XCTAssertEqual(Set(restored.pendingRetries.map(\.task)), Set(retrying), "round \(round)")
            for r in restored.pendingRetries {
                let last = rows.last { $0.task == r.task && $0.endTime != nil }!.endTime!
                XCTAssertEqual(r.at, last + 3, "round \(round): the retry is due one interval after the failure")
            }
        }
    }

    func testAStartedTaskWithoutARowIsDispatchedAgain() {
        let definition = WorkflowDefinition(name: "w", tasks: [
            TaskDefinition(name: "a", command: "x"), TaskDefinition(name: "b", command: "x", deps: ["a"])])
        // The master stored a's success and died before inserting b's row (not possible in one
        // transaction today, but a restore must never leave a started task without an attempt).
        let restored = WorkflowEngine.restore(definition: definition,
                                              attempts: [StoredAttempt(task: "a", attempt: 1, state: .success, endTime: 1,
                                                                          dispatchSeq: 1, finishSeq: 2)])
        XCTAssertEqual(restored.missingDispatches.map(\.task), ["b"])
        XCTAssertEqual(restored.inFlight, [])
    }
}

/// Pause, stop and kept successes in the pure engine, and their replay after a takeover.
final class EngineControlTests: XCTestCase {
    func chain(_ names: [String]) -> WorkflowDefinition {
        var tasks: [TaskDefinition] = []
        for (i, n) in names.enumerated() { tasks.append(TaskDefinition(name: n, command: "x", deps: i == 0 ? [] : [names[i - 1]])) }
        return WorkflowDefinition(name: "w", tasks: tasks)
    }

    func testStopKillsWhatRunsStartsNothingAndEndsStop() {
        var d = chain(["a", "b", "c"])
        d.tasks[1].retries = 3
        var e = WorkflowEngine(definition: d)
        XCTAssertEqual(e.handle(.start), [.dispatch(task: "a", attempt: 1)])
        XCTAssertEqual(e.handle(.taskFinished(task: "a", outcome: .success)), [.dispatch(task: "b", attempt: 1)])
        XCTAssertEqual(e.handle(.stop), [.kill(task: "b", attempt: 1)])
        XCTAssertEqual(e.state, .readyStop)
        XCTAssertEqual(e.handle(.pause), [], "a pause after a stop changes nothing")
        // Killed (never retried, though b has retries left), and nothing downstream starts.
        XCTAssertEqual(e.handle(.taskFinished(task: "b", outcome: .killed)), [.finish(.stop)])
        XCTAssertEqual(e.progress(of: "b"), .cancelled)
        XCTAssertEqual(e.progress(of: "c"), .waiting)
    }

    func testAFailureWithRetriesLeftDuringAStopIsNotRetried() {
        var d = chain(["a", "b"])
        d.tasks[0].retries = 2
        var e = WorkflowEngine(definition: d)
        _ = e.handle(.start)
        _ = e.handle(.stop)
        XCTAssertEqual(e.handle(.taskFinished(task: "a", outcome: .failure)), [.finish(.stop)])
    }

    func testPauseLetsRunningTasksFinishAndStartsNothingNew() {
        let d = WorkflowDefinition(name: "w", tasks: [
            TaskDefinition(name: "a", command: "x"), TaskDefinition(name: "b", command: "x"),
            TaskDefinition(name: "c", command: "x", deps: ["a"])])
        var e = WorkflowEngine(definition: d)
        XCTAssertEqual(e.handle(.start), [.dispatch(task: "a", attempt: 1), .dispatch(task: "b", attempt: 1)])
        XCTAssertEqual(e.handle(.pause), [.withdraw(task: "a", attempt: 1), .withdraw(task: "b", attempt: 1)])
        XCTAssertEqual(e.handle(.taskFinished(task: "b", outcome: .withdrawn)), [])
        XCTAssertEqual(e.handle(.taskFinished(task: "a", outcome: .success)), [.finish(.pause)], "c must not start")
        XCTAssertEqual(e.progress(of: "a"), .succeeded)
        XCTAssertEqual(e.progress(of: "b"), .cancelled)
    }

    func testAPauseWithNothingLeftToDoEndsAsUsual() {
        var e = WorkflowEngine(definition: chain(["a"]))
        _ = e.handle(.start)
        _ = e.handle(.pause)
        XCTAssertEqual(e.handle(.taskFinished(task: "a", outcome: .success)), [.finish(.success)])
    }

    func testAPendingRetryIsCancelledByAPause() {
        var d = chain(["a"])
        d.tasks[0].retries = 1
        d.tasks[0].retryInterval = 60
        var e = WorkflowEngine(definition: d)
        _ = e.handle(.start)
        XCTAssertEqual(e.handle(.taskFinished(task: "a", outcome: .failure)), [.scheduleRetry(task: "a", attempt: 2, seconds: 60)])
        XCTAssertEqual(e.handle(.pause), [.finish(.pause)])
        XCTAssertEqual(e.handle(.retryDue(task: "a")), [])
    }

    func testKeptSuccessesNeverRunAndTheirDownstreamStarts() {
        let d = WorkflowDefinition(name: "w", tasks: [
            TaskDefinition(name: "a", command: "x"), TaskDefinition(name: "b", command: "x", deps: ["a"]),
            TaskDefinition(name: "c", command: "x", deps: ["b"]), TaskDefinition(name: "d", command: "x")])
        var e = WorkflowEngine(definition: d, kept: ["a", "d"])
        XCTAssertEqual(e.handle(.start), [.dispatch(task: "b", attempt: 1)])
        XCTAssertEqual(e.handle(.taskFinished(task: "b", outcome: .success)), [.dispatch(task: "c", attempt: 1)])
        XCTAssertEqual(e.handle(.taskFinished(task: "c", outcome: .success)), [.finish(.success)])
        var all = WorkflowEngine(definition: d, kept: ["a", "b", "c", "d"])
        XCTAssertEqual(all.handle(.start), [.finish(.success)], "a run with everything kept ends at once")
    }

    func testStartFromClosureIsTheTaskAndEverythingDownstream() {
        let g = TaskGraph([TaskDefinition(name: "a", command: "x"), TaskDefinition(name: "b", command: "x", deps: ["a"]),
                           TaskDefinition(name: "c", command: "x", deps: ["b"]), TaskDefinition(name: "d", command: "x", deps: ["a"]),
                           TaskDefinition(name: "e", command: "x", deps: ["c", "d"])])
        XCTAssertEqual(Set(g.downstreamClosure(of: g.index["b"]!).map { g.names[$0] }), ["b", "c", "e"])
    }

    /// Random DAGs, random histories with a pause or a stop (or both) at a random point, applied
    /// by the live engine and recorded in the event order (or not yet applied): a restore from the
    /// stored rows must be the live engine.
    func testRestoreWithPausesAndStopsEqualsTheLiveEngine() {
        var rng = SplitMix(state: 11)
        for round in 0..<1500 {
            let definition = randomDefinition(&rng, tasks: 1...15, edgeChance: 0.3, strategy: Bool.random(using: &rng) ? .end : .continue)
            let kept = Set(definition.tasks.filter { $0.deps.isEmpty && Double.random(in: 0..<1, using: &rng) < 0.3 }.map(\.name))
            var engine = WorkflowEngine(definition: definition, kept: kept)
            var rows: [StoredAttempt] = []
            var seq: Int64 = 0
            var retrying: [String] = []
            var controls: [(event: EngineEvent, seq: Int64?)] = []
            func record(_ effects: [EngineEffect]) {
                for e in effects {
                    if case .dispatch(let task, let attempt) = e {
                        seq += 1
                        rows.append(StoredAttempt(task: task, attempt: attempt, state: .dispatched, endTime: nil, dispatchSeq: seq, finishSeq: nil))
                    }
                    if case .scheduleRetry(let task, _, _) = e { retrying.append(task) }
                }
            }
            record(engine.handle(.start))
            let steps = Int.random(in: 0...30, using: &rng)
            let controlAt = Int.random(in: 0...steps, using: &rng)
            let controlKinds: [EngineEvent] = [[.pause], [.stop], [.pause, .stop]].randomElement(using: &rng)!
            let appliedCount = Int.random(in: 0...controlKinds.count, using: &rng)  // the rest requested, not applied
            for step in 0...steps {
                if step == controlAt {
                    for (k, c) in controlKinds.enumerated() {
                        if k < appliedCount {
                            seq += 1
                            controls.append((c, seq))
                            record(engine.handle(c))
                            if engine.state != .running { retrying.removeAll() }
                        } else {
                            controls.append((c, nil))
                        }
                    }
                    if appliedCount < controlKinds.count { break }  // an unapplied request comes last of all
                }
                guard step < steps else { break }
                let open = rows.indices.filter { rows[$0].state == .dispatched }
                if !retrying.isEmpty && (open.isEmpty || Bool.random(using: &rng)) {
                    record(engine.handle(.retryDue(task: retrying.removeFirst())))
                    continue
                }
                guard let i = open.randomElement(using: &rng) else { continue }
                let outcomes: [(TaskState, TaskOutcome)] = [(.success, .success), (.success, .success), (.failure, .failure),
                                                            (.kill, .killed), (.pause, .withdrawn)]
                let (state, outcome) = outcomes.randomElement(using: &rng)!
                if outcome == .withdrawn && engine.acceptsNewTasks { continue }  // only a pause or stop withdraws
                rows[i].state = state
                rows[i].endTime = Double(step)
                seq += 1
                rows[i].finishSeq = seq
                record(engine.handle(.taskFinished(task: rows[i].task, outcome: outcome)))
            }
            // What a master taking over does: replay, then the requests not yet applied.
            for c in controls where c.seq == nil { record(engine.handle(c.event)) }
            if !engine.acceptsNewTasks {
                for task in retrying { _ = engine.handle(.retryDue(task: task)) }
            }
            let restored = WorkflowEngine.restore(definition: definition, kept: kept, attempts: rows, controls: controls)
            XCTAssertEqual(restored.engine.progress, engine.progress, "round \(round)")
            XCTAssertEqual(restored.engine.state, engine.state, "round \(round)")
            XCTAssertTrue(restored.missingDispatches.isEmpty, "round \(round): \(restored.missingDispatches)")
        }
    }
}
