import Shared
import XCTest

/// `ds-instance list --since`: what an operator types and the instant it means.
final class TimeTextTests: XCTestCase {
    let now = 1_800_000_000.0

    func testUnixTimesDatesAndAgesWithAUnit() {
        XCTAssertEqual(TimeText.parse("1700000000", now: now), 1_700_000_000)
        XCTAssertEqual(TimeText.parse("0", now: now), 0)
        XCTAssertEqual(TimeText.parse("2h", now: now), now - 7200)
        XCTAssertEqual(TimeText.parse("7d", now: now), now - 7 * 86400)
        XCTAssertEqual(TimeText.parse("2026-11-23T10:00:00Z", now: now), 1_795_428_000)
    }

    /// A bare number is a Unix time in seconds, never an age: a millisecond time pasted from
    /// another tool (13 digits) used to read as an age of 53,000 years and list everything.
    func testABareNumberOutOfRangeIsRefusedNotReadAsAnAge() {
        XCTAssertNil(TimeText.parse("1763900000000", now: now))
        XCTAssertNil(TimeText.parse("99999999999999", now: now))
        XCTAssertNil(TimeText.parse("1e12", now: now))
        XCTAssertNil(TimeText.parse("-5", now: now))
    }
}
