import Foundation
import Shared
import XCTest

/// Nothing a task starts outlives it (issue 22, item 4), and its memory and CPU limits hold
/// (item 5): real worker, supervisor, cgroups and processes. Each escape is a `sleep` with an
/// argument no other test uses, looked for in /proc/*/cmdline.
final class ContainmentTests: ClusterTestCase {
    func file(_ name: String) -> String { cluster.directory.appendingPathComponent(name).path }

    override func setUpWithError() throws {
        try super.setUpWithError()
        guard getuid() == 0 else { throw XCTSkip("containment tests need root to make cgroups") }
        guard FileManager.default.fileExists(atPath: "/sys/fs/cgroup/unified") || FileManager.default.fileExists(atPath: "/sys/fs/cgroup/memory")
                || FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cgroup.controllers") else {
            throw XCTSkip("containment tests need cgroups (v2 at /sys/fs/cgroup or /sys/fs/cgroup/unified, or v1 memory)")
        }
    }

    /// Three escapes: a new session, a plain background child, a double fork; then `tail`.
    func escapes(_ base: Int) -> String {
        "setsid sleep \(base) & sleep \(base + 1) & (sh -c 'sleep \(base + 2) &' &); sleep 0.5; touch \(file("started-\(base)"))"
    }

    /// The escapes of `base` still alive (zombies aside).
    static func alive(_ base: Int) -> [String] {
        let wanted = (0..<3).map { "sleep\0\(base + $0)\0" }
        let pids = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(Int32.init)
        return pids.compactMap { pid -> String? in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return nil }
            let text = String(decoding: data, as: UTF8.self)
            guard wanted.contains(text) else { return nil }
            let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            if let close = stat.lastIndex(of: ")"), stat[stat.index(after: close)...].hasPrefix(" Z") { return nil }
            return text.replacingOccurrences(of: "\0", with: " ")
        }
    }

    func waitStarted(_ base: Int) async throws {
        try await eventually("the task started its escapes") { FileManager.default.fileExists(atPath: self.file("started-\(base)")) }
        XCTAssertEqual(Self.alive(base).count, 3, "the three escapes run while the task runs")
    }

    func assertAllGone(_ base: Int, _ after: String) async throws {
        try await eventually("every escape is gone after \(after)", timeout: 60) { Self.alive(base).isEmpty }
    }

    func uniqueBase() -> Int { 40_000 + Int.random(in: 0..<19_000) * 3 }

    func attempts(_ id: Int64) async throws -> [TaskInstanceRecord] { try await cluster.store().taskAttempts(of: id) }

    func testStopKillsEveryProcessOfTheTask() async throws {
        try cluster.startMaster()
        try cluster.startWorker()
        let base = uniqueBase()
        let id = try cluster.submit(#"{"name":"c-stop","tasks":[{"name":"t","command":"\#(escapes(base)); sleep 600"}]}"#)
        try await waitStarted(base)
        let stop = try cluster.run("ds-instance", ["stop", String(id), "--wait"])
        XCTAssertEqual(stop.status, 0, stop.stderr)
        try await assertAllGone(base, "ds-instance stop")
        XCTAssertTrue(cluster.daemonLogs().contains("containment: "), "the worker says which containment it has")
    }

    func testFailTimeoutKillsEveryProcessOfTheTask() async throws {
        try cluster.startMaster()
        try cluster.startWorker()
        let base = uniqueBase()
        let id = try cluster.submit(#"{"name":"c-timeout","tasks":[{"name":"t","timeout":"3s","timeout_strategy":"FAIL","command":"\#(escapes(base)); sleep 600"}]}"#)
        try await waitStarted(base)
        let state = try await cluster.waitForEnd(id)
        XCTAssertEqual(state, .failure)
        try await assertAllGone(base, "a FAIL timeout")
    }

    func testTheTasksEndKillsWhatItLeftRunning() async throws {
        try cluster.startMaster()
        try cluster.startWorker()
        let base = uniqueBase()
        let id = try cluster.submit(#"{"name":"c-end","tasks":[{"name":"t","command":"\#(escapes(base)); sleep 1"}]}"#)
        let state = try await cluster.waitForEnd(id)
        XCTAssertEqual(state, .success)
        try await assertAllGone(base, "the task's main process ended")
    }

    /// Without cgroups the supervisor finds what a task left only as it adopts it: a process in a
    /// session of its own, started by another that was adopted and killed, is adopted in turn and
    /// must go too (it used to run on until some other task ended).
    func testWithoutCgroupsWhatATaskLeftTwoSessionsDeepDiesToo() async throws {
        try cluster.startMaster()
        try cluster.startWorker(["--containment", "none"])
        let base = uniqueBase()
        let deep = "setsid sh -c 'setsid sleep \(base + 2) & sleep 2' &"
        // The task ends only when told to, once the three are seen running.
        let go = file("go-\(base)")
        let wait = "while [ ! -e \(go) ]; do sleep 0.1; done"
        let id = try cluster.submit(#"{"name":"c-deep","tasks":[{"name":"t","command":"setsid sleep \#(base) & sleep \#(base + 1) & \#(deep) sleep 0.5; touch \#(file("started-\(base)")); \#(wait)"}]}"#)
        try await waitStarted(base)
        XCTAssertTrue(FileManager.default.createFile(atPath: go, contents: nil))
        let state = try await cluster.waitForEnd(id)
        XCTAssertEqual(state, .success)
        try await assertAllGone(base, "the task's main process ended, without cgroups")
    }

    func testKillNineOfTheWorkerKillsEveryProcessOfItsTasks() async throws {
        try cluster.startMaster()
        let worker = try cluster.startWorker()
        let base = uniqueBase()
        _ = try cluster.submit(#"{"name":"c-worker","tasks":[{"name":"t","command":"\#(escapes(base)); sleep 600"}]}"#)
        try await waitStarted(base)
        cluster.kill9(worker)
        try await assertAllGone(base, "kill -9 of the worker")
    }

    func testKillNineOfTheSupervisorKillsEveryProcessOfItsTasks() async throws {
        try cluster.startMaster()
        let worker = try cluster.startWorker()
        let base = uniqueBase()
        // The killed attempt runs again (a new attempt) on the new supervisor: that one starts no escapes.
        _ = try cluster.submit(#"{"name":"c-supervisor","tasks":[{"name":"t","command":"[ -e \#(file("started-\(base)")) ] || { \#(escapes(base)); }; sleep 600"}]}"#)
        try await waitStarted(base)
        let supervisor = try XCTUnwrap(FailoverTests.children(of: worker.processIdentifier, named: "task-supervisor").first)
        kill(supervisor, SIGKILL)
        try await assertAllGone(base, "kill -9 of the task supervisor")
    }

    func testMemoryMaxKillsAnAllocationPastItWithOOM() async throws {
        guard FileManager.default.fileExists(atPath: "/sys/fs/cgroup/memory") || FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cgroup.controllers") else {
            throw XCTSkip("no memory controller")
        }
        try cluster.startMaster()
        try cluster.startWorker()
        let id = try cluster.submit(#"{"name":"c-oom","tasks":[{"name":"big","memory_max":"64M","command":"head -c 400M /dev/zero | tail > /dev/null"}]}"#)
        let state = try await cluster.waitForEnd(id)
        XCTAssertEqual(state, .failure)
        let row = try await attempts(id).first
        XCTAssertTrue(row?.message?.contains("OOM") ?? false, row?.message ?? "no message")
        XCTAssertTrue(row?.message?.contains("64.0 MiB") ?? false, row?.message ?? "no message")
    }

    func testMaxMemoryCeilingAppliesToATaskAskingNothing() async throws {
        guard FileManager.default.fileExists(atPath: "/sys/fs/cgroup/memory") else { throw XCTSkip("reads the v1 memory controller") }
        try cluster.startMaster()
        try cluster.startWorker(["--max-memory", "96M"])
        let out = file("limit")
        let id = try cluster.submit(#"""
            {"name":"c-ceiling","tasks":[{"name":"t","command":"p=$(grep ':memory:' /proc/self/cgroup | cut -d: -f3-); cat /sys/fs/cgroup/memory$p/memory.limit_in_bytes > \#(out)"}]}
            """#)
        let state = try await cluster.waitForEnd(id)
        XCTAssertEqual(state, .success)
        XCTAssertEqual(cluster.lines(out), [String(96 << 20)])
    }

    func testCPUQuotaIsWrittenToTheTasksCgroup() async throws {
        guard FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cpu/cpu.cfs_quota_us") else { throw XCTSkip("reads the v1 cpu controller") }
        try cluster.startMaster()
        try cluster.startWorker()
        let out = file("quota")
        let id = try cluster.submit(#"""
            {"name":"c-cpu","tasks":[{"name":"t","cpu_quota":150,"command":"p=$(grep ':cpu:' /proc/self/cgroup | cut -d: -f3-); cat /sys/fs/cgroup/cpu$p/cpu.cfs_quota_us /sys/fs/cgroup/cpu$p/cpu.cfs_period_us > \#(out)"}]}
            """#)
        let state = try await cluster.waitForEnd(id)
        XCTAssertEqual(state, .success)
        XCTAssertEqual(cluster.lines(out), ["150000", "100000"])
    }

    /// Two clusters on one host may each have a worker of the same identity (127.0.0.1:7002 here, in
    /// another ZooKeeper root): the second's start must not kill the first's tasks as "left by a
    /// killed worker" (it did: both used `ds/127.0.0.1:7002`; seen when two test runs shared a host).
    func testAWorkerOfTheSameIdentityInAnotherClusterLeavesThisOnesTasksAlone() async throws {
        try cluster.startMaster()
        try cluster.startWorker(port: 7002)
        let go = file("go"), started = file("started")
        let id = try cluster.submit(#"{"name":"c-two","tasks":[{"name":"t","command":"touch \#(started); while [ ! -e \#(go) ]; do sleep 0.1; done"}]}"#)
        try await eventually("the task runs") { FileManager.default.fileExists(atPath: started) }
        let other = try cluster.startDaemon("ds-worker", ["--host", "127.0.0.1", "--port", "7002", "--log-dir", file("other-logs")],
                                            environment: ["DS_ZK_ROOT": cluster.root + "-other"])
        try await eventually("the other cluster's worker registered") {
            cluster.daemonLogs().components(separatedBy: "registered in default").count == 3
        }
        XCTAssertTrue(other.isRunning)
        XCTAssertTrue(FileManager.default.createFile(atPath: go, contents: nil))
        let state = try await cluster.waitForEnd(id)
        let message = try await attempts(id).first?.message
        XCTAssertEqual(state, .success, message ?? "")
    }

    /// `--containment none` stands for a host without a memory controller.
    func testALimitTheWorkerCannotEnforceFailsTheAttemptWithTheReason() async throws {
        try cluster.startMaster()
        try cluster.startWorker(["--containment", "none"])
        let marker = file("ran")
        let id = try cluster.submit(#"{"name":"c-unenforced","tasks":[{"name":"t","memory_max":"64M","command":"touch \#(marker)"}]}"#)
        let state = try await cluster.waitForEnd(id)
        XCTAssertEqual(state, .failure)
        let row = try await attempts(id).first
        XCTAssertTrue(row?.message?.contains("cannot enforce") ?? false, row?.message ?? "no message")
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker), "never run unlimited")
        XCTAssertTrue(cluster.daemonLogs().contains("containment: none: subreaper only"))
    }

    func testSubmitRefusesBadLimitsNamingTheTask() async throws {
        for (task, field, words) in [(#"{"name":"a","memory_max":"lots","command":"true"}"#, "memory_max", "256M"),
                                     (#"{"name":"a","memory_max":"1K","command":"true"}"#, "memory_max", "4M"),
                                     (#"{"name":"a","cpu_quota":0,"command":"true"}"#, "cpu_quota", "150 is 1.5 cores")] {
            let run = try cluster.run("ds-submit", [try cluster.workflowFile(#"{"name":"c-bad","tasks":[\#(task)]}"#)])
            XCTAssertNotEqual(run.status, 0)
            XCTAssertTrue(run.stderr.contains("task 'a', field '\(field)'") && run.stderr.contains(words), run.stderr)
        }
        let stored = try await cluster.store().definitions()
        XCTAssertEqual(stored.count, 0, "nothing written on refusal")
    }

    /// Item 7 (part): an alert command's descendants die with it, also in a new session.
    func testAnAlertCommandsDescendantsDieWithIt() async throws {
        let base = uniqueBase()
        let path = file("alert.sh")
        try ("#!/bin/sh\n" + escapes(base) + "\nexit 0\n").write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        try cluster.startMaster(["--alert-command", path, "--alert-retries", "0"])
        try cluster.startWorker()
        let id = try cluster.submit(#"{"name":"c-alert","warning":"SUCCESS","tasks":[{"name":"t","command":"true"}]}"#)
        _ = try await cluster.waitForEnd(id)
        try await eventually("the alert is sent") { try await self.cluster.store().alerts().first?.state == "SENT" }
        XCTAssertTrue(FileManager.default.fileExists(atPath: file("started-\(base)")))
        try await assertAllGone(base, "the alert command ended")
        XCTAssertTrue(cluster.daemonLogs().contains("alerts: containment: "))
    }
}
