import Foundation

/// A backfill as `ds-schedule backfills` prints it (`--json`: snake_case, times RFC 3339 UTC).
public struct BackfillListView: Encodable, Sendable {
    public var id: Int64
    public var workflow: String
    public var fromDate: String
    public var toDate: String
    public var parallel: Int
    public var timeZone: String
    /// ACTIVE (dates run or wait), ENDED (every date ended), CANCELLED (ds-schedule cancel).
    public var state: String
    public var done: Int
    public var running: Int
    public var waiting: Int
    public var createdAt: String
    public var cancelledAt: String?

    public init(_ s: BackfillSummary) {
        let b = s.backfill
        (id, workflow, fromDate, toDate, parallel, timeZone) = (b.id ?? 0, b.workflow, b.fromDate, b.toDate, b.parallel, b.timeZone)
        (done, running, waiting) = (s.done, s.running, s.waiting)
        state = b.cancelledAt != nil ? "CANCELLED" : s.running + s.waiting == 0 ? "ENDED" : "ACTIVE"
        createdAt = TimeText.utc(b.createdAt)
        cancelledAt = b.cancelledAt.map(TimeText.utc)
    }
}

/// What `ds-schedule cancel --json` prints.
public struct BackfillCancelView: Encodable, Sendable {
    public var backfillId: Int64
    public var stopping: [Int64]
    public var dropped: [Int64]
    public var ended: Int
    public var cancelledAt: String?
    public var alreadyCancelled: Bool

    public init(_ c: BackfillCancellation) {
        (backfillId, stopping, dropped, ended, alreadyCancelled) = (c.backfillId, c.stopping, c.dropped, c.ended, c.alreadyCancelled)
        cancelledAt = c.cancelledAt.map(TimeText.utc)
    }

    /// One line for a person: what was stopped and dropped, or why nothing was.
    public var sentence: String {
        if stopping.isEmpty && dropped.isEmpty {
            if alreadyCancelled { return "backfill \(backfillId) was already cancelled (\(cancelledAt ?? "-")); nothing of it runs or waits" }
            return "backfill \(backfillId) has ended: all \(ended) of its dates had ended; nothing to cancel"
        }
        let ids = { (list: [Int64]) in list.prefix(20).map(String.init).joined(separator: " ") + (list.count > 20 ? " …" : "") }
        var parts: [String] = []
        if !stopping.isEmpty { parts.append("stopping \(stopping.count) running (\(ids(stopping)))") }
        if !dropped.isEmpty { parts.append("dropped \(dropped.count) waiting (\(ids(dropped)))") }
        if ended > 0 { parts.append("\(ended) had ended and stay as they are") }
        return "backfill \(backfillId) \(alreadyCancelled ? "was already cancelled; " : "cancelled: ")\(parts.joined(separator: "; "))"
    }
}

extension ScheduleTool {
    /// Backfills as a table: id, workflow, range, state and counts of dates.
    public static func backfillTable(_ backfills: [BackfillListView]) -> String {
        var printer = TablePrinter(columns: ["ID", "WORKFLOW", "FROM", "TO", "PARALLEL", "STATE", "DONE", "RUNNING", "WAITING"])
        for b in backfills {
            printer.add([String(b.id), b.workflow, b.fromDate, b.toDate, String(b.parallel), b.state, String(b.done), String(b.running), String(b.waiting)])
        }
        return printer.render()
    }

    public static func backfills(_ global: GlobalOptions) async throws -> [BackfillListView] {
        try await store(global).backfills().map(BackfillListView.init)
    }

    /// Cancels a backfill (see Store.cancelBackfill); an unknown id exits 65 naming it. Wakes the
    /// masters, so that they read the stop commands at once.
    public static func cancel(_ global: GlobalOptions, backfill id: Int64) async throws -> BackfillCancelView {
        guard let c = try await store(global).cancelBackfill(id, now: ProcessStats.now()) else {
            throw ControlRefusal(description: "no backfill \(id); see ds-schedule backfills", exitStatus: .dataError)
        }
        if !c.stopping.isEmpty {
            let configuration = try global.resolve()
            if let zk = try? await configuration.connectZooKeeper() {
                defer { zk.close() }
                try? await Submitter.notifyMasters(zk, configuration.paths, commandID: c.stopping.last!)
            }
        }
        return BackfillCancelView(c)
    }
}
