import Foundation
import XCTest

/// Every tool answers --help and ships a man page that mandoc lints clean and that describes every
/// subcommand.
final class DocumentationTests: XCTestCase {
    static let tools = [("ds-master", "8"), ("ds-worker", "8"), ("ds-submit", "1"), ("ds-failover", "1"), ("ds-instance", "1"), ("ds-queue", "1"), ("ds-logs", "1"), ("ds-pool", "1"), ("ds-schedule", "1"), ("ds-alert", "1"), ("ds-context", "1")]
    /// Subcommands that read only the contexts file: they take no ZooKeeper or database flags.
    static let contextFileOnly: Set<String> = ["ds-context list", "ds-context use"]
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

    /// The subcommands listed in the SUBCOMMANDS section of a --help text; none for a tool without.
    static func subcommands(inHelp text: String) -> [String] {
        guard let start = text.range(of: "\nSUBCOMMANDS:\n") else { return [] }
        // One "  name   abstract" line each, its abstract wrapped onto lines indented further; a
        // blank line ends the section.
        return text[start.upperBound...].split(separator: "\n", omittingEmptySubsequences: false)
            .prefix { !$0.isEmpty }
            .filter { $0.hasPrefix("  ") && !$0.hasPrefix("   ") }
            .compactMap { $0.split(separator: " ").first.map(String.init) }
    }

    func testEveryToolAnswersHelp() throws {
        for (tool, _) in Self.tools {
            let (status, text) = try run(Binaries.url(tool).path, ["--help"])
            XCTAssertEqual(status, 0, tool)
            XCTAssertTrue(text.contains("USAGE: \(tool)"), "\(tool) --help: \(text)")
            XCTAssertTrue(text.contains("EXIT STATUS"), "\(tool) --help lacks the exit status table")
            // A tool with subcommands takes the shared flags after the subcommand: each must list them.
            var helps = [(tool, text)]
            let subcommands = Self.subcommands(inHelp: text)
            if !subcommands.isEmpty {
                helps = try subcommands.map { subcommand in
                    let (status, text) = try run(Binaries.url(tool).path, [subcommand, "--help"])
                    XCTAssertEqual(status, 0, "\(tool) \(subcommand) --help: \(text)")
                    return ("\(tool) \(subcommand)", text)
                }
            }
            for (command, text) in helps where !Self.contextFileOnly.contains(command) {
                XCTAssertTrue(text.contains("--context <name>") && text.contains("DS_CONTEXT"), "\(command) --help lacks --context")
                XCTAssertTrue(text.contains("--zk"), "\(command) --help lacks --zk")
                XCTAssertTrue(text.contains("--zk-auth <user:password>") && text.contains("DS_ZK_AUTH_FILE"),
                              "\(command) --help lacks --zk-auth and DS_ZK_AUTH_FILE")
            }
        }
    }

    func testManPagesDescribeEverySubcommand() throws {
        var described = 0
        for (tool, section) in Self.tools {
            let (_, help) = try run(Binaries.url(tool).path, ["--help"])
            let page = try String(contentsOf: Self.manDirectory.appendingPathComponent("\(tool).\(section)"), encoding: .utf8)
            for subcommand in Self.subcommands(inHelp: help) {
                XCTAssertTrue(page.contains("\n.It Cm \(subcommand)"), "\(tool) man page does not describe \(subcommand) (.It Cm \(subcommand))")
                described += 1
            }
        }
        XCTAssertGreaterThan(described, 0, "no tool's --help listed a subcommand: is the SUBCOMMANDS section still parsed?")
    }

    func testManPagesExistAndLintClean() throws {
        for (tool, section) in Self.tools {
            let page = Self.manDirectory.appendingPathComponent("\(tool).\(section)")
            XCTAssertTrue(FileManager.default.fileExists(atPath: page.path), "missing \(page.path)")
            let (status, output) = try run("/usr/bin/mandoc", ["-Tlint", "-Wwarning", page.path])
            XCTAssertEqual(status, 0, "\(tool): \(output)")
            XCTAssertEqual(output, "", "\(tool): \(output)")
            let text = try String(contentsOf: page, encoding: .utf8)
            for section in ["COMPLETION", "ENVIRONMENT", "FILES", "EXIT STATUS", "EXAMPLES", "SEE ALSO"] {
                XCTAssertTrue(text.contains(".Sh \(section)"), "\(tool) man page lacks \(section)")
            }
            // Issue 25: every tool and daemon takes a context.
            for entry in [".Op Fl -zk-auth", "Fl -zk-auth", "Fl -generate-completion-script Cm bash | zsh", ".It Ev DS_ZK_AUTH\n", ".It Ev DS_ZK_AUTH_FILE\n", "Fl -context Ar name",
                          ".It Ev DS_CONTEXT\n", ".It Pa $XDG_CONFIG_HOME/ds/config\n"] {
                XCTAssertTrue(text.contains(entry), "\(tool) man page lacks \(entry)")
            }
            // Issue 23: every tool that opens the database says how to name a PostgreSQL one and its password.
            XCTAssertTrue(text.contains("Fl -db-pool"), "\(tool) man page lacks --db-pool")
            if tool != "ds-worker" {
                for entry in [".It Ev DS_DB\n", ".Li postgres:// Ns", ".It Ev DS_DB_PASSWORD_FILE\n", ".It Ev PGPASSWORD\n", ".It Ev DS_DB_POOL\n"] {
                    XCTAssertTrue(text.contains(entry), "\(tool) man page lacks \(entry)")
                }
            }
        }
    }

    /// The rendered pages read as written: no quotes nested by `Ql x Ns - Ns Ql y` ("‘JAN-‘DEC’’") and
    /// no dash glued to words after `Fl` in `Pq` ("(--limit, -default -20)"), in any page.
    func testManPagesRenderWithoutNestedQuotesOrStrayDashes() throws {
        for (tool, section) in Self.tools {
            let page = Self.manDirectory.appendingPathComponent("\(tool).\(section)").path
            let (status, output) = try run("/usr/bin/mandoc", ["-Tutf8", page])
            XCTAssertEqual(status, 0, tool)
            // mandoc overstrikes bold and underline (`X\bX`, `_\bX`): the plain text is what is
            // left without each character that a backspace follows. (Written as a raw string, the
            // pattern's `\u{8}` is not ICU's escape for a backspace, and the text came out empty:
            // nothing was checked.)
            let plain = output.replacingOccurrences(of: ".\u{8}", with: "", options: .regularExpression)
            XCTAssertGreaterThan(plain.count, 1000, "\(tool): the page renders to text")
            for bad in ["’’", "-‘", "‘‘"] {
                XCTAssertFalse(plain.contains(bad), "\(tool) renders '\(bad)'")
            }
            // A flag spelled `Fl -default` renders as one dash ("-default -20"); `--default-tenant` is fine.
            XCTAssertNil(plain.range(of: #"(^|[^-])-default([^-]|$)"#, options: .regularExpression), "\(tool) renders a one-dash '-default'")
        }
    }
}
