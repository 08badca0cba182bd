import Foundation
import Shared
import XCTest

/// Cron expressions (issue 13's first part): next fire times against a table worked out by hand
/// from the calendar, across leap years, month ends, L, LW, W, #, L-n, years and a daylight-saving
/// gap and overlap; malformed expressions refused with the field named.
final class CronTests: XCTestCase {
    let utc = TimeZone(identifier: "UTC")!
    let newYork = TimeZone(identifier: "America/New_York")!

    func t(_ iso: String) -> Date { ISO8601DateFormatter().date(from: iso)! }

    func testNextFireTimes() throws {
        let table: [(String, String, String?, String?)] = [
            ("0 0 12 * * ?", "2026-01-01T12:00:00Z", nil, "2026-01-02T12:00:00Z"),
            ("*/20 * * * * ?", "2026-01-01T00:00:59Z", nil, "2026-01-01T00:01:00Z"),
            ("0 0 0 29 2 ?", "2026-03-01T00:00:00Z", nil, "2028-02-29T00:00:00Z"),                  // leap year
            ("0 0 0 L * ?", "2026-02-10T00:00:00Z", nil, "2026-02-28T00:00:00Z"),                   // month end
            ("0 0 0 L * ?", "2028-02-10T00:00:00Z", nil, "2028-02-29T00:00:00Z"),
            ("0 0 0 L * ?", "2026-04-30T00:00:00Z", nil, "2026-05-31T00:00:00Z"),
            ("0 0 0 L-2 * ?", "2026-01-01T00:00:00Z", nil, "2026-01-29T00:00:00Z"),
            ("0 0 0 LW * ?", "2026-05-01T00:00:00Z", nil, "2026-05-29T00:00:00Z"),                  // May 31 is a Sunday
            ("0 0 0 15W * ?", "2026-08-01T00:00:00Z", nil, "2026-08-14T00:00:00Z"),                 // Aug 15 is a Saturday
            ("0 0 0 1W * ?", "2026-07-31T00:00:00Z", nil, "2026-08-03T00:00:00Z"),                  // Aug 1 is a Saturday: Monday
            ("0 0 10 ? * 6#3", "2026-01-01T00:00:00Z", nil, "2026-01-16T10:00:00Z"),                // third Friday
            ("0 0 10 ? * FRI#5", "2026-02-01T00:00:00Z", nil, "2026-05-29T10:00:00Z"),              // February to April have four
            ("0 0 10 ? * 6L", "2026-01-01T00:00:00Z", nil, "2026-01-30T10:00:00Z"),                 // last Friday
            ("0 0 0 1 JAN,jul ?", "2026-02-01T00:00:00Z", nil, "2026-07-01T00:00:00Z"),
            ("0 0 0 1 1 ? 2030", "2026-06-01T00:00:00Z", nil, "2030-01-01T00:00:00Z"),              // year field
            ("0 0 0 1 1 ? 2030", "2030-01-01T00:00:00Z", nil, nil),                                 // none after it
            ("0 0 0 30 2 ?", "2026-01-01T00:00:00Z", nil, nil),                                     // never
            ("*/15 9-17 * * MON-FRI", "2026-01-02T17:50:00Z", nil, "2026-01-05T09:00:00Z"),         // cron, 5 fields
            ("0 0 * * 0", "2026-01-01T00:00:00Z", nil, "2026-01-04T00:00:00Z"),                     // cron Sunday 0
            ("0 0 * * 7", "2026-01-01T00:00:00Z", nil, "2026-01-04T00:00:00Z"),                     // and 7
            ("0 0 * * 1", "2026-01-01T00:00:00Z", nil, "2026-01-05T00:00:00Z"),                     // cron Monday 1
            ("0 0 0 ? * 2", "2026-01-01T00:00:00Z", nil, "2026-01-05T00:00:00Z"),                   // Quartz Monday 2
            // New York: 2026-03-08 02:00 EST jumps to 03:00 EDT; 02:30 fires once, at the gap's end.
            ("0 30 2 * * ?", "2026-03-07T12:00:00Z", "NY", "2026-03-08T07:00:00Z"),
            ("0 30 2 * * ?", "2026-03-08T07:00:00Z", "NY", "2026-03-09T06:30:00Z"),
            // 2026-11-01 02:00 EDT falls back to 01:00 EST; 01:30 fires once, at its first occurrence.
            ("0 30 1 * * ?", "2026-10-31T12:00:00Z", "NY", "2026-11-01T05:30:00Z"),
            ("0 30 1 * * ?", "2026-11-01T05:30:00Z", "NY", "2026-11-02T06:30:00Z"),
            ("0 0 * * * ?", "2026-11-01T05:00:00Z", "NY", "2026-11-01T07:00:00Z"),                 // 01:00 EDT, then 02:00 EST
        ]
        for (expression, after, zone, expected) in table {
            let cron = try CronExpression(expression)
            let next = cron.next(after: t(after), in: zone == "NY" ? newYork : utc)
            XCTAssertEqual(next, expected.map(t), "\(expression) after \(after)")
        }
    }

    func testMalformedExpressionsNameTheField() {
        let table: [(String, String)] = [
            ("", "expression"), ("0 0 12 * * ? 2026 junk", "expression"), ("0/0 * * * * ?", "seconds"),
            ("0 60 * * * ?", "minutes"), ("0 0 24 * * ?", "hours"), ("0 0 0 32 * ?", "day-of-month"),
            ("0 0 0 * 13 ?", "month"), ("0 0 0 1 * MON", "day-of-week"), ("0 0 0 ? * ?", "day-of-week"),
            ("0 0 0 ? * ?x", "day-of-week"), ("0 0 0 1 1 ? 1969", "year"), ("0 0 0 L-31 * ?", "day-of-month"),
            ("0 0 0 ? * 6#6", "day-of-week"), ("0 0 0 ? * 8", "day-of-week"), ("0 5-1 * * * ?", "minutes"),
            ("0 */61 * * * ?", "minutes"), ("0 1,,2 * * * ?", "minutes"), ("0 0 0 1 FOO ?", "month"), ("0 -1 * * * ?", "minutes"),
            ("* * * * 8", "day-of-week"), ("0 0 0 0W * ?", "day-of-month"),
        ]
        for (expression, field) in table {
            XCTAssertThrowsError(try CronExpression(expression), expression) { error in
                XCTAssertEqual((error as? CronExpression.ParseError)?.field, field, "\(expression): \(error)")
            }
        }
    }
}
