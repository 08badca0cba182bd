import Foundation
import Shared
import XCTest

/// Schedule firing, catch-up and backfill dates on a real SQLite file, with the clock given: the
/// exact fire times each policy starts, and that a racing second firing starts nothing.
class ScheduleStoreTests: XCTestCase {
    var directory: URL!
    var store: Store!
    let utc = TimeZone(identifier: "UTC")!
    /// 2026-01-01T00:00:00Z
    let t0 = 1_767_225_600.0

    override func setUp() async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ds-schedule-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        store = try Store(location: try makeLocation())
        _ = try await store.submit(WorkflowDefinition(name: "w", tasks: [TaskDefinition(name: "a", command: "true")]), params: [:], now: t0,
                                   start: false)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: directory) }

    /// This test's database: a SQLite file here, a PostgreSQL database in `PostgresScheduleStoreTests`.
    func makeLocation() throws -> DatabaseLocation { .sqlite(path: directory.appendingPathComponent("ds.db").path) }

    func add(_ cron: String, catchup: CatchUp = .none, end: Double? = nil, now: Double) async throws -> Int64 {
        try await store.addSchedule(ScheduleRecord(workflow: "w", cron: cron, timeZone: "UTC", endTime: end, catchup: catchup, createdAt: now),
                                    now: now).id!
    }

    func fired(_ id: Int64) async throws -> [Double] {
        try await store.instances(schedule: id).compactMap(\.scheduleTime)
    }

    func testOnTimeFiresOnceAndASecondFiringOfTheSameTimeStartsNothing() async throws {
        let id = try await add("0 * * * * ?", now: t0 + 1)
        let first = try await store.fire(schedule: id, now: t0 + 60.2, misfireThreshold: 5)
        XCTAssertEqual(first.fired.map(\.time), [t0 + 60])
        XCTAssertEqual(first.fired.map(\.late), [false])
        // Another master that read the schedule as due before the first committed.
        let second = try await store.fire(schedule: id, now: t0 + 60.3, misfireThreshold: 5)
        XCTAssertTrue(second.fired.isEmpty)
        let firedTimes = try await fired(id)
        XCTAssertEqual(firedTimes, [t0 + 60])
        let schedule = try await store.schedule(id)
        XCTAssertEqual(schedule?.nextFireTime, t0 + 120)
        XCTAssertEqual(schedule?.lastFireTime, t0 + 60)
        // Its instance waits for a master like any other, with its fire time and zone.
        let instance = try await store.instance(first.fired[0].instance)
        XCTAssertEqual(instance?.state, .submitted)
        XCTAssertEqual(instance?.timeZone, "UTC")
        let claimed = try await store.claimCommand(host: "m:1", session: 1, now: t0 + 61)
        XCTAssertEqual(claimed?.instance.id, first.fired[0].instance)
    }

    func testCatchUpPoliciesAfterTenMissedMinutes() async throws {
        // Every minute; every master down from the first fire time to 10.5 minutes later.
        let now = t0 + 600 + 30
        var results: [CatchUp: ScheduleFiring] = [:]
        var ids: [CatchUp: Int64] = [:]
        for policy in CatchUp.allCases {
            ids[policy] = try await add("0 * * * * ?", catchup: policy, now: t0 + 1)
            results[policy] = try await store.fire(schedule: ids[policy]!, now: now, misfireThreshold: 5)
        }
        let none = try await fired(ids[.none]!)
        XCTAssertEqual(none, [], "NONE: every missed fire time skipped")
        XCTAssertEqual(results[.none]?.skipped?.from, t0 + 60)
        XCTAssertEqual(results[.none]?.skipped?.before, t0 + 660)
        let last = try await fired(ids[.last]!)
        XCTAssertEqual(last, [t0 + 600], "LAST: only the latest missed")
        XCTAssertEqual(results[.last]?.fired.map(\.late), [true])
        let all = try await fired(ids[.all]!)
        XCTAssertEqual(all, (1...10).map { t0 + Double($0) * 60 }, "ALL: each, in order")
        let marked = try await store.instances(schedule: ids[.all]!).map(\.caughtUp)
        XCTAssertEqual(marked, Array(repeating: true, count: 10), "each marked caught up")
        for policy in CatchUp.allCases {
            let next = try await store.schedule(ids[policy]!)?.nextFireTime
            XCTAssertEqual(next, t0 + 660, "\(policy) goes on from the next fire time")
        }
        // A fire time late by less than the threshold is not missed: it runs under NONE too.
        let onTime = try await store.fire(schedule: ids[.none]!, now: t0 + 663, misfireThreshold: 5)
        XCTAssertEqual(onTime.fired.map(\.time), [t0 + 660])
        XCTAssertEqual(onTime.fired.map(\.late), [false])
    }

    func testAWeekOfMissedSecondsIsCaughtUpInBoundedTransactions() async throws {
        let week = 7 * 86_400.0
        let last = try await add("* * * * * ?", catchup: .last, now: t0 + 1)
        let started = ProcessInfo.processInfo.systemUptime
        let firing = try await store.fire(schedule: last, now: t0 + week, misfireThreshold: 5)
        XCTAssertLessThan(ProcessInfo.processInfo.systemUptime - started, 60, "the latest missed second is found without walking 600,000 of them")
        XCTAssertEqual(firing.fired.map(\.time), [t0 + week - 6] + (0...5).map { t0 + week - 5 + Double($0) },
                       "the latest missed second, then the on-time ones")
        let all = try await add("* * * * * ?", catchup: .all, now: t0 + 1)
        let batch = try await store.fire(schedule: all, now: t0 + week, misfireThreshold: 5)
        XCTAssertEqual(batch.fired.count, Store.maxFiresPerTransaction)
        XCTAssertTrue(batch.moreDue)
        let next = try await store.schedule(all)?.nextFireTime
        XCTAssertEqual(next, t0 + 1 + Double(Store.maxFiresPerTransaction))
    }

    func testAMasterBusyFiringManySchedulesMissesNoneOfThem() async throws {
        let id = try await add("0 * * * * ?", now: t0 + 1)
        // Seen due on time; fired 30 s later (other schedules first): still on time.
        let firing = try await store.fire(schedule: id, now: t0 + 90, seenAt: t0 + 60.5, misfireThreshold: 5)
        XCTAssertEqual(firing.fired.map(\.time), [t0 + 60])
        XCTAssertEqual(firing.fired.map(\.late), [false])
    }

    func testTheLatestMissedTimeOfADenseWindowLongAgoIsFoundInFewSteps() {
        // Every second of the morning (00:00 to 11:59:59), two days missed, cutoff in the evening.
        let cron = try! CronExpression("* * 0-11 * * ?")
        var steps = 0
        let next: (Double) -> Double? = { t in
            steps += 1
            return cron.next(after: Date(timeIntervalSince1970: t), in: self.utc)?.timeIntervalSince1970
        }
        let cutoff = t0 + 2 * 86_400 + 20 * 3600
        let latest = FireCalendar(cron, zone: utc).latest(before: cutoff, notBefore: t0, next: next)
        XCTAssertEqual(latest, t0 + 2 * 86_400 + 12 * 3600 - 1, "11:59:59 of the last day")
        XCTAssertLessThan(steps, 100, "a bisection, not a walk through the morning's 43,200 seconds")
    }

    func testEndStopsTheScheduleAndOfflineFiresNothing() async throws {
        let id = try await add("0 * * * * ?", end: t0 + 120, now: t0 + 1)
        let firing = try await store.fire(schedule: id, now: t0 + 300, misfireThreshold: 600)
        XCTAssertEqual(firing.fired.map(\.time), [t0 + 60, t0 + 120])
        let ended = try await store.schedule(id)
        XCTAssertNil(ended?.nextFireTime, "past its end, no fire time is left")
        let other = try await add("0 * * * * ?", now: t0 + 1)
        _ = try await store.setSchedule(other, online: false, now: t0 + 10)
        let offline = try await store.fire(schedule: other, now: t0 + 300, misfireThreshold: 600)
        XCTAssertTrue(offline.fired.isEmpty)
        // Online again: from now on, what fell due meanwhile is not run.
        let online = try await store.setSchedule(other, online: true, now: t0 + 301)
        XCTAssertEqual(online?.nextFireTime, t0 + 360)
        let removed = try await store.removeSchedule(other)
        XCTAssertTrue(removed)
        let gone = try await store.fire(schedule: other, now: t0 + 400, misfireThreshold: 600)
        XCTAssertTrue(gone.fired.isEmpty)
    }

    func testBusinessDatesAndTheirScheduleTimes() throws {
        let berlin = TimeZone(identifier: "Europe/Berlin")!
        // Across a leap day and the spring DST change (2028-03-26 in Berlin).
        let dates = try ScheduleTool.businessDates(from: "2028-02-28", to: "20280301", zone: berlin)
        XCTAssertEqual(dates.map(\.date), ["2028-02-28", "2028-02-29", "2028-03-01"])
        for (date, time) in dates {
            let resolver = ParameterResolver(runTime: Date(timeIntervalSince1970: time), timeZone: berlin)
            XCTAssertEqual(resolver.builtIns["system.biz.date"], date.replacingOccurrences(of: "-", with: ""))
        }
        let spring = try ScheduleTool.businessDates(from: "2028-03-25", to: "2028-03-27", zone: berlin)
        XCTAssertEqual(zip(spring, spring.dropFirst()).map { $1.time - $0.time }, [82_800, 86_400], "the short day is 23 hours")
        for bad in [("2026-02-30", "2026-03-01"), ("2026-1-1", "2026-01-02"), ("", "2026-01-01"), ("2026-01-02", "2026-01-01"),
                    ("1969-12-31", "1970-01-01"), ("2000-01-01", "2099-12-31"), ("２０２６-01-01", "2026-01-02")] {
            XCTAssertThrowsError(try ScheduleTool.businessDates(from: bad.0, to: bad.1, zone: utc), "\(bad)")
        }
    }
}
