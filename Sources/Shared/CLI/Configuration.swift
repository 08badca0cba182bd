import ArgumentParser
import Foundation

/// The flags every tool shares; each falls back to its environment variable, then a default.
public struct GlobalOptions: ParsableArguments, Sendable {
    @Option(name: .customLong("zk"), help: "ZooKeeper connect string (env DS_ZK, default 127.0.0.1:2181).")
    public var zk: String?
    @Option(name: .customLong("zk-root"), help: "Root znode of this cluster (env DS_ZK_ROOT, default /dolphinscheduler).")
    public var zkRoot: String?
    @Option(name: .customLong("zk-session-timeout"), help: "ZooKeeper session timeout, e.g. 10s (env DS_ZK_SESSION_TIMEOUT).")
    public var zkSessionTimeout: String?
    @Option(name: .customLong("zk-auth"),
            help: ArgumentHelp("""
                ZooKeeper digest credentials: every node the tools create is theirs alone, and a tree others can \
                reach is refused (env DS_ZK_AUTH; or DS_ZK_AUTH_FILE, a file holding them, kept out of ps).
                """, valueName: "user:password"))
    public var zkAuth: String?
    @Option(name: .customLong("db"), help: ArgumentHelp("""
        The database: a SQLite file, or postgres://USER@HOST[:PORT]/DB[?sslmode=disable|require|verify-full] \
        with its password in the file DS_DB_PASSWORD_FILE names, or PGPASSWORD (env DS_DB, default $DS_HOME/ds.db).
        """, valueName: "path-or-url"))
    public var db: String?
    @Option(name: .customLong("db-pool"), help: ArgumentHelp("""
        The most database connections this process holds open, from 1 to 200 (PostgreSQL; env DS_DB_POOL, default 10).
        """, valueName: "n"))
    public var dbPool: Int?
    @Option(name: .customLong("home"), help: "State folder (env DS_HOME, default $XDG_STATE_HOME/ds or ~/.local/state/ds).")
    public var home: String?
    @Option(name: .customLong("context"), help: ArgumentHelp("""
        A context of $XDG_CONFIG_HOME/ds/config (default ~/.config/ds/config) whose values stand in for the \
        environment variables unset (env DS_CONTEXT, default the file's 'current'; see ds-context).
        """, valueName: "name"))
    public var context: String?

    public init() {}

    /// Flags over environment over the context (--context, DS_CONTEXT, the contexts file's
    /// 'current') over defaults.
    public func resolve(_ given: [String: String] = ProcessInfo.processInfo.environment,
                        warn: (String) -> Void = GlobalOptions.warnOnStandardError) throws -> Configuration {
        let selected = try ContextFile.selected(flag: context, environment: given)
        let environment = selected.map { ContextFile.apply($0.0, to: given) } ?? given
        /// Where a bad value came from: the flag and its variable, or the context's key.
        func source(_ flag: String, _ variable: String, _ key: String, _ flagValue: String?) -> String {
            guard flagValue == nil, given[variable] == nil, let (context, file) = selected, context.values[key] != nil else {
                return "--\(flag) / \(variable)"
            }
            return "\(key) of context \(Limits.quoted(context.name)) in \(file.path)"
        }
        let home = self.home ?? environment["DS_HOME"] ?? {
            if let xdg = environment["XDG_STATE_HOME"], !xdg.isEmpty { return xdg + "/ds" }
            return (environment["HOME"] ?? NSHomeDirectory()) + "/.local/state/ds"
        }()
        let timeoutText = zkSessionTimeout ?? environment["DS_ZK_SESSION_TIMEOUT"] ?? "10s"
        // ZooKeeper servers cap sessions at maxSessionTimeout (20 ticks by default); an hour is far
        // beyond any server's, and keeps the conversion to milliseconds from trapping.
        guard let timeout = DurationText.parse(timeoutText), timeout >= 0.1, timeout <= 3600 else {
            throw InputError.configuration("\(source("zk-session-timeout", "DS_ZK_SESSION_TIMEOUT", "zk_session_timeout", zkSessionTimeout)) '\(Limits.escaped(timeoutText))' is not a duration from 100ms to 1h, such as 10s or 2500ms")
        }
        var root = zkRoot ?? environment["DS_ZK_ROOT"] ?? "/dolphinscheduler"
        while root.count > 1 && root.hasSuffix("/") { root.removeLast() }
        if let why = Self.zkRootProblem(root) {
            throw InputError.configuration("\(source("zk-root", "DS_ZK_ROOT", "zk_root", zkRoot)) \(Limits.quoted(root)) \(why)")
        }
        let connect = zk ?? environment["DS_ZK"] ?? "127.0.0.1:2181"
        if let why = Self.connectStringProblem(connect) {
            throw InputError.configuration("\(source("zk", "DS_ZK", "zk", zk)) \(Limits.quoted(connect)) \(why)")
        }
        let database = db ?? environment["DS_DB"] ?? home + "/ds.db"
        // Before anything connects: a bad location is a mistake found at once, not after a ZooKeeper wait.
        let poolSize = try DatabasePoolSize.size(flag: dbPool, environment: environment)
        // A password in a context's db URL is in a file only its owner reads (load checks), not in ps.
        let dbFromContext = db == nil && given["DS_DB"] == nil && selected?.0.values["db"] != nil
        let location = try DatabaseLocation.parse(database, poolSize: poolSize, environment: environment, warn: dbFromContext ? { _ in } : warn)
        var configuration = Configuration(
            zkConnect: connect,
            zkRoot: root,
            databasePath: DatabaseLocation.redacted(database),
            home: home,
            sessionTimeoutMillis: Int(timeout * 1000),
            zkCredentials: try ZooKeeperCredentials.resolve(flag: zkAuth, environment: environment))
        configuration.database = location
        configuration.databasePoolSize = poolSize
        return configuration
    }

    /// Where `resolve` says what works but is unwise (a password in --db): stderr, once per process.
    public static let warnOnStandardError: @Sendable (String) -> Void = { message in
        guard warned.insert(message) else { return }
        let tool = (CommandLine.arguments.first as NSString?)?.lastPathComponent ?? "ds"
        Tool.warn(tool, message)
    }
    private static let warned = WarnedOnce()
}

/// The warnings already given by this process.
private final class WarnedOnce: @unchecked Sendable {
    private let lock = NSLock()
    private var given: Set<String> = []
    /// True the first time `message` is given.
    func insert(_ message: String) -> Bool { lock.withLock { given.insert(message).inserted } }
}

extension GlobalOptions {
    /// Why `root` cannot be the cluster's root znode: an absolute path of non-empty components,
    /// none `.` or `..`, without control characters, outside ZooKeeper's own `/zookeeper`.
    static func zkRootProblem(_ root: String) -> String? {
        guard root.hasPrefix("/"), root != "/" else { return "must be an absolute znode path such as /dolphinscheduler" }
        let parts = root.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        if parts.contains(where: \.isEmpty) { return "must not hold an empty component ('//')" }
        if parts.contains(where: { $0 == "." || $0 == ".." }) { return "must not hold '.' or '..' components" }
        // ZooKeeper's own rule for path characters (PathUtils.validatePath).
        if root.unicodeScalars.contains(where: { Limits.isControl($0) || (0xD800...0xF8FF).contains($0.value) || (0xFFF0...0xFFFF).contains($0.value) }) {
            return "must not hold control characters or the characters ZooKeeper refuses (U+D800-U+F8FF, U+FFF0-U+FFFF)"
        }
        if parts.first == "zookeeper" { return "must not be under /zookeeper, which ZooKeeper reserves for itself" }
        if root.utf8.count > 256 { return "must be at most 256 bytes long" }
        return nil
    }

    /// Why `connect` is no ZooKeeper connect string: `host:port[,host:port...]`.
    static func connectStringProblem(_ connect: String) -> String? {
        for server in connect.split(separator: ",", omittingEmptySubsequences: false) {
            guard let colon = server.lastIndex(of: ":"), let port = Int(server[server.index(after: colon)...]),
                  (1...65535).contains(port), colon != server.startIndex,
                  !server.unicodeScalars.contains(where: { Limits.isControl($0) || $0 == " " }) else {
                return "is not a ZooKeeper connect string: expected host:port[,host:port...], such as 127.0.0.1:2181"
            }
        }
        return nil
    }

    /// The hosts of a connect string that do not resolve; the C client fails on a string with
    /// none that does without saying why.
    public static func unresolvedHosts(_ connect: String) -> [String] {
        connect.split(separator: ",").compactMap { server -> String? in
            guard let colon = server.lastIndex(of: ":") else { return String(server) }
            var host = String(server[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            var info: UnsafeMutablePointer<addrinfo>?
            guard getaddrinfo(host, nil, nil, &info) == 0 else { return host }
            freeaddrinfo(info)
            return nil
        }
    }
}

/// Where a tool finds ZooKeeper, the database and its state folder.
public struct Configuration: Sendable {
    public var zkConnect: String
    public var zkRoot: String
    /// The SQLite file's path; for a PostgreSQL URL, the URL with its password hidden (for messages).
    public var databasePath: String
    /// What --db / DS_DB names, parsed (the password of a PostgreSQL URL resolved).
    public var database: DatabaseLocation
    /// The most database connections this process holds open (--db-pool / DS_DB_POOL).
    public var databasePoolSize: Int = DatabasePoolSize.defaultSize
    public var home: String
    public var sessionTimeoutMillis: Int
    /// Digest credentials for ZooKeeper; nil means unauthenticated, every node open to the world.
    public var zkCredentials: ZooKeeperCredentials?

    public var paths: ZooKeeperPaths { ZooKeeperPaths(root: zkRoot) }

    public init(zkConnect: String, zkRoot: String, databasePath: String, home: String, sessionTimeoutMillis: Int,
                zkCredentials: ZooKeeperCredentials? = nil) {
        self.zkConnect = zkConnect
        self.zkRoot = zkRoot
        self.databasePath = databasePath
        self.database = .sqlite(path: databasePath)
        self.home = home
        self.sessionTimeoutMillis = sessionTimeoutMillis
        self.zkCredentials = zkCredentials
    }
}

extension Configuration {
    /// Opens (and migrates) the database --db / DS_DB names, a SQLite file or a PostgreSQL server
    /// with --db-pool connections: the one way every daemon and tool opens its store. Only a
    /// master (and ds-submit, ds-pool set, which warn) makes a new one (`create`).
    public func openStore(create: Bool = false, upgrade: Bool = true) throws -> Store {
        try Store(location: database, create: create, upgrade: upgrade)
    }

    /// Whether the database may be there without asking it: the SQLite file exists; a PostgreSQL
    /// server is always asked.
    public var databaseMayExist: Bool {
        guard case .sqlite(let path) = database else { return true }
        return FileManager.default.fileExists(atPath: path)
    }
}
