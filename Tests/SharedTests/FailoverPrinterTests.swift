import XCTest
@testable import Shared

/// `ds-failover`'s human output.
final class FailoverPrinterTests: XCTestCase {
    /// A forced failover with nothing to move says so in words: no empty "task attempts:" heading.
    func testAnEmptyForcedFailoverHasNoEmptyHeading() {
        var f = ForcedFailover(type: "worker", server: "127.0.0.1:7002", session: 9, marker: "m", dryRun: true)
        XCTAssertEqual(FailoverPrinter.human(f), "would fail over worker 127.0.0.1:7002 (session 9); no task attempts\n")
        f.tasks = [4, 5]
        XCTAssertEqual(FailoverPrinter.human(f), "would fail over worker 127.0.0.1:7002 (session 9); task attempts: 4 5\n")
        var m = ForcedFailover(type: "master", server: "127.0.0.1:5678", session: 3, marker: "m", dryRun: false)
        XCTAssertEqual(FailoverPrinter.human(m), "failed over master 127.0.0.1:5678 (session 3); no instances\n")
        m.instances = [7]
        XCTAssertEqual(FailoverPrinter.human(m), "failed over master 127.0.0.1:5678 (session 3); instances: 7\n")
    }
}
