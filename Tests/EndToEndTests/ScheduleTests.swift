import Foundation
import Shared
import XCTest

/// Cron schedules and backfills on real masters, workers, ZooKeeper and SQLite: each fire time
/// starts one instance however many masters run and whichever dies; catch-up policies after every
/// master was down; backfills one date at a time or N at once; built-ins from the fire time.
class ScheduleTests: ClusterTestCase {
    var marker: String { cluster.directory.appendingPathComponent("markers").path }
    var gate: String { cluster.directory.appendingPathComponent("go").path }

    func schedule(_ arguments: [String]) throws -> ToolRun { try cluster.run("ds-schedule", arguments) }

    /// Stores a workflow without running it.
    func store(_ json: String) throws {
        let run = try cluster.run("ds-submit", ["--no-start", try cluster.workflowFile(json)])
        XCTAssertEqual(run.status, 0, run.stderr)
    }

    /// Adds a schedule; its id.
    func add(_ arguments: [String]) throws -> Int64 {
        let run = try schedule(["add"] + arguments)
        XCTAssertEqual(run.status, 0, run.stderr)
        return Int64(run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    func testEverySecondWithThreeMastersOneInstancePerFireTimeAlsoWhenOneIsKilled() async throws {
        try await scheduleFiresOncePerFireTime(masters: 3)
    }

    /// Three schedules, one per catch-up policy, fire every second; every master is killed for
    /// 10 s; a master started again applies each policy to the fire times missed meanwhile.
    func testCatchUpPoliciesAfterEveryMasterWasDown() async throws {
        // Well above a master's pauses on a loaded machine, well below the outage.
        let threshold = 3.0
        let arguments = ["--misfire-threshold", "3s"]
        let masters = try (0..<2).map { _ in try cluster.startMaster(arguments) }
        try cluster.startWorker(slots: 8)
        try store(#"{"name":"beat","tasks":[{"name":"t","command":"true"}]}"#)
        var ids: [CatchUp: Int64] = [:]
        for policy in CatchUp.allCases {
            ids[policy] = try add(["beat", "--cron", "* * * * * ?", "--catchup", policy.rawValue])
        }
        try await eventually("each schedule has fired") {
            for id in ids.values where try await self.cluster.store().instances(schedule: id).count < 2 { return false }
            return true
        }
        for m in masters { cluster.kill9(m) }
        let down = ProcessStats.now()
        try await Task.sleep(for: .seconds(10))
        let restart = ProcessStats.now()
        try cluster.startMaster(arguments)
        try await eventually("each schedule fires again") {
            for id in ids.values where (try await self.cluster.store().schedule(id)?.lastFireTime ?? 0) < restart + 2 { return false }
            return true
        }
        for (policy, id) in ids.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            let instances = try await cluster.store().instances(schedule: id)
            let before = instances.filter { $0.submitTime < down }
            let lastBefore = try XCTUnwrap(before.last?.scheduleTime, "\(policy)")
            let after = instances.filter { $0.scheduleTime! > lastBefore }
            let late = after.filter { $0.caughtUp == true }
            let times = after.compactMap(\.scheduleTime)
            let contiguous = zip(times, times.dropFirst()).allSatisfy { $1 - $0 == 1 }
            let report = "\(policy): last fire before the outage \(lastBefore), after it \(times.map { $0 - lastBefore }), late \(late.count)"
            XCTAssertTrue(contiguous, "after the first fire time run again, none is skipped: \(report)")
            switch policy {
            case .all:
                XCTAssertEqual(times.first, lastBefore + 1, "ALL runs every missed fire time: \(report)")
                XCTAssertGreaterThanOrEqual(late.count, 6, "the missed fire times ran late: \(report)")
            case .last:
                XCTAssertEqual(late.count, 1, "LAST runs exactly one missed fire time: \(report)")
                XCTAssertEqual(late.first?.scheduleTime, times.first, "the one it runs is the latest missed: \(report)")
                XCTAssertGreaterThan(times.first! - lastBefore, 5, "the fire times missed before it are skipped: \(report)")
            case .none:
                XCTAssertEqual(late.count, 0, "NONE runs no missed fire time: \(report)")
                XCTAssertGreaterThan(times.first! - lastBefore, 5, "the missed fire times are skipped: \(report)")
                XCTAssertGreaterThanOrEqual(times.first!, restart - threshold, "what runs was due after the restart: \(report)")
            }
            // Caught up means late: each ran more than the threshold after its fire time.
            XCTAssertTrue(late.allSatisfy { $0.submitTime - $0.scheduleTime! > threshold }, report)
            XCTAssertLessThan(times.first! - lastBefore, restart - down + 30, "it fires again after the outage: \(report)")
        }
    }

    func testBackfillOverFiveDatesSerialAndParallel() async throws {
        try cluster.startMaster()
        try cluster.startMaster()
        try cluster.startWorker(slots: 8)
        // Serial: each date starts after the one before ended.
        try store(#"{"name":"fill","tasks":[{"name":"t","command":"echo start ${system.biz.date} >> \#(marker); sleep 0.3; echo end ${system.biz.date} >> \#(marker)"}]}"#)
        let serial = try schedule(["backfill", "fill", "--from", "2026-02-26", "--to", "2026-03-02", "--tz", "Europe/Berlin", "--json"])
        XCTAssertEqual(serial.status, 0, serial.stderr)
        let rows = serial.stdout.split(separator: "\n").map { try? WireJSON.decode(BackfillLine.self, Data($0.utf8)) }
        XCTAssertEqual(rows.compactMap { $0?.businessDate }, ["2026-02-26", "2026-02-27", "2026-02-28", "2026-03-01", "2026-03-02"])
        for row in rows.compactMap({ $0 }) {
            let state = try await cluster.waitForEnd(row.instanceId)
            XCTAssertEqual(state, .success)
        }
        let dates = ["20260226", "20260227", "20260228", "20260301", "20260302"]
        XCTAssertEqual(cluster.lines(marker), dates.flatMap { ["start \($0)", "end \($0)"] }, "one date at a time, in order, with its business date")

        // Parallel 3: three dates run at once, never a fourth, until they end.
        try FileManager.default.removeItem(atPath: marker)
        try store(#"{"name":"wide","tasks":[{"name":"t","command":"echo ${system.biz.date} >> \#(marker); while [ ! -e \#(gate) ]; do sleep 0.1; done"}]}"#)
        let parallel = try schedule(["backfill", "wide", "--from", "2025-12-30", "--to", "20260103", "--parallel", "3"])
        XCTAssertEqual(parallel.status, 0, parallel.stderr)
        let ids = parallel.stdout.split(separator: "\n").compactMap { Int64($0) }
        XCTAssertEqual(ids.count, 5)
        try await eventually("three dates run") { self.cluster.lines(self.marker).count == 3 }
        try await Task.sleep(for: .seconds(3))
        // The three oldest dates (their tasks run at once, so in any order), and no fourth.
        XCTAssertEqual(cluster.lines(marker).sorted(), ["20251230", "20251231", "20260101"], "at most three at once, oldest first")
        // The two later dates say they wait for their turn in the backfill, in list as in show.
        let list = try cluster.run("ds-instance", ["list", "--workflow", "wide"])
        for id in ids.suffix(2) {
            let row = list.stdout.split(separator: "\n").first { $0.hasPrefix("\(id) ") }
            XCTAssertTrue(row?.contains("waits for its turn in backfill") == true, list.stdout)
            let show = try cluster.run("ds-instance", ["show", String(id)])
            XCTAssertTrue(show.stdout.contains("note       waits for its turn in backfill"), show.stdout)
        }
        FileManager.default.createFile(atPath: gate, contents: nil)
        for id in ids {
            let state = try await cluster.waitForEnd(id)
            XCTAssertEqual(state, .success)
        }
        XCTAssertEqual(cluster.lines(marker).sorted(), ["20251230", "20251231", "20260101", "20260102", "20260103"])
    }

    func testScheduleToolRefusesBadInputAndManagesSchedules() async throws {
        try cluster.startMaster()
        // Refusals name what is wrong and write nothing.
        let cases: [([String], Int32, String)] = [
            (["check", "--cron", "0 0/0 * * * ?"], 65, "field 'minutes'"),
            (["check", "--cron", "0 0 12 1 * MON"], 65, "field 'day-of-week': day-of-month and day-of-week are both set"),
            (["check", "--cron", "0 0 12 * * ? 2026 x"], 65, "field"),
            (["check", "--cron", "0 0 25 * * ?"], 65, "field 'hours'"),
            (["check", "--cron", ""], 65, "field 'expression'"),
            (["check", "--cron", "0 0 12 L-40 * ?"], 65, "field 'day-of-month'"),
            (["next", "--cron", "0 0 * * *", "--tz", "Mars/Olympus", "-n", "1"], 65, "--tz"),
            (["next", "--cron", "0 0 * * *", "-n", "0"], 64, "-n"),
            (["next", "-n", "3"], 64, "--cron"),
            (["add", "nope", "--cron", "0 0 * * *"], 65, "no stored workflow named 'nope'"),
            (["add", "nope", "--cron", "0 0 * * *", "--catchup", "some"], 64, "--catchup"),
            (["add", "../x", "--cron", "0 0 * * *"], 64, "workflow name"),
            (["backfill", "nope", "--from", "2026-01-05", "--to", "2026-01-01"], 64, "after --to"),
            (["backfill", "nope", "--from", "2026-02-30", "--to", "2026-03-01"], 64, "--from"),
            (["backfill", "nope", "--from", "2026-01-01", "--to", "2026-01-02", "--parallel", "0"], 64, "--parallel"),
            (["backfill", "nope", "--from", "2026-01-01", "--to", "2026-01-02"], 65, "no stored workflow"),
            (["online", "99"], 65, "no schedule 99"),
            (["check", "--cron", "0 0 0 1 1 ? 2020"], 65, "has no fire time from now on"),
            (["check", "--cron", "0 0 12 * * ?", "--tz", "GMT+5"], 65, "--tz 'GMT+5' is not a time zone"),
            (["check", "--cron", "0 0 12 * * ?", "--tz", "../../etc/passwd"], 65, "--tz"),
            (["remove", "0"], 64, "schedule id"),
        ]
        for (arguments, status, text) in cases {
            let run = try schedule(arguments)
            XCTAssertEqual(run.status, status, "\(arguments): \(run.stderr)")
            XCTAssertTrue(run.stderr.contains(text), "\(arguments): \(run.stderr)")
        }
        // An unknown TZ is refused, not taken for UTC.
        let badTZ = try cluster.run("ds-schedule", ["check", "--cron", "0 0 12 * * ?"], environment: ["TZ": "Nowhere/Land"])
        XCTAssertEqual(badTZ.status, 65, badTZ.stderr)
        XCTAssertTrue(badTZ.stderr.contains("TZ 'Nowhere/Land' is not a time zone"), badTZ.stderr)
        let posixTZ = try cluster.run("ds-schedule", ["check", "--cron", "0 0 12 * * ?", "--json"], environment: ["TZ": ":Europe/Berlin"])
        XCTAssertEqual(posixTZ.status, 0, posixTZ.stderr)
        XCTAssertTrue(posixTZ.stdout.contains(#""time_zone":"Europe/Berlin""#), posixTZ.stdout)
        try await XCTAssertEqualAsync(try await cluster.store().schedules().count, 0)
        try await XCTAssertEqualAsync(try await cluster.store().countRows(of: "workflow_instance"), 0)

        // next and check of a bare expression, from any instant, in a zone across a DST gap.
        let next = try schedule(["next", "--cron", "0 30 2 * * ?", "--tz", "Europe/Berlin", "--from", "2026-03-28T12:00:00+01:00", "-n", "3"])
        XCTAssertEqual(next.stdout, "2026-03-29T03:00:00+02:00\n2026-03-30T02:30:00+02:00\n2026-03-31T02:30:00+02:00\n", next.stderr)
        XCTAssertEqual(try schedule(["check", "--cron", "0 0 12 LW * ?"]).status, 0)

        // add, list, next ID, offline, online, remove.
        try store(#"{"name":"daily","tasks":[{"name":"t","command":"true"}]}"#)
        let id = try add(["daily", "--cron", "  0 15 6 * *\t?  ", "--tz", "UTC", "--catchup", "last", "--param", "dt=x"])
        let stored = try await cluster.store().schedule(id)
        XCTAssertEqual(stored?.timeZone, "UTC", "the zone as given")
        XCTAssertEqual(stored?.cron, "0 15 6 * * ?", "the fields joined by one space")
        let listed = try schedule(["list"])
        XCTAssertTrue(listed.stdout.contains("daily") && listed.stdout.contains("0 15 6 * * ?") && listed.stdout.contains("ONLINE"), listed.stdout)
        let upcoming = try schedule(["next", String(id), "-n", "2"])
        XCTAssertEqual(upcoming.stdout.split(separator: "\n").count, 2, upcoming.stderr)
        XCTAssertTrue(upcoming.stdout.split(separator: "\n").allSatisfy { $0.hasSuffix("T06:15:00Z") }, upcoming.stdout)
        XCTAssertEqual(try schedule(["offline", String(id)]).status, 0)
        let offline = try await cluster.store().schedule(id)
        XCTAssertEqual(offline?.state, "OFFLINE")
        XCTAssertNil(offline?.nextFireTime)
        XCTAssertEqual(try schedule(["online", String(id)]).status, 0)
        try await XCTAssertEqualAsync(try await cluster.store().schedule(id)?.nextFireTime != nil, true)
        XCTAssertEqual(try schedule(["remove", String(id)]).status, 0)
        XCTAssertEqual(try schedule(["remove", String(id)]).status, 65)
        try await XCTAssertEqualAsync(try await cluster.store().schedules().count, 0)
    }

    /// Issue 21 (item 15 tightened the cron rules): a schedule an older version stored with a
    /// cron this one refuses does not fire, and the tool says so and how to mend it.
    func testScheduleStoredWithACronNowRefusedIsShownAsNotFiring() async throws {
        try cluster.startMaster()
        try store(#"{"name":"old","tasks":[{"name":"t","command":"true"}]}"#)
        let id = try add(["old", "--cron", "0 0 6 * * ?", "--tz", "UTC"])
        // As a version that took a 60-second step wrote it.
        try NetworkHosts.run(["/usr/bin/sqlite3", "-cmd", ".timeout 30000", cluster.databasePath,
                              "UPDATE schedule SET cron = '0/60 * * * * ?' WHERE id = \(id)"])
        let listed = try schedule(["list"])
        XCTAssertEqual(listed.status, 0, listed.stderr)
        XCTAssertTrue(listed.stderr.contains("schedule \(id): cron '0/60 * * * * ?'") && listed.stderr.contains("ds-schedule remove \(id)"), listed.stderr)
        let json = try schedule(["list", "--json"])
        XCTAssertTrue(json.stdout.contains(#""problem":"#), json.stdout)
        let shown = try schedule(["show", String(id)])
        XCTAssertTrue(shown.stderr.contains("it does not fire"), shown.stderr)
        // A schedule the rules accept has no problem.
        let fine = try add(["old", "--cron", "0 0 7 * * ?", "--tz", "UTC"])
        let fineJSON = try schedule(["show", String(fine), "--json"])
        XCTAssertFalse(fineJSON.stdout.contains("problem"), fineJSON.stdout)
        XCTAssertEqual(fineJSON.stderr, "")
    }
}

struct BackfillLine: Decodable {
    var backfillId: Int64
    var instanceId: Int64
    var businessDate: String
    var scheduleTime: Double
}

func XCTAssertEqualAsync<T: Equatable>(_ value: @autoclosure () async throws -> T, _ expected: T, _ message: String = "",
                                       file: StaticString = #filePath, line: UInt = #line) async throws {
    let v = try await value()
    XCTAssertEqual(v, expected, message, file: file, line: line)
}

extension ClusterTestCase {
    /// A schedule firing every second for ten seconds with `masters` masters, one of them killed
    /// (-9) midway: one instance per fire time, none lost, none twice, each run once with the fire
    /// time as its system.datetime (also on PostgreSQL, with two masters).
    func scheduleFiresOncePerFireTime(masters count: Int) async throws {
        let marker = cluster.marker
        func schedule(_ arguments: [String]) throws -> ToolRun { try cluster.run("ds-schedule", arguments) }
        let masters = try (0..<count).map { _ in try cluster.startMaster(["--misfire-threshold", "60s"]) }
        try cluster.startWorker(slots: 8)
        // Each run writes its instance id and the system.datetime it sees: the fire time, in the
        // schedule's zone (Kathmandu, +05:45: no machine's local zone hides a mistake there).
        let stored = try cluster.run("ds-submit", ["--no-start", try cluster.workflowFile(#"{"name":"tick","tasks":[{"name":"t","command":"echo $DS_WORKFLOW_INSTANCE_ID ${system.datetime} >> \#(marker)"}]}"#)])
        XCTAssertEqual(stored.status, 0, stored.stderr)
        let start = (ProcessStats.now() + 3).rounded(.up)
        let end = start + 9
        let added = try schedule(["add", "tick", "--cron", "* * * * * ?", "--tz", "Asia/Kathmandu", "--start", String(Int(start)), "--end", String(Int(end))])
        XCTAssertEqual(added.status, 0, added.stderr)
        let id = Int64(added.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        let expected = (0...9).map { start + Double($0) }
        // Midway, one master dies.
        try await eventually("the first five fire times have fired") {
            try await self.cluster.store().instances(schedule: id).count >= 5
        }
        cluster.kill9(masters[1])
        try await eventually("every fire time has fired", timeout: 180) {
            try await self.cluster.store().instances(schedule: id).count >= expected.count
        }
        try await Task.sleep(for: .seconds(3))
        let instances = try await cluster.store().instances(schedule: id)
        XCTAssertEqual(instances.compactMap(\.scheduleTime), expected, "one instance per fire time, none lost, none twice")
        let zone = TimeZone(identifier: "Asia/Kathmandu")!
        var seen: [String: String] = [:]
        for instance in instances {
            let state = try await cluster.waitForEnd(instance.id!)
            XCTAssertEqual(state, .success, "instance \(instance.id!)")
            let datetime = ParameterResolver(runTime: Date(timeIntervalSince1970: instance.scheduleTime!), timeZone: zone).builtIns["system.datetime"]!
            seen[String(instance.id!)] = datetime
        }
        let lines = cluster.lines(marker)
        XCTAssertEqual(lines.count, expected.count, "each instance's task ran once: \(lines)")
        for line in lines {
            let parts = line.split(separator: " ").map(String.init)
            XCTAssertEqual(parts.count, 2, line)
            XCTAssertEqual(seen[parts[0]], parts.last, "system.datetime is the fire time in the schedule's zone: \(line)")
        }
        let shown = try schedule(["show", String(id), "--json"])
        XCTAssertEqual(shown.status, 0, shown.stderr)
        let view = try JSONSerialization.jsonObject(with: Data(shown.stdout.split(separator: "\n")[0].utf8)) as? [String: Any]
        XCTAssertNil(view?["next_fire_time"], "past its end, the schedule has no fire time left: \(shown.stdout)")
    }
}
