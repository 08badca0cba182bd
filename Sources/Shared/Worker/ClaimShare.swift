/// Which queue items a worker tries to claim from its listing.
///
/// Every worker of a group lists the same queue, sorted by key. Were each to take the head, they
/// would race for the same items and most claims would be lost: a wasted read and a failed
/// `multi` (a ZooKeeper write) each time. So the listing is dealt out in rounds: in each round of
/// `count` items (the group's live workers), the worker of rank `rank` takes the one at its
/// rank. Two workers claiming at once thus start the top two items together, as one worker with
/// two free slots would. Whatever a peer leaves unclaimed comes back in the next listing, and an
/// item found at the head of two listings in a row (no peer took it) is taken first, whatever the
/// rank: nothing waits on a busy or dead peer longer than one listing.
public struct ClaimShare: Sendable, Equatable {
    public var rank: Int
    public var count: Int

    public init(rank: Int, count: Int) {
        self.rank = max(0, rank)
        self.count = max(1, count)
        if self.rank >= self.count { self.rank = 0 }
    }

    /// This worker's rank among the names registered in its group (sorted), or alone if absent.
    public init(me: String, registered: [String]) {
        let sorted = registered.sorted()
        self.init(rank: sorted.firstIndex(of: me) ?? 0, count: sorted.contains(me) ? sorted.count : 1)
    }

    public static let alone = ClaimShare(rank: 0, count: 1)

    /// Up to `wanted` items to try, and how many leading items of `listing` they use up (this
    /// worker's picks and its peers' shares of the same rounds). A listing too short for this
    /// rank is taken from the head: with so few items, racing for them costs little.
    public func pick<T>(from listing: ArraySlice<T>, wanted: Int) -> (picked: [T], used: Int) {
        guard wanted > 0, !listing.isEmpty else { return ([], 0) }
        guard rank < listing.count else {
            let picked = Array(listing.prefix(wanted))
            return (picked, picked.count)
        }
        var picked: [T] = []
        var rounds = 0
        while picked.count < wanted {
            let index = rounds * count + rank
            guard index < listing.count else { break }
            picked.append(listing[listing.startIndex + index])
            rounds += 1
        }
        return (picked, min(listing.count, rounds * count))
    }
}
