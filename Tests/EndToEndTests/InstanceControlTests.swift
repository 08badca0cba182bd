import Foundation
import Shared
import XCTest

/// `ds-instance` against real masters, workers, ZooKeeper and SQLite: each verb does what its man
/// page says, checked through stored states and markers the tasks write.
final class InstanceControlTests: ClusterTestCase {
    var marker: String { cluster.directory.appendingPathComponent("markers").path }
    func file(_ name: String) -> String { cluster.directory.appendingPathComponent(name).path }
    func touch(_ name: String) { FileManager.default.createFile(atPath: file(name), contents: nil) }

    func instanceTool(_ arguments: [String]) throws -> ToolRun { try cluster.run("ds-instance", arguments) }

    /// A task that notes its start, waits for the file `go`, then notes its end.
    func gated(_ name: String, deps: [String] = []) -> String {
        let d = deps.map { "\"\($0)\"" }.joined(separator: ",")
        return #"{"name":"\#(name)","deps":[\#(d)],"command":"echo \#(name)-start >> \#(marker); while [ ! -e \#(file("go")) ]; do sleep 0.1; done; echo \#(name) >> \#(marker)"}"#
    }

    func state(_ id: Int64) async throws -> WorkflowState? { try await cluster.store().instance(id)?.state }

    func attempts(_ id: Int64) async throws -> [TaskInstanceRecord] { try await cluster.store().taskAttempts(of: id) }

    func waitFor(_ id: Int64, _ wanted: WorkflowState) async throws {
        try await eventually("instance \(id) is \(wanted.rawValue)") { try await self.state(id) == wanted }
    }

    func waitForMarker(_ line: String) async throws {
        try await eventually("marker \(line)") { self.cluster.lines(self.marker).contains(line) }
    }

    /// Processes of a process group that are still alive (zombies are dead: they only wait to be reaped).
    static func liveProcesses(inGroup pgid: Int32) -> [Int32] {
        let pids = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(Int32.init)
        return pids.filter { pid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            // After the command: state, ppid, pgrp.
            return fields.count > 2 && fields[0] != "Z" && Int32(fields[2]) == pgid
        }
    }

    func testStopKillsTheWholeProcessGroupAndNothingDownstreamRuns() async throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 2)
        // b's shell leads its process group; it starts a child that ignores SIGTERM and one more sleep.
        let id = try cluster.submit("""
            {"name":"stoppable","tasks":[
              {"name":"a","command":"echo a >> \(marker)"},
              {"name":"b","deps":["a"],"command":"echo $$ > \(file("pgid")); (trap '' TERM; sleep 600) & sleep 600; echo b >> \(marker)"},
              {"name":"c","deps":["b"],"command":"echo c >> \(marker)"}]}
            """)
        let pgid = try await numberWritten(to: file("pgid"), by: "b")
        try await eventually("b's group has its sleeps") { Self.liveProcesses(inGroup: pgid).count >= 3 }
        try await eventually("show names b's worker") {
            let show = try self.instanceTool(["show", String(id)])
            return show.stdout.split(separator: "\n").contains { $0.hasPrefix("b ") && $0.contains("RUNNING") && $0.contains("127.0.0.1:") }
        }
        let stop = try instanceTool(["stop", String(id), "--wait"])
        XCTAssertEqual(stop.status, 0, stop.stderr)
        XCTAssertTrue(stop.stdout.contains("STOP"), stop.stdout)
        let stored = try await cluster.store().instance(id)
        XCTAssertEqual(stored?.state, .stop)
        let rows = try await attempts(id)
        XCTAssertEqual(rows.map(\.taskName), ["a", "b"], "nothing downstream of the stop may start")
        XCTAssertEqual(rows.last?.state, .kill)
        XCTAssertEqual(rows.last?.attempt, 1, "a killed task is never retried")
        try await eventually("no process of b's group survives") { Self.liveProcesses(inGroup: pgid).isEmpty }
        try await Task.sleep(for: .seconds(1))
        XCTAssertEqual(cluster.lines(marker), ["a"])
        do { let value = try await attempts(id).count; XCTAssertEqual(value, 2, "nothing started after the stop") }
        // A second stop, of a finished instance, is refused and changes nothing.
        let again = try instanceTool(["stop", String(id)])
        XCTAssertEqual(again.status, 1)
        XCTAssertTrue(again.stderr.contains("already ended STOP"), again.stderr)
    }

    func testPauseLetsTheRunningTaskFinishAndResumeKeepsSuccesses() async throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 1)
        // One slot: of b1 and b2 one runs, the other waits in the queue and is taken back by the pause.
        let id = try cluster.submit("""
            {"name":"pausable","tasks":[{"name":"a","command":"echo a >> \(marker)"},
              \(gated("b1", deps: ["a"])), \(gated("b2", deps: ["a"])),
              {"name":"c","deps":["b1","b2"],"command":"echo c >> \(marker)"}]}
            """)
        try await eventually("b1 or b2 has started") { self.cluster.lines(self.marker).contains { $0.hasSuffix("-start") } }
        let runningTask = cluster.lines(marker).first { $0.hasSuffix("-start") }!.replacingOccurrences(of: "-start", with: "")
        let queuedTask = runningTask == "b1" ? "b2" : "b1"
        let pause = try instanceTool(["pause", String(id)])
        XCTAssertEqual(pause.status, 0, pause.stderr)
        do { let value = try await state(id); XCTAssertEqual(value, .readyPause) }
        let again = try instanceTool(["pause", String(id)])
        XCTAssertEqual(again.status, 0, "a pause asked again while one is under way succeeds: \(again.stderr)")
        XCTAssertTrue(again.stdout.contains("READY_PAUSE -> READY_PAUSE"), again.stdout)
        try await eventually("the queued task is taken back") {
            try await self.attempts(id).contains { $0.taskName == queuedTask && $0.state == .pause }
        }
        do { let value = try await state(id); XCTAssertEqual(value, .readyPause, "the running task has not finished yet") }
        touch("go")
        try await waitFor(id, .pause)
        XCTAssertEqual(cluster.lines(marker), ["a", "\(runningTask)-start", runningTask], "nothing new starts during a pause")
        let rows = try await attempts(id)
        XCTAssertEqual(rows.first { $0.taskName == runningTask }?.state, .success)
        XCTAssertFalse(rows.contains { $0.taskName == "c" })

        let resume = try instanceTool(["resume", String(id), "--wait"])
        XCTAssertEqual(resume.status, 0, resume.stderr)
        do { let value = try await state(id); XCTAssertEqual(value, .success) }
        let lines = cluster.lines(marker)
        XCTAssertEqual(lines.filter { $0 == "a" }.count, 1, "successes are kept: \(lines)")
        XCTAssertEqual(lines.filter { $0 == runningTask }.count, 1, "the paused-over task is not run again: \(lines)")
        XCTAssertEqual(lines.filter { $0 == queuedTask }.count, 1, lines.joined(separator: " "))
        XCTAssertEqual(lines.last, "c")
        let second = try await attempts(id).filter { $0.run == 2 }
        XCTAssertEqual(Set(second.map(\.taskName)), [queuedTask, "c"])
    }

    func testRecoverRerunsOnlyWhatFailedAndItsDownstream() async throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 2)
        let id = try cluster.submit("""
            {"name":"recoverable","failure_strategy":"CONTINUE","tasks":[
              {"name":"a","command":"echo a >> \(marker)"},
              {"name":"b","deps":["a"],"command":"echo b >> \(marker); test -e \(file("fixed"))"},
              {"name":"c","deps":["b"],"command":"echo c >> \(marker)"},
              {"name":"d","command":"echo d >> \(marker)"}]}
            """)
        do { let value = try await cluster.waitForEnd(id); XCTAssertEqual(value, .failure) }
        let refused = try instanceTool(["resume", String(id)])
        XCTAssertEqual(refused.status, 1, "resume is for PAUSE and STOP instances")
        XCTAssertTrue(refused.stderr.contains("ds-instance recover"), refused.stderr)
        touch("fixed")
        let recover = try instanceTool(["recover", String(id), "--wait", "--json"])
        XCTAssertEqual(recover.status, 0, recover.stderr)
        do { let value = try await state(id); XCTAssertEqual(value, .success) }
        let lines = cluster.lines(marker)
        XCTAssertEqual(lines.filter { $0 == "a" }.count, 1, "\(lines)")
        XCTAssertEqual(lines.filter { $0 == "d" }.count, 1, "\(lines)")
        XCTAssertEqual(lines.filter { $0 == "b" }.count, 2, "\(lines)")
        XCTAssertEqual(lines.filter { $0 == "c" }.count, 1, "\(lines)")
        let rows = try await attempts(id)
        XCTAssertEqual(rows.filter { $0.taskName == "b" }.map { "\($0.run):\($0.state.rawValue)" }, ["1:FAILURE", "2:SUCCESS"])
    }

    func testRerunRunsEverythingAgainAndStartFromRunsTheTaskAndItsDownstream() async throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 2)
        let json = """
            {"name":"again","tasks":[
              {"name":"a","command":"echo a >> \(marker)"},
              {"name":"b","deps":["a"],"command":"echo b >> \(marker)"},
              {"name":"c","deps":["b"],"command":"echo c >> \(marker)"},
              {"name":"d","command":"echo d >> \(marker)"}]}
            """
        let id = try cluster.submit(json)
        do { let value = try await cluster.waitForEnd(id); XCTAssertEqual(value, .success) }
        let rerun = try instanceTool(["rerun", String(id), "--wait"])
        XCTAssertEqual(rerun.status, 0, rerun.stderr)
        func count(_ t: String) -> Int { cluster.lines(marker).filter { $0 == t }.count }
        XCTAssertEqual(["a", "b", "c", "d"].map(count), [2, 2, 2, 2])
        var rows = try await attempts(id)
        XCTAssertEqual(rows.count, 8, "earlier attempts stay")
        XCTAssertEqual(rows.filter { $0.run == 1 }.count, 4)
        XCTAssertEqual(rows.filter { $0.run == 2 }.count, 4)

        let from = try instanceTool(["start-from", String(id), "b", "--wait"])
        XCTAssertEqual(from.status, 0, from.stderr)
        XCTAssertEqual(["a", "b", "c", "d"].map(count), [2, 3, 3, 2], "b and its downstream run; a and d are kept")
        rows = try await attempts(id)
        XCTAssertEqual(rows.filter { $0.run == 3 }.map(\.taskName).sorted(), ["b", "c"])
        do { let value = try await cluster.store().instance(id)?.run; XCTAssertEqual(value, 3) }

        let unknown = try instanceTool(["start-from", String(id), "nope"])
        XCTAssertEqual(unknown.status, 65, unknown.stderr)
        XCTAssertTrue(unknown.stderr.contains("has no task 'nope'"), unknown.stderr)

        // The pictures: dot accepts them.
        let show = try instanceTool(["show", String(id), "--dot"])
        XCTAssertEqual(show.status, 0, show.stderr)
        let svg = try cluster.run("/usr/bin/dot", ["-Tsvg"], stdin: show.stdout)
        XCTAssertEqual(svg.status, 0, svg.stderr)
        XCTAssertTrue(svg.stdout.contains("<svg"))
        let human = try instanceTool(["show", String(id)])
        XCTAssertEqual(human.status, 0, human.stderr)
        XCTAssertTrue(human.stdout.contains("run 3"), human.stdout)
        XCTAssertTrue(human.stdout.contains("success kept for run 3"), human.stdout)
    }

    func testForbiddenTransitionsExitOneAndChangeNothing() async throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 1)
        let id = try cluster.submit(#"{"name":"done","tasks":[{"name":"a","command":"true"}]}"#)
        do { let value = try await cluster.waitForEnd(id); XCTAssertEqual(value, .success) }
        let before = try instanceTool(["show", String(id), "--json"])
        XCTAssertEqual(before.status, 0, before.stderr)
        for verb in ["stop", "pause", "resume", "recover"] {
            let run = try instanceTool([verb, String(id)])
            XCTAssertEqual(run.status, 1, "\(verb): \(run.stderr)")
            XCTAssertTrue(run.stderr.contains("cannot \(verb) instance \(id)") && run.stderr.contains("SUCCESS"), run.stderr)
            XCTAssertEqual(run.stdout, "")
        }
        let after = try instanceTool(["show", String(id), "--json"])
        XCTAssertEqual(after.stdout, before.stdout, "a refused verb changes nothing")
        do { let value = try await cluster.store().countRows(of: "command"); XCTAssertEqual(value, 0) }
        let missing = try instanceTool(["stop", "999999"])
        XCTAssertEqual(missing.status, 65, missing.stderr)
        XCTAssertTrue(missing.stderr.contains("does not exist"), missing.stderr)
        for bad in [["stop", "0"], ["stop", "-3"], ["stop", "x"], ["show"], ["list", "--limit", "-1"], ["list", "-q", "--json"], ["list", "--state", "NOPE"],
                    ["list", "--since", "yesterday-ish"]] {
            let run = try instanceTool(bad)
            XCTAssertEqual(run.status, 64, "\(bad): \(run.stderr)")
        }
    }

    func testStoredDefinitionsListAndPrintAsJsonThatSubmitAcceptsAgain() async throws {
        let v1 = #"{"name":"stored","tasks":[{"name":"a","command":"echo one"}]}"#
        let v2 = #"{"name":"stored","tasks":[{"name":"a","command":"echo two"},{"name":"b","deps":["a"],"command":"echo b"}]}"#
        _ = try cluster.submit(v1)
        _ = try cluster.submit(v2)
        let list = try instanceTool(["definitions", "--json"])
        XCTAssertEqual(list.status, 0, list.stderr)
        let rows = list.stdout.split(separator: "\n")
        XCTAssertEqual(rows.count, 2)
        XCTAssertTrue(rows[1].contains(#""version":2"#) && rows[1].contains(#""tasks":2"#), String(rows[1]))
        let printed = try instanceTool(["definition", "stored", "--version", "1"])
        XCTAssertEqual(printed.status, 0, printed.stderr)
        XCTAssertTrue(printed.stdout.contains("echo one"))
        let latest = try instanceTool(["definition", "stored"])
        XCTAssertTrue(latest.stdout.contains("echo two"))
        let again = try cluster.run("ds-submit", ["--dry-run", "-"], stdin: latest.stdout)
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(again.stdout, latest.stdout, "a stored definition prints as the canonical form ds-submit reads back")
        let none = try instanceTool(["definition", "nope"])
        XCTAssertEqual(none.status, 65)
        let listed = try instanceTool(["list", "--workflow", "stored", "--json"])
        XCTAssertEqual(listed.stdout.split(separator: "\n").count, 2)
        let table = try instanceTool(["list", "--state", "SUBMITTED"])
        XCTAssertTrue(table.stdout.contains("waits for a master to claim it"), table.stdout)
    }

    // MARK: Failover

    /// The owning master is frozen (SIGSTOP) so that the request cannot be applied, then killed;
    /// the master that takes over applies it.
    func requestThenKillOwner(_ verb: String) async throws -> (id: Int64, pgid: Int32) {
        let first = try cluster.startMaster()
        try cluster.startWorker(slots: 2)
        let id = try cluster.submit("""
            {"name":"handover","tasks":[{"name":"a","command":"echo a >> \(marker)"},
              {"name":"b","deps":["a"],"command":"echo $$ > \(file("pgid")); echo b-start >> \(marker); while [ ! -e \(file("go")) ]; do sleep 0.1; done; echo b >> \(marker)"},
              {"name":"c","deps":["b"],"command":"echo c >> \(marker)"}]}
            """)
        try await waitForMarker("b-start")
        kill(first.processIdentifier, SIGSTOP)
        let run = try instanceTool([verb, String(id)])
        XCTAssertEqual(run.status, 0, run.stderr)
        cluster.kill9(first)
        try cluster.startMaster()
        let pgid = Int32(try String(contentsOfFile: file("pgid"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        return (id, pgid)
    }

    func testPauseRequestedJustBeforeTheOwnerDiesTakesEffectThroughTheNextMaster() async throws {
        let (id, _) = try await requestThenKillOwner("pause")
        try await eventually("the new master owns the instance") {
            try await self.cluster.store().instance(id)?.pauseSeq != nil
        }
        touch("go")
        try await waitFor(id, .pause)
        XCTAssertEqual(cluster.lines(marker), ["a", "b-start", "b"], "c must not start after the pause")
        let resume = try instanceTool(["resume", String(id), "--wait"])
        XCTAssertEqual(resume.status, 0, resume.stderr)
        XCTAssertEqual(cluster.lines(marker), ["a", "b-start", "b", "c"], "the paused task is not run again")
    }

    func testStopRequestedJustBeforeTheOwnerDiesTakesEffectThroughTheNextMaster() async throws {
        let (id, pgid) = try await requestThenKillOwner("stop")
        try await waitFor(id, .stop)
        try await eventually("no process of b's group survives") { Self.liveProcesses(inGroup: pgid).isEmpty }
        let rows = try await attempts(id)
        XCTAssertEqual(rows.first { $0.taskName == "b" }?.state, .kill)
        XCTAssertFalse(rows.contains { $0.taskName == "c" })
        touch("go")
        let resume = try instanceTool(["resume", String(id), "--wait"])
        XCTAssertEqual(resume.status, 0, resume.stderr)
        XCTAssertEqual(cluster.lines(marker), ["a", "b-start", "b-start", "b", "c"], "the killed task runs again; a is kept")
    }

    func testAPauseTheOwnerAppliedIsReplayedByTheNextMaster() async throws {
        let first = try cluster.startMaster()
        try cluster.startWorker(slots: 2)
        let id = try cluster.submit("""
            {"name":"replayed","tasks":[{"name":"a","command":"echo a >> \(marker)"}, \(gated("b", deps: ["a"])),
              {"name":"c","deps":["b"],"command":"echo c >> \(marker)"}]}
            """)
        try await waitForMarker("b-start")
        XCTAssertEqual(try instanceTool(["pause", String(id)]).status, 0)
        try await eventually("the owner applied the pause") { try await self.cluster.store().instance(id)?.pauseSeq != nil }
        cluster.kill9(first)
        touch("go")
        try cluster.startMaster()
        try await waitFor(id, .pause)
        XCTAssertEqual(cluster.lines(marker), ["a", "b-start", "b"])
        let rows = try await attempts(id)
        XCTAssertFalse(rows.contains { $0.taskName == "c" })
    }

    /// The worker is frozen when the stop's kill request reaches it, then dies: the attempt ends
    /// KILL through failover, its process group dies with its supervisor, and the master deletes
    /// the kill request no worker will ever read.
    func testAStopWhoseWorkerDiesEndsAndLeavesNoKillRequest() async throws {
        try cluster.startMaster()
        let worker = try cluster.startWorker(slots: 2, port: 7345)
        let id = try cluster.submit("""
            {"name":"orphaned","tasks":[{"name":"b","command":"echo $$ > \(file("pgid")); sleep 600"},
              {"name":"c","deps":["b"],"command":"echo c >> \(marker)"}]}
            """)
        let pgid = try await numberWritten(to: file("pgid"), by: "b")
        kill(worker.processIdentifier, SIGSTOP)
        XCTAssertEqual(try instanceTool(["stop", String(id)]).status, 0)
        let zk = try await cluster.client()
        defer { zk.close() }
        let folder = cluster.paths.kill + "/127.0.0.1:7345"
        try await eventually("the master asks the worker to kill b") { !((try? await zk.childrenIfPresent(folder)) ?? []).isEmpty }
        cluster.kill9(worker)
        try await waitFor(id, .stop)
        let rows = try await attempts(id)
        XCTAssertEqual(rows.map(\.state), [.kill])
        try await eventually("no process of b's group survives") { Self.liveProcesses(inGroup: pgid).isEmpty }
        try await eventually("the kill request is deleted") { ((try? await zk.childrenIfPresent(folder)) ?? ["?"]).isEmpty }
    }

    /// A Kubernetes-style host name of 80 characters (a StatefulSet pod behind a headless service).
    static let longHost = "ds-worker-0.ds-worker-headless.data-pipelines-production.svc.cluster.local.example"

    func testStopReachesAWorkerWithALongHostName() async throws {
        XCTAssertGreaterThan(Self.longHost.count, 70)
        try cluster.startMaster()
        try cluster.startWorker(slots: 2, host: Self.longHost, port: 7346)
        let id = try cluster.submit("""
            {"name":"long-host","tasks":[{"name":"b","command":"echo $$ > \(file("pgid")); sleep 600"},
              {"name":"c","deps":["b"],"command":"echo c >> \(marker)"}]}
            """)
        let pgid = try await numberWritten(to: file("pgid"), by: "b")
        try await eventually("b's worker is recorded") { try await self.attempts(id).first?.host == "\(Self.longHost):7346" }
        XCTAssertEqual(try instanceTool(["stop", String(id)]).status, 0)
        let state = try await cluster.waitForEnd(id, timeout: 120)
        let show = try instanceTool(["show", String(id)]).stdout
        XCTAssertEqual(state, .stop, "the stop must reach the worker; show:\n\(show)")
        let rows = try await attempts(id)
        XCTAssertEqual(rows.map(\.state), [.kill])
        try await eventually("no process of b's group survives") { Self.liveProcesses(inGroup: pgid).isEmpty }
        XCTAssertFalse(cluster.lines(marker).contains("c"))
    }

    func testAHostNameBeyondTheIdentityRuleIsRefusedAtStart() throws {
        let tooLong = String(repeating: "a", count: 254)
        for tool in ["ds-worker", "ds-master"] {
            for (host, why) in [(tooLong, "1 to 253 characters"), ("a b", "letters, digits"), ("-x", "must not start")] {
                let run = try cluster.run(tool, ["--host=\(host)", "--port", "7001"], timeout: 60)
                XCTAssertEqual(run.status, 64, "\(tool) --host \(host): \(run.stderr)")
                XCTAssertTrue(run.stderr.contains("--host") && run.stderr.contains(why), "\(tool): \(run.stderr)")
            }
        }
        // The longest DNS name passes the host rule; with its port it is too long to name the log folder.
        let longest = (0..<4).map { _ in String(repeating: "b", count: 62) }.joined(separator: ".") + ".c"
        XCTAssertEqual(longest.count, 253)
        XCTAssertNil(ServerIdentity.hostProblem(longest))
        XCTAssertNotNil(ServerIdentity.problem(host: longest, port: 7001))
        XCTAssertNil(ServerIdentity.problem("\(Self.longHost):7001"))
    }

    func testAKillRequestThatCannotBeWrittenIsLoggedAndShown() async throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 2)
        let id = try cluster.submit("""
            {"name":"unreachable","tasks":[{"name":"b","command":"echo $$ > \(file("pgid")); sleep 600"}]}
            """)
        try await eventually("b has started") { FileManager.default.fileExists(atPath: self.file("pgid")) }
        let first = try await attempts(id).first
        let b = try XCTUnwrap(first?.id)
        // Something other than a worker rewrote b's running node with a name no worker can have.
        let zk = try await cluster.client()
        defer { zk.close() }
        let running = cluster.paths.running(b)
        try await eventually("b's running node exists") { try await zk.exists(running) != nil }
        let (data, _) = try await zk.getData(running)
        var holder = try WireJSON.decode(RunningTask.self, data)
        holder.worker = "not a/worker:1"
        _ = try await zk.setData(running, WireJSON.encode(holder))
        XCTAssertEqual(try instanceTool(["stop", String(id)]).status, 0)
        try await eventually("show says the kill request was not written") {
            let show = try self.instanceTool(["show", String(id)])
            return show.stdout.split(separator: "\n").contains { $0.hasPrefix("b ") && $0.contains("kill request not written") }
        }
        XCTAssertTrue(cluster.daemonLogs().contains("kill request not written"), cluster.daemonLogs())
    }

    // MARK: Bounded masters

    func testMaxWorkflowsKeepsTheRestWaitingAndStartsThemInOrder() async throws {
        try cluster.startMaster(["--max-workflows", "2"])
        try cluster.startWorker(slots: 5)
        var ids: [Int64] = []
        for _ in 0..<5 {
            ids.append(try cluster.submit(#"{"name":"bounded","tasks":[{"name":"t","command":"while [ ! -e \#(file("go")) ]; do sleep 0.1; done"}]}"#))
        }
        let store = try cluster.store()
        var most = 0
        func sample() async throws -> [WorkflowState: Int] {
            var counts: [WorkflowState: Int] = [:]
            for id in ids { if let s = try await store.instance(id)?.state { counts[s, default: 0] += 1 } }
            most = max(most, counts[.running, default: 0])
            return counts
        }
        try await eventually("two run and three wait") {
            let c = try await sample()
            return c[.running] == 2 && c[.waitingThread] == 3
        }
        let list = try instanceTool(["list", "--state", "WAITING_THREAD"])
        XCTAssertEqual(list.stdout.split(separator: "\n").count, 4, list.stdout)
        XCTAssertTrue(list.stdout.contains("waits for a free master slot"), list.stdout)
        let show = try instanceTool(["show", String(ids[4])])
        XCTAssertTrue(show.stdout.contains("WAITING_THREAD") && show.stdout.contains("waits for a free master slot"), show.stdout)
        let runningNow = try await store.instances(InstanceQuery()).filter { $0.state == .running }.map { $0.id! }
        XCTAssertEqual(Set(runningNow), Set(ids.prefix(2)),
                       "the first two submitted run first")
        touch("go")
        try await eventually("all end") { try await sample()[.success] == 5 }
        XCTAssertLessThanOrEqual(most, 2, "never more than --max-workflows RUNNING")
        var starts: [Double] = []
        for id in ids { starts.append(try await store.instance(id)?.startTime ?? 0) }
        XCTAssertEqual(starts, starts.sorted(), "started first come, first served")
    }
}
