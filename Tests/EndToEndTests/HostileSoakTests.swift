import Foundation
import Shared
import XCTest

/// Issue 9: a minute (DS_HOSTILE_SECONDS) of random hostile workflows mixed with good ones on one
/// running cluster. No daemon exits, every good workflow succeeds, and every bad one is refused at
/// submit (exit 65, nothing printed) or ends FAILURE with a stored reason. The seed is printed;
/// DS_HOSTILE_SEED replays a run.
final class HostileSoakTests: ClusterTestCase {
    enum Expectation { case success, failure }

    struct Generator {
        var rng: SplitMix
        let markers: String

        mutating func pick<T>(_ items: [T]) -> T { items[Int(rng.next() % UInt64(items.count))] }
        mutating func chance(_ percent: UInt64) -> Bool { rng.next() % 100 < percent }

        /// A good workflow: a random DAG of 1 to 6 tasks with parameters, outputs and typed numbers.
        mutating func good(_ n: Int) -> String {
            let count = 1 + Int(rng.next() % 6)
            var tasks: [String] = []
            for i in 0..<count {
                let deps = (0..<i).filter { _ in chance(40) }.map { #""t\#($0)""# }
                let command = pick([
                    "true", "echo '${setValue(out\(i)=v\(n))}'", "test \"$p\" = ${p@Q}", "echo ${p@Q} >/dev/null",
                    "printf %s \"$zero$one\" | grep -q 01", "echo $[yyyyMMdd-1] $[yyyyMMdd-99999999999999999999] >/dev/null",
                ])
                var fields = [#""name":"t\#(i)""#, #""outputs":["out\#(i)"]"#, #""command":"\#(command.replacingOccurrences(of: "\"", with: "\\\""))""#, #""deps":[\#(deps.joined(separator: ","))]"#]
                if chance(30) { fields.append(#""retries":\#(pick([0, 1]))"#) }
                if chance(30) { fields.append(#""timeout":\#(pick(["100", "\"60s\"", "600"]))"#) }
                if chance(20) { fields.append(#""env":{"K":"1","L":"x"}"#) }
                if chance(20) { fields.append(#""priority":"\#(pick(Priority.allCases).rawValue)""#) }
                tasks.append("{" + fields.joined(separator: ",") + "}")
            }
            return #"{"format_version":1,"name":"good-\#(n)","params":{"p":"it's $(x)","zero":0,"one":1},"tasks":[\#(tasks.joined(separator: ","))]}"#
        }

        /// A workflow that validation must refuse.
        mutating func refused(_ n: Int) -> String {
            let good = self.good(n)
            switch rng.next() % 14 {
            case 0: return String(good.prefix(Int(rng.next() % UInt64(good.count))))  // cut anywhere
            case 1: return good.replacingOccurrences(of: #""name":"t0""#, with: #""name":"t0","name":"t0""#)
            case 2: return good.replacingOccurrences(of: #""name":"t0""#, with: #""name":"t0","worker_group":"\#(pick(["..", ".", "a/b", "x\\u0001"]))""#)
            case 3: return good.replacingOccurrences(of: #""name":"t0""#, with: #""name":"t0","timeout":"\#(pick(["1e308s", "31d", "-1s", "NaN"]))""#)
            case 4: return good.replacingOccurrences(of: #""name":"t0""#, with: #""name":"t0","retries":2,"retry_interval":"1e308s""#)
            case 5: return good.replacingOccurrences(of: #""name":"t0""#, with: #""name":"t0","env":{"\#(pick(["PATH", "LD_PRELOAD", "DS_X", "A=B", "BASH_ENV"]))":"x"}"#)
            case 6: return good.replacingOccurrences(of: #""name":"good-\#(n)""#, with: #""name":"\#(pick(["..", ".", "", "a/b", "x\\ny", String(repeating: "n", count: 200)]))""#)
            case 7: return good.replacingOccurrences(of: #""name":"t0""#, with: #""name":"t0\u0000""#)
            case 8: return good.replacingOccurrences(of: #""command":"#, with: #""command":"a\u0000b","x":"#)
            case 9: return String(repeating: "[", count: 5000)
            case 10: return String((0..<Int(rng.next() % 200)).map { _ in Character(Unicode.Scalar(UInt8(rng.next() % 128))) })
            case 11: return good.replacingOccurrences(of: #""retries":"#, with: #""retries":true,"x":"#).replacingOccurrences(of: #""deps":[]"#, with: #""deps":[1]"#)
            case 12: return good.replacingOccurrences(of: #""name":"t0""#, with: #""name":"t0","command":"\#(String(repeating: "x", count: 140_000))""#)
            default: return good.replacingOccurrences(of: #""format_version":1"#, with: #""format_version":\#(pick(["2", "true", "1.0", "\"1\""]))"#)
            }
        }

        /// A workflow that passes validation and must end FAILURE with a reason.
        mutating func failing(_ n: Int) -> String {
            let command = pick([
                "exit 3", "echo '${setValue(PATH=/tmp)}'", "echo '${setValue(LD_PRELOAD=/x)}'",
                "head -c 1200000 /dev/zero | tr '\\\\0' x; echo '${setValue(x=1)}'",
                "printf '${setValue(big=%s)}\\\\n' \\\"$(head -c 40000 /dev/zero | tr '\\\\0' y)\\\"",
                "sleep 30",
            ])
            let timeout = command.hasPrefix("sleep") ? #","timeout":"1s""# : ""
            return #"{"name":"bad-\#(n)","tasks":[{"name":"a","command":"\#(command)"\#(timeout)},{"name":"b","deps":["a"],"command":"touch \#(markers)/ran-after-\#(n)"}]}"#
        }
    }

    func testAMinuteOfHostileWorkflowsLeavesTheClusterRunning() async throws {
        let seconds = Double(ProcessInfo.processInfo.environment["DS_HOSTILE_SECONDS"] ?? "") ?? 60
        let seed = UInt64(ProcessInfo.processInfo.environment["DS_HOSTILE_SEED"] ?? "") ?? UInt64.random(in: 0...UInt64.max)
        print("hostile soak: seed \(seed) (DS_HOSTILE_SEED replays it), \(seconds)s")
        let markers = cluster.directory.appendingPathComponent("markers").path
        try FileManager.default.createDirectory(atPath: markers, withIntermediateDirectories: true)
        let master = try cluster.startMaster()
        let workers = [try cluster.startWorker(slots: 2), try cluster.startWorker(slots: 2)]
        var generator = Generator(rng: SplitMix(state: seed), markers: markers)
        var submitted: [(id: Int64, expect: Expectation, json: String)] = []
        var refusals = 0
        let end = Date().addingTimeInterval(seconds)
        var n = 0
        while Date() < end {
            n += 1
            let kind = generator.rng.next() % 10
            let json = kind < 4 ? generator.good(n) : kind < 8 ? generator.refused(n) : generator.failing(n)
            let run = try cluster.run("ds-submit", ["-"], stdin: json)
            if kind >= 4 && kind < 8 {
                XCTAssertEqual(run.status, 65, "refused workflow #\(n) (seed \(seed)): \(json.prefix(300))\n\(run.stderr.prefix(500))")
                XCTAssertTrue(run.stdout.isEmpty && run.stderr.contains("invalid workflow"), "#\(n): \(run.stdout) \(run.stderr.prefix(300))")
                refusals += 1
                continue
            }
            XCTAssertEqual(run.status, 0, "workflow #\(n) (seed \(seed)) was refused: \(json.prefix(300))\n\(run.stderr)")
            guard let id = Int64(run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else { continue }
            submitted.append((id, kind < 4 ? .success : .failure, json))
        }
        let store = try cluster.store()
        for (id, expect, json) in submitted {
            let state = try await cluster.waitForEnd(id, timeout: 300)
            let attempts = try await store.taskAttempts(of: id)
            switch expect {
            case .success:
                XCTAssertEqual(state, .success, "instance \(id) (seed \(seed)): \(json)\n\(attempts.map { "\($0.taskName) \($0.state) \($0.message ?? "")" })")
            case .failure:
                XCTAssertEqual(state, .failure, "instance \(id) (seed \(seed)): \(json.prefix(300))")
                let reasons = attempts.filter { $0.state == .failure }.compactMap(\.message)
                XCTAssertFalse(reasons.isEmpty, "instance \(id) ended without a stored reason: \(json.prefix(300))")
            }
        }
        let ranAfter = (try? FileManager.default.contentsOfDirectory(atPath: markers)) ?? []
        XCTAssertEqual(ranAfter, [], "a task ran after its failed upstream")
        XCTAssertTrue(master.isRunning, "the master exited")
        XCTAssertTrue(workers.allSatisfy(\.isRunning), "a worker exited")
        print("hostile soak: \(n) workflows in \(seconds)s: \(submitted.filter { $0.expect == .success }.count) good, \(refusals) refused at submit, \(submitted.filter { $0.expect == .failure }.count) failing at run time")
    }
}
