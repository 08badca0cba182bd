import Foundation

extension InstanceTool {
    /// `ds-instance prune`: each removed (or, dry, each selected) instance id on stdout as its batch
    /// commits, a count on stderr.
    public static func prune(_ policy: PrunePolicy, dryRun: Bool, configuration: Configuration) async throws -> ExitStatus {
        let store = try configuration.openStore()
        let report = try await store.prune(policy, now: ProcessStats.now(), dryRun: dryRun) { ids in
            FileHandle.standardOutput.write(Data(ids.map { "\($0)\n" }.joined().utf8))
        }
        let age = DurationText.format(policy.olderThan)
        let states = (policy.states.isEmpty ? PrunePolicy.states : policy.states).map(\.rawValue).joined(separator: ", ")
        let what = "\(report.instances.count) instances (\(report.topLevel) top-level, the rest their sub-workflows) "
            + "and \(report.attempts) task attempts, \(states), ended more than \(age) ago"
        Tool.warn(tool, dryRun ? "would remove \(what); nothing changed (--dry-run)" : "removed \(what), in \(report.batches) batches")
        if report.keptForUnfinishedChildren > 0 {
            Tool.warn(tool, "kept \(report.keptForUnfinishedChildren) finished instances whose sub-workflow instances have not ended")
        }
        return .success
    }
}
