import Foundation

/// Where the database is: what `--db` / `DS_DB` names.
public enum DatabaseLocation: Sendable, Equatable {
    /// A file path: the embedded SQLite store (the default, the demo's and the quick start's).
    case sqlite(path: String)
    /// `postgres://USER@HOST:PORT/DB`: one PostgreSQL that masters on several hosts share.
    case postgres(PostgresSettings)
}

/// A PostgreSQL server to connect to, parsed from a URL; the password never shows in `description`.
public struct PostgresSettings: Sendable, Equatable, CustomStringConvertible {
    /// `?sslmode=`: libpq's names, the three that mean something here.
    public enum TLS: String, Sendable, CaseIterable {
        case disable
        /// Encrypted, the server's certificate not checked.
        case require
        /// Encrypted, the certificate checked against the system's roots and the host name.
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int = 5432
    public var user: String
    public var database: String
    public var password: String?
    public var tls: TLS = .disable
    /// The most connections one process holds open (`--db-pool` / `DS_DB_POOL`).
    public var poolSize: Int = DatabasePoolSize.defaultSize

    public init(host: String, port: Int = 5432, user: String, database: String, password: String? = nil,
                tls: TLS = .disable, poolSize: Int = DatabasePoolSize.defaultSize) {
        self.host = host
        self.port = port
        self.user = user
        self.database = database
        self.password = password
        self.tls = tls
        self.poolSize = poolSize
    }

    /// The URL without its password: what messages and logs may show.
    public var description: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return "postgres://\(Self.encode(user))@\(h):\(port)/\(Self.encode(database))?sslmode=\(tls.rawValue)"
    }

    private static func encode(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? s
    }
}

/// The bounds of `--db-pool` / `DS_DB_POOL`.
public enum DatabasePoolSize {
    public static let defaultSize = 10
    /// PostgreSQL's own default `max_connections` is 100; a few masters at 200 each would be far past it.
    public static let sizes = 1...200

    /// The flag, else `DS_DB_POOL`, else the default; refused (exit 64) outside `sizes`.
    static func size(flag: Int?, environment: [String: String]) throws -> Int {
        if let flag {
            guard sizes.contains(flag) else {
                throw InputError.usage("--db-pool \(flag) is not from \(sizes.lowerBound) to \(sizes.upperBound); give the most database connections this process may hold, such as 10")
            }
            return flag
        }
        guard let text = environment["DS_DB_POOL"] else { return defaultSize }
        guard let n = Int(text), sizes.contains(n) else {
            throw InputError.usage("DS_DB_POOL \(Limits.quoted(text)) is not a number from \(sizes.lowerBound) to \(sizes.upperBound); set the most database connections a process may hold, such as 10, or unset it")
        }
        return n
    }
}

extension DatabaseLocation {
    /// The longest `--db` value read: far beyond any real path or URL.
    public static let maxLength = 4096
    /// PostgreSQL's identifiers (user and database names) hold at most 63 bytes (NAMEDATALEN - 1).
    static let maxIdentifierBytes = 63
    /// The longest password read, from the URL or a file.
    static let maxPasswordBytes = 1024

    /// Parses `--db` / `DS_DB`. A path is SQLite; `postgres://` or `postgresql://` a server, its
    /// password from the URL (`warn` is told once: it shows in `ps`), else the file
    /// `DS_DB_PASSWORD_FILE` names, else `PGPASSWORD`. Any other `scheme://` is refused (exit 64).
    public static func parse(_ text: String, poolSize: Int = DatabasePoolSize.defaultSize, environment: [String: String],
                             warn: (String) -> Void) throws -> DatabaseLocation {
        func refuse(_ why: String) -> InputError { .usage("--db / DS_DB \(Limits.quoted(redacted(text))) \(why)") }
        guard text.utf8.count <= maxLength else { throw refuse("is longer than \(maxLength) bytes; give the SQLite file's path or a postgres:// URL") }
        guard !text.contains("\0") else { throw refuse("holds a NUL byte; give the SQLite file's path or a postgres:// URL") }
        guard let scheme = urlScheme(text) else {
            if let why = Store.databaseProblem(text) { throw refuse(why) }
            return .sqlite(path: text)
        }
        guard ["postgres", "postgresql"].contains(scheme.lowercased()) else {
            throw refuse(Store.databaseProblem(text) ?? "is a \(scheme):// URL; give the SQLite file's path or a postgres:// URL")
        }
        var settings = try parsePostgres(String(text.dropFirst(scheme.count + 3)), refuse: refuse)
        settings.poolSize = poolSize
        if settings.password != nil {
            warn("the database password is in --db / DS_DB, where any user of this host sees it (ps); put it in a file named by DS_DB_PASSWORD_FILE (mode 600) instead")
        } else if let file = environment["DS_DB_PASSWORD_FILE"] {
            let password = try SecretFile.read(file, variable: "DS_DB_PASSWORD_FILE", holding: "the database password", maxLength: maxPasswordBytes)
            guard !password.isEmpty, !password.unicodeScalars.contains(where: Limits.isControl) else {
                throw InputError.configuration("DS_DB_PASSWORD_FILE \(file) is empty or holds a control character (more than one line?); it must hold the database password on one line")
            }
            settings.password = password
        } else if let password = environment["PGPASSWORD"] {
            guard password.utf8.count <= maxPasswordBytes, !password.unicodeScalars.contains(where: Limits.isControl) else {
                throw InputError.configuration("PGPASSWORD is longer than \(maxPasswordBytes) bytes or holds a control character; set the database password, or use DS_DB_PASSWORD_FILE")
            }
            settings.password = password.isEmpty ? nil : password
        }
        return .postgres(settings)
    }

    /// The scheme of `text` if it is a URL (`scheme://`), as `Store.databaseProblem` reads one.
    static func urlScheme(_ text: String) -> String? {
        guard let r = text.range(of: "://") else { return nil }
        let scheme = text[..<r.lowerBound]
        guard !scheme.isEmpty, scheme.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) }) else { return nil }
        return String(scheme)
    }

    /// `text` with the password of a URL (`scheme://user:PASSWORD@...`) hidden, for messages.
    /// The value of every query parameter but `sslmode` is hidden too (`?password=...` is refused,
    /// and the refusal quotes the URL).
    public static func redacted(_ text: String) -> String {
        guard let scheme = urlScheme(text) else { return text }
        var rest = String(text.dropFirst(scheme.count + 3))
        if let q = rest.firstIndex(of: "?") {
            let query = rest[rest.index(after: q)...].split(separator: "&", omittingEmptySubsequences: false).map { item -> String in
                let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                return pair.count == 2 && pair[0] != "sslmode" ? pair[0] + "=REDACTED" : String(item)
            }
            rest = rest[...q] + query.joined(separator: "&")
        }
        let authorityEnd = rest.firstIndex(where: { "/?#".contains($0) }) ?? rest.endIndex
        guard let at = rest[..<authorityEnd].lastIndex(of: "@"), let colon = rest[..<at].firstIndex(of: ":") else { return scheme + "://" + rest }
        return scheme + "://" + rest[..<colon] + ":REDACTED" + rest[at...]
    }

    /// `USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=MODE]`, after the scheme.
    private static func parsePostgres(_ rest: String, refuse: (String) -> InputError) throws -> PostgresSettings {
        let form = "; the form is postgres://USER@HOST[:PORT]/DATABASE[?sslmode=disable|require|verify-full]"
        if rest.contains("#") { throw refuse("holds a '#' fragment, which means nothing here\(form)") }
        let (beforeQuery, query) = rest.firstIndex(of: "?").map { (rest[..<$0], rest[rest.index(after: $0)...]) } ?? (rest[...], nil)
        guard let slash = beforeQuery.firstIndex(of: "/") else { throw refuse("names no database\(form)") }
        let authority = beforeQuery[..<slash]
        guard let at = authority.lastIndex(of: "@") else { throw refuse("names no user (USER@ before the host)\(form)") }
        let userInfo = authority[..<at]
        var hostPort = authority[authority.index(after: at)...]
        var password: String?
        let userText: Substring
        if let colon = userInfo.firstIndex(of: ":") {
            userText = userInfo[..<colon]
            password = try decode(userInfo[userInfo.index(after: colon)...], "password", refuse)
            if password?.isEmpty == true { password = nil }
            if let p = password, p.utf8.count > maxPasswordBytes { throw refuse("holds a password longer than \(maxPasswordBytes) bytes") }
        } else {
            userText = userInfo
        }
        let user = try identifier(userText, "user", refuse)
        let database = try identifier(beforeQuery[beforeQuery.index(after: slash)...], "database", refuse)

        // Host: a name, an IPv4 address or an IPv6 one in brackets; then an optional :PORT.
        var host: String
        var portText: Substring?
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { throw refuse("has an IPv6 address without its closing ']'\(form)") }
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            hostPort = hostPort[hostPort.index(after: close)...]
            if !hostPort.isEmpty {
                guard hostPort.hasPrefix(":") else { throw refuse("has something after the IPv6 address ']' that is not :PORT\(form)") }
                portText = hostPort.dropFirst()
            }
            guard !host.isEmpty, host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else {
                throw refuse("has no IPv6 address inside '[...]'\(form)")
            }
        } else {
            if let colon = hostPort.lastIndex(of: ":") {
                host = String(hostPort[..<colon])
                portText = hostPort[hostPort.index(after: colon)...]
            } else {
                host = String(hostPort)
            }
            guard !host.isEmpty else { throw refuse("names no host (after USER@)\(form)") }
            guard host.utf8.count <= 253, host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-._".contains($0)) }) else {
                throw refuse("has a host that is no host name or address (letters, digits, '-', '.' and '_'; an IPv6 address in brackets)\(form)")
            }
        }
        var port = 5432
        if let portText {
            guard let p = Int(portText), (1...65535).contains(p), portText.allSatisfy(\.isASCII) else {
                throw refuse("has the port \(Limits.quoted(String(portText))), not one from 1 to 65535\(form)")
            }
            port = p
        }
        var tls = PostgresSettings.TLS.disable
        for item in (query ?? "").split(separator: "&", omittingEmptySubsequences: true) {
            let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard pair.count == 2, pair[0] == "sslmode" else {
                throw refuse("has the parameter \(Limits.quoted(String(pair[0]))); only sslmode=disable|require|verify-full is understood")
            }
            guard let mode = PostgresSettings.TLS(rawValue: String(pair[1])) else {
                throw refuse("has sslmode=\(Limits.quoted(String(pair[1]))); give sslmode=disable, require or verify-full")
            }
            tls = mode
        }
        return PostgresSettings(host: host, port: port, user: user, database: database, password: password, tls: tls)
    }

    /// A percent-decoded user or database name: non-empty, at most 63 bytes, no control characters, no '/'.
    private static func identifier(_ raw: Substring, _ what: String, _ refuse: (String) -> InputError) throws -> String {
        let name = try decode(raw, what, refuse)
        guard !name.isEmpty else { throw refuse("names no \(what); the form is postgres://USER@HOST[:PORT]/DATABASE") }
        guard name.utf8.count <= maxIdentifierBytes else { throw refuse("has a \(what) name longer than PostgreSQL's \(maxIdentifierBytes) bytes") }
        guard !name.unicodeScalars.contains(where: { Limits.isControl($0) }), !name.contains("/") else {
            throw refuse("has a \(what) name holding a control character or '/'; percent-encode only what the name really holds")
        }
        return name
    }

    private static func decode(_ raw: Substring, _ what: String, _ refuse: (String) -> InputError) throws -> String {
        guard let decoded = String(raw).removingPercentEncoding ?? (raw.contains("%") ? nil : String(raw)) else {
            throw refuse("has a \(what) with a broken percent-encoding (a '%' must be followed by two hex digits)")
        }
        guard !decoded.contains("\0") else { throw refuse("has a \(what) holding a NUL byte") }
        return decoded
    }
}
