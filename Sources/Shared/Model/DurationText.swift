import Foundation

/// Durations as the workflow JSON and the flags write them: `500ms`, `10s`, `5m`, `2h`, `1d`,
/// `1h30m`, or plain seconds.
public enum DurationText {
    /// Seconds as a timeout is shown: `2s`, `1.5s`.
    public static func format(_ seconds: Double) -> String {
        // A queue item's timeout is input: no trapping conversion of an infinite or huge number.
        guard seconds.isFinite, seconds.magnitude < 1e12 else { return "\(seconds)s" }
        if seconds.magnitude < 1 && seconds != 0 { return String(format: "%gms", (seconds * 1000 * 1000).rounded() / 1000) }
        return seconds == seconds.rounded() ? "\(Int(seconds))s" : String(format: "%.1fs", seconds)
    }

    /// The one duration grammar, for the workflow JSON and every flag: plain seconds (`90`, `1.5`),
    /// or one or more parts of a number and a unit, largest unit first and each once: `500ms`,
    /// `10s`, `5m`, `2h`, `1d`, `1h30m`, `1d12h`, `2m30.5s`. Nothing is trimmed, and there is no
    /// sign, exponent or hex (`" 5s"`, `"1e1s"`, `"-1s"` are not durations). At most
    /// `maxTextLength` characters. Seconds, finite; nil when the text is not a duration.
    public static func parse(_ text: String) -> Double? {
        guard !text.isEmpty, text.utf8.count <= maxTextLength else { return nil }
        let units: [(name: String, seconds: Double)] = [("d", 86400), ("h", 3600), ("m", 60), ("s", 1), ("ms", 0.001)]
        let bytes = Array(text.utf8)
        var i = 0, total = 0.0, nextUnit = 0, parts = 0
        func isDigit(_ b: UInt8) -> Bool { (0x30...0x39).contains(b) }
        while i < bytes.count {
            let start = i
            while i < bytes.count && isDigit(bytes[i]) { i += 1 }
            guard i > start else { return nil }
            if i < bytes.count && bytes[i] == UInt8(ascii: ".") {
                i += 1
                let fraction = i
                while i < bytes.count && isDigit(bytes[i]) { i += 1 }
                guard i > fraction else { return nil }
            }
            guard let n = Double(String(decoding: bytes[start..<i], as: UTF8.self)) else { return nil }
            if i == bytes.count && parts == 0 { return n.isFinite ? n : nil }  // plain seconds
            // The longest unit name that follows: "ms" before "m".
            guard let u = (nextUnit..<units.count).filter({ bytes[i...].starts(with: units[$0].name.utf8) })
                    .max(by: { units[$0].name.count < units[$1].name.count }) else { return nil }
            total += n * units[u].seconds
            i += units[u].name.utf8.count
            nextUnit = u + 1
            parts += 1
        }
        return total.isFinite ? total : nil
    }

    /// The longest text read as a duration: no duration anyone means is longer.
    public static let maxTextLength = 64
}
