import Foundation
import Shared
import XCTest

final class WorkflowParserTests: XCTestCase {
    func problems(_ json: String) -> [String] {
        do {
            _ = try WorkflowParser.parse(Data(json.utf8), source: "w.json")
            return []
        } catch let error as WorkflowValidationError {
            return error.problems.map(\.description)
        } catch {
            return ["unexpected \(error)"]
        }
    }

    func testValidWorkflowIsNormalised() throws {
        let w = try WorkflowParser.parse(Data(#"""
            {"name":"etl","priority":"HIGH","params":{"n":3},"tasks":[
              {"name":"a","command":"echo","retries":2,"retry_interval":"10s","timeout":"5m","env":{"K":"v"}},
              {"name":"b","command":"echo","deps":["a"],"worker_group":"gpu","priority":"LOWEST"}]}
            """#.utf8), source: "x")
        XCTAssertEqual(w.priority, .high)
        XCTAssertEqual(w.failureStrategy, .end)
        XCTAssertEqual(w.params, ["n": "3"])
        XCTAssertEqual(w.tasks[0].retryInterval, 10)
        XCTAssertEqual(w.tasks[0].timeout, 300)
        XCTAssertEqual(w.tasks[1].workerGroup, "gpu")
        XCTAssertEqual(w.tasks[1].priority, .lowest)
        XCTAssertEqual(try WorkflowDefinition.fromStored(w.canonicalJSON()), w, "canonical JSON round-trips")
    }

    func testCycleIsPrinted() {
        let p = problems(#"{"name":"w","tasks":[{"name":"x","command":"c","deps":["y"]},{"name":"y","command":"c","deps":["x"]}]}"#)
        XCTAssertEqual(p, ["task 'x', field 'deps': dependency cycle: x -> y -> x"])
    }

    func testEveryProblemIsListedWithTaskAndField() {
        let p = problems(#"""
            {"name":"w","colour":"red","tasks":[
              {"name":"a","command":"c","retries":-1},
              {"name":"b","command":5,"deps":["zz"],"timeout_strategy":"SHRUG"},
              {"name":"a","command":"c","type":"SPARK"}]}
            """#)
        XCTAssertTrue(p.contains { $0.hasPrefix("field 'colour': unknown key") }, "\(p)")
        XCTAssertTrue(p.contains("task 'a', field 'retries': must be a whole number from 0 to 100"), "\(p)")
        XCTAssertTrue(p.contains("task 'b', field 'command': must be a string"), "\(p)")
        XCTAssertTrue(p.contains { $0.hasPrefix("task 'b', field 'timeout_strategy': 'SHRUG' is not one of FAIL WARN") }, "\(p)")
        XCTAssertTrue(p.contains("task 'a', field 'name': duplicate task name; task names must be unique"), "\(p)")
        XCTAssertTrue(p.contains { $0.hasPrefix("task 'a', field 'type': 'SPARK'") }, "\(p)")
        XCTAssertTrue(p.contains { $0.hasPrefix("task 'b', field 'deps': unknown dependency 'zz'") }, "\(p)")
    }

    func testLogicNodesAreRejectedUntilSupported() {
        let p = problems(#"{"name":"w","tasks":[{"name":"s","type":"SWITCH","command":""}]}"#)
        XCTAssertEqual(p, ["task 's', field 'type': type SWITCH is not supported yet; only SHELL tasks run"])
    }

    func testEmptyMalformedAndNonObjectInput() {
        XCTAssertEqual(problems("  \n"), ["the file is empty; expected a JSON object with 'name' and 'tasks'"])
        XCTAssertTrue(problems("{").first?.hasPrefix("malformed JSON") ?? false)
        XCTAssertEqual(problems("[]"), ["the top level must be a JSON object with 'name' and 'tasks'"])
        XCTAssertEqual(problems(#"{"name":"w","tasks":[]}"#), ["field 'tasks': is empty; a workflow needs at least one task"])
    }
}
