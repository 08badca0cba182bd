import Foundation
import DSModel

// libFuzzer target `parameters`: the bytes are lines of text.
//
//   line 1    run time in seconds since 1970 (clamped to 1970...2096; the clock gives it) and
//             a number choosing the time zone, e.g. `1772368496 3`
//   line 2    a command, substituted with the parameters below
//   then      `name=value` lines: the workflow's params; after a line `--`, the start-time overrides
//
// The whole input is also read as a task's log for `outputParameters(in:)`.
//
// Properties: nothing traps (date offsets such as `$[yyyyMMdd-99999999999999999999]` included);
// every function gives the same answer (or the same error) for the same input, also when the
// parameter dictionaries were built in another order; text without `$` comes back unchanged;
// results keep their bounds (a command `Limits.maxQueueItemBytes`, a parameter
// `Limits.maxValueBytes`); the instance parameters hold every built-in, workflow parameter and
// override; output parameters have valid names and values, at most `Limits.maxOutputs`; and
// `shellQuoted` gives one word that `sh` reads back as the value.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzParameterResolver(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let input = ParameterInput(fuzzText(bytes, count))
    let resolver = ParameterResolver(runTime: input.runTime, timeZone: input.timeZone)

    let substituted = Result { () throws(ParameterError) in try resolver.substitute(input.command, input.workflow) }
    fuzzRequire(substituted == Result { () throws(ParameterError) in try resolver.substitute(input.command, input.workflow) },
                "substitute is not deterministic: \(input.command)")
    if case .success(let text) = substituted {
        fuzzRequire(text.utf8.count <= Limits.maxQueueItemBytes, "a command of \(text.utf8.count) bytes")
        if !input.command.contains("$") { fuzzRequire(text == input.command, "text without $ changed: \(text)") }
    }

    let parameters = Result { () throws(ParameterError) in
        try resolver.instanceParameters(workflow: input.workflow, overrides: input.overrides)
    }
    let inOtherOrder = Result { () throws(ParameterError) in
        try resolver.instanceParameters(workflow: reordered(input.workflow), overrides: reordered(input.overrides))
    }
    fuzzRequire(parameters == inOtherOrder,
                "instanceParameters depends on dictionary order: \(input.workflow) \(input.overrides)\n\(parameters)\n\(inOtherOrder)")
    if case .success(let values) = parameters {
        for name in builtInNames.union(input.workflow.keys).union(input.overrides.keys) {
            fuzzRequire(values[name] != nil, "instance parameters lack '\(name)'")
        }
        for (name, value) in values {
            fuzzRequire(value.utf8.count <= Limits.maxValueBytes, "parameter '\(name)' of \(value.utf8.count) bytes")
        }
    }

    let outputs = ParameterResolver.outputParameters(in: input.text)
    fuzzRequire(outputs == ParameterResolver.outputParameters(in: input.text), "outputParameters is not deterministic")
    fuzzRequire(outputs.count <= Limits.maxOutputs, "\(outputs.count) output parameters")
    for (name, value) in outputs {
        fuzzRequire(Limits.keyProblem(name) == nil && Limits.valueProblem(value) == nil, "output parameter '\(name)'='\(value)'")
    }

    let quoted = ParameterResolver.shellQuoted(input.command)
    fuzzRequire(shellWord(quoted)?.unicodeScalars.elementsEqual(input.command.unicodeScalars) == true,
                "shellQuoted(\(input.command.debugDescription)) = \(quoted.debugDescription): sh reads another word")
    return 0
}

/// Once: formatting dates is most of the time of a run.
private let builtInNames = Set(ParameterResolver(runTime: Date(), timeZone: TimeZone(identifier: "UTC")!).builtIns.keys)

/// What `sh` reads from `word` if it is made only of single-quoted strings and `\'`; nil if it
/// holds anything else (which the shell might expand or split). Read by scalars, as `sh` reads
/// bytes: a `'` followed by a combining mark is one Character but still a quote to the shell.
private func shellWord(_ word: String) -> String? {
    var result = String.UnicodeScalarView()
    var rest = word.unicodeScalars[...]
    while let first = rest.first {
        if first == "\\", rest.dropFirst().first == "'" {
            result.append("'")
            rest = rest.dropFirst(2)
        } else if first == "'" {
            guard let close = rest.dropFirst().firstIndex(of: "'") else { return nil }
            result.append(contentsOf: rest[rest.index(after: rest.startIndex)..<close])
            rest = rest[rest.index(after: close)...]
        } else {
            return nil
        }
    }
    return String(result)
}

/// The same entries, inserted in reverse order into a dictionary of another capacity, so that
/// iterating it visits them in another order.
private func reordered(_ values: [String: String]) -> [String: String] {
    var copy = [String: String](minimumCapacity: values.count * 4 + 17)
    for (name, value) in values.sorted(by: { $0.key > $1.key }) { copy[name] = value }
    return copy
}

private struct ParameterInput {
    static let timeZones = ["UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Pacific/Apia",
                            "Asia/Kathmandu", "Pacific/Kiritimati", "America/St_Johns", "Africa/Casablanca"]
    var text: String
    var runTime = Date(timeIntervalSince1970: 1_772_368_496)
    var timeZone = TimeZone(identifier: "UTC")!
    var command = ""
    var workflow: [String: String] = [:]
    var overrides: [String: String] = [:]

    init(_ text: String) {
        self.text = text
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if let first = lines.first {
            let fields = first.split(separator: " ")
            if let seconds = fields.first.flatMap({ Double($0) }), seconds.isFinite {
                runTime = Date(timeIntervalSince1970: min(max(seconds, 0), 4e9))
            }
            if fields.count > 1, let n = Int(fields[1]) {
                timeZone = TimeZone(identifier: Self.timeZones[Int(n.magnitude % UInt(Self.timeZones.count))]) ?? timeZone
            }
        }
        if lines.count > 1 { command = String(lines[1]) }
        var inOverrides = false
        for line in lines.dropFirst(2) {
            if line == "--" { inOverrides = true; continue }
            guard let eq = line.firstIndex(of: "=") else { continue }
            let (name, value) = (String(line[..<eq]), String(line[line.index(after: eq)...]))
            if inOverrides { overrides[name] = value } else { workflow[name] = value }
        }
    }
}
