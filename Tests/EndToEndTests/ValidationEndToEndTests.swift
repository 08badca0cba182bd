import Foundation
import Shared
import XCTest

/// Bad input exits 65 (or 66), names the task and field, and changes neither the database nor ZooKeeper.
final class ValidationEndToEndTests: ClusterTestCase {
    func counts() async throws -> [Int] {
        let store = try cluster.store()
        return [
            try await store.countRows(of: "workflow_definition"), try await store.countRows(of: "workflow_instance"),
            try await store.countRows(of: "task_instance"), try await store.countRows(of: "command"),
        ]
    }

    func testInvalidWorkflowsExit65NamingTaskAndFieldAndWriteNothing() async throws {
        // A valid submission first, so that the database and the znodes exist and could change.
        let valid = try cluster.workflowFile(#"{"name":"ok","tasks":[{"name":"a","command":"true"}]}"#)
        let first = try cluster.run("ds-submit", [valid])
        XCTAssertEqual(first.status, 0, first.stderr)
        let countsBefore = try await counts()
        let treeBefore = try await cluster.snapshot()
        XCTAssertFalse(treeBefore.isEmpty)

        let cases: [(String, String, [String])] = [
            ("cycle", #"{"name":"w","tasks":[{"name":"a","command":"true","deps":["c"]},{"name":"b","command":"true","deps":["a"]},{"name":"c","command":"true","deps":["b"]}]}"#,
             ["dependency cycle", "a -> c -> b -> a", "field 'deps'"]),
            ("unknown dependency", #"{"name":"w","tasks":[{"name":"load","command":"true","deps":["extrct"]}]}"#,
             ["task 'load'", "field 'deps'", "unknown dependency 'extrct'"]),
            ("duplicate names", #"{"name":"w","tasks":[{"name":"a","command":"true"},{"name":"a","command":"false"}]}"#,
             ["task 'a'", "field 'name'", "duplicate task name"]),
            ("unknown key", #"{"name":"w","tasks":[{"name":"a","command":"true","retrys":3}]}"#,
             ["task 'a'", "field 'retrys'", "unknown key"]),
            ("bad priority", #"{"name":"w","tasks":[{"name":"a","command":"true","priority":"URGENT"}]}"#,
             ["task 'a'", "field 'priority'", "'URGENT' is not one of HIGHEST HIGH MEDIUM LOW LOWEST"]),
            ("bad workflow priority", #"{"name":"w","priority":"SOON","tasks":[{"name":"a","command":"true"}]}"#,
             ["field 'priority'", "'SOON'"]),
            ("bad duration", #"{"name":"w","tasks":[{"name":"a","command":"true","timeout":"5 minutes"}]}"#,
             ["task 'a'", "field 'timeout'", "not a duration"]),
            ("malformed JSON", #"{"name":"w","tasks":[{"name":"a","command":"true"},]"#, ["malformed JSON"]),
            ("empty file", "", ["the file is empty"]),
            ("missing command", #"{"name":"w","tasks":[{"name":"a"}]}"#, ["task 'a'", "field 'command'", "missing"]),
        ]
        for (label, json, expected) in cases {
            let path = try cluster.workflowFile(json, name: label.replacingOccurrences(of: " ", with: "-"))
            let run = try cluster.run("ds-submit", [path])
            XCTAssertEqual(run.status, 65, "\(label): \(run.stderr)")
            XCTAssertTrue(run.stdout.isEmpty, "\(label) printed on stdout: \(run.stdout)")
            for text in expected {
                XCTAssertTrue(run.stderr.contains(text), "\(label): stderr lacks '\(text)':\n\(run.stderr)")
            }
            // The same through standard input, and with --wait: validation comes before any connection.
            let viaStdin = try cluster.run("ds-submit", ["-", "--wait"], stdin: json)
            XCTAssertEqual(viaStdin.status, 65, "\(label) via stdin: \(viaStdin.stderr)")
        }
        let missing = try cluster.run("ds-submit", [cluster.directory.appendingPathComponent("nope.json").path])
        XCTAssertEqual(missing.status, 66, missing.stderr)
        XCTAssertTrue(missing.stderr.contains("nope.json: no such file"), missing.stderr)

        let badParam = try cluster.run("ds-submit", [valid, "--param", "novalue"])
        XCTAssertEqual(badParam.status, 64, badParam.stderr)

        let countsAfter = try await counts()
        XCTAssertEqual(countsAfter, countsBefore, "the database changed")
        let treeAfter = try await cluster.snapshot()
        XCTAssertEqual(treeAfter, treeBefore, "ZooKeeper changed")
    }

    func testDryRunPrintsNormalisedWorkflowAndWritesNothing() throws {
        let path = try cluster.workflowFile(#"{"name":"w","tasks":[{"name":"a","command":"echo ${x}","retry_interval":"1m"}]}"#)
        let run = try cluster.run("ds-submit", [path, "--dry-run", "--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let object = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(object["failure_strategy"] as? String, "END")
        let task = (object["tasks"] as! [[String: Any]])[0]
        XCTAssertEqual(task["retry_interval"] as? Double, 60)
        XCTAssertEqual(task["worker_group"] as? String, "default")
        XCTAssertEqual(task["priority"] as? String, "MEDIUM")
        XCTAssertFalse(FileManager.default.fileExists(atPath: cluster.databasePath), "dry run created the database")
    }

    /// `ds-worker --slots` is bounded (100000000 was accepted): out of 1 to Limits.maxWorkerSlots it
    /// exits 64 naming the flag and the bound, before it registers anything.
    func testWorkerSlotsOutOfBoundsAreRefused() throws {
        for slots in ["100000000", String(Limits.maxWorkerSlots + 1), "0"] {
            let run = try cluster.run("ds-worker", ["--slots", slots, "--port", "7999"], timeout: 30)
            XCTAssertEqual(run.status, 64, "\(slots): \(run.stderr)")
            XCTAssertTrue(run.stderr.contains("--slots"), run.stderr)
            XCTAssertTrue(run.stderr.contains("1 to \(Limits.maxWorkerSlots)"), run.stderr)
        }
    }
}
