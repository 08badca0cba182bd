import Foundation

/// Deadlines of task retries; one sleeping loop wakes the scheduler when the next is due.
final class RetryTimers: @unchecked Sendable {
    private let lock = NSLock()
    private var pending: [(at: Double, instance: Int64, task: String)] = []
    private let (changes, changed) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))

    func schedule(instance: Int64, task: String, at: Double) {
        lock.withLock { pending.append((at, instance, task)) }
        changed.yield()
    }

    func takeDue(now: Double) -> [(Int64, String)] {
        lock.withLock {
            let due = pending.filter { $0.at <= now }
            pending.removeAll { $0.at <= now }
            return due.map { ($0.instance, $0.task) }
        }
    }

    /// Calls `wake` whenever a deadline passes; runs until cancelled. While retries are pending
    /// it checks every 20 ms at most; with none pending it sleeps until one is scheduled.
    func run(_ wake: @escaping @Sendable () -> Void) async throws {
        var iterator = changes.makeAsyncIterator()
        while !Task.isCancelled {
            guard let next = lock.withLock({ pending.map(\.at).min() }) else {
                _ = await iterator.next()
                continue
            }
            let wait = next - ProcessStats.now()
            if wait <= 0 {
                wake()
                try await Task.sleep(for: .milliseconds(5))
            } else {
                try await Task.sleep(for: .milliseconds(Int(min(wait, 0.02) * 1000) + 1))
            }
        }
    }
}
