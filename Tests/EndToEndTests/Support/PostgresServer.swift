import Foundation
import Shared
import XCTest

/// A real PostgreSQL server in a scratch folder under /tmp, started and stopped by
/// `scripts/postgres.sh` (as the `postgres` user: PostgreSQL refuses to run as root) on a free
/// loopback port. One per test process (`shared()`), stopped by its pid when the tests end; each
/// test takes a fresh database of its own (`createDatabase()`).
///
/// The same file serves SharedTests and EndToEndTests (Tests/SharedTests/Support links to it):
/// the one scratch-PostgreSQL helper of the suite. `start()` gives a private server, for tests
/// that stop and restart it.
final class PostgresServer: @unchecked Sendable {
    /// A database of this server: what a ds tool needs to reach it.
    struct Database {
        let name: String
        let host: String
        let port: Int
        let user: String
        let password: String
        let passwordFile: String
        /// For `DS_DB`: the URL, without its password.
        var url: String { "postgres://\(user)@\(host):\(port)/\(name)" }
        /// `DS_DB` and `DS_DB_PASSWORD_FILE`, for a tool's environment.
        var environment: [String: String] { ["DS_DB": url, "DS_DB_PASSWORD_FILE": passwordFile] }
        /// What a `Store` of this database is opened with (as `--db` parses `url` with the password file).
        func settings(poolSize: Int = 8) -> PostgresSettings {
            let bare = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
            return PostgresSettings(host: bare, port: port, user: user, database: name, password: password, poolSize: poolSize)
        }
        var location: DatabaseLocation { .postgres(settings()) }
    }

    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("scripts/postgres.sh").path

    let directory: URL
    let host: String
    let port: Int
    let password: String
    let passwordFile: String
    /// The postmaster's pid, from its pid file (a new one after `start()`).
    private(set) var pid: pid_t
    private let lock = NSLock()
    private var databases = 0
    private var stopped = false

    /// Why this machine cannot run the suite's PostgreSQL, or nil if it can.
    static var unavailableReason: String? {
        if geteuid() != 0 {
            return "PostgreSQL refuses to run as root, so the suite starts it as the postgres user, which needs root: run the tests as root"
        }
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        if !versions.contains(where: { FileManager.default.isExecutableFile(atPath: "/usr/lib/postgresql/\($0)/bin/initdb") }) {
            return "no PostgreSQL server in /usr/lib/postgresql/*/bin: run scripts/install-deps.sh"
        }
        return nil
    }

    /// Starts a server of its own (the caller stops it); skips the test where none can run.
    static func start(host: String = "127.0.0.1") throws -> PostgresServer {
        if let why = unavailableReason { throw XCTSkip(why) }
        return try PostgresServer(host: host)
    }

    private static let sharedLock = NSLock()
    nonisolated(unsafe) private static var sharedServer: Result<PostgresServer, Error>?

    /// The server this test process shares, started on first use and stopped when the tests end
    /// (or the process exits); skips the test where none can run.
    static func shared() throws -> PostgresServer {
        if let why = unavailableReason { throw XCTSkip(why) }
        return try sharedLock.withLock {
            if let sharedServer { return try sharedServer.get() }
            let result = Result { try PostgresServer(host: "127.0.0.1") }
            sharedServer = result
            if case .success = result {
                XCTestObservationCenter.shared.addTestObserver(StopAtTheEnd())
                atexit { PostgresServer.stopShared() }
            }
            return try result.get()
        }
    }

    static func stopShared() {
        if case .success(let server)? = sharedLock.withLock({ sharedServer }) { server.remove() }
    }

    private init(host: String) throws {
        directory = URL(fileURLWithPath: "/tmp").appendingPathComponent("ds-pg-\(UUID().uuidString.prefix(8))")
        self.host = host
        let (status, output, errors) = try Self.runScript(["start", directory.path, "--host", host])
        guard status == 0 else {
            try? FileManager.default.removeItem(at: directory)
            throw XCTSkip("scripts/postgres.sh start failed (\(status)): \(errors)")
        }
        var values: [String: String] = [:]
        for line in output.split(separator: "\n") {
            let pair = line.split(separator: "=", maxSplits: 1)
            if pair.count == 2 { values[String(pair[0])] = String(pair[1]) }
        }
        guard let url = values["DS_DB"], let file = values["DS_DB_PASSWORD_FILE"],
              let portText = try? String(contentsOf: directory.appendingPathComponent("port"), encoding: .utf8),
              let port = Int(portText.trimmingCharacters(in: .whitespacesAndNewlines)),
              let pid = Self.postmasterPID(in: directory) else {
            _ = try? Self.runScript(["stop", directory.path])
            throw XCTSkip("scripts/postgres.sh start printed no DS_DB, port or pid: \(output) \(errors)")
        }
        guard url.hasSuffix(":\(port)/ds") else { throw XCTSkip("scripts/postgres.sh printed DS_DB=\(url), not on port \(port)") }
        self.port = port
        self.pid = pid
        passwordFile = file
        password = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .newlines)
    }

    static func postmasterPID(in directory: URL) -> pid_t? {
        guard let text = try? String(contentsOf: directory.appendingPathComponent("data/postmaster.pid"), encoding: .utf8) else { return nil }
        return text.split(separator: "\n").first.flatMap { pid_t($0) }
    }

    /// Stops the server by its pid and keeps its data: an outage, until `start()`.
    func stop() throws {
        let (status, _, errors) = try Self.runScript(["stop", directory.path])
        guard status == 0 else { throw XCTSkip("scripts/postgres.sh stop failed (\(status)): \(errors)") }
    }

    /// Starts the stopped server again, on its port, with its data and its users.
    func start() throws {
        let (status, _, errors) = try Self.runScript(["start", directory.path])
        guard status == 0, let pid = Self.postmasterPID(in: directory) else {
            throw NSError(domain: "postgres", code: Int(status), userInfo: [NSLocalizedDescriptionKey: "scripts/postgres.sh start again failed: \(errors)"])
        }
        lock.withLock { self.pid = pid }
    }

    /// A new, empty database owned by the user `ds`.
    func createDatabase() throws -> Database {
        let name = lock.withLock { () -> String in
            databases += 1
            return "ds_test_\(getpid())_\(databases)"
        }
        try psql("CREATE DATABASE \(name) OWNER ds")
        return Database(name: name, host: host.contains(":") ? "[\(host)]" : host, port: port, user: "ds",
                        password: password, passwordFile: passwordFile)
    }

    /// Runs `sql` as the superuser over the server's socket (the postgres user's only way in), in
    /// `database`; what it printed, unaligned (`|` between columns), without headers.
    @discardableResult
    func psql(_ sql: String, database: String = "postgres") throws -> String {
        let bin = try Self.binFolder()
        let (status, output, errors) = try Self.run("/usr/sbin/runuser", ["-u", "postgres", "--", bin + "/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                                                                      "-h", directory.appendingPathComponent("socket").path, "-p", String(port),
                                                                      "-U", "postgres", "-d", database, "-c", sql])
        guard status == 0 else { throw NSError(domain: "psql", code: Int(status), userInfo: [NSLocalizedDescriptionKey: "\(sql): \(errors)"]) }
        return output
    }

    /// Stops the server by its pid (scripts/postgres.sh stop) and removes its folder.
    func remove() {
        let first = lock.withLock { () -> Bool in
            defer { stopped = true }
            return !stopped
        }
        guard first else { return }
        _ = try? Self.runScript(["stop", directory.path])
        try? FileManager.default.removeItem(at: directory)
    }

    static func binFolder() throws -> String {
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        guard let newest = versions.compactMap(Int.init).max() else { throw XCTSkip("no PostgreSQL in /usr/lib/postgresql") }
        return "/usr/lib/postgresql/\(newest)/bin"
    }

    private static func runScript(_ arguments: [String]) throws -> (Int32, String, String) {
        try run("/bin/bash", [script] + arguments)
    }

    /// Runs a program to its end: its status, standard output and error. posix_spawn and waitpid,
    /// not Foundation's Process, whose wait hung in async tests with the child a zombie; the
    /// output goes to files, not pipes, so nothing the program leaves running can hold them open.
    static func run(_ path: String, _ arguments: [String]) throws -> (Int32, String, String) {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("ds-pg-run-\(UUID().uuidString)").path
        let (outPath, errPath) = (base + ".out", base + ".err")
        defer { unlink(outPath); unlink(errPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, path, &actions, nil, argv, environ)
        guard spawned == 0 else { throw XCTSkip("cannot run \(path): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let exit = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let output = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        let errors = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        return (exit, output, errors)
    }
}

/// Stops the shared server when the test bundle ends.
private final class StopAtTheEnd: NSObject, XCTestObservation {
    func testBundleDidFinish(_ testBundle: Bundle) { PostgresServer.stopShared() }
}

/// A port nothing listens on right now, from the kernel.
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    _ = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}
