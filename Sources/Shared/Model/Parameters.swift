import Foundation

/// Resolves `${name}` and `$[yyyyMMdd-1]` in commands and parameter values. Pure: the run
/// time and time zone come in, nothing is read from the clock.
///
/// Precedence, lowest first: built-ins, workflow `params`, start-time overrides (`--param`),
/// output parameters of upstream tasks. A `${name}` with no parameter of that name is left
/// alone, so shell variables such as `${HOME}` pass through to the shell.
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

    /// The parameters of an instance: built-ins, then the workflow's own, then overrides, each resolved.
    public func instanceParameters(workflow: [String: String], overrides: [String: String]) -> [String: String] {
        var result = builtIns
        for (k, v) in workflow { result[k] = substitute(v, builtIns) }
        for (k, v) in overrides { result[k] = substitute(v, result) }
        return result
    }

    /// Replaces `${name}` from `values` and `$[pattern±days]` from the run time.
    public func substitute(_ text: String, _ values: [String: String]) -> String {
        guard text.contains("$") else { return text }
        var out = ""
        var i = text.startIndex
        while i < text.endIndex {
            let c = text[i]
            let next = text.index(after: i)
            if c == "$", next < text.endIndex, text[next] == "{" || text[next] == "[" {
                let close: Character = text[next] == "{" ? "}" : "]"
                if let end = text[next...].firstIndex(of: close) {
                    let inner = String(text[text.index(after: next)..<end])
                    if close == "}", let v = values[inner] {
                        out += v
                        i = text.index(after: end)
                        continue
                    }
                    if close == "]", let v = dateExpression(inner) {
                        out += v
                        i = text.index(after: end)
                        continue
                    }
                }
            }
            out.append(c)
            i = next
        }
        return out
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
        guard !pattern.isEmpty, pattern.allSatisfy({ "yMdHhms-_:/. ".contains($0) }) else { return nil }
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
        var result: [String: String] = [:]
        var rest = log[...]
        while let start = rest.range(of: "${setValue(") {
            guard let end = rest[start.upperBound...].range(of: ")}") else { break }
            let assignment = rest[start.upperBound..<end.lowerBound]
            if let eq = assignment.firstIndex(of: "=") {
                let key = assignment[..<eq].trimmingCharacters(in: .whitespaces)
                if !key.isEmpty { result[key] = String(assignment[assignment.index(after: eq)...]) }
            }
            rest = rest[end.upperBound...]
        }
        return result
    }
}
