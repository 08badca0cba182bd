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

    /// An env value is text: a number (`{"A": 5}`, silently made "5" before) is refused naming the
    /// task and key; params keep numbers as written.
    func testANumberInEnvIsRefusedNamingTheTaskAndKey() {
        let found = problems(#"{"name":"w","params":{"n":3},"tasks":[{"name":"a","command":"true","env":{"A":5,"B":"ok"}}]}"#)
        XCTAssertEqual(found.count, 1, "\(found)")
        XCTAssertTrue(found.first?.contains("'a'") == true && found.first?.contains("'A'") == true
                      && found.first?.contains("env") == true && found.first?.contains("\"5\"") == true, "\(found)")
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

    func testDependentNodesAreReadAndChecked() throws {
        let good = #"{"name":"w","tasks":[{"name":"d","type":"DEPENDENT","relation":"OR","timeout":"1h","depends_on":[{"workflow":"etl","window":"yesterday"},{"workflow":"etl","task":"load","window":"this_month"}]}]}"#
        let d = try WorkflowParser.parse(Data(good.utf8), source: "w.json")
        XCTAssertEqual(d.tasks[0].dependsOn, [DependencyItem(workflow: "etl", window: .yesterday), DependencyItem(workflow: "etl", task: "load", window: .thisMonth)])
        XCTAssertEqual(d.tasks[0].relation, .or)
        XCTAssertEqual(try WorkflowDefinition.fromStored(d.canonicalJSON()), d)
        let cases: [(String, String)] = [
            (#"{"name":"d","type":"DEPENDENT"}"#, "task 'd', field 'depends_on': missing"),
            (#"{"name":"d","type":"DEPENDENT","depends_on":[]}"#, "field 'depends_on': must be a list of 1 to 100"),
            (#"{"name":"d","type":"DEPENDENT","depends_on":[{"workflow":"x"}]}"#, "field 'depends_on[0].window': missing"),
            (#"{"name":"d","type":"DEPENDENT","depends_on":[{"workflow":"x","window":"soon"}]}"#, "field 'depends_on[0].window': 'soon' is not one of today"),
            (#"{"name":"d","type":"DEPENDENT","depends_on":[{"window":"today"}]}"#, "field 'depends_on[0].workflow': missing"),
            (#"{"name":"d","type":"DEPENDENT","depends_on":[{"workflow":"a/b","window":"today"}]}"#, "field 'depends_on[0].workflow': 'a/b' must not hold '/'"),
            (#"{"name":"d","type":"DEPENDENT","depends_on":[{"workflow":"x","window":"today","when":1}]}"#, "field 'depends_on[0]': unknown key 'when'"),
            (#"{"name":"d","type":"DEPENDENT","command":"true","depends_on":[{"workflow":"x","window":"today"}]}"#, "field 'command': a DEPENDENT node waits on the master"),
            (#"{"name":"d","type":"DEPENDENT","relation":"XOR","depends_on":[{"workflow":"x","window":"today"}]}"#, "field 'relation'"),
            (#"{"name":"t","command":"true","depends_on":[]}"#, "only DEPENDENT nodes have depends_on"),
        ]
        for (task, expected) in cases {
            let found = problems(#"{"name":"w","tasks":["# + task + "]}")
            XCTAssertTrue(found.contains { $0.contains(expected) }, "\(task): expected \(expected), got \(found)")
        }
    }

    func testDependencyWindowsAreCalendarSpansAroundTheRunDay() {
        let utc = TimeZone(identifier: "UTC")!
        // Wednesday 2026-03-04 15:30 UTC.
        let run = 1_772_638_200.0
        func day(_ iso: String) -> Double { ISO8601DateFormatter().date(from: iso + "T00:00:00Z")!.timeIntervalSince1970 }
        let expected: [(DependencyWindow, String, String)] = [
            (.today, "2026-03-04", "2026-03-05"), (.yesterday, "2026-03-03", "2026-03-04"), (.last3Days, "2026-03-01", "2026-03-04"),
            (.last7Days, "2026-02-25", "2026-03-04"), (.thisWeek, "2026-03-02", "2026-03-05"), (.lastWeek, "2026-02-23", "2026-03-02"),
            (.thisMonth, "2026-03-01", "2026-03-05"), (.lastMonth, "2026-02-01", "2026-03-01"),
        ]
        for (window, from, to) in expected {
            let span = window.interval(runTime: run, timeZone: utc)
            XCTAssertEqual(span.from, day(from), "\(window) from")
            XCTAssertEqual(span.to, day(to), "\(window) to")
        }
    }

    func testBranchNodesAreReadAndCheckedNamingTaskAndField() throws {
        let good = #"""
        {"name":"w","tasks":[
          {"name":"a","command":"true"},
          {"name":"c","type":"CONDITIONS","deps":["a"],"condition":{"relation":"OR","tasks":{"a":"FAILURE"}},
           "success_branch":["x"],"failure_branch":["y"]},
          {"name":"x","command":"true","deps":["c"]},
          {"name":"y","command":"true","deps":["c"],"enabled":false},
          {"name":"s","type":"SWITCH","cases":[{"when":"${k} == \"1\" && ${n} >= 2","then":["p"]},{"when":"${k} != 'z'","then":[]}],
           "default_branch":["q"]},
          {"name":"p","command":"true","deps":["s"]},
          {"name":"q","command":"true","deps":["s"]}]}
        """#
        let d = try WorkflowParser.parse(Data(good.utf8), source: "w.json")
        XCTAssertEqual(d.tasks[1].condition, BranchCondition(relation: .or, tasks: ["a": .failure]))
        XCTAssertEqual(d.tasks[1].successBranch, ["x"])
        XCTAssertEqual(d.tasks[3].enabled, false)
        XCTAssertEqual(d.tasks[4].cases?.count, 2)
        XCTAssertEqual(d.tasks[4].defaultBranch, ["q"])
        XCTAssertEqual(try WorkflowDefinition.fromStored(d.canonicalJSON()), d, "the stored text reads back the same")
        // A definition without the new fields stores the text it stored before them.
        let plain = try WorkflowParser.parse(Data(#"{"name":"w","tasks":[{"name":"a","command":"true"}]}"#.utf8), source: "-")
        XCTAssertFalse(plain.canonicalJSON().contains("enabled"))
        XCTAssertFalse(plain.canonicalJSON().contains("branch"))

        let cases: [(String, String)] = [
            (#"{"name":"c","type":"CONDITIONS","success_branch":[]}"#, "task 'c', field 'deps': a CONDITIONS node needs deps"),
            (#"{"name":"c","type":"CONDITIONS","deps":["a"],"command":"rm -rf /"}"#, "task 'c', field 'command': a CONDITIONS node is decided on the master"),
            (#"{"name":"c","type":"CONDITIONS","deps":["a"],"retries":2}"#, "task 'c', field 'retries': a CONDITIONS node"),
            (#"{"name":"c","type":"CONDITIONS","deps":["a"],"worker_group":"gpu"}"#, "task 'c', field 'worker_group'"),
            (#"{"name":"c","type":"CONDITIONS","deps":["a"],"enabled":false}"#, "task 'c', field 'enabled': a CONDITIONS node cannot be disabled"),
            (#"{"name":"c","type":"CONDITIONS","deps":["a"],"cases":[]}"#, "task 'c', field 'cases': a CONDITIONS node has success_branch"),
            (#"{"name":"c","type":"CONDITIONS","deps":["a"],"condition":{"tasks":{"b":"SUCCESS"}}}"#, "task 'c', field 'condition.tasks': 'b' is not in this node's deps"),
            (#"{"name":"c","type":"CONDITIONS","deps":["a"],"condition":{"tasks":{"a":"MAYBE"}}}"#, "task 'c', field 'condition.tasks': 'MAYBE' is not one of SUCCESS FAILURE"),
            (#"{"name":"c","type":"CONDITIONS","deps":["a"],"condition":{"tasks":{}}}"#, "task 'c', field 'condition.tasks': must name at least one"),
            (#"{"name":"c","type":"CONDITIONS","deps":["a"],"condition":{"relation":"XOR","tasks":{"a":"SUCCESS"}}}"#, "task 'c', field 'condition.relation'"),
            (#"{"name":"c","type":"CONDITIONS","deps":["a"],"success_branch":["a"]}"#, "task 'c', field 'branches': a branch names 'a', which does not list 'c' in its deps"),
            (#"{"name":"c","type":"CONDITIONS","deps":["a"],"success_branch":["z","z"]}"#, "task 'c', field 'success_branch': names a task twice"),
            (#"{"name":"c","type":"CONDITIONS","deps":["a"],"success_branch":"z"}"#, "task 'c', field 'success_branch': must be a list of task names"),
            (#"{"name":"s","type":"SWITCH"}"#, "task 's', field 'cases': missing; a SWITCH node needs"),
            (#"{"name":"s","type":"SWITCH","cases":[]}"#, "task 's', field 'cases': must be a list of 1 to 100"),
            (#"{"name":"s","type":"SWITCH","cases":[{"when":"${x} = 1","then":[]}]}"#, "task 's', field 'cases[0].when': '${x} = 1' at character 6: expected a comparison"),
            (#"{"name":"s","type":"SWITCH","cases":[{"when":"${x} == 1 junk","then":[]}]}"#, "field 'cases[0].when': '${x} == 1 junk' at character 11: unexpected"),
            (#"{"name":"s","type":"SWITCH","cases":[{"when":"${x} == a","then":[]}]}"#, "expected ${name}, a quoted text or a number, but found 'a' (quote text"),
            (#"{"name":"s","type":"SWITCH","cases":[{"when":"(${x} == 1","then":[]}]}"#, "expected ')' but found end of text"),
            (#"{"name":"s","type":"SWITCH","cases":[{"when":"${} == 1","then":[]}]}"#, "'' is not a parameter name"),
            (#"{"name":"s","type":"SWITCH","cases":[{"when":"\"x == 1","then":[]}]}"#, "a quoted text without its closing"),
            (#"{"name":"s","type":"SWITCH","cases":[{"when":"1 == 1"}]}"#, "task 's', field 'cases[0].then': missing"),
            (#"{"name":"s","type":"SWITCH","cases":[{"when":"1 == 1","then":[],"else":[]}]}"#, "task 's', field 'cases[0]': unknown key 'else'"),
            (#"{"name":"s","type":"SWITCH","cases":[{"when":1,"then":[]}]}"#, "task 's', field 'cases[0].when': must be a string, not a number"),
            (#"{"name":"s","type":"SWITCH","cases":["x"]}"#, "task 's', field 'cases[0]': must be an object"),
            (#"{"name":"s","type":"SWITCH","cases":[{"when":"1 == 1","then":[]}],"success_branch":[]}"#, "field 'success_branch': a SWITCH node has cases"),
            (#"{"name":"t","command":"x","cases":[]}"#, "task 't', field 'cases': only CONDITIONS and SWITCH nodes have cases; this task is SHELL"),
            (#"{"name":"t","command":"x","enabled":"no"}"#, "task 't', field 'enabled': 'no' is not true or false"),
            (#"{"name":"t","type":"SWITCH","cases":[{"when":"\#(String(repeating: "(", count: 70))1 == 1\#(String(repeating: ")", count: 70))","then":[]}]}"#, "nested more than 64 deep"),
        ]
        for (task, expected) in cases {
            let text = #"{"name":"w","tasks":[{"name":"a","command":"true"},"# + task + "]}"
            let found = problems(text)
            XCTAssertTrue(found.contains { $0.contains(expected) }, "\(task): expected \(expected), got \(found)")
        }
        // A task below a branch node that is on none of its branches.
        let orphan = problems(#"{"name":"w","tasks":[{"name":"a","command":"true"},{"name":"c","type":"CONDITIONS","deps":["a"],"success_branch":[]},{"name":"x","command":"true","deps":["c"]}]}"#)
        XCTAssertEqual(orphan, ["task 'c', field 'branches': task 'x' depends on this CONDITIONS node but is on none of its branches; name it in success_branch or failure_branch"])
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
