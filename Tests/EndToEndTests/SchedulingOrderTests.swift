import Foundation
import Shared
import XCTest

/// Dispatch order, and many masters and workers sharing the work with nothing run twice.
final class SchedulingOrderTests: ClusterTestCase {
    var marker: String { cluster.directory.appendingPathComponent("markers").path }

    func lines() -> [String] {
        ((try? String(contentsOfFile: marker, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    func submit(_ json: String) throws -> Int64 {
        let run = try cluster.run("ds-submit", [try cluster.workflowFile(json)])
        XCTAssertEqual(run.status, 0, run.stderr)
        return Int64(run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    func queueSize(_ zk: ZooKeeperClient, group: String = "default") async throws -> Int {
        (try? await zk.children(cluster.paths.queue(group)).count) ?? 0
    }

    /// Workers deal each listing out among themselves (ClaimShare), but the queue's head never
    /// waits for a busy peer: the free worker, second in rank, runs both tasks, the head included,
    /// while the first worker is still busy.
    func testFreeWorkerTakesTheHeadWhenItsPeerIsBusy() async throws {
        try cluster.startMaster()
        let first = try cluster.startWorker(slots: 1, port: 7101)
        let busy = try submit(#"{"name":"busy","tasks":[{"name":"long","command":"echo long-start >> \#(marker); sleep 120"}]}"#)
        try await eventually("the first worker is busy") { lines() == ["long-start"] }
        try cluster.startWorker(slots: 1, port: 7102)
        let zk = try await cluster.client()
        defer { zk.close() }
        try await eventually("both workers registered") { (try? await zk.children(cluster.paths.workerGroup("default")).count) == 2 }
        let quick = try submit(#"""
            {"name":"quick","tasks":[{"name":"a","command":"echo a >> \#(marker)"},{"name":"b","command":"echo b >> \#(marker)"}]}
            """#)
        let state = try await cluster.waitForEnd(quick)
        XCTAssertEqual(state, .success)
        XCTAssertEqual(Set(lines()), ["long-start", "a", "b"])
        let workers = try await cluster.store().taskAttempts(of: quick).map(\.host)
        XCTAssertEqual(workers, ["127.0.0.1:7102", "127.0.0.1:7102"], "the free worker ran both")
        let long = try await cluster.store().instance(busy)
        XCTAssertEqual(long?.state, .running, "the busy worker was still busy")
        cluster.kill9(first)  // rather than wait out its grace period at tear-down
    }

    func testOneSlotRunsQueueInPriorityOrderThenOlderInstanceFirst() async throws {
        try cluster.startMaster()
        func one(_ label: String, _ priority: String) -> String {
            #"{"name":"w-\#(label)","priority":"\#(priority)","tasks":[{"name":"t","command":"echo \#(label) >> \#(marker)"}]}"#
        }
        _ = try submit(one("low", "LOW"))
        _ = try submit(one("highest-older", "HIGHEST"))
        _ = try submit(one("medium-older", "MEDIUM"))
        _ = try submit(one("highest-newer", "HIGHEST"))
        _ = try submit("""
            {"name":"w-mixed","priority":"MEDIUM","tasks":[
              {"name":"a","priority":"LOWEST","command":"echo mixed-lowest >> \(marker)"},
              {"name":"b","priority":"HIGHEST","command":"echo mixed-highest >> \(marker)"},
              {"name":"c","command":"echo mixed-medium >> \(marker)"}]}
            """)
        _ = try submit(one("lowest", "LOWEST"))
        let zk = try await cluster.client()
        defer { zk.close() }
        try await eventually("all 8 tasks queued before any worker exists") { try await queueSize(zk) == 8 }

        try cluster.startWorker(slots: 1)
        try await eventually("8 tasks ran") { lines().count == 8 }
        XCTAssertEqual(lines(), [
            "highest-older", "highest-newer",
            "medium-older", "mixed-highest", "mixed-medium", "mixed-lowest",
            "low", "lowest",
        ])
    }

    func testTwoWorkersShareTwoHundredTasksEachRunOnce() async throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 4)
        try cluster.startWorker(slots: 4)
        let tasks = (0..<200).map { #"{"name":"t\#($0)","command":"sleep 0.05; echo t\#($0) >> \#(marker)"}"# }
        let path = try cluster.workflowFile(#"{"name":"fan","tasks":[\#(tasks.joined(separator: ","))]}"#)
        let run = try cluster.run("ds-submit", [path, "--wait", "--json"])
        let summary = try JSONDecoder().decode(InstanceSummary.self, from: Data(run.stdout.utf8))
        let failed = summary.tasks.filter { $0.state != "SUCCESS" }.map { "\($0.taskName): \($0.message ?? "-")" }
        XCTAssertEqual(run.status, 0, run.stderr + failed.prefix(5).joined(separator: "; "))
        XCTAssertEqual(summary.tasks.count, 200, "one attempt per task")
        let ran = lines()
        XCTAssertEqual(ran.count, 200, "every task ran exactly once")
        XCTAssertEqual(Set(ran).count, 200)
        let perWorker = Dictionary(grouping: summary.tasks, by: { $0.host ?? "?" }).mapValues(\.count)
        XCTAssertEqual(perWorker.count, 2, "both workers took a share: \(perWorker)")
    }

    func testThreeMastersRunThreeHundredWorkflowsEachOnce() async throws {
        try await mastersShareWorkflows(masters: 3, workflows: 300)
    }
}

extension ClusterTestCase {
    /// `masters` masters and two workers share `workflows` workflows, submitted from four
    /// processes at once; with `killingOne`, one master is killed (-9) once a tenth have ended.
    /// Every workflow succeeds with one attempt, every task runs exactly once, every command is
    /// claimed (also on PostgreSQL, two masters, one killed).
    func mastersShareWorkflows(masters count: Int, workflows: Int, killingOne: Bool = false) async throws {
        let marker = cluster.marker
        let masters = try (0..<count).map { _ in try cluster.startMaster() }
        try cluster.startWorker(slots: 4)
        try cluster.startWorker(slots: 4)
        let path = try cluster.workflowFile(
            #"{"name":"many","tasks":[{"name":"only","command":"echo $DS_WORKFLOW_INSTANCE_ID >> \#(marker)"}]}"#)
        let store = try cluster.store()
        // Submit from several processes at once, as cron jobs would.
        let ids = try await withThrowingTaskGroup(of: [Int64].self) { group in
            for _ in 0..<4 {
                group.addTask {
                    try (0..<workflows / 4).map { _ in
                        let run = try self.cluster.run("ds-submit", [path])
                        XCTAssertEqual(run.status, 0, run.stderr)
                        return Int64(run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
                    }
                }
            }
            if killingOne {
                try await eventually("a tenth of the workflows ended", timeout: 300) {
                    try await store.countInstances(in: .success) >= workflows / 10
                }
                cluster.kill9(masters[0])
            }
            var all: [Int64] = []
            for try await chunk in group { all += chunk }
            return all
        }
        XCTAssertEqual(Set(ids).count, workflows)
        try await eventually("\(workflows) workflows ended", timeout: 300) {
            try await store.countInstances(in: .success) + store.countInstances(in: .failure) == workflows
        }
        let succeeded = try await store.countInstances(in: .success)
        let attempts = try await store.countRows(of: "task_instance")
        let commands = try await store.countRows(of: "command")
        XCTAssertEqual(succeeded, workflows)
        XCTAssertEqual(attempts, workflows, "one attempt per workflow")
        XCTAssertEqual(commands, 0, "every command claimed")
        let ran = cluster.lines(marker)
        XCTAssertEqual(ran.count, workflows, "every workflow's task ran exactly once")
        XCTAssertEqual(Set(ran), Set(ids.map(String.init)))
    }
}
