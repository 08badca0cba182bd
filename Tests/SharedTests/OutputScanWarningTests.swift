import Foundation
import XCTest
@testable import Shared

/// `${setValue(...)}` across lines: the worker reads the log line by line, so such an assignment
/// cannot be taken; it is ignored with a word in the log, not silently.
final class OutputScanWarningTests: XCTestCase {
    func testAMultiLineSetValueIsIgnoredWithAWarning() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("setvalue-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data("x\n${setValue(a=1)}\n${setValue(multi=line1\nline2)}\n${setValue(b=2)}\n".utf8).write(to: URL(fileURLWithPath: path))
        let scanner = WorkerDaemon.outputs(ofLog: path)
        XCTAssertNil(scanner.problem)
        XCTAssertEqual(scanner.outputs, ["a": "1", "b": "2"])
        XCTAssertEqual(scanner.unclosed, 1)
        let warning = try XCTUnwrap(scanner.unclosedWarning)
        XCTAssertTrue(warning.hasPrefix("[ds] ignored 1 ${setValue(...)} not closed on its line"), warning)
        XCTAssertTrue(warning.contains("'multi=line1'"), warning)
        var closed = OutputScanner()
        closed.scan("${setValue(k=v)}"[...])
        XCTAssertNil(closed.unclosedWarning)
    }
}
