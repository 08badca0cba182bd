import Foundation
import Shared
import XCTest

/// Output parameters a task sees are a function of stored state: the same with or without a
/// takeover, equal to the rule written out naively, and small for long chains.
final class OutputVisibilityTests: XCTestCase {
    /// The rule, written out without a cache: for each dep in order, what it saw, then what it printed.
    func naiveVisible(_ t: Int, _ graph: TaskGraph, _ printed: [Int: [String: String]]) -> [String: String] {
        var view: [String: String] = [:]
        for u in graph.upstream[t] {
            view.merge(naiveVisible(u, graph, printed)) { _, new in new }
            view.merge(printed[u] ?? [:]) { _, new in new }
        }
        return view
    }

    func testOutputsAfterATakeoverEqualOutputsWithoutOneOverRandomDAGs() {
        var rng = SplitMix(state: 0x5eed_0d75)
        for round in 0..<300 {
            let n = Int.random(in: 1...14, using: &rng)
            var tasks: [TaskDefinition] = []
            for i in 0..<n {
                let deps = (0..<i).filter { _ in Int.random(in: 0..<3, using: &rng) == 0 }.shuffled(using: &rng).map { "t\($0)" }
                tasks.append(TaskDefinition(name: "t\(i)", command: "true", deps: deps))
            }
            let graph = TaskGraph(tasks)
            // A few keys only, so that tasks override each other's values.
            var printed: [Int: [String: String]] = [:]
            for i in 0..<n where Bool.random(using: &rng) {
                var out: [String: String] = [:]
                for _ in 0..<Int.random(in: 1...3, using: &rng) { out["k\(Int.random(in: 0..<4, using: &rng))"] = "v\(i)-\(Int.random(in: 0..<100, using: &rng))" }
                printed[i] = out
            }
            // A random order in which tasks become ready and succeed.
            var order: [Int] = []
            var done = Set<Int>()
            while order.count < n {
                let ready = (0..<n).filter { !done.contains($0) && graph.upstream[$0].allSatisfy(done.contains) }
                let next = ready.randomElement(using: &rng)!
                order.append(next)
                done.insert(next)
            }
            let cut = Int.random(in: 0...n, using: &rng)
            var live = OutputVisibility()
            var restored = OutputVisibility()
            for (step, t) in order.enumerated() {
                if step == cut {
                    // A master takes over: it knows only what is stored, the outputs of succeeded tasks.
                    restored = OutputVisibility()
                    for s in order[..<step] { restored.record(s, printed: printed[s] ?? [:]) }
                }
                let seenLive = live.visible(to: t, in: graph)
                XCTAssertEqual(seenLive, naiveVisible(t, graph, printed), "round \(round): task t\(t) against the rule")
                if step >= cut {
                    XCTAssertEqual(restored.visible(to: t, in: graph), seenLive, "round \(round): task t\(t) after a takeover at \(cut)")
                    restored.record(t, printed: printed[t] ?? [:])
                }
                // A retry of the same task sees the same values.
                XCTAssertEqual(live.visible(to: t, in: graph), seenLive, "round \(round): a retry of t\(t)")
                live.record(t, printed: printed[t] ?? [:])
            }
        }
    }

    /// A 1,000-task chain where every task prints a key of its own: the last task sees all 1,000,
    /// its queue item stays far below ZooKeeper's 1 MB node limit, and the cache stays linear.
    func testAThousandTaskChainThatSetsAKeyPerTaskStaysSmall() throws {
        let n = 1000
        let tasks = (0..<n).map { TaskDefinition(name: "task\($0)", command: "echo ${out\(max(0, $0 - 1))}", deps: $0 == 0 ? [] : ["task\($0 - 1)"]) }
        let graph = TaskGraph(tasks)
        var visibility = OutputVisibility()
        var largest = 0
        var largestCache = 0
        for i in 0..<n {
            let env = visibility.visible(to: i, in: graph)
            XCTAssertEqual(env.count, i)
            let item = QueuedTask(taskInstanceId: Int64(1_000_000 + i), workflowInstanceId: 1, workflowName: "chain", taskName: "task\(i)",
                                  attempt: 1, command: tasks[i].command, env: env, timeout: nil, timeoutStrategy: .fail,
                                  master: "127.0.0.1:5678")
            largest = max(largest, try JSONEncoder().encode(item).count)
            visibility.record(i, printed: ["out\(i)": "value-of-task-\(i)"])
            largestCache = max(largestCache, visibility.cachedEntryCount)
        }
        print("chain of \(n): largest queue item \(largest) bytes; most cached entries \(largestCache)")
        XCTAssertLessThan(largest, 64 * 1024, "far below ZooKeeper's 1 MB node limit")
        XCTAssertLessThanOrEqual(largestCache, 2 * n, "the cache holds the frontier, not every task's view")
    }
}
