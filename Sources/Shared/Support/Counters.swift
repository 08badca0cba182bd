import Foundation
import Metrics

/// Named counts, safe from any thread; printed as `name=count` pairs in the daemons' stop-time stats.
/// Given a metric, each count is also a swift-metrics counter of that label, its name the value of
/// `dimension` (so `/metrics` shows them).
public final class Counters: @unchecked Sendable {
    private let lock = NSLock()
    private var counts: [String: Int] = [:]
    private let metric: (label: String, dimension: String)?
    private var handles: [String: Metrics.Counter] = [:]

    public init(metric: String? = nil, dimension: String = "kind") {
        self.metric = metric.map { ($0, dimension) }
    }

    public func count(_ name: String, by amount: Int = 1) {
        let handle: Metrics.Counter? = lock.withLock {
            counts[name, default: 0] += amount
            guard let metric else { return nil }
            if let h = handles[name] { return h }
            let h = Metrics.Counter(label: metric.label, dimensions: [(metric.dimension, name)])
            handles[name] = h
            return h
        }
        handle?.increment(by: amount)
    }

    public func value(_ name: String) -> Int { lock.withLock { counts[name, default: 0] } }

    /// `a=1 b=2`, sorted by name, with `prefix` before each name.
    public func summary(prefix: String = "") -> String {
        lock.withLock { counts.sorted { $0.key < $1.key }.map { "\(prefix)\($0.key)=\($0.value)" }.joined(separator: " ") }
    }
}
