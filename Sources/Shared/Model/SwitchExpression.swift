import Foundation

/// The condition of one case of a SWITCH node: a small grammar, no general code.
///
///     expr     := or
///     or       := and ( "||" and )*
///     and      := not ( "&&" not )*
///     not      := "!" not | "(" expr ")" | compare
///     compare  := operand ( "==" | "!=" | "<" | "<=" | ">" | ">=" ) operand
///     operand  := ${name} | "text" | 'text' | number
///
/// `${name}` is a parameter the node sees (built-ins, workflow params, `--param` overrides, and the
/// output parameters of the tasks upstream). Inside quotes it means the value too, as
/// DolphinScheduler users write it (`"${region}" == "us"`, `"v-${n}"`): the value is put in as
/// text, never read as syntax, whatever quotes or backslashes it holds; `\$` in quotes is a `$`. When both sides read as numbers they compare as
/// numbers (`${n} > 3`, `"10" == 10.0`): decimals without an exponent (`-007`, `2.50`, a
/// 400-digit id) exactly, as decimal strings of any length; others (`1e3`) as 64-bit floats; otherwise `==` and `!=` compare text byte for byte, and an ordering of text is an
/// error. A parameter that is not defined is an error, never false: the node fails naming it,
/// rather than quietly taking the default branch. `&&` and `||` read their right side only when
/// the left does not decide (`${a} == 1 && ${b} == 2` is false when a is not 1, b defined or not).
public indirect enum SwitchExpression: Sendable, Equatable {
    case compare(Operand, Comparison, Operand)
    case not(SwitchExpression)
    case and(SwitchExpression, SwitchExpression)
    case or(SwitchExpression, SwitchExpression)

    public enum Operand: Sendable, Equatable {
        case parameter(String)
        case text(String)
        case number(String)
        /// Quoted text with parameters in it: the pieces in order, each literal text or a name.
        case quoted([Piece])
    }

    public enum Piece: Sendable, Equatable {
        case text(String)
        case parameter(String)
    }

    public enum Comparison: String, Sendable, CaseIterable {
        case equal = "==", notEqual = "!=", lessOrEqual = "<=", greaterOrEqual = ">=", less = "<", greater = ">"
    }

    /// The longest expression accepted, and the deepest nesting: a bound, not a taste.
    public static let maxLength = 4096
    static let maxDepth = 64

    public struct SyntaxError: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    public struct EvaluationError: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    /// Parses an expression, or says what is wrong and where (a 1-based character position).
    public static func parse(_ text: String) throws -> SwitchExpression {
        guard text.utf8.count <= maxLength else {
            throw SyntaxError(description: "is \(text.utf8.count) bytes; a condition may be at most \(maxLength)")
        }
        var parser = Parser(Array(text.unicodeScalars))
        let e = try parser.expression(depth: 0)
        parser.skipSpace()
        guard parser.atEnd else { throw parser.error("unexpected \(parser.found) after a complete condition") }
        return e
    }

    /// The parameters the expression reads.
    public var parameters: [String] {
        switch self {
        case .compare(let a, _, let b):
            return [a, b].flatMap { operand -> [String] in
                switch operand {
                case .parameter(let n): return [n]
                case .quoted(let pieces): return pieces.compactMap { if case .parameter(let n) = $0 { n } else { nil } }
                case .text, .number: return []
                }
            }
        case .not(let e): return e.parameters
        case .and(let a, let b), .or(let a, let b): return a.parameters + b.parameters
        }
    }

    /// Evaluates with `values`; an undefined parameter or an ordering of text is an error.
    public func evaluate(_ values: [String: String]) throws -> Bool {
        switch self {
        case .not(let e): return try !e.evaluate(values)
        case .and(let a, let b): return try a.evaluate(values) && b.evaluate(values)
        case .or(let a, let b): return try a.evaluate(values) || b.evaluate(values)
        case .compare(let a, let op, let b):
            let (x, y) = (try a.value(values), try b.value(values))
            if let order = Self.compareDecimals(x, y) {
                switch op {
                case .equal: return order == 0
                case .notEqual: return order != 0
                case .less: return order < 0
                case .lessOrEqual: return order <= 0
                case .greater: return order > 0
                case .greaterOrEqual: return order >= 0
                }
            }
            if let m = Self.number(x), let n = Self.number(y) {
                switch op {
                case .equal: return m == n
                case .notEqual: return m != n
                case .less: return m < n
                case .lessOrEqual: return m <= n
                case .greater: return m > n
                case .greaterOrEqual: return m >= n
                }
            }
            // Exactly: byte for byte, not Unicode's canonical equivalence ("é" is not "e" + U+0301).
            let same = x.utf8.elementsEqual(y.utf8)
            switch op {
            case .equal: return same
            case .notEqual: return !same
            default:
                throw EvaluationError(description: "\(op.rawValue) orders numbers, and \(Limits.quoted(Self.number(x) == nil ? x : y)) is not a number")
            }
        }
    }

    /// A decimal without an exponent, as its sign, whole digits (no leading zeros) and fraction
    /// digits (no trailing zeros): `-007.50` is (true, "7", "5"); nil for anything else.
    static func decimalParts(_ s: String) -> (negative: Bool, whole: Substring, fraction: Substring)? {
        var t = Substring(s.trimmingCharacters(in: .whitespaces))
        var negative = false
        if let c = t.first, c == "-" || c == "+" { negative = c == "-"; t = t.dropFirst() }
        let pieces = t.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let isDigits = { (p: Substring) in p.utf8.allSatisfy { (0x30...0x39).contains($0) } }
        guard pieces.allSatisfy(isDigits), pieces.contains(where: { !$0.isEmpty }) else { return nil }
        let whole = pieces[0].drop { $0 == "0" }
        var fraction = pieces.count > 1 ? pieces[1] : ""
        while fraction.last == "0" { fraction = fraction.dropLast() }
        return (negative && !(whole.isEmpty && fraction.isEmpty), whole, fraction)
    }

    /// Two decimals without an exponent, of any length (`-007`, `2.50`, a 400-digit id), compared
    /// exactly as decimal strings, without the rounding (or overflow to infinity) of a 64-bit
    /// float: -1, 0 or 1; nil unless both are such decimals.
    static func compareDecimals(_ a: String, _ b: String) -> Int? {
        guard let x = decimalParts(a), let y = decimalParts(b) else { return nil }
        if x.negative != y.negative { return x.negative ? -1 : 1 }
        func order<S: StringProtocol>(_ p: S, _ q: S) -> Int { p == q ? 0 : (p.lexicographicallyPrecedes(q) ? -1 : 1) }
        var magnitude = x.whole.count != y.whole.count ? (x.whole.count < y.whole.count ? -1 : 1) : order(x.whole, y.whole)
        if magnitude == 0 {
            // Fractions compare digit by digit once the shorter is padded with zeros.
            let width = max(x.fraction.count, y.fraction.count)
            func padded(_ f: Substring) -> String { f + String(repeating: "0", count: width - f.count) }
            magnitude = order(padded(x.fraction), padded(y.fraction))
        }
        return x.negative ? -magnitude : magnitude
    }

    /// A decimal number as written in JSON or a shell (`3`, `-2.5`, `1e3`); not `inf`, `nan` or hex.
    /// A decimal of more than 308 digits is ±infinity here, which still orders it against `1e300`
    /// (two such decimals compare exactly, in `compareDecimals`).
    static func number(_ s: String) -> Double? {
        let t = s.trimmingCharacters(in: .whitespaces)
        guard !t.isEmpty, t.unicodeScalars.allSatisfy({ "0123456789+-.eE".unicodeScalars.contains($0) }),
              let d = Double(t), d.isFinite || decimalParts(t) != nil else { return nil }
        return d
    }

    struct Parser {
        let s: [Unicode.Scalar]
        var i = 0
        init(_ s: [Unicode.Scalar]) { self.s = s }

        var atEnd: Bool { i >= s.count }
        var found: String { atEnd ? "end of text" : Limits.quoted(String(String.UnicodeScalarView(s[i..<min(s.count, i + 12)]))) }

        func error(_ message: String) -> SyntaxError { SyntaxError(description: "at character \(i + 1): \(message)") }

        mutating func skipSpace() { while !atEnd && (s[i] == " " || s[i] == "\t") { i += 1 } }

        mutating func take(_ token: String) -> Bool {
            skipSpace()
            let t = Array(token.unicodeScalars)
            guard i + t.count <= s.count, Array(s[i..<i + t.count]) == t else { return false }
            i += t.count
            return true
        }

        mutating func expression(depth: Int) throws -> SwitchExpression {
            guard depth < SwitchExpression.maxDepth else { throw error("nested more than \(SwitchExpression.maxDepth) deep") }
            var e = try conjunction(depth: depth)
            while take("||") { e = .or(e, try conjunction(depth: depth)) }
            return e
        }

        mutating func conjunction(depth: Int) throws -> SwitchExpression {
            var e = try negation(depth: depth)
            while take("&&") { e = .and(e, try negation(depth: depth)) }
            return e
        }

        mutating func negation(depth: Int) throws -> SwitchExpression {
            guard depth < SwitchExpression.maxDepth else { throw error("nested more than \(SwitchExpression.maxDepth) deep") }
            skipSpace()
            if !atEnd && s[i] == "!" && !(i + 1 < s.count && s[i + 1] == "=") {
                i += 1
                return .not(try negation(depth: depth + 1))
            }
            if take("(") {
                let e = try expression(depth: depth + 1)
                guard take(")") else { throw error("expected ')' but found \(found)") }
                return e
            }
            let left = try operand()
            skipSpace()
            guard let op = Comparison.allCases.first(where: { take($0.rawValue) }) else {
                throw error("expected a comparison (== != < <= > >=) but found \(found)")
            }
            return .compare(left, op, try operand())
        }

        mutating func operand() throws -> Operand {
            skipSpace()
            guard !atEnd else { throw error("expected \("${name}"), a quoted text or a number, but the condition ends") }
            let c = s[i]
            if c == "$" {
                guard take("${") else { throw error("a parameter is written ${name}") }
                let start = i
                while !atEnd && s[i] != "}" { i += 1 }
                guard !atEnd else { throw error("'${' without its '}'") }
                let name = String(String.UnicodeScalarView(s[start..<i]))
                i += 1
                guard !name.isEmpty, Limits.keyProblem(name) == nil else { throw error("\(Limits.quoted(name)) is not a parameter name") }
                return .parameter(name)
            }
            if c == "\"" || c == "'" {
                i += 1
                var pieces: [Piece] = []
                var text = String.UnicodeScalarView()
                while !atEnd && s[i] != c {
                    if s[i] == "$" && i + 1 < s.count && s[i + 1] == "{" {
                        // A parameter inside quotes: its value is a piece of the text.
                        let start = i + 2
                        var end = start
                        while end < s.count && s[end] != "}" && s[end] != c { end += 1 }
                        guard end < s.count, s[end] == "}" else { throw error("'${' without its '}' inside the quotes") }
                        let name = String(String.UnicodeScalarView(s[start..<end]))
                        guard !name.isEmpty, Limits.keyProblem(name) == nil else { throw error("\(Limits.quoted(name)) is not a parameter name") }
                        if !text.isEmpty { pieces.append(.text(String(text))) }
                        text = String.UnicodeScalarView()
                        pieces.append(.parameter(name))
                        i = end + 1
                        continue
                    }
                    if s[i] == "\\" && i + 1 < s.count && (s[i + 1] == c || s[i + 1] == "\\" || s[i + 1] == "$") { i += 1 }
                    text.append(s[i])
                    i += 1
                }
                guard !atEnd else { throw error("a quoted text without its closing \(c)") }
                i += 1
                if pieces.isEmpty { return .text(String(text)) }
                if !text.isEmpty { pieces.append(.text(String(text))) }
                return .quoted(pieces)
            }
            let start = i
            while !atEnd && "0123456789+-.eE".unicodeScalars.contains(s[i]) { i += 1 }
            let word = String(String.UnicodeScalarView(s[start..<i]))
            guard SwitchExpression.number(word) != nil else {
                i = start
                throw error("expected ${name}, a quoted text or a number, but found \(found) (quote text: \"a\")")
            }
            return .number(word)
        }
    }
}

extension SwitchExpression.Operand {
    func value(_ values: [String: String]) throws -> String {
        switch self {
        case .text(let t), .number(let t): return t
        case .parameter(let name): return try Self.value(of: name, values)
        case .quoted(let pieces):
            // Joined as text: a value is never parsed again, so a quote in it ends nothing.
            return try pieces.map { piece in
                switch piece {
                case .text(let t): return t
                case .parameter(let name): return try Self.value(of: name, values)
                }
            }.joined()
        }
    }

    static func value(of name: String, _ values: [String: String]) throws -> String {
        guard let v = values[name] else {
            throw SwitchExpression.EvaluationError(description: "parameter \(Limits.quoted(name)) is not defined")
        }
        return v
    }
}
