import Foundation
import Logging

/// What every tool does on its way out: one line on stderr, the status from the one table.
public enum Tool {
    public static func fail(_ tool: String, _ error: Error) -> Never {
        let status = ExitStatus.of(error)
        FileHandle.standardError.write(Data("\(tool): \(error)\n".utf8))
        Foundation.exit(status.rawValue)
    }

    public static func exit(_ status: ExitStatus) -> Never { Foundation.exit(status.rawValue) }

    /// Runs a tool's work and exits with its status, or with the one line and status of its error.
    public static func run(_ tool: String, _ body: () async throws -> ExitStatus) async -> Never {
        do {
            exit(try await body())
        } catch {
            fail(tool, error)
        }
    }

    /// A tool of subcommands run without one: its help on stderr and exit 64 (a script that forgot
    /// the verb must not succeed having done nothing).
    public static func missingSubcommand(_ tool: String, help: String) -> Never {
        FileHandle.standardError.write(Data("\(help)\n\n\(tool): a subcommand is required (see the list above)\n".utf8))
        exit(.usage)
    }

    public static func warn(_ tool: String, _ message: String) {
        FileHandle.standardError.write(Data("\(tool): \(message)\n".utf8))
    }

    /// Log lines on stderr, at `level` (trace, debug, info, notice, warning, error, critical).
    public static func logger(_ label: String, level: String) throws -> Logger {
        guard let parsed = Logger.Level(rawValue: level.lowercased()) else {
            throw InputError.configuration("--log-level '\(level)' is not one of trace debug info notice warning error critical")
        }
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: label)
        logger.logLevel = parsed
        return logger
    }

    public static var stdoutIsTerminal: Bool { isatty(1) == 1 }
    public static var stderrIsTerminal: Bool { isatty(2) == 1 }
}

/// The exit-status table every tool prints in its `--help` (and every man page repeats).
public let exitStatusHelp = """
    EXIT STATUS: 0 success; 1 the thing asked about failed (e.g. the workflow ended FAILURE); \
    64 usage; 65 invalid input data; 66 input file missing; 69 service unavailable (ZooKeeper); \
    70 internal error; 75 temporary failure, retry; 78 configuration error.
    """

/// The version every tool prints for `--version`.
public let dsVersion = "0.9.0"
