import Foundation
import Shared
import XCTest

/// The store on a real SQLite file (no mocks).
final class StoreTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ds-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: directory) }

    func testConcurrentFirstOpensOfANewFileAllMigrate() throws {
        for round in 0..<10 {
            let path = directory.appendingPathComponent("race-\(round).db").path
            let errors = NSLock()
            var failures: [String] = []
            DispatchQueue.concurrentPerform(iterations: 4) { _ in
                do { _ = try Store(path: path) } catch { errors.withLock { failures.append("\(error)") } }
            }
            XCTAssertEqual(failures, [], "round \(round)")
        }
    }

    func testDefinitionIsVersionedOnlyWhenItChangesAndCommandsAreClaimedOnce() async throws {
        let store = try Store(path: directory.appendingPathComponent("ds.db").path)
        var w = WorkflowDefinition(name: "w", tasks: [TaskDefinition(name: "a", command: "true")])
        let first = try await store.submit(w, params: [:], now: 1)
        let same = try await store.submit(w, params: ["k": "v"], now: 2)
        w.tasks[0].command = "false"
        let changed = try await store.submit(w, params: [:], now: 3)
        XCTAssertEqual([first.version, same.version, changed.version], [1, 1, 2])
        XCTAssertEqual(first.definitionId, same.definitionId)

        // Two claimers race for three commands: each is taken exactly once.
        let claimed = try await withThrowingTaskGroup(of: [Int64].self) { group in
            for host in ["m1:1", "m2:2"] {
                group.addTask {
                    var mine: [Int64] = []
                    while let c = try await store.claimCommand(host: host, session: host == "m1:1" ? 1 : 2, now: 4) { mine.append(c.instance.id!) }
                    return mine
                }
            }
            var all: [Int64] = []
            for try await ids in group { all += ids }
            return all
        }
        XCTAssertEqual(claimed.sorted(), [first.instanceId, same.instanceId, changed.instanceId])
        let left = try await store.countRows(of: "command")
        XCTAssertEqual(left, 0)
        let instance = try await store.instance(same.instanceId)
        XCTAssertEqual(instance?.state, .running)
        XCTAssertEqual(instance?.paramsJson, #"{"k":"v"}"#)
    }
}
