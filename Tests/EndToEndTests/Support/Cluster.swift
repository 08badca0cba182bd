import Foundation
import Shared
import XCTest

/// What a finished tool run printed.
struct ToolRun {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// The built `ds-*` executables, beside the test bundle.
enum Binaries {
    static let directory: URL = {
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        if FileManager.default.fileExists(atPath: bundle.appendingPathComponent("ds-submit").path) { return bundle }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug")
    }()

    /// A built tool by name, or any program by absolute path.
    static func url(_ tool: String) -> URL { tool.hasPrefix("/") ? URL(fileURLWithPath: tool) : directory.appendingPathComponent(tool) }
}

/// One test's slice of a shared ZooKeeper server or ensemble: its own znode root, database,
/// state folder and daemons, all stopped by pid when the test ends.
final class Cluster {
    let zk: any ZooKeeperService
    /// The daemons' `DS_ZK_SESSION_TIMEOUT`.
    let sessionTimeout: String
    let root: String
    let directory: URL
    /// The PostgreSQL database the daemons and tools get as `--db` (DS_DB and DS_DB_PASSWORD_FILE);
    /// nil: the SQLite file `databasePath`.
    let postgres: PostgresServer.Database?
    private(set) var daemons: [(name: String, process: Process)] = []
    private var nextPort = 7000
    /// The test's own store of the PostgreSQL database, opened once (each opening is a pool).
    private let openedStore = NSLock()
    private var postgresStore: Store?

    init(zk: any ZooKeeperService, sessionTimeout: String = "4s", postgres: PostgresServer.Database? = nil) throws {
        self.zk = zk
        self.sessionTimeout = sessionTimeout
        self.postgres = postgres
        root = "/t\(UUID().uuidString.prefix(8).lowercased())"
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ds-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    /// The SQLite file (when the cluster runs on SQLite).
    var databasePath: String { directory.appendingPathComponent("ds.db").path }
    /// What the daemons and tools open: the SQLite file or the PostgreSQL database.
    var databaseLocation: DatabaseLocation { postgres?.location ?? .sqlite(path: databasePath) }
    var logDirectory: String { directory.appendingPathComponent("logs").path }

    var environment: [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["DS_ZK"] = zk.connectString
        env["DS_ZK_ROOT"] = root
        if let postgres { env.merge(postgres.environment) { $1 } } else { env["DS_DB"] = databasePath }
        env["DS_HOME"] = directory.path
        env["DS_ZK_SESSION_TIMEOUT"] = sessionTimeout
        // The contexts file of whoever runs the tests is not the test's.
        env["XDG_CONFIG_HOME"] = directory.appendingPathComponent("config").path
        env["DS_CONTEXT"] = nil
        return env
    }

    var paths: ZooKeeperPaths { ZooKeeperPaths(root: root) }

    // MARK: Daemons

    /// Starts a master; `port` fixes its identity 127.0.0.1:port (a restart under the same name).
    @discardableResult
    func startMaster(host: String = "127.0.0.1", port: Int? = nil, prefix: [String] = [], environment extra: [String: String] = [:],
                     _ arguments: [String] = []) throws -> Process {
        nextPort += 1
        return try startDaemon("ds-master", ["--host", host, "--port", String(port ?? nextPort)] + arguments,
                               environment: extra, prefix: prefix)
    }

    @discardableResult
    func startWorker(slots: Int = 2, host: String = "127.0.0.1", port: Int? = nil, groups: [String] = [], prefix: [String] = [],
                     environment extra: [String: String] = [:], _ arguments: [String] = []) throws -> Process {
        nextPort += 1
        return try startDaemon("ds-worker", ["--host", host, "--port", String(port ?? nextPort), "--slots", String(slots),
                                             "--log-dir", logDirectory] + groups.flatMap { ["--group", $0] } + arguments,
                               environment: extra, prefix: prefix)
    }

    /// Starts a daemon; `prefix` runs it through another command that execs it in place (so the
    /// pid is the daemon's), e.g. `ip netns exec <namespace>` to start it on a `NetworkHosts` host.
    func startDaemon(_ tool: String, _ arguments: [String], environment extra: [String: String] = [:],
                     unset: [String] = [], prefix: [String] = []) throws -> Process {
        let p = Process()
        if let launcher = prefix.first {
            p.executableURL = URL(fileURLWithPath: launcher)
            p.arguments = Array(prefix.dropFirst()) + [Binaries.url(tool).path] + arguments
        } else {
            p.executableURL = Binaries.url(tool)
            p.arguments = arguments
        }
        p.environment = environment.filter { !unset.contains($0.key) }.merging(extra) { _, new in new }
        let logPath = directory.appendingPathComponent("\(tool)-\(daemons.count).log").path
        FileManager.default.createFile(atPath: logPath, contents: nil)
        // One descriptor for both: two would each write from offset 0 over the other's lines.
        let log = FileHandle(forWritingAtPath: logPath)
        p.standardError = log
        p.standardOutput = log
        p.standardInput = FileHandle.nullDevice
        try p.run()
        daemons.append(("\(tool)-\(daemons.count)", p))
        return p
    }

    /// `kill -9`, and waits until it is gone.
    func kill9(_ process: Process) {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Waits for a daemon to exit on its own; its status, or nil if it did not within `timeout`.
    func exitStatus(of process: Process, within timeout: TimeInterval = 120) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        return process.isRunning ? nil : process.terminationStatus
    }

    /// SIGTERM every daemon, then SIGKILL what is left after a while; waits for all.
    func stopAll() {
        for d in daemons where d.process.isRunning {
            kill(d.process.processIdentifier, SIGCONT)
            kill(d.process.processIdentifier, SIGTERM)
        }
        let deadline = Date().addingTimeInterval(20)
        for d in daemons {
            while d.process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            if d.process.isRunning { kill(d.process.processIdentifier, SIGKILL); d.process.waitUntilExit() }
        }
        daemons.removeAll()
    }

    func remove() {
        stopAll()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Every daemon's stderr, for failure messages.
    func daemonLogs() -> String {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return files.filter { $0.hasPrefix("ds-") && $0.hasSuffix(".log") }.sorted().map { name in
            "== \(name)\n" + ((try? String(contentsOfFile: directory.appendingPathComponent(name).path, encoding: .utf8)) ?? "")
        }.joined(separator: "\n")
    }

    // MARK: Tools

    /// Runs a tool to completion; stdout and stderr go through files, so nothing can block on a pipe.
    func run(_ tool: String, _ arguments: [String], stdin: String? = nil, environment extra: [String: String] = [:],
             unset: [String] = [], timeout: TimeInterval = 300) throws -> ToolRun {
        let p = Process()
        p.executableURL = Binaries.url(tool)
        p.arguments = arguments
        p.environment = environment.filter { !unset.contains($0.key) }.merging(extra) { _, new in new }
        let id = UUID().uuidString
        let out = directory.appendingPathComponent("run-\(id).out"), err = directory.appendingPathComponent("run-\(id).err")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        p.standardOutput = try FileHandle(forWritingTo: out)
        p.standardError = try FileHandle(forWritingTo: err)
        if let stdin {
            let input = directory.appendingPathComponent("run-\(id).in")
            try stdin.write(to: input, atomically: true, encoding: .utf8)
            p.standardInput = try FileHandle(forReadingFrom: input)
        } else {
            p.standardInput = FileHandle.nullDevice
        }
        try p.run()
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            XCTFail("\(tool) \(arguments) did not finish within \(timeout)s\n\(daemonLogs())")
        }
        p.waitUntilExit()
        return ToolRun(status: p.terminationStatus,
                       stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
                       stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
    }

    /// Writes a workflow file into the test folder and returns its path.
    func workflowFile(_ json: String, name: String = UUID().uuidString) throws -> String {
        let url = directory.appendingPathComponent("\(name).json")
        try json.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    func store() throws -> Store {
        guard postgres != nil else { return try Store(path: databasePath) }
        return try openedStore.withLock {
            if let postgresStore { return postgresStore }
            let store = try Store(location: databaseLocation)
            postgresStore = store
            return store
        }
    }

    /// Submits without waiting; the instance id.
    func submit(_ json: String, _ arguments: [String] = []) throws -> Int64 {
        let run = try self.run("ds-submit", [try workflowFile(json)] + arguments)
        XCTAssertEqual(run.status, 0, run.stderr)
        return Int64(run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    /// Submits with `--wait --json`: the run and the instance's summary.
    func submitAndWait(_ json: String, _ extra: [String] = []) throws -> (ToolRun, InstanceSummary) {
        let run = try self.run("ds-submit", [try workflowFile(json), "--wait", "--json"] + extra)
        return (run, try JSONDecoder().decode(InstanceSummary.self, from: Data(run.stdout.utf8)))
    }

    /// The marker file the scenarios' tasks append to.
    var marker: String { directory.appendingPathComponent("markers").path }

    /// Waits until the instance ends; its state.
    func waitForEnd(_ instance: Int64, timeout: TimeInterval = 180) async throws -> WorkflowState? {
        let store = try store()
        var state: WorkflowState?
        try await eventually("instance \(instance) ends", timeout: timeout) {
            state = try await store.instance(instance)?.state
            return state?.isTerminal ?? false
        }
        return state
    }

    /// Lines of a marker file that tasks append to.
    func lines(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    func client(credentials: ZooKeeperCredentials? = nil) async throws -> ZooKeeperClient {
        try await ZooKeeperClient.connect(zk.connectString, credentials: credentials)
    }

    /// Every znode under this test's root, with its data.
    func snapshot() async throws -> [String: Data] {
        let zk = try await client()
        defer { zk.close() }
        var result: [String: Data] = [:]
        var stack = [root]
        while let path = stack.popLast() {
            guard let (data, _) = try? await zk.getData(path) else { continue }
            result[path] = data
            for child in (try? await zk.children(path)) ?? [] { stack.append(path + "/" + child) }
        }
        return result
    }
}

/// Waits for `condition`, polling; the deadline is generous because the machines are shared.
func eventually(_ what: String, timeout: TimeInterval = 120, _ condition: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(100))
    }
    XCTFail("timed out after \(timeout)s waiting for: \(what)")
}

/// Waits until the task has written a whole number (a pid, a process group) to `path`, and returns
/// it. The shell's `echo $$ > file` creates the file before it writes to it, so a file that exists
/// can still be empty: waiting for the file alone races the write.
func numberWritten(to path: String, by what: String) async throws -> Int32 {
    var number: Int32?
    try await eventually("\(what) wrote its number to \(path)") {
        number = (try? String(contentsOfFile: path, encoding: .utf8)).flatMap { text in
            text.hasSuffix("\n") ? Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) : nil
        }
        return number != nil
    }
    return try XCTUnwrap(number)
}

/// A suite that shares one ZooKeeper server among its tests; each test gets its own cluster, on
/// SQLite, or with `onPostgreSQL` on a fresh database of the test process's scratch PostgreSQL
/// (skipped, saying why, where none can run).
class ClusterTestCase: XCTestCase {
    static var server: ZooKeeperServer?
    static var serverError: Error?
    var cluster: Cluster!
    class var onPostgreSQL: Bool { false }

    override class func setUp() {
        super.setUp()
        do { server = try ZooKeeperServer() } catch { serverError = error }
    }

    override class func tearDown() {
        server?.remove()
        server = nil
        super.tearDown()
    }

    override func setUpWithError() throws {
        guard let server = Self.server else {
            throw Self.serverError ?? NSError(domain: "ClusterTestCase", code: 1,
                                              userInfo: [NSLocalizedDescriptionKey: "ZooKeeper did not start"])
        }
        cluster = try Cluster(zk: server, postgres: Self.onPostgreSQL ? try PostgresServer.shared().createDatabase() : nil)
    }

    override func tearDown() {
        if let run = testRun, run.failureCount > 0 { print(cluster?.daemonLogs() ?? "") }
        cluster?.remove()
        super.tearDown()
    }
}

/// A suite that shares one 3-server ZooKeeper ensemble among its tests; each test gets its own
/// cluster, whose daemons know all three servers.
class EnsembleClusterTestCase: XCTestCase {
    static var ensemble: ZooKeeperEnsemble?
    static var ensembleError: Error?
    /// The daemons' session timeout. When the leader dies every client of every server is
    /// disconnected (followers drop their clients until a new leader has synced them), and a
    /// daemon cut off for a whole session timeout fences itself and exits 69, as it must. An
    /// election on loopback takes a second or two, but on a loaded 2-core machine three JVMs
    /// (one restarting) plus the daemons and hundreds of task processes can stretch it, and its
    /// sync, many times; 15 s survives that with room to spare while a dead daemon is still
    /// noticed within a test's patience. It is no timing assertion: nothing checks how long an
    /// election took.
    static let sessionTimeout = "15s"
    var cluster: Cluster!

    var ensemble: ZooKeeperEnsemble { Self.ensemble! }

    override class func setUp() {
        super.setUp()
        do { ensemble = try ZooKeeperEnsemble() } catch { ensembleError = error }
    }

    override class func tearDown() {
        ensemble?.remove()
        ensemble = nil
        super.tearDown()
    }

    override func setUpWithError() throws {
        guard let ensemble = Self.ensemble else {
            throw Self.ensembleError ?? NSError(domain: "EnsembleClusterTestCase", code: 1,
                                                userInfo: [NSLocalizedDescriptionKey: "the ZooKeeper ensemble did not start"])
        }
        // A server a previous test of the suite stopped and could not restart: start it again.
        try ensemble.start()
        cluster = try Cluster(zk: ensemble, sessionTimeout: Self.sessionTimeout)
    }

    override func tearDown() {
        if let run = testRun, run.failureCount > 0, let cluster {
            // The logs are long after hundreds of tasks: keep a copy beside printing them.
            let keep = FileManager.default.temporaryDirectory
                .appendingPathComponent("ds-ensemble-failure-\(name.filter { $0.isLetter || $0.isNumber })-\(Int(Date().timeIntervalSince1970))")
            try? FileManager.default.createDirectory(at: keep, withIntermediateDirectories: true)
            for file in (try? FileManager.default.contentsOfDirectory(atPath: cluster.directory.path)) ?? []
            where file.hasPrefix("ds-") || file.hasPrefix("ds.db") || file == "markers" {
                try? FileManager.default.copyItem(at: cluster.directory.appendingPathComponent(file), to: keep.appendingPathComponent(file))
            }
            for server in Self.ensemble?.servers ?? [] {
                try? FileManager.default.copyItem(atPath: server.logPath, toPath: keep.appendingPathComponent("zookeeper-\(server.peer!.id).log").path)
            }
            print("daemon and ZooKeeper logs kept in \(keep.path)")
            print(cluster.daemonLogs())
            print(Self.ensemble?.logTails() ?? "")
        }
        cluster?.remove()
        super.tearDown()
    }
}
