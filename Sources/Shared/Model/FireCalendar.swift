import Foundation

/// The fire times of a schedule: a cron expression in a time zone, within an optional start and
/// end. The one place that says where fire times begin and end, for the store that fires them,
/// ds-schedule that lists and checks them, and the catch-up that looks back for the latest.
/// Both bounds are inclusive, as ds-schedule(1) says (--start and --end bound the fire times): a
/// start exactly on a fire time fires at the start, an end exactly on one includes it. Pure.
public struct FireCalendar: Sendable {
    public let cron: CronExpression
    public let zone: TimeZone
    public let start: Double?
    public let end: Double?

    public init(_ cron: CronExpression, zone: TimeZone, start: Double? = nil, end: Double? = nil) {
        (self.cron, self.zone, self.start, self.end) = (cron, zone, start, end)
    }

    /// The first fire time after `instant` (exclusive), not before the start, not after the end;
    /// nil if there is none (up to 2099).
    public func next(after instant: Double) -> Double? {
        // Just before the start, so that a fire time on the start itself is one.
        let from = start.map { max(instant, $0.nextDown) } ?? instant
        guard let t = cron.next(after: Date(timeIntervalSince1970: from), in: zone)?.timeIntervalSince1970 else { return nil }
        if let end, t > end { return nil }
        return t
    }

    /// The first fire time at or after `instant`, within the bounds.
    public func first(atOrAfter instant: Double) -> Double? { next(after: instant.nextDown) }

    /// At most `count` fire times after `instant` (exclusive), in order, within the bounds.
    public func times(after instant: Double, count: Int) -> [Double] {
        var times: [Double] = []
        var t = instant
        while times.count < count, let n = next(after: t) {
            times.append(n)
            t = n
        }
        return times
    }

    /// The latest fire time before `cutoff` and not before `first` (which is one): searched
    /// backwards in doubling spans, then by halving the span that holds it, so a week of missed
    /// every-second fires, or a dense window long ago, costs a few dozen steps, not 600,000.
    /// `next` counts the steps for a test; by default the calendar's own.
    public func latest(before cutoff: Double, notBefore first: Double, next: ((Double) -> Double?)? = nil) -> Double {
        let next = next ?? { self.next(after: $0) }
        // Invariant once found: a fire time in [low, high), none in [high, cutoff).
        var high = cutoff
        var span = 1.0
        var low = first
        while true {
            let start = max(first, cutoff - span)
            if let t = next(start.nextDown), t < high { low = start; break }
            if start == first { return first }
            high = start
            span *= 2
        }
        while high - low > 1 {
            let middle = (low + high) / 2
            if let t = next(middle.nextDown), t < high { low = middle } else { high = middle }
        }
        var latest = next(low.nextDown) ?? first
        while let t = next(latest), t < cutoff { latest = t }
        return latest
    }
}
