import Foundation
import Shared
import XCTest

/// The ZooKeeper queue holds at most the window; the backlog waits in the database, is fed in
/// key order, and survives a master's death.
final class QueueWindowTests: ClusterTestCase {
    func testWindowBoundsTheQueueKeepsPriorityOrderAndSurvivesTakeover() async throws {
        let marker = cluster.directory.appendingPathComponent("markers").path
        let window = ["--queue-window", "5"]
        let first = try cluster.startMaster(window)
        let priorities = ["LOW", "HIGHEST", "MEDIUM", "LOWEST", "HIGH"]
        let tasks = (0..<40).map { i in
            #"{"name":"t\#(i)","priority":"\#(priorities[i % 5])","command":"echo \#(i) >> \#(marker)"}"#
        }
        let id = try cluster.submit(#"{"name":"backlog","tasks":[\#(tasks.joined(separator: ","))]}"#)
        let zk = try await cluster.client()
        defer { zk.close() }
        let queue = cluster.paths.queue("default")
        let store = try cluster.store()
        try await eventually("the window is full") { (try? await zk.children(queue).count) == 5 }
        let states = try await store.taskAttempts(of: id).map(\.state)
        XCTAssertEqual(states.filter { $0 == .dispatched }.count, 5)
        XCTAssertEqual(states.filter { $0 == .submitted }.count, 35, "the rest waits in the database")

        try cluster.startWorker(slots: 1)
        var largest = 0
        var killed = false
        while try await store.instance(id)?.state.isTerminal == false {
            largest = max(largest, (try? await zk.children(queue).count) ?? 0)
            if !killed && cluster.lines(marker).count >= 12 {
                cluster.kill9(first)
                try cluster.startMaster(window)
                killed = true
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        XCTAssertTrue(killed)
        XCTAssertLessThanOrEqual(largest, 5, "ZooKeeper never held more than the window")
        let final = try await store.instance(id)?.state
        XCTAssertEqual(final, .success)
        let ran = cluster.lines(marker).compactMap(Int.init)
        XCTAssertEqual(ran.sorted(), Array(0..<40), "every task ran exactly once")
        // One slot and one workflow: the queue always holds the smallest keys, so the run follows
        // task priority, then task instance id (creation order).
        let rank = ["HIGHEST": 0, "HIGH": 1, "MEDIUM": 2, "LOW": 3, "LOWEST": 4]
        let expected = (0..<40).sorted { (rank[priorities[$0 % 5]]!, $0) < (rank[priorities[$1 % 5]]!, $1) }
        XCTAssertEqual(ran, expected)
    }
}
