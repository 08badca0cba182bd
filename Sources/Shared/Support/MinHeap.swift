/// A binary min-heap: the master's backlog of ready attempts, smallest queue key first.
public struct MinHeap<Element: Comparable> {
    private var items: [Element] = []
    public init() {}

    public var count: Int { items.count }
    public var isEmpty: Bool { items.isEmpty }

    /// Every element, in no particular order.
    public func forEach(_ body: (Element) -> Void) { items.forEach(body) }

    public mutating func push(_ element: Element) {
        items.append(element)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[i] < items[parent] else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    public mutating func pop() -> Element? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var smallest = i
            if l < items.count && items[l] < items[smallest] { smallest = l }
            if r < items.count && items[r] < items[smallest] { smallest = r }
            if smallest == i { break }
            items.swapAt(i, smallest)
            i = smallest
        }
        return top
    }

    public func contains(where predicate: (Element) -> Bool) -> Bool { items.contains(where: predicate) }

    /// The elements that satisfy `predicate`, as a heap (O(n log n); for rare clean-ups only).
    public func filter(_ isIncluded: (Element) -> Bool) -> MinHeap {
        var heap = MinHeap()
        for item in items where isIncluded(item) { heap.push(item) }
        return heap
    }

    /// The elements in ascending order, without changing the heap: a plan made on the heap as it
    /// is, to be carried out (`removeSmallest`) only once what it depends on has been stored.
    /// The first k cost O(k log k), whatever the heap's size.
    public func ascending() -> Ascending { Ascending(items: items) }

    /// Removes the `n` smallest elements: those `ascending` listed first, if no two are equal.
    public mutating func removeSmallest(_ n: Int) {
        for _ in 0..<min(n, count) { _ = pop() }
    }

    /// An in-order walk of a heap's array: a frontier of candidates, the smallest next.
    public struct Ascending: Sequence, IteratorProtocol {
        struct Candidate: Comparable {
            var element: Element
            var index: Int
            static func < (a: Candidate, b: Candidate) -> Bool { a.element < b.element }
            static func == (a: Candidate, b: Candidate) -> Bool { a.element == b.element }
        }
        let items: [Element]
        var frontier = MinHeap<Candidate>()

        init(items: [Element]) {
            self.items = items
            if !items.isEmpty { frontier.push(Candidate(element: items[0], index: 0)) }
        }

        public mutating func next() -> Element? {
            guard let c = frontier.pop() else { return nil }
            for child in [2 * c.index + 1, 2 * c.index + 2] where child < items.count {
                frontier.push(Candidate(element: items[child], index: child))
            }
            return c.element
        }
    }
}
