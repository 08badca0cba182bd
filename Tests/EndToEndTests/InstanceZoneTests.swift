import Foundation
import Shared
import XCTest

/// An instance's time zone is fixed when it is made and stored: masters in other zones, and a
/// takeover between them, resolve its built-ins (system.biz.date) alike.
final class InstanceZoneTests: ClusterTestCase {
    var marker: String { cluster.directory.appendingPathComponent("markers").path }

    /// Master one runs at UTC+14, master two at UTC-11 (25 hours apart: their calendar dates always
    /// differ); the instance is submitted from Tokyo. The task before the takeover and the one after
    /// it see Tokyo's business date of the instance's start.
    func testATakeoverByAMasterInAnotherZoneKeepsTheBusinessDate() async throws {
        let east = try cluster.startMaster(environment: ["TZ": "Pacific/Kiritimati"])
        try cluster.startWorker(slots: 1)
        let file = try cluster.workflowFile(#"""
            {"name":"zoned","tasks":[
              {"name":"a","command":"echo a ${system.biz.date} >> \#(marker); sleep 3"},
              {"name":"b","deps":["a"],"command":"echo b ${system.biz.date} >> \#(marker)"}]}
            """#)
        let submit = try cluster.run("ds-submit", [file], environment: ["TZ": "Asia/Tokyo"])
        XCTAssertEqual(submit.status, 0, submit.stderr)
        let id = try XCTUnwrap(Int64(submit.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        try await eventually("task a runs on the first master") { cluster.lines(marker).count == 1 }
        let firstOwner = try await cluster.store().instance(id)?.host
        cluster.kill9(east)
        try cluster.startMaster(environment: ["TZ": "Pacific/Pago_Pago"])
        let state = try await cluster.waitForEnd(id)
        XCTAssertEqual(state, .success)
        let instance = try await cluster.store().instance(id)
        XCTAssertEqual(instance?.timeZone, "Asia/Tokyo", "the zone ds-submit ran in is stored with the instance")
        XCTAssertNotEqual(instance?.host, firstOwner, "the second master took the instance over")
        let start = try XCTUnwrap(instance?.startTime)
        let expected = ParameterResolver(runTime: Date(timeIntervalSince1970: start), timeZone: TimeZone(identifier: "Asia/Tokyo")!)
            .builtIns["system.biz.date"] ?? ""
        XCTAssertEqual(cluster.lines(marker), ["a \(expected)", "b \(expected)"])
    }
}
