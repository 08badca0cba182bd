import Foundation
import Shared
import XCTest

/// Whole workflows through real ds-master, ds-worker and ds-submit processes.
final class WorkflowRunTests: ClusterTestCase {
    var marker: String { cluster.directory.appendingPathComponent("markers").path }

    func lines(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    func submitAndWait(_ json: String, _ extra: [String] = []) throws -> (ToolRun, InstanceSummary) {
        try cluster.submitAndWait(json, extra)
    }

    func testDiamondSucceedsInDependencyOrder() throws {
        try diamondSucceedsInDependencyOrder()
    }

    func testFailingTaskEndsWorkflowAndItsDownstreamNeverRuns() throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 1)
        let (run, summary) = try submitAndWait("""
            {"name":"ends","failure_strategy":"END","tasks":[
              {"name":"bad","command":"echo failing; exit 3"},
              {"name":"after","deps":["bad"],"command":"echo after >> \(marker)"},
              {"name":"later","deps":["after"],"command":"echo later >> \(marker)"}]}
            """)
        XCTAssertEqual(run.status, 1, "a FAILURE instance must exit 1: \(run.stderr)")
        XCTAssertEqual(summary.instance.state, "FAILURE")
        XCTAssertEqual(summary.tasks.count, 1, "downstream tasks must never be dispatched")
        XCTAssertEqual(summary.tasks.first?.taskName, "bad")
        XCTAssertEqual(summary.tasks.first?.exitCode, 3)
        XCTAssertEqual(summary.tasks.first?.state, "FAILURE")
        XCTAssertEqual(lines(marker), [])
    }

    func testContinueLetsIndependentBranchFinish() throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 2)
        let (run, summary) = try submitAndWait("""
            {"name":"continues","failure_strategy":"CONTINUE","tasks":[
              {"name":"bad","command":"exit 1"},
              {"name":"after_bad","deps":["bad"],"command":"echo after_bad >> \(marker)"},
              {"name":"x","command":"sleep 0.5; echo x >> \(marker)"},
              {"name":"y","deps":["x"],"command":"sleep 0.5; echo y >> \(marker)"}]}
            """)
        XCTAssertEqual(run.status, 1, run.stderr)
        XCTAssertEqual(summary.instance.state, "FAILURE")
        XCTAssertEqual(lines(marker), ["x", "y"], "the independent branch finishes; the failed task's downstream never runs")
        XCTAssertFalse(summary.tasks.contains { $0.taskName == "after_bad" })
        XCTAssertEqual(summary.tasks.first { $0.taskName == "y" }?.state, "SUCCESS")
    }

    func testParametersAndOverridesReachTheTaskEnvironment() throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 1)
        let out = cluster.directory.appendingPathComponent("env").path
        let (run, summary) = try submitAndWait(#"""
            {"name":"params","params":{"dt":"${system.biz.date}","greeting":"hi","region":"eu"},"tasks":[
              {"name":"produce","outputs":["rows"],"command":"echo '${setValue(rows=42)}'"},
              {"name":"show","deps":["produce"],"env":{"MODE":"full-${region}"},
               "command":"echo \"$greeting|${greeting}|$dt|$MODE|${rows}|$DS_TASK_INSTANCE_ID|$DS_WORKFLOW_INSTANCE_ID|$[yyyyMMdd-1]\" > \#(out)"}]}
            """#, ["--param", "greeting=hello"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let fields = lines(out).first?.split(separator: "|", omittingEmptySubsequences: false).map(String.init) ?? []
        XCTAssertEqual(fields.count, 8, "\(fields)")
        guard fields.count == 8 else { return }
        let yesterday: String = {
            let f = DateFormatter()
            f.dateFormat = "yyyyMMdd"
            f.timeZone = .current
            return f.string(from: Date(timeIntervalSince1970: summary.instance.startTime! - 86400))
        }()
        XCTAssertEqual(fields[0], "hello", "--param overrides the workflow's params, in the environment")
        XCTAssertEqual(fields[1], "hello", "and in ${name} substitution")
        XCTAssertEqual(fields[2], yesterday, "system.biz.date is the day before the run")
        XCTAssertEqual(fields[3], "full-eu", "task env values are substituted")
        XCTAssertEqual(fields[4], "42", "an upstream task's output parameter is visible downstream")
        XCTAssertEqual(fields[5], String(summary.tasks.first { $0.taskName == "show" }!.id))
        XCTAssertEqual(fields[6], String(summary.instance.id))
        XCTAssertEqual(fields[7], yesterday, "$[yyyyMMdd-1]")
    }

    func testRetriesAndTimeouts() throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 2)
        let flag = cluster.directory.appendingPathComponent("flag").path
        let (run, summary) = try submitAndWait("""
            {"name":"retry","failure_strategy":"CONTINUE","tasks":[
              {"name":"flaky","retries":2,"retry_interval":"200ms",
               "command":"if [ -e \(flag) ]; then echo ok; else touch \(flag); exit 1; fi"},
              {"name":"slow","timeout":"1s","command":"sleep 60"}]}
            """)
        XCTAssertEqual(run.status, 1, run.stderr)
        let flaky = summary.tasks.filter { $0.taskName == "flaky" }
        XCTAssertEqual(flaky.map(\.state), ["FAILURE", "SUCCESS"], "one failed attempt, then a retry that succeeds")
        XCTAssertEqual(flaky.map(\.attempt), [1, 2])
        let slow = summary.tasks.filter { $0.taskName == "slow" }
        XCTAssertEqual(slow.map(\.state), ["FAILURE"])
        XCTAssertTrue(slow.first?.message?.contains("timed out after 1s") ?? false, "\(slow)")
    }

    func testTaskLogFileHoldsStdoutAndStderr() throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 1)
        let (run, summary) = try submitAndWait(#"{"name":"logs","tasks":[{"name":"talk","command":"echo to-out; echo to-err >&2"}]}"#)
        XCTAssertEqual(run.status, 0, run.stderr)
        let task = summary.tasks[0]
        // Each worker keeps its logs in a subfolder named by its identity.
        let expected = "\(cluster.logDirectory)/\(try XCTUnwrap(task.host))/\(summary.instance.id)/\(task.id).log"
        XCTAssertEqual(task.logPath, expected)
        XCTAssertEqual(lines(expected), ["to-out", "to-err"])
    }
}

/// The `--json` output of `ds-submit --wait`, as a script reads it.
struct InstanceSummary: Decodable {
    struct Instance: Decodable {
        var id: Int64
        var name: String
        var state: String
        var host: String?
        var startTime: Double?
        enum CodingKeys: String, CodingKey { case id, name, state, host, startTime = "start_time" }
    }
    struct Task: Decodable {
        var id: Int64
        var taskName: String
        var state: String
        var attempt: Int
        var exitCode: Int32?
        var host: String?
        var logPath: String?
        var message: String?
        var startTime: Double?
        var endTime: Double?
        enum CodingKeys: String, CodingKey {
            case id, taskName = "task_name", state, attempt, exitCode = "exit_code", host, logPath = "log_path",
                 message, startTime = "start_time", endTime = "end_time"
        }
    }
    var instance: Instance
    var tasks: [Task]
}

extension ClusterTestCase {
    /// A diamond through a master, a worker and ds-submit --wait: SUCCESS, in dependency order
    /// (also run on PostgreSQL: PostgresEndToEndTests).
    func diamondSucceedsInDependencyOrder() throws {
        let marker = cluster.marker
        try cluster.startMaster()
        try cluster.startWorker(slots: 2)
        let (run, summary) = try cluster.submitAndWait("""
            {"name":"diamond","tasks":[
              {"name":"a","command":"echo a >> \(marker)"},
              {"name":"b","deps":["a"],"command":"sleep 0.2; echo b >> \(marker)"},
              {"name":"c","deps":["a"],"command":"echo c >> \(marker)"},
              {"name":"d","deps":["b","c"],"command":"echo d >> \(marker)"}]}
            """)
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(summary.instance.state, "SUCCESS")
        XCTAssertEqual(summary.tasks.map(\.state), ["SUCCESS", "SUCCESS", "SUCCESS", "SUCCESS"])
        let order = cluster.lines(marker)
        XCTAssertEqual(order.count, 4)
        XCTAssertEqual(order.first, "a")
        XCTAssertEqual(order.last, "d")
        // The human summary, for a pipe: one table and a closing line.
        let human = try cluster.run("ds-submit", [try cluster.workflowFile(#"{"name":"one","tasks":[{"name":"x","command":"true"}]}"#), "--wait"])
        XCTAssertEqual(human.status, 0, human.stderr)
        XCTAssertTrue(human.stdout.contains("TASK"), human.stdout)
        XCTAssertTrue(human.stdout.contains("x     SUCCESS  1"), human.stdout)
        XCTAssertTrue(human.stdout.contains("one SUCCESS"), human.stdout)
    }
}
