import Foundation
@testable import Shared
import XCTest

/// The worker's log index, its routes and retention sweep, on a real folder (no network), and the
/// small pieces of `ds-logs` and `--listen`.
final class TaskLogsTests: XCTestCase {
    var folder: String!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("tasklogs-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: folder)
    }

    func write(_ path: String, _ text: String, age: TimeInterval = 0) throws {
        let full = folder + "/" + path
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: full, atomically: false, encoding: .utf8)
        if age > 0 { try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-age)], ofItemAtPath: full) }
    }

    func body(_ reply: HTTPReply?) async throws -> String? {
        guard case .stream(_, let body)? = reply else { return nil }
        let sink = Sink()
        try await body(HTTPBodyWriter.collecting { sink.append($0) })
        return sink.text
    }

    final class Sink: @unchecked Sendable {
        let lock = NSLock()
        var bytes: [UInt8] = []
        func append(_ b: [UInt8]) { lock.withLock { bytes += b } }
        var text: String { lock.withLock { String(decoding: bytes, as: UTF8.self) } }
    }

    func testRoutesFindLogsByIdOnly() async throws {
        try write("7/70.log", "seventy\n")
        try write("8/80.log", "eighty\n")
        try write("notes/90.log", "not an instance folder\n")
        try write("9/91.txt", "not a log name\n")
        let logs = TaskLogs(folder: folder)
        XCTAssertEqual(logs.sweep(retention: nil), TaskLogs.Sweep(kept: 2, removed: 0))
        let ok = await logs.route(HTTPRequest(uri: "/logs/70"))
        XCTAssertEqual(ok?.statusCode, 200)
        let text = try await body(ok)
        XCTAssertEqual(text, "seventy\n")
        let tail = try await body(await logs.route(HTTPRequest(uri: "/logs/80?offset=3")))
        XCTAssertEqual(tail, "hty\n")
        for uri in ["/logs/90", "/logs/91", "/logs/../7/70.log", "/logs/%37%30", "/logs/70/", "/logs/070x", "/logs/" + folder + "/7/70.log",
                    "/logs/-70", "/logs/ 70", "/logs/7/70", "/logs/1234567890123456789"] {
            let reply = await logs.route(HTTPRequest(uri: uri))
            XCTAssertEqual(reply?.statusCode, 404, uri)
        }
        for uri in ["/logs/70?offset=-1", "/logs/70?offset=1e3", "/logs/70?follow=2"] {
            let reply = await logs.route(HTTPRequest(uri: uri))
            XCTAssertEqual(reply?.statusCode, 400, uri)
        }
        let other = await logs.route(HTTPRequest(uri: "/metrics"))
        XCTAssertNil(other, "not a log route")
        // A log replaced by a link is not followed.
        try FileManager.default.removeItem(atPath: folder + "/7/70.log")
        try FileManager.default.createSymbolicLink(atPath: folder + "/7/70.log", withDestinationPath: folder + "/8/80.log")
        let linked = await logs.route(HTTPRequest(uri: "/logs/70"))
        XCTAssertEqual(linked?.statusCode, 404)
    }

    /// A follower of a live log stops once the task has ended and the log has been read to its end.
    func testFollowEndsWhenTheTaskEnds() async throws {
        try write("1/2.log", "first\n")
        let logs = TaskLogs(folder: folder)
        logs.began(2, workflowInstance: 1)
        let reply = await logs.route(HTTPRequest(uri: "/logs/2?follow=1"))
        let sink = Sink()
        guard case .stream(_, let body)? = reply else { return XCTFail("no stream") }
        let follower = Task { try await body(HTTPBodyWriter.collecting { sink.append($0) }) }
        try await waitUntil { sink.text == "first\n" }
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: folder + "/1/2.log"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("second\n".utf8))
        try await waitUntil { sink.text == "first\nsecond\n" }
        try handle.write(contentsOf: Data("last".utf8))
        try handle.close()
        logs.ended(2)
        try await follower.value
        XCTAssertEqual(sink.text, "first\nsecond\nlast")
    }

    func waitUntil(_ condition: () -> Bool) async throws {
        let deadline = Date().addingTimeInterval(60)
        while !condition() {
            if Date() > deadline { return XCTFail("timed out") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// A FIFO planted where a log was is refused at once (it would block the reader), never read.
    func testAFifoInPlaceOfALogIsRefusedWithoutBlocking() async throws {
        try FileManager.default.createDirectory(atPath: folder + "/5", withIntermediateDirectories: true)
        XCTAssertEqual(mkfifo(folder + "/5/50.log", 0o644), 0)
        let logs = TaskLogs(folder: folder)
        XCTAssertEqual(logs.sweep(retention: nil), TaskLogs.Sweep(kept: 0, removed: 0), "not indexed by a sweep")
        // While its task is live the log reads as empty (the file is not one); after, 404.
        logs.began(50, workflowInstance: 5)
        let live = try await body(await logs.route(HTTPRequest(uri: "/logs/50")))
        XCTAssertEqual(live, "")
        logs.ended(50)
        let reply = await logs.route(HTTPRequest(uri: "/logs/50"))
        XCTAssertEqual(reply?.statusCode, 404)
        // A hard link to another file in place of a log is no log either.
        try write("6/60.log", "real\n")
        try write("secret.txt", "secret\n")
        try FileManager.default.removeItem(atPath: folder + "/6/60.log")
        try FileManager.default.linkItem(atPath: folder + "/secret.txt", toPath: folder + "/6/60.log")
        logs.began(60, workflowInstance: 6)
        logs.ended(60)
        let linked = await logs.route(HTTPRequest(uri: "/logs/60"))
        XCTAssertEqual(linked?.statusCode, 404)
    }

    /// A task being claimed has no file yet: its log is served empty, and a follower waits for it.
    func testALiveTaskWithoutAFileYetIsEmptyAndFollowed() async throws {
        let logs = TaskLogs(folder: folder)
        logs.began(3, workflowInstance: 1)
        let empty = try await body(await logs.route(HTTPRequest(uri: "/logs/3")))
        XCTAssertEqual(empty, "")
        let reply = await logs.route(HTTPRequest(uri: "/logs/3?follow=1"))
        let sink = Sink()
        guard case .stream(_, let stream)? = reply else { return XCTFail("no stream") }
        let follower = Task { try await stream(HTTPBodyWriter.collecting { sink.append($0) }) }
        try write("1/3.log", "written later\n")
        try await waitUntil { sink.text == "written later\n" }
        logs.ended(3)
        try await follower.value
        // A claim that did not go through leaves nothing behind.
        logs.began(4, workflowInstance: 1)
        logs.forget(4)
        let forgotten = await logs.route(HTTPRequest(uri: "/logs/4"))
        XCTAssertEqual(forgotten?.statusCode, 404)
    }

    func testSweepRemovesOldLogsButNeverLiveOnes() throws {
        try write("1/10.log", "old\n", age: 10 * 86_400)
        try write("1/11.log", "old and live\n", age: 10 * 86_400)
        try write("2/20.log", "old, alone in its folder\n", age: 10 * 86_400)
        try write("3/30.log", "fresh\n")
        try write("keep.txt", "no task log\n", age: 10 * 86_400)
        let logs = TaskLogs(folder: folder)
        logs.began(11, workflowInstance: 1)
        XCTAssertEqual(logs.sweep(retention: 7 * 86_400), TaskLogs.Sweep(kept: 2, removed: 2))
        let fm = FileManager.default
        XCTAssertFalse(fm.fileExists(atPath: folder + "/1/10.log"))
        XCTAssertTrue(fm.fileExists(atPath: folder + "/1/11.log"), "a log still being written stays")
        XCTAssertFalse(fm.fileExists(atPath: folder + "/2"), "an emptied instance folder goes")
        XCTAssertTrue(fm.fileExists(atPath: folder + "/3/30.log"))
        XCTAssertTrue(fm.fileExists(atPath: folder + "/keep.txt"))
        XCTAssertNil(logs.workflowInstance(of: 10), "a removed log is no longer served")
        XCTAssertEqual(logs.workflowInstance(of: 30), 3)
    }

    func testListenAddresses() throws {
        XCTAssertEqual(try ListenAddress.parse("127.0.0.1:0").get(), ListenAddress(host: "127.0.0.1", port: 0))
        XCTAssertEqual(try ListenAddress.parse("[::1]:8080").get(), ListenAddress(host: "::1", port: 8080))
        XCTAssertEqual(ListenAddress(host: "::1", port: 8080).description, "[::1]:8080")
        for bad in ["", ":8080", "host", "host:", "host:70000", "host:-1", "host:8o", "ho st:1", "a/b:1", "host:+1", "host:١٢",
                    "::1:0", "[::1:0", "::1]:0", "[]:1"] {
            if case .success = ListenAddress.parse(bad) { XCTFail("\(bad) accepted") }
        }
        XCTAssertNil(try ListenAddress.option(nil, environment: [:]))
        XCTAssertNil(try ListenAddress.option(nil, environment: ["DS_LISTEN": ""]))
        XCTAssertEqual(try ListenAddress.option(nil, environment: ["DS_LISTEN": "0.0.0.0:9"]), ListenAddress(host: "0.0.0.0", port: 9))
        XCTAssertEqual(try ListenAddress.option("1.2.3.4:5", environment: ["DS_LISTEN": "0.0.0.0:9"]), ListenAddress(host: "1.2.3.4", port: 5))
        XCTAssertThrowsError(try ListenAddress.option("nope", environment: [:]))
    }

    func testTailKeepsTheLastLines() {
        func tail(_ n: Int, _ pieces: [String]) -> String {
            var t = LogsTool.Tail(lines: n)
            for p in pieces { t.add(Array(p.utf8)) }
            return String(decoding: t.text, as: UTF8.self)
        }
        XCTAssertEqual(tail(2, ["a\nb\nc\nd"]), "c\nd", "a last line without a newline counts")
        XCTAssertEqual(tail(2, ["a\nb", "\nc\n"]), "b\nc\n")
        XCTAssertEqual(tail(0, ["a\nb\n"]), "")
        XCTAssertEqual(tail(5, ["a\n"]), "a\n")
        XCTAssertEqual(tail(1, [String(repeating: "x\n", count: 10_000) + "end\n"]), "end\n")
        XCTAssertEqual(tail(3, [""]), "")
    }

    func testLogHintsNameTheLatestFailedAttemptOfTheRun() {
        func attempt(_ id: Int64, _ task: String, _ n: Int, _ state: TaskState, run: Int = 1, host: String? = "w:1") -> TaskInstanceRecord {
            var r = TaskInstanceRecord(id: id, workflowInstanceId: 1, taskName: task, attempt: n, state: state, priority: .medium,
                                       workerGroup: "default", submitTime: 0, run: run)
            r.host = host
            return r
        }
        let attempts = [
            attempt(1, "a", 1, .success), attempt(2, "b", 1, .failure), attempt(3, "b", 2, .failure),
            attempt(4, "c", 1, .failure), attempt(5, "c", 2, .success), attempt(6, "d", 1, .kill),
            attempt(7, "e", 1, .kill, host: nil), attempt(8, "f", 1, .failure, run: 0), attempt(9, "g", 1, .needFaultTolerance),
        ]
        XCTAssertEqual(InstanceReport.logHints(attempts, run: 1), [
            "task 'b' failed; its log: ds-logs 3", "task 'd' was killed; its log: ds-logs 6",
        ])
    }
}
