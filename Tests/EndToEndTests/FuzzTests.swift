import Foundation
import XCTest

/// Issue 9: every test run fuzzes each target of `scripts/fuzz.sh` briefly, starting from the
/// corpus in `Fuzz/corpus`, which keeps every crash found so far as a regression input.
final class FuzzTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    func testFuzzTargetsFindNoCrashInTwelveSecondsEach() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [Self.root.appendingPathComponent("scripts/fuzz.sh").path, "12"]
        p.currentDirectoryURL = Self.root
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, "scripts/fuzz.sh 12 failed:\n\(output)")
        for target in ["workflow", "parameters", "queue-key", "supervisor-request"] {
            XCTAssertTrue(output.contains("  \(target) "), "no figures for \(target):\n\(output)")
        }
        if p.terminationStatus == 0 { print(output) }  // the figures, in the test log
    }
}
