/// Bounds on what input may hold, checked where input enters (workflow JSON, flags), so that
/// nothing a user writes can trap or stall a daemon further on.
public enum Limits {
    /// The longest duration anywhere (retry interval, timeout, grace, retention): 30 days.
    /// Larger values would overflow the clocks' integer milliseconds.
    public static let maxDurationSeconds: Double = 30 * 86_400
    /// The largest day offset of a `$[yyyyMMdd+N]` date expression: 100 years.
    public static let maxDayOffset = 36_500
    /// The longest worker group name; groups become znode names.
    public static let maxGroupNameLength = 64

    /// Why `group` cannot name a worker group, or nil if it can: 1 to 64 characters of letters,
    /// digits, `.`, `_` and `-`, and not `.` or `..` (it becomes a znode path component).
    public static func groupNameProblem(_ group: String) -> String? {
        guard !group.isEmpty, group.count <= maxGroupNameLength else {
            return "must be 1 to \(maxGroupNameLength) characters long"
        }
        guard group != ".", group != ".." else { return "must not be '.' or '..'" }
        guard group.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "._-".unicodeScalars.contains($0)) }) else {
            return "may hold only letters, digits, '.', '_' and '-'"
        }
        return nil
    }
}
