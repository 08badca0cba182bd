/// Which output parameters each task sees: a pure function of the graph and of what the
/// succeeded tasks printed, so a master that takes over an instance computes exactly what the
/// first master would have (the stored outputs are all it needs).
///
/// A task sees, for each task in its `deps` in their declared order, what that task saw and then
/// what it printed itself; a later entry wins. A value thus flows down every path, and the
/// nearest task upstream that printed a key wins over the ones further up.
///
/// What tasks saw is cached, but only for the tasks a later task may still read: a chain of
/// 1,000 tasks that each print a new key holds O(n) entries, not n²/2. Dropping a cached entry
/// never changes a result; it is recomputed from the printed outputs.
public struct OutputVisibility: Sendable {
    /// What each succeeded task printed (only non-empty outputs are kept).
    public private(set) var printed: [Int: [String: String]] = [:]
    private var seen: [Int: [String: String]] = [:]
    private var readersLeft: [Int: Int] = [:]
    /// Tasks whose view was asked for once: a retry reads its upstream views again without
    /// counting as one more reader.
    private var asked: Set<Int> = []

    public init() {}

    /// Records what a task printed in the attempt that succeeded (it replaces any earlier value).
    public mutating func record(_ task: Int, printed outputs: [String: String]) {
        printed[task] = outputs.isEmpty ? nil : outputs
    }

    /// The output parameters task `task` sees.
    public mutating func visible(to task: Int, in graph: TaskGraph) -> [String: String] {
        guard !printed.isEmpty else { return [:] }
        // Ancestors whose view is not cached, in an order where each comes after its upstream
        // (an iterative post-order walk: a 200,000-task chain must not overflow the stack).
        var order: [Int] = []
        var state: [Int: Bool] = [:]  // false: expanded, true: done
        var stack = [task]
        while let i = stack.last {
            if state[i] == nil {
                state[i] = false
                for u in graph.upstream[i] where seen[u] == nil && state[u] == nil { stack.append(u) }
            } else {
                stack.removeLast()
                if state[i] == false {
                    state[i] = true
                    order.append(i)
                }
            }
        }
        var computed: [Int: [String: String]] = [:]
        for i in order {
            var view: [String: String] = [:]
            for u in graph.upstream[i] {
                if let up = computed[u] ?? seen[u] { view.merge(up) { _, new in new } }
                if let own = printed[u] { view.merge(own) { _, new in new } }
            }
            computed[i] = view
        }
        let result = computed[task] ?? [:]
        // Cache the views the task's siblings may read next (its direct upstream) and its own, for
        // its downstream; a view is dropped once every task downstream of it has read it.
        let first = asked.insert(task).inserted
        for u in graph.upstream[task] {
            if seen[u] == nil, let view = computed[u], !view.isEmpty { cache(u, view, graph) }
            guard first, let left = readersLeft[u] else { continue }
            if left <= 1 {
                seen[u] = nil
                readersLeft[u] = nil
            } else {
                readersLeft[u] = left - 1
            }
        }
        if seen[task] == nil, !result.isEmpty { cache(task, result, graph) }
        return result
    }

    private mutating func cache(_ task: Int, _ view: [String: String], _ graph: TaskGraph) {
        guard !graph.downstream[task].isEmpty else { return }
        seen[task] = view
        readersLeft[task] = graph.downstream[task].count
    }

    /// How many views are cached (for the test that proves the cache stays linear).
    public var cachedViewCount: Int { seen.count }
    public var cachedEntryCount: Int { seen.values.reduce(0) { $0 + $1.count } }
}
