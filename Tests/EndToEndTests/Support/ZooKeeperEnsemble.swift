import Foundation
import XCTest

/// A real 3-server ZooKeeper ensemble on 127.0.0.1: free client, quorum and election ports per
/// server, a temporary data folder each with its `myid`, the shared `zoo.cfg.in` plus the
/// `server.N` lines, the shared JVM flags. Every server is stopped by its pid.
final class ZooKeeperEnsemble: ZooKeeperService {
    let servers: [ZooKeeperServer]
    let directory: URL

    var connectString: String { servers.map(\.connectString).joined(separator: ",") }

    /// Starts `size` servers and waits until each is the leader or a follower.
    init(size: Int = 3) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ds-zk-ensemble-\(UUID().uuidString)")
        self.directory = directory
        // Three ports per server, all distinct (the kernel may hand out a port twice in a row).
        var ports: [Int] = []
        while ports.count < 3 * size {
            let port = try freePort()
            if !ports.contains(port) { ports.append(port) }
        }
        let peers = (0..<size).map {
            ZooKeeperServer.Peer(id: $0 + 1, clientPort: ports[3 * $0], quorumPort: ports[3 * $0 + 1], electionPort: ports[3 * $0 + 2])
        }
        servers = try peers.map {
            try ZooKeeperServer(member: $0, of: peers, directory: directory.appendingPathComponent("server\($0.id)"))
        }
        do {
            try start()
        } catch {
            remove()
            throw error
        }
    }

    /// Launches every stopped server, then waits until each serves: none can alone.
    func start() throws {
        for server in servers { try server.launch() }
        for server in servers { try server.waitUntilServing() }
    }

    /// The index of the server that says `Mode: leader`, if one does now.
    func leaderIndex() -> Int? {
        servers.firstIndex { $0.mode == "leader" }
    }

    /// Waits until some server leads; its index.
    func waitForLeader(within timeout: TimeInterval = ZooKeeperServer.startDeadline) throws -> Int {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let leader = leaderIndex() { return leader }
            Thread.sleep(forTimeInterval: 0.2)
        }
        throw NSError(domain: "ZooKeeperEnsemble", code: 1, userInfo: [NSLocalizedDescriptionKey:
            "no ZooKeeper server led within \(Int(timeout))s; see \(directory.path)/server*/zookeeper.log"])
    }

    /// `kill -9` of one server, by its pid; returns once it is gone.
    func kill9(_ index: Int) {
        servers[index].stop()
    }

    /// Starts a stopped server again and waits until it has rejoined: it answers and is the
    /// leader or a follower (a follower has synced with the leader by then).
    func restart(_ index: Int) throws {
        try servers[index].start()
    }

    func stop() {
        for server in servers { server.stop() }
    }

    func remove() {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Each server's mode, for messages: e.g. `1:follower 2:leader 3:down`.
    func modes() -> String {
        servers.map { "\($0.peer!.id):\($0.mode ?? ($0.process?.isRunning == true ? "not serving" : "down"))" }.joined(separator: " ")
    }

    /// Every server's elections (its LOOKING, LEADING and FOLLOWING lines) and the last lines of
    /// its log, for failure messages.
    func logTails(lines: Int = 10) -> String {
        servers.map { server in
            let log = ((try? String(contentsOfFile: server.logPath, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
            let states = log.filter { $0.hasSuffix("QuorumPeer - LOOKING") || $0.hasSuffix("QuorumPeer - LEADING") || $0.hasSuffix("QuorumPeer - FOLLOWING") }
            return "== zookeeper server \(server.peer!.id) (\(server.connectString)) \(server.logPath)\n"
                + "-- elections\n" + states.joined(separator: "\n") + "\n-- last \(lines) lines\n" + log.suffix(lines).joined(separator: "\n")
        }.joined(separator: "\n")
    }
}
