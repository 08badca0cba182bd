import Foundation
import XCTest

/// With no ZooKeeper to reach, every tool that needs it says which connect string failed and exits 69.
final class UnavailableTests: XCTestCase {
    /// A worker without a working task-supervisor beside it runs no task: it exits 78 at once,
    /// before connecting anywhere, and says what to install.
    func testWorkerWithoutAWorkingSupervisorExits78() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ds-nosup-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let worker = directory.appendingPathComponent("ds-worker")
        try FileManager.default.copyItem(at: Binaries.url("ds-worker"), to: worker)
        let supervisor = directory.appendingPathComponent("task-supervisor")
        for (installed, expected) in [(nil, "is missing or not executable"),
                                      ("#!/bin/sh\nexit 3\n", "did not start (exited with status 3)")] {
            try? FileManager.default.removeItem(at: supervisor)
            if let installed {
                try installed.write(to: supervisor, atomically: true, encoding: .utf8)
                chmod(supervisor.path, 0o755)
            }
            let p = Process()
            p.executableURL = worker
            p.arguments = ["--port", "6998"]
            var env = ProcessInfo.processInfo.environment
            env["DS_ZK"] = "127.0.0.1:\(try freePort())"  // never reached
            env["DS_HOME"] = directory.path
            p.environment = env
            let err = directory.appendingPathComponent("worker.err")
            FileManager.default.createFile(atPath: err.path, contents: nil)
            p.standardError = try FileHandle(forWritingTo: err)
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            p.waitUntilExit()
            let stderr = try String(contentsOf: err, encoding: .utf8)
            XCTAssertEqual(p.terminationStatus, 78, stderr)
            XCTAssertTrue(stderr.contains(supervisor.path) && stderr.contains(expected), stderr)
        }
    }

    /// Issue 23's first finding: `DS_DB=postgres://…` made a SQLite file at the relative path
    /// `postgres:/…` in the current folder, a database of its own on every host. A URL of another
    /// scheme is refused (exit 64), by the master and the tools; a PostgreSQL URL is a server to
    /// reach (here one that cannot be: a temporary failure, 69 or 75); either way no file is made.
    func testADatabaseURLIsRefusedNotTakenForAFileName() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ds-dburl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let workflow = directory.appendingPathComponent("w.json")
        try #"{"name":"w","tasks":[{"name":"a","command":"true"}]}"#.write(to: workflow, atomically: true, encoding: .utf8)
        for (url, expected) in [("postgres://ds@127.0.0.1:\(try freePort())/ds", ""), ("postgresql://ds@127.0.0.1:\(try freePort())/ds?sslmode=disable", ""),
                                ("mysql://ds@db/ds", "mysql:// URL")] {
            for (tool, arguments) in [("ds-master", ["--port", "5998"]), ("ds-submit", [workflow.path]), ("ds-instance", ["list"])] {
                let p = Process()
                p.executableURL = Binaries.url(tool)
                p.arguments = arguments
                p.currentDirectoryURL = directory
                var env = ProcessInfo.processInfo.environment
                env["DS_ZK"] = "127.0.0.1:\(try freePort())"  // never reached: the database is opened first
                env["DS_ZK_SESSION_TIMEOUT"] = "1s"
                env["DS_HOME"] = directory.path
                env["DS_DB"] = url
                p.environment = env
                let err = directory.appendingPathComponent("\(tool).err")
                FileManager.default.createFile(atPath: err.path, contents: nil)
                p.standardError = try FileHandle(forWritingTo: err)
                p.standardOutput = FileHandle.nullDevice
                p.standardInput = FileHandle.nullDevice
                try p.run()
                p.waitUntilExit()
                let stderr = try String(contentsOf: err, encoding: .utf8)
                if url.hasPrefix("mysql") {
                    XCTAssertEqual(p.terminationStatus, 64, "\(tool) DS_DB=\(url): \(stderr)")
                    XCTAssertTrue(stderr.contains("DS_DB '\(url)'") && stderr.contains(expected), "\(tool): \(stderr)")
                } else {
                    XCTAssertTrue([69, 75].contains(p.terminationStatus), "\(tool) DS_DB=\(url): \(p.terminationStatus) \(stderr)")
                }
            }
        }
        let made = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { !$0.hasSuffix(".err") && $0 != "w.json" }
        XCTAssertEqual(made, [], "nothing is made in the current folder or DS_HOME")
    }

    func testToolsExit69NamingTheConnectStringWithinTheSessionTimeout() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ds-nozk-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let connect = "127.0.0.1:\(try freePort())"
        var env = ProcessInfo.processInfo.environment
        env["DS_ZK"] = connect
        env["DS_ZK_SESSION_TIMEOUT"] = "2s"
        env["DS_HOME"] = directory.path
        let workflow = directory.appendingPathComponent("w.json")
        try #"{"name":"w","tasks":[{"name":"a","command":"true"}]}"#.write(to: workflow, atomically: true, encoding: .utf8)

        for (tool, arguments) in [("ds-master", ["--port", "5999"]), ("ds-worker", ["--port", "6999"]),
                                  ("ds-submit", [workflow.path, "--wait"]), ("ds-submit", [workflow.path])] {
            let p = Process()
            p.executableURL = Binaries.url(tool)
            p.arguments = arguments
            p.environment = env
            let err = directory.appendingPathComponent("\(tool).err")
            FileManager.default.createFile(atPath: err.path, contents: nil)
            p.standardError = try FileHandle(forWritingTo: err)
            p.standardOutput = FileHandle.nullDevice
            let started = Date()
            try p.run()
            // Generous: the session timeout is 2 s; this only guards against hanging for ever.
            while p.isRunning && Date().timeIntervalSince(started) < 60 { Thread.sleep(forTimeInterval: 0.05) }
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
            let stderr = try String(contentsOf: err, encoding: .utf8)
            XCTAssertEqual(p.terminationStatus, 69, "\(tool): \(stderr)")
            XCTAssertTrue(stderr.contains(connect), "\(tool) must name \(connect): \(stderr)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.appendingPathComponent("ds.db").path),
                       "nothing is written when ZooKeeper is unreachable")
    }
}
