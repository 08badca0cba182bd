import Foundation
@testable import Shared
import XCTest

/// The backlog's heap: a feed plans on it without changing it (`ascending`), then carries the plan
/// out (`removeSmallest`) only once what it wrote is stored.
final class MinHeapTests: XCTestCase {
    func testAscendingListsInOrderWithoutChangingTheHeapAndRemoveSmallestTakesThatPrefix() {
        var rng = SystemRandomNumberGenerator()
        for size in [0, 1, 2, 3, 10, 257, 1000] {
            let values = (0..<size).map { i in Int.random(in: 0..<1_000_000, using: &rng) * 1000 + i }  // distinct
            var heap = MinHeap<Int>()
            for v in values { heap.push(v) }
            let sorted = values.sorted()
            XCTAssertEqual(Array(heap.ascending()), sorted, "size \(size)")
            XCTAssertEqual(Array(heap.ascending().prefix(5)), Array(sorted.prefix(5)))
            XCTAssertEqual(heap.count, size, "listing took nothing out")
            let n = size / 3
            heap.removeSmallest(n)
            var rest: [Int] = []
            while let v = heap.pop() { rest.append(v) }
            XCTAssertEqual(rest, Array(sorted.dropFirst(n)), "size \(size): the \(n) listed first went, the others wait in order")
        }
        var empty = MinHeap<Int>()
        empty.removeSmallest(3)
        XCTAssertTrue(empty.isEmpty)
    }
}
