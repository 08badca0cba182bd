import Foundation
@testable import Shared
import XCTest

/// What `ds-instance show` says of tasks without an attempt, from stored rows alone.
final class InstanceViewTests: XCTestCase {
    func record(_ state: WorkflowState, run: Int = 1, kept: String? = nil) -> WorkflowInstanceRecord {
        var r = WorkflowInstanceRecord(id: 1, definitionId: 1, name: "w", version: 1, state: state, priority: .medium, paramsJson: "{}",
                                       host: "m:1", masterSession: 1, submitTime: 0)
        r.run = run
        r.keptJson = kept
        return r
    }

    func attempt(_ id: Int64, _ task: String, _ state: TaskState, run: Int = 1, group: String = "default") -> TaskInstanceRecord {
        var a = TaskInstanceRecord(id: id, workflowInstanceId: 1, taskName: task, attempt: 1, state: state, priority: .medium,
                                   workerGroup: group, submitTime: 0)
        a.run = run
        return a
    }

    func notes(_ view: InstanceView) -> [String: String] {
        Dictionary(view.tasks.filter { $0.attempt == nil }.map { ($0.task, $0.note ?? "") }, uniquingKeysWith: { a, _ in a })
    }

    func testTasksWithoutAnAttemptSayWhatTheyWaitFor() {
        let d = WorkflowDefinition(name: "w", tasks: [
            TaskDefinition(name: "a", command: "x"), TaskDefinition(name: "b", command: "x", deps: ["a"]),
            TaskDefinition(name: "c", command: "x", deps: ["b"]), TaskDefinition(name: "d", command: "x"),
            TaskDefinition(name: "e", command: "x", deps: ["d"])])
        let view = InstanceTool.view(record(.running), d, [attempt(1, "a", .failure), attempt(2, "d", .dispatched, group: "gpu")],
                                     emptyGroups: ["gpu"])
        let n = notes(view)
        XCTAssertEqual(n["b"], "upstream 'a' failed; will not run")
        XCTAssertEqual(n["c"], "upstream 'a' failed; will not run", "found through b")
        XCTAssertEqual(n["e"], "waiting for upstream 'd'")
        XCTAssertEqual(view.tasks.first { $0.task == "d" }?.note, "waiting for a worker of group gpu: none is registered")
    }

    func testKeptSuccessesAreShownAsKeptAndEarlierRunsStayListed() {
        let d = WorkflowDefinition(name: "w", tasks: [TaskDefinition(name: "a", command: "x"),
                                                      TaskDefinition(name: "b", command: "x", deps: ["a"])])
        let view = InstanceTool.view(record(.running, run: 2, kept: #"{"a":1}"#), d,
                                     [attempt(1, "a", .success), attempt(2, "b", .failure), attempt(3, "b", .running, run: 2)],
                                     emptyGroups: [])
        XCTAssertEqual(view.tasks.count, 3, "every attempt of every run, and no pending row for a kept or running task")
        XCTAssertEqual(view.tasks[0].note, "success kept for run 2")
    }

    /// The failed ancestor is found in one pass in dependency order (a search per task would be
    /// quadratic on a long chain), and through every link of it.
    func testALongChainNamesTheFailedTaskAtItsHead() {
        let n = 10_000
        let tasks = (0..<n).map { TaskDefinition(name: "t\($0)", command: "x", deps: $0 == 0 ? [] : ["t\($0 - 1)"]) }
        let view = InstanceTool.view(record(.failure), WorkflowDefinition(name: "w", tasks: tasks), [attempt(1, "t0", .failure)],
                                     emptyGroups: [])
        XCTAssertEqual(notes(view)["t9999"], "upstream 't0' failed; will not run")
        XCTAssertEqual(notes(view).count, n - 1)
    }
}
