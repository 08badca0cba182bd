import Foundation
import Shared
import XCTest

/// Issue 25, item 6: ds-alert lists, shows and acknowledges the alerts real masters recorded.
class AlertToolTests: ClusterTestCase {
    /// An alert as `--json` prints it: the keys a script reads.
    struct AlertJSON: Decodable {
        var id: Int64
        var kind: String
        var state: String
        var title: String
        var key: String
        var createdAt: String
        var workflow: String?
        var instance: Int64?
        var run: Int?
        var task: String?
        var instanceState: String?
        var deliveries: Int
        var lastError: String?
        var sentAt: String?
        var acked: Bool
        var ackedAt: String?
        var ackedBy: String?
    }

    /// Any JSON value: to compare an object's keys with the man page's list.
    enum JSONValue: Decodable, Equatable {
        case null, bool(Bool), number(Double), string(String), array([JSONValue]), object([String: JSONValue])
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if c.decodeNil() { self = .null } else if let b = try? c.decode(Bool.self) { self = .bool(b) }
            else if let n = try? c.decode(Double.self) { self = .number(n) } else if let s = try? c.decode(String.self) { self = .string(s) }
            else if let a = try? c.decode([JSONValue].self) { self = .array(a) } else { self = .object(try c.decode([String: JSONValue].self)) }
        }
    }

    static let rfc3339 = #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"#

    func decode<T: Decodable>(_ type: T.Type, _ run: ToolRun, file: StaticString = #filePath, line: UInt = #line) throws -> T {
        XCTAssertEqual(run.status, 0, run.stderr, file: file, line: line)
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return try d.decode(type, from: Data(run.stdout.utf8))
    }

    func alert(_ arguments: [String]) throws -> ToolRun { try cluster.run("ds-alert", arguments) }

    /// The keys the man page's JSON section lists (`.It Cm key`).
    static func manPageKeys() throws -> Set<String> {
        let page = try String(contentsOf: DocumentationTests.manDirectory.appendingPathComponent("ds-alert.1"), encoding: .utf8)
        let section = try XCTUnwrap(page.components(separatedBy: "\n.Sh JSON\n").last?.components(separatedBy: "\n.Sh ").first)
        return Set(section.split(separator: "\n").filter { $0.hasPrefix(".It Cm ") }.map { String($0.dropFirst(7)) })
    }

    /// Starts a master whose alert command fails for WORKFLOW_FAILURE (no retry) and delivers the
    /// rest; runs a workflow that succeeds and one that fails, both alerting; their instance ids.
    func twoSettledAlerts() async throws -> (ok: Int64, bad: Int64) {
        let command = cluster.directory.appendingPathComponent("alert.sh").path
        try #"""
            #!/bin/sh
            cat > /dev/null
            if [ "$DS_ALERT_KIND" = WORKFLOW_FAILURE ]; then echo "mail server said no" >&2; exit 3; fi
            """#.write(toFile: command, atomically: true, encoding: .utf8)
        chmod(command, 0o755)
        try cluster.startMaster(["--alert-command", command, "--alert-retries", "0"])
        try cluster.startWorker()
        let ok = try cluster.submit(#"{"name":"told","warning":"ALL","tasks":[{"name":"t","command":"true"}]}"#)
        let bad = try cluster.submit(#"{"name":"told-bad","warning":"ALL","tasks":[{"name":"t","command":"exit 3"}]}"#)
        for id in [ok, bad] { _ = try await cluster.waitForEnd(id) }
        try await eventually("both alerts are settled") {
            let alerts = try await self.cluster.store().alerts()
            return alerts.count == 2 && alerts.allSatisfy { $0.state == "SENT" || $0.state == "FAILED" }
        }
        return (ok, bad)
    }

    func testListShowAndAcknowledgeAlerts() async throws {
        let (ok, bad) = try await twoSettledAlerts()
        let all = try decode([AlertJSON].self, try alert(["list", "--json"]))
        XCTAssertEqual(all.map(\.instance), [bad, ok], "newest first")
        let failure = try XCTUnwrap(all.first), success = try XCTUnwrap(all.last)
        XCTAssertEqual(failure.kind, "WORKFLOW_FAILURE")
        XCTAssertEqual(failure.state, "FAILED")
        XCTAssertEqual(failure.workflow, "told-bad")
        XCTAssertEqual(failure.instanceState, "FAILURE")
        XCTAssertEqual(failure.lastError, "exit 3: mail server said no")
        XCTAssertEqual(failure.deliveries, 1)
        XCTAssertNil(failure.sentAt)
        XCTAssertEqual(success.state, "SENT")
        XCTAssertNotNil(success.sentAt?.range(of: Self.rfc3339, options: .regularExpression), "\(success.sentAt ?? "nil")")
        XCTAssertNotNil(failure.createdAt.range(of: Self.rfc3339, options: .regularExpression), failure.createdAt)
        XCTAssertFalse(failure.acked || success.acked)

        // Every key, null ones too, and just those the man page lists.
        let objects = try decode([[String: JSONValue]].self, try alert(["list", "--json"]))
        XCTAssertEqual(objects.count, 2)
        for object in objects { XCTAssertEqual(Set(object.keys), try Self.manPageKeys()) }
        XCTAssertEqual(objects.first?["acked_by"], .null)

        // Filters, ids only, the limit and its notice.
        XCTAssertEqual(try decode([AlertJSON].self, try alert(["list", "--json", "--state", "FAILED"])).map(\.id), [failure.id])
        XCTAssertEqual(try decode([AlertJSON].self, try alert(["list", "--json", "--instance", String(ok)])).map(\.id), [success.id])
        XCTAssertEqual(try decode([AlertJSON].self, try alert(["list", "--json", "--workflow", "told"])).map(\.id), [success.id])
        XCTAssertEqual(try alert(["list", "--json", "--workflow", "nothing-of-that-name"]).stdout, "[]\n")
        XCTAssertEqual(try alert(["list", "-q"]).stdout, "\(failure.id)\n\(success.id)\n")
        let cut = try alert(["list", "--limit", "1"])
        XCTAssertEqual(cut.status, 0)
        XCTAssertEqual(cut.stdout.split(separator: "\n").count, 2, "the header and one row: \(cut.stdout)")
        XCTAssertTrue(cut.stderr.contains("listed the first 1 alerts and more exist"), cut.stderr)
        XCTAssertEqual(try alert(["list", "--limit", "0", "-q"]).stdout.split(separator: "\n").count, 2)
        XCTAssertEqual(try alert(["list", "--limit", "2"]).stderr, "", "no notice when nothing was cut")
        XCTAssertEqual(try alert(["list", "--limit", String(Int.max), "-q"]).stdout.split(separator: "\n").count, 2, "the largest limit is no crash")

        // show: human and JSON.
        let shown = try alert(["show", String(failure.id)])
        XCTAssertEqual(shown.status, 0, shown.stderr)
        for expected in ["WORKFLOW_FAILURE", "FAILED", "told-bad", "last error:", "exit 3: mail server said no", "acknowledged:", "no"] {
            XCTAssertTrue(shown.stdout.contains(expected), "show lacks \(expected): \(shown.stdout)")
        }
        XCTAssertEqual(try decode(AlertJSON.self, try alert(["show", String(failure.id), "--json"])).lastError, "exit 3: mail server said no")
        let missing = try alert(["show", "987654"])
        XCTAssertEqual(missing.status, 65)
        XCTAssertTrue(missing.stderr.contains("no alert 987654"), missing.stderr)

        // ack: all or nothing; who and when; again changes nothing.
        let refused = try alert(["ack", String(failure.id), "987654", "--by", "alice"])
        XCTAssertEqual(refused.status, 65)
        XCTAssertTrue(refused.stderr.contains("987654") && !refused.stderr.contains("no alert \(failure.id)"), refused.stderr)
        var rows = try await cluster.store().alerts()
        XCTAssertTrue(rows.allSatisfy { $0.ackTime == nil && $0.ackBy == nil }, "nothing written when one id is unknown")
        let acked = try alert(["ack", String(failure.id), "--by", "alice"])
        XCTAssertEqual(acked.status, 0, acked.stderr)
        XCTAssertEqual(acked.stdout, "alert \(failure.id): acknowledged by 'alice'\n")
        rows = try await cluster.store().alerts()
        let first = try XCTUnwrap(rows.first { $0.id == failure.id })
        XCTAssertEqual(first.ackBy, "alice")
        XCTAssertNotNil(first.ackTime)
        XCTAssertEqual(first.state, "FAILED", "acknowledging changes nothing else")
        let again = try alert(["ack", String(failure.id), String(failure.id), "--by", "bob"])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertTrue(again.stdout.hasPrefix("alert \(failure.id): already acknowledged by 'alice' at "), again.stdout)
        XCTAssertEqual(again.stdout.split(separator: "\n").count, 1, "an id given twice is one alert")
        let kept = try await cluster.store().alert(failure.id)
        XCTAssertEqual(kept?.ackBy, "alice")
        XCTAssertEqual(kept?.ackTime, first.ackTime, "the first acknowledgement is kept")

        // Acked alerts show as such.
        XCTAssertEqual(try alert(["list", "--unacked", "-q"]).stdout, "\(success.id)\n")
        let table = try alert(["list"]).stdout.split(separator: "\n")
        XCTAssertTrue(table.first?.contains("ACKED_BY") ?? false, "\(table)")
        XCTAssertTrue(table.contains { $0.hasPrefix("\(failure.id) ") && $0.contains(" alice ") }, "\(table)")
        let ackedJSON = try decode(AlertJSON.self, try alert(["show", String(failure.id), "--json"]))
        XCTAssertTrue(ackedJSON.acked)
        XCTAssertEqual(ackedJSON.ackedBy, "alice")
        XCTAssertNotNil(ackedJSON.ackedAt?.range(of: Self.rfc3339, options: .regularExpression), "\(ackedJSON.ackedAt ?? "nil")")
        XCTAssertTrue(try alert(["show", String(failure.id)]).stdout.contains("by alice at "))

        // --json: the alerts as acknowledged; by default by the user running the tool.
        let byDefault = try decode([AlertJSON].self, try alert(["ack", String(success.id), "--json"]))
        XCTAssertEqual(byDefault.map(\.id), [success.id])
        XCTAssertEqual(byDefault.first?.ackedBy, AlertTool.defaultAcknowledger())
        XCTAssertEqual(try alert(["list", "--unacked", "-q"]).stdout, "")
    }

    func testHostileTextIsEscapedInTablesAndKeptInJSON() async throws {
        try cluster.startMaster()
        try await eventually("the master made the schema") { try self.alert(["list"]).status == 0 }
        let title = "forged\n99  SERVER_DOWN  SENT  fake row\u{1B}[31m red\u{7}"
        var content = AlertContent(kind: .serverDown, title: title, time: 1_796_457_600.25)
        (content.serverType, content.server) = ("worker", "evil\u{1B}]0;title\u{7}:1")
        try await cluster.store().recordAlerts([AlertRecord(content, dedupKey: "SERVER_DOWN:hostile")])
        let id = try alert(["list", "-q"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        for arguments in [["list"], ["show", id]] {
            let run = try alert(arguments)
            XCTAssertEqual(run.status, 0, run.stderr)
            XCTAssertFalse(run.stdout.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 }, "\(arguments): \(run.stdout)")
            XCTAssertTrue(run.stdout.contains(#"forged\n99"#), "\(arguments): \(run.stdout)")
        }
        XCTAssertEqual(try alert(["list"]).stdout.split(separator: "\n").count, 2, "the header and one row")
        let json = try decode([AlertJSON].self, try alert(["list", "--json"]))
        XCTAssertEqual(json.first?.title, title, "JSON keeps the text as it is")
        XCTAssertEqual(json.first?.createdAt, "2026-12-05T08:00:00.250Z")
        XCTAssertNil(json.first?.instance)
    }

    func testBadInputIsRefusedNamingWhatIsWrong() throws {
        for (arguments, names) in [
            ([], "a subcommand is required"), (["list", "--state", "sent"], "--state 'sent'"), (["list", "--limit", "-1"], "--limit -1"),
            (["list", "-q", "--json"], "-q and --json"), (["list", "--workflow", "a\nb"], "--workflow 'a\\nb'"),
            (["list", "--instance", "0"], "--instance 0"), (["show", "abc"], "abc"), (["show", "0"], "not 0"), (["ack", "3", "0"], "not 0"), (["show", "-5"], "<id>"),
            (["ack"], "<id>"), (["ack", "1", "--by", ""], "--by ''"), (["ack", "1", "--by", "\u{1B}[31mx"], "--by '\\u{1B}[31mx'"),
            (["ack", "99999999999999999999"], "99999999999999999999"),
        ] {
            let run = try alert(arguments)
            XCTAssertEqual(run.status, 64, "\(arguments): \(run.stderr)")
            XCTAssertTrue(run.stderr.contains(names), "\(arguments) should name \(names): \(run.stderr)")
            XCTAssertFalse(run.stderr.unicodeScalars.contains { $0.value == 0x1B }, "\(arguments): \(run.stderr)")
        }
    }
}

final class PostgresAlertToolTests: AlertToolTests {
    override class var onPostgreSQL: Bool { true }
    func testOnPostgreSQL() async throws { try await assertOnPostgreSQL(cluster) }
}
