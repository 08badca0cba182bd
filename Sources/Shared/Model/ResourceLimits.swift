import Foundation

/// A task's resource limits (`memory_max`, `cpu_quota`), enforced by its worker's cgroups.
public enum ResourceLimits {
    /// The smallest and largest `memory_max`: below 4 MiB not even a shell starts.
    public static let memoryRange: ClosedRange<Int64> = 4 << 20 ... 1 << 50
    /// `cpu_quota` in percent of one core: 1 (a hundredth of a core) to 100000 (1000 cores);
    /// a worker clamps it to its own cores (a quota above them limits nothing).
    public static let cpuQuotaRange: ClosedRange<Int> = 1...100_000

    /// Bytes from `256M`, `1G`, `512K` or a plain number of bytes (suffixes are powers of 1024;
    /// `MiB`, `MB` are accepted as `M`); nil for anything else.
    public static func parseSize(_ text: String) -> Int64? {
        var digits = Substring(text.trimmingCharacters(in: .whitespaces))
        var unit: Int64 = 1
        let suffixes: [(String, Int64)] = [("KIB", 1 << 10), ("MIB", 1 << 20), ("GIB", 1 << 30), ("TIB", 1 << 40),
                                          ("KB", 1 << 10), ("MB", 1 << 20), ("GB", 1 << 30), ("TB", 1 << 40),
                                          ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("T", 1 << 40), ("B", 1)]
        for (suffix, size) in suffixes where digits.uppercased().hasSuffix(suffix) {
            digits = digits.dropLast(suffix.count)
            unit = size
            break
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int64(digits) else { return nil }
        let (bytes, overflow) = n.multipliedReportingOverflow(by: unit)
        return overflow ? nil : bytes
    }

    /// Why `text` is no `memory_max`, or nil.
    public static func memoryProblem(_ text: String) -> String? {
        guard let bytes = parseSize(text) else {
            return "\(Limits.quoted(text)) is not a size such as 256M, 1G or 512K"
        }
        if !memoryRange.contains(bytes) { return "\(Limits.quoted(text)) is outside 4M to 1024T" }
        return nil
    }
}
