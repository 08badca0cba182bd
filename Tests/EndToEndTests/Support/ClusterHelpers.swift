import Foundation
import Shared
import XCTest

/// Helpers of suites that talk to a cluster's daemons over HTTP and look up attempts.
extension ClusterTestCase {
    /// Where a daemon registered under `folder` listens (its registry node's `listen`).
    func listenAddress(under folder: String) async throws -> String {
        var address: String?
        try await eventually("a daemon under \(folder) publishes its HTTP address") {
            let zk = try await self.cluster.client()
            defer { zk.close() }
            for name in try await zk.childrenIfPresent(folder) {
                if let (data, _) = try await zk.getDataIfPresent(folder + "/" + name),
                   let listen = try WireJSON.decode(Heartbeat.self, data).listen {
                    address = listen
                }
            }
            return address != nil
        }
        return address!
    }

    /// A TCP connection to `host:port`, its descriptor.
    func rawConnect(_ address: String) throws -> Int32 {
        let parts = address.split(separator: ":")
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = in_port_t(UInt16(parts[1])!).bigEndian
        inet_pton(AF_INET, String(parts[0]), &sin.sin_addr)
        let ok = withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        XCTAssertEqual(ok, 0, "connect to \(address)")
        return fd
    }

    /// GETs `target` as sent (no normalisation): the status and body.
    func get(_ address: String, _ target: String) async throws -> (status: Int, body: String) {
        var body = Data()
        do {
            try await HTTPGet.stream(address, target) { buffer in body.append(contentsOf: buffer.readableBytesView) }
            return (200, String(decoding: body, as: UTF8.self))
        } catch HTTPGetError.status(let code, let text) {
            return (code, text)
        }
    }

    func taskID(_ instance: Int64, _ task: String) async throws -> Int64 {
        var id: Int64?
        try await eventually("task '\(task)' of instance \(instance) has an attempt") {
            id = try await self.cluster.store().taskAttempts(of: instance).first { $0.taskName == task }?.id
            return id != nil
        }
        return id!
    }
}
