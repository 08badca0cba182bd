import Foundation

/// Durations as the workflow JSON and the flags write them: `500ms`, `10s`, `5m`, `2h`, `1d`, or plain seconds.
public enum DurationText {
    /// Seconds, finite and not negative, or nil when the text is not a duration.
    /// Seconds as a timeout is shown: `2s`, `1.5s`.
    public static func format(_ seconds: Double) -> String {
        // A queue item's timeout is input: no trapping conversion of an infinite or huge number.
        guard seconds.isFinite, seconds.magnitude < 1e12 else { return "\(seconds)s" }
        if seconds.magnitude < 1 && seconds != 0 { return String(format: "%gms", (seconds * 1000 * 1000).rounded() / 1000) }
        return seconds == seconds.rounded() ? "\(Int(seconds))s" : String(format: "%.1fs", seconds)
    }

    public static func parse(_ text: String) -> Double? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
        let t = text.trimmingCharacters(in: .whitespaces)
        // Decimal only: Double("0x10") and Double("inf") read forms no one means as a duration.
        guard t.allSatisfy({ $0.isASCII && ($0.isNumber || ".eE+-msdh".contains($0)) }) else { return nil }
        for (suffix, factor) in units where t.hasSuffix(suffix) {
            // Finite before and after the unit: 1e308h would be infinite seconds.
            guard let n = Double(t.dropLast(suffix.count)), n >= 0, (n * factor).isFinite else { return nil }
            return n * factor
        }
        guard let n = Double(t), n >= 0, n.isFinite else { return nil }
        return n
    }
}
