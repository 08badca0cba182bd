import Foundation

/// Test-only crash points: with `DS_FAULT_POINT=<name>` in its environment, a daemon kills
/// itself with SIGKILL when it reaches that point, as a power cut would. Unset, it costs one
/// comparison.
public enum FaultPoint {
    static let armed = ProcessInfo.processInfo.environment["DS_FAULT_POINT"]

    public static func hit(_ name: String) throws {
        guard armed == name else { return }
        FileHandle.standardError.write(Data("fault point \(name): SIGKILL\n".utf8))
        kill(getpid(), SIGKILL)
    }
}
