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
        XCTAssertTrue(p.contains("task 'a', field 'retries': -1 is not a whole number from 0 to 100"), "\(p)")
        XCTAssertTrue(p.contains("task 'b', field 'command': must be a string, not a number"), "\(p)")
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

    /// Issue 9's poison pills that validation must stop: a worker group that is no znode name,
    /// and durations that overflow the daemons' clocks. Each is refused naming task and field.
    func testPoisonPillGroupsAndDurationsAreRefusedNamingTaskAndField() {
        for group in ["..", ".", "a\\u0001b", "a/b", "", String(repeating: "g", count: 65), "gpu pool"] {
            let p = problems(#"{"name":"w","tasks":[{"name":"t","command":"c","worker_group":"\#(group)"}]}"#)
            XCTAssertEqual(p.count, 1, "group '\(group)': \(p)")
            XCTAssertTrue(p.first?.hasPrefix("task 't', field 'worker_group': ") ?? false, "\(p)")
        }
        XCTAssertEqual(problems(#"{"name":"w","tasks":[{"name":"t","command":"c","worker_group":"gpu-2.a_b"}]}"#), [])
        for (field, value) in [("timeout", #""1e308s""#), ("retry_interval", #""1e308d""#), ("timeout", "1e308"), ("timeout", #""31d""#)] {
            let p = problems(#"{"name":"w","tasks":[{"name":"t","command":"c","\#(field)":\#(value)}]}"#)
            XCTAssertEqual(p.count, 1, "\(field)=\(value): \(p)")
            XCTAssertTrue(p.first?.hasPrefix("task 't', field '\(field)': ") ?? false, "\(p)")
        }
        XCTAssertEqual(problems(#"{"name":"w","tasks":[{"name":"t","command":"c","timeout":"30d"}]}"#), [])
    }

    /// A date offset that overflows, or passes 100 years, is no date expression: left as written.
    func testDateArithmeticBeyondItsLimitIsLeftAsWritten() throws {
        let resolver = ParameterResolver(runTime: Date(timeIntervalSince1970: 1_790_000_000))
        for text in ["$[yyyyMMdd-99999999999999999999]", "$[yyyyMMdd+36501]", "$[yyyyMMdd-9223372036854775808]"] {
            XCTAssertEqual(try resolver.substitute("echo \(text)", [:]), "echo \(text)")
        }
        XCTAssertNotEqual(try resolver.substitute("$[yyyyMMdd-36500]", [:]), "$[yyyyMMdd-36500]")
    }

    /// Encoding a definition never traps, whatever number it holds.
    func testEncodingANonFiniteNumberDoesNotTrap() {
        var w = WorkflowDefinition(name: "w", tasks: [TaskDefinition(name: "t", command: "c")])
        w.tasks[0].retryInterval = .infinity
        XCTAssertTrue(w.canonicalJSON().contains("inf"))
        XCTAssertFalse(WireJSON.string(["x": Double.nan]).isEmpty)
    }
}
