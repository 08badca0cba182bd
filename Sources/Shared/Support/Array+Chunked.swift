extension Array {
    /// Consecutive slices of at most `size` elements: SQL parameter lists and `multi`s stay bounded.
    func chunked(_ size: Int) -> [[Element]] {
        stride(from: 0, to: count, by: size).map { Array(self[$0..<Swift.min($0 + size, count)]) }
    }

    /// Consecutive slices of at most `size` elements whose `weight`s add up to at most `maxWeight`
    /// (an element heavier than that alone gets a slice of its own): a `multi` of large nodes
    /// stays under ZooKeeper's request size limit.
    func chunked(_ size: Int, maxWeight: Int, weight: (Element) -> Int) -> [[Element]] {
        var chunks: [[Element]] = []
        var current: [Element] = []
        var total = 0
        for element in self {
            let w = weight(element)
            if !current.isEmpty && (current.count == size || total + w > maxWeight) {
                chunks.append(current)
                current = []
                total = 0
            }
            current.append(element)
            total += w
        }
        if !current.isEmpty { chunks.append(current) }
        return chunks
    }
}

extension Array where Element: Sendable {
    /// `transform` of every element, in order, with at most `limit` calls in flight: a check of a
    /// million attempts must not put a million requests on one ZooKeeper session at once.
    func concurrentMap<T: Sendable>(limit: Int, _ transform: @escaping @Sendable (Element) async throws -> T) async throws -> [T] {
        var results = [T?](repeating: nil, count: count)
        try await withThrowingTaskGroup(of: (Int, T).self) { group in
            var next = 0
            for _ in 0..<Swift.min(limit, count) {
                let i = next, element = self[i]
                group.addTask { (i, try await transform(element)) }
                next += 1
            }
            while let (i, value) = try await group.next() {
                results[i] = value
                if next < count {
                    let j = next, element = self[j]
                    group.addTask { (j, try await transform(element)) }
                    next += 1
                }
            }
        }
        return results.map { $0! }
    }
}
