import Foundation

/// Database failures, naming what failed and what to do.
public enum StoreError: Error, CustomStringConvertible, ExitStatusProviding {
    case open(path: String, reason: String)
    case busy(String)
    /// The database server cannot be reached (PostgreSQL down, restarting, or cut off).
    case unreachable(String)
    case failed(String)
    case notFound(String)
    case missing(path: String)
    /// The database's schema is newer than this build knows (a newer ds migrated it).
    case newerSchema(location: String, found: Int?, known: Int, detail: String? = nil)

    public var description: String {
        switch self {
        case .missing(let p):
            return "database \(p) does not exist: no master has opened it. Point --db / DS_DB at the database the masters use, or start ds-master with this one (a master creates it)"
        case .open(let p, let r):
            return "database \(p): cannot open: \(r); check --db / DS_DB and "
                + (p.contains("://") ? "the user, its password (DS_DB_PASSWORD_FILE or PGPASSWORD) and the database's name" : "the folder's permissions")
        case .busy(let what): return "database busy during \(what); retry"
        case .unreachable(let what): return "database unreachable during \(what); retry when the database server is back"
        case .failed(let what): return "database error: \(what)"
        case .notFound(let what): return "\(what) not found in the database"
        case .newerSchema(let location, let found, let known, let detail):
            return "database \(location) has schema version \(found.map(String.init) ?? "unknown")\(detail.map { " (\($0))" } ?? ""), newer than this ds knows (\(known)): a newer ds migrated it. Run the ds version the masters run (upgrade this one); nothing was written"
        }
    }

    public var exitStatus: ExitStatus {
        switch self {
        case .open, .missing, .newerSchema: return .config
        case .busy, .unreachable: return .tempFail
        case .failed: return .software
        case .notFound: return .dataError
        }
    }
}

/// The store: every query and transaction of ds, written once against `SQLConnection`, over
/// one backend (SQLite through GRDB, the embedded default). Migrations run on open.
public final class Store: Sendable {
    /// Where the database is, as messages name it (the SQLite file's path).
    public let path: String
    /// The random id this database was given when it was made; masters advertise it.
    public let databaseID: String
    let backend: any StoreBackend
    private let counts = Counters()

    /// Write transactions committed through this store, for the benchmark's per-task figures.
    public var transactionCount: Int { counts.value("transactions") }

    /// Opens (and migrates) the SQLite database at `path`. Only a master makes a new one (`create`):
    /// for any other tool a missing file is a mistyped DS_DB, and a new empty database would hide it.
    public convenience init(path: String, create: Bool = true) throws {
        try self.init(location: .sqlite(path: path), create: create)
    }

    /// Opens (and migrates) the database at `location`: the one entry point for both stores.
    /// Without `upgrade`, a database at an older schema is refused (exit 78) rather than migrated:
    /// for a look that must write nothing (`ds-submit --dry-run`).
    public init(location: DatabaseLocation, create: Bool = true, upgrade: Bool = true) throws {
        switch location {
        case .sqlite(let path):
            if let why = Self.databaseProblem(path) { throw InputError.usage("--db / DS_DB \(Limits.quoted(path)) \(why)") }
            self.path = path
            if !create && !FileManager.default.fileExists(atPath: path) { throw StoreError.missing(path: path) }
            let folder = (path as NSString).deletingLastPathComponent
            if !folder.isEmpty { try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
            try Self.restrictModes(path)
            do {
                (backend, databaseID) = try Self.withFileLock(path + ".open-lock") {
                    let backend = try SQLiteBackend(path: path)
                    return (backend, try Self.migrate(backend, location: path, create: true, upgrade: upgrade))
                }
            } catch let error as StoreError {
                if case .newerSchema = error { throw error }
                throw StoreError.open(path: path, reason: "\(error)")
            } catch {
                throw StoreError.open(path: path, reason: "\(error)")
            }
        case .postgres(let settings):
            path = settings.description
            let backend = try PostgresBackend(settings)
            self.backend = backend
            do {
                databaseID = try Self.migrate(backend, location: settings.description, create: create, upgrade: upgrade)
            } catch let error as StoreError {
                throw error
            } catch {
                throw backend.storeError(error, "opening \(settings.description)") ?? StoreError.open(path: settings.description, reason: "\(error)")
            }
        }
    }

    /// Migrates the database; its random id, made by its first migration. Without `create`, a
    /// server database no master has migrated is refused, as a missing file is.
    private static func migrate(_ backend: any StoreBackend, location: String, create: Bool, upgrade: Bool) throws -> String {
        try backend.open { db in
            if !create, try !Migrations.tableExists("schema_version", db) { throw StoreError.missing(path: location) }
            if !upgrade {
                let version = try Migrations.tableExists("schema_version", db) ? try Int.fetchOne(db, sql: "SELECT version FROM schema_version") ?? 0 : 0
                if version < Migrations.latest {
                    throw StoreError.open(path: location, reason: "its schema is version \(version), older than this ds's \(Migrations.latest); a master (or any other ds tool) upgrades it")
                }
            }
            try Migrations.migrate(db, location: location)
            return try String.fetchOne(db, sql: "SELECT id FROM database_identity") ?? ""
        }
    }

    /// Serialises opening: on a new file, two processes switching it to WAL or migrating at
    /// once fail with "database is locked" or "table already exists".
    private static func withFileLock<T>(_ lockPath: String, _ body: () throws -> T) throws -> T {
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StoreError.open(path: lockPath, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        while flock(fd, LOCK_EX) == -1 && errno == EINTR {}
        defer { flock(fd, LOCK_UN) }
        return try body()
    }

    /// Runs `body` in one write transaction that no other writer interleaves with (SQLite:
    /// IMMEDIATE), so that read-then-write never races another process.
    @discardableResult
    func transaction<T: Sendable>(_ what: String, _ body: @escaping @Sendable (SQLConnection) throws -> T) async throws -> T {
        if FaultInjector.database?.fault(kind: "transaction", path: what) != nil {
            throw StoreError.busy("\(what): injected fault (DS_FAULT_DB)")
        }
        do {
            let result = try await backend.write(body)
            counts.count("transactions")
            return result
        } catch {
            throw storeError(error, what)
        }
    }

    /// `transaction`, carried out even if the calling task is cancelled (GRDB's async access gives
    /// up on a cancelled task): for the record of something already done, such as an alert command
    /// that ran, which a stopping daemon must store rather than leave to be done again.
    @discardableResult
    func transactionDespiteCancellation<T: Sendable>(_ what: String, _ body: @escaping @Sendable (SQLConnection) throws -> T) async throws -> T {
        if FaultInjector.database?.fault(kind: "transaction", path: what) != nil {
            throw StoreError.busy("\(what): injected fault (DS_FAULT_DB)")
        }
        return try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result {
                    do {
                        let result = try self.backend.writeBlocking(body)
                        self.counts.count("transactions")
                        return result
                    } catch {
                        throw self.storeError(error, what)
                    }
                })
            }
        }
    }

    /// The one reading of a database error, for reads and writes alike: a busy or locked
    /// database is temporary (exit 75, retry), anything else a failure, naming what was done.
    func storeError(_ error: Error, _ what: String) -> Error {
        backend.storeError(error, what) ?? error
    }

    /// A trivial read: whether the database answers (for `/healthz`).
    public func ping() async throws {
        _ = try await read("checking the database") { db in try Int.fetchOne(db, sql: "SELECT 1") }
    }

    func read<T: Sendable>(_ what: String, _ body: @escaping @Sendable (SQLConnection) throws -> T) async throws -> T {
        do {
            return try await backend.read(body)
        } catch {
            throw storeError(error, what)
        }
    }
}

extension Store {
    /// Why `database` cannot be the SQLite file: a URL (`postgres://…` would otherwise become a
    /// file at the relative path `postgres:/…`, a database of its own on every host), or empty.
    /// `DatabaseLocation.parse` reads PostgreSQL URLs before this is asked.
    static func databaseProblem(_ database: String) -> String? {
        if database.isEmpty { return "is empty; give the SQLite file's path" }
        if let scheme = DatabaseLocation.urlScheme(database) {
            let lower = scheme.lowercased()
            if lower == "postgres" || lower == "postgresql" {
                return "is a PostgreSQL URL where a SQLite file's path is wanted; open it through DatabaseLocation.parse"
            }
            return "is a \(scheme):// URL; give the SQLite file's path"
        }
        return nil
    }

    /// The database is a boundary (whoever can write it can run tasks): its file, made here if new,
    /// and its `-wal`, `-shm` and lock files are 0600 whatever the umask. SQLite gives `-wal` and
    /// `-shm` the mode of the database file; those of this user that exist already are narrowed too.
    static func restrictModes(_ path: String) throws {
        let fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        if fd >= 0 {
            var st = stat()
            if fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_uid == geteuid(), st.st_mode & 0o077 != 0 {
                fchmod(fd, 0o600)
            }
            close(fd)
        }
        for suffix in ["-wal", "-shm", ".open-lock"] {
            var st = stat()
            if lstat(path + suffix, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_uid == geteuid(), st.st_mode & 0o077 != 0 {
                chmod(path + suffix, 0o600)
            }
        }
    }
}
