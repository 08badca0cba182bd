import Foundation

/// Coalescing wake-up signals for a daemon's event loop: watches and timers mark what is
/// dirty; the loop takes every mark at once, so a burst of watch events costs one pass.
public final class Wakeups<Kind: Hashable & Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var dirty: Set<Kind> = []
    private let continuation: AsyncStream<Void>.Continuation
    public let stream: AsyncStream<Void>

    public init() {
        (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    public func mark(_ kind: Kind) {
        lock.withLock { _ = dirty.insert(kind) }
        continuation.yield()
    }

    /// Everything marked since the last call.
    public func take() -> Set<Kind> {
        lock.withLock {
            defer { dirty.removeAll(keepingCapacity: true) }
            return dirty
        }
    }
}
