import Foundation
import Shared
import XCTest

/// Contexts on real daemons and tools: a master, a worker and ds-submit that know their cluster
/// only from the contexts file; bad files refused with exit 78 before anything is written.
class ContextEndToEndTests: ClusterTestCase {
    /// What the cluster's environment says, which these tests take from a context instead.
    static let clusterVariables = ["DS_ZK", "DS_ZK_ROOT", "DS_DB", "DS_HOME", "DS_ZK_SESSION_TIMEOUT"]
    var configFile: String { cluster.environment["XDG_CONFIG_HOME"]! + "/ds/config" }

    func write(_ text: String, mode: Int = 0o600) throws {
        try FileManager.default.createDirectory(atPath: (configFile as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: configFile, atomically: false, encoding: .utf8)
        chmod(configFile, mode_t(mode))
    }

    /// 'test' is this cluster; 'current' is a ZooKeeper where nothing listens.
    var contexts: String {
        """
        # the test's clusters
        current = "nowhere"

        [contexts.nowhere]
        zk = "127.0.0.1:1"
        db = "\(cluster.directory.path)/nowhere.db"

        [contexts.test]
        zk = "\(cluster.zk.connectString)"
        zk_root = "\(cluster.root)"
        zk_session_timeout = "\(cluster.sessionTimeout)"
        db = "\(cluster.databasePath)"
        home = "\(cluster.directory.path)"
        """
    }

    func run(_ tool: String, _ arguments: [String], _ extra: [String: String] = [:]) throws -> ToolRun {
        try cluster.run(tool, arguments, environment: extra, unset: Self.clusterVariables)
    }

    func testDaemonsAndToolsTakeTheirClusterFromAContext() async throws {
        try write(contexts)
        _ = try cluster.startDaemon("ds-master", ["--host", "127.0.0.1", "--port", "7301"], environment: ["DS_CONTEXT": "test"], unset: Self.clusterVariables)
        _ = try cluster.startDaemon("ds-worker", ["--host", "127.0.0.1", "--port", "7302", "--slots", "2", "--log-dir", cluster.logDirectory],
                                environment: ["DS_CONTEXT": "test"], unset: Self.clusterVariables)
        let file = try cluster.workflowFile(#"{"name":"ctx","tasks":[{"name":"a","command":"true"},{"name":"b","deps":["a"],"command":"exit 3"}]}"#)
        let submit = try run("ds-submit", [file, "--wait", "--context", "test"])
        XCTAssertEqual(submit.status, 1, "ran on the context's cluster and failed as b does: \(submit.stderr)")
        XCTAssertTrue(submit.stdout.contains("FAILURE"), submit.stdout)
        // Off a terminal (stderr is a file here) each task state change is a line on stderr.
        let progress = submit.stderr.split(separator: "\n").map { String($0.split(separator: " ").dropFirst().joined(separator: " ")) }
        let stored = try await cluster.store().instances(InstanceQuery())
        let id = try XCTUnwrap(stored.first?.id)
        XCTAssertTrue(progress.contains("ctx#\(id) a SUCCESS attempt 1"), submit.stderr)
        XCTAssertTrue(progress.contains("ctx#\(id) b FAILURE attempt 1 exited with status 3"), submit.stderr)
        XCTAssertFalse(submit.stdout.contains("attempt 1"), "stdout is what it was: \(submit.stdout)")
        // The flag beats the context; the environment beats it too.
        let show = try run("ds-context", ["show", "--context", "test", "--zk-root", "/flag"], ["DS_HOME": "/env-home"])
        XCTAssertEqual(show.status, 0, show.stderr)
        let rows = show.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") }
        XCTAssertTrue(rows.contains("zk_root /flag --zk-root"), show.stdout)
        XCTAssertTrue(rows.contains("home /env-home DS_HOME"), show.stdout)
        XCTAssertTrue(rows.contains("zk \(cluster.zk.connectString) context test"), show.stdout)
        XCTAssertTrue(rows.contains("context test --context"), show.stdout)
        // The current context is used when none is named: its ZooKeeper does not answer.
        let list = try run("ds-context", ["list"])
        XCTAssertTrue(list.stdout.split(separator: "\n").contains { $0.hasPrefix("*") && $0.contains("nowhere") }, list.stdout)
        let listTest = try run("ds-context", ["list"], ["DS_CONTEXT": "test"])
        XCTAssertTrue(listTest.stdout.split(separator: "\n").contains { $0.hasPrefix("*") && $0.contains(" test ") }, listTest.stdout)
        let instances = try run("ds-instance", ["list", "-q"], ["DS_CONTEXT": "test"])
        XCTAssertEqual(instances.stdout, "\(id)\n", instances.stderr)
        // 'use' makes 'test' current: only that line changes, and the mode stays.
        chmod(configFile, 0o640)
        let use = try run("ds-context", ["use", "test"])
        XCTAssertEqual(use.status, 0, use.stderr)
        XCTAssertEqual(try String(contentsOfFile: configFile, encoding: .utf8),
                       contexts.replacingOccurrences(of: "current = \"nowhere\"", with: "current = \"test\""))
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: configFile)[.posixPermissions] as? Int, 0o640)
        XCTAssertEqual(try run("ds-instance", ["list", "-q"]).stdout, "\(id)\n", "the current context")
        // A password in a context's database URL is shown by no listing, JSON included.
        try write(contexts + "\n[contexts.pg]\ndb = \"postgres://ds:hunter2@db.example/ds\"\n", mode: 0o600)
        for arguments in [["list"], ["list", "--json"]] {
            let listed = try run("ds-context", arguments)
            XCTAssertEqual(listed.status, 0, listed.stderr)
            XCTAssertTrue(listed.stdout.contains("postgres://ds:REDACTED@db.example/ds"), listed.stdout)
            XCTAssertFalse(listed.stdout.contains("hunter2"), listed.stdout)
        }
    }

    func testABadContextsFileExits78NamingWhatToFixAndWritesNothing() throws {
        let cases: [(String, Int, [String], String)] = [
            ("current = \"test\"\n[contexts.test]\nzk = \"h:1\n", 0o600, [], "is not valid TOML: line 3"),
            ("[contexts.test]\nzk_rot = \"/x\"\n", 0o600, ["--context", "test"], "unknown key 'zk_rot' in context 'test' of \(configFile)"),
            ("[contexts.test]\n[contexts.prod]\n", 0o600, ["--context", "tset"], "names context 'tset', which \(configFile) does not define; it defines 'prod', 'test'"),
            ("[contexts.test]\ndb_password_file = \"/etc/pg\"\n", 0o644, [], "names credentials (context 'test') and others can read it (mode 644): chmod 600 \(configFile)"),
            ("[contexts.test]\ndb = \"postgres://ds:hunter2@db/ds\"\n", 0o640, [], "chmod 600 \(configFile)"),
        ]
        for (text, mode, arguments, message) in cases {
            try write(text, mode: mode)
            for tool in [["ds-pool", "set", "p", "1"], ["ds-context", "show"]] {
                // With the cluster's whole environment: the file is checked even where it would add nothing.
                let run = try cluster.run(tool[0], Array(tool.dropFirst()) + arguments)
                XCTAssertEqual(run.status, 78, "\(tool) with \(text): \(run.stderr)")
                XCTAssertTrue(run.stderr.contains(message), "\(tool): \(run.stderr)")
                XCTAssertFalse(run.stderr.contains("hunter2"))
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: cluster.databasePath), "nothing written")
        }
        // A context named with no file at all is refused; no file and no name: as before.
        try FileManager.default.removeItem(atPath: configFile)
        XCTAssertEqual(try run("ds-context", ["show", "--context", "test"]).status, 78)
        XCTAssertEqual(try run("ds-context", ["use", "test"]).status, 78)
        let plain = try cluster.run("ds-pool", ["set", "p", "1"])
        XCTAssertEqual(plain.status, 0, plain.stderr)
    }
}
