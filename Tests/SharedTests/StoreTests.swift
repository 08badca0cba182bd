import Foundation
@testable import Shared
import XCTest

/// The store on a real SQLite file (no mocks); `PostgresStoreTests` runs every test again on a
/// real PostgreSQL server.
class StoreTests: XCTestCase {
    var directory: URL!

    /// The database named `name` of this test (made on first use).
    func location(_ name: String) throws -> DatabaseLocation {
        .sqlite(path: directory.appendingPathComponent("\(name).db").path)
    }

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ds-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: directory) }

    func testConcurrentFirstOpensOfANewFileAllMigrate() throws {
        for round in 0..<10 {
            let location = try location("race-\(round)")
            let errors = NSLock()
            var failures: [String] = []
            DispatchQueue.concurrentPerform(iterations: 4) { _ in
                do { _ = try Store(location: location) } catch { errors.withLock { failures.append("\(error)") } }
            }
            XCTAssertEqual(failures, [], "round \(round)")
        }
    }

    func testDefinitionIsVersionedOnlyWhenItChangesAndAClaimStartsTheInstance() async throws {
        let store = try Store(location: try location("ds"))
        var w = WorkflowDefinition(name: "w", tasks: [TaskDefinition(name: "a", command: "true")])
        let first = try await store.submit(w, params: [:], now: 1)
        let same = try await store.submit(w, params: ["k": "v"], now: 2)
        w.tasks[0].command = "false"
        let changed = try await store.submit(w, params: [:], now: 3)
        XCTAssertEqual([first.version, same.version, changed.version], [1, 1, 2])
        XCTAssertEqual(first.definitionId, same.definitionId)

        // One claimer takes the commands in submission order (equal priorities), then finds none.
        var claimed: [ClaimedInstance] = []
        while let c = try await store.claimCommand(host: "m1:1", session: 1, now: 4) { claimed.append(c) }
        XCTAssertEqual(claimed.map(\.instance.id), [first.instanceId, same.instanceId, changed.instanceId])
        XCTAssertEqual(claimed.map(\.definition.tasks[0].command), ["true", "true", "false"])
        let left = try await store.countRows(of: "command")
        XCTAssertEqual(left, 0)
        let instance = try await store.instance(same.instanceId)
        XCTAssertEqual(instance?.state, .running)
        XCTAssertEqual(instance?.host, "m1:1")
        XCTAssertEqual(instance?.masterSession, 1)
        XCTAssertEqual(instance?.startTime, 4)
        XCTAssertEqual(instance?.paramsJson, #"{"k":"v"}"#)
    }

    /// Each instance numbers its own events (dispatches and stored outcomes), in the order the
    /// engine saw them, whatever other instances a round writes besides: the replay after a
    /// takeover reads one instance's history. Two masters share no counter row, so their rounds
    /// do not conflict on PostgreSQL.
    func testEachInstanceNumbersItsOwnEventsInTheOrderTheEngineSawThem() async throws {
        let store = try Store(location: try location("ds"))
        let w = WorkflowDefinition(name: "w", tasks: [TaskDefinition(name: "a", command: "true")])
        let a = try await store.submit(w, params: [:], now: 1).instanceId
        let b = try await store.submit(w, params: [:], now: 1).instanceId
        while try await store.claimCommand(host: "m1:1", session: 1, now: 2) != nil {}
        func attempt(_ instance: Int64, _ name: String) -> TaskInstanceRecord {
            TaskInstanceRecord(workflowInstanceId: instance, taskName: name, attempt: 1, state: .submitted,
                               priority: .medium, workerGroup: "default", submitTime: 3)
        }
        var first = SchedulingBatch()
        first.newAttempts = [attempt(a, "a1"), attempt(b, "b1"), attempt(a, "a2")]
        let inserted = try await store.apply(first, session: 1).inserted
        XCTAssertEqual(inserted.map(\.dispatchSeq), [1, 1, 2])
        var second = SchedulingBatch()
        second.outcomes = [AttemptOutcome(taskInstanceId: inserted[2].id!, workflowInstanceId: a, state: .success, endTime: 4),
                           AttemptOutcome(taskInstanceId: inserted[1].id!, workflowInstanceId: b, state: .success, endTime: 4),
                           AttemptOutcome(taskInstanceId: inserted[0].id!, workflowInstanceId: a, state: .success, endTime: 4)]
        second.newAttempts = [attempt(b, "b2")]
        _ = try await store.apply(second, session: 1)
        let ofA = try await store.taskAttempts(of: a).map { "\($0.taskName) \($0.dispatchSeq ?? 0) \($0.finishSeq ?? 0)" }
        let ofB = try await store.taskAttempts(of: b).map { "\($0.taskName) \($0.dispatchSeq ?? 0) \($0.finishSeq ?? 0)" }
        XCTAssertEqual(ofA, ["a1 1 4", "a2 2 3"], "a2's outcome came first, then a1's")
        XCTAssertEqual(ofB, ["b1 1 2", "b2 3 0"])
        // A master that lost the instance numbers nothing of it.
        var stale = SchedulingBatch()
        stale.newAttempts = [attempt(a, "a3")]
        let lost = try await store.apply(stale, session: 9)
        XCTAssertEqual(lost.lostOwnership, [a])
        let afterStale = try await store.taskAttempts(of: a).count
        XCTAssertEqual(afterStale, 2)
    }

    // MARK: - Pause and stop commands

    /// A stop written while the owner's engine was finishing the instance: the owner stores the
    /// end (SUCCESS) and dies before its next round reads the command. The command is moot from
    /// the moment the instance ended; left in the table it would wait there for ever, and after a
    /// rerun it would stop the new run of whichever master claims it.
    func testAStopTheOwnerNeverReadBeforeTheInstanceEndedDoesNotOutliveIt() async throws {
        let store = try Store(location: try location("ds"))
        let w = WorkflowDefinition(name: "w", tasks: [TaskDefinition(name: "a", command: "true")])
        let id = try await store.submit(w, params: [:], now: 1).instanceId
        _ = try await store.claimCommand(host: "m1:1", session: 1, now: 2)
        let stop = try await store.control(id, .stop, now: 3)
        XCTAssertEqual(stop.to, .readyStop)
        var end = SchedulingBatch()
        end.finishedInstances = [(id, .success, 4)]
        _ = try await store.apply(end, session: 1)
        let leftAfterEnd = try await store.countRows(of: "command")
        XCTAssertEqual(leftAfterEnd, 0, "the stop of an instance that ended is moot")

        let rerun = try await store.control(id, .rerun, now: 5)
        XCTAssertEqual(rerun.to, .submitted)
        let claimed = try await store.claimCommand(host: "m2:1", session: 2, now: 6)
        XCTAssertEqual(claimed?.instance.run, 2)
        let controls = try await store.pendingControls(session: 2)
        XCTAssertEqual(controls.map(\.stop), [], "the new run was never asked to stop")
    }

    // MARK: - Masters racing for commands

    /// Masters claim through separate connections to one file; only SQLite's locking keeps two of
    /// them from taking one command. One `Store` cannot show that: its single writer queue runs
    /// every claim one after the other. So every claimer here has a `Store` of its own (its own
    /// DatabasePool: its own writer connection and writer queue), all start together, and each
    /// claims in a loop until the queue is empty. A claim that is not one atomic transaction (the
    /// head of the queue read in one transaction and taken in another, or made atomic only per
    /// `Store`) hands the head to two of them, or leaves an instance owned by a master other than
    /// the one that got it; a claim that reads before it locks (a DEFERRED transaction) fails
    /// with "database is locked".
    func testFourStoresOnOneFileClaimEachCommandExactlyOnce() async throws {
        let path = try location("race")
        let submitted = try await Self.submitInstances(200, path: path)
        let claimers = (1...4).map { Claimer(host: "m\($0):\(5000 + $0)", session: Int64(100 + $0), now: Double(10 + $0)) }
        let stores = try claimers.map { _ in try Store(location: path) }
        let results = try await withThrowingTaskGroup(of: (Int, [Int64]).self) { group in
            for (k, claimer) in claimers.enumerated() {
                group.addTask { (k, try await Self.claimUntilEmpty(stores[k], claimer)) }
            }
            var results = Array(repeating: [Int64](), count: claimers.count)
            for try await (k, ids) in group { results[k] = ids }
            return results
        }
        try await verifyEachClaimedOnce(Array(zip(claimers, results)), submitted: submitted, path: path)
    }

    /// The same race between processes, as between masters: two claimers in child processes (this
    /// test binary run again, as `StoreClaimerProcess`) and two in this one, each with its own
    /// `Store`. This also catches a claim made atomic only within one process (by a lock in memory).
    func testClaimersInSeparateProcessesClaimEachCommandExactlyOnce() async throws {
        #if os(Linux)
        // Whether a race crosses processes depends on scheduling (on a loaded machine the children
        // can empty the queue before this process's claimers wake): every round checks that each
        // command was claimed exactly once, and rounds go on until one crosses, at most five.
        var rounds: [String] = []
        for round in 1...5 {
            guard let counts = try await processRace(round) else { return }  // it failed, and said why
            rounds.append(counts.description)
            if counts.prefix(2).contains(where: { $0 > 0 }) && counts.dropFirst(2).contains(where: { $0 > 0 }) { return }
        }
        XCTFail("in 5 rounds the race never crossed processes (claims per claimer, in-process first): \(rounds)")
        #else
        throw XCTSkip("runs the test binary again as a child process, which this test does on Linux only")
        #endif
    }

    #if os(Linux)
    /// One race; each claimer's number of claims, or nil after a failure.
    func processRace(_ round: Int) async throws -> [Int]? {
        let path = directory.appendingPathComponent("processes-\(round).db").path
        let submitted = try await Self.submitInstances(200, path: .sqlite(path: path))
        let go = directory.appendingPathComponent("go-\(round)").path
        let claimers = (1...4).map { Claimer(host: "m\($0):\(6000 + $0)", session: Int64(200 + $0), now: Double(20 + $0)) }
        let local = try claimers[0..<2].map { _ in try Store(path: path) }

        var children: [(process: Process, config: ClaimerProcessConfig)] = []
        defer { for c in children where c.process.isRunning { c.process.terminate() } }
        for (k, claimer) in claimers.enumerated().dropFirst(2) {
            let config = ClaimerProcessConfig(claimer: claimer, db: path,
                                              ready: directory.appendingPathComponent("ready-\(round)-\(k)").path, go: go,
                                              result: directory.appendingPathComponent("result-\(round)-\(k).json").path,
                                              log: directory.appendingPathComponent("claimer-\(round)-\(k).log").path)
            children.append((try Self.spawnClaimerProcess(config), config))
        }
        // Every child has opened its store: start everyone at once.
        let deadline = Date().addingTimeInterval(120)
        for c in children {
            while !FileManager.default.fileExists(atPath: c.config.ready) {
                guard c.process.isRunning, Date() < deadline else {
                    XCTFail("claimer \(c.config.claimer.host) did not get ready:\n\(Self.text(c.config.log))")
                    return nil
                }
                try await Task.sleep(nanoseconds: 1_000_000)
            }
        }
        XCTAssertTrue(FileManager.default.createFile(atPath: go, contents: nil))
        let localResults = try await withThrowingTaskGroup(of: (Int, [Int64]).self) { group in
            for k in 0..<2 { group.addTask { (k, try await Self.claimUntilEmpty(local[k], claimers[k])) } }
            var results = [[Int64]](repeating: [], count: 2)
            for try await (k, ids) in group { results[k] = ids }
            return results
        }
        var results = Array(zip(claimers[0..<2], localResults))
        for c in children {
            while c.process.isRunning {
                guard Date() < deadline else {
                    XCTFail("claimer \(c.config.claimer.host) did not end:\n\(Self.text(c.config.log))")
                    return nil
                }
                try await Task.sleep(nanoseconds: 5_000_000)
            }
            guard c.process.terminationStatus == 0, let data = FileManager.default.contents(atPath: c.config.result) else {
                XCTFail("claimer \(c.config.claimer.host) exited \(c.process.terminationStatus):\n\(Self.text(c.config.log))")
                return nil
            }
            results.append((c.config.claimer, try JSONDecoder().decode([Int64].self, from: data)))
        }
        try await verifyEachClaimedOnce(results, submitted: submitted, path: .sqlite(path: path))
        return results.map(\.1.count)
    }
    #endif

    /// Item 3 of issue 23: a master cut off from ZooKeeper may still reach the database. Once
    /// another master owns an instance, no write of the old one for it lands. The old master
    /// (session 1) writes round after round for its 20 instances (a new attempt for each) while
    /// a new one (session 2) adopts them all: from the adoption's commit on, nothing changes for
    /// them, and the old master is told it lost every one. `apply` reads the owner in the write
    /// transaction: SQLite's IMMEDIATE transactions and PostgreSQL's SERIALIZABLE ones (READ
    /// COMMITTED would let a round that read its ownership before the adoption write after it)
    /// order each round wholly before or wholly after the adoption.
    func testAnAdoptedInstanceTakesNoWriteFromItsOldMaster() async throws {
        for round in 1...5 { try await adoptWhileTheOldMasterWrites(round) }
    }

    func adoptWhileTheOldMasterWrites(_ round: Int) async throws {
        let path = try location("fence-\(round)")
        let ids = try await Self.submitInstances(20, path: path).map(\.instanceId)
        let old = try Store(location: path), new = try Store(location: path)
        while try await old.claimCommand(host: "old:1", session: 1, now: 2) != nil {}
        let firstRound = expectation(description: "the old master wrote a round")
        let writer = Task { () throws -> (rounds: Int, lost: Set<Int64>) in
            var (rounds, lost) = (0, Set<Int64>())
            while lost.count < ids.count {
                var batch = SchedulingBatch()
                batch.newAttempts = ids.filter { !lost.contains($0) }.map {
                    TaskInstanceRecord(workflowInstanceId: $0, taskName: "r\(rounds)", attempt: 1, state: .submitted,
                                       priority: .medium, workerGroup: "default", submitTime: 3)
                }
                lost.formUnion(try await old.apply(batch, session: 1).lostOwnership)
                rounds += 1
                if rounds == 1 { firstRound.fulfill() }
                // A round every 20 ms, far more than a master cut off from ZooKeeper writes (its
                // rounds follow results, which reach it through ZooKeeper); rounds back to back
                // with no pause can make the takeover lose its serialization conflict 20 times
                // on PostgreSQL (it is retried by the failover loop then).
                try await Task.sleep(for: .milliseconds(20))
            }
            return (rounds, lost)
        }
        await fulfillment(of: [firstRound], timeout: 120)
        let adopted = try await new.adoptOrphans(host: "new:1", session: 2, deadSessions: [1]).adopted
        var atAdoption: [Int64: [Int64]] = [:]
        for id in ids { atAdoption[id] = try await new.taskAttempts(of: id).compactMap(\.id) }
        let (rounds, lost) = try await writer.value
        XCTAssertEqual(Set(adopted.compactMap(\.instance.id)), Set(ids), "the new master adopted every instance")
        XCTAssertEqual(lost, Set(ids), "the old master was told it lost every instance")
        for id in ids {
            let now = try await new.taskAttempts(of: id).compactMap(\.id)
            XCTAssertEqual(now, atAdoption[id], "instance \(id): the old master wrote after the adoption")
            XCTAssertFalse(now.isEmpty, "the rig: instance \(id) had the old master's writes before the adoption")
            let owner = try await new.instance(id)?.masterSession
            XCTAssertEqual(owner, 2, "instance \(id)")
        }
        XCTAssertGreaterThan(rounds, 1, "the rig: the old master wrote before and after the adoption (round \(round))")
    }

    struct Claimer: Codable {
        var host: String
        var session: Int64
        var now: Double
    }

    /// `count` instances of five workflows, one per priority, submitted in turn.
    static func submitInstances(_ count: Int, path: DatabaseLocation) async throws -> [SubmittedInstance] {
        let store = try Store(location: path)
        var submitted: [SubmittedInstance] = []
        for i in 0..<count {
            var w = WorkflowDefinition(name: "w\(i % 5)", tasks: [TaskDefinition(name: "a", command: "echo \(i % 5)")])
            w.priority = Priority.allCases[i % 5]
            submitted.append(try await store.submit(w, params: ["i": "\(i)"], now: 1))
        }
        return submitted
    }

    /// What a master does with its store: claim until there is nothing left to claim.
    static func claimUntilEmpty(_ store: Store, _ claimer: Claimer) async throws -> [Int64] {
        var ids: [Int64] = []
        while let c = try await store.claimCommand(host: claimer.host, session: claimer.session, now: claimer.now) {
            guard let id = c.instance.id, c.instance.host == claimer.host, c.instance.masterSession == claimer.session,
                  c.definition.name == c.instance.name else {
                throw StoreError.failed("\(claimer.host) got a claim that is not its own: \(c.instance)")
            }
            ids.append(id)
            // A master starts the instance before it claims again. Without a pause the claimer that
            // holds the lock takes it again before the others' busy handlers wake from their sleeps,
            // and one claimer takes nearly everything: no race.
            try await Task.sleep(nanoseconds: UInt64.random(in: 0..<1_000_000))
        }
        return ids
    }

    /// Every submitted instance was claimed by exactly one claimer, and the store says that claimer owns it.
    func verifyEachClaimedOnce(_ results: [(Claimer, [Int64])], submitted: [SubmittedInstance], path: DatabaseLocation) async throws {
        let store = try Store(location: path)
        var problems: [String] = []
        var owner: [Int64: String] = [:]
        for (claimer, ids) in results {
            for id in ids {
                if let other = owner.updateValue(claimer.host, forKey: id) { problems.append("instance \(id) claimed by \(other) and by \(claimer.host)") }
            }
        }
        let expected = Set(submitted.map(\.instanceId))
        for id in Set(owner.keys).subtracting(expected).sorted() { problems.append("instance \(id) claimed but never submitted") }
        for id in expected.subtracting(owner.keys).sorted() { problems.append("instance \(id) never claimed") }
        let left = try await store.countRows(of: "command")
        if left != 0 { problems.append("\(left) commands left") }
        let running = try await store.countInstances(in: .running)
        if running != submitted.count { problems.append("\(running) instances RUNNING, not \(submitted.count)") }
        let rank = Dictionary(uniqueKeysWithValues: submitted.map { ($0.instanceId, $0.priority.rank) })
        for (claimer, ids) in results {
            for id in ids {
                guard let stored = try await store.instance(id) else { problems.append("instance \(id) is gone"); continue }
                // The claimer that got it is the one the store names, session and start time included.
                if stored.host != claimer.host || stored.masterSession != claimer.session || stored.startTime != claimer.now
                    || stored.state != .running {
                    problems.append("instance \(id), claimed by \(claimer.host) (session \(claimer.session), time \(claimer.now)), is stored as "
                                    + "\(stored.state) of \(stored.host ?? "nobody") (session \(stored.masterSession.map(String.init) ?? "none"), "
                                    + "time \(stored.startTime.map { "\($0)" } ?? "none"))")
                }
            }
            // The queue only shrinks, so each claimer's claims follow priority, then submission order.
            let keys = ids.map { [rank[$0] ?? -1, Int($0)] }
            if keys != keys.sorted(by: { $0.lexicographicallyPrecedes($1) }) { problems.append("\(claimer.host) claimed out of order: \(ids)") }
        }
        let shares = results.map { "\($0.0.host): \($0.1.count)" }.joined(separator: ", ")
        print("claims per claimer: \(shares)")
        if !problems.isEmpty {
            XCTFail("\(problems.count) problems (claims per claimer: \(shares)):\n" + problems.prefix(20).joined(separator: "\n"))
        }
        // The race did run: more than one claimer got commands.
        XCTAssertGreaterThan(results.filter { !$0.1.isEmpty }.count, 1, "one claimer took everything: \(shares)")
    }

    static func text(_ path: String) -> String {
        (try? String(contentsOfFile: path, encoding: .utf8)) ?? "(no output)"
    }

    #if os(Linux)
    /// Runs this test binary again with only `StoreClaimerProcess` selected.
    static func spawnClaimerProcess(_ config: ClaimerProcessConfig) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        process.arguments = ["SharedTests.StoreClaimerProcess/testClaimUntilTheQueueIsEmpty"]
        var environment = ProcessInfo.processInfo.environment
        environment[ClaimerProcessConfig.variable] = String(decoding: try JSONEncoder().encode(config), as: UTF8.self)
        process.environment = environment
        _ = FileManager.default.createFile(atPath: config.log, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: config.log))
        process.standardOutput = log
        process.standardError = log
        try process.run()
        try log.close()
        return process
    }
    #endif
}

/// What a claimer child process is to do, in its environment.
struct ClaimerProcessConfig: Codable {
    static let variable = "DS_TEST_CLAIMER_PROCESS"
    var claimer: StoreTests.Claimer
    var db: String
    /// Created by the child once its store is open.
    var ready: String
    /// Created by the parent when every claimer is ready.
    var go: String
    /// The claimed instance ids, as JSON.
    var result: String
    var log: String
}

/// A claimer child process of `StoreTests.testClaimersInSeparateProcessesClaimEachCommandExactlyOnce`.
/// Does nothing (skipped) when run as a test of its own.
final class StoreClaimerProcess: XCTestCase {
    func testClaimUntilTheQueueIsEmpty() async throws {
        guard let json = ProcessInfo.processInfo.environment[ClaimerProcessConfig.variable] else {
            throw XCTSkip("a claimer child process of StoreTests; does nothing on its own")
        }
        let config = try JSONDecoder().decode(ClaimerProcessConfig.self, from: Data(json.utf8))
        let store = try Store(path: config.db)
        guard FileManager.default.createFile(atPath: config.ready, contents: nil) else { throw StoreError.failed("cannot create \(config.ready)") }
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: config.go) {
            guard Date() < deadline else { throw StoreError.failed("no go from the parent test") }
            usleep(200)
        }
        let ids = try await StoreTests.claimUntilEmpty(store, config.claimer)
        try JSONEncoder().encode(ids).write(to: URL(fileURLWithPath: config.result + ".tmp"))
        try FileManager.default.moveItem(atPath: config.result + ".tmp", toPath: config.result)
    }
}
