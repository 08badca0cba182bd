import Foundation
import Shared
import XCTest

/// Ctrl-C (or SIGTERM) of `ds-submit --wait` ends only the waiting: one line on stderr names the
/// instance, which goes on, and how to follow it; the status is 128 + the signal.
final class InterruptEndToEndTests: ClusterTestCase {
    /// Starts `ds-submit --wait` on a one-task workflow with no master, so that it waits for good;
    /// returns once it has stored the instance and said it waits (after the handlers are in place).
    /// `ignoringInterrupt` starts it as a script's shell starts a command in the background: with
    /// SIGINT ignored (`trap '' INT` survives `exec`).
    func startWaitingSubmit(ignoringInterrupt: Bool = false) async throws -> (process: Process, instance: Int64, stderr: URL) {
        let file = try cluster.workflowFile(#"{"name":"left","tasks":[{"name":"a","command":"true"}]}"#)
        let out = cluster.directory.appendingPathComponent("submit.out"), err = cluster.directory.appendingPathComponent("submit.err")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        let p = Process()
        if ignoringInterrupt {
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", #"trap '' INT; exec "$0" "$@""#, Binaries.url("ds-submit").path, file, "--wait"]
        } else {
            p.executableURL = Binaries.url("ds-submit")
            p.arguments = [file, "--wait"]
        }
        p.environment = cluster.environment
        p.standardOutput = try FileHandle(forWritingTo: out)
        p.standardError = try FileHandle(forWritingTo: err)
        p.standardInput = FileHandle.nullDevice
        try p.run()
        addTeardownBlock {
            if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        }
        var instance: Int64?
        try await eventually("ds-submit stores the instance and says it waits") {
            let text = (try? String(contentsOf: err, encoding: .utf8)) ?? ""
            guard let line = text.split(separator: "\n").first(where: { $0.hasSuffix("submitted; waiting") }) else {
                XCTAssertTrue(p.isRunning, "ds-submit exited \(p.terminationStatus) before waiting: \(text)")
                return !p.isRunning
            }
            instance = line.split(separator: " ").dropFirst(2).first.flatMap { Int64($0) }
            return try await cluster.store().countRows(of: "workflow_instance") == 1
        }
        let id = try XCTUnwrap(instance, "no instance id in ds-submit's stderr")
        XCTAssertTrue(p.isRunning, "ds-submit stopped waiting by itself")
        return (p, id, err)
    }

    func assertInterrupted(by signal: Int32, exits expected: Int32) async throws {
        let (p, id, err) = try await startWaitingSubmit()
        kill(p.processIdentifier, signal)
        let status = cluster.exitStatus(of: p, within: 60)
        let stderr = (try? String(contentsOf: err, encoding: .utf8)) ?? ""
        XCTAssertEqual(status, expected, stderr)
        XCTAssertEqual(p.terminationReason, .exit, "ds-submit died of the signal instead of handling it: \(stderr)")
        let notices = stderr.split(separator: "\n").filter { $0.contains("interrupted;") }
        XCTAssertEqual(notices, ["ds-submit: interrupted; instance \(id) goes on. Follow it with: ds-instance wait \(id)"], stderr)
        // The instance was only left, not stopped: it still waits for a master.
        let state = try await cluster.store().instance(id)?.state
        XCTAssertEqual(state, .submitted)
    }

    func testCtrlCOfWaitExits130NamingTheInstanceThatGoesOn() async throws {
        try await assertInterrupted(by: SIGINT, exits: 130)
    }

    func testSigtermOfWaitExits143NamingTheInstanceThatGoesOn() async throws {
        try await assertInterrupted(by: SIGTERM, exits: 143)
    }

    /// `ds-instance wait`, the command the notice names, is interrupted the same way.
    func testCtrlCOfInstanceWaitExits130AndSaysTheSame() async throws {
        let (submit, id, _) = try await startWaitingSubmit()
        kill(submit.processIdentifier, SIGINT)
        XCTAssertEqual(cluster.exitStatus(of: submit, within: 60), 130)
        let err = cluster.directory.appendingPathComponent("wait.err")
        FileManager.default.createFile(atPath: err.path, contents: nil)
        let p = Process()
        p.executableURL = Binaries.url("ds-instance")
        p.arguments = ["wait", String(id)]
        p.environment = cluster.environment
        p.standardOutput = FileHandle.nullDevice
        p.standardError = try FileHandle(forWritingTo: err)
        p.standardInput = FileHandle.nullDevice
        try p.run()
        addTeardownBlock { if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() } }
        try await eventually("ds-instance wait says it waits") {
            ((try? String(contentsOf: err, encoding: .utf8)) ?? "").contains("waiting for instance \(id)") || !p.isRunning
        }
        XCTAssertTrue(p.isRunning, (try? String(contentsOf: err, encoding: .utf8)) ?? "")
        kill(p.processIdentifier, SIGINT)
        XCTAssertEqual(cluster.exitStatus(of: p, within: 60), 130)
        let stderr = (try? String(contentsOf: err, encoding: .utf8)) ?? ""
        XCTAssertTrue(stderr.contains("ds-instance: interrupted; instance \(id) goes on. Follow it with: ds-instance wait \(id)"), stderr)
    }

    /// The signal masks of a process from /proc: which signals it ignores and which it catches.
    func dispositions(of pid: Int32) throws -> (ignored: UInt64, caught: UInt64) {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        func mask(_ field: String) throws -> UInt64 {
            let line = try XCTUnwrap(status.split(separator: "\n").first { $0.hasPrefix(field + ":") }, "no \(field) in /proc/\(pid)/status")
            return try XCTUnwrap(UInt64(line.dropFirst(field.count + 1).trimmingCharacters(in: .whitespaces), radix: 16))
        }
        return (try mask("SigIgn"), try mask("SigCgt"))
    }

    func testSigintIgnoredAtStartStaysIgnored() async throws {
        let (p, id, err) = try await startWaitingSubmit(ignoringInterrupt: true)
        // Read from the kernel, not guessed from timing: SIGINT ignored still, SIGTERM caught.
        let (ignored, caught) = try dispositions(of: p.processIdentifier)
        XCTAssertNotEqual(ignored & (1 << (SIGINT - 1)), 0, "SIGINT is no longer ignored")
        XCTAssertNotEqual(caught & (1 << (SIGTERM - 1)), 0, "SIGTERM is not caught")
        kill(p.processIdentifier, SIGINT)
        kill(p.processIdentifier, SIGTERM)
        let status = cluster.exitStatus(of: p, within: 60)
        let stderr = (try? String(contentsOf: err, encoding: .utf8)) ?? ""
        XCTAssertEqual(status, 143, stderr)
        XCTAssertEqual(stderr.split(separator: "\n").filter { $0.contains("interrupted;") },
                       ["ds-submit: interrupted; instance \(id) goes on. Follow it with: ds-instance wait \(id)"], stderr)
    }
}
