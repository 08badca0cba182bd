import Foundation

/// ZooKeeper digest credentials, `user:password`. A client that has them authenticates as
/// `digest:<user>:<hash>` and creates every node for that identity alone.
public struct ZooKeeperCredentials: Sendable, Equatable, CustomStringConvertible {
    public let user: String
    private let password: String

    /// The longest `user:password` accepted: far beyond any real one, and it keeps a wrong file
    /// (a log, a binary, /dev/zero) from being read whole or sent to ZooKeeper.
    public static let maxLength = 1024

    /// Parses `user:password`; `source` (`--zk-auth`, `DS_ZK_AUTH`, ...) names where it came from.
    /// The user is everything before the first colon, as ZooKeeper splits it.
    public init(parsing text: String, source: String) throws {
        func refuse(_ problem: String) -> InputError {
            .configuration("\(source) \(problem); it must hold ZooKeeper digest credentials user:password")
        }
        guard !text.isEmpty else { throw refuse("is empty") }
        guard text.utf8.count <= Self.maxLength else { throw refuse("is longer than \(Self.maxLength) bytes") }
        guard !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw refuse("holds a control character (a line break inside, or more than one line)")
        }
        guard let colon = text.firstIndex(of: ":"), colon != text.startIndex, text.index(after: colon) != text.endIndex else {
            throw refuse("is not of the form user:password (a non-empty user, a colon, a non-empty password)")
        }
        user = String(text[..<colon])
        password = String(text[text.index(after: colon)...])
    }

    /// Never the password: configurations get logged.
    public var description: String { "digest user \(user)" }

    /// What `zoo_add_auth` sends for the scheme `digest`.
    var authData: String { user + ":" + password }

    /// The id ZooKeeper's digest provider gives a session that authenticated with these
    /// credentials, and so the id in the ACL of every node it creates: `user:base64(sha1(user:password))`.
    public var digestID: String { user + ":" + SHA1.digest(Data(authData.utf8)).base64EncodedString() }

    /// This identity with every permission: what each node the tools create carries.
    public var acl: ZooKeeperACL { ZooKeeperACL(scheme: "digest", id: digestID, permissions: .all) }
}

extension ZooKeeperCredentials {
    /// `--zk-auth`, else `DS_ZK_AUTH`, else the file `DS_ZK_AUTH_FILE` names, else none. Whichever
    /// is given must be valid: a typo never falls back to running unauthenticated.
    public static func resolve(flag: String?, environment: [String: String]) throws -> ZooKeeperCredentials? {
        if let flag { return try ZooKeeperCredentials(parsing: flag, source: "--zk-auth") }
        if let text = environment["DS_ZK_AUTH"] { return try ZooKeeperCredentials(parsing: text, source: "DS_ZK_AUTH") }
        guard let file = environment["DS_ZK_AUTH_FILE"] else { return nil }
        return try read(file: file)
    }

    /// The credentials in `path`: one line `user:password`, its line break trimmed.
    static func read(file path: String) throws -> ZooKeeperCredentials {
        let text = try SecretFile.read(path, variable: "DS_ZK_AUTH_FILE", holding: "user:password", maxLength: maxLength)
        return try ZooKeeperCredentials(parsing: text, source: "DS_ZK_AUTH_FILE \(path)")
    }
}
