import Foundation
import Shared
import XCTest

/// `--wait` off a terminal, on a real cluster: one line per task state change on stderr, with
/// what a waiting task or instance waits for; stdout as scripts know it.
class WaitProgressEndToEndTests: ClusterTestCase {
    var background: [Process] = []

    override func tearDown() {
        for p in background where p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        super.tearDown()
    }

    /// Starts `tool` in the background, stdout and stderr into files (no terminal): the process
    /// and the two files.
    func start(_ tool: String, _ arguments: [String]) throws -> (Process, URL, URL) {
        let p = Process()
        p.executableURL = Binaries.url(tool)
        p.arguments = arguments
        p.environment = cluster.environment
        let id = UUID().uuidString
        let out = cluster.directory.appendingPathComponent("bg-\(id).out"), err = cluster.directory.appendingPathComponent("bg-\(id).err")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        p.standardOutput = try FileHandle(forWritingTo: out)
        p.standardError = try FileHandle(forWritingTo: err)
        p.standardInput = FileHandle.nullDevice
        try p.run()
        background.append(p)
        return (p, out, err)
    }

    func text(_ url: URL) -> String { (try? String(contentsOf: url, encoding: .utf8)) ?? "" }

    /// The lines without their time stamps.
    func progress(_ url: URL) -> [String] {
        text(url).split(separator: "\n").map { String($0.split(separator: " ").dropFirst().joined(separator: " ")) }
    }

    func testWaitingTasksAndInstancesSayWhatTheyWaitForThenEachChangeIsALine() async throws {
        XCTAssertEqual(try cluster.run("ds-pool", ["set", "zero", "0"]).status, 0)
        try cluster.startMaster()
        try cluster.startWorker()
        let workflow = #"{"name":"held","execution":"SERIAL_WAIT","tasks":[{"name":"t","pool":"zero","command":"echo hi"}]}"#
        let first = try cluster.submit(workflow)
        let (firstWait, firstOut, firstErr) = try start("ds-instance", ["wait", String(first)])
        try await eventually("the first instance's task waits for its pool, and says so") {
            self.progress(firstErr).contains("held#\(first) t SUBMITTED attempt 1 waiting for pool zero: 0/0 in use")
        }
        let (secondWait, secondOut, secondErr) = try start("ds-submit", [try cluster.workflowFile(workflow), "--wait"])
        try await eventually("the second instance waits for the first, and says so") {
            self.text(secondErr).contains("ds-submit: instance \(first + 1) waits for instance \(first) of 'held' to end (execution SERIAL_WAIT)")
        }
        XCTAssertEqual(try cluster.run("ds-pool", ["set", "zero", "1"]).status, 0)
        for p in [firstWait, secondWait] { XCTAssertEqual(cluster.exitStatus(of: p), 0) }
        let lines = progress(firstErr)
        XCTAssertTrue(lines.contains("held#\(first) t SUCCESS attempt 1"), lines.joined(separator: "\n"))
        XCTAssertLessThan(try XCTUnwrap(lines.firstIndex { $0.contains(" SUBMITTED ") }),
                          try XCTUnwrap(lines.firstIndex { $0.contains(" SUCCESS ") }), "in order")
        XCTAssertTrue(progress(secondErr).contains("held#\(first + 1) t SUCCESS attempt 1"), text(secondErr))
        // Standard output is what it was: the table and closing line, no progress lines.
        for out in [firstOut, secondOut] {
            XCTAssertFalse(text(out).contains("attempt 1"), text(out))
            XCTAssertTrue(text(out).contains("SUCCESS"), text(out))
        }
        // The time stamp is one word, ISO 8601 local time.
        let stamp = text(firstErr).split(separator: "\n").first { $0.contains(" held#") }.map { String($0.split(separator: " ")[0]) } ?? ""
        XCTAssertNotNil(stamp.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$"#, options: .regularExpression), stamp)
    }

    /// On a real terminal (script(1) gives ds-submit one): the live table says what a waiting task
    /// waits for, and no progress lines are written (stderr is the terminal too).
    func testOnATerminalTheLiveTableSaysWhatATaskWaitsFor() async throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/script") else { throw XCTSkip("script(1) is missing (util-linux)") }
        XCTAssertEqual(try cluster.run("ds-pool", ["set", "zero", "0"]).status, 0)
        try cluster.startMaster()
        try cluster.startWorker()
        let workflow = try cluster.workflowFile(#"{"name":"tty","tasks":[{"name":"t","pool":"zero","command":"echo hi"}]}"#)
        let command = [Binaries.url("ds-submit").path, workflow, "--wait"].map { "'" + $0 + "'" }.joined(separator: " ")
        let (wait, out, _) = try start("/usr/bin/script", ["-qefc", command, "/dev/null"])
        try await eventually("the live table names the pool the task waits for") {
            self.text(out).contains("waiting for pool zero: 0/0 in use")
        }
        XCTAssertTrue(text(out).contains("NOTE"), text(out))
        XCTAssertEqual(try cluster.run("ds-pool", ["set", "zero", "1"]).status, 0)
        XCTAssertEqual(cluster.exitStatus(of: wait), 0, text(out))
        XCTAssertFalse(text(out).contains("tty#1 t SUBMITTED"), "no progress lines on a terminal: \(text(out))")
        XCTAssertTrue(text(out).contains("instance 1 tty SUCCESS"), text(out))
    }
}
