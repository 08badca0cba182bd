import ArgumentParser
import Foundation

/// What every list shares: `-q` for ids only, `--limit` where 0 means all, and one notice on
/// standard error when a list was cut at its limit (standard output stays the rows alone).
public struct ListOutput: ParsableArguments, Sendable {
    @Flag(name: [.customShort("q"), .customLong("quiet")], help: "Only the ids (pool and workflow names, queue task ids), one per line, for xargs; not with --json.")
    public var quiet = false

    public init() {}

    /// Refuses `-q` with `--json`, and a negative `--limit` naming its value (exit 64).
    public static func check(quiet: Bool, json: Bool, limit: Int?) throws {
        if quiet && json { throw ValidationError("-q and --json are exclusive: -q prints ids only, --json whole records") }
        if let limit, limit < 0 { throw ValidationError("--limit \(limit) is out of range: give 0 for all, or how many to list") }
    }

    /// How many rows to read for a `--limit`: one more than it, so that a cut can be told; nil for
    /// all (also for the largest number, which has no "one more": it trapped).
    public static func fetchCount(_ limit: Int) -> Int? { limit == 0 || limit == Int.max ? nil : limit + 1 }

    /// The first `limit` of `rows` (0: all); when there were more, says so on standard error.
    public static func cut<Row>(_ rows: [Row], limit: Int, tool: String, noun: String) -> [Row] {
        guard limit > 0, rows.count > limit else { return rows }
        warnCut(tool: tool, limit: limit, noun: noun)
        return Array(rows.prefix(limit))
    }

    /// The notice of a list cut at `--limit`.
    public static func warnCut(tool: String, limit: Int, noun: String) {
        Tool.warn(tool, "listed the first \(limit) \(noun) and more exist: give a larger --limit, or --limit 0 for all")
    }
}
