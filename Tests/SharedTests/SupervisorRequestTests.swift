import Foundation
@testable import Shared
import XCTest

/// The worker's end of the task-supervisor protocol: what it sends is what the supervisor reads.
final class SupervisorRequestTests: XCTestCase {
    func testSpawnRequestHoldsTheStringsEachEndedByNUL() throws {
        let message = try TaskSupervisor.spawnRequest(id: 7, command: "echo hi", environment: ["B": "2", "A": "1=x"], logPath: "/l")
        var expected: [UInt8] = [UInt8(ascii: "S"), 7, 0, 0, 0, 0, 0, 0, 0]
        expected += Array("/l\0echo hi\0A=1=x\0B=2\0".utf8)
        XCTAssertEqual(message, expected)
    }

    /// A NUL would cut the string in the supervisor and turn the rest into one more variable:
    /// a task named `t\0LD_PRELOAD=/tmp/x.so` in a hand-written queue item would set LD_PRELOAD.
    func testStringsThatHoldNULAreRefused() {
        let cases: [(String, [String: String], String)] = [
            ("id\0X=1", [:], "/l"),
            ("id", ["DS_TASK_NAME": "t\0LD_PRELOAD=/tmp/x.so"], "/l"),
            ("id", ["A\0B": "1"], "/l"),
            ("id", ["A=B": "1"], "/l"),
            ("id", ["": "1"], "/l"),
            ("id", [:], "/l\0/etc/passwd"),
        ]
        for (command, environment, logPath) in cases {
            XCTAssertThrowsError(try TaskSupervisor.spawnRequest(id: 1, command: command, environment: environment, logPath: logPath),
                                 "\(command.debugDescription) \(environment) \(logPath.debugDescription)")
        }
    }

    func testRequestsLongerThanTheSupervisorReadsAreRefused() {
        let value = String(repeating: "x", count: 1 << 20)
        let environment = Dictionary(uniqueKeysWithValues: (0..<17).map { ("V\($0)", value) })
        XCTAssertThrowsError(try TaskSupervisor.spawnRequest(id: 1, command: "true", environment: environment, logPath: "/l")) {
            XCTAssertTrue("\($0)".contains("at most 16.0 MiB"), "\($0)")
        }
    }

    /// Supervisor options go before the environment, each beginning with the byte 0x01 (no
    /// environment name can: the worker checks them), so the supervisor tells them apart; a NUL
    /// in a value is refused (it would end the entry there).
    func testContainmentOptionsAreMarkedByOne() throws {
        let message = try TaskSupervisor.spawnRequest(id: 7, command: "c", environment: ["A": "1"], logPath: "/l",
                                                      options: [("cgroup", "/sys/fs/cgroup/x/task-7"), ("memory_max", "67108864"), ("cpu_quota", "150")])
        var expected: [UInt8] = [UInt8(ascii: "S"), 7, 0, 0, 0, 0, 0, 0, 0]
        expected += Array("/l\0c\0\u{01}cgroup=/sys/fs/cgroup/x/task-7\0\u{01}memory_max=67108864\0\u{01}cpu_quota=150\0A=1\0".utf8)
        XCTAssertEqual(message, expected)
        XCTAssertThrowsError(try TaskSupervisor.spawnRequest(id: 1, command: "c", environment: [:], logPath: "/l", options: [("cgroup", "/a\0b")]))
    }

    func testMemorySizes() {
        XCTAssertEqual(ResourceLimits.parseSize("256M"), 256 << 20)
        XCTAssertEqual(ResourceLimits.parseSize("1g"), 1 << 30)
        XCTAssertEqual(ResourceLimits.parseSize("512K"), 512 << 10)
        XCTAssertEqual(ResourceLimits.parseSize("64MiB"), 64 << 20)
        XCTAssertEqual(ResourceLimits.parseSize("1048576"), 1 << 20)
        for bad in ["", "M", "lots", "-1M", "1.5G", "99999999999999999999", "9999999999T", "1 M B"] {
            XCTAssertNil(ResourceLimits.parseSize(bad), bad)
        }
        XCTAssertNil(ResourceLimits.memoryProblem("4M"))
        XCTAssertNotNil(ResourceLimits.memoryProblem("1M"), "below 4M")
    }
}
