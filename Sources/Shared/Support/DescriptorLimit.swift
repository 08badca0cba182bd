import Foundation
import NIOConcurrencyHelpers

/// The process's RLIMIT_NOFILE. A daemon raises its soft limit to the hard limit (a flood of
/// connections must meet the HTTP server's cap, not the descriptor limit); the soft limit it had
/// before is what its tasks get back (see the supervisor's `nofile` option): a task that loops
/// over every possible descriptor, or uses select(2), must not inherit a limit of a million.
public enum DescriptorLimit {
    private static let original = NIOLockedValueBox<UInt64?>(nil)

    /// Raises the soft limit to the hard limit; returns the soft limit now in force.
    @discardableResult
    public static func raise() -> UInt64 {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        original.withLockedValue { if $0 == nil { $0 = UInt64(limit.rlim_cur) } }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { return UInt64(raised.rlim_cur) }
        }
        return UInt64(limit.rlim_cur)
    }

    /// The soft limit tasks get: the one before `raise`, if it raised it; else nil (inherited as is).
    public static var forTasks: UInt64? {
        guard let before = original.withLockedValue({ $0 }) else { return nil }
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, UInt64(limit.rlim_cur) > before else { return nil }
        return before
    }
}
