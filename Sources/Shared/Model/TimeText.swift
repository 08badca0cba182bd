import Foundation

/// Instants as operators type them: a Unix time, an ISO 8601 date or date-time, or an age
/// ("2h": two hours before now).
public enum TimeText {
    /// `zone`: the zone of a date or date-time written without one (default: local time).
    public static func parse(_ text: String, now: Double, zone: TimeZone = .current) -> Double? {
        let t = text.trimmingCharacters(in: .whitespaces)
        guard !t.isEmpty, t.utf8.count <= 64 else { return nil }
        // A bare number is a Unix time in seconds and nothing else: out of range (a millisecond time
        // pasted from elsewhere) it is refused, not read as an age that lists everything.
        if let seconds = Double(t) { return seconds.isFinite && seconds >= 0 && seconds < 1e11 ? seconds : nil }
        if let age = DurationText.parse(t), age >= 0 { return now - age }
        let iso = ISO8601DateFormatter()
        for options: ISO8601DateFormatter.Options in [[.withInternetDateTime], [.withInternetDateTime, .withFractionalSeconds]] {
            iso.formatOptions = options
            if let d = iso.date(from: t) { return d.timeIntervalSince1970 }
        }
        // Without a zone: local time (or `zone`), as the tables print it.
        let local = DateFormatter()
        local.locale = Locale(identifier: "en_US_POSIX")
        local.timeZone = zone
        for format in ["yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd'T'HH:mm", "yyyy-MM-dd"] {
            local.dateFormat = format
            if let d = local.date(from: t) { return d.timeIntervalSince1970 }
        }
        return nil
    }

    /// An instant as ISO 8601 with its offset in `zone` (`2026-03-29T03:00:00+02:00`): what the
    /// schedule tools print, exact to the second and unambiguous in an overlap.
    public static func iso(_ t: Double, in zone: TimeZone = .current) -> String {
        let f = ISO8601DateFormatter()
        f.timeZone = zone
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: Date(timeIntervalSince1970: t.rounded(.down)))
    }

    /// An instant as RFC 3339 in UTC with milliseconds (`2026-12-05T08:00:00.123Z`): the times
    /// of JSON lines that are not a schedule's (whose zone goes with them).
    public static func utc(_ t: Double) -> String {
        let f = ISO8601DateFormatter()
        f.timeZone = TimeZone(identifier: "UTC")!
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: Date(timeIntervalSince1970: t))
    }
}
