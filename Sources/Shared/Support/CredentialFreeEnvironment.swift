import Foundation

/// What a daemon never hands to a program it starts (a task, an alert command), not even when
/// `--pass-env` names it (see `TaskEnvironment`, which builds their environment): a workflow author's command must not be able to write to
/// ZooKeeper or the database as the daemon does (forge a result, queue an item, edit rows).
/// The one list of what counts as a credential, so that the worker and the master cannot
/// disagree about it.
public enum CredentialFreeEnvironment {
    /// Names dropped wherever they appear.
    public static let credentialNames: Set<String> = [
        "DS_ZK_AUTH", "DS_ZK_AUTH_FILE",   // ZooKeeper digest credentials, or the file holding them
        "PGPASSWORD", "PGPASSFILE",        // what libpq and postgres-nio callers read a password from
    ]
    /// Prefixes dropped: `DS_DB`, `DS_DB_PASSWORD_FILE` and any later database setting, which may
    /// hold a URL with a password in it.
    public static let credentialPrefixes = ["DS_DB"]

    public static func isCredential(_ name: String) -> Bool {
        credentialNames.contains(name) || credentialPrefixes.contains { name.hasPrefix($0) }
    }
}
