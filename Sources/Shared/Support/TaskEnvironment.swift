import Foundation

/// The environment of a program a daemon starts (a task, an alert command): built, never
/// inherited. The base is
/// - `PATH`: the daemon's own PATH (an administrator's setting, not a secret; tasks find the
///   same programs as before tenants), or `defaultPath` when the daemon has none;
/// - `HOME`, `USER`, `LOGNAME`: the user it runs as (the tenant, or the daemon's own user);
/// - `LANG`, `TZ`: the daemon's, if set; `SHELL=/bin/sh`;
/// then names the operator passes on by hand (`--pass-env`, never a credential of
/// `CredentialFreeEnvironment`), then what the caller adds (a task's `DS_*` context, its `env` and
/// parameters). Nothing else of the daemon's environment reaches it: not its ZooKeeper or
/// database credentials, not a proxy, not `OPENSSL_CONF` or `GIT_ASKPASS`.
public enum TaskEnvironment {
    public static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    /// Names taken from the daemon's environment when set.
    public static let inheritedNames = ["LANG", "TZ"]

    /// The base for a program run as `user` (nil: this process's own user).
    public static func base(user: (name: String, home: String)?, passing: [String] = [],
                            from daemon: [String: String] = ProcessInfo.processInfo.environment) -> [String: String] {
        let who = user ?? ownUser()
        var env: [String: String] = [
            "PATH": daemon["PATH"].flatMap { $0.isEmpty ? nil : $0 } ?? defaultPath,
            "HOME": who.home, "USER": who.name, "LOGNAME": who.name, "SHELL": "/bin/sh",
        ]
        for name in inheritedNames { if let v = daemon[name] { env[name] = v } }
        for name in passing where !CredentialFreeEnvironment.isCredential(name) {
            if let v = daemon[name] { env[name] = v }
        }
        return env
    }

    /// This process's user: its name and home from the user database (HOME if it has none).
    public static func ownUser() -> (name: String, home: String) {
        let uid = getuid()
        var entry = passwd()
        var found: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16 << 10)
        if getpwuid_r(uid, &entry, &buffer, buffer.count, &found) == 0, found != nil, let name = entry.pw_name {
            return (String(cString: name), entry.pw_dir.map { String(cString: $0) } ?? "/")
        }
        return (String(uid), ProcessInfo.processInfo.environment["HOME"] ?? "/")
    }

    /// Why `name` cannot be passed with `--pass-env`, or nil.
    public static func passProblem(_ name: String) -> String? {
        if name.isEmpty || name.contains("=") || name.utf8.contains(0) { return "is not an environment variable name" }
        if CredentialFreeEnvironment.isCredential(name) { return "is a credential of ds; it never reaches a task" }
        return nil
    }
}
