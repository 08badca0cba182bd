import Foundation
import GRDB
@testable import Shared
import XCTest

/// A busy database is a temporary failure (exit 75, retry) whether a read or a write met it.
final class StoreBusyTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ds-busy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: directory) }

    /// SQLite reports a busy or locked database from inside the statement; the store sees the
    /// error GRDB throws, as a read's body would throw it after the busy timeout.
    func testABusyReadExitsTempFailLikeABusyWrite() async throws {
        let store = try Store(path: directory.appendingPathComponent("ds.db").path)
        for code in [ResultCode.SQLITE_BUSY, .SQLITE_LOCKED] {
            do {
                _ = try await store.read("reading something") { _ -> Int in throw DatabaseError(resultCode: code, message: "database is locked") }
                XCTFail("the read succeeded")
            } catch {
                XCTAssertEqual(ExitStatus.of(error), .tempFail, "read, \(code): \(error)")
                XCTAssertTrue("\(error)".contains("retry"), "\(error)")
            }
            do {
                _ = try await store.transaction("writing something") { _ -> Int in throw DatabaseError(resultCode: code, message: "database is locked") }
                XCTFail("the write succeeded")
            } catch {
                XCTAssertEqual(ExitStatus.of(error), .tempFail, "write, \(code): \(error)")
            }
        }
        // Any other database error is internal.
        do {
            _ = try await store.read("reading something") { db in try Int.fetchOne(db, sql: "SELECT * FROM no_such_table") }
            XCTFail("the read succeeded")
        } catch {
            XCTAssertEqual(ExitStatus.of(error), .software, "\(error)")
        }
    }
}
