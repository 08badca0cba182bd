import Foundation

/// Named counts, safe from any thread; printed as `name=count` pairs in the daemons' stop-time stats.
public final class Counters: @unchecked Sendable {
    private let lock = NSLock()
    private var counts: [String: Int] = [:]

    public init() {}

    public func count(_ name: String, by amount: Int = 1) {
        lock.withLock { counts[name, default: 0] += amount }
    }

    public func value(_ name: String) -> Int { lock.withLock { counts[name, default: 0] } }

    /// `a=1 b=2`, sorted by name, with `prefix` before each name.
    public func summary(prefix: String = "") -> String {
        lock.withLock { counts.sorted { $0.key < $1.key }.map { "\(prefix)\($0.key)=\($0.value)" }.joined(separator: " ") }
    }
}
