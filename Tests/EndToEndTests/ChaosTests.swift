import Foundation
import Shared
import XCTest

/// A bounded chaos run: 2 masters, 3 workers, a stream of workflows, and a daemon killed with
/// SIGKILL and restarted every few seconds. Every workflow ends SUCCESS, every task succeeds
/// exactly once, and no two attempts of one task overlap in time.
final class ChaosTests: ClusterTestCase {
    func testRandomKillsLoseNothingAndRunNothingTwiceAtOnce() async throws {
        let marker = cluster.directory.appendingPathComponent("markers").path
        var rng = SystemRandomNumberGenerator()
        var daemons: [(kind: String, port: Int, process: Process)] = []
        for port in [7101, 7102] { daemons.append(("master", port, try cluster.startMaster(port: port))) }
        for port in [7201, 7202, 7203] { daemons.append(("worker", port, try cluster.startWorker(slots: 2, port: port))) }

        let task = { (name: String, deps: [String]) -> String in
            let depsJSON = deps.map { "\"\($0)\"" }.joined(separator: ",")
            return #"{"name":"\#(name)","deps":[\#(depsJSON)],"command":"echo start $DS_WORKFLOW_INSTANCE_ID \#(name) $DS_TASK_INSTANCE_ID $(date +%s%N) >> \#(marker); sleep 1.$((RANDOM % 9)); echo end $DS_WORKFLOW_INSTANCE_ID \#(name) $DS_TASK_INSTANCE_ID $(date +%s%N) >> \#(marker)"}"#
        }
        let workflow = #"{"name":"chaos","tasks":[\#(task("a", [])),\#(task("b", ["a"])),\#(task("c", ["a"])),\#(task("d", ["b", "c"]))]}"#

        var ids: [Int64] = []
        var kills = 0
        let started = Date()
        while Date().timeIntervalSince(started) < 60 {
            for _ in 0..<3 { ids.append(try cluster.submit(workflow)) }
            try await Task.sleep(for: .seconds(1.5))
            if Date().timeIntervalSince(started) > Double(kills + 1) * 5 {
                // Workers twice as often as masters: a worker killed mid-task is the case that bites.
                let victim = [0, 1, 2, 3, 4, 2, 3, 4].randomElement(using: &rng)!
                let d = daemons[victim]
                cluster.kill9(d.process)
                kills += 1
                let restarted = d.kind == "master" ? try cluster.startMaster(port: d.port) : try cluster.startWorker(slots: 2, port: d.port)
                daemons[victim] = (d.kind, d.port, restarted)
            }
        }
        for id in ids {
            let state = try await cluster.waitForEnd(id, timeout: 300)
            XCTAssertEqual(state, .success, "instance \(id)")
        }
        let store = try cluster.store()
        var failovers = 0
        var stateOf: [Int64: TaskState] = [:]
        for id in ids {
            let attempts = try await store.taskAttempts(of: id)
            for a in attempts { stateOf[a.id!] = a.state }
            failovers += attempts.filter { $0.state == .needFaultTolerance }.count
            let succeeded = attempts.filter { $0.state == .success }.map(\.taskName).sorted()
            XCTAssertEqual(succeeded, ["a", "b", "c", "d"], "instance \(id): each task succeeded exactly once")
        }
        // Intervals per task, from what the tasks themselves recorded.
        var intervals: [String: [Int64: (start: Int64, end: Int64?)]] = [:]
        for line in cluster.lines(marker) {
            let f = line.split(separator: " ").map(String.init)
            guard f.count == 5, let attempt = Int64(f[3]), let t = Int64(f[4]) else { continue }
            let key = f[1] + "/" + f[2]
            if f[0] == "start" { intervals[key, default: [:]][attempt] = (t, nil) } else { intervals[key]?[attempt]?.end = t }
        }
        var finishedButUnrecorded = 0
        for (key, attempts) in intervals {
            let sorted = attempts.values.sorted { $0.start < $1.start }
            for (earlier, later) in zip(sorted, sorted.dropFirst()) {
                if let end = earlier.end {
                    XCTAssertLessThanOrEqual(end, later.start, "\(key): two attempts overlapped")
                }
            }
            // A second completion happens only when a worker died after its task exited and before
            // the result was written: that attempt is NEED_FAULT_TOLERANCE, never a second SUCCESS.
            for (attempt, interval) in attempts where interval.end != nil && stateOf[attempt] != .success {
                XCTAssertEqual(stateOf[attempt], .needFaultTolerance, "\(key): attempt \(attempt) completed as \(String(describing: stateOf[attempt]))")
                finishedButUnrecorded += 1
            }
        }
        let dead = try await cluster.snapshot().keys.filter { $0.contains("/dead-servers/") }.count
        print("chaos: \(ids.count) workflows, \(kills) kills, \(failovers) task failovers, \(dead) dead-server records, \(finishedButUnrecorded) attempts finished but unrecorded when their worker died")
        XCTAssertGreaterThan(kills, 8)
    }
}
