import Foundation
import XCTest

/// Several "machines" on one: a network namespace per host, each joined by a veth pair to a
/// bridge of its own, in a private /24 that no route of the machine uses. The bridge itself has
/// the `.1` address, so a server in the root namespace (ZooKeeper) listens there and every host
/// reaches it; a host's link set down is a partition. Nothing has a default route and the
/// namespaces have no other interface, so no traffic leaves the bridge.
///
/// Everything is named after this process's pid (`dsbr<pid>`, `dsns<pid>h<n>`, `dsv<pid>h<n>`)
/// and removed by name in `remove()`; a run that died before removing its own is cleaned up by
/// the next one (its pid is gone).
final class NetworkHosts {
    struct Host {
        let name: String
        let namespace: String
        /// The bridge side of the host's veth pair: down is a cut link.
        let link: String
        let address: String
        /// Prefix for a command that runs inside the host.
        var prefix: [String] { ["/usr/sbin/ip", "netns", "exec", namespace] }
    }

    enum Failure: Error, CustomStringConvertible {
        case command([String], Int32, String)
        var description: String {
            switch self {
            case .command(let words, let status, let stderr):
                return "\(words.joined(separator: " ")) exited \(status): \(stderr.trimmingCharacters(in: .whitespacesAndNewlines))"
            }
        }
    }

    static let ip = "/usr/sbin/ip"
    let bridge: String
    /// The first three octets of the /24.
    let subnet: String
    var bridgeAddress: String { subnet + ".1" }
    private(set) var hosts: [String: Host] = [:]
    private let tag = String(getpid())
    private var removed = false

    /// Why partition tests cannot run here, or nil: they need root and network namespaces.
    static func unavailableReason() -> String? {
        if geteuid() != 0 { return "partition tests need root (ip netns, veth, bridge); this run is uid \(geteuid())" }
        if !FileManager.default.isExecutableFile(atPath: ip) { return "partition tests need \(ip) (Debian package iproute2)" }
        let probe = "dsprobe\(getpid())"
        do {
            try run([ip, "netns", "add", probe])
            try? run([ip, "netns", "del", probe])
        } catch {
            return "partition tests need network namespaces, and `ip netns add` failed here: \(error)"
        }
        return nil
    }

    /// Creates the bridge with its address; throws if any step fails (after removing what it made).
    init() throws {
        Self.removeLeftovers()
        bridge = "dsbr" + tag
        subnet = try Self.unusedSubnet()
        do {
            try Self.run([Self.ip, "link", "add", bridge, "type", "bridge"])
            try Self.run([Self.ip, "addr", "add", bridgeAddress + "/24", "dev", bridge])
            try Self.run([Self.ip, "link", "set", bridge, "up"])
        } catch {
            remove()
            throw error
        }
    }

    deinit { remove() }

    /// Adds host `name`: its namespace, loopback up, its veth pair on the bridge and address `.10+n`.
    @discardableResult
    func addHost(_ name: String) throws -> Host {
        let n = hosts.count + 1
        let host = Host(name: name, namespace: "dsns\(tag)h\(n)", link: "dsv\(tag)h\(n)", address: "\(subnet).\(10 + n)")
        hosts[name] = host
        try Self.run([Self.ip, "netns", "add", host.namespace])
        try Self.run([Self.ip, "link", "add", host.link, "type", "veth", "peer", "name", "eth0", "netns", host.namespace])
        try Self.run([Self.ip, "link", "set", host.link, "master", bridge, "up"])
        try Self.run([Self.ip, "-n", host.namespace, "addr", "add", host.address + "/24", "dev", "eth0"])
        try Self.run([Self.ip, "-n", host.namespace, "link", "set", "eth0", "up"])
        try Self.run([Self.ip, "-n", host.namespace, "link", "set", "lo", "up"])
        return host
    }

    subscript(name: String) -> Host { hosts[name]! }

    /// Cuts `name` off the bridge: nothing it sends arrives, nothing reaches it.
    func cut(_ name: String) throws { try Self.run([Self.ip, "link", "set", self[name].link, "down"]) }

    func heal(_ name: String) throws { try Self.run([Self.ip, "link", "set", self[name].link, "up"]) }

    /// Deletes every namespace, link and the bridge this made, by name; safe to call twice.
    func remove() {
        guard !removed else { return }
        removed = true
        for host in hosts.values {
            _ = try? Self.run([Self.ip, "netns", "del", host.namespace])
            if Self.linkExists(host.link) { _ = try? Self.run([Self.ip, "link", "del", host.link]) }
        }
        if Self.linkExists(bridge) { _ = try? Self.run([Self.ip, "link", "del", bridge]) }
    }

    // MARK: Helpers

    static func linkExists(_ name: String) -> Bool { (try? run([ip, "link", "show", "dev", name])) != nil }

    /// A 10.a.b.0/24 from the pid that no address or route of the machine is in.
    static func unusedSubnet() throws -> String {
        let routes = try run([ip, "-4", "route", "show", "table", "all"]) + (try run([ip, "-4", "addr"]))
        let pid = Int(getpid())
        for step in 0..<256 {
            let candidate = "10.\(200 + (pid / 256 + step / 256) % 50).\((pid + step) % 256)"
            if !routes.contains(candidate + ".") { return candidate }
        }
        throw Failure.command(["(pick a subnet)"], 1, "no free 10.x.y.0/24 found")
    }

    /// Namespaces and bridges of earlier runs whose process is gone.
    static func removeLeftovers() {
        func deadOwner(_ name: String, prefix: String) -> Bool {
            guard name.hasPrefix(prefix) else { return false }
            let digits = name.dropFirst(prefix.count).prefix { $0.isNumber }
            guard let pid = Int32(digits), pid != getpid() else { return false }
            return kill(pid, 0) != 0 && errno == ESRCH
        }
        let namespaces = ((try? run([ip, "netns", "list"])) ?? "").split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) }
        for ns in namespaces where deadOwner(ns, prefix: "dsns") { try? run([ip, "netns", "del", ns]) }
        let links = ((try? run([ip, "-o", "link", "show"])) ?? "").split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: " ")
            return fields.count > 1 ? String(fields[1].prefix { $0 != ":" && $0 != "@" }) : nil
        }
        for link in links where deadOwner(link, prefix: "dsbr") || deadOwner(link, prefix: "dsv") { try? run([ip, "link", "del", link]) }
    }

    /// Runs a command to its end; its stdout, or throws with its stderr.
    @discardableResult
    static func run(_ words: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: words[0])
        p.arguments = Array(words.dropFirst())
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        // Small outputs (ip's); read both to the end before waiting.
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw Failure.command(words, p.terminationStatus, String(decoding: stderr, as: UTF8.self))
        }
        return String(decoding: stdout, as: UTF8.self)
    }
}
