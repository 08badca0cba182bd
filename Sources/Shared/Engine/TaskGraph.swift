/// The dependency graph of a workflow's tasks, indexed for linear-time scheduling.
public struct TaskGraph: Sendable {
    public let names: [String]
    public let index: [String: Int]
    /// `upstream[i]`: the tasks task i waits for.
    public let upstream: [[Int]]
    /// `downstream[i]`: the tasks that wait for task i.
    public let downstream: [[Int]]

    public init(_ tasks: [TaskDefinition]) {
        names = tasks.map(\.name)
        var index: [String: Int] = [:]
        for (i, n) in names.enumerated() where index[n] == nil { index[n] = i }
        self.index = index
        var up = Array(repeating: [Int](), count: tasks.count)
        var down = Array(repeating: [Int](), count: tasks.count)
        for (i, t) in tasks.enumerated() {
            for d in t.deps {
                guard let j = index[d] else { continue }
                up[i].append(j)
                down[j].append(i)
            }
        }
        upstream = up
        downstream = down
    }

    public var count: Int { names.count }

    /// A dependency cycle as task names, first name repeated at the end, or nil.
    /// Reads as "a -> b -> a": a depends on b, which depends on a.
    public func findCycle() -> [String]? {
        var color = Array(repeating: 0, count: count)  // 0 new, 1 on the path, 2 done
        var path: [Int] = []
        for start in 0..<count where color[start] == 0 {
            // Iterative DFS so that a 10,000-task chain cannot overflow the stack.
            var stack: [(node: Int, next: Int)] = [(start, 0)]
            color[start] = 1
            path.append(start)
            while let top = stack.last {
                let edges = upstream[top.node]
                if top.next < edges.count {
                    stack[stack.count - 1].next += 1
                    let n = edges[top.next]
                    if color[n] == 1 {
                        let from = path.lastIndex(of: n)!
                        return (path[from...] + [n]).map { names[$0] }
                    }
                    if color[n] == 0 {
                        color[n] = 1
                        path.append(n)
                        stack.append((n, 0))
                    }
                } else {
                    color[top.node] = 2
                    path.removeLast()
                    stack.removeLast()
                }
            }
        }
        return nil
    }
}
