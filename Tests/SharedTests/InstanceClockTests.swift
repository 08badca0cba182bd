import Foundation
import Shared
import XCTest

/// An instance's dates come from what it stores, never from the zone of the process reading them.
final class InstanceClockTests: XCTestCase {
    /// 2026-12-04T20:00:00Z: already the 5th in Tokyo, still the 4th in UTC.
    let start = 1_796_414_400.0

    func testTheStoredZoneDecidesTheBusinessDate() throws {
        let tokyo = try InstanceClock(scheduleTime: nil, startTime: start, timeZone: "Asia/Tokyo", now: 0)
        XCTAssertEqual(tokyo.resolver.builtIns["system.biz.date"], "20261204")
        let unzoned = try InstanceClock(scheduleTime: nil, startTime: start, timeZone: nil, now: 0)
        XCTAssertEqual(unzoned.zone.secondsFromGMT(), 0, "an instance stored without a zone: UTC on every master")
        XCTAssertEqual(unzoned.resolver.builtIns["system.biz.date"], "20261203")
        let scheduled = try InstanceClock(scheduleTime: start - 86_400, startTime: start, timeZone: "Asia/Tokyo", now: 0)
        XCTAssertEqual(scheduled.runTime.timeIntervalSince1970, start - 86_400, "a scheduled instance counts from its fire time")
        XCTAssertThrowsError(try InstanceClock(scheduleTime: nil, startTime: start, timeZone: "Mars/Olympus_Mons", now: 0)) {
            XCTAssertTrue("\($0)".contains("'Mars/Olympus_Mons' is not in this host's time zone database"), "\($0)")
        }
    }
}
