import Foundation
@testable import Shared
import XCTest

/// `DotGraph.render`: one node per task, edges from dependency to task, colours by state, and no
/// name, state, note or title that can break the DOT syntax or show other than as written.
final class DotGraphTests: XCTestCase {
    func workflow(_ tasks: [(String, [String])], name: String = "w") -> WorkflowDefinition {
        WorkflowDefinition(name: name, tasks: tasks.map { TaskDefinition(name: $0.0, command: "true", deps: $0.1) })
    }

    /// Reads the output as Graphviz's lexer does: every quoted string (`\"` is a quote inside
    /// one) becomes `Q`, so that the statements left can be compared with the few shapes the
    /// renderer writes. The strings come back in order, as written between the quotes.
    func lex(_ dot: String) -> (shapes: [String], strings: [String]) {
        var shapes: [String] = [], strings: [String] = []
        var shape = "", current = ""
        var inString = false, escaping = false
        for scalar in dot.unicodeScalars {
            if inString {
                if escaping { current.unicodeScalars.append(scalar); escaping = false }
                else if scalar == "\\" { current.unicodeScalars.append(scalar); escaping = true }
                else if scalar == "\"" { inString = false; strings.append(current); current = ""; shape += "Q" }
                else { current.unicodeScalars.append(scalar) }
            } else if scalar == "\"" {
                inString = true
            } else if scalar == "\n" {
                shapes.append(shape); shape = ""
            } else {
                shape.unicodeScalars.append(scalar)
            }
        }
        XCTAssertFalse(inString, "a quoted string never ends:\n\(dot)")
        if !shape.isEmpty { shapes.append(shape) }
        return (shapes, strings)
    }

    /// What Graphviz shows for a label string: `\\` is a backslash, `\n` a line break, `\"` a
    /// quote, and `&amp;` an ampersand.
    func shown(_ label: String) -> String {
        var out = ""
        var escaping = false
        for scalar in label.unicodeScalars {
            if escaping {
                switch scalar {
                case "n": out += "\n"
                case "\\", "\"": out.unicodeScalars.append(scalar)
                default: XCTFail("label has the Graphviz escape \\\(scalar): \(label)")
                }
                escaping = false
            } else if scalar == "\\" {
                escaping = true
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        XCTAssertFalse(escaping, "label ends in a lone backslash: \(label)")
        XCTAssertFalse(out.replacingOccurrences(of: "&amp;", with: "").contains("&"), "a bare & Graphviz would read as an entity: \(label)")
        return out.replacingOccurrences(of: "&amp;", with: "&")
    }

    /// The labels of the nodes, as shown, in order.
    func nodeLabels(_ dot: String) -> [String] {
        let (shapes, strings) = lex(dot)
        var labels: [String] = []
        var next = 0
        for shape in shapes {
            let count = shape.filter { $0 == "Q" }.count
            if shape == "  Q [label=Q, fillcolor=Q];" { labels.append(shown(strings[next + 1])) }
            next += count
        }
        return labels
    }

    func testOneNodePerTaskInDefinitionOrderAndEdgesFromDependencyToTask() {
        let dot = DotGraph.render(workflow([("extract", []), ("clean", ["extract"]), ("enrich", ["extract"]), ("load", ["clean", "enrich"])]))
        XCTAssertEqual(nodeLabels(dot), ["extract", "clean", "enrich", "load"])
        let edges = dot.split(separator: "\n").filter { $0.contains("->") }.map { $0.trimmingCharacters(in: .whitespaces) }
        XCTAssertEqual(edges, [#""t0" -> "t1";"#, #""t0" -> "t2";"#, #""t1" -> "t3";"#, #""t2" -> "t3";"#])
        XCTAssertTrue(dot.hasPrefix("digraph \"workflow\" {\n"), dot)
        XCTAssertTrue(dot.hasSuffix("}\n"), dot)
    }

    func testEveryStatementHasAKnownShapeWhateverTheNames() {
        let hostile = ["a\"b", "c\\", "\\\"", "x -> y", "{ }", "a; b", "];node [label=\"z\"", "// c", "/* d", "# e", "é 日本 🚀",
                       "<b>html</b>", "&amp; &lt; &#45;", "\\N \\G \\l \\L", "line\nbreak", "cr\rlf\r\n", "tab\there", "esc\u{1B}[31m",
                       "nul\u{0}", "rtl\u{202E}olleh", "zero\u{200B}width", "del\u{7F}", "c1\u{85}", "ls\u{2028}ps\u{2029}"]
        let tasks = hostile.enumerated().map { i, name in (name, i == 0 ? [] : [hostile[i - 1]]) }
        let states = Dictionary(uniqueKeysWithValues: hostile.map { ($0, "STATE\"\\\n" + $0) })
        let dot = DotGraph.render(workflow(tasks), states: states, notes: [hostile[0]: "note \"\\ ->;"], title: "title\" -> {\n")
        let (shapes, _) = lex(dot)
        let allowed: Set<String> = ["digraph Q {", "  graph [label=Q, labelloc=Q];", "  node [shape=Q, style=Q, fillcolor=Q];",
                                    "  Q [label=Q, fillcolor=Q];", "  Q -> Q;", "}"]
        for shape in shapes { XCTAssertTrue(allowed.contains(shape), "unexpected statement \(shape) in\n\(dot)") }
        XCTAssertEqual(shapes.filter { $0 == "  Q [label=Q, fillcolor=Q];" }.count, hostile.count)
        XCTAssertEqual(shapes.filter { $0 == "  Q -> Q;" }.count, hostile.count - 1)
        // Between statements only: no control or format character is written raw.
        for scalar in dot.unicodeScalars where scalar != "\n" {
            XCTAssertFalse([.control, .format, .lineSeparator, .paragraphSeparator].contains(scalar.properties.generalCategory),
                           "raw U+\(String(scalar.value, radix: 16)) in the output")
        }
    }

    func testQuotesAndBackslashesAreEscapedAndShownAsWritten() {
        let names = ["say \"hi\"", "C:\\temp\\", "\\", "\"", "\\\"", "\\n is not a line break", "\\N"]
        let dot = DotGraph.render(workflow(names.map { ($0, []) }))
        XCTAssertEqual(nodeLabels(dot), names)
        XCTAssertTrue(dot.contains(#"[label="say \"hi\"","#), dot)
        XCTAssertTrue(dot.contains(#"[label="C:\\temp\\","#), dot)
        XCTAssertTrue(dot.contains(#"[label="\\n is not a line break","#), dot)
    }

    func testLineBreaksBecomeLabelBreaksAndOtherControlsAreShownAsText() {
        let names = ["a\nb", "c\r\nd", "e\rf", "g\u{2028}h", "tab\there", "esc\u{1B}", "nul\u{0}", "rtl\u{202E}x", "del\u{7F}"]
        let dot = DotGraph.render(workflow(names.map { ($0, []) }))
        XCTAssertEqual(nodeLabels(dot), ["a\nb", "c\nd", "e\nf", "g\nh", "tab\\there", "esc\\u{1B}", "nul\\0", "rtl\\u{202E}x", "del\\u{7F}"])
        XCTAssertTrue(dot.contains(#"[label="a\nb","#), dot)
        XCTAssertTrue(dot.contains(#"[label="c\nd","#), dot)
        XCTAssertTrue(dot.contains(#"[label="tab\\there","#), dot)
        XCTAssertTrue(dot.contains(#"[label="esc\\u{1B}","#), dot)
    }

    func testUnicodeAndAmpersandsAreShownAsWritten() {
        let names = ["日本語", "café", "e\u{301}", "🚀 launch", "👍🏽", "AT&T", "&amp;", "&#45;", "<i>"]
        let dot = DotGraph.render(workflow(names.map { ($0, []) }))
        XCTAssertEqual(nodeLabels(dot), names)
        XCTAssertTrue(dot.contains(#"[label="日本語","#), dot)
        XCTAssertTrue(dot.contains(#"[label="AT&amp;T","#), dot)
        XCTAssertTrue(dot.contains(#"[label="&amp;amp;","#), dot)
        // A joiner is invisible, so shown as text, as names may not hold one (`Limits.nameProblem`).
        XCTAssertEqual(nodeLabels(DotGraph.render(workflow([("👩\u{200D}👧", [])]))), ["👩\\u{200D}👧"])
    }

    func testStateAndNoteAreTheSecondAndThirdLines() {
        let dot = DotGraph.render(workflow([("train", []), ("eval", ["train"]), ("ship", ["eval"])]),
                                  states: ["train": "DISPATCHED", "eval": "SUBMITTED"],
                                  notes: ["train": "waiting for a worker of group gpu", "ship": "not started"])
        XCTAssertEqual(nodeLabels(dot), ["train\nDISPATCHED\nwaiting for a worker of group gpu", "eval\nSUBMITTED", "ship\nnot started"])
        XCTAssertTrue(dot.contains(#"[label="train\nDISPATCHED\nwaiting for a worker of group gpu","#), dot)
    }

    func testFillColourFollowsTheState() {
        func fill(_ state: String?) -> String {
            let dot = DotGraph.render(workflow([("a", [])]), states: state.map { ["a": $0] } ?? [:])
            let line = dot.split(separator: "\n").first { $0.hasPrefix("  \"t0\"") }!
            return String(line.split(separator: "fillcolor=\"")[1].prefix { $0 != "\"" })
        }
        let groups = [["SUCCESS", "FORCED_SUCCESS"], ["FAILURE"], ["RUNNING", "DISPATCHED", "SUBMITTED"], ["KILL", "STOP", "SKIPPED", "DISABLED"],
                      ["PAUSE", "READY_PAUSE"], ["DELAY_EXECUTION", "NEED_FAULT_TOLERANCE"]]
        var seen: Set<String> = ["white"]
        for group in groups {
            let colour = fill(group[0])
            XCTAssertTrue(colour.hasPrefix("#") && colour.count == 7, "\(group[0]): \(colour)")
            XCTAssertTrue(seen.insert(colour).inserted, "\(group) shares \(colour) with another group or the default")
            for state in group { XCTAssertEqual(fill(state), colour, state) }
        }
        XCTAssertEqual(fill(nil), "white")
        XCTAssertEqual(fill("SKIPPY"), "white")
        XCTAssertEqual(fill("success"), "white")
        XCTAssertEqual(fill("SUCCESS\"]; x [label=\"y"), "white")
        for state in TaskState.allCases {
            XCTAssertNotEqual(fill(state.rawValue), "white", "task state \(state.rawValue) has no colour")
        }
        XCTAssertEqual(fill("SUCCESS"), "#b9e4b0")
        XCTAssertEqual(fill("FAILURE"), "#f4b6b6")
    }

    func testTitleIsTheGraphLabel() {
        let titled = DotGraph.render(workflow([("a", [])]), title: "daily \"etl\" #42")
        XCTAssertTrue(titled.contains(#"  graph [label="daily \"etl\" #42", labelloc="t"];"#), titled)
        let untitled = DotGraph.render(workflow([("a", [])]))
        XCTAssertFalse(untitled.contains("graph ["), untitled)
    }

    func testUnknownDependencyDrawsNoEdgeAndDuplicateNamesStayApart() {
        let dot = DotGraph.render(workflow([("a", []), ("a", []), ("b", ["a", "missing"])]))
        XCTAssertEqual(nodeLabels(dot), ["a", "a", "b"])
        let edges = dot.split(separator: "\n").filter { $0.contains("->") }.map { $0.trimmingCharacters(in: .whitespaces) }
        XCTAssertEqual(edges, [#""t0" -> "t2";"#])
    }
}
