import Foundation

/// Figures a daemon reports in its heartbeat, read from /proc.
public enum ProcessStats {
    /// Resident set size of this process, in bytes.
    public static func residentBytes() -> Int64 {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let kb = line.split(separator: " ").compactMap { Int64($0) }.first ?? 0
            return kb * 1024
        }
        return 0
    }

    /// One-minute load average.
    public static func loadAverage() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return 0 }
        return Double(text.split(separator: " ").first ?? "0") ?? 0
    }

    public static func now() -> Double { Date().timeIntervalSince1970 }

    public static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "localhost" }
        return String(cString: buffer)
    }
}

// Here, not in Model/ServerIdentity.swift: the fuzz build links the model alone, without ProcessStats.
extension ServerIdentity {
    /// The machine's host name, for a daemon started without `--host`; a configuration error
    /// (exit 78) if it breaks the rule, rather than a daemon no master can send a kill request to.
    public static func defaultHost() throws -> String {
        let host = ProcessStats.hostName()
        if let problem = hostProblem(host) {
            throw InputError.configuration("this machine's host name \(Limits.quoted(host)) \(problem); give the daemon a host name with --host")
        }
        return host
    }
}
