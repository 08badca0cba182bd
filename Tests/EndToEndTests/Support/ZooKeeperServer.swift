import Foundation
import XCTest

/// A real standalone ZooKeeper server on a free loopback port, with a temporary data folder.
/// Started by a suite, stopped by its pid.
final class ZooKeeperServer {
    let port: Int
    let directory: URL
    private(set) var process: Process?

    var connectString: String { "127.0.0.1:\(port)" }

    /// The configuration and JVM flags `scripts/zookeeper.sh` uses too.
    static let shared = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("scripts/zookeeper")

    init() throws {
        port = try freePort()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ds-zk-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("data"), withIntermediateDirectories: true)
        let config = try String(contentsOf: Self.shared.appendingPathComponent("zoo.cfg.in"), encoding: .utf8)
            .replacingOccurrences(of: "@DATA_DIR@", with: directory.appendingPathComponent("data").path)
            .replacingOccurrences(of: "@PORT@", with: String(port))
        try config.write(to: directory.appendingPathComponent("zoo.cfg"), atomically: true, encoding: .utf8)
        try start()
    }

    func start() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/java")
        let flags = try String(contentsOf: Self.shared.appendingPathComponent("jvm.options"), encoding: .utf8)
            .split(whereSeparator: \.isWhitespace).map(String.init)
        p.arguments = ["-Dzookeeper.log.dir=\(directory.path)"] + flags
            + ["-cp", "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar", "org.apache.zookeeper.server.quorum.QuorumPeerMain",
               directory.appendingPathComponent("zoo.cfg").path]
        let log = FileHandle(forWritingAtPath: directory.appendingPathComponent("zookeeper.log").path)
            ?? { FileManager.default.createFile(atPath: directory.appendingPathComponent("zookeeper.log").path, contents: nil)
                 return FileHandle(forWritingAtPath: directory.appendingPathComponent("zookeeper.log").path)! }()
        p.standardOutput = log
        p.standardError = log
        try p.run()
        process = p
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if ruok() { return }
            guard p.isRunning else { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        stop()
        throw NSError(domain: "ZooKeeperServer", code: 1,
                      userInfo: [NSLocalizedDescriptionKey: "ZooKeeper did not answer ruok on \(connectString); see \(directory.path)/zookeeper.log"])
    }

    /// Stops the server by its pid and waits for it to go.
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

    /// The four-letter health check, over a plain socket.
    private func ruok() -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        // A server still starting can accept the connection and never answer: bound the read.
        var limit = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return false }
        _ = "ruok".withCString { write(fd, $0, 4) }
        var buffer = [UInt8](repeating: 0, count: 8)
        let n = read(fd, &buffer, 8)
        return n >= 4 && String(decoding: buffer[0..<4], as: UTF8.self) == "imok"
    }
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
