import Foundation
import XCTest

/// Issue 25, item 7: scripts/install.sh installs the built binaries, the man pages and the bash
/// and zsh completions under a PREFIX; here from the debug build the tests run (DS_BUILD_DIR).
final class InstallScriptTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("ds-install-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(at: scratch)
        super.tearDown()
    }

    /// Runs a program to its end: status, stdout and stderr.
    func run(_ program: String, _ arguments: [String], environment extra: [String: String] = [:]) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: program)
        p.arguments = arguments
        p.environment = ProcessInfo.processInfo.environment.merging(extra) { $1 }
        p.currentDirectoryURL = scratch
        let out = scratch.appendingPathComponent("out-\(UUID().uuidString)"), err = scratch.appendingPathComponent("err-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        p.standardOutput = try FileHandle(forWritingTo: out)
        p.standardError = try FileHandle(forWritingTo: err)
        p.standardInput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return (p.terminationStatus, try String(contentsOf: out, encoding: .utf8), try String(contentsOf: err, encoding: .utf8))
    }

    func install(_ arguments: [String], build: String = Binaries.directory.path) throws -> (status: Int32, out: String, err: String) {
        try run(Self.root.appendingPathComponent("scripts/install.sh").path, arguments, environment: ["DS_BUILD_DIR": build])
    }

    func testInstallsBinariesManPagesAndCompletions() throws {
        let prefix = scratch.appendingPathComponent("prefix with space").path
        let result = try install([prefix + "/"])
        XCTAssertEqual(result.status, 0, result.err)
        let files = FileManager.default
        for (tool, section) in DocumentationTests.tools {
            XCTAssertTrue(files.isExecutableFile(atPath: "\(prefix)/bin/\(tool)"), "bin/\(tool)")
            let page = "\(prefix)/share/man/man\(section)/\(tool).\(section)"
            XCTAssertTrue(files.fileExists(atPath: page), page)
            let bash = "\(prefix)/share/bash-completion/completions/\(tool)", zsh = "\(prefix)/share/zsh/site-functions/_\(tool)"
            XCTAssertGreaterThan((try? files.attributesOfItem(atPath: bash)[.size] as? Int) ?? 0, 0, bash)
            XCTAssertGreaterThan((try? files.attributesOfItem(atPath: zsh)[.size] as? Int) ?? 0, 0, zsh)
            // bash reads it and registers the tool's completion.
            let checked = try run("/bin/bash", ["-c", "set -e; bash -n \"$1\"; source \"$1\"; complete -p \(tool)", "-", bash])
            XCTAssertEqual(checked.status, 0, "\(tool): \(checked.err)")
            XCTAssertTrue(checked.out.contains(tool), "\(tool): \(checked.out)")
            if files.isExecutableFile(atPath: "/usr/bin/zsh") || files.isExecutableFile(atPath: "/bin/zsh") {
                let zshChecked = try run("/usr/bin/env", ["zsh", "-n", zsh])
                XCTAssertEqual(zshChecked.status, 0, "\(tool): \(zshChecked.err)")
            } else {
                XCTAssertTrue(try String(contentsOfFile: zsh, encoding: .utf8).hasPrefix("#compdef \(tool)"), "\(tool)'s zsh completion")
            }
        }
        // ds-worker starts the task-supervisor beside its own executable.
        XCTAssertTrue(files.isExecutableFile(atPath: "\(prefix)/bin/task-supervisor"))
        let help = try run("\(prefix)/bin/ds-submit", ["--help"])
        XCTAssertEqual(help.status, 0, help.err)
        XCTAssertTrue(help.out.contains("USAGE: ds-submit"), help.out)
        // The installed pages render, also as man finds them under the prefix.
        let rendered = try run("/usr/bin/mandoc", ["-Tutf8", "\(prefix)/share/man/man1/ds-alert.1"])
        XCTAssertEqual(rendered.status, 0, rendered.err)
        let plain = rendered.out.replacingOccurrences(of: ".\u{8}", with: "", options: .regularExpression)
        XCTAssertTrue(plain.contains("COMPLETION") && plain.contains("--generate-completion-script"), plain)
        if files.isExecutableFile(atPath: "/usr/bin/man") {
            let man = try run("/usr/bin/man", ["-l", "\(prefix)/share/man/man8/ds-worker.8"], environment: ["MANPAGER": "cat", "PAGER": "cat"])
            XCTAssertEqual(man.status, 0, man.err)
            XCTAssertTrue(man.out.contains("ds-worker"), man.out)
        }
    }

    func testRefusesAnEmptyOrRelativePrefixAndAnIncompleteBuild() throws {
        for (prefix, says) in [("", "PREFIX is empty"), ("relative/dir", "PREFIX 'relative/dir' is relative"), ("/tmp/a\nb", "control character")] {
            let result = try install([prefix])
            XCTAssertEqual(result.status, 64, "\(prefix): \(result.err)")
            XCTAssertTrue(result.err.contains(says), "\(prefix): \(result.err)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: scratch.appendingPathComponent("relative").path), "nothing written")
        XCTAssertEqual(try install(["/a", "/b"]).status, 64)
        // A build without task-supervisor: refused before anything is written, naming it.
        let partial = scratch.appendingPathComponent("partial-build")
        try FileManager.default.createDirectory(at: partial, withIntermediateDirectories: true)
        for (tool, _) in DocumentationTests.tools {
            try FileManager.default.createSymbolicLink(at: partial.appendingPathComponent(tool), withDestinationURL: Binaries.url(tool))
        }
        let prefix = scratch.appendingPathComponent("p").path
        let result = try install([prefix], build: partial.path)
        XCTAssertEqual(result.status, 66, result.err)
        XCTAssertTrue(result.err.contains("task-supervisor is missing"), result.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: prefix), "nothing written")
    }
}
