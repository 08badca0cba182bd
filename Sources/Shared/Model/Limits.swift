import Foundation

/// Bounds on what input may hold, checked where input enters (workflow JSON, flags, a task's
/// output), so that nothing a user writes can trap or stall a daemon further on. README's
/// "Limits" table and ds-submit(1) list the same numbers.
public enum Limits {
    /// The longest duration anywhere (retry interval, timeout, grace, retention): 30 days.
    /// Larger values would overflow the clocks' integer milliseconds.
    public static let maxDurationSeconds: Double = 30 * 86_400
    /// A task whose attempts have seen their task supervisor die this many times in one run ends
    /// FAILURE instead of failing over again: a task that kills its parent must not take workers
    /// down one after another for ever.
    public static let supervisorDeathsBeforeFailure = 3
    /// The largest day offset of a `$[yyyyMMdd+N]` date expression: 100 years.
    public static let maxDayOffset = 36_500
    /// The longest worker group name; groups become znode names.
    public static let maxGroupNameLength = 64
    /// The longest workflow or task name, in characters.
    public static let maxNameLength = 128
    /// The largest workflow file ds-submit reads.
    public static let maxDefinitionBytes = 4 << 20
    /// The most tasks in one workflow.
    public static let maxTasks = 10_000
    /// The most tasks one worker runs at once (`--slots`): each holds a supervised process, its
    /// output pipe and log file, and a claim in ZooKeeper, and a worker claims up to its free slots
    /// in one pass; more than this on one host is a typo (100000000 was accepted), not a machine.
    public static let maxWorkerSlots = 4096
    /// The longest command of one task, in UTF-8 bytes, as written and once resolved: it is one
    /// argument of `/bin/sh -c`, and Linux refuses an argument of 128 KiB with its NUL
    /// (MAX_ARG_STRLEN: "Argument list too long").
    public static let maxCommandBytes = (128 << 10) - 1
    /// The most entries of one task's `env`, of a workflow's `params`, or of `--param` overrides.
    public static let maxEntries = 100
    /// The longest name of a parameter or environment variable.
    public static let maxKeyLength = 128
    /// The longest value of a parameter, an environment variable or an output parameter, resolved.
    public static let maxValueBytes = 32 << 10
    /// The most output parameters one task may set, and their total size: more fails the task.
    public static let maxOutputs = 64
    public static let maxOutputBytes = 64 << 10
    /// The largest queue item a master writes: ZooKeeper refuses nodes near 1 MB (jute.maxbuffer),
    /// and a refused write would be retried for ever. Well under it, so a multi of several fits.
    public static let maxQueueItemBytes = 256 << 10

    /// Why `group` cannot name a worker group, or nil if it can: 1 to 64 characters of letters,
    /// digits, `.`, `_` and `-`, and not `.` or `..` (it becomes a znode path component).
    public static func groupNameProblem(_ group: String) -> String? {
        guard !group.isEmpty, group.count <= maxGroupNameLength else {
            return "must be 1 to \(maxGroupNameLength) characters long"
        }
        guard group != ".", group != ".." else { return "must not be '.' or '..'" }
        guard group.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "._-".unicodeScalars.contains($0)) }) else {
            return "may hold only letters, digits, '.', '_' and '-'"
        }
        return nil
    }

    /// Why `name` cannot name a workflow or task, or nil if it can: 1 to 128 characters, no
    /// control characters (a newline would break every table), no `/`, not `.` or `..`, and no
    /// space at either end. Names never become paths (logs are filed by id), but they are shown.
    public static func nameProblem(_ name: String) -> String? {
        guard !name.isEmpty, name.unicodeScalars.count <= maxNameLength else { return "must be 1 to \(maxNameLength) characters long" }
        guard name != ".", name != ".." else { return "must not be '.' or '..'" }
        if name.unicodeScalars.contains(where: { isControl($0) || isInvisible($0) }) {
            return "must not hold control or invisible characters (newline, tab, NUL, zero-width or direction marks, ...)"
        }
        if name.contains("/") { return "must not hold '/'" }
        if name.first!.isWhitespace || name.last!.isWhitespace { return "must not start or end with a space" }
        return nil
    }

    /// Why `key` cannot name a parameter or an environment variable, or nil if it can: 1 to 128
    /// of letters, digits, `_` and `.`, not starting with a digit, and not a reserved name.
    public static func keyProblem(_ key: String) -> String? {
        guard !key.isEmpty, key.utf8.count <= maxKeyLength else { return "must be 1 to \(maxKeyLength) characters long" }
        guard key.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "_.".unicodeScalars.contains($0)) }),
              !("0"..."9").contains(key.first!) else {
            return "may hold only letters, digits, '_' and '.', and must not start with a digit"
        }
        if isReserved(key) {
            return "is reserved: it would change how the task's shell and programs start (reserved: \(reservedDescription))"
        }
        return nil
    }

    /// The longest tenant (user) name, as `useradd` accepts by default.
    public static let maxTenantLength = 32

    /// Why `name` cannot name a tenant, or nil: a POSIX portable user name (letters, digits, `.`,
    /// `_`, `-`, not starting with `-`), 1 to `maxTenantLength` characters.
    public static func tenantProblem(_ name: String) -> String? {
        guard !name.isEmpty, name.utf8.count <= maxTenantLength else {
            return "is not a user name: it must be 1 to \(maxTenantLength) characters long"
        }
        let allowed = name.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "._-".unicodeScalars.contains($0)) }
        guard allowed, name.first != "-" else {
            return "is not a user name: it may hold only letters, digits, '.', '_' and '-', and must not start with '-' (name an OS user of the workers, as in /etc/passwd)"
        }
        return nil
    }

    /// Environment names no parameter, output or task `env` may set: they change how the shell,
    /// the dynamic linker or an interpreter starts, or they are set by the worker itself.
    public static let reservedNames: Set<String> = [
        "PATH", "IFS", "ENV", "BASH_ENV", "SHELLOPTS", "BASHOPTS", "CDPATH", "GLOBIGNORE", "PS4", "PROMPT_COMMAND",
        "HOME", "SHELL", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME", "PERL5LIB", "PERL5OPT", "RUBYOPT", "RUBYLIB",
        "NODE_OPTIONS", "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "GCONV_PATH", "LOCALDOMAIN", "HOSTALIASES", "RES_OPTIONS",
        "TMPDIR", "MALLOC_CHECK_", "PERLLIB", "NODE_PATH", "CLASSPATH", "PYTHONWARNINGS", "GIT_SSH_COMMAND", "GIT_SSH",
    ]
    public static let reservedPrefixes = ["LD_", "DYLD_", "DS_", "BASH_FUNC_", "GIT_CONFIG"]
    static var reservedDescription: String {
        reservedPrefixes.map { $0 + "*" }.joined(separator: ", ") + ", " + reservedNames.sorted().joined(separator: ", ")
    }

    public static func isReserved(_ key: String) -> Bool {
        reservedNames.contains(key) || reservedPrefixes.contains { key.hasPrefix($0) }
    }

    /// Why `value` cannot be a parameter or environment value: a NUL would cut it where the
    /// process starts (the rest turning into other variables), and its size is bounded.
    public static func valueProblem(_ value: String) -> String? {
        if value.utf8.count > maxValueBytes { return "is \(value.utf8.count) bytes long; the limit is \(maxValueBytes / 1024) KiB" }
        if value.utf8.contains(0) { return "must not hold a NUL character" }
        return nil
    }

    /// Format characters (zero-width space, direction overrides) and line or paragraph separators:
    /// a name holding them shows as something it is not.
    static func isInvisible(_ s: Unicode.Scalar) -> Bool {
        [.format, .lineSeparator, .paragraphSeparator].contains(s.properties.generalCategory)
    }

    /// C0 controls, DEL and C1 controls.
    static func isControl(_ s: Unicode.Scalar) -> Bool { s.value < 0x20 || (0x7F...0x9F).contains(s.value) }

    /// `text` in single quotes for a message, controls escaped and long text cut.
    public static func quoted(_ text: String, max: Int = 60) -> String {
        "'" + escaped(text.count > max ? String(text.prefix(max)) + "…" : text, also: "'") + "'"
    }

    /// `text` safe to print for a person: each control or invisible character (newline, tab, ESC,
    /// DEL, direction overrides) written as Swift writes it (`\n`, `\u{1B}`), so no value can end
    /// a line, forge a row or send the terminal an escape sequence. The one escaping of human
    /// output: every table cell (`TablePrinter`) and every quoted name goes through it.
    public static func escaped(_ text: String, also extra: Unicode.Scalar? = nil) -> String {
        var out = ""
        for s in text.unicodeScalars {
            if isControl(s) || isInvisible(s) || s == extra { out += s.escaped(asASCII: true) } else { out.unicodeScalars.append(s) }
        }
        return out
    }

    /// A byte count as people read it.
    public static func size(_ bytes: Int) -> String {
        bytes >= 1 << 20 ? String(format: "%.1f MiB", Double(bytes) / 1048576)
            : bytes >= 1024 && bytes % 1024 == 0 ? "\(bytes / 1024) KiB" : "\(bytes) bytes"
    }
}
