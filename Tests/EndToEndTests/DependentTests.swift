import Foundation
import Shared
import XCTest

/// DEPENDENT nodes on real masters, workers, ZooKeeper and SQLite.
final class DependentTests: ClusterTestCase {
    var marker: String { cluster.directory.appendingPathComponent("markers").path }
    var gate: String { cluster.directory.appendingPathComponent("go").path }

    func dependent(_ item: String, timeout: String = "120s") -> String {
        #"""
        {"name":"waits-\#(UUID().uuidString.prefix(8))","tasks":[
         {"name":"d","type":"DEPENDENT","timeout":"\#(timeout)","depends_on":[\#(item)]},
         {"name":"after","deps":["d"],"command":"echo after >> \#(marker)"}]}
        """#
    }

    func testItWaitsWhileTheOtherRunsSucceedsWhenItDoesAndFailsAfterItsTimeout() async throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 4)
        // The other workflow runs today, held at a gate.
        let upstream = try cluster.submit(#"""
            {"name":"upstream","tasks":[{"name":"load","command":"while [ ! -e \#(gate) ]; do sleep 0.1; done; echo load >> \#(marker)"}]}
            """#)
        try await eventually("upstream runs") { try await self.cluster.store().instance(upstream)?.state == .running }
        let waiting = try cluster.submit(dependent(#"{"workflow":"upstream","window":"today"}"#))
        let onTask = try cluster.submit(dependent(#"{"workflow":"upstream","task":"load","window":"today"}"#))
        try await Task.sleep(for: .seconds(3))
        for id in [waiting, onTask] {
            let rows = try await cluster.store().taskAttempts(of: id)
            XCTAssertEqual(rows.map(\.taskName), ["d"], "it waits: nothing after it has started")
            XCTAssertEqual(rows.first?.state, .running)
        }
        XCTAssertEqual(cluster.lines(marker), [])
        FileManager.default.createFile(atPath: gate, contents: nil)
        for id in [waiting, onTask] {
            let state = try await cluster.waitForEnd(id)
            XCTAssertEqual(state, .success)
            let d = try await cluster.store().taskAttempts(of: id).first
            XCTAssertTrue(d?.message?.contains("succeeded") ?? false, d?.message ?? "")
        }
        XCTAssertEqual(cluster.lines(marker).filter { $0 == "after" }.count, 2)

        // Nothing yesterday: it waits, then fails after its timeout, naming what it waited for.
        let late = try cluster.submit(dependent(#"{"workflow":"upstream","window":"yesterday"}"#, timeout: "2s"))
        let state = try await cluster.waitForEnd(late)
        XCTAssertEqual(state, .failure)
        let d = try await cluster.store().taskAttempts(of: late).first
        XCTAssertTrue(d?.message?.contains("timed out after 2s waiting for: no instance of 'upstream' yesterday yet") ?? false, d?.message ?? "")
    }

    func testAFailedDependencyFailsTheNodeAndOrNeedsOnlyOne() async throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 4)
        let bad = try cluster.submit(#"{"name":"bad-up","tasks":[{"name":"x","command":"exit 1"}]}"#)
        _ = try await cluster.waitForEnd(bad)
        let good = try cluster.submit(#"{"name":"good-up","tasks":[{"name":"x","command":"true"}]}"#)
        _ = try await cluster.waitForEnd(good)
        let and = try cluster.submit(dependent(#"{"workflow":"good-up","window":"today"},{"workflow":"bad-up","window":"today"}"#))
        let a = try await cluster.waitForEnd(and)
        XCTAssertEqual(a, .failure)
        let row = try await cluster.store().taskAttempts(of: and).first
        XCTAssertTrue(row?.message?.contains("instance \(bad) of 'bad-up' today ended FAILURE") ?? false, row?.message ?? "")
        let or = try cluster.submit(#"""
            {"name":"or-waits","tasks":[{"name":"d","type":"DEPENDENT","relation":"OR","timeout":"120s",
             "depends_on":[{"workflow":"bad-up","window":"today"},{"workflow":"good-up","window":"this_month"}]}]}
            """#)
        let o = try await cluster.waitForEnd(or)
        XCTAssertEqual(o, .success)
    }

    /// A stop ends a waiting DEPENDENT node at once; a master that takes over waits on.
    func testAStopEndsTheWaitAndATakeoverWaitsOn() async throws {
        let first = try cluster.startMaster()
        try cluster.startWorker(slots: 2)
        let stopped = try cluster.submit(dependent(#"{"workflow":"never-runs","window":"today"}"#))
        try await eventually("it waits") { try await self.cluster.store().taskAttempts(of: stopped).first?.state == .running }
        let stop = try cluster.run("ds-instance", ["stop", String(stopped), "--wait"])
        XCTAssertEqual(stop.status, 0, stop.stdout + stop.stderr)
        do { let value = try await cluster.store().taskAttempts(of: stopped).map(\.state); XCTAssertEqual(value, [.kill]) }

        let waiting = try cluster.submit(dependent(#"{"workflow":"later","window":"today"}"#))
        try await eventually("it waits") { try await self.cluster.store().taskAttempts(of: waiting).first?.state == .running }
        try cluster.startMaster()
        cluster.kill9(first)
        let firstHost = "127.0.0.1:\(first.arguments![3])"
        try await eventually("taken over", timeout: 180) { try await self.cluster.store().instance(waiting)?.host != firstHost }
        let later = try cluster.submit(#"{"name":"later","tasks":[{"name":"x","command":"true"}]}"#)
        _ = try await cluster.waitForEnd(later)
        let state = try await cluster.waitForEnd(waiting)
        XCTAssertEqual(state, .success)
        let rows = try await cluster.store().taskAttempts(of: waiting)
        XCTAssertEqual(rows.filter { $0.taskName == "d" }.count, 1)
    }
}
