import Foundation

/// One thing a DEPENDENT node waits for: the latest instance of `workflow` (or its task `task`)
/// that started in `window` has succeeded.
public struct DependencyItem: Codable, Sendable, Equatable {
    public var workflow: String
    public var task: String?
    public var window: DependencyWindow

    public init(workflow: String, task: String? = nil, window: DependencyWindow) {
        self.workflow = workflow
        self.task = task
        self.window = window
    }
}

/// A span of calendar days around the day of the instance's run time (the day
/// `system.biz.curdate` names), in the master's time zone, as DolphinScheduler's dependent
/// windows: an instance of the other workflow counts if it started inside the span.
public enum DependencyWindow: String, Codable, Sendable, CaseIterable {
    case today = "today", yesterday = "yesterday", last3Days = "last_3_days", last7Days = "last_7_days",
         thisWeek = "this_week", lastWeek = "last_week", thisMonth = "this_month", lastMonth = "last_month"

    /// The span as [from, to) in seconds since the epoch, for a run at `runTime`.
    public func interval(runTime: Double, timeZone: TimeZone = .current) -> (from: Double, to: Double) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        calendar.firstWeekday = 2  // weeks start on Monday (ISO 8601)
        let day = calendar.startOfDay(for: Date(timeIntervalSince1970: runTime))
        func days(_ n: Int, from d: Date = day) -> Date { calendar.date(byAdding: .day, value: n, to: d)! }
        let monday = calendar.dateInterval(of: .weekOfYear, for: day)!.start
        let firstOfMonth = calendar.dateInterval(of: .month, for: day)!.start
        let (from, to): (Date, Date)
        switch self {
        case .today: (from, to) = (day, days(1))
        case .yesterday: (from, to) = (days(-1), day)
        case .last3Days: (from, to) = (days(-3), day)
        case .last7Days: (from, to) = (days(-7), day)
        case .thisWeek: (from, to) = (monday, days(1))
        case .lastWeek: (from, to) = (days(-7, from: monday), monday)
        case .thisMonth: (from, to) = (firstOfMonth, days(1))
        case .lastMonth: (from, to) = (calendar.date(byAdding: .month, value: -1, to: firstOfMonth)!, firstOfMonth)
        }
        return (from.timeIntervalSince1970, to.timeIntervalSince1970)
    }
}
