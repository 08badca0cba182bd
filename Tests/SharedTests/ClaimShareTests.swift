import Shared
import XCTest

/// How workers of one group deal a queue listing out among themselves.
final class ClaimShareTests: XCTestCase {
    /// Each worker claims from its own copy of the same listing, one free slot at a time or
    /// several; whatever the mix, every item is picked, none twice before the last short round,
    /// and together they pick the listing in rounds, so the top items start first.
    func testWorkersOfOneListingPickDisjointItemsInRounds() {
        let listing = Array(0..<100)
        for count in 1...4 {
            var lists = Array(repeating: listing[...], count: count)
            var picks: [[Int]] = Array(repeating: [], count: count)
            var rng = SystemRandomNumberGenerator()
            while lists.contains(where: { !$0.isEmpty }) {
                let rank = Int.random(in: 0..<count, using: &rng)
                let (picked, used) = ClaimShare(rank: rank, count: count).pick(from: lists[rank], wanted: Int.random(in: 1...4, using: &rng))
                XCTAssertLessThanOrEqual(picked.count, 4)
                picks[rank] += picked
                lists[rank] = lists[rank].dropFirst(used)
            }
            let all = picks.flatMap { $0 }
            XCTAssertEqual(Set(all), Set(listing), "\(count) workers: every item is picked by someone")
            // Only a tail shorter than a round is raced for (by design: too few items to deal out).
            let dealtAll = all.filter { $0 < listing.count - count }
            XCTAssertEqual(dealtAll.count, Set(dealtAll).count, "\(count) workers: an item was picked twice: \(picks)")
            for (rank, mine) in picks.enumerated() {
                // A short tail is raced for from the head; before it, a worker keeps to its own rank.
                let dealt = mine.filter { $0 < listing.count - count }
                XCTAssertTrue(dealt.allSatisfy { $0 % count == rank }, "rank \(rank) of \(count): \(mine)")
                XCTAssertEqual(dealt, dealt.sorted(), "each worker goes down the listing in order")
            }
        }
    }

    func testTwoWorkersWithOneFreeSlotEachStartTheTopTwo() {
        let listing = ["a", "b", "c", "d"][...]
        XCTAssertEqual(ClaimShare(rank: 0, count: 2).pick(from: listing, wanted: 1).picked, ["a"])
        XCTAssertEqual(ClaimShare(rank: 1, count: 2).pick(from: listing, wanted: 1).picked, ["b"])
        XCTAssertEqual(ClaimShare(rank: 1, count: 2).pick(from: listing, wanted: 1).used, 2, "the peer's share of the round is used up too")
        XCTAssertEqual(ClaimShare(rank: 1, count: 2).pick(from: listing, wanted: 3).picked, ["b", "d"])
    }

    func testAloneOrShortListingTakesFromTheHead() {
        XCTAssertEqual(ClaimShare.alone.pick(from: [5, 6, 7][...], wanted: 2).picked, [5, 6])
        XCTAssertEqual(ClaimShare(rank: 2, count: 3).pick(from: [5, 6][...], wanted: 1).picked, [5], "too short for rank 2: race for the head")
        XCTAssertEqual(ClaimShare(rank: 0, count: 2).pick(from: [Int]()[...], wanted: 3).picked, [])
    }

    func testRankComesFromTheSortedRegistry() {
        XCTAssertEqual(ClaimShare(me: "h:2", registered: ["h:3", "h:1", "h:2"]), ClaimShare(rank: 1, count: 3))
        XCTAssertEqual(ClaimShare(me: "h:9", registered: ["h:1"]), .alone, "not registered yet: alone")
        XCTAssertEqual(ClaimShare(rank: 5, count: 2), ClaimShare(rank: 0, count: 2))
    }
}
