import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest

/// `ds-submit --dry-run --dot` prints DOT that Graphviz's own `dot` accepts and draws with every
/// task name as written, whatever the names hold. A dry run connects to nothing: no ZooKeeper here.
final class DotEndToEndTests: XCTestCase {
    static let dot = "/usr/bin/dot"
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ds-dot-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDown() {
        if let directory { try? FileManager.default.removeItem(at: directory) }
        super.tearDown()
    }

    /// Runs a program to completion (killed by pid after a generous deadline); stdout and stderr
    /// go through files, so nothing blocks on a pipe.
    func run(_ executable: String, _ arguments: [String], stdin: URL? = nil) throws -> ToolRun {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        // Should a dry run ever touch its state, it touches this test's folder only.
        environment["DS_HOME"] = directory.path
        environment["DS_DB"] = directory.appendingPathComponent("ds.db").path
        environment["DS_ZK"] = "127.0.0.1:1"
        p.environment = environment
        let id = UUID().uuidString
        let out = directory.appendingPathComponent("\(id).out"), err = directory.appendingPathComponent("\(id).err")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        p.standardOutput = try FileHandle(forWritingTo: out)
        p.standardError = try FileHandle(forWritingTo: err)
        p.standardInput = try stdin.map { try FileHandle(forReadingFrom: $0) } ?? FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(120)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            XCTFail("\(executable) \(arguments) did not finish within 120s")
        }
        p.waitUntilExit()
        return ToolRun(status: p.terminationStatus, stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
                       stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
    }

    /// A workflow file of `tasks` (name, dependencies), encoded by JSONSerialization so that the
    /// names reach ds-submit exactly.
    func workflowFile(name: String, _ tasks: [(String, [String])]) throws -> String {
        let object: [String: Any] = ["name": name, "tasks": tasks.map { ["name": $0.0, "command": "true", "deps": $0.1] }]
        let url = directory.appendingPathComponent("\(UUID().uuidString).json")
        try JSONSerialization.data(withJSONObject: object, options: [.withoutEscapingSlashes]).write(to: url)
        return url.path
    }

    /// `ds-submit --dry-run --dot` of the file, drawn by `dot -Tsvg`; the SVG.
    func drawn(_ workflow: String) throws -> String {
        let submit = try run(Binaries.url("ds-submit").path, ["--dry-run", "--dot", workflow])
        guard submit.status == 0 else { throw RunFailure(description: "ds-submit exited \(submit.status): \(submit.stderr)") }
        XCTAssertTrue(submit.stdout.hasPrefix("digraph "), submit.stdout)
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.appendingPathComponent("ds.db").path), "a dry run created the database")
        guard FileManager.default.isExecutableFile(atPath: Self.dot) else {
            throw RunFailure(description: "\(Self.dot) is missing: install graphviz (scripts/install-deps.sh does)")
        }
        let dotFile = directory.appendingPathComponent("\(UUID().uuidString).dot")
        try submit.stdout.write(to: dotFile, atomically: true, encoding: .utf8)
        let svg = try run(Self.dot, ["-Tsvg"], stdin: dotFile)
        XCTAssertEqual(svg.status, 0, "dot refused the output:\n\(svg.stderr)\n\(submit.stdout)")
        XCTAssertEqual(svg.stderr, "", "dot warned about the output:\n\(submit.stdout)")
        XCTAssertTrue(svg.stdout.contains("<svg"), svg.stdout)
        return svg.stdout
    }

    /// The text of every `<text>` element, as an XML parser reads it (entities decoded); Graphviz
    /// writes the second of two spaces as a no-break space, read back here as a space.
    func texts(ofSVG svg: String) throws -> [String] {
        final class Collector: NSObject, XMLParserDelegate {
            var texts: [String] = []
            var current: String?
            func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                        attributes: [String: String] = [:]) {
                if name == "text" { current = "" }
            }
            func parser(_ parser: XMLParser, foundCharacters string: String) { current? += string }
            func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
                if name == "text", let current { texts.append(current.replacingOccurrences(of: "\u{A0}", with: " ")) }
                current = nil
            }
        }
        let parser = XMLParser(data: Data(svg.utf8))
        let collector = Collector()
        parser.delegate = collector
        XCTAssertTrue(parser.parse(), "the SVG is not well-formed XML: \(String(describing: parser.parserError))")
        return collector.texts
    }

    struct RunFailure: Error, CustomStringConvertible { var description: String }

    func count(_ needle: String, in text: String) -> Int { text.components(separatedBy: needle).count - 1 }

    func testDiamondIsDrawnWithFourNodesAndFourEdges() throws {
        let file = try workflowFile(name: "diamond", [("extract", []), ("clean", ["extract"]), ("enrich", ["extract"]), ("load", ["clean", "enrich"])])
        let svg = try drawn(file)
        let texts = try texts(ofSVG: svg)
        for name in ["diamond", "extract", "clean", "enrich", "load"] {
            XCTAssertTrue(texts.contains(name), "\(name) is not drawn; texts: \(texts)")
        }
        XCTAssertEqual(count("class=\"node\"", in: svg), 4, svg)
        XCTAssertEqual(count("class=\"edge\"", in: svg), 4, svg)
    }

    func testHostileNamesAreAcceptedByDotAndDrawnAsWritten() throws {
        let names = ["say \"hi\"", "C:\\temp\\", "\\", "\"", "back\\slash \\N \\G \\l", "{braces}", "a -> b", "x -- y", "semi;colon; ",
                     "]; t0 [label=\"pwned\"]; #", "日本語 ünïcödé 🚀 e\u{301}", "with some spaces", "&amp; <b>bold<i> &#45; &lt;",
                     "<!-- comment -->", "# hash", "digraph { }"]
            .map { $0.trimmingCharacters(in: .whitespaces) }
        // A chain through all of them, and a fan-in to the last: each name is on an edge too.
        let tasks = names.enumerated().map { i, name -> (String, [String]) in
            (name, i == 0 ? [] : i == names.count - 1 ? Array(names.dropLast()) : [names[i - 1]])
        }
        let title = "wf \"quoted\" \\ {x} -> ; é"
        let svg = try drawn(try workflowFile(name: title, tasks))
        let texts = try texts(ofSVG: svg)
        for name in names + [title] {
            XCTAssertTrue(texts.contains(name), "\(name) is not drawn as written; texts: \(texts)")
        }
        XCTAssertFalse(texts.contains("pwned"), "a name injected a node")
        XCTAssertEqual(count("class=\"node\"", in: svg), names.count, svg)
        XCTAssertEqual(count("class=\"edge\"", in: svg), names.count - 2 + names.count - 1, svg)
    }

    func testDotWithoutDryRunIsAUsageError() throws {
        let file = try workflowFile(name: "w", [("a", [])])
        let submit = try run(Binaries.url("ds-submit").path, ["--dot", file])
        XCTAssertEqual(submit.status, 64, submit.stderr)
        XCTAssertTrue(submit.stderr.contains("--dot") && submit.stderr.contains("--dry-run"), submit.stderr)
        XCTAssertEqual(submit.stdout, "")
        let withJSON = try run(Binaries.url("ds-submit").path, ["--dry-run", "--dot", "--json", file])
        XCTAssertEqual(withJSON.status, 64, withJSON.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.appendingPathComponent("ds.db").path), "a usage error created the database")
    }
}
