import Foundation

/// Test-only crash points: with `DS_FAULT_POINT=<name>` in its environment, a daemon kills
/// itself with SIGKILL when it reaches that point, as a power cut would; with
/// `DS_FAULT_PAUSE=<name>` it stops itself with SIGSTOP there (once), as a long GC pause or a
/// frozen VM would, until someone sends SIGCONT. Unset, each costs one comparison.
public enum FaultPoint {
    static let armed = ProcessInfo.processInfo.environment["DS_FAULT_POINT"]
    static let pause = ProcessInfo.processInfo.environment["DS_FAULT_PAUSE"]
    private static let paused = Counters()

    public static func hit(_ name: String) throws {
        if pause == name, paused.value(name) == 0 {
            paused.count(name)
            FileHandle.standardError.write(Data("fault point \(name): SIGSTOP\n".utf8))
            kill(getpid(), SIGSTOP)
        }
        guard armed == name else { return }
        FileHandle.standardError.write(Data("fault point \(name): SIGKILL\n".utf8))
        kill(getpid(), SIGKILL)
    }
}

/// Test-only transient faults at the two choke points every daemon goes through: each ZooKeeper
/// request and each database transaction (and the reads a master cannot do without, kind `read`).
/// `DS_FAULT_ZK` and `DS_FAULT_DB` hold one or more specs separated by `;`, each of
/// comma-separated settings:
///
/// - `every=N`: the Nth, 2Nth, ... matching request fails (required);
/// - `after`: (ZooKeeper) the request is carried out and then its answer is lost, as when the
///   connection drops after the server applied it; without it the request is never sent;
/// - `op=KIND`: only requests of that kind (`getChildren`, `getData`, `exists`, `create`,
///   `delete`, `setData`, `multi`);
/// - `path=TEXT`: only requests whose path contains TEXT;
/// - `limit=M`: at most M faults in all.
///
/// A ZooKeeper fault is a connection loss; a database fault is a busy database. With several specs,
/// each counts the requests it matches on its own, and the first that fires decides.
public final class FaultInjector: @unchecked Sendable {
    public enum When: Sendable { case before, after }

    let every: Int
    let after: Bool
    let op: String?
    let path: String?
    let limit: Int
    private let lock = NSLock()
    private var seen = 0
    private var injected = 0

    init?(_ spec: String?) {
        guard let spec, !spec.isEmpty else { return nil }
        var settings: [String: String] = [:]
        for part in spec.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
            settings[kv[0]] = kv.count > 1 ? kv[1] : ""
        }
        guard let every = settings["every"].flatMap(Int.init), every > 0 else { return nil }
        self.every = every
        after = settings["after"] != nil
        op = settings["op"]
        path = settings["path"]
        limit = settings["limit"].flatMap(Int.init) ?? Int.max
    }

    static let zooKeeper = FaultInjectors(ProcessInfo.processInfo.environment["DS_FAULT_ZK"])
    static let database = FaultInjectors(ProcessInfo.processInfo.environment["DS_FAULT_DB"])

    /// Whether (and when) this request fails.
    func fault(kind: String, path requestPath: String) -> When? {
        if let op, op != kind { return nil }
        if let path, !requestPath.contains(path) { return nil }
        return lock.withLock {
            seen += 1
            guard seen % every == 0, injected < limit else { return nil }
            injected += 1
            return after ? .after : .before
        }
    }
}

/// The specs of one environment variable (`;`-separated), nil when it sets none.
final class FaultInjectors: Sendable {
    let injectors: [FaultInjector]

    init?(_ specs: String?) {
        injectors = (specs ?? "").split(separator: ";").compactMap { FaultInjector(String($0)) }
        if injectors.isEmpty { return nil }
    }

    /// Whether (and when) this request fails: every spec counts it, the first that fires decides.
    func fault(kind: String, path: String) -> FaultInjector.When? {
        let verdicts = injectors.map { $0.fault(kind: kind, path: path) }
        return verdicts.compactMap { $0 }.first
    }

    /// Throws a busy database if a spec says this database read fails.
    static func checkRead(_ what: String) throws {
        if FaultInjector.database?.fault(kind: "read", path: what) != nil {
            throw StoreError.busy("\(what): injected fault (DS_FAULT_DB)")
        }
    }
}
