import Foundation
import XCTest

/// Every tool answers --help and ships a man page that mandoc lints clean.
final class DocumentationTests: XCTestCase {
    static let tools = [("ds-master", "8"), ("ds-worker", "8"), ("ds-submit", "1"), ("ds-failover", "1")]
    static let manDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("man")

    func run(_ executable: String, _ arguments: [String]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func testEveryToolAnswersHelp() throws {
        for (tool, _) in Self.tools {
            let (status, text) = try run(Binaries.url(tool).path, ["--help"])
            XCTAssertEqual(status, 0, tool)
            XCTAssertTrue(text.contains("USAGE: \(tool)"), "\(tool) --help: \(text)")
            XCTAssertTrue(text.contains("EXIT STATUS"), "\(tool) --help lacks the exit status table")
            XCTAssertTrue(text.contains("--zk"), "\(tool) --help lacks --zk")
            XCTAssertTrue(text.contains("--zk-auth <user:password>") && text.contains("DS_ZK_AUTH_FILE"),
                          "\(tool) --help lacks --zk-auth and DS_ZK_AUTH_FILE")
        }
    }

    func testManPagesExistAndLintClean() throws {
        for (tool, section) in Self.tools {
            let page = Self.manDirectory.appendingPathComponent("\(tool).\(section)")
            XCTAssertTrue(FileManager.default.fileExists(atPath: page.path), "missing \(page.path)")
            let (status, output) = try run("/usr/bin/mandoc", ["-Tlint", "-Wwarning", page.path])
            XCTAssertEqual(status, 0, "\(tool): \(output)")
            XCTAssertEqual(output, "", "\(tool): \(output)")
            let text = try String(contentsOf: page, encoding: .utf8)
            for section in ["ENVIRONMENT", "FILES", "EXIT STATUS", "EXAMPLES", "SEE ALSO"] {
                XCTAssertTrue(text.contains(".Sh \(section)"), "\(tool) man page lacks \(section)")
            }
            for entry in [".Op Fl -zk-auth", "Fl -zk-auth", ".It Ev DS_ZK_AUTH\n", ".It Ev DS_ZK_AUTH_FILE\n"] {
                XCTAssertTrue(text.contains(entry), "\(tool) man page lacks \(entry)")
            }
        }
    }
}
