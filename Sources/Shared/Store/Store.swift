import Foundation
import GRDB

/// Database failures, naming what failed and what to do.
public enum StoreError: Error, CustomStringConvertible, ExitStatusProviding {
    case open(path: String, reason: String)
    case busy(String)
    case failed(String)
    case notFound(String)
    case missing(path: String)

    public var description: String {
        switch self {
        case .missing(let p):
            return "database \(p) does not exist: no master has opened it. Point --db / DS_DB at the database the masters use, or start ds-master with this one (a master creates it)"
        case .open(let p, let r): return "database \(p): cannot open: \(r); check --db / DS_DB and the folder's permissions"
        case .busy(let what): return "database busy during \(what); retry"
        case .failed(let what): return "database error: \(what)"
        case .notFound(let what): return "\(what) not found in the database"
        }
    }

    public var exitStatus: ExitStatus {
        switch self {
        case .open, .missing: return .config
        case .busy: return .tempFail
        case .failed: return .software
        case .notFound: return .dataError
        }
    }
}

/// The SQLite store: WAL, a busy timeout so several processes share one file, migrations on open.
public final class Store: Sendable {
    public let path: String
    /// The random id this database was given when it was made; masters advertise it.
    public let databaseID: String
    let pool: DatabasePool
    private let counts = Counters()

    /// Write transactions committed through this store, for the benchmark's per-task figures.
    public var transactionCount: Int { counts.value("transactions") }

    /// Opens (and migrates) the database at `path`. Only a master makes a new one (`create`): for
    /// any other tool a missing file is a mistyped DS_DB, and a new empty database would hide it.
    public init(path: String, create: Bool = true) throws {
        if let why = Self.databaseProblem(path) { throw InputError.usage("--db / DS_DB \(Limits.quoted(path)) \(why)") }
        self.path = path
        if !create && !FileManager.default.fileExists(atPath: path) { throw StoreError.missing(path: path) }
        let folder = (path as NSString).deletingLastPathComponent
        if !folder.isEmpty { try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        try Self.restrictModes(path)
        var config = GRDB.Configuration()
        config.busyMode = .timeout(30)
        config.label = "ds"
        do {
            pool = try Self.withFileLock(path + ".open-lock") {
                let pool = try DatabasePool(path: path, configuration: config)
                try Migrations.migrator.migrate(pool)
                return pool
            }
            databaseID = try pool.read { try String.fetchOne($0, sql: "SELECT id FROM database_identity") } ?? ""
        } catch {
            throw StoreError.open(path: path, reason: "\(error)")
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

    /// Runs `body` in one IMMEDIATE transaction, so that read-then-write never races another process.
    func transaction<T: Sendable>(_ what: String, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        if FaultInjector.database?.fault(kind: "transaction", path: what) != nil {
            throw StoreError.busy("\(what): injected fault (DS_FAULT_DB)")
        }
        do {
            return try await pool.writeWithoutTransaction { db in try self.immediate(db, body) }
        } catch {
            throw Self.storeError(error, what)
        }
    }

    /// `transaction`, carried out even if the calling task is cancelled (GRDB's async access gives
    /// up on a cancelled task): for the record of something already done, such as an alert command
    /// that ran, which a stopping daemon must store rather than leave to be done again.
    func transactionDespiteCancellation<T: Sendable>(_ what: String, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        if FaultInjector.database?.fault(kind: "transaction", path: what) != nil {
            throw StoreError.busy("\(what): injected fault (DS_FAULT_DB)")
        }
        return try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result {
                    do {
                        return try self.pool.writeWithoutTransaction { db in try self.immediate(db, body) }
                    } catch {
                        throw Self.storeError(error, what)
                    }
                })
            }
        }
    }

    private func immediate<T>(_ db: Database, _ body: (Database) throws -> T) throws -> T {
        var result: T?
        try db.inTransaction(.immediate) {
            result = try body(db)
            return .commit
        }
        counts.count("transactions")
        return result!
    }

    /// The one reading of a database error, for reads and writes alike: a busy or locked
    /// database is temporary (exit 75, retry), anything else a failure, naming what was done.
    static func storeError(_ error: Error, _ what: String) -> Error {
        guard let error = error as? DatabaseError else { return error }
        if error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED {
            return StoreError.busy("\(what): \(error.message ?? "locked")")
        }
        return StoreError.failed("\(what): \(error)")
    }

    /// A trivial read: whether the database answers (for `/healthz`).
    public func ping() async throws {
        _ = try await read("checking the database") { db in try Int.fetchOne(db, sql: "SELECT 1") }
    }

    func read<T: Sendable>(_ what: String, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await pool.read(body)
        } catch {
            throw Self.storeError(error, what)
        }
    }
}

extension Store {
    /// Why `database` cannot be the SQLite file: a URL (`postgres://…` would otherwise become a
    /// file at the relative path `postgres:/…`, a database of its own on every host), or empty.
    static func databaseProblem(_ database: String) -> String? {
        if database.isEmpty { return "is empty; give the SQLite file's path" }
        if let scheme = database.range(of: "://").map({ database[..<$0.lowerBound] }),
           !scheme.isEmpty, scheme.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) }) {
            let lower = scheme.lowercased()
            if lower == "postgres" || lower == "postgresql" {
                return "is a PostgreSQL URL, read correctly, but this build cannot open PostgreSQL yet (its store is not built in); give the SQLite file's path (shared by every master, so masters run on its host)"
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
