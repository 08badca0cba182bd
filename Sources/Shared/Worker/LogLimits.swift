import Foundation
import NIOConcurrencyHelpers

/// `--max-log-size`: a byte count with an optional binary unit, `512K`, `64M`, `1G` (also `KiB`,
/// `MB`..., all powers of 1024), or plain bytes. Nil for zero, a sign, a fraction or anything else.
public enum ByteSize {
    public static let defaultMaxLog: UInt64 = 1 << 30

    public static func parse(_ text: String) -> UInt64? {
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, digits.count <= 19, let n = UInt64(digits), n > 0 else { return nil }
        let shift: UInt64
        switch text.dropFirst(digits.count).uppercased() {
        case "", "B": shift = 0
        case "K", "KB", "KIB": shift = 10
        case "M", "MB", "MIB": shift = 20
        case "G", "GB", "GIB": shift = 30
        case "T", "TB", "TIB": shift = 40
        default: return nil
        }
        guard n <= UInt64.max >> shift else { return nil }
        return n << shift
    }
}

/// Whether this worker can write its task logs: the last failure to create or write one (a full
/// disk, a read-only or unwritable folder), until a log is made again. `/healthz` answers 503 with it.
public final class LogFolderHealth: Sendable {
    private let problem = NIOLockedValueBox<String?>(nil)

    public init() {}

    public func failed(_ why: String) { problem.withLockedValue { $0 = why } }
    public func wrote() { problem.withLockedValue { $0 = nil } }
    public var current: String? { problem.withLockedValue { $0 } }
}

/// A task's log could not be created or written: the attempt fails with this, never with the
/// task's exit status and an empty log.
public struct TaskLogError: Error, CustomStringConvertible {
    public var path: String
    public var errno: Int32
    /// Whether the log could not be created (else: written to).
    public var creating: Bool

    public var description: String {
        let why = String(cString: strerror(errno))
        if creating && errno == EEXIST {
            return "its log \(path) could not be created: something is already at that path (a file, FIFO or symbolic link planted there?); nothing was run"
        }
        return creating ? "its log \(path) could not be created: \(why)"
            : "its log \(path) could not be written: \(why); the task was killed"
    }

    /// A fault of the log folder (the disk, its mount, its permissions), not of one task.
    public var isFolderFault: Bool { errno != EEXIST }
}
