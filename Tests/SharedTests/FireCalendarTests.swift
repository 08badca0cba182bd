import Foundation
import Shared
import XCTest

/// FireCalendar, the one rule for where a schedule's fire times begin and end: both bounds are
/// inclusive, as ds-schedule(1) promises (--start and --end bound the fire times).
final class FireCalendarTests: XCTestCase {
    let utc = TimeZone(identifier: "UTC")!
    /// 2026-01-01T00:00:00Z
    let t0 = 1_767_225_600.0

    func testAStartOnAFireTimeFiresAtTheStartAndAnEndOnOneIncludesIt() throws {
        let calendar = FireCalendar(try CronExpression("0 * * * * ?"), zone: utc, start: t0 + 60, end: t0 + 180)
        XCTAssertEqual(calendar.first(atOrAfter: t0), t0 + 60, "from before the start: the start itself")
        XCTAssertEqual(calendar.first(atOrAfter: t0 + 60), t0 + 60, "from the start: the start itself")
        XCTAssertEqual(calendar.next(after: t0 + 59.5), t0 + 60)
        XCTAssertEqual(calendar.next(after: t0 + 60), t0 + 120, "after is exclusive")
        XCTAssertEqual(calendar.times(after: t0, count: 10), [t0 + 60, t0 + 120, t0 + 180], "the end itself is a fire time")
        XCTAssertNil(calendar.next(after: t0 + 180), "none after the end")
        XCTAssertEqual(calendar.first(atOrAfter: t0 + 180), t0 + 180)
        XCTAssertEqual(calendar.latest(before: t0 + 181, notBefore: t0 + 60), t0 + 180)
        XCTAssertEqual(calendar.latest(before: t0 + 180, notBefore: t0 + 60), t0 + 120)
        // A start between fire times: the next one after it.
        let between = FireCalendar(try CronExpression("0 * * * * ?"), zone: utc, start: t0 + 61)
        XCTAssertEqual(between.first(atOrAfter: t0), t0 + 120)
    }

    /// The store fires by the same calendar: a schedule whose start is a fire time fires at it,
    /// whether added before its start or at it, and one whose end is a fire time fires there last.
    func testTheStoreFiresFromTheStartToTheEndInclusive() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ds-calendar-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try Store(path: directory.appendingPathComponent("ds.db").path)
        _ = try await store.submit(WorkflowDefinition(name: "w", tasks: [TaskDefinition(name: "a", command: "true")]), params: [:], now: t0, start: false)
        for now in [t0, t0 + 60] {
            let s = try await store.addSchedule(ScheduleRecord(workflow: "w", cron: "0 * * * * ?", timeZone: "UTC", startTime: t0 + 60,
                                                               endTime: t0 + 180, catchup: .all, createdAt: now), now: now)
            XCTAssertEqual(s.nextFireTime, t0 + 60, "added at \(now - t0)")
            let firing = try await store.fire(schedule: s.id!, now: t0 + 600, misfireThreshold: 1000)
            XCTAssertEqual(firing.fired.map(\.time), [t0 + 60, t0 + 120, t0 + 180])
            let after = try await store.schedule(s.id!)
            XCTAssertNil(after?.nextFireTime)
        }
    }
}
