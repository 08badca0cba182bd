import Foundation
import TOMLKit

/// One named set of defaults in the contexts file: `[contexts.NAME]`.
public struct ContextSettings: Sendable, Equatable {
    /// Each key a context may hold, with the environment variable it stands in for.
    public static let keys: [(key: String, variable: String)] = [
        ("zk", "DS_ZK"), ("zk_root", "DS_ZK_ROOT"), ("zk_session_timeout", "DS_ZK_SESSION_TIMEOUT"),
        ("zk_auth_file", "DS_ZK_AUTH_FILE"), ("db", "DS_DB"), ("db_password_file", "DS_DB_PASSWORD_FILE"), ("home", "DS_HOME"),
    ]
    /// The keys whose values are paths: a leading `~/` is the user's home.
    static let pathKeys: Set<String> = ["zk_auth_file", "db_password_file", "home", "db"]

    public var name: String
    /// Key (as in the file) to value, only the keys the context sets.
    public var values: [String: String]

    /// Whether the context names a credential: a secret file, or a database URL holding a password.
    var namesCredentials: Bool {
        values["zk_auth_file"] != nil || values["db_password_file"] != nil
            || values["db"].map { DatabaseLocation.redacted($0) != $0 } == true
    }
}

/// `$XDG_CONFIG_HOME/ds/config` (default `~/.config/ds/config`): named contexts, each a set of
/// defaults for the global options, and which one is current. Flags beat the environment, which
/// beats the context, which beats the built-in defaults. No file: no context, as before.
public struct ContextFile: Sendable {
    public var path: String
    public var current: String?
    /// In the file's order.
    public var contexts: [ContextSettings]
    /// The file's permission bits.
    public var mode: mode_t

    /// The longest contexts file read.
    static let maxBytes = 1 << 20

    public static func path(_ environment: [String: String]) -> String {
        if let xdg = environment["XDG_CONFIG_HOME"], !xdg.isEmpty { return xdg + "/ds/config" }
        return (environment["HOME"] ?? NSHomeDirectory()) + "/.config/ds/config"
    }

    /// The file at `path(environment)`, checked; nil if there is none.
    public static func load(_ environment: [String: String]) throws -> ContextFile? {
        let path = path(environment)
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw InputError.configuration("cannot read the contexts file \(path): \(String(cString: strerror(errno)))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw InputError.configuration("the contexts file \(path) is not a regular file; make it one, or remove it")
        }
        guard Int(info.st_size) <= maxBytes, let data = FileManager.default.contents(atPath: path) else {
            throw InputError.configuration("cannot read the contexts file \(path), or it is over \(maxBytes) bytes")
        }
        var file = try parse(data, path: path)
        file.mode = info.st_mode & 0o7777
        if file.mode & 0o044 != 0, let named = file.contexts.first(where: \.namesCredentials) {
            throw InputError.configuration("the contexts file \(path) names credentials (context \(Limits.quoted(named.name))) "
                                           + "and others can read it (mode \(String(file.mode, radix: 8))): chmod 600 \(path)")
        }
        // Whoever can change the file chooses the servers the tools send their passwords to, and
        // the commands the workers run: only its owner, and only the user who runs the tool.
        if file.mode & 0o022 != 0 {
            throw InputError.configuration("others can change the contexts file \(path) (mode \(String(file.mode, radix: 8))): chmod go-w \(path)")
        }
        if info.st_uid != geteuid() {
            throw InputError.configuration("the contexts file \(path) belongs to user \(info.st_uid), not to the user running this tool (\(geteuid())); a file another user can change chooses this tool's servers: make your own")
        }
        return file
    }

    /// Parses the TOML text of a contexts file: `current = "NAME"` and `[contexts.NAME]` tables of
    /// string keys from `ContextSettings.keys`; anything else is a configuration error naming it.
    public static func parse(_ data: Data, path: String) throws -> ContextFile {
        guard let text = String(data: data, encoding: .utf8), !text.contains("\0") else {
            throw InputError.configuration("the contexts file \(path) is not UTF-8 text (or holds a NUL byte)")
        }
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw InputError.configuration("the contexts file \(path) is not valid TOML: line \(error.source.begin.line): \(Limits.escaped(error.description))")
        }
        var file = ContextFile(path: path, current: nil, contexts: [], mode: 0o600)
        let known = ContextSettings.keys.map(\.key)
        for key in table.keys {
            switch key {
            case "current":
                guard let name = table[key]?.string else {
                    throw InputError.configuration("'current' in \(path) must be a string, the name of a context")
                }
                file.current = name
            case "contexts":
                guard let contexts = table[key]?.table else {
                    throw InputError.configuration("'contexts' in \(path) must be a table of contexts: [contexts.NAME]")
                }
                for name in contexts.keys {
                    guard let settings = contexts[name]?.table else {
                        throw InputError.configuration("contexts.\(Limits.quoted(name)) in \(path) must be a table: [contexts.\(Limits.escaped(name))]")
                    }
                    var context = ContextSettings(name: name, values: [:])
                    for key in settings.keys {
                        guard known.contains(key) else {
                            throw InputError.configuration("unknown key \(Limits.quoted(key)) in context \(Limits.quoted(name)) of \(path); "
                                                           + "a context holds \(known.joined(separator: ", "))")
                        }
                        guard let value = settings[key]?.string, !value.isEmpty, !value.unicodeScalars.contains(where: Limits.isControl) else {
                            throw InputError.configuration("\(key) in context \(Limits.quoted(name)) of \(path) must be a non-empty string without control characters")
                        }
                        context.values[key] = value
                    }
                    file.contexts.append(context)
                }
            default:
                throw InputError.configuration("unknown key \(Limits.quoted(key)) in \(path); the file holds 'current' and [contexts.NAME] tables")
            }
        }
        if let current = file.current { _ = try file.context(current, source: "'current'") }
        return file
    }

    /// The context `name`, or a configuration error naming it, the file and the known ones.
    public func context(_ name: String, source: String) throws -> ContextSettings {
        guard let found = contexts.first(where: { $0.name == name }) else {
            let known = contexts.map { Limits.quoted($0.name) }
            throw InputError.configuration("\(source) names context \(Limits.quoted(name)), which \(path) does not define; "
                                           + (known.isEmpty ? "it defines none" : "it defines \(known.joined(separator: ", "))"))
        }
        return found
    }

    /// The context in force: `flag` (--context), else DS_CONTEXT, else the file's `current`, else
    /// none. A context named with no file is an error: it would otherwise be silently ignored.
    public static func selected(flag: String?, environment: [String: String]) throws -> (ContextSettings, ContextFile)? {
        let env = environment["DS_CONTEXT"].flatMap { $0.isEmpty ? nil : $0 }
        let named = flag.map { ($0, "--context") } ?? env.map { ($0, "DS_CONTEXT") }
        guard let file = try load(environment) else {
            guard let (name, source) = named else { return nil }
            throw InputError.configuration("\(source) names context \(Limits.quoted(name)), but there is no contexts file \(path(environment)); "
                                           + "write one (see ds-context(1)) or leave \(source) out")
        }
        if let (name, source) = named { return (try file.context(name, source: source), file) }
        guard let current = file.current else { return nil }
        return (try file.context(current, source: "'current'"), file)
    }

    /// `environment` with each variable the context stands in for set to the context's value where
    /// the environment sets none (the environment beats the context). A secret given in the
    /// environment itself (DS_ZK_AUTH) beats the context's file for it.
    public static func apply(_ context: ContextSettings, to environment: [String: String]) -> [String: String] {
        var result = environment
        for (key, variable) in ContextSettings.keys {
            guard var value = context.values[key], environment[variable] == nil else { continue }
            if key == "zk_auth_file" && environment["DS_ZK_AUTH"] != nil { continue }
            if ContextSettings.pathKeys.contains(key) && value.hasPrefix("~/") {
                value = (environment["HOME"] ?? NSHomeDirectory()) + value.dropFirst()
            }
            result[variable] = value
        }
        return result
    }
}

extension ContextFile {
    /// Makes `name` the current context: rewrites only the top-level `current = ...` line (or adds
    /// one at the top), keeping every other byte and the file's mode; a temporary file in the same
    /// folder, flushed to disk, then renamed over the file.
    public func use(_ name: String) throws {
        _ = try context(name, source: "ds-context use")
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw InputError.configuration("cannot read the contexts file \(path)")
        }
        let line = "current = " + Self.basicString(name)
        var lines = text.components(separatedBy: "\n")
        var replaced = false
        for i in lines.indices {
            let trimmed = lines[i].trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("[") { break }
            if trimmed.hasPrefix("current") && trimmed.dropFirst("current".count).trimmingCharacters(in: .whitespaces).hasPrefix("=") {
                lines[i] = line
                replaced = true
                break
            }
        }
        if !replaced { lines.insert(line, at: 0) }
        let updated = Data(lines.joined(separator: "\n").utf8)
        // What is written must read back as the same file with a new `current`.
        let check = try Self.parse(updated, path: path)
        guard check.current == name, check.contexts == contexts else {
            throw InputError.configuration("cannot set 'current' in \(path) without changing more of it; set current = \(Self.basicString(name)) by hand")
        }
        // A symbolic link (a dotfiles repository's) stays one: the file it points to is replaced.
        // (realpath: a relative link, as dotfiles managers make, resolved from the link's folder.)
        guard let resolved = realpath(path, nil) else {
            throw InputError.configuration("cannot resolve the contexts file \(path): \(String(cString: strerror(errno)))")
        }
        defer { free(resolved) }
        try Self.replace(String(cString: resolved), with: updated, mode: mode)
    }

    /// `name` as a TOML basic string.
    static func basicString(_ name: String) -> String {
        var out = "\""
        for scalar in name.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default:
                if Limits.isControl(scalar) { out += String(format: "\\u%04X", scalar.value) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }

    /// Writes `data` to a temporary file beside `path` with `mode`, flushes it, renames it over
    /// `path`, and flushes the folder: `path` is the old file or the new one, never half of one.
    static func replace(_ path: String, with data: Data, mode: mode_t) throws {
        let folder = (path as NSString).deletingLastPathComponent
        var template = Array((folder + "/.config.XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw InputError.configuration("cannot write in \(folder): \(String(cString: strerror(errno)))") }
        let temporary = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var ok = fchmod(fd, mode) == 0
        ok = ok && data.withUnsafeBytes { buffer -> Bool in
            var offset = 0
            while offset < buffer.count {
                let n = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 { if errno == EINTR { continue }; return false }
                offset += n
            }
            return true
        }
        ok = ok && fsync(fd) == 0
        let error = errno
        close(fd)
        guard ok, rename(temporary, path) == 0 else {
            let why = String(cString: strerror(ok ? errno : error))
            unlink(temporary)
            throw InputError.configuration("cannot write \(path): \(why)")
        }
        let dir = open(folder, O_RDONLY)
        if dir >= 0 { fsync(dir); close(dir) }
    }
}
