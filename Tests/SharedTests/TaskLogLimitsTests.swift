import Foundation
@testable import Shared
import XCTest

/// `--max-log-size` values, and which stored log paths `ds-logs` may read on this machine.
final class TaskLogLimitsTests: XCTestCase {
    func testByteSizes() {
        XCTAssertEqual(ByteSize.parse("512K"), 512 << 10)
        XCTAssertEqual(ByteSize.parse("64M"), 64 << 20)
        XCTAssertEqual(ByteSize.parse("1G"), 1 << 30)
        XCTAssertEqual(ByteSize.parse("1g"), 1 << 30)
        XCTAssertEqual(ByteSize.parse("2GiB"), 2 << 30)
        XCTAssertEqual(ByteSize.parse("100"), 100)
        XCTAssertEqual(ByteSize.defaultMaxLog, 1 << 30)
        for bad in ["", "0", "0K", "-1", "+1", "1.5G", "K", "1X", " 1K", "1K ", "99999999999999999999", "16777216T"] {
            XCTAssertNil(ByteSize.parse(bad), bad)
        }
    }

    func testLocalLogPathsOnlyUnderTheRootForThatAttempt() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("ds-logroot-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/w:1/5", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: root + "/w:1/5/7.log", contents: Data("x\n".utf8))
        let outside = root + "-outside"
        try FileManager.default.createDirectory(atPath: outside + "/5", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: outside) }
        FileManager.default.createFile(atPath: outside + "/5/7.log", contents: Data("secret\n".utf8))
        try FileManager.default.createSymbolicLink(atPath: root + "/link", withDestinationPath: outside)
        func check(_ path: String, _ wf: Int64 = 5, _ id: Int64 = 7) -> String? {
            try? LocalLogPath.check(path, root: root, workflowInstance: wf, id: id).get()
        }
        XCTAssertNotNil(check(root + "/w:1/5/7.log"))
        XCTAssertNil(check("/etc/shadow"))
        XCTAssertNil(check("/etc/passwd", 5, 7))
        XCTAssertNil(check(root + "/w:1/5/7.log", 5, 8), "another attempt's log")
        XCTAssertNil(check(root + "/w:1/5/7.log", 6, 7), "another instance's log")
        XCTAssertNil(check(root + "/w:1/../w:1/5/7.log"), "..")
        XCTAssertNil(check(root + "/w:1/./5/7.log"), ".")
        XCTAssertNil(check(root + "/link/5/7.log"), "a link out of the root")
        XCTAssertNil(check("w:1/5/7.log"), "relative")
        XCTAssertNil(check(root + "/5/7.log"), "no worker folder")
        XCTAssertNil(try? LocalLogPath.check(root + "/w:1/5/7.log", root: root + "-missing", workflowInstance: 5, id: 7).get())
        // A FIFO where a log should be is not opened (it would block).
        XCTAssertEqual(mkfifo(root + "/w:1/5/8.log", 0o600), 0)
        XCTAssertNotNil(check(root + "/w:1/5/8.log", 5, 8))
        XCTAssertNil(LocalLogPath.open(root + "/w:1/5/8.log"))
        XCTAssertNotNil(LocalLogPath.open(root + "/w:1/5/7.log"))
    }
}
