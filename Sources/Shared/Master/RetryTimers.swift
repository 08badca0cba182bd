import Foundation

/// Deadlines of task retries (keyed by task name).
typealias RetryTimers = DeadlineTimers<String>

/// What a timeout timer watches: an attempt (by task-instance id), or a run of an instance.
enum TimeoutKey: Sendable, Hashable {
    case task(id: Int64)
    case workflow(run: Int)
}

/// Deadlines, each of an instance; one sleeping loop wakes the scheduler when the next is due.
final class DeadlineTimers<Key: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var pending: [(at: Double, instance: Int64, key: Key)] = []
    private let (changes, changed) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    /// The sleep until the next deadline; cut short when an earlier deadline is scheduled.
    private var sleeper: (until: Double, task: Task<Void, Never>)?

    func schedule(instance: Int64, _ key: Key, at: Double) {
        let interrupted = lock.withLock { () -> Task<Void, Never>? in
            pending.append((at, instance, key))
            guard let sleeper, at < sleeper.until else { return nil }
            return sleeper.task
        }
        interrupted?.cancel()
        changed.yield()
    }

    func takeDue(now: Double) -> [(Int64, Key)] {
        lock.withLock {
            let due = pending.filter { $0.at <= now }
            pending.removeAll { $0.at <= now }
            return due.map { ($0.instance, $0.key) }
        }
    }

    /// Drops the timers of instances this master no longer runs from memory.
    func cancel(instances: Set<Int64>) {
        lock.withLock { pending.removeAll { instances.contains($0.instance) } }
    }

    var count: Int { lock.withLock { pending.count } }

    /// Calls `wake` whenever a deadline passes; runs until cancelled. It sleeps until the next
    /// deadline, or until a timer is scheduled (which may be earlier); never in a polling loop.
    func run(_ wake: @escaping @Sendable () -> Void) async throws {
        var iterator = changes.makeAsyncIterator()
        while !Task.isCancelled {
            // The next deadline and the sleep until it are set under one lock, so that a timer
            // scheduled in between either is seen here or cuts the sleep short.
            let plan = lock.withLock { () -> (due: Bool, nap: Task<Void, Never>?)? in
                guard let next = pending.map(\.at).min() else { return nil }
                let wait = next - ProcessStats.now()
                if wait <= 0 { return (true, nil) }
                // Bounded so that a deadline far away (a retry interval of days) cannot overflow the clock.
                let sleep = Duration.milliseconds(Int64(min(wait, 86_400) * 1000) + 1)
                let nap = Task<Void, Never> { try? await Task.sleep(for: sleep) }
                sleeper = (next, nap)
                return (false, nap)
            }
            guard let plan else {
                _ = await iterator.next()
                continue
            }
            if plan.due {
                wake()
                // The scheduler takes the due timers; give it a moment before looking again.
                try await Task.sleep(for: .milliseconds(5))
            } else if let nap = plan.nap {
                await withTaskCancellationHandler { await nap.value } onCancel: { nap.cancel() }
                lock.withLock { sleeper = nil }
            }
        }
    }
}
