import Foundation
import Shared
import XCTest

/// Alert delivery through --alert-command on real masters: one JSON per event on the command's
/// standard input, also with two masters that both notice it; retries with the outcome recorded.
class AlertTests: ClusterTestCase {
    var delivered: String { cluster.directory.appendingPathComponent("delivered.ndjson").path }

    /// A command script in the cluster's folder; the path.
    func script(_ body: String) throws -> String {
        let path = cluster.directory.appendingPathComponent("alert-\(UUID().uuidString).sh").path
        try ("#!/bin/sh\n" + body + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        return path
    }

    func deliveredAlerts() -> [AlertContent] {
        cluster.lines(delivered).compactMap { try? WireJSON.decode(AlertContent.self, Data($0.utf8)) }
    }

    func testEachAlertIsDeliveredOnceWithTwoMasters() async throws {
        // Each delivery appends the JSON it read as one line.
        let command = try script(#"line=$(cat); printf "%s\\n" "$line" >> \#(delivered)"#)
        try cluster.startMaster(["--alert-command", command])
        try cluster.startMaster(["--alert-command", command])
        try cluster.startWorker(slots: 4)
        let doomed = try cluster.startWorker(slots: 1, groups: ["doomed"])
        let ok = try cluster.submit(#"{"name":"told","warning":"ALL","tasks":[{"name":"t","command":"true"}]}"#)
        let bad = try cluster.submit(#"{"name":"told-bad","warning":"FAILURE","tasks":[{"name":"t","command":"exit 3"}]}"#)
        let quiet = try cluster.submit(#"{"name":"quiet","warning":"FAILURE","tasks":[{"name":"t","command":"true"}]}"#)
        let slow = try cluster.submit(#"{"name":"slow","tasks":[{"name":"t","command":"sleep 3","timeout":"1s","timeout_strategy":"WARN"}]}"#)
        for id in [ok, bad, quiet, slow] { _ = try await cluster.waitForEnd(id) }
        // Both masters see the worker leave; one alert.
        try await eventually("the workflow alerts are recorded") { try await self.cluster.store().alerts().count >= 3 }
        // Both masters have listed the worker long since (they list at start and on each change).
        try await Task.sleep(for: .seconds(2))
        cluster.kill9(doomed)
        try await eventually("every alert is delivered", timeout: 120) {
            let alerts = try await self.cluster.store().alerts()
            return alerts.count >= 4 && alerts.contains { $0.kind == .serverDown } && alerts.allSatisfy { $0.state == "SENT" }
        }
        try await Task.sleep(for: .seconds(2))
        let rows = try await cluster.store().alerts()
        let got = deliveredAlerts()
        XCTAssertEqual(got.count, cluster.lines(delivered).count, "every line is one alert's JSON: \(cluster.lines(delivered))")
        XCTAssertEqual(got.compactMap(\.id).sorted(), rows.compactMap(\.id), "each alert delivered exactly once")
        XCTAssertEqual(Set(rows.map(\.dedupKey)).count, rows.count)
        let byKind = Dictionary(grouping: rows, by: \.kind)
        XCTAssertEqual(byKind[.workflowSuccess]?.map(\.workflowInstanceId), [ok], "SUCCESS of 'told' (ALL); none for 'quiet' (FAILURE only)")
        XCTAssertEqual(byKind[.workflowFailure]?.map(\.workflowInstanceId), [bad])
        XCTAssertEqual(byKind[.taskTimeout]?.map(\.workflowInstanceId), [slow])
        XCTAssertEqual(byKind[.serverDown]?.count, 1, "one alert for the worker both masters saw leave: \(rows.map(\.dedupKey))")
        let failure = try XCTUnwrap(got.first { $0.kind == .workflowFailure })
        XCTAssertEqual(failure.state, "FAILURE")
        XCTAssertEqual(failure.workflow, "told-bad")
        XCTAssertEqual(failure.delivery, 1)
        XCTAssertTrue(got.first { $0.kind == .serverDown }?.server?.hasPrefix("127.0.0.1:") ?? false)
        XCTAssertTrue(rows.allSatisfy { $0.attempts == 1 && $0.sentTime != nil }, "\(rows.map { ($0.id!, $0.attempts) })")
    }

    func testTheCommandGetsNoDescriptorOfTheMasterAndItsStderrCostsNothing() async throws {
        let fds = cluster.directory.appendingPathComponent("fds.txt").path
        // 20 MB of NUL bytes on stderr, then a few words: the words are what is kept.
        let command = try script(#"ls -l /proc/$$/fd > \#(fds); head -c 20000000 /dev/zero >&2; printf 'tail words' >&2; exit 5"#)
        try cluster.startMaster(["--alert-command", command, "--alert-retries", "0"])
        try cluster.startWorker()
        let id = try cluster.submit(#"{"name":"told","warning":"SUCCESS","tasks":[{"name":"t","command":"true"}]}"#)
        _ = try await cluster.waitForEnd(id)
        try await eventually("the alert is settled") { try await self.cluster.store().alerts().first?.state == "FAILED" }
        let alert = try await cluster.store().alerts().first
        XCTAssertEqual(alert?.lastError, "exit 5: tail words")
        XCTAssertEqual(alert?.attempts, 1)
        let listing = cluster.lines(fds)
        XCTAssertFalse(listing.isEmpty)
        XCTAssertFalse(listing.contains { $0.contains("socket:") }, "no socket of the master (ZooKeeper) reaches the command: \(listing)")
        let open = listing.compactMap { $0.split(separator: " ").dropLast(2).last.flatMap { Int($0) } }
        XCTAssertTrue(open.allSatisfy { $0 <= 2 || $0 >= 10 }, "only its standard descriptors (and the shell's own): \(listing)")
    }

    func testAFailingCommandIsRetriedAndItsFailureRecorded() async throws {
        // Failure alerts never get through; others only at their third delivery; a hung command is killed.
        let command = try script(#"""
            if [ "$DS_ALERT_KIND" = WORKFLOW_FAILURE ]; then echo "mail server said no" >&2; exit 3; fi
            if [ "$DS_ALERT_KIND" = TASK_TIMEOUT ]; then sleep 600; fi
            if [ "$DS_ALERT_DELIVERY" -lt 3 ]; then echo "not yet $DS_ALERT_DELIVERY" >&2; exit 4; fi
            line=$(cat); printf "%s\\n" "$line" >> \#(delivered)
            """#)
        try cluster.startMaster(["--alert-command", command, "--alert-retries", "2", "--alert-timeout", "1s"])
        try cluster.startWorker(slots: 4)
        let ok = try cluster.submit(#"{"name":"told","warning":"ALL","tasks":[{"name":"t","command":"true"}]}"#)
        let bad = try cluster.submit(#"{"name":"told-bad","warning":"ALL","tasks":[{"name":"t","command":"false"}]}"#)
        let slow = try cluster.submit(#"{"name":"slow","tasks":[{"name":"t","command":"sleep 2","timeout":"1s","timeout_strategy":"WARN"}]}"#)
        for id in [ok, bad, slow] { _ = try await cluster.waitForEnd(id) }
        try await eventually("every alert is settled", timeout: 120) {
            let alerts = try await self.cluster.store().alerts()
            return alerts.count == 3 && alerts.allSatisfy { $0.state == "SENT" || $0.state == "FAILED" }
        }
        let rows = Dictionary(uniqueKeysWithValues: try await cluster.store().alerts().map { ($0.kind, $0) })
        let sent = try XCTUnwrap(rows[.workflowSuccess])
        XCTAssertEqual(sent.state, "SENT")
        XCTAssertEqual(sent.attempts, 3, "two failed deliveries, then the third got through")
        XCTAssertEqual(sent.lastError, "exit 4: not yet 2", "the last failure is kept")
        let failed = try XCTUnwrap(rows[.workflowFailure])
        XCTAssertEqual(failed.state, "FAILED")
        XCTAssertEqual(failed.attempts, 3, "the first delivery and two retries")
        XCTAssertEqual(failed.lastError, "exit 3: mail server said no")
        XCTAssertNil(failed.sentTime)
        let hung = try XCTUnwrap(rows[.taskTimeout])
        XCTAssertEqual(hung.state, "FAILED")
        XCTAssertEqual(hung.lastError, "killed after its timeout of 1s")
        let got = deliveredAlerts()
        XCTAssertEqual(got.map(\.kind), [.workflowSuccess], "only the alert that got through was delivered, once")
        XCTAssertEqual(got.first?.delivery, 3)
    }

    /// Issue 21, item 10: a master stopped (SIGTERM) while its alert command runs. Its wait for the
    /// command spun (a cancelled task's sleep returns at once), and the delivery was never recorded
    /// (the alert stayed SENDING, to be delivered again after the lease). It must wait quietly for
    /// the command and record what it did.
    func testAMasterStoppedWhileItsCommandRunsWaitsQuietlyAndRecordsTheDelivery() async throws {
        let started = cluster.directory.appendingPathComponent("started").path
        let go = cluster.directory.appendingPathComponent("go").path
        let command = try script(#"echo started >> \#(started); while [ ! -e \#(go) ]; do sleep 0.1; done; line=$(cat); printf "%s\\n" "$line" >> \#(delivered)"#)
        let master = try cluster.startMaster(["--alert-command", command])
        try cluster.startWorker()
        let id = try cluster.submit(#"{"name":"told","warning":"SUCCESS","tasks":[{"name":"t","command":"true"}]}"#)
        _ = try await cluster.waitForEnd(id)
        try await eventually("the command runs") { !self.cluster.lines(started).isEmpty }
        kill(master.processIdentifier, SIGTERM)
        try await Task.sleep(for: .milliseconds(500))
        let before = try XCTUnwrap(cpuSeconds(master.processIdentifier), "the master waits for its command")
        try await Task.sleep(for: .seconds(2))
        let after = try XCTUnwrap(cpuSeconds(master.processIdentifier), "the master waits for its command")
        FileManager.default.createFile(atPath: go, contents: nil)
        XCTAssertEqual(cluster.exitStatus(of: master, within: 60), 0)
        XCTAssertLessThan(after - before, 0.5, "2 s of waiting for the command cost the master \(after - before) s of CPU")
        let alerts = try await cluster.store().alerts()
        XCTAssertEqual(alerts.map(\.state), ["SENT"], "the delivery was recorded before the master stopped")
        XCTAssertEqual(deliveredAlerts().map(\.id), alerts.map(\.id))
    }

    /// User and system CPU time of a live process, from /proc.
    func cpuSeconds(_ pid: pid_t) -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the name: state is field 3 of the record, utime and stime fields 14 and 15.
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
