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
            ("0 0 0 ? * 6#6", "day-of-week"), ("0 0 0 ? * 8", "day-of-week"),
            ("0 */61 * * * ?", "minutes"), ("0 1,,2 * * * ?", "minutes"), ("0 0 0 1 FOO ?", "month"), ("0 -1 * * * ?", "minutes"),
            ("* * * * 8", "day-of-week"), ("0 0 0 0W * ?", "day-of-month"),
        ]
        for (expression, field) in table {
            XCTAssertThrowsError(try CronExpression(expression), expression) { error in
                XCTAssertEqual((error as? CronExpression.ParseError)?.field, field, "\(expression): \(error)")
            }
        }
    }

    /// Quartz's and Quartz.NET's own vectors: ranges that wrap (hours 17-0, days FRI-MON, seconds
    /// 58-4), L, L-n, LW, L-nW and nW inside day-of-month lists, with the fire times they name.
    func testQuartzVectorsThatFire() throws {
        let table: [(String, String, String)] = [
            ("0 0 0-07,17-0 ? * SAT", "2026-01-02T12:00:00Z", "2026-01-03T00:00:00Z"),          // Saturday 00:00
            ("0 0 0-07,17-0 ? * SAT", "2026-01-03T07:00:00Z", "2026-01-03T17:00:00Z"),
            ("0 0 0-07,17-0 ? * SAT", "2026-01-03T23:00:00Z", "2026-01-10T00:00:00Z"),
            ("0 0 12 ? * FRI-MON", "2026-01-06T00:00:00Z", "2026-01-09T12:00:00Z"),             // Tuesday: Friday next
            ("0 0 12 ? * FRI-MON", "2026-01-11T12:00:00Z", "2026-01-12T12:00:00Z"),             // Sunday: Monday next
            ("0 0 12 ? * 6-2", "2026-01-12T12:00:00Z", "2026-01-16T12:00:00Z"),                 // Monday: Friday next
            ("58-4 5 21 ? * MON-FRI", "2026-01-05T21:05:04Z", "2026-01-05T21:05:58Z"),
            ("58-4 5 21 ? * MON-FRI", "2026-01-05T21:05:59Z", "2026-01-06T21:05:00Z"),
            ("0 0 0 28-5 1 ?", "2026-01-05T00:00:00Z", "2026-01-28T00:00:00Z"),
            ("0 0 0 28-5 1 ?", "2026-01-31T00:00:00Z", "2027-01-01T00:00:00Z"),
            ("0 0 0 1 11-2 ?", "2026-02-01T00:00:00Z", "2026-11-01T00:00:00Z"),
            ("0 0 0 1 NOV-FEB ?", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"),
            ("0 0 22-2/2 * * ?", "2026-01-01T22:00:00Z", "2026-01-02T00:00:00Z"),               // 22, 0, 2: the step runs on
            ("0 0 22-2/2 * * ?", "2026-01-02T00:00:00Z", "2026-01-02T02:00:00Z"),
            ("0 0 22-2/2 * * ?", "2026-01-02T02:00:00Z", "2026-01-02T22:00:00Z"),
            ("0 0 * * 6-1", "2026-01-05T00:00:00Z", "2026-01-10T00:00:00Z"),                    // cron: Saturday to Monday
            ("0 0 * * FRI-MON", "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z"),
            ("0 15 10 1,L * ?", "2026-01-01T10:15:00Z", "2026-01-31T10:15:00Z"),
            ("0 15 10 1,L * ?", "2026-01-31T10:15:00Z", "2026-02-01T10:15:00Z"),
            ("0 15 10 15,L-2 * ? 2010", "2010-10-15T10:15:00Z", "2010-10-29T10:15:00Z"),
            ("0 15 10 6,15,LW * ? 2010", "2010-10-15T10:15:00Z", "2010-10-29T10:15:00Z"),       // Oct 31 2010 is a Sunday
            ("0 15 10 31,L-2 * ? 2010", "2010-10-01T00:00:00Z", "2010-10-29T10:15:00Z"),
            ("0 15 10 31,L-2 * ? 2010", "2010-10-29T10:15:00Z", "2010-10-31T10:15:00Z"),
            ("0 15 10 L-1W * ? 2010", "2010-10-01T00:00:00Z", "2010-10-29T10:15:00Z"),          // the 30th is a Saturday
            ("0 15 10 L-5W * ? 2010", "2010-10-01T00:00:00Z", "2010-10-26T10:15:00Z"),
            ("0 0 0 2W,16 * ?", "2026-04-30T00:00:00Z", "2026-05-01T00:00:00Z"),                // May 2 2026 is a Saturday
            ("0 0 0 2W,16 * ?", "2026-05-01T00:00:00Z", "2026-05-16T00:00:00Z"),
            ("0 0 12 * * MON", "2026-01-01T00:00:00Z", "2026-01-05T12:00:00Z"),                 // * beside a restricted day field
        ]
        for (expression, after, expected) in table {
            let cron = try CronExpression(expression)
            XCTAssertEqual(cron.next(after: t(after), in: utc), t(expected), "\(expression) after \(after)")
        }
    }

    /// What Quartz refuses is refused: both day fields *, a step longer than its field, a year
    /// range that wraps; and two last-day items in one list (Quartz.NET allows one).
    func testQuartzVectorsThatAreRefused() {
        let table: [(String, String, String)] = [
            ("0 0 * * * *", "day-of-week", "?"),
            ("0 0 12 * * * 2030", "day-of-week", "?"),
            ("0/60 * * * * ?", "seconds", "59"), ("0 0/60 * * * ?", "minutes", "59"), ("0 0 0/24 * * ?", "hours", "23"),
            ("0 0 0 1/32 * ?", "day-of-month", "31"), ("0 0 0 1 1/13 ?", "month", "12"), ("0 0 0 ? * 1/8", "day-of-week", "7"),
            ("0 0 0 1 1 ? 2030-2026", "year", "wrap"),
            ("0 0 0 L,L-2 * ?", "day-of-month", "one"),
            // Quartz allows one # item per field: a list of them is refused for that, not for its k.
            ("0 0 12 ? * 1#1,2#1", "day-of-week", "one # item per field"), ("0 0 12 ? * 2-3#1", "day-of-week", "stands alone"),
            ("0 0 * * * ? " + String(repeating: "2030,", count: 30_000) + "2030", "expression", "at most 1024"),
        ]
        for (expression, field, words) in table {
            XCTAssertThrowsError(try CronExpression(expression), expression) { error in
                XCTAssertEqual((error as? CronExpression.ParseError)?.field, field, "\(expression): \(error)")
                XCTAssertTrue("\(error)".contains(words), "\(expression): \(error)")
            }
        }
        // Classic cron reads * in both day fields as every day, as cron does.
        XCTAssertNoThrow(try CronExpression("* * * * *"))
        XCTAssertNoThrow(try CronExpression("0/59 0/23 * * * ?"))
    }
}
