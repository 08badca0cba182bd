import Foundation
import Shared
import XCTest

/// Issue 25, item 8's rough edges about stored definitions, on a real master, ZooKeeper and
/// SQLite: a `description` is stored, shown and round-trips through `ds-instance definition |
/// ds-submit -`; `ds-queue push` runs the stored ad-hoc version its command already has; and
/// `--dry-run` checks pools and SUB_PROCESS targets when the database can be read, and says so
/// on stderr when it cannot.
class DefinitionEdgesTests: ClusterTestCase {
    func testADescriptionIsStoredShownAndRoundTrips() async throws {
        try cluster.startMaster()
        try cluster.startWorker()
        let json = #"{"name":"described","description":"nightly load\nsecond line \u001b[31mred","tasks":[{"name":"t","command":"true","description":"the only task"}]}"#
        let stored = try cluster.run("ds-submit", ["--no-start", try cluster.workflowFile(json)])
        XCTAssertEqual(stored.status, 0, stored.stderr)
        XCTAssertEqual(stored.stdout, "described v1\n")
        let printed = try cluster.run("ds-instance", ["definition", "described"])
        XCTAssertEqual(printed.status, 0, printed.stderr)
        let definition = try WorkflowParser.parse(Data(printed.stdout.utf8), source: "printed")
        XCTAssertEqual(definition.description, "nightly load\nsecond line \u{1b}[31mred")
        XCTAssertEqual(definition.tasks.first?.description, "the only task")
        // Through ds-submit again: the same definition, so the same version.
        let again = try cluster.run("ds-submit", ["--no-start", "-"], stdin: printed.stdout)
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(again.stdout, "described v1\n", "the description round-trips: no new version")
        // Shown, escaped: its control characters cannot forge output.
        let listed = try cluster.run("ds-instance", ["definitions"])
        XCTAssertTrue(listed.stdout.contains("DESCRIPTION") && listed.stdout.contains("nightly load"), listed.stdout)
        XCTAssertFalse(listed.stdout.contains("second line"), "the table shows the first line: \(listed.stdout)")
        let lines = try cluster.run("ds-instance", ["definitions", "--json"])
        let summary = try WireJSON.decode(DefinitionSummary.self, Data(lines.stdout.split(separator: "\n")[0].utf8))
        XCTAssertEqual(summary.description, "nightly load\nsecond line \u{1b}[31mred")
        let id = try cluster.submit(json)
        try await XCTAssertEqualAsync(try await cluster.waitForEnd(id), .success)
        let show = try cluster.run("ds-instance", ["show", String(id)])
        let line = show.stdout.split(separator: "\n").first { $0.hasPrefix("description ") }
        XCTAssertNotNil(line, show.stdout)
        XCTAssertFalse(show.stdout.contains("\u{1b}"), "escaped: \(show.stdout)")
        // A description is a string within a value's bounds.
        for (bad, field) in [(#"{"name":"d","description":5,"tasks":[{"name":"t","command":"true"}]}"#, "description"),
                             (#"{"name":"d","tasks":[{"name":"t","command":"true","description":"a\u0000b"}]}"#, "description")] {
            let run = try cluster.run("ds-submit", ["--dry-run", try cluster.workflowFile(bad)])
            XCTAssertEqual(run.status, 65, run.stderr)
            XCTAssertTrue(run.stderr.contains(field), run.stderr)
        }
    }

    func testPushRunsTheStoredAdHocVersionOfTheSameCommand() async throws {
        try cluster.startMaster()
        var versions: [Int] = []
        for command in ["echo a", "echo b", "echo a", "echo a"] {
            let run = try cluster.run("ds-queue", ["push", "--command", command, "--json"])
            XCTAssertEqual(run.status, 0, run.stderr)
            struct Pushed: Decodable { var instanceId: Int64 }
            let pushed = try WireJSON.decode(Pushed.self, Data(run.stdout.utf8))
            let instance = try await cluster.store().instance(pushed.instanceId)
            versions.append(try XCTUnwrap(instance).version)
        }
        XCTAssertEqual(versions, [1, 2, 1, 1], "a command pushed before runs its stored version")
        let definitions = try await cluster.store().definitions(named: "adhoc")
        XCTAssertEqual(definitions.map(\.version), [1, 2])
        // ds-submit still makes a resubmitted definition the latest version (schedules fire it).
        let file = try cluster.workflowFile(#"{"name":"s","tasks":[{"name":"t","command":"echo a"}]}"#)
        let other = try cluster.workflowFile(#"{"name":"s","tasks":[{"name":"t","command":"echo b"}]}"#)
        let outputs = try [file, other, file].map { try cluster.run("ds-submit", ["--no-start", $0]).stdout }
        XCTAssertEqual(outputs, ["s v1\n", "s v2\n", "s v3\n"])
    }

    func testDryRunChecksPoolsAndSubProcessTargetsWhenTheDatabaseCanBeRead() async throws {
        let pooled = try cluster.workflowFile(#"{"name":"p","tasks":[{"name":"t","command":"true","pool":"nopool"}]}"#)
        let parent = try cluster.workflowFile(#"{"name":"parent","tasks":[{"name":"child","type":"SUB_PROCESS","workflow":"absent"}]}"#)
        let plain = try cluster.workflowFile(#"{"name":"plain","tasks":[{"name":"t","command":"true"}]}"#)
        // No database yet: it still works, and says what it did not check and why.
        for file in [pooled, parent] {
            let run = try cluster.run("ds-submit", ["--dry-run", file])
            XCTAssertEqual(run.status, 0, run.stderr)
            // SQLite: no file; PostgreSQL: no schema yet (no master has opened the database).
            let why = Self.onPostgreSQL ? "the database cannot be read" : "there is no database"
            XCTAssertTrue(run.stderr.contains("--dry-run did not check pools and SUB_PROCESS targets: \(why)"), run.stderr)
            XCTAssertFalse(run.stdout.isEmpty)
        }
        if !Self.onPostgreSQL { XCTAssertFalse(FileManager.default.fileExists(atPath: cluster.databasePath), "a dry run makes no database") }
        XCTAssertEqual(try cluster.run("ds-submit", ["--dry-run", plain]).stderr, "", "nothing to check, nothing said")

        try cluster.startMaster()
        try await eventually("the master made the schema") { try self.cluster.run("ds-pool", ["list"]).status == 0 }
        // An unknown pool: refused as a submit refuses it, nothing printed.
        let refused = try cluster.run("ds-submit", ["--dry-run", pooled])
        XCTAssertEqual(refused.status, 65, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("pool 'nopool' does not exist"), refused.stderr)
        XCTAssertEqual(refused.stdout, "")
        XCTAssertEqual(try cluster.run("ds-submit", [pooled]).status, 65, "submit refuses it too")
        XCTAssertEqual(try cluster.run("ds-pool", ["set", "nopool", "2"]).status, 0)
        let accepted = try cluster.run("ds-submit", ["--dry-run", pooled])
        XCTAssertEqual(accepted.status, 0, accepted.stderr)
        XCTAssertEqual(accepted.stderr, "")
        // A SUB_PROCESS target not stored: said, as the node would fail; once stored, not.
        let warned = try cluster.run("ds-submit", ["--dry-run", parent])
        XCTAssertEqual(warned.status, 0, warned.stderr)
        XCTAssertTrue(warned.stderr.contains("task 'child': SUB_PROCESS workflow 'absent' is not stored"), warned.stderr)
        let child = try cluster.workflowFile(#"{"name":"absent","tasks":[{"name":"t","command":"true"}]}"#)
        XCTAssertEqual(try cluster.run("ds-submit", ["--no-start", child]).status, 0)
        XCTAssertEqual(try cluster.run("ds-submit", ["--dry-run", parent]).stderr, "")
        let definitions = try await cluster.store().definitions()
        XCTAssertEqual(definitions.map(\.name), ["absent"], "a dry run stores nothing")
    }
}
