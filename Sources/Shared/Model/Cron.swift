import Foundation

/// A cron expression: Quartz syntax (`sec min hour day-of-month month day-of-week [year]`, with
/// `?`, `L`, `L-n`, `LW`, `L-nW`, `nW`, `nL`, `n#k`, month and day names) or classic 5-field cron
/// (`min hour day-of-month month day-of-week`, Sunday 0 or 7). As in Quartz, a range may wrap
/// (hours `22-2` are 22, 23, 0, 1, 2; days `FRI-MON`), except in the year; a step is at most the
/// field's largest value (59 for seconds, 23 for hours, 31, 12, 7); a day-of-month list may mix
/// days with one of `L`, `L-n`, `LW`, `L-nW`, and with `nW` (`1,L`, `2W,16`), as Quartz.NET
/// reads them. One day field of a Quartz expression must be `?`, or `*` beside a restricted one
/// (`0 0 12 * * MON`: Mondays); `*` in both is refused, as Quartz refuses it. Fire times are wall-clock times in
/// a time zone: one that falls in a daylight-saving gap fires once, at the end of the gap; one in
/// an overlap fires once, at its first occurrence. Pure: no clock, no I/O.
public struct CronExpression: Sendable, Equatable {
    public let text: String
    let seconds: Set<Int>, minutes: Set<Int>, hours: Set<Int>, months: Set<Int>
    /// Nil: any year from 1970 to 2099.
    let years: Set<Int>?
    let dayOfMonth: DayOfMonth
    let dayOfWeek: DayOfWeek

    /// The last year a fire time is looked for (Quartz's bound).
    public static let lastYear = 2099

    enum DayOfMonth: Sendable, Equatable {
        case any
        /// The union of a list's items: plain days, `nW` days and at most one last-day item.
        case days(Set<Int>, nearestWeekday: Set<Int>, last: LastDay?)
    }

    /// `L` (offset 0), `L-n`, and with `weekday` `LW` and `L-nW`: the weekday nearest that day.
    struct LastDay: Sendable, Equatable {
        var offset: Int
        var weekday: Bool
    }

    enum DayOfWeek: Sendable, Equatable {
        case any
        /// 1 = Sunday ... 7 = Saturday.
        case days(Set<Int>)
        /// `nL`: the last weekday n of the month.
        case last(Int)
        /// `n#k`: the k-th weekday n of the month.
        case nth(Int, Int)
    }

    /// A field that cannot be read, named.
    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public var field: String
        public var message: String
        public var description: String { "field '\(field)': \(message)" }
    }

    /// The longest expression read: every minute and hour listed one by one is under 400 bytes, and
    /// a longer one was stored and echoed whole in every listing (125 KB seen).
    public static let maxLength = 1024

    public init(_ text: String) throws {
        guard text.utf8.count <= Self.maxLength else {
            throw ParseError(field: "expression", message: "is \(text.utf8.count) bytes; a cron expression may be at most \(Self.maxLength) (use ranges and steps, or several schedules)")
        }
        self.text = text
        let parts = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        let quartz: Bool
        let f: [String]
        switch parts.count {
        case 5:
            quartz = false
            f = ["0"] + parts
        case 6, 7:
            quartz = true
            f = parts
        default:
            throw ParseError(field: "expression", message: "has \(parts.count) fields; cron has 5 (min hour day-of-month month day-of-week), Quartz 6 or 7 (sec min hour day-of-month month day-of-week [year])")
        }
        seconds = try Self.values(f[0], field: "seconds", 0...59, wrap: 60)
        minutes = try Self.values(f[1], field: "minutes", 0...59, wrap: 60)
        hours = try Self.values(f[2], field: "hours", 0...23, wrap: 24)
        months = try Self.values(f[4], field: "month", 1...12, wrap: 12, names: Self.monthNames)
        years = f.count == 7 ? try Self.values(f[6], field: "year", 1970...Self.lastYear, wrap: nil) : nil
        dayOfMonth = try Self.dayOfMonth(f[3])
        dayOfWeek = try Self.dayOfWeek(f[5], quartz: quartz)
        if dayOfMonth != .any && dayOfWeek != .any {
            throw ParseError(field: "day-of-week", message: "day-of-month and day-of-week are both set; set one of them to ? (Quartz) or * (cron)")
        }
        if quartz && f[3] == "*" && f[5] == "*" {
            throw ParseError(field: "day-of-week", message: "* in both day fields; Quartz wants ? in one of them, such as 0 0 12 * * ? (every day)")
        }
        if quartz && f[3] == "?" && f[5] == "?" {
            throw ParseError(field: "day-of-week", message: "? may stand in one day field, not both")
        }
    }

    static let monthNames = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    static let dayNames = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]

    /// A list of `*`, `n`, `a-b`, `*/s`, `a/s`, `a-b/s` (names allowed where given) within `range`.
    /// A range whose end comes before its start wraps round a cycle of `wrap` values, as Quartz
    /// reads it (hours `22-2/2`: 22, 0, 2); nil: it may not wrap (the year). A step is at most
    /// the field's largest value, Quartz's bound (`0/60` seconds is refused).
    static func values(_ text: String, field: String, _ range: ClosedRange<Int>, wrap: Int?, names: [String] = [], nameBase: Int = 1,
                       map: (Int) -> Int = { $0 }) throws -> Set<Int> {
        var result: Set<Int> = []
        let maxStep = wrap == nil ? range.upperBound - range.lowerBound + 1 : range.upperBound
        for item in text.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
            guard !item.isEmpty else { throw ParseError(field: field, message: "an empty item in '\(text)'") }
            var body = item
            var step = 1
            if let slash = item.firstIndex(of: "/") {
                body = String(item[..<slash])
                let s = String(item[item.index(after: slash)...])
                guard let n = Int(s), s.allSatisfy(\.isASCII) else { throw ParseError(field: field, message: "'\(s)' is no step (a whole number) in '\(item)'") }
                guard n > 0 else { throw ParseError(field: field, message: "a step of \(n) in '\(item)'; steps are 1 or more") }
                guard n <= maxStep else {
                    throw ParseError(field: field, message: "a step of \(n) in '\(item)' is more than \(maxStep), the most this field takes")
                }
                step = n
            }
            func number(_ s: String) throws -> Int {
                if let i = names.firstIndex(of: s.uppercased()) { return map(i + nameBase) }
                guard !s.isEmpty, s.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(s) else {
                    throw ParseError(field: field, message: "'\(s)' is not a value\(names.isEmpty ? "" : " or a name (\(names.joined(separator: " ")))") in '\(item)'")
                }
                let v = map(n)
                guard range.contains(v) else { throw ParseError(field: field, message: "\(n) is out of range \(range.lowerBound)-\(range.upperBound) in '\(item)'") }
                return v
            }
            var low = range.lowerBound, high = range.upperBound
            if body == "*" {
                // every value
            } else if let dash = body.firstIndex(of: "-"), dash != body.startIndex {
                low = try number(String(body[..<dash]))
                high = try number(String(body[body.index(after: dash)...]))
                if low > high {
                    guard let wrap else {
                        throw ParseError(field: field, message: "the range '\(body)' ends before it starts; a \(field) range cannot wrap")
                    }
                    // Round the cycle: the values past the field's end count again from its start.
                    for i in stride(from: low, through: high + wrap, by: step) {
                        result.insert(range.lowerBound + (i - range.lowerBound) % wrap)
                    }
                    continue
                }
            } else {
                low = try number(body)
                if item.contains("/") { high = range.upperBound } else { high = low }
            }
            result.formUnion(stride(from: low, through: high, by: step))
        }
        return result
    }

    /// `*`, `?`, or a list of days, ranges and steps with `nW` items and at most one of `L`,
    /// `L-n`, `LW`, `L-nW` (Quartz.NET takes one; two are refused as there).
    static func dayOfMonth(_ text: String) throws -> DayOfMonth {
        let field = "day-of-month"
        if text == "*" || text == "?" { return .any }
        var days: Set<Int> = [], nearest: Set<Int> = []
        var last: LastDay?
        func whole(_ s: String) -> Int? { s.isEmpty || !s.allSatisfy({ $0.isASCII && $0.isNumber }) ? nil : Int(s) }
        for item in text.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
            if item.hasPrefix("L") {
                var rest = item.dropFirst()
                let weekday = rest.hasSuffix("W")
                if weekday { rest = rest.dropLast() }
                var offset = 0
                if !rest.isEmpty {
                    guard rest.hasPrefix("-"), let n = whole(String(rest.dropFirst())), (0...30).contains(n) else {
                        throw ParseError(field: field, message: "'\(item)': L-n takes n from 0 to 30 (L, L-n, LW, L-nW)")
                    }
                    offset = n
                }
                guard last == nil else {
                    throw ParseError(field: field, message: "'\(text)' has more than one of L, L-n, LW, L-nW; a list takes only one")
                }
                last = LastDay(offset: offset, weekday: weekday)
            } else if item.hasSuffix("W") {
                guard let n = whole(String(item.dropLast())), (1...31).contains(n) else {
                    throw ParseError(field: field, message: "'\(item)': nW takes one day n from 1 to 31")
                }
                nearest.insert(n)
            } else {
                days.formUnion(try values(item, field: field, 1...31, wrap: 31))
            }
        }
        return .days(days, nearestWeekday: nearest, last: last)
    }

    static func dayOfWeek(_ text: String, quartz: Bool) throws -> DayOfWeek {
        let field = "day-of-week"
        // Quartz counts 1 (SUN) to 7 (SAT); cron 0 or 7 (Sunday) to 6 (Saturday).
        let map: (Int) -> Int = quartz ? { $0 } : { $0 == 7 ? 1 : $0 + 1 }
        let range = quartz ? 1...7 : 0...7
        func one(_ s: String) throws -> Int {
            if let i = dayNames.firstIndex(of: s.uppercased()) { return i + 1 }
            guard let n = Int(s), s.allSatisfy({ $0.isASCII && $0.isNumber }), range.contains(n) else {
                throw ParseError(field: field, message: "'\(s)' is not a day (\(range.lowerBound)-\(range.upperBound) or \(dayNames.joined(separator: " "))) in '\(text)'")
            }
            return map(n)
        }
        switch text {
        case "*", "?": return .any
        case "L": return .days([7])  // Quartz: L alone is the last day of the week, Saturday
        default: break
        }
        if let hash = text.firstIndex(of: "#") {
            // Quartz takes one n#k item alone in the field, not in a list or with a range.
            guard !text.contains(","), !text.contains("-"), !text.contains("/") else {
                throw ParseError(field: field, message: "'\(text)': n#k stands alone in day-of-week (Quartz allows one # item per field, not a list); use one schedule for each")
            }
            let k = String(text[text.index(after: hash)...])
            guard let n = Int(k), k.allSatisfy({ $0.isASCII && $0.isNumber }), (1...5).contains(n) else {
                throw ParseError(field: field, message: "'\(text)': n#k takes k from 1 to 5")
            }
            return .nth(try one(String(text[..<hash])), n)
        }
        if text.count > 1 && text.hasSuffix("L") { return .last(try one(String(text.dropLast()))) }
        let inCron = try values(text, field: field, range, wrap: 7, names: dayNames, nameBase: quartz ? 1 : 0, map: { $0 })
        return .days(Set(inCron.map { quartz ? $0 : ($0 == 7 ? 1 : $0 + 1) }))
    }

    // MARK: Fire times

    /// The first fire time strictly after `instant`, in `zone`; nil if there is none up to 2099.
    public func next(after instant: Date, in zone: TimeZone) -> Date? {
        var utc = Calendar(identifier: .gregorian)
        utc.timeZone = TimeZone(identifier: "UTC")!
        // Naive wall-clock times are handled as UTC dates: no gaps, no overlaps.
        let wall = instant.addingTimeInterval(TimeInterval(zone.secondsFromGMT(for: instant)))
        var c = utc.dateComponents([.year, .month, .day, .hour, .minute, .second], from: wall)
        // From the wall clock of `instant`: in an overlap's second pass, candidates map to their
        // first occurrence (earlier than `instant`) and are passed over until the overlap ends.
        var from = (c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
        if from.0 < 1970 { from = (1970, 1, 1, 0, 0, 0) }
        var guardCount = 0
        var candidate = nextWall(from: from, inclusive: true, utc)
        while let w = candidate, guardCount < 100_000 {
            guardCount += 1
            c = DateComponents(year: w.0, month: w.1, day: w.2, hour: w.3, minute: w.4, second: w.5)
            let naive = utc.date(from: c)!
            if let fire = Self.instant(ofWall: naive, in: zone), fire > instant { return fire }
            candidate = nextWall(from: w, inclusive: false, utc)
        }
        return nil
    }

    /// The instant a wall-clock time names in `zone`: the earlier one in an overlap, the end of the
    /// gap for one that does not exist.
    static func instant(ofWall naive: Date, in zone: TimeZone) -> Date? {
        let offsets = Set([-86_400.0, 0, 86_400].map { zone.secondsFromGMT(for: naive.addingTimeInterval($0)) })
        let valid = offsets.map { naive.addingTimeInterval(TimeInterval(-$0)) }.filter { i in
            zone.secondsFromGMT(for: i) == Int(naive.timeIntervalSince(i))
        }
        if let earliest = valid.min() { return earliest }
        let before = offsets.map { naive.addingTimeInterval(TimeInterval(-$0)) }.min()!
        return zone.nextDaylightSavingTimeTransition(after: before.addingTimeInterval(-1))
    }

    typealias Wall = (Int, Int, Int, Int, Int, Int)

    /// The next wall-clock time (year, month, day, hour, minute, second) that matches, at or
    /// after (`inclusive`) or after `w`.
    func nextWall(from w: Wall, inclusive: Bool, _ utc: Calendar) -> Wall? {
        var (y, mo, d, h, mi, s) = w
        if !inclusive {
            s += 1
        }
        func normalise() {
            if s > 59 { s = 0; mi += 1 }
            if mi > 59 { mi = 0; h += 1 }
            if h > 23 { h = 0; d += 1 }
            if d > Self.daysIn(y, mo, utc) { d = 1; mo += 1 }
            if mo > 12 { mo = 1; y += 1 }
        }
        normalise()
        while y <= Self.lastYear {
            if let years, !years.contains(y) {
                guard let ny = years.filter({ $0 > y }).min() else { return nil }
                (y, mo, d, h, mi, s) = (ny, 1, 1, 0, 0, 0)
                continue
            }
            guard months.contains(mo) else {
                if let nm = months.filter({ $0 > mo }).min() { (mo, d, h, mi, s) = (nm, 1, 0, 0, 0) } else { (y, mo, d, h, mi, s) = (y + 1, 1, 1, 0, 0, 0) }
                continue
            }
            let days = matchingDays(y, mo, utc)
            guard days.contains(d) else {
                if let nd = days.filter({ $0 > d }).min() { (d, h, mi, s) = (nd, 0, 0, 0) } else { (d, h, mi, s) = (1, 0, 0, 0); mo += 1; normalise() }
                continue
            }
            guard hours.contains(h) else {
                if let nh = hours.filter({ $0 > h }).min() { (h, mi, s) = (nh, 0, 0) } else { (h, mi, s) = (0, 0, 0); d += 1; normalise() }
                continue
            }
            guard minutes.contains(mi) else {
                if let nm = minutes.filter({ $0 > mi }).min() { (mi, s) = (nm, 0) } else { (mi, s) = (0, 0); h += 1; normalise() }
                continue
            }
            guard seconds.contains(s) else {
                if let ns = seconds.filter({ $0 > s }).min() { s = ns } else { s = 0; mi += 1; normalise() }
                continue
            }
            return (y, mo, d, h, mi, s)
        }
        return nil
    }

    static func daysIn(_ y: Int, _ mo: Int, _ utc: Calendar) -> Int {
        utc.range(of: .day, in: .month, for: utc.date(from: DateComponents(year: y, month: mo, day: 1))!)!.count
    }

    /// The days of month `mo` of year `y` the day fields allow.
    func matchingDays(_ y: Int, _ mo: Int, _ utc: Calendar) -> Set<Int> {
        let count = Self.daysIn(y, mo, utc)
        func weekday(_ d: Int) -> Int { utc.component(.weekday, from: utc.date(from: DateComponents(year: y, month: mo, day: d))!) }
        func isWeekday(_ d: Int) -> Bool { (2...6).contains(weekday(d)) }
        // Saturday: the Friday before, unless that leaves the month; Sunday: the Monday after, likewise.
        func nearestWeekday(_ n: Int) -> Int {
            if isWeekday(n) { return n }
            if weekday(n) == 7 { return n > 1 ? n - 1 : n + 2 }
            return n < count ? n + 1 : n - 2
        }
        switch (dayOfMonth, dayOfWeek) {
        case (.days(let set, let nearest, let last), _):
            var result = set.filter { $0 <= count }
            result.formUnion(nearest.filter { $0 <= count }.map(nearestWeekday))
            if let last, count - last.offset >= 1 {
                result.insert(last.weekday ? nearestWeekday(count - last.offset) : count - last.offset)
            }
            return result
        case (.any, .any): return Set(1...count)
        case (.any, .days(let set)): return Set((1...count).filter { set.contains(weekday($0)) })
        case (.any, .last(let day)): return [(1...count).reversed().first { weekday($0) == day }!]
        case (.any, .nth(let day, let k)):
            let matches = (1...count).filter { weekday($0) == day }
            return k <= matches.count ? [matches[k - 1]] : []
        }
    }
}
