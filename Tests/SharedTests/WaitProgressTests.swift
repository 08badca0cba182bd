import Foundation
@testable import Shared
import XCTest

/// How `--wait` shows progress: the live table on a terminal (rendered on a fixed clock here) and
/// the lines off one. The lines of a real wait are checked in WaitProgressEndToEndTests.
final class WaitProgressTests: XCTestCase {
    func instance(_ state: WorkflowState = .running) -> WorkflowInstanceRecord {
        WorkflowInstanceRecord(id: 7, definitionId: 1, name: "etl", version: 1, state: state, priority: .medium, paramsJson: "{}",
                               host: "m:1", masterSession: 1, submitTime: 0)
    }

    func attempt(_ id: Int64, _ task: String, _ state: TaskState, attempt: Int = 1, start: Double? = nil) -> TaskInstanceRecord {
        var a = TaskInstanceRecord(id: id, workflowInstanceId: 7, taskName: task, attempt: attempt, state: state, priority: .medium,
                                   workerGroup: "default", submitTime: 0)
        a.startTime = start
        return a
    }

    func testTheLiveTableShowsElapsedTimeOfRunningTasksAndWhatWaitingOnesWaitFor() {
        let report = InstanceReport(instance: instance(), tasks: [attempt(1, "load", .running, start: 100), attempt(2, "heavy", .submitted)],
                                    order: ["load", "heavy", "report"])
        let notes = LiveNotes(now: 112.5, tasks: ["heavy": "waiting for pool db: 0/0 in use", "report": "waiting for upstream 'load'"])
        let lines = report.liveTable(notes).split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") }
        XCTAssertEqual(lines, [
            "TASK STATE ATTEMPT WORKER EXIT DURATION NOTE",
            "load RUNNING 1 12.5s",
            "heavy SUBMITTED 1 waiting for pool db: 0/0 in use",
            "report - waiting for upstream 'load'",
        ])
        var later = notes
        later.now = 161
        XCTAssertTrue(report.liveTable(later).contains("61.0s"), "the clock moves the elapsed time on")
        later.instance = "waits for instance 5 of 'etl' to end (execution serial_wait)"
        XCTAssertTrue(report.liveTable(later).hasPrefix("instance 7 waits for instance 5 of 'etl' to end (execution serial_wait)\nTASK"))
    }

    func testOffATerminalEachStateChangeIsOneLine() {
        var log = ProgressLog()
        var report = InstanceReport(instance: instance(), tasks: [attempt(1, "a\u{1B}[31m", .submitted)], order: ["a\u{1B}[31m", "b"])
        let first = log.lines(report, notes: ["a\u{1B}[31m": "waiting for a worker of group gpu: none is registered"], now: 0)
        XCTAssertEqual(first.count, 1)
        XCTAssertTrue(first[0].hasSuffix(" etl#7 a\\u{1B}[31m SUBMITTED attempt 1 waiting for a worker of group gpu: none is registered"), first[0])
        XCTAssertNotNil(first[0].range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d "#, options: .regularExpression), first[0])
        XCTAssertFalse(log.changed(report))
        XCTAssertEqual(log.lines(report, notes: [:], now: 1), [], "no change, no line")
        report.tasks[0].state = .running
        XCTAssertTrue(log.changed(report))
        XCTAssertEqual(log.lines(report, notes: [:], now: 2).map { String($0.split(separator: " ").dropFirst().joined(separator: " ")) },
                       ["etl#7 a\\u{1B}[31m RUNNING attempt 1"])
        var retry = attempt(3, "a\u{1B}[31m", .failure, attempt: 2)
        retry.exitCode = 3
        retry.message = "exited with status 3"
        report.tasks.append(retry)
        XCTAssertEqual(log.lines(report, notes: [:], now: 3).map { String($0.split(separator: " ").dropFirst().joined(separator: " ")) },
                       ["etl#7 a\\u{1B}[31m FAILURE attempt 2 exited with status 3"])
        report.tasks[1].message = nil
        report.tasks[1].attempt = 3
        XCTAssertTrue(log.lines(report, notes: [:], now: 4)[0].hasSuffix("FAILURE attempt 3 exit 3"), "no message: the exit status")
    }
}
