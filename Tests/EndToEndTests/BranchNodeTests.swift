import Foundation
import Shared
import XCTest

/// CONDITIONS, SWITCH and disabled tasks on real masters, workers, ZooKeeper and SQLite: the branch
/// taken is the one the inputs call for, what is not taken is visible and never runs, a decision is
/// stored once and survives the master that made it.
final class BranchNodeTests: ClusterTestCase {
    var marker: String { cluster.directory.appendingPathComponent("markers").path }
    func file(_ name: String) -> String { cluster.directory.appendingPathComponent(name).path }

    func attempts(_ id: Int64) async throws -> [TaskInstanceRecord] { try await cluster.store().taskAttempts(of: id) }

    /// a fails when `fail` is 1; CONDITIONS sends a success to `ok` and a failure to `recover`,
    /// each of which prints the output parameter `seen`; SWITCH joins them and routes on `kind`,
    /// `seen` and the number `n`; `end` joins the three routes.
    var branching: String {
        #"""
        {"name":"branching","failure_strategy":"CONTINUE","params":{"fail":"0","kind":"x","n":"0","id":"?"},"tasks":[
         {"name":"a","command":"echo a-${id} >> \#(marker); test ${fail} = 0"},
         {"name":"check","type":"CONDITIONS","deps":["a"],"success_branch":["ok"],"failure_branch":["recover"]},
         {"name":"ok","deps":["check"],"outputs":["seen"],"command":"echo ok-${id} >> \#(marker); echo '${setValue(seen=ok)}'"},
         {"name":"recover","deps":["check"],"outputs":["seen"],"command":"echo recover-${id} >> \#(marker); echo '${setValue(seen=recover)}'"},
         {"name":"route","type":"SWITCH","deps":["ok","recover"],"cases":[
           {"when":"${kind} == \"x\" && ${seen} == 'ok'","then":["x"]},
           {"when":"${n} > 3","then":["big"]}],"default_branch":["other"]},
         {"name":"x","deps":["route"],"command":"echo x-${id} >> \#(marker)"},
         {"name":"big","deps":["route"],"command":"echo big-${id} >> \#(marker)"},
         {"name":"other","deps":["route"],"command":"echo other-${id} >> \#(marker)"},
         {"name":"end","deps":["x","big","other"],"command":"echo end-${id} >> \#(marker)"}]}
        """#
    }

    func testConditionsAndSwitchTakeTheBranchTheInputsCallFor() async throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 4)
        var rng = SplitMix(state: UInt64(Date().timeIntervalSince1970))
        let seed = rng.state
        struct Case { var fail: Bool; var kind: String; var n: String; var id: Int64 = 0 }
        var cases: [Case] = (0..<8).map { _ in
            Case(fail: Bool.random(using: &rng), kind: ["x", "y", "x "].randomElement(using: &rng)!,
                 n: ["-5", "0", "3", "3.5", "4", "10", "1e1"].randomElement(using: &rng)!)
        }
        // Every branch at least once, whatever the seed.
        cases += [Case(fail: false, kind: "x", n: "0"), Case(fail: true, kind: "x", n: "4"), Case(fail: false, kind: "y", n: "3")]
        for k in cases.indices {
            cases[k].id = try cluster.submit(branching, ["--param", "fail=\(cases[k].fail ? 1 : 0)", "--param", "kind=\(cases[k].kind)",
                                                         "--param", "n=\(cases[k].n)", "--param", "id=\(k)"])
        }
        for (k, c) in cases.enumerated() {
            let why = "case \(k) \(c) (seed \(seed))"
            let state = try await cluster.waitForEnd(c.id)
            XCTAssertEqual(state, .success, "\(why): a failure handled by CONDITIONS does not fail the instance")
            let seen = c.fail ? "recover" : "ok"
            let route = c.kind == "x" && seen == "ok" ? "x" : (Double(c.n)! > 3 ? "big" : "other")
            let ran = cluster.lines(marker).filter { $0.hasSuffix("-\(k)") }.map { String($0.dropLast("-\(k)".count)) }
            XCTAssertEqual(ran, ["a", seen, route, "end"], why)
            let rows = try await attempts(c.id)
            XCTAssertEqual(rows.map(\.taskName).sorted(), ["a", "check", seen, "end", "route", route].sorted(), "\(why): one row per task run or decided")
            let check = try XCTUnwrap(rows.first { $0.taskName == "check" })
            XCTAssertEqual(check.branch, [seen], why)
            XCTAssertNil(check.host, "\(why): decided on the master, no worker")
            let decided = try XCTUnwrap(rows.first { $0.taskName == "route" })
            XCTAssertEqual(decided.state, .success, why)
            XCTAssertEqual(decided.branch, [route], why)
            // What was not taken is shown, and says why.
            let show = try cluster.run("ds-instance", ["show", String(c.id)])
            XCTAssertEqual(show.status, 0, show.stderr)
            for name in Set(["ok", "recover", "x", "big", "other"]).subtracting([seen, route]) {
                let line = show.stdout.split(separator: "\n").first { $0.hasPrefix(name + " ") }
                XCTAssertTrue(line?.contains("SKIPPED") ?? false, "\(why): \(name) shows SKIPPED:\n\(show.stdout)")
                XCTAssertTrue(line?.contains("not on the branch") ?? false, "\(why): \(name) says why:\n\(show.stdout)")
            }
            let json = try cluster.run("ds-instance", ["show", String(c.id), "--json"])
            let view = try JSONDecoder().decode(InstanceView.self, from: Data(json.stdout.utf8))
            XCTAssertEqual(Set(view.tasks.filter { $0.state == TaskView.skipped }.map(\.task)),
                           Set(["ok", "recover", "x", "big", "other"]).subtracting([seen, route]), why)
        }
    }

    func testADecisionThatCannotBeMadeFailsItsNodeAndSkipsBelow() async throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 2)
        func workflow(_ when: String) -> String {
            #"""
            {"name":"undecidable","params":{"word":"abc"},"tasks":[
             {"name":"s","type":"SWITCH","cases":[{"when":"\#(when)","then":["t"]}],"default_branch":[]},
             {"name":"t","deps":["s"],"command":"echo t >> \#(marker)"}]}
            """#
        }
        for (when, message) in [("${missing} == 1", "parameter 'missing' is not defined"),
                                ("${word} > 3", "> orders numbers, and 'abc' is not a number")] {
            let id = try cluster.submit(workflow(when))
            let state = try await cluster.waitForEnd(id)
            XCTAssertEqual(state, .failure, when)
            let rows = try await attempts(id)
            XCTAssertEqual(rows.map(\.taskName), ["s"], when)
            XCTAssertEqual(rows.first?.state, .failure)
            XCTAssertTrue(rows.first?.message?.contains("case 0 (\(when)) cannot be decided: \(message)") ?? false,
                          "\(when): \(rows.first?.message ?? "no message")")
            let show = try cluster.run("ds-instance", ["show", String(id)])
            XCTAssertTrue(show.stdout.contains("upstream 's' failed; will not run"), show.stdout)
        }
        XCTAssertEqual(cluster.lines(marker), [], "nothing below a failed decision runs")
    }

    func testADisabledTaskNeverRunsAndItsDownstreamDoes() async throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 2)
        let id = try cluster.submit(#"""
            {"name":"switches","tasks":[
             {"name":"a","command":"echo a >> \#(marker)"},
             {"name":"b","deps":["a"],"enabled":false,"command":"echo b >> \#(marker)"},
             {"name":"c","deps":["b"],"command":"echo c >> \#(marker)"},
             {"name":"root","enabled":false,"command":"echo root >> \#(marker)"},
             {"name":"d","deps":["root"],"command":"echo d >> \#(marker)"}]}
            """#)
        let state = try await cluster.waitForEnd(id)
        XCTAssertEqual(state, .success)
        XCTAssertEqual(Set(cluster.lines(marker)), ["a", "c", "d"])
        let rows = try await attempts(id)
        XCTAssertEqual(Set(rows.map(\.taskName)), ["a", "c", "d"])
        let show = try cluster.run("ds-instance", ["show", String(id)])
        for name in ["b", "root"] {
            let line = show.stdout.split(separator: "\n").first { $0.hasPrefix(name + " ") }
            XCTAssertTrue(line?.contains("DISABLED") ?? false, "\(name):\n\(show.stdout)")
        }
        // The DOT drawing marks both kinds of node.
        let dot = try cluster.run("ds-instance", ["show", String(id), "--dot"])
        XCTAssertTrue(dot.stdout.contains("DISABLED"), dot.stdout)
        XCTAssertTrue(dot.stdout.contains("dashed"), dot.stdout)
    }

    /// The master that decided dies (kill -9) while a task of the branch it chose runs; the one
    /// that takes over replays the stored decision: it decides nothing again, runs nothing twice,
    /// and the branch not taken stays untaken.
    func testAStoredDecisionSurvivesTheMasterThatMadeIt() async throws {
        let first = try cluster.startMaster()
        try cluster.startWorker(slots: 2)
        let id = try cluster.submit(#"""
            {"name":"takeover","params":{"k":"1"},"tasks":[
             {"name":"s","type":"SWITCH","cases":[{"when":"${k} == 1","then":["g"]}],"default_branch":["h"]},
             {"name":"g","deps":["s"],"command":"echo g-start >> \#(marker); while [ ! -e \#(file("go")) ]; do sleep 0.1; done; echo g >> \#(marker)"},
             {"name":"h","deps":["s"],"command":"echo h >> \#(marker)"},
             {"name":"c","type":"CONDITIONS","deps":["g","h"],"success_branch":["j"],"failure_branch":[]},
             {"name":"j","deps":["c"],"command":"echo j >> \#(marker)"}]}
            """#)
        try await eventually("g runs") { self.cluster.lines(self.marker).contains("g-start") }
        try cluster.startMaster()
        cluster.kill9(first)
        try await eventually("the second master owns the instance", timeout: 180) {
            try await self.cluster.store().instance(id)?.host != "127.0.0.1:\(first.arguments![3])"
        }
        FileManager.default.createFile(atPath: file("go"), contents: nil)
        let state = try await cluster.waitForEnd(id)
        XCTAssertEqual(state, .success)
        XCTAssertEqual(cluster.lines(marker), ["g-start", "g", "j"])
        let rows = try await attempts(id)
        XCTAssertEqual(rows.filter { $0.taskName == "s" }.count, 1, "decided once, by the first master")
        XCTAssertEqual(rows.first { $0.taskName == "s" }?.branch, ["g"])
        // CONDITIONS after a branch: h was not taken and g succeeded; the default condition reads
        // "every dep that was taken succeeded", so the success branch runs.
        XCTAssertEqual(rows.first { $0.taskName == "c" }?.branch, ["j"])
    }

    /// recover after a failure a CONDITIONS node handled: the node decides again; a success kept
    /// from the branch it no longer takes is not used, and nothing below it runs.
    func testRecoverDecidesAgainAndKeepsNothingOffTheNewBranch() async throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 2)
        let id = try cluster.submit(#"""
            {"name":"recovering","failure_strategy":"CONTINUE","tasks":[
             {"name":"a","command":"echo a >> \#(marker); test -e \#(file("flag-a"))"},
             {"name":"c","type":"CONDITIONS","deps":["a"],"success_branch":["s"],"failure_branch":["f"]},
             {"name":"s","deps":["c"],"command":"echo s >> \#(marker)"},
             {"name":"f","deps":["c"],"command":"echo f >> \#(marker)"},
             {"name":"u","deps":["f"],"command":"test -e \#(file("flag-u")) && echo u >> \#(marker)"}]}
            """#)
        let first = try await cluster.waitForEnd(id)
        XCTAssertEqual(first, .failure, "u failed, and its failure is not handled")
        XCTAssertEqual(cluster.lines(marker), ["a", "f"])
        for flag in ["flag-a", "flag-u"] { FileManager.default.createFile(atPath: file(flag), contents: nil) }
        let recover = try cluster.run("ds-instance", ["recover", String(id), "--wait"])
        XCTAssertEqual(recover.status, 0, recover.stdout + recover.stderr)
        XCTAssertFalse(recover.stdout.contains("keeping 2"), "the branch node's success is not handed on: \(recover.stdout)")
        XCTAssertEqual(cluster.lines(marker), ["a", "f", "a", "s"], "u, below the branch no longer taken, never runs")
        let rows = try await attempts(id).filter { $0.run == 2 }
        XCTAssertEqual(rows.map(\.taskName), ["a", "c", "s"])
        XCTAssertEqual(rows.first { $0.taskName == "c" }?.branch, ["s"])
        let show = try cluster.run("ds-instance", ["show", String(id)])
        XCTAssertTrue(show.stdout.contains("success not used by run 2: not on the branch taken now"), show.stdout)
    }

    /// "delay": a task starts that long after it became ready, also when the master that started
    /// the wait dies during it.
    func testADelayedTaskStartsNoSoonerThanItsDelayAlsoAcrossATakeover() async throws {
        let first = try cluster.startMaster()
        try cluster.startWorker(slots: 2)
        let id = try cluster.submit(#"""
            {"name":"delayed","tasks":[
             {"name":"a","command":"date +%s.%N >> \#(file("a-end"))"},
             {"name":"b","deps":["a"],"delay":"15s","command":"date +%s.%N >> \#(file("b-start"))"}]}
            """#)
        try await eventually("a has ended") { FileManager.default.fileExists(atPath: self.file("a-end")) }
        try await Task.sleep(for: .milliseconds(500))
        let show = try cluster.run("ds-instance", ["show", String(id)])
        XCTAssertTrue(show.stdout.split(separator: "\n").contains { $0.hasPrefix("b ") && $0.contains("DELAY_EXECUTION") }, show.stdout)
        try cluster.startMaster()
        cluster.kill9(first)
        let state = try await cluster.waitForEnd(id)
        XCTAssertEqual(state, .success)
        let aEnd = try XCTUnwrap(Double(cluster.lines(file("a-end")).first ?? ""))
        let bStart = try XCTUnwrap(Double(cluster.lines(file("b-start")).first ?? ""))
        // Long enough for the takeover to come first on any machine that takes over within 15 s: a
        // restore that made the delay due at once would start b at the takeover, too early.
        XCTAssertGreaterThanOrEqual(bStart - aEnd, 15 - 0.05, "b started \(bStart - aEnd)s after a ended; its delay is 15s")
        let rows = try await attempts(id)
        XCTAssertEqual(rows.filter { $0.taskName == "b" }.count, 1)
    }
}
