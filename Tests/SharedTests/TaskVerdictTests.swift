@testable import Shared
import XCTest

/// How the worker reports a task's end when a kill was asked for (`WorkerDaemon.verdict`).
final class TaskVerdictTests: XCTestCase {
    func verdict(_ exit: ProcessExit, timedOut: Bool = false, killRequested: Bool = false, killedForStop: Bool = false) -> TaskState {
        WorkerDaemon.verdict(exit, timedOut: timedOut, killRequested: killRequested, killedForStop: killedForStop, timeout: 5,
                             worker: "w:1").state
    }

    func testAKilledTaskEndsKillOrFailsOver() {
        XCTAssertEqual(verdict(.signaled(9), killRequested: true), .kill)
        XCTAssertEqual(verdict(.signaled(9), killedForStop: true), .needFaultTolerance)
        XCTAssertEqual(verdict(.signaled(9), timedOut: true), .failure)
        XCTAssertEqual(verdict(.signaled(15)), .failure)
    }

    /// The task exited on its own and the kill request (a stop of its instance) was read before
    /// the worker got back to it: the kill killed nothing. Reported KILL, the success ran again on
    /// resume; reported NEED_FAULT_TOLERANCE, it ran again on another worker.
    func testAKillThatCameAfterTheTaskExitedLeavesItsRealEnd() {
        XCTAssertEqual(verdict(.exited(0), killRequested: true), .success)
        XCTAssertEqual(verdict(.exited(3), killRequested: true), .failure)
        XCTAssertEqual(verdict(.exited(0), killedForStop: true), .success)
        XCTAssertEqual(verdict(.exited(1), killedForStop: true), .failure)
    }
}
