import Foundation
import Shared
import XCTest

/// Tenants (the OS user a task runs as), the task's built environment and declared outputs,
/// through real ds-master, ds-worker (and its task-supervisor) and ds-submit processes.
final class TenantTests: ClusterTestCase {
    /// Users made for a test, removed at its end.
    private var madeUsers: [String] = []
    private var madeFiles: [String] = []

    override func tearDown() {
        for user in madeUsers { _ = try? runProgram("/usr/sbin/userdel", ["-r", user]) }
        for file in madeFiles { try? FileManager.default.removeItem(atPath: file) }
        super.tearDown()
    }

    @discardableResult
    private func runProgram(_ path: String, _ arguments: [String]) throws -> ToolRun {
        let run = try cluster.run(path, arguments)
        return run
    }

    private func requireRoot() throws {
        guard getuid() == 0 else { throw XCTSkip("tenant tests switch users: they need root (running as uid \(getuid()))") }
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/useradd") else { throw XCTSkip("useradd is not installed") }
    }

    /// Makes `name` with a home folder; its uid.
    private func makeUser(_ name: String) throws -> uid_t {
        _ = try? runProgram("/usr/sbin/userdel", ["-r", name])  // left by an interrupted run
        let made = try runProgram("/usr/sbin/useradd", ["-m", "-s", "/bin/sh", name])
        XCTAssertEqual(made.status, 0, made.stderr)
        madeUsers.append(name)
        return try XCTUnwrap(getpwnam(name)?.pointee.pw_uid)
    }

    private func submitAndWait(_ json: String) throws -> (ToolRun, InstanceSummary) {
        let run = try cluster.run("ds-submit", [try cluster.workflowFile(json), "--wait", "--json"])
        return (run, try JSONDecoder().decode(InstanceSummary.self, from: Data(run.stdout.utf8)))
    }

    private func log(_ task: InstanceSummary.Task?) -> String {
        guard let path = task?.logPath else { return "" }
        return (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }

    /// `id -u`, `id -G`, HOME, USER and the working folder of a tenant task are the tenant's; a
    /// task's own tenant beats its workflow's; a tenant cannot read a root-only file of the worker.
    func testTenantTaskRunsAsItsUserAndTheTaskOverrideWins() throws {
        try requireRoot()
        let uid1 = try makeUser("ds-t1")
        let uid2 = try makeUser("ds-t2")
        let secret = cluster.directory.appendingPathComponent("secret").path
        try "worker-secret\n".write(toFile: secret, atomically: true, encoding: .utf8)
        chmod(secret, 0o600)
        // The tests' temporary folders are root's: the tenant must be able to reach the secret to be refused by its mode.
        chmod(cluster.directory.path, 0o755)
        try cluster.startMaster()
        try cluster.startWorker(slots: 1, ["--tenants", "ds-t1", "--tenants", "ds-t2"])
        let show = #"echo "uid=$(id -u) groups=$(id -G) home=$HOME user=$USER logname=$LOGNAME pwd=$(pwd)""#
        let (run, summary) = try submitAndWait("""
            {"name":"tenants","tenant":"ds-t1","tasks":[
              {"name":"one","command":\(Self.json(show))},
              {"name":"two","tenant":"ds-t2","deps":["one"],"command":\(Self.json(show))},
              {"name":"peek","deps":["two"],"command":"cat \(secret) && echo READ || echo DENIED"}]}
            """)
        XCTAssertEqual(run.status, 0, run.stderr + run.stdout)
        let one = log(summary.tasks.first { $0.taskName == "one" })
        let gid1 = try XCTUnwrap(getpwnam("ds-t1")?.pointee.pw_gid)
        XCTAssertTrue(one.contains("uid=\(uid1) groups=\(gid1) home=/home/ds-t1 user=ds-t1 logname=ds-t1 pwd=/home/ds-t1"), one)
        let two = log(summary.tasks.first { $0.taskName == "two" })
        XCTAssertTrue(two.contains("uid=\(uid2) "), "the task's tenant beats the workflow's: \(two)")
        XCTAssertTrue(two.contains("home=/home/ds-t2 user=ds-t2"), two)
        let peek = log(summary.tasks.first { $0.taskName == "peek" })
        XCTAssertTrue(peek.contains("DENIED"), peek)
        XCTAssertFalse(peek.contains("worker-secret"), peek)
    }

    /// A tenant the worker does not list, one its host lacks, and root when not listed each fail
    /// the attempt (no retry: FAILURE once), with the reason in the attempt and its log; a task
    /// naming none runs as --default-tenant.
    func testRefusedTenantsFailTheAttemptWithTheReason() throws {
        try requireRoot()
        let uid1 = try makeUser("ds-t1")
        try cluster.startMaster()
        try cluster.startWorker(slots: 1, ["--tenants", "ds-t1,ds-nosuch-user", "--default-tenant", "ds-t1"])
        let (run, summary) = try submitAndWait("""
            {"name":"refused","failure_strategy":"CONTINUE","tasks":[
              {"name":"unlisted","tenant":"nobody","command":"echo ran"},
              {"name":"unknown","tenant":"ds-nosuch-user","command":"echo ran"},
              {"name":"root","tenant":"root","command":"echo ran"},
              {"name":"default","command":"echo uid=$(id -u)"}]}
            """)
        XCTAssertEqual(run.status, 1, run.stderr)
        func task(_ name: String) -> InstanceSummary.Task? { summary.tasks.first { $0.taskName == name } }
        for (name, reason) in [("unlisted", "tenant 'nobody' is not allowed on this worker"),
                               ("unknown", "tenant 'ds-nosuch-user' does not exist on this worker's host"),
                               ("root", "tenant 'root' is not allowed on this worker")] {
            let t = task(name)
            XCTAssertEqual(t?.state, "FAILURE", name)
            XCTAssertEqual(t?.attempt, 1, "\(name): one attempt, no retry storm")
            XCTAssertTrue(t?.message?.contains(reason) == true, "\(name): \(t?.message ?? "nil")")
            XCTAssertTrue(log(t).contains("[ds] not started: \(reason)"), "\(name): \(log(t))")
            XCTAssertFalse(log(t).contains("ran"), name)
        }
        XCTAssertEqual(task("default")?.state, "SUCCESS")
        XCTAssertTrue(log(task("default")).contains("uid=\(uid1)"), log(task("default")))
        let shown = try cluster.run("ds-instance", ["show", String(summary.instance.id)])
        XCTAssertTrue(shown.stdout.contains("does not exist on this worker's host"), shown.stdout)
    }

    /// Root runs only when listed: listed, it runs.
    func testRootRunsOnlyWhenListed() throws {
        try requireRoot()
        try cluster.startMaster()
        try cluster.startWorker(slots: 1, ["--tenants", "root"])
        let (run, summary) = try submitAndWait(#"{"name":"root","tasks":[{"name":"r","tenant":"root","command":"echo uid=$(id -u)"}]}"#)
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(log(summary.tasks.first).contains("uid=0"), log(summary.tasks.first))
    }

    /// The task's environment is built: nothing of the worker's reaches it but the documented
    /// base and what --pass-env names.
    func testTaskEnvironmentIsBuiltNotInherited() throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 1, environment: ["DS_TEST_WORKER_ONLY": "leak1", "https_proxy": "http://proxy.invalid:3128",
                                                         "OPENSSL_CONF": "/tmp/evil.cnf", "GIT_ASKPASS": "/tmp/askpass",
                                                         "DS_TEST_PASSED": "passed-on", "LANG": "C.UTF-8"],
                                ["--pass-env", "DS_TEST_PASSED"])
        let (run, summary) = try submitAndWait(#"{"name":"env","tasks":[{"name":"e","env":{"MINE":"x"},"command":"env | sort"}]}"#)
        XCTAssertEqual(run.status, 0, run.stderr)
        let env = log(summary.tasks.first)
        for leaked in ["DS_TEST_WORKER_ONLY", "https_proxy", "OPENSSL_CONF", "GIT_ASKPASS", "DS_ZK=", "DS_DB", "DS_HOME", "DS_ZK_ROOT"] {
            XCTAssertFalse(env.contains(leaked), "\(leaked) reached the task:\n\(env)")
        }
        for expected in ["DS_TEST_PASSED=passed-on", "MINE=x", "SHELL=/bin/sh", "LANG=C.UTF-8", "USER=", "HOME=", "LOGNAME=", "PATH=",
                         "DS_TASK_NAME=e"] {
            XCTAssertTrue(env.contains(expected), "\(expected) missing:\n\(env)")
        }
    }

    /// Only declared output parameters reach the next task; the others are ignored with a `[ds]`
    /// line in the printing task's log.
    func testUndeclaredOutputsDoNotReachTheNextTask() throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 1)
        let printing = #"echo '${setValue(OPENSSL_CONF=evil.cnf)}'; echo '${setValue(https_proxy=http://evil:1)}'; echo '${setValue(GIT_ASKPASS=/tmp/x)}'; echo '${setValue(rows=42)}'; echo '${setValue(dt=today)}'"#
        let (run, summary) = try submitAndWait("""
            {"name":"outs","params":{"dt":"yesterday"},"tasks":[
              {"name":"produce","outputs":["rows"],"command":\(Self.json(printing))},
              {"name":"consume","deps":["produce"],"command":"env | sort"}]}
            """)
        XCTAssertEqual(run.status, 0, run.stderr)
        let env = log(summary.tasks.first { $0.taskName == "consume" })
        XCTAssertTrue(env.contains("rows=42"), "a declared output (task outputs) arrives:\n\(env)")
        XCTAssertTrue(env.contains("dt=today"), "a declared output (workflow params) arrives:\n\(env)")
        for name in ["OPENSSL_CONF", "https_proxy", "GIT_ASKPASS"] { XCTAssertFalse(env.contains(name), "\(name) arrived:\n\(env)") }
        let produced = log(summary.tasks.first { $0.taskName == "produce" })
        XCTAssertTrue(produced.contains("[ds] output parameters ignored, not declared: 'GIT_ASKPASS', 'OPENSSL_CONF', 'https_proxy'"), produced)
    }

    /// A bad tenant or outputs list is refused at submit, naming the task and field; nothing is stored.
    func testBadTenantAndOutputsAreRefusedAtSubmit() throws {
        let cases: [(String, String)] = [
            (#"{"name":"w","tenant":"-rf","tasks":[{"name":"a","command":"true"}]}"#, "field 'tenant': '-rf' is not a user name"),
            (#"{"name":"w","tasks":[{"name":"a","tenant":"a b","command":"true"}]}"#, "task 'a', field 'tenant': 'a b' is not a user name"),
            (#"{"name":"w","tasks":[{"name":"a","tenant":"\#(String(repeating: "u", count: 33))","command":"true"}]}"#, "task 'a', field 'tenant'"),
            (#"{"name":"w","tasks":[{"name":"a","outputs":["PATH"],"command":"true"}]}"#, "task 'a', field 'outputs': 'PATH' is reserved"),
            (#"{"name":"w","tasks":[{"name":"a","outputs":"rows","command":"true"}]}"#, "task 'a', field 'outputs': must be a list"),
            (#"{"name":"w","tasks":[{"name":"a","outputs":[1],"command":"true"}]}"#, "task 'a', field 'outputs': must be a list of names"),
        ]
        for (json, expected) in cases {
            let run = try cluster.run("ds-submit", [try cluster.workflowFile(json)])
            XCTAssertNotEqual(run.status, 0, json)
            XCTAssertTrue(run.stderr.contains(expected), "\(json): \(run.stderr)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: cluster.databasePath), "nothing is stored on refusal")
    }

    static func json(_ s: String) -> String { String(decoding: try! JSONEncoder().encode(s), as: UTF8.self) }
}

/// Alert commands under the same rules: as --alert-tenant, with a built environment.
final class AlertTenantTests: ClusterTestCase {
    func testAlertCommandRunsAsTheAlertTenantWithABuiltEnvironment() async throws {
        guard getuid() == 0 else { throw XCTSkip("running an alert command as another user needs root (uid \(getuid()))") }
        guard let nobody = getpwnam("nobody")?.pointee else { throw XCTSkip("this host has no user 'nobody'") }
        let (uid, gid) = (nobody.pw_uid, nobody.pw_gid)
        // Written by root's shell into a folder the tenant may write: the command prints where it can.
        let out = cluster.directory.appendingPathComponent("alert-out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        chmod(cluster.directory.path, 0o755)
        chmod(out.path, 0o777)
        let seen = out.appendingPathComponent("seen").path
        let command = #"{ echo "uid=$(id -u) gid=$(id -g) user=$USER"; env; } > \#(seen)"#
        try cluster.startMaster(environment: ["DS_TEST_MASTER_ONLY": "leak", "https_proxy": "http://p:1"],
                                ["--alert-command", command, "--alert-tenant", "nobody", "--alert-retries", "0"])
        try cluster.startWorker()
        let id = try cluster.submit(#"{"name":"told","warning":"SUCCESS","tasks":[{"name":"t","command":"true"}]}"#)
        _ = try await cluster.waitForEnd(id)
        // Settled: SENT or FAILED (SENDING is the lease while the command runs; a retry is PENDING again).
        try await eventually("the alert is settled") { try await self.cluster.store().alerts().first.map { ["SENT", "FAILED"].contains($0.state) } ?? false }
        let alert = try await cluster.store().alerts().first
        XCTAssertEqual(alert?.state, "SENT", alert?.lastError ?? "")
        let text = (try? String(contentsOfFile: seen, encoding: .utf8)) ?? ""
        XCTAssertTrue(text.hasPrefix("uid=\(uid) gid=\(gid) user=nobody"), text)
        for leaked in ["DS_TEST_MASTER_ONLY", "https_proxy", "DS_DB", "DS_ZK"] { XCTAssertFalse(text.contains(leaked), "\(leaked):\n\(text)") }
        XCTAssertTrue(text.contains("DS_ALERT_ID="), text)
        // An unknown alert tenant stops the master at start with the reason.
        let refused = try cluster.run("ds-master", ["--alert-command", "true", "--alert-tenant", "ds-nosuch-user"])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("--alert-tenant 'ds-nosuch-user' does not exist on this host"), refused.stderr)
    }
}
