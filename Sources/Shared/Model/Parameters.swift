import Foundation

/// A parameter that cannot be resolved within the bounds of `Limits`.
public enum ParameterError: Error, Equatable, CustomStringConvertible {
    /// The text of `what`, once resolved, would pass `limit` bytes.
    case tooLong(what: String, limit: Int)
    /// Parameters that refer to each other in a circle, first to last.
    case cycle([String])

    public var description: String {
        switch self {
        case .tooLong(let what, let limit):
            return "\(what) would be longer than \(Limits.size(limit)) once its parameters are resolved"
        case .cycle(let names):
            return "parameters refer to each other in a cycle: \(names.joined(separator: " -> ")); one of them must have a value of its own"
        }
    }
}

/// Resolves `${name}`, `${name@Q}` and `$[yyyyMMdd-1]` in commands and parameter values. Pure: the
/// run time and time zone come in, nothing is read from the clock.
///
/// Parameters are the built-ins, the workflow's `params`, start-time overrides (`--param`, which
/// replace a workflow param of the same name) and output parameters of upstream tasks (which
/// replace any of those). A parameter's value may refer to built-ins and to other parameters; each
/// reference takes the final value of the parameter it names (after overrides), whatever the order
/// of the flags: `--param 'a=${b}' --param b=new` gives `a=new`. Parameters that refer to each
/// other in a cycle (`a=${b}`, `b=${a}`, or `p=${p}x`) are an error. A `${name}` with no parameter of that name is left alone, so shell variables such
/// as `${HOME}` pass through to the shell. `${name@Q}` is the value quoted for the shell (one
/// single-quoted word), like bash's own `${name@Q}`.
public struct ParameterResolver: Sendable {
    public let runTime: Date
    public let timeZone: TimeZone

    public init(runTime: Date, timeZone: TimeZone = .current) {
        self.runTime = runTime
        self.timeZone = timeZone
    }

    /// `system.biz.date` (the day before the run, yyyyMMdd), `system.biz.curdate`, `system.datetime`.
    public var builtIns: [String: String] {
        [
            "system.biz.date": format("yyyyMMdd", offsetDays: -1),
            "system.biz.curdate": format("yyyyMMdd", offsetDays: 0),
            "system.datetime": format("yyyyMMddHHmmss", offsetDays: 0),
        ]
    }

    /// The parameters of an instance: built-ins, the workflow's own and the overrides, each
    /// resolved in the order of their references (see the type's comment); each at most
    /// `Limits.maxValueBytes` long.
    public func instanceParameters(workflow: [String: String], overrides: [String: String]) throws(ParameterError) -> [String: String] {
        let raw = workflow.merging(overrides) { _, override in override }
        var resolved = builtIns.filter { raw[$0.key] == nil }
        var path: [String] = []
        func resolve(_ name: String) throws(ParameterError) {
            guard resolved[name] == nil, let text = raw[name] else { return }
            if let start = path.firstIndex(of: name) { throw .cycle(Array(path[start...]) + [name]) }
            path.append(name)
            for reference in Self.references(in: text) { try resolve(reference) }
            resolved[name] = try substitute(text, resolved, limit: Limits.maxValueBytes, what: "parameter '\(name)'")
            path.removeLast()
        }
        for name in raw.keys.sorted() { try resolve(name) }
        return resolved
    }

    /// A task's command and environment as its queue item carries them: every parameter in
    /// `values`, the task's own `env` resolved over them, and its command resolved, each within
    /// `Limits`. One place for ds-submit's check and a master's dispatch.
    public func resolve(_ task: TaskDefinition, _ values: [String: String]) throws(ParameterError) -> (command: String, env: [String: String]) {
        var env = values
        for (k, v) in task.env {
            env[k] = try substitute(v, values, limit: Limits.maxValueBytes, what: "environment variable \(Limits.quoted(k))")
        }
        return (try substitute(task.command, values, limit: Limits.maxCommandBytes), env)
    }

    /// The names `${name}` and `${name@Q}` refer to in `text`.
    static func references(in text: String) -> [String] {
        var names: [String] = []
        var rest = text[...]
        while let open = rest.range(of: "${") {
            let horizon = rest.index(open.upperBound, offsetBy: maxReferenceLength, limitedBy: rest.endIndex) ?? rest.endIndex
            guard let close = rest[open.upperBound..<horizon].firstIndex(of: "}") else {
                rest = rest[open.upperBound...]
                continue
            }
            var name = rest[open.upperBound..<close]
            if name.hasSuffix("@Q") { name = name.dropLast(2) }
            names.append(String(name))
            rest = rest[rest.index(after: close)...]
        }
        return names
    }

    /// Replaces `${name}` and `${name@Q}` from `values` and `$[pattern±days]` from the run time.
    /// Throws when the result would pass `limit` bytes (`what` names the text in the error): a
    /// command of many references to a long value must not grow without bound in a master.
    public func substitute(_ text: String, _ values: [String: String], limit: Int = Limits.maxQueueItemBytes,
                           what: String = "the command") throws(ParameterError) -> String {
        guard text.contains("$") else { return text }
        var out = ""
        var i = text.startIndex
        while i < text.endIndex {
            let c = text[i]
            let next = text.index(after: i)
            if c == "$", next < text.endIndex, text[next] == "{" || text[next] == "[" {
                let close: Character = text[next] == "{" ? "}" : "]"
                // Looks no further than the longest name or date expression: a command of many
                // `${` without a match must not cost a scan to its end each (quadratic).
                let horizon = text.index(next, offsetBy: Self.maxReferenceLength, limitedBy: text.endIndex) ?? text.endIndex
                if let end = text[next..<horizon].firstIndex(of: close) {
                    let inner = text[text.index(after: next)..<end]
                    var replacement: String?
                    if close == "}" {
                        if let v = values[String(inner)] { replacement = v }
                        else if inner.hasSuffix("@Q"), let v = values[String(inner.dropLast(2))] { replacement = Self.shellQuoted(v) }
                    } else {
                        replacement = dateExpression(String(inner))
                    }
                    if let replacement {
                        out += replacement
                        guard out.utf8.count <= limit else { throw .tooLong(what: what, limit: limit) }
                        i = text.index(after: end)
                        continue
                    }
                }
            }
            out.append(c)
            i = next
        }
        guard out.utf8.count <= limit else { throw .tooLong(what: what, limit: limit) }
        return out
    }

    /// The longest `${name@Q}` or `$[pattern+offset]` looked for.
    static let maxReferenceLength = Limits.maxKeyLength + 8

    /// `value` as one word for `sh`: in single quotes, each `'` written as `'\''`.
    /// By scalars, not Characters: a quote followed by a combining mark is one Character, which a
    /// Character-wise replace would leave as it is, ending the quoted word (found by the fuzzer).
    public static func shellQuoted(_ value: String) -> String {
        var out = String.UnicodeScalarView()
        out.append("'")
        for scalar in value.unicodeScalars {
            if scalar == "'" { out.append(contentsOf: #"'\''"#.unicodeScalars) } else { out.append(scalar) }
        }
        out.append("'")
        return String(out)
    }

    /// `yyyyMMdd`, `yyyyMMdd-1`, `yyyy-MM-dd+7`, `HHmmss`: a date pattern and an optional day offset.
    func dateExpression(_ expression: String) -> String? {
        var pattern = expression
        var days = 0
        if let r = expression.range(of: #"[+-][0-9]+$"#, options: .regularExpression),
           r.lowerBound > expression.startIndex {
            // An offset beyond the limit (or one that overflows Int) is no date expression: the
            // text stays as written, instead of trapping every master that resolves it.
            guard let offset = Int(expression[r]), offset.magnitude <= UInt(Limits.maxDayOffset) else { return nil }
            days = offset
            pattern = String(expression[..<r.lowerBound])
        }
        guard !pattern.isEmpty, pattern.count <= 64, pattern.allSatisfy({ "yMdHhms-_:/. ".contains($0) }) else { return nil }
        return format(pattern, offsetDays: days)
    }

    private func format(_ pattern: String, offsetDays: Int) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let date = calendar.date(byAdding: .day, value: offsetDays, to: runTime) ?? runTime
        let f = DateFormatter()
        f.calendar = calendar
        f.timeZone = timeZone
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = pattern
        return f.string(from: date)
    }

    /// Output parameters a task printed as `${setValue(name=value)}`, in order; later wins.
    public static func outputParameters(in log: String) -> [String: String] {
        var scanner = OutputScanner()
        scanner.scan(log[...])
        return scanner.outputs
    }
}

/// Collects the output parameters a task prints as `${setValue(name=value)}` (later wins), within
/// bounds: at most `Limits.maxOutputs` names and `Limits.maxOutputBytes` in all, each name a valid
/// and unreserved parameter name, each value at most `Limits.maxValueBytes` without NUL. The first
/// breach is kept as `problem` (the worker then fails the task with it) and nothing more is stored.
public struct OutputScanner: Sendable {
    public private(set) var outputs: [String: String] = [:]
    public private(set) var problem: String?
    /// `${setValue(` openings with no `)}` after them on their line: an assignment whose value
    /// spans lines, which the worker (reading line by line) cannot take. Ignored, and told in the
    /// task's log (`unclosedWarning`), never silently.
    public private(set) var unclosed = 0
    /// The text after the first unclosed opening, to name it (at most 40 characters).
    public private(set) var firstUnclosed: String?
    private var bytes = 0

    public init() {}

    /// The most `${setValue(...)}` assignments read from one task's output, repeats included: a
    /// task printing the same one a billion times must not keep its worker scanning for an hour.
    public static let maxAssignments = 10_000
    private var assignments = 0

    /// Scans one piece of output that holds whole assignments (a line, or a log).
    public mutating func scan(_ text: Substring) {
        scan(bytes: Array(text.utf8))
    }

    /// The same over bytes: the marker is found byte by byte, and only an assignment's own text
    /// becomes a String (searching Strings for it was a thousand times slower).
    public mutating func scan(bytes: [UInt8]) {
        let open = Array("${setValue(".utf8)
        var i = 0
        while problem == nil, let start = Self.find(open, in: bytes, from: i) {
            let body = start + open.count
            var end = body
            while end + 1 < bytes.count, !(bytes[end] == UInt8(ascii: ")") && bytes[end + 1] == UInt8(ascii: "}")) { end += 1 }
            guard end + 1 < bytes.count else {
                unclosed += 1
                if firstUnclosed == nil { firstUnclosed = String(decoding: bytes[body...].prefix(40), as: UTF8.self) }
                break
            }
            assignments += 1
            if assignments > Self.maxAssignments {
                return refuse("more than \(Self.maxAssignments) ${setValue(...)} assignments in the output")
            }
            if let eq = bytes[body..<end].firstIndex(of: UInt8(ascii: "=")) {
                let key = String(decoding: bytes[body..<eq], as: UTF8.self).trimmingCharacters(in: .whitespaces)
                if !key.isEmpty { record(key, String(decoding: bytes[(eq + 1)..<end], as: UTF8.self)) }
            }
            i = end + 2
        }
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8], from: Int) -> Int? {
        guard needle.count <= haystack.count else { return nil }
        var i = from
        let first = needle[0]
        while i + needle.count <= haystack.count {
            if haystack[i] == first, haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }

    /// The `[ds]` line a task's log gets when an assignment was not closed on its line, or nil.
    public var unclosedWarning: String? {
        guard unclosed > 0 else { return nil }
        return "[ds] ignored \(unclosed) ${setValue(...)} not closed on its line (the first: \(Limits.quoted(firstUnclosed ?? ""))): "
            + "an output parameter's value is one line; print it without newlines (for example through tr '\\n' ' ')"
    }

    /// Notes a breach found outside `scan` (an overlong line that mentions setValue).
    public mutating func refuse(_ why: String) {
        if problem == nil { problem = why }
    }

    private mutating func record(_ key: String, _ value: String) {
        if let why = Limits.keyProblem(key) { return refuse("output parameter \(Limits.quoted(key)) refused: its name \(why)") }
        if let why = Limits.valueProblem(value) { return refuse("output parameter \(Limits.quoted(key)) refused: its value \(why)") }
        bytes += key.utf8.count + value.utf8.count - (outputs[key].map { key.utf8.count + $0.utf8.count } ?? 0)
        outputs[key] = value
        if outputs.count > Limits.maxOutputs {
            refuse("more than \(Limits.maxOutputs) output parameters; a task may set at most \(Limits.maxOutputs)")
        } else if bytes > Limits.maxOutputBytes {
            refuse("output parameters of more than \(Limits.size(Limits.maxOutputBytes)) in all; a task may set at most that")
        }
    }
}
