import Foundation
@testable import Shared
import XCTest

/// Issue 9: input written carelessly or with intent to harm gets a clear error naming the task and
/// field, and nothing that passes can trap, stall or escape further on.
final class HostileInputTests: XCTestCase {
    func problems(_ json: String) -> [String] {
        problems(Data(json.utf8))
    }

    func problems(_ data: Data) -> [String] {
        do {
            _ = try WorkflowParser.parse(data, source: "w.json")
            return []
        } catch let error as WorkflowValidationError {
            return error.problems.map(\.description)
        } catch {
            return ["unexpected \(error)"]
        }
    }

    func workflow(task: String = #""command":"c""#, top: String = "") -> String {
        #"{"name":"w",\#(top)"tasks":[{"name":"t",\#(task)}]}"#
    }

    // MARK: JSON keeps its types

    /// Reproduction 3: on Linux, JSONSerialization reads 0 and 1 as booleans.
    func testNumbersZeroAndOneAreNumbers() throws {
        let w = try WorkflowParser.parse(Data(#"""
            {"format_version":1,"name":"w","params":{"zero":0,"one":1,"pi":3.14},"tasks":[
              {"name":"a","command":"c","retries":1,"timeout":1,"retry_interval":0},
              {"name":"b","command":"c","retries":0,"deps":["a"]}]}
            """#.utf8), source: "x")
        XCTAssertEqual(w.tasks[0].retries, 1)
        XCTAssertEqual(w.tasks[0].timeout, 1)
        XCTAssertEqual(w.tasks[1].retries, 0)
        XCTAssertEqual(w.params, ["zero": "0", "one": "1", "pi": "3.14"])
    }

    /// `ds-submit --dry-run x.json | ds-submit -`: what the dry run prints is accepted again, equal.
    func testDryRunOutputParsesBackToTheSameWorkflow() throws {
        let w = try WorkflowParser.parse(Data(#"""
            {"name":"w","priority":"HIGH","params":{"n":1},"tasks":[
              {"name":"a","command":"echo 1","retries":1,"retry_interval":"1.5s","timeout":1,"env":{"K":"0"}},
              {"name":"b","command":"echo","deps":["a"],"worker_group":"gpu","timeout_strategy":"WARN"}]}
            """#.utf8), source: "x")
        for pretty in [false, true] {
            XCTAssertEqual(try WorkflowParser.parse(Data(w.canonicalJSON(pretty: pretty).utf8), source: "-"), w)
        }
    }

    func testBooleansAreNotNumbers() {
        XCTAssertEqual(problems(workflow(task: #""command":"c","retries":true"#)),
                       ["task 't', field 'retries': true is not a whole number from 0 to 100"])
        XCTAssertEqual(problems(workflow(top: #""format_version":true,"#)),
                       ["field 'format_version': unsupported format version true; this ds reads format_version 1"])
        XCTAssertEqual(problems(workflow(task: #""command":"c","retries":1.0"#)),
                       ["task 't', field 'retries': 1.0 is not a whole number from 0 to 100"])
        XCTAssertEqual(problems(workflow(top: #""params":{"flag":false},"#)),
                       ["field 'params': value of 'flag' must be a string or a number, not a boolean"])
    }

    func testDuplicateKeysAreAnErrorAtEveryLevel() {
        for json in [#"{"name":"w","name":"v","tasks":[{"name":"t","command":"c"}]}"#,
                     #"{"name":"w","tasks":[{"name":"t","command":"c","command":"rm -rf /"}]}"#,
                     #"{"name":"w","tasks":[{"name":"t","command":"c","env":{"A":"1","A":"2"}}]}"#] {
            let p = problems(json)
            XCTAssertEqual(p.count, 1, json)
            XCTAssertTrue(p.first?.hasPrefix("malformed JSON: line 1, column ") ?? false, "\(p)")
            XCTAssertTrue(p.first?.contains("duplicate key") ?? false, "\(p)")
        }
    }

    func testStrictJSONSyntax() throws {
        XCTAssertEqual(try StrictJSON.parse(Data(#"{"a":[1,-0.5e3,"x\u00e9\ud83d\ude00\n",true,null]}"#.utf8)),
                       .object([("a", .array([.number("1"), .number("-0.5e3"), .string("xé😀\n"), .bool(true), .null]))]))
        XCTAssertEqual(try StrictJSON.parse(Data("\u{FEFF}[]".utf8)), .array([]))
        for bad in ["{\"a\":1,}", "[1,]", "01", "1.", "-", "\"\\ud800\"", "\"\u{01}\"", "[1] 2", "{'a':1}", "NaN", "\"\\x\"", "[", "\"abc"] {
            XCTAssertThrowsError(try StrictJSON.parse(Data(bad.utf8)), bad)
        }
        XCTAssertThrowsError(try StrictJSON.parse(Data([0x22, 0xff, 0x22])), "invalid UTF-8")
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        XCTAssertThrowsError(try StrictJSON.parse(Data(deep.utf8))) { error in
            XCTAssertTrue("\(error)".contains("nested more than 64 levels"), "\(error)")
        }
        let multiline = "{\n  \"a\": 1,\n  \"a\": 2\n}"
        XCTAssertThrowsError(try StrictJSON.parse(Data(multiline.utf8))) { error in
            XCTAssertEqual("\(error)", "line 3, column 3: duplicate key 'a'; each key may appear once")
        }
    }

    // MARK: Names

    /// Reproduction 6: names that would escape the log folder, break tables or every file name.
    func testNamesAreChecked() {
        for name in ["..", ".", "", "a/b", "two\nlines", "tab\there", "nul\\u0000", String(repeating: "n", count: 129), " padded", "bell\\u0007"] {
            let escaped = name.replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\t", with: "\\t")
            let workflowProblems = problems(#"{"name":"\#(escaped)","tasks":[{"name":"t","command":"c"}]}"#)
            XCTAssertEqual(workflowProblems.count, 1, "workflow name \(name.debugDescription): \(workflowProblems)")
            XCTAssertTrue(workflowProblems.first?.hasPrefix("field 'name': ") ?? false, "\(workflowProblems)")
            let taskProblems = problems(#"{"name":"w","tasks":[{"name":"\#(escaped)","command":"c"}]}"#)
            XCTAssertEqual(taskProblems.count, 1, "task name \(name.debugDescription): \(taskProblems)")
            XCTAssertTrue(taskProblems.first?.hasPrefix("task #1, field 'name': ") ?? false, "\(taskProblems)")
        }
        // Found by review: a name of one character and 70,000 combining marks; invisible characters.
        for name in ["a" + String(repeating: "\u{0301}", count: 70_000), "a\u{200B}b", "evil\u{202E}txt", "a\u{2028}b"] {
            XCTAssertEqual(problems(#"{"name":"w","tasks":[{"name":"\#(name)","command":"c"}]}"#).count, 1, name.unicodeScalars.count.description)
        }
        XCTAssertEqual(problems(#"{"name":"Tägliche Ladung (v2)","tasks":[{"name":"load: 东","command":"c"}]}"#), [])
        XCTAssertEqual(problems(#"{"name":"\#(String(repeating: "n", count: 128))","tasks":[{"name":"t","command":"c"}]}"#), [])
    }

    // MARK: Sizes

    func testSizesAreBounded() {
        let big = String(repeating: "x", count: Limits.maxCommandBytes + 1)
        XCTAssertEqual(problems(workflow(task: #""command":"\#(big)""#)).first?.hasPrefix("task 't', field 'command': is 128 KiB; a command may be at most 131071 bytes"), true)
        XCTAssertEqual(problems(workflow(task: #""command":"\#(big.dropLast())""#)), [])
        XCTAssertEqual(Limits.maxCommandBytes, 131_071, "one argument of sh -c: Linux refuses 128 KiB with its NUL")
        XCTAssertNil(DurationText.parse("0x10s"), "decimal only")
        XCTAssertNil(DurationText.parse("infs"))
        XCTAssertEqual(try WorkflowParser.parse(Data(workflow(task: #""command":"c","timeout":-0"#).utf8), source: "x").tasks[0].timeout?.sign, .plus)

        var huge = Data(#"{"name":"w","tasks":[{"name":"t","command":""#.utf8)
        huge.append(Data(repeating: UInt8(ascii: "x"), count: 50 << 20))
        huge.append(Data(#""}]}"#.utf8))
        XCTAssertEqual(problems(huge), ["the file is 50.0 MiB; a workflow may be at most 4.0 MiB"])

        let env = (0...Limits.maxEntries).map { #""K\#($0)":"v""# }.joined(separator: ",")
        XCTAssertEqual(problems(workflow(task: #""command":"c","env":{\#(env)}"#)), ["task 't', field 'env': has 101 entries; the limit is 100"])
        let longValue = String(repeating: "v", count: Limits.maxValueBytes + 1)
        XCTAssertEqual(problems(workflow(top: #""params":{"p":"\#(longValue)"},"#)),
                       ["field 'params': value of 'p' is 32769 bytes long; the limit is 32 KiB"])
        let tasks = (0...Limits.maxTasks).map { #"{"name":"t\#($0)","command":"c"}"# }.joined(separator: ",")
        XCTAssertEqual(problems(#"{"name":"w","tasks":[\#(tasks)]}"#), ["field 'tasks': has 10001 tasks; a workflow may have at most 10000"])
    }

    // MARK: Injection

    /// Reproduction 5: a NUL cuts a command where it starts; reserved names change how it starts.
    func testNulAndReservedEnvironmentNamesAreRefused() {
        XCTAssertEqual(problems(workflow(task: #""command":"echo a\u0000B=c""#)),
                       ["task 't', field 'command': must not hold a NUL character (it would cut the command where the task starts)"])
        XCTAssertEqual(problems(workflow(task: #""command":"c","env":{"K":"a\u0000b"}"#)),
                       ["task 't', field 'env': value of 'K' must not hold a NUL character"])
        for key in ["PATH", "LD_PRELOAD", "DS_TASK_NAME", "BASH_ENV", "BASH_FUNC_x%%", "A=B", "1X", "", "K\\u0000"] {
            let p = problems(workflow(task: #""command":"c","env":{"\#(key)":"v"}"#))
            XCTAssertEqual(p.count, 1, "env \(key): \(p)")
            XCTAssertTrue(p.first?.hasPrefix("task 't', field 'env': name ") ?? false, "\(p)")
            let q = problems(workflow(top: #""params":{"\#(key)":"v"},"#))
            XCTAssertEqual(q.count, 1, "param \(key): \(q)")
        }
        XCTAssertEqual(problems(workflow(task: #""command":"c","env":{"MY_PATH":"v","x.y":"1"}"#)), [])
    }

    func testShellQuotedParameterForm() throws {
        let resolver = ParameterResolver(runTime: Date(timeIntervalSince1970: 0))
        let values = ["v": "it's $(id); `x`"]
        XCTAssertEqual(try resolver.substitute("echo ${v@Q} ${HOME@Q}", values), #"echo 'it'\''s $(id); `x`' ${HOME@Q}"#)
        // The quoted form survives the shell as one word, byte for byte.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", try resolver.substitute("printf %s ${v@Q}", values)]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        p.waitUntilExit()
        XCTAssertEqual(String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self), values["v"])
        // A quote followed by a combining mark is one Character: quoting must still escape it (found by the fuzzer).
        let combining = "a'\u{301}; echo pwned #"
        XCTAssertEqual(ParameterResolver.shellQuoted(combining).unicodeScalars.map { $0 }, Array(("'a'\\''\u{301}; echo pwned #'").unicodeScalars))
    }

    /// Reproduction 4: each reference takes the final value, whatever the order of the flags.
    func testOverrideResolutionIsDeterministic() throws {
        let resolver = ParameterResolver(runTime: Date(timeIntervalSince1970: 0), timeZone: TimeZone(identifier: "UTC")!)
        for _ in 0..<20 {
            let v = try resolver.instanceParameters(workflow: ["b": "old", "c": "${a}/${b}"], overrides: ["a": "${b}", "b": "new"])
            XCTAssertEqual(v["a"], "new")
            XCTAssertEqual(v["c"], "new/new")
        }
        XCTAssertEqual(try resolver.instanceParameters(workflow: ["d": "${system.biz.date}"], overrides: [:])["d"], "19691231")
        XCTAssertThrowsError(try resolver.instanceParameters(workflow: ["x": "${y}", "y": "${x}"], overrides: [:])) { error in
            XCTAssertEqual("\(error)", "parameters refer to each other in a cycle: x -> y -> x; one of them must have a value of its own")
        }
        XCTAssertThrowsError(try resolver.instanceParameters(workflow: ["p": "a"], overrides: ["p": "${p}b"]))
        // Quadratic before: every `${` without a match scanned to the end of the command.
        let unmatched = "true " + String(repeating: "${", count: 60_000)
        XCTAssertEqual(try resolver.substitute(unmatched, ["a": "b"]), unmatched)
    }

    /// Values that double at every level would need gigabytes: refused at the limit instead.
    func testResolutionIsBounded() {
        let resolver = ParameterResolver(runTime: Date(timeIntervalSince1970: 0))
        var params = ["p0": String(repeating: "x", count: 100)]
        for i in 1...40 { params["p\(i)"] = "${p\(i - 1)}${p\(i - 1)}" }
        XCTAssertThrowsError(try resolver.instanceParameters(workflow: params, overrides: [:])) { error in
            XCTAssertEqual("\(error)", "parameter 'p9' would be longer than 32 KiB once its parameters are resolved")
        }
        let command = String(repeating: "${v}", count: 10_000)
        XCTAssertThrowsError(try resolver.substitute(command, ["v": String(repeating: "y", count: 1000)]))
    }

    // MARK: Output parameters

    func testOutputParametersAreBounded() {
        var s = OutputScanner()
        s.scan("${setValue(PATH=/tmp/evil)}"[...])
        XCTAssertEqual(s.problem?.hasPrefix("output parameter 'PATH' refused: its name is reserved"), true, s.problem ?? "")
        s = OutputScanner()
        s.scan((0...Limits.maxOutputs).map { "${setValue(k\($0)=v)}" }.joined(separator: "\n")[...])
        XCTAssertEqual(s.problem, "more than 64 output parameters; a task may set at most 64")
        s = OutputScanner()
        s.scan((0..<Limits.maxOutputs).map { "${setValue(k\($0)=\(String(repeating: "v", count: 2000)))}" }.joined()[...])
        XCTAssertEqual(s.problem, "output parameters of more than 64 KiB in all; a task may set at most that")
        s = OutputScanner()
        s.scan(String(repeating: "hello ${setValue(a=1)} world\n", count: OutputScanner.maxAssignments + 1)[...])
        XCTAssertEqual(s.problem, "more than 10000 ${setValue(...)} assignments in the output")
        s = OutputScanner()
        s.scan("${setValue(a=1)} ${setValue(a=2)}"[...])
        XCTAssertNil(s.problem)
        XCTAssertEqual(s.outputs, ["a": "2"])
    }

    /// Reproduction 2: a 2 MB setValue (and a line without end) fails the task with a reason,
    /// instead of a result too large for ZooKeeper that the worker retries for ever.
    func testWorkerRefusesHugeOutputsFromItsLog() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ds-outputs-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func scan(_ text: String) throws -> OutputScanner {
            let path = dir.appendingPathComponent("t.log").path
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
            return WorkerDaemon.outputs(ofLog: path)
        }
        let twoMB = String(repeating: "v", count: 2 << 20)
        XCTAssertEqual(try scan("a\n${setValue(big=\(twoMB))}\n").problem?.hasPrefix("a line of output longer than 1.0 MiB"), true)
        XCTAssertEqual(try scan("${setValue(big=\(String(repeating: "v", count: 40_000)))}\n").problem?.contains("is 40000 bytes long"), true)
        XCTAssertEqual(try scan("\(twoMB)\n${setValue(ok=1)}").outputs, ["ok": "1"], "a long line without the marker is skipped")
        XCTAssertNil(try scan("\(twoMB)\n${setValue(ok=1)}").problem)
        XCTAssertEqual(try scan("x\n${setValue(a=1)}\n${setValue(b=2)}").outputs, ["a": "1", "b": "2"])
        // A long line that ends within the same read is just as long (found by the hostile soak).
        let long = String(repeating: "x", count: 1_200_000) + "${setValue(x=1)}\n"
        XCTAssertEqual(try scan(long).problem?.hasPrefix("a line of output longer than 1.0 MiB"), true)
        XCTAssertEqual(try scan(String(repeating: "x", count: 1_000_000) + "\n" + long).problem?.hasPrefix("a line of output longer"), true)
    }

    func testWorkerRefusesAQueueItemWrittenPastTheMaster() {
        func item(command: String = "c", env: [String: String] = [:]) -> QueuedTask {
            QueuedTask(taskInstanceId: 1, workflowInstanceId: 1, workflowName: "w", taskName: "t", attempt: 1, command: command,
                       env: env, timeout: nil, timeoutStrategy: .fail, master: "m")
        }
        /// Policy at the queue item; what no process can hold at the spawn request, where every string passes.
        func refused(_ task: QueuedTask) -> Bool {
            WorkerDaemon.queueItemProblem(task) != nil
                || (try? TaskSupervisor.spawnRequest(id: 1, command: task.command, environment: task.env, logPath: "/l")) == nil
        }
        XCTAssertFalse(refused(item(env: ["A": "1", "system.biz.date": "2"])))
        XCTAssertTrue(refused(item(command: "id\0X=1")))
        XCTAssertTrue(refused(item(env: ["LD_PRELOAD": "/tmp/x.so"])))
        XCTAssertTrue(refused(item(env: ["A=B": "1"])))
        XCTAssertTrue(refused(item(env: ["A": "1\0B=2"])))
    }

    func testMultiChunksAreBoundedByBytes() {
        let weights = [300, 300, 300, 900, 10, 10, 10]
        XCTAssertEqual(weights.chunked(199, maxWeight: 600, weight: { $0 }), [[300, 300], [300], [900], [10, 10, 10]])
        XCTAssertEqual(Array(repeating: 1, count: 5).chunked(2, maxWeight: 100, weight: { $0 }), [[1, 1], [1, 1], [1]])
    }
}
