/// Human output of `ds-failover`; `--json` prints the same values as snake_case JSON.
public enum FailoverPrinter {
    public static func human(_ r: FailoverReport) -> String {
        var out = "DEAD SERVERS\n" + (r.deadServers.isEmpty ? "(none)\n" : r.deadServers.map { $0 + "\n" }.joined())
        var instances = TablePrinter(columns: ["INSTANCE", "NAME", "OWNER", "SESSION"])
        for i in r.orphanedInstances { instances.add([String(i.id), i.name, i.owner ?? "-", i.ownerSession.map(String.init) ?? "-"]) }
        out += "\nORPHANED INSTANCES\n" + (r.orphanedInstances.isEmpty ? "(none)\n" : instances.render())
        var tasks = TablePrinter(columns: ["TASK INSTANCE", "INSTANCE", "TASK", "STATE", "REASON"])
        for t in r.orphanedTasks {
            tasks.add([String(t.taskInstanceId), String(t.workflowInstanceId), t.taskName, t.state.rawValue, t.reason])
        }
        out += "\nORPHANED TASKS\n" + (r.orphanedTasks.isEmpty ? "(none)\n" : tasks.render())
        var queue = TablePrinter(columns: ["QUEUE ITEM", "INSTANCE", "WORKFLOW STATE"])
        for q in r.staleQueueItems { queue.add([q.path, String(q.workflowInstanceId), q.workflowState]) }
        out += "\nQUEUE ITEMS OF FINISHED WORKFLOWS\n" + (r.staleQueueItems.isEmpty ? "(none)\n" : queue.render())
        return out
    }

    public static func human(_ f: ForcedFailover) -> String {
        let verb = f.dryRun ? "would fail over" : "failed over"
        // An empty list is said in words, not as a heading with nothing after it.
        let (noun, ids) = f.type == "master" ? ("instances", f.instances) : ("task attempts", f.tasks)
        let what = ids.isEmpty ? "no \(noun)" : "\(noun): \(ids.map(String.init).joined(separator: " "))"
        return "\(verb) \(f.type) \(f.server) (session \(f.session)); \(what)\n"
    }
}
