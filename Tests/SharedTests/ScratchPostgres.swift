import Foundation
@testable import Shared
import XCTest

/// One scratch PostgreSQL 15 server per test process, started on first use as the `postgres`
/// user (it refuses to run as root) on a free port in a folder of its own, and stopped by its pid
/// when the process exits. Each test takes a database of its own (`CREATE DATABASE`).
final class ScratchPostgres: @unchecked Sendable {
    static let binaries = "/usr/lib/postgresql/15/bin"

    let directory: URL
    let port: Int
    private(set) var pid: pid_t
    private let lock = NSLock()
    private var databases = 0
    private var data: String { directory.appendingPathComponent("data").path }

    /// The server, or why there is none (then PostgreSQL tests skip with the reason).
    static let shared: Result<ScratchPostgres, Error> = Result {
        let server = try ScratchPostgres()
        atexit { if case .success(let server) = ScratchPostgres.shared { server.stop() } }
        return server
    }

    /// The running server, or an `XCTSkip` saying why there is none.
    static func server() throws -> ScratchPostgres {
        switch shared {
        case .success(let server): return server
        case .failure(let error): throw XCTSkip("no scratch PostgreSQL: \(error)")
        }
    }

    /// A server of the caller's own (to stop and start again), which the caller stops.
    static func privateServer() throws -> ScratchPostgres {
        _ = try server()  // skips, saying why, where no server can run
        return try ScratchPostgres()
    }

    private init() throws {
        guard FileManager.default.isExecutableFile(atPath: "\(Self.binaries)/pg_ctl") else {
            throw Problem("PostgreSQL 15 is not installed (\(Self.binaries)/pg_ctl missing); run scripts/install-deps.sh")
        }
        guard geteuid() == 0 else { throw Problem("starting a server as the postgres user needs root (runuser)") }
        directory = URL(fileURLWithPath: "/tmp/ds-pg-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Self.run(["/bin/chown", "postgres:postgres", directory.path])
        try Self.run(["/sbin/runuser", "-u", "postgres", "--", "\(Self.binaries)/initdb", "-D", directory.appendingPathComponent("data").path,
                      "--auth=trust", "-U", "postgres", "--locale=C", "-E", "UTF8", "--no-sync"])
        var started: (port: Int, pid: pid_t)?
        var lastError: Error?
        for _ in 0..<5 where started == nil {
            let port = try Self.freePort()
            do { started = (port, try Self.start(directory, port: port)) } catch { lastError = error }
        }
        guard let started else { throw lastError ?? Problem("the server did not start") }
        (port, pid) = (started.port, started.pid)
    }

    /// Starts the server in `directory` on `port`; its pid.
    private static func start(_ directory: URL, port: Int) throws -> pid_t {
        let data = directory.appendingPathComponent("data").path
        try run(["/sbin/runuser", "-u", "postgres", "--", "\(binaries)/pg_ctl", "-D", data, "-w", "-t", "120",
                 "-l", directory.appendingPathComponent("server.log").path,
                 "-o", "-p \(port) -k \(directory.path) -h 127.0.0.1 -c fsync=off -c max_connections=300", "start"])
        let pidText = try String(contentsOfFile: "\(data)/postmaster.pid", encoding: .utf8)
        guard let pid = pid_t(pidText.split(separator: "\n").first ?? "") else { throw Problem("no pid in postmaster.pid") }
        return pid
    }

    /// Stops the server by its pid (a fast shutdown) and waits until it is gone; its data stay.
    func halt() {
        kill(pid, SIGINT)
        for _ in 0..<1200 where kill(pid, 0) == 0 { usleep(50_000) }
    }

    /// Starts a halted server again, on the same port.
    func restart() throws { pid = try Self.start(directory, port: port) }

    /// Stops the server this process started and removes its folder.
    func stop() {
        halt()
        try? FileManager.default.removeItem(at: directory)
    }

    /// A new, empty database on the server; settings for a store of it.
    func makeDatabase(poolSize: Int = 8) throws -> PostgresSettings {
        let name = lock.withLock { () -> String in
            databases += 1
            return "ds_test_\(databases)"
        }
        try Self.run(["\(Self.binaries)/createdb", "-h", "127.0.0.1", "-p", "\(port)", "-U", "postgres", name])
        return PostgresSettings(host: "127.0.0.1", port: port, user: "postgres", database: name, tls: .disable, poolSize: poolSize)
    }

    struct Problem: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// Runs a program to its end; its output. Through posix_spawn and waitpid, not Process:
    /// Foundation's Process waits for a descriptor that the server pg_ctl leaves running inherits,
    /// and would wait for ever.
    @discardableResult
    static func run(_ words: [String]) throws -> String {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("ds-pg-run-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, words[0], &actions, nil, &argv, environ)
        guard spawned == 0 else { throw Problem("\(words[0]): posix_spawn: \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        guard status == 0 else { throw Problem("\(words.joined(separator: " ")) exited with status \(status): \(text)") }
        return text
    }

    /// A port nothing listens on now (the kernel's choice for port 0).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Problem("socket: \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw Problem("bind: \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
