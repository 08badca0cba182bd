import Foundation

/// What ds-schedule reads and prints: business dates, time zones, fire-time listings, schedules.
public enum ScheduleTool {
    /// Most dates one backfill starts (ten years of days).
    public static let maxBackfillDates = 3660
    /// Most fire times `next` lists.
    public static let maxListedFireTimes = 10_000

    /// A time zone by IANA name (`Europe/Berlin`, `UTC`), with the name to store; nil: the
    /// local one (`TZ`, else /etc/localtime). A name of the tz database only: Foundation reads
    /// `GMT+5` as five hours east, the opposite of POSIX's, and an unknown `TZ` as UTC.
    public static func zone(_ name: String?) throws -> (zone: TimeZone, name: String) {
        if let name {
            guard let zone = known(name) else {
                throw ControlRefusal(description: "--tz \(Limits.quoted(name)) is not a time zone of the tz database; give a name such as UTC or Europe/Berlin",
                                      exitStatus: .dataError)
            }
            return (zone, name)
        }
        if var tz = ProcessInfo.processInfo.environment["TZ"], !tz.isEmpty {
            if tz.hasPrefix(":") { tz.removeFirst() }
            guard let zone = known(tz) else {
                throw ControlRefusal(description: "TZ \(Limits.quoted(tz)) is not a time zone of the tz database: give --tz, such as --tz Europe/Berlin",
                                      exitStatus: .dataError)
            }
            return (zone, tz)
        }
        return (.current, TimeZone.current.identifier)
    }

    /// A zone of the tz database by name, or nil.
    static func known(_ name: String) -> TimeZone? {
        guard !name.isEmpty, name.utf8.count <= 64, !name.hasPrefix("/"),
              name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "/_+-".contains($0)) }),
              !name.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }),
              let zone = TimeZone(identifier: name) else { return nil }
        let database = "/usr/share/zoneinfo"
        if FileManager.default.fileExists(atPath: database) {
            var isFolder: ObjCBool = false
            return FileManager.default.fileExists(atPath: database + "/" + name, isDirectory: &isFolder) && !isFolder.boolValue ? zone : nil
        }
        return TimeZone.knownTimeZoneIdentifiers.contains(name) || name == "UTC" || name == "GMT" ? zone : nil
    }

    /// A cron expression, or a refusal naming the field (exit 65).
    /// Its fields are stored joined by one space.
    public static func cron(_ text: String) throws -> CronExpression {
        let normal = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
        do { return try CronExpression(normal) } catch let e as CronExpression.ParseError {
            throw ControlRefusal(description: "--cron \(Limits.quoted(text)): \(e)", exitStatus: .dataError)
        }
    }

    /// An instant given as a flag, in `zone` when written without one.
    public static func instant(_ text: String, flag: String, zone: TimeZone) throws -> Double {
        guard let t = TimeText.parse(text, now: ProcessStats.now(), zone: zone) else {
            throw ControlRefusal(description: "\(flag) \(Limits.quoted(text)) is not a time: give 2026-01-31, 2026-01-31T08:00:00, an ISO 8601 time with offset, or a Unix time",
                                  exitStatus: .usage)
        }
        return t
    }

    /// The business dates from `from` to `to` (inclusive, `yyyy-MM-dd` or `yyyyMMdd`), each with
    /// the schedule time it stands for: the start of the next day in `zone`, when a daily
    /// schedule at midnight fires for it. So `system.biz.date` (the day before the schedule
    /// time) is the business date itself, and `system.biz.curdate` the day after.
    public static func businessDates(from: String, to: String, zone: TimeZone) throws -> [(date: String, time: Double)] {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        func day(_ text: String, _ flag: String) throws -> DateComponents {
            let digits = text.replacingOccurrences(of: "-", with: "")
            let shapeOK = (text.count == 10 && text.split(separator: "-", omittingEmptySubsequences: false).map(\.count) == [4, 2, 2])
                || (text.count == 8 && !text.contains("-"))
            guard shapeOK, digits.count == 8, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber),
                  let y = Int(digits.prefix(4)), let m = Int(digits.dropFirst(4).prefix(2)), let d = Int(digits.suffix(2)),
                  (1970...2099).contains(y), (1...12).contains(m), d >= 1,
                  let days = calendar.range(of: .day, in: .month, for: calendar.date(from: DateComponents(year: y, month: m, day: 1))!),
                  days.contains(d) else {
                throw ControlRefusal(description: "\(flag) \(Limits.quoted(text)) is not a date from 1970 to 2099: give yyyy-MM-dd, such as 2026-01-31",
                                      exitStatus: .usage)
            }
            return DateComponents(year: y, month: m, day: d)
        }
        let first = try day(from, "--from"), last = try day(to, "--to")
        guard let start = calendar.date(from: first), let end = calendar.date(from: last) else {
            throw ControlRefusal(description: "--from/--to: dates that do not exist in \(zone.identifier)", exitStatus: .usage)
        }
        guard start <= end else {
            throw ControlRefusal(description: "--from \(from) is after --to \(to): give the earlier date first", exitStatus: .usage)
        }
        let count = (calendar.dateComponents([.day], from: calendar.startOfDay(for: start), to: calendar.startOfDay(for: end)).day ?? 0) + 1
        guard count <= maxBackfillDates else {
            throw ControlRefusal(description: "--from \(from) --to \(to) spans \(count) dates; one backfill starts at most \(maxBackfillDates)",
                                  exitStatus: .usage)
        }
        let f = DateFormatter()
        f.calendar = calendar
        f.timeZone = zone
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "yyyy-MM-dd"
        var dates: [(String, Double)] = []
        var current = calendar.startOfDay(for: start)
        for _ in 0..<count {
            let next = calendar.startOfDay(for: calendar.date(byAdding: .day, value: 1, to: current)!)
            dates.append((f.string(from: current), next.timeIntervalSince1970))
            current = next
        }
        return dates
    }
}

/// A schedule as ds-schedule prints it (`--json`: snake_case; times as ISO 8601 in the
/// schedule's zone, and as Unix seconds beside them).
public struct ScheduleView: Encodable, Sendable {
    public var id: Int64
    public var workflow: String
    public var cron: String
    public var timeZone: String
    public var state: String
    public var catchup: CatchUp
    public var priority: Priority?
    public var params: [String: String]
    public var start: String?
    public var end: String?
    public var nextFireTime: Double?
    public var nextFire: String?
    public var lastFireTime: Double?
    public var lastFire: String?
    public var createdAt: Double
    /// Why the masters do not fire it: a row stored by an older version whose cron this one
    /// refuses (Quartz's rules were tightened), or whose zone this host does not know.
    public var problem: String?

    /// The zone a listing shows a stored time in: its own; UTC (never this host's zone) for one
    /// this host does not know, still the right instant, as the offset is printed with it.
    static func shown(_ name: String?) -> TimeZone {
        (try? InstanceClock.zone(named: name)) ?? TimeZone(identifier: "UTC")!
    }

    public init(_ s: ScheduleRecord) {
        let zone = Self.shown(s.timeZone)
        id = s.id ?? 0
        (workflow, cron, timeZone, state, catchup, priority) = (s.workflow, s.cron, s.timeZone, s.state, s.catchup, s.priority)
        params = (try? JSONDecoder().decode([String: String].self, from: Data(s.paramsJson.utf8))) ?? [:]
        start = s.startTime.map { TimeText.iso($0, in: zone) }
        end = s.endTime.map { TimeText.iso($0, in: zone) }
        (nextFireTime, nextFire) = (s.nextFireTime, s.nextFireTime.map { TimeText.iso($0, in: zone) })
        (lastFireTime, lastFire) = (s.lastFireTime, s.lastFireTime.map { TimeText.iso($0, in: zone) })
        createdAt = s.createdAt
        do { _ = try s.calendar() } catch { problem = "\(error); it does not fire: remove it (ds-schedule remove \(id)) and add it again" }
    }
}

/// An instance a schedule or a backfill started, as ds-schedule prints it.
public struct ScheduledInstanceView: Encodable, Sendable {
    public var instanceId: Int64
    public var workflow: String
    public var state: WorkflowState
    public var scheduleTime: Double?
    public var scheduleFire: String?
    /// The `system.biz.date` the instance runs with (the day before its schedule time).
    public var bizDate: String?
    /// Seconds between the fire time and the instance's creation (a caught-up fire is late).
    public var late: Double?
    /// A missed fire time run under the schedule's catch-up policy.
    public var caughtUp: Bool

    public init(_ i: WorkflowInstanceRecord) {
        let zone = ScheduleView.shown(i.timeZone)
        (instanceId, workflow, state, scheduleTime) = (i.id ?? 0, i.name, i.state, i.scheduleTime)
        scheduleFire = i.scheduleTime.map { TimeText.iso($0, in: zone) }
        bizDate = i.scheduleTime.map { ParameterResolver(runTime: Date(timeIntervalSince1970: $0), timeZone: zone).builtIns["system.biz.date"] ?? "" }
        late = i.scheduleTime.map { max(0, i.submitTime - $0) }
        caughtUp = i.caughtUp ?? false
    }
}
