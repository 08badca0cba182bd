import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An OS user a task runs as, read from the user database (getpwnam_r, getgrouplist).
public struct TenantUser: Sendable, Equatable {
    public var name: String
    public var uid: uid_t
    public var gid: gid_t
    public var groups: [gid_t]
    public var home: String

    /// The user named `name` on this host, or nil when there is none.
    public static func lookUp(_ name: String) throws -> TenantUser? {
        var entry = passwd()
        var found: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16 << 10)
        var rc: Int32 = 0
        while true {
            rc = getpwnam_r(name, &entry, &buffer, buffer.count, &found)
            guard rc == ERANGE, buffer.count < 1 << 20 else { break }
            buffer = [CChar](repeating: 0, count: buffer.count * 4)
        }
        if rc != 0 && rc != ENOENT && rc != ESRCH { throw SystemCallError(call: "getpwnam_r \(name)", errno: rc) }
        guard found != nil else { return nil }
        var user = TenantUser(name: name, uid: entry.pw_uid, gid: entry.pw_gid, groups: [],
                              home: entry.pw_dir.map { String(cString: $0) } ?? "/")
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        while getgrouplist(name, entry.pw_gid, &groups, &count) == -1 {
            groups = [gid_t](repeating: 0, count: Int(count) + 64)
            count = Int32(groups.count)
        }
        user.groups = Array(groups.prefix(Int(count)))
        return user
    }

    /// The spawn options that make the supervisor's child this user: uid, gid, supplementary
    /// groups, and the working directory (its home if that is a folder, else `/`).
    public var supervisorOptions: [(String, String)] {
        var isFolder: ObjCBool = false
        let cwd = home.hasPrefix("/") && FileManager.default.fileExists(atPath: home, isDirectory: &isFolder) && isFolder.boolValue ? home : "/"
        return [("uid", String(uid)), ("gid", String(gid)), ("groups", groups.map { String($0) }.joined(separator: ",")), ("cwd", cwd)]
    }
}

/// Who a worker's tasks may run as: `ds-worker --tenants a,b` and `--default-tenant U`.
public struct TenantPolicy: Sendable {
    /// Users tasks may name; root only when listed here.
    public var allowed: Set<String> = []
    /// The tenant of a task that names none; nil: the worker's own user, with nothing changed.
    public var defaultTenant: String?

    public init(allowed: Set<String> = [], defaultTenant: String? = nil) {
        self.allowed = allowed
        self.defaultTenant = defaultTenant
    }

    /// Why this worker does not run a task as `tenant` (the queue item's), or the user to run it
    /// as (nil: the worker's own user, as before tenants).
    public func user(for tenant: String?) -> Result<TenantUser?, TenantRefusal> {
        guard let name = tenant ?? defaultTenant else { return .success(nil) }
        let isDefault = tenant == nil
        if let problem = Limits.tenantProblem(name) { return .failure(TenantRefusal("tenant \(Limits.quoted(name)) \(problem)")) }
        if !isDefault && !allowed.contains(name) {
            let list = allowed.isEmpty ? "it lists none" : "it lists \(allowed.sorted().joined(separator: ","))"
            return .failure(TenantRefusal("tenant \(Limits.quoted(name)) is not allowed on this worker (its --tenants: \(list)); add it to the worker's --tenants, or name a listed tenant"))
        }
        let found: TenantUser?
        do {
            found = try TenantUser.lookUp(name)
        } catch {
            return .failure(TenantRefusal("tenant \(Limits.quoted(name)) cannot be looked up: \(error)"))
        }
        guard let user = found else {
            return .failure(TenantRefusal("tenant \(Limits.quoted(name)) does not exist on this worker's host; create the user there (useradd) or name another tenant"))
        }
        if user.uid == 0 && !allowed.contains(name) {
            return .failure(TenantRefusal("tenant \(Limits.quoted(name)) is root, which runs only when the worker lists it in --tenants"))
        }
        if geteuid() != 0 && user.uid != geteuid() {
            return .failure(TenantRefusal("tenant \(Limits.quoted(name)) cannot be used: this worker runs as uid \(geteuid()), and only a worker run as root can start tasks as another user"))
        }
        return .success(user)
    }
}

/// Why a worker refused a task's tenant: the attempt fails with it (a failure, retried as any).
public struct TenantRefusal: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
