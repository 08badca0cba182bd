import Foundation

/// `CLOCK_MONOTONIC` in nanoseconds: one clock that the worker and its task supervisor (a
/// separate process on the same host) read alike, so a deadline computed by one is enforced
/// by the other without conversion. It does not jump with the wall clock.
public enum MonotonicTime {
    public static func nowNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
