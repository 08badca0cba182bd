import Foundation

/// The exit statuses shared by every tool (sysexits.h); one table, the same in every man page.
public enum ExitStatus: Int32, Sendable, CaseIterable {
    case success = 0
    /// The thing asked about failed, e.g. the waited-for workflow ended FAILURE.
    case failure = 1
    case usage = 64
    case dataError = 65
    case noInput = 66
    case unavailable = 69
    case software = 70
    case tempFail = 75
    case config = 78
}

/// An error that knows its exit status.
public protocol ExitStatusProviding: Error {
    var exitStatus: ExitStatus { get }
}

extension ExitStatus {
    /// The status for any error a tool may end with.
    public static func of(_ error: Error) -> ExitStatus {
        if let e = error as? ExitStatusProviding { return e.exitStatus }
        if let e = error as? ZooKeeperError {
            switch e.cause {
            case .unavailable, .sessionExpired: return .unavailable
            case .connectionLoss, .operationTimeout: return .tempFail
            case .noAuth, .authFailed: return .config
            default: return .software
            }
        }
        return .software
    }
}

/// Bad input or configuration found before anything was done.
public enum InputError: Error, CustomStringConvertible, ExitStatusProviding {
    case missingFile(String)
    case unreadable(String, String)
    case configuration(String)
    /// A flag or variable whose value is of the wrong kind (exit 64).
    case usage(String)

    public var description: String {
        switch self {
        case .missingFile(let p): return "\(p): no such file; pass a workflow JSON file or - for standard input"
        case .unreadable(let p, let why): return "\(p): cannot read: \(why)"
        case .configuration(let why), .usage(let why): return why
        }
    }

    public var exitStatus: ExitStatus {
        switch self {
        case .missingFile, .unreadable: return .noInput
        case .configuration: return .config
        case .usage: return .usage
        }
    }
}
