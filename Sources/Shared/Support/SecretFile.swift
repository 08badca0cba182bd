import Foundation

/// A secret kept in a file so that it never shows in `ps` (`DS_ZK_AUTH_FILE`, `DS_DB_PASSWORD_FILE`):
/// one reading for both, with the same refusals.
enum SecretFile {
    /// The text of the file `path` that the variable `variable` names, its one trailing line break
    /// removed. `holding` says what the file must hold ("user:password"), for the messages. Refused
    /// (exit 78): an empty name, a folder, a file others can read or write (as ssh refuses a key),
    /// more than `maxLength` bytes, text that is not UTF-8.
    static func read(_ path: String, variable: String, holding: String, maxLength: Int) throws -> String {
        guard !path.isEmpty else {
            throw InputError.configuration("\(variable) is set but empty; name a file holding \(holding), or unset it")
        }
        let source = "\(variable) \(path)"
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw InputError.configuration("\(source): cannot open: \(String(cString: strerror(errno))); "
                + "write \(holding) into it (readable by the ds user only), or unset \(variable)")
        }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        var info = stat()
        if fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR {
            throw InputError.configuration("\(source) is a folder; name a file holding \(holding)")
        }
        // A secret others can read is no secret (a task running as another user, say): as ssh does.
        if info.st_mode & 0o077 != 0 {
            throw InputError.configuration("\(source) can be read or written by others (mode \(String(info.st_mode & 0o777, radix: 8))); "
                + "make it readable by the ds user only: chmod 600 \(path)")
        }
        let data: Data
        do {
            data = try handle.read(upToCount: maxLength + 3) ?? Data()
        } catch {
            throw InputError.configuration("\(source): cannot read: \(error.localizedDescription); it must be a file holding \(holding)")
        }
        guard data.count <= maxLength + 2 else {
            throw InputError.configuration("\(source) is longer than \(maxLength) bytes; it must hold \(holding)")
        }
        guard var text = String(data: data, encoding: .utf8) else {
            throw InputError.configuration("\(source) is not UTF-8 text; it must hold \(holding)")
        }
        // Editors end a file with a line break; `echo` writes one too. ("\r\n" is one Character.)
        if text.hasSuffix("\n") || text.hasSuffix("\r\n") { text.removeLast() }
        return text
    }
}
