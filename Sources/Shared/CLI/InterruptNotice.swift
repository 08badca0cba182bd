import Foundation

/// What Ctrl-C (or SIGTERM) of a tool that follows an instance says: the instance runs on in the
/// cluster, and here is how to follow it again.
public enum InterruptNotice {
    /// The line the handler writes, prepared before it is installed: a signal handler may only
    /// make async-signal-safe calls, so it neither formats nor allocates. Never freed.
    nonisolated(unsafe) private static var line: UnsafeMutableBufferPointer<UInt8>?

    /// On SIGINT or SIGTERM, writes one line to stderr,
    /// `<tool>: interrupted; instance <ID> goes on. Follow it with: ds-instance wait <ID>`,
    /// and exits 130 or 143 (128 + the signal, as a shell reports it).
    ///
    /// The handlers are in place when this returns, so a signal that comes at once is neither lost
    /// nor the default death. A signal that was ignored when the tool started stays ignored: a
    /// script's shell ignores SIGINT for what it runs in the background (`ds-submit --wait w.json &`),
    /// so that Ctrl-C stops the script and leaves those. Call it once, before waiting.
    public static func install(tool: String, instanceID: Int64) {
        let text = Array("\(tool): interrupted; instance \(instanceID) goes on. Follow it with: ds-instance wait \(instanceID)\n".utf8)
        let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: text.count)
        _ = buffer.initialize(from: text)
        line = buffer
        for signo in [SIGINT, SIGTERM] {
            // Ignored while we look, so that a signal in between is dropped, never the default death.
            let previous = signal(signo, SIG_IGN)
            if let previous, unsafeBitCast(previous, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self) { continue }
            signal(signo, handler)
        }
    }

    /// Async-signal-safe: `write(2)` of the prepared line, then `_exit(2)`.
    private static let handler: @convention(c) (Int32) -> Void = { signo in
        if let line = InterruptNotice.line, let base = line.baseAddress {
            var written = 0
            while written < line.count {
                let n = write(STDERR_FILENO, base + written, line.count - written)
                if n > 0 { written += n } else if n < 0 && errno == EINTR { continue } else { break }
            }
        }
        _exit(128 + signo)
    }
}
