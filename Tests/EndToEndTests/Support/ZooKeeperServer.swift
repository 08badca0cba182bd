import Foundation
import XCTest

/// What a suite's daemons connect to: one standalone server, or an ensemble.
protocol ZooKeeperService: AnyObject {
    /// `host:port[,host:port...]`, for `DS_ZK`.
    var connectString: String { get }
    /// Stops every server by its pid (SIGKILL) and waits for it to go.
    func stop()
    /// Starts every stopped server again and waits until it serves.
    func start() throws
}

/// A real ZooKeeper server on loopback with a temporary data folder, stopped by its pid: either
/// standalone on a free port (`ZooKeeperServer()`, what most suites share) or one member of a
/// `ZooKeeperEnsemble`. Both get the configuration and JVM flags `scripts/zookeeper.sh` uses.
final class ZooKeeperServer: ZooKeeperService {
    /// A member's identity and ports: its `myid`, and its `server.N=127.0.0.1:quorum:election` line.
    struct Peer {
        let id: Int
        let clientPort: Int
        let quorumPort: Int
        let electionPort: Int
        var line: String { "server.\(id)=127.0.0.1:\(quorumPort):\(electionPort)" }
    }

    /// The client port.
    let port: Int
    /// The address the client port listens on (`clientPortAddress`): loopback, or a test
    /// bridge's address for daemons in network namespaces (`NetworkHosts`).
    let address: String
    let directory: URL
    /// nil for a standalone server.
    let peer: Peer?
    private(set) var process: Process?

    var connectString: String { "\(address):\(port)" }
    var logPath: String { directory.appendingPathComponent("zookeeper.log").path }

    /// The configuration and JVM flags `scripts/zookeeper.sh` uses too.
    static let shared = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("scripts/zookeeper")

    static let simpleLogger = "/usr/share/java/slf4j-simple.jar"

    /// How long a server may take to serve. Generous: the machines are shared, and a JVM on two
    /// busy cores (three of them, in an ensemble) can take many times its usual few seconds.
    static let startDeadline: TimeInterval = 180

    /// A standalone server on a free port of `address`, started and answering.
    init(address: String = "127.0.0.1") throws {
        port = try freePort()
        self.address = address
        peer = nil
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ds-zk-\(UUID().uuidString)")
        try configure(servers: [])
        try start()
    }

    /// One member of an ensemble of `peers`, configured in `directory` but not started: a member
    /// alone has no quorum, so the ensemble launches them all and then waits.
    init(member peer: Peer, of peers: [Peer], directory: URL) throws {
        port = peer.clientPort
        address = "127.0.0.1"
        self.peer = peer
        self.directory = directory
        try configure(servers: peers)
        try "\(peer.id)\n".write(to: directory.appendingPathComponent("data/myid"), atomically: true, encoding: .utf8)
    }

    /// Writes `zoo.cfg` from the shared template, plus the ensemble's `server.N` lines.
    private func configure(servers: [Peer]) throws {
        let data = directory.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        var config = try String(contentsOf: Self.shared.appendingPathComponent("zoo.cfg.in"), encoding: .utf8)
            .replacingOccurrences(of: "@DATA_DIR@", with: data.path)
            .replacingOccurrences(of: "@PORT@", with: String(port))
            .replacingOccurrences(of: "clientPortAddress=127.0.0.1", with: "clientPortAddress=\(address)")
        for server in servers { config += server.line + "\n" }
        try config.write(to: directory.appendingPathComponent("zoo.cfg"), atomically: true, encoding: .utf8)
    }

    /// Starts the server and waits until it serves (see `isServing`).
    func start() throws {
        try launch()
        try waitUntilServing()
    }

    /// Starts the JVM without waiting; its output is appended to `zookeeper.log`.
    func launch() throws {
        if let p = process, p.isRunning { return }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/java")
        let flags = try String(contentsOf: Self.shared.appendingPathComponent("jvm.options"), encoding: .utf8)
            .split(whereSeparator: \.isWhitespace).map(String.init)
        // The package's server logs nothing (slf4j finds no binding). An ensemble member logs
        // through slf4j-simple when the machine has it, so that elections can be read afterwards.
        var classPath = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar"
        if peer != nil && FileManager.default.fileExists(atPath: Self.simpleLogger) { classPath += ":" + Self.simpleLogger }
        p.arguments = ["-Dzookeeper.log.dir=\(directory.path)", "-Dorg.slf4j.simpleLogger.showDateTime=true",
                       "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSSZ"] + flags
            + ["-cp", classPath, "org.apache.zookeeper.server.quorum.QuorumPeerMain", directory.appendingPathComponent("zoo.cfg").path]
        if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
        let log = FileHandle(forWritingAtPath: logPath)!
        _ = try? log.seekToEnd()    // a restarted member keeps what it wrote before
        p.standardOutput = log
        p.standardError = log
        p.standardInput = FileHandle.nullDevice
        try p.run()
        process = p
    }

    /// Waits until the server serves; stops it and throws if it does not within `timeout`.
    func waitUntilServing(within timeout: TimeInterval = startDeadline) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if isServing { return }
            guard let p = process, p.isRunning else { break }
            Thread.sleep(forTimeInterval: 0.2)
        }
        let running = process?.isRunning ?? false
        stop()
        let what = peer == nil ? "answer ruok" : "join a quorum (srvr: Mode leader or follower)"
        throw NSError(domain: "ZooKeeperServer", code: 1, userInfo: [NSLocalizedDescriptionKey:
            "ZooKeeper \(peer.map { "server \($0.id) " } ?? "")did not \(what) on \(connectString) within \(Int(timeout))s"
            + (running ? "" : " (it exited)") + "; see \(logPath)"])
    }

    /// A standalone server serves once it answers `ruok`; a member once it is the leader or a
    /// follower, which it becomes only with a quorum (and, for a follower, after syncing with
    /// the leader).
    var isServing: Bool {
        if peer == nil { return fourLetterWord("ruok") == "imok" }
        let mode = self.mode
        return mode == "leader" || mode == "follower"
    }

    /// `leader`, `follower` or `standalone` from `srvr`; nil while the server is down or not
    /// serving (it answers "This ZooKeeper instance is not currently serving requests").
    var mode: String? {
        guard let answer = fourLetterWord("srvr") else { return nil }
        for line in answer.split(separator: "\n") where line.hasPrefix("Mode: ") {
            return line.dropFirst("Mode: ".count).trimmingCharacters(in: .whitespaces)
        }
        return nil
    }

    /// Stops the server by its pid (SIGKILL: what a crash or a power cut does) and waits for it to go.
    func stop() {
        guard let p = process else { return }
        if p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
        process = nil
    }

    func remove() {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Sends a four-letter word over a plain socket; the whole answer (the server closes the
    /// connection after it), or nil when nothing answered.
    func fourLetterWord(_ word: String) -> String? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        // A server still starting can accept the connection and never answer: bound every read.
        var limit = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr(self.address)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        // send with MSG_NOSIGNAL: a server that resets the connection (one starting or dying)
        // must not kill the test process with SIGPIPE.
        let sent = word.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        guard sent == word.utf8.count else { return nil }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while answer.count < 1 << 20 {
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { break }
            answer += buffer[0..<n]
        }
        return answer.isEmpty ? nil : String(decoding: answer, as: UTF8.self)
    }
}
