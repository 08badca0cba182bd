/// A workflow's DAG as Graphviz DOT: one box per task, an edge from each dependency to its task,
/// filled by state.
///
/// Names, states, notes and the title are hostile input: each goes into a label only, as a
/// double-quoted DOT string in which nothing can end the string or start an escape, an entity or
/// a line of its own. Node ids are `t0, t1, …` in definition order, so no name reaches the syntax.
/// The output grows with the definition, which validation bounds (`Limits.maxTasks`, names of
/// `Limits.maxNameLength`).
public enum DotGraph {
    /// The DOT text for `definition`; `states` and `notes` (keyed by task name) add a second and a
    /// third line to a task's label, and `title` labels the graph.
    public static func render(_ definition: WorkflowDefinition, states: [String: String] = [:], notes: [String: String] = [:],
                              title: String? = nil) -> String {
        var lines = ["digraph \"workflow\" {"]
        if let title {
            lines.append("  graph [label=\(label([title])), labelloc=\"t\"];")
        }
        lines.append("  node [shape=\"box\", style=\"filled\", fillcolor=\"\(defaultFill)\"];")
        // The first task of a name wins, as it would for a reader; validation refuses duplicates.
        var index: [String: Int] = [:]
        for (i, task) in definition.tasks.enumerated() where index[task.name] == nil { index[task.name] = i }
        for (i, task) in definition.tasks.enumerated() {
            let state = states[task.name]
            let text = [task.name] + [state, notes[task.name]].compactMap { $0 }
            // A branch node is a diamond, as in flowcharts; a disabled task is dashed.
            let shape = task.isBranchNode ? ", shape=\"diamond\"" : (task.isEnabled ? "" : ", style=\"filled,dashed\"")
            lines.append("  \(nodeID(i)) [label=\(label(text)), fillcolor=\"\(fill(for: state))\"\(shape)];")
        }
        for (i, task) in definition.tasks.enumerated() {
            // An unknown dependency (a definition that skipped validation) draws nothing.
            for dep in task.deps {
                guard let from = index[dep] else { continue }
                lines.append("  \(nodeID(from)) -> \(nodeID(i));")
            }
        }
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }

    /// Fill colours by state: task states and the workflow states a task is shown in. One table;
    /// a state not in it, or no state, is `defaultFill`.
    static let palette: [String: String] = {
        let groups: [(states: [String], fill: String)] = [
            ([TaskState.success.rawValue, TaskState.forcedSuccess.rawValue], "#b9e4b0"),
            ([TaskState.failure.rawValue], "#f4b6b6"),
            ([TaskState.running.rawValue, TaskState.dispatched.rawValue, TaskState.submitted.rawValue], "#b5d3f3"),
            ([TaskState.kill.rawValue, WorkflowState.stop.rawValue, TaskView.skipped, TaskView.disabled], "#d0d0d0"),
            ([TaskState.pause.rawValue, WorkflowState.readyPause.rawValue], "#f6e58d"),
            ([TaskState.delayExecution.rawValue, TaskState.needFaultTolerance.rawValue], "#f8c58a"),
        ]
        var table: [String: String] = [:]
        for group in groups { for state in group.states { table[state] = group.fill } }
        return table
    }()

    static let defaultFill = "white"

    static func fill(for state: String?) -> String { state.flatMap { palette[$0] } ?? defaultFill }

    static func nodeID(_ index: Int) -> String { "\"t\(index)\"" }

    /// A DOT label of `lines`, centred, as one double-quoted string.
    static func label(_ lines: [String]) -> String {
        "\"" + lines.map(escaped).joined(separator: "\\n") + "\""
    }

    /// `text` safe inside a DOT double-quoted label, shown as written:
    /// - `\` and `"` are escaped, so none ends the string or starts a Graphviz escape (`\N`, `\l`, …);
    /// - `&` becomes `&amp;`, because Graphviz reads `&name;` entities in plain labels too;
    /// - a line break (LF, CR, CRLF, U+2028, U+2029) becomes `\n`, a break inside the label;
    /// - any other control or invisible character (tab, NUL, ESC, DEL, zero-width joiners and
    ///   direction marks: those `Limits` refuses in names) is shown as Swift writes it, `\t` or
    ///   `\u{1B}`, as in every error message, so nothing invisible reaches the picture.
    static func escaped(_ text: String) -> String {
        var out = ""
        var afterCR = false
        for scalar in text.unicodeScalars {
            defer { afterCR = scalar == "\r" }
            switch scalar {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "&": out += "&amp;"
            case "\n": if !afterCR { out += "\\n" }
            case "\r", "\u{2028}", "\u{2029}": out += "\\n"
            case _ where Limits.isControl(scalar) || Limits.isInvisible(scalar):
                out += scalar.escaped(asASCII: true).replacingOccurrences(of: "\\", with: "\\\\")
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
