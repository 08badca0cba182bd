import Foundation

/// A daemon's identity `host:port`: the name of its registry node, of its `/kill/<host:port>`
/// folder, of its dead-server records and of its log folder. The one rule for it, used where a
/// daemon starts (a bad one is refused there) and wherever an identity is read back or a path
/// is built from one, so that a name a worker registered under is a name a master can write to.
public enum ServerIdentity {
    /// The longest host name, as DNS allows (RFC 1035: 253 characters written out). Kubernetes
    /// pod host names (`<statefulset>-<n>.<service>.<namespace>.svc.cluster.local`) run long.
    public static let maxHostLength = 253
    /// The longest identity in bytes: it names a folder of task logs, and a file name holds 255.
    public static let maxIdentityBytes = 255

    /// `host:port`.
    public static func make(host: String, port: Int) -> String { "\(host):\(port)" }

    /// Why `host` cannot be the host of an identity, or nil if it can: 1 to 253 ASCII letters,
    /// digits, `.`, `-` and `_`, not starting with `.` or `-` (no `:`, `/`, space or control
    /// character: the identity is a znode and a file name, and `:` separates the port).
    public static func hostProblem(_ host: String) -> String? {
        guard !host.isEmpty, host.utf8.count <= maxHostLength else {
            return "must be 1 to \(maxHostLength) characters long (it is \(host.utf8.count))"
        }
        guard host.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || ".-_".unicodeScalars.contains($0)) }) else {
            return "may hold only letters, digits, '.', '-' and '_' (a DNS name or an IPv4 address)"
        }
        guard host.first != ".", host.first != "-" else { return "must not start with '.' or '-'" }
        return nil
    }

    /// Why `host:port` cannot be an identity, or nil if it can.
    public static func problem(host: String, port: Int) -> String? {
        if let problem = hostProblem(host) { return "host \(Limits.quoted(host)) \(problem)" }
        guard (1...65535).contains(port) else { return "port \(port) must be from 1 to 65535" }
        let identity = make(host: host, port: port)
        guard identity.utf8.count <= maxIdentityBytes else {
            return "\(Limits.quoted(identity)) is \(identity.utf8.count) bytes long; host:port may be at most \(maxIdentityBytes) (it names the log folder)"
        }
        return nil
    }

    /// Why `identity` cannot be one, or nil if it can; the message says what one looks like.
    public static func problem(_ identity: String) -> String? {
        guard let colon = identity.lastIndex(of: ":"),
              let port = Int(identity[identity.index(after: colon)...]),
              String(port) == identity[identity.index(after: colon)...] else {
            return "is not a server identity: expected host:port, a host name of up to \(maxHostLength) characters and a port"
        }
        return problem(host: String(identity[..<colon]), port: port).map { "is not a server identity: \($0)" }
    }
}
