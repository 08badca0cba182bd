import Foundation
@testable import Shared
import XCTest

/// The master checks many attempts against ZooKeeper with a bounded number of requests in flight.
final class BoundedConcurrencyTests: XCTestCase {
    final class Gauge: @unchecked Sendable {
        private let lock = NSLock()
        private var now = 0
        private(set) var most = 0
        func enter() { lock.withLock { now += 1; most = max(most, now) } }
        func leave() { lock.withLock { now -= 1 } }
    }

    func testConcurrentMapKeepsOrderAndNeverExceedsItsLimit() async throws {
        for (count, limit) in [(0, 4), (1, 4), (3, 64), (1000, 64), (200, 1)] {
            let gauge = Gauge()
            let results = try await Array(0..<count).concurrentMap(limit: limit) { i -> Int in
                gauge.enter()
                defer { gauge.leave() }
                try await Task.sleep(for: .microseconds(Int.random(in: 0...300)))
                return i * 2
            }
            XCTAssertEqual(results, (0..<count).map { $0 * 2 }, "\(count) items, limit \(limit)")
            XCTAssertLessThanOrEqual(gauge.most, limit, "\(count) items, limit \(limit)")
            if count >= limit && limit > 1 { XCTAssertGreaterThan(gauge.most, 1, "calls do overlap") }
        }
    }

    func testConcurrentMapStopsAtTheFirstError() async {
        struct Boom: Error {}
        do {
            _ = try await Array(0..<100).concurrentMap(limit: 8) { i -> Int in
                if i == 17 { throw Boom() }
                return i
            }
            XCTFail("the error must reach the caller")
        } catch {
            XCTAssertTrue(error is Boom)
        }
    }
}
