import XCTest
@testable import Shared

/// Human tables: no value can forge a row, colour the terminal or shift a column.
final class TablePrinterTests: XCTestCase {
    /// A value holding a newline stays in its row; an ANSI escape is shown, not sent.
    func testControlCharactersInACellAreEscaped() {
        var t = TablePrinter(columns: ["TASK", "STATE", "MESSAGE"])
        t.add(["a", "FAILURE", "x\nfake 1 1 SUCCESS"])
        t.add(["b", "\u{1B}[31mRED\u{1B}[0m", "tab\there\r"])
        let out = t.render()
        XCTAssertEqual(out.split(separator: "\n", omittingEmptySubsequences: false).count, 4, out)  // header, 2 rows, ""
        XCTAssertFalse(out.contains("\u{1B}"), out)
        XCTAssertTrue(out.contains(#"x\nfake 1 1 SUCCESS"#), out)
        XCTAssertTrue(out.contains(#"\u{1B}[31mRED\u{1B}[0m"#), out)
        XCTAssertTrue(out.contains(#"tab\there\r"#), out)
        // Invisible direction overrides too.
        XCTAssertEqual(Limits.escaped("a\u{202E}b"), #"a\u{202E}b"#)
    }

    /// Names with spaces, and escaped cells, keep every column aligned.
    func testColumnsStayAlignedWithSpacesAndEscapes() {
        var t = TablePrinter(columns: ["NAME", "STATE", "NOTE"])
        t.add(["my long name", "RUNNING", "-"])
        t.add(["a\nb", "SUCCESS", "-"])
        let lines = t.render().split(separator: "\n").map(String.init)
        let starts = lines.map { $0.range(of: $0 == lines[0] ? "STATE" : ($0.contains("RUNNING") ? "RUNNING" : "SUCCESS"))!.lowerBound }
        let offsets = zip(lines, starts).map { $0.distance(from: $0.startIndex, to: $1) }
        XCTAssertEqual(Set(offsets).count, 1, lines.joined(separator: "\n"))
    }

    /// Wide characters (CJK, emoji) take two columns: the next column still starts in one place.
    func testWideCharactersKeepColumnsAligned() {
        var t = TablePrinter(columns: ["NAME", "STATE"])
        t.add(["日次集計", "RUNNING"])
        t.add(["abc", "SUCCESS"])
        t.add(["🚀x", "FAILURE"])
        XCTAssertEqual(t.render(), "NAME      STATE\n日次集計  RUNNING\nabc       SUCCESS\n🚀x       FAILURE\n")
    }

    /// A table that streams (ds-queue list) pads to its least widths and escapes as `render` does.
    func testAStreamingLineIsEscapedAndPadded() {
        let t = TablePrinter(columns: ["A", "B"], widths: [4])
        XCTAssertEqual(t.header(), "A     B")
        XCTAssertEqual(t.line(["x\ny", "z"]), #"x\ny  z"#)
        XCTAssertEqual(TablePrinter.pairs(["P": "\nfake", "A": "1"]), #"A=1 P=\nfake"#)
    }
}
