import Foundation
import Shared
import XCTest

final class ParametersAndKeysTests: XCTestCase {
    let utc = TimeZone(identifier: "UTC")!
    // 2026-03-01 12:34:56 UTC
    var resolver: ParameterResolver { ParameterResolver(runTime: Date(timeIntervalSince1970: 1772368496), timeZone: utc) }

    func testBuiltInsAndDateArithmetic() throws {
        let values = try resolver.instanceParameters(workflow: ["dt": "${system.biz.date}"], overrides: [:])
        XCTAssertEqual(values["system.biz.date"], "20260228")
        XCTAssertEqual(values["system.biz.curdate"], "20260301")
        XCTAssertEqual(values["system.datetime"], "20260301123456")
        XCTAssertEqual(values["dt"], "20260228")
        XCTAssertEqual(try resolver.substitute("$[yyyyMMdd-1] $[yyyy-MM-dd+7] $[HHmmss]", [:]), "20260228 2026-03-08 123456")
    }

    func testOverridesWinAndUnknownNamesPassThroughToTheShell() throws {
        let values = try resolver.instanceParameters(workflow: ["a": "1", "b": "2"], overrides: ["a": "9"])
        XCTAssertEqual(try resolver.substitute("${a}-${b}-${HOME}-$PATH-${setValue(x=1)}", values), "9-2-${HOME}-$PATH-${setValue(x=1)}")
    }

    func testOutputParametersAreRead() {
        let log = "noise\n${setValue(rows=42)}\nmore ${setValue( name =a=b)} ${setValue(rows=43)}\n${setValue(broken"
        XCTAssertEqual(ParameterResolver.outputParameters(in: log), ["rows": "43", "name": "a=b"])
    }

    func testQueueKeysSortInDispatchOrder() {
        func key(_ wp: Priority, _ wi: Int64, _ tp: Priority, _ ti: Int64) -> TaskQueueKey {
            TaskQueueKey(workflowPriority: wp, workflowInstanceId: wi, taskPriority: tp, taskInstanceId: ti)
        }
        let expected = [
            key(.highest, 9, .lowest, 900), key(.high, 2, .medium, 5), key(.medium, 3, .highest, 40),
            key(.medium, 3, .low, 12), key(.medium, 10, .highest, 1), key(.medium, 10, .highest, 11),
            key(.lowest, 1, .highest, 2),
        ]
        let names = expected.map(\.description).shuffled().sorted()
        XCTAssertEqual(names, expected.map(\.description), "lexical order of node names is dispatch order")
        XCTAssertEqual(names.compactMap(TaskQueueKey.init), expected, "names parse back")
        XCTAssertEqual(expected.shuffled().sorted(), expected, "keys compare as their names sort")
        XCTAssertNil(TaskQueueKey("9-1-1-1"))
    }

    /// Found by the queue-key fuzzer: `0-1000000000001-4-000000000017` decoded, and its name sorted
    /// before `0-999999999999-0-999999999999` although its key sorts after it.
    func testOnlyNamesWrittenByDescriptionDecode() {
        let edge = TaskQueueKey(workflowPriority: .lowest, workflowInstanceId: TaskQueueKey.maxId, taskPriority: .highest, taskInstanceId: 0)
        XCTAssertEqual(TaskQueueKey(edge.description), edge)
        for name in ["0-1000000000001-4-000000000017", "0-9223372036854775807-0-000000000001", "0-+00000000005-0-000000000001",
                     "0-000000000005-0--00000000001", "0--000000000005-0-000000000001", "0-5-0-1", "00-000000000005-0-000000000001",
                     "0-000000000005-0-000000000001-", "5-000000000005-0-000000000001", "0-00000000000٣-0-000000000001", ""] {
            XCTAssertNil(TaskQueueKey(name), name)
        }
    }

    func testDurations() {
        XCTAssertEqual(DurationText.parse("500ms"), 0.5)
        XCTAssertEqual(DurationText.parse("10s"), 10)
        XCTAssertEqual(DurationText.parse("5m"), 300)
        XCTAssertEqual(DurationText.parse("2h"), 7200)
        XCTAssertEqual(DurationText.parse("7"), 7)
        XCTAssertNil(DurationText.parse("-1s"))
        XCTAssertNil(DurationText.parse("soon"))
        XCTAssertNil(DurationText.parse("1e308h"), "infinite once in seconds (found by the workflow fuzzer)")
        XCTAssertNil(DurationText.parse("1e300h"), "no exponent: one grammar, digits and a unit")
    }

    /// One duration grammar everywhere: digits and a unit, compound largest first (`1h30m`),
    /// nothing trimmed, no exponent (" 5s" and "1e1s" were accepted, "1h30m" was not).
    func testOneDurationGrammar() {
        let accepted: [(String, Double)] = [("1h30m", 5400), ("1d12h", 129_600), ("2m30.5s", 150.5), ("1s500ms", 1.5),
                                            ("90", 90), ("1.5", 1.5), ("0s", 0), ("1d", 86400), ("500ms", 0.5)]
        for (text, seconds) in accepted { XCTAssertEqual(DurationText.parse(text), seconds, text) }
        for text in [" 5s", "5s ", "1e1s", "1e1", "+5s", "-5", "30m1h", "1h1h", "1h30", "h", ".5s", "5.s", "1ms1s", "5 s", "",
                     String(repeating: "1", count: 65)] {
            XCTAssertNil(DurationText.parse(text), text)
        }
        // The workflow JSON and the flags read durations through it.
        XCTAssertEqual(TimeText.parse("1h30m", now: 10_000), 10_000 - 5400)
    }

    func testConfigurationPrecedenceFlagOverEnvironmentOverDefault() throws {
        let env = ["DS_ZK": "zk-env:1", "DS_ZK_ROOT": "/env", "HOME": "/home/u"]
        var c = try GlobalOptions.parse([]).resolve(env)
        XCTAssertEqual(c.zkConnect, "zk-env:1")
        XCTAssertEqual(c.zkRoot, "/env")
        XCTAssertEqual(c.databasePath, "/home/u/.local/state/ds/ds.db")
        XCTAssertEqual(c.sessionTimeoutMillis, 10_000)
        c = try GlobalOptions.parse(["--zk", "zk-flag:2", "--home", "/h", "--zk-session-timeout", "2500ms"]).resolve(env)
        XCTAssertEqual(c.zkConnect, "zk-flag:2")
        XCTAssertEqual(c.databasePath, "/h/ds.db")
        XCTAssertEqual(c.sessionTimeoutMillis, 2500)
        XCTAssertEqual(try GlobalOptions.parse([]).resolve(["XDG_STATE_HOME": "/x"]).databasePath, "/x/ds/ds.db")
        XCTAssertEqual(try GlobalOptions.parse([]).resolve([:]).zkConnect, "127.0.0.1:2181")
        XCTAssertThrowsError(try GlobalOptions.parse(["--zk-root", "relative"]).resolve(env))
        XCTAssertThrowsError(try GlobalOptions.parse(["--zk-session-timeout", "soon"]).resolve(env))
    }
}
