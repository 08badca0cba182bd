import Foundation
@testable import Shared
import XCTest

/// Every `StoreTests` test again, on a real PostgreSQL server (one scratch server per test
/// process, a database per store name per test). Skipped, saying why, without the server binaries.
final class PostgresStoreTests: StoreTests {
    private var databases: [String: PostgresSettings] = [:]

    override func location(_ name: String) throws -> DatabaseLocation {
        if let settings = databases[name] { return .postgres(settings) }
        let settings = try PostgresServer.shared().createDatabase().settings()
        databases[name] = settings
        return .postgres(settings)
    }

    override func testClaimersInSeparateProcessesClaimEachCommandExactlyOnce() async throws {
        throw XCTSkip("SQLite's race between processes; on PostgreSQL every Store is a client of its own already (see testTwoStoresRacingOnOneClaimTakeEachCommandOnce)")
    }

    /// Item 2 of issue 23: two masters' stores on one PostgreSQL database, each claiming from many
    /// threads at once, over many rounds: every command is claimed exactly once, by the claimer
    /// the database names as owner. The claim is a read-then-write (the head of the queue, then
    /// the instance's owner); PostgreSQL's default READ COMMITTED would let two claimers read the
    /// same head, and only SERIALIZABLE (with its retry) keeps it once.
    func testTwoStoresRacingOnOneClaimTakeEachCommandOnce() async throws {
        for round in 1...3 {
            let path = try location("claim-race-\(round)")
            let submitted = try await Self.submitInstances(120, path: path)
            let stores = [try Store(location: path), try Store(location: path)]
            // Three claimers per store: each store's pool serves several claims at once.
            let claimers = (0..<6).map { Claimer(host: "m\($0 % 2):\(7000 + $0)", session: Int64(300 + 10 * round + $0), now: Double(30 + $0)) }
            let results = try await withThrowingTaskGroup(of: (Int, [Int64]).self) { group in
                for (k, claimer) in claimers.enumerated() {
                    group.addTask { (k, try await Self.claimUntilEmpty(stores[k % 2], claimer)) }
                }
                var results = Array(repeating: [Int64](), count: claimers.count)
                for try await (k, ids) in group { results[k] = ids }
                return results
            }
            try await verifyEachClaimedOnce(Array(zip(claimers, results)), submitted: submitted, path: path)
        }
    }

    /// Item 2: masters on several hosts give out a pool's slots at once. Each counts the holders,
    /// then dispatches: READ COMMITTED would let two count the same free slot. In each of 20
    /// rounds, six takers on two stores race for a fresh pool of 2 slots: never more are given
    /// out, nor one attempt twice.
    func testMastersTakingPoolSlotsAtOnceNeverOverfillThePool() async throws {
        let path = try location("pool-race")
        let store = try Store(location: path)
        let w = WorkflowDefinition(name: "w", tasks: [TaskDefinition(name: "a", command: "true")])
        let instance = try await store.submit(w, params: [:], now: 1).instanceId
        _ = try await store.claimCommand(host: "m:1", session: 7, now: 2)
        let rounds = 20
        var batch = SchedulingBatch()
        for round in 0..<rounds {
            try await store.setPool("p\(round)", slots: 2, now: 1)
            batch.newAttempts += (0..<6).map {
                TaskInstanceRecord(workflowInstanceId: instance, taskName: "a\(round)-\($0)", attempt: 1, state: .submitted,
                                   priority: .medium, workerGroup: "default", submitTime: 3, pool: "p\(round)")
            }
        }
        let inserted = try await store.apply(batch, session: 7).inserted
        let stores = [store, try Store(location: path)]
        for round in 0..<rounds {
            let ids = inserted.filter { $0.pool == "p\(round)" }.compactMap(\.id)
            let taken = try await withThrowingTaskGroup(of: [Int64].self) { group in
                for k in 0..<6 {
                    group.addTask { try await stores[k % 2].takePoolSlots("p\(round)", ids: ids.shuffled(), session: 7) }
                }
                var all: [Int64] = []
                for try await mine in group { all += mine }
                return all
            }
            XCTAssertEqual(taken.count, 2, "round \(round): slots given: \(taken)")
            XCTAssertEqual(Set(taken).count, taken.count, "round \(round): an attempt given two slots: \(taken)")
            let usage = try await store.pool("p\(round)")
            XCTAssertEqual(usage.inUse, 2, "round \(round)")
        }
    }

    /// Item 2: masters taking over a dead master's instances at once. Six adopters on two stores
    /// race for the 40 instances of a dead session: each is adopted by exactly one, and the
    /// database names that one as owner.
    func testMastersAdoptingADeadMastersInstancesAtOnceAdoptEachOnce() async throws {
        let path = try location("adopt-race")
        let submitted = try await Self.submitInstances(40, path: path)
        let store = try Store(location: path)
        while try await store.claimCommand(host: "dead:1", session: 1, now: 2) != nil {}
        let stores = [store, try Store(location: path)]
        let adopted = try await withThrowingTaskGroup(of: (Int64, [Int64]).self) { group in
            for k in 0..<6 {
                group.addTask {
                    let session = Int64(100 + k)
                    let taken = try await stores[k % 2].adoptOrphans(host: "m\(k):1", session: session, deadSessions: [1])
                    XCTAssertTrue(taken.adopted.isEmpty || taken.previousOwners.map(\.session) == [1], "\(taken.previousOwners)")
                    return (session, taken.adopted.compactMap(\.instance.id))
                }
            }
            var all: [(Int64, [Int64])] = []
            for try await result in group { all.append(result) }
            return all
        }
        let ids = adopted.flatMap(\.1)
        XCTAssertEqual(ids.sorted(), submitted.map(\.instanceId).sorted(), "each instance adopted exactly once")
        for (session, mine) in adopted {
            for id in mine {
                let owner = try await store.instance(id)?.masterSession
                XCTAssertEqual(owner, session, "instance \(id)")
            }
        }
    }

    /// Item 2: masters leasing alerts at once: each alert is leased by one master at a time.
    func testMastersLeasingOneAlertAtOnceLeaseItOnce() async throws {
        let path = try location("alert-race")
        let stores = [try Store(location: path), try Store(location: path)]
        for round in 0..<5 {
            let content = AlertContent(kind: .workflowTimeout, title: "late \(round)", time: 1)
            try await stores[0].recordAlerts([AlertRecord(content, dedupKey: "k\(round)")])
            let leases = try await withThrowingTaskGroup(of: AlertRecord?.self) { group in
                for k in 0..<6 { group.addTask { try await stores[k % 2].leaseAlert(owner: "m\(k)", now: 10, lease: 60) } }
                var leases: [AlertRecord] = []
                for try await lease in group { if let lease { leases.append(lease) } }
                return leases
            }
            XCTAssertEqual(leases.map(\.dedupKey), ["k\(round)"], "round \(round): \(leases.map { "\($0.owner ?? "?") \($0.dedupKey)" })")
            XCTAssertEqual(leases.first?.attempts, 1)
            _ = try await stores[0].finishAlert(leases[0].id!, owner: leases[0].owner!, sent: true, error: nil, retryAt: nil, now: 11)
        }
    }

    /// Item 4 at the store: a PostgreSQL restart under an open store. While the server is down
    /// a write fails as a temporary failure (exit 75, "database unreachable"), and writes nothing;
    /// once it is back the same store writes again, and nothing written before is lost.
    func testAStoreOutlivesAServerRestart() async throws {
        let server = try PostgresServer.start()
        defer { server.remove() }
        let store = try Store(location: .postgres(try server.createDatabase().settings(poolSize: 2)))
        let w = WorkflowDefinition(name: "w", tasks: [TaskDefinition(name: "a", command: "true")])
        let before = try await store.submit(w, params: [:], now: 1).instanceId
        try server.stop()
        do {
            _ = try await store.submit(w, params: [:], now: 2)
            XCTFail("a write succeeded with the server down")
        } catch {
            XCTAssertEqual(ExitStatus.of(error), .tempFail, "\(error)")
            XCTAssertTrue("\(error)".contains("database unreachable"), "\(error)")
        }
        try server.start()
        let deadline = Date().addingTimeInterval(120)
        var after: Int64?
        while after == nil {
            do { after = try await store.submit(w, params: [:], now: 3).instanceId } catch {
                guard Date() < deadline, ExitStatus.of(error) == .tempFail else { throw error }
                try await Task.sleep(nanoseconds: 200_000_000)
            }
        }
        let instances = try await store.instances(InstanceQuery())
        XCTAssertEqual(instances.map(\.id), [after, before], "the write before the restart is kept, none made while it was down")
    }

    /// A server that cannot be reached is a temporary failure (exit 75) that says so.
    func testAnUnreachableServerIsATemporaryFailureThatSaysSo() throws {
        _ = try PostgresServer.shared()
        let port = try freePort()  // nothing listens there
        let settings = PostgresSettings(host: "127.0.0.1", port: port, user: "postgres", database: "none")
        XCTAssertThrowsError(try Store(location: .postgres(settings), create: false)) { error in
            XCTAssertEqual(ExitStatus.of(error), .tempFail, "\(error)")
            XCTAssertTrue("\(error)".contains("database unreachable") && "\(error)".contains(settings.description), "\(error)")
        }
    }

    /// A database no master has migrated is refused to a tool (exit 78), as a missing file is.
    func testAToolRefusesADatabaseNoMasterHasMade() throws {
        guard case .postgres(let settings) = try location("empty") else { return XCTFail("not PostgreSQL") }
        XCTAssertThrowsError(try Store(location: .postgres(settings), create: false)) { error in
            XCTAssertEqual(ExitStatus.of(error), .config, "\(error)")
            XCTAssertTrue("\(error)".contains(settings.description), "\(error)")
        }
        _ = try Store(location: .postgres(settings))
        _ = try Store(location: .postgres(settings), create: false)
    }

    /// A schema version newer than this build knows is refused with exit 78 on PostgreSQL too.
    func testASchemaNewerThanThisBuildKnowsIsRefused() async throws {
        let path = try location("newer")
        let store = try Store(location: path)
        try await store.transaction("raising the schema version") { db in
            try db.execute(sql: "UPDATE schema_version SET version = ?", arguments: [Migrations.latest + 1])
        }
        XCTAssertThrowsError(try Store(location: path, create: false)) { error in
            XCTAssertEqual(ExitStatus.of(error), .config, "\(error)")
            XCTAssertTrue("\(error)".contains("newer than this ds knows"), "\(error)")
        }
    }

    /// `?` placeholders become `$n`, except inside quoted strings and identifiers.
    /// Item 4: a write whose COMMIT got no answer (the connection lost) is not taken for not
    /// stored: the server is asked, by the transaction's id, whether it committed. Here the
    /// question itself, for a transaction that committed and one that did not.
    func testTheOutcomeOfACommitIsAskedOfTheServerByItsTransactionID() async throws {
        guard case .postgres(let settings) = try location("outcome") else { return XCTFail("not PostgreSQL") }
        _ = try Store(location: .postgres(settings))
        let backend = try PostgresBackend(settings)
        let stored = try await backend.write { db in try Int64.fetchOne(db, sql: "SELECT txid_current()")! }
        XCTAssertTrue(try backend.committed(stored))
        let seen = XIDBox()
        do {
            _ = try await backend.write { db -> Int in
                seen.xid = try Int64.fetchOne(db, sql: "SELECT txid_current()")
                throw StoreError.failed("the body gives up")
            }
            XCTFail("the body threw")
        } catch StoreError.failed {}
        let rolledBack = try XCTUnwrap(seen.xid)
        XCTAssertFalse(try backend.committed(rolledBack))
    }

    final class XIDBox: @unchecked Sendable { var xid: Int64? }

    /// A wrong password or database name is the configuration's fault: exit 78 with what to check,
    /// not an internal error (70) nor a temporary one (75).
    func testAWrongPasswordOrDatabaseIsAConfigurationError() throws {
        guard case .postgres(let settings) = try location("config") else { return XCTFail("not PostgreSQL") }
        var wrongPassword = settings
        wrongPassword.password = "not-the-password"
        var noDatabase = settings
        noDatabase.database = "ds_no_such_database"
        for (what, bad) in [("a wrong password", wrongPassword), ("no such database", noDatabase)] {
            do {
                _ = try Store(location: .postgres(bad))
                XCTFail("\(what): opened")
            } catch let error as StoreError {
                XCTAssertEqual(error.exitStatus, .config, "\(what): \(error)")
                XCTAssertTrue(error.description.contains("DS_DB_PASSWORD_FILE"), "\(what): \(error)")
            }
        }
    }

    /// A transaction that one of its statements aborted answers COMMIT with the tag ROLLBACK and
    /// no error. A body that caught that statement's error is told the write was not stored, and
    /// nothing it wrote before is there.
    func testACommitTheServerAnswersWithRollbackIsNotTakenForStored() async throws {
        guard case .postgres(let settings) = try location("rollback-tag") else { return XCTFail("not PostgreSQL") }
        _ = try Store(location: .postgres(settings))
        let backend = try PostgresBackend(settings)
        _ = try await backend.write { db in try db.execute(sql: "CREATE TABLE probe (n INTEGER)") }
        do {
            _ = try await backend.write { db -> Int in
                try db.execute(sql: "INSERT INTO probe (n) VALUES (1)")
                _ = try? db.execute(sql: "SELECT 1 / 0")
                return 1
            }
            XCTFail("a rolled-back transaction was reported stored")
        } catch let error as StoreError {
            XCTAssertTrue(error.description.contains("rolled the transaction back"), "\(error)")
        }
        let count = try await backend.read { db in try Int64.fetchOne(db, sql: "SELECT count(*) FROM probe") }
        XCTAssertEqual(count, 0)
        // The connection went back to the pool usable: the next write is stored.
        _ = try await backend.write { db in try db.execute(sql: "INSERT INTO probe (n) VALUES (2)") }
        let after = try await backend.read { db in try Int64.fetchOne(db, sql: "SELECT count(*) FROM probe") }
        XCTAssertEqual(after, 1)
    }

    /// A server out of connections for the user (SQLSTATE 53300) is a temporary failure (exit 75):
    /// a cron job tries again later; it is neither a fault of ds (70) nor of the configuration.
    func testAServerOutOfConnectionsIsATemporaryFailure() throws {
        guard case .postgres(let settings) = try location("no-connections") else { return XCTFail("not PostgreSQL") }
        let role = "ds_limited_\(getpid())"
        let server = try PostgresServer.shared()
        try server.psql("DROP ROLE IF EXISTS \(role); CREATE ROLE \(role) LOGIN PASSWORD 'limited' CONNECTION LIMIT 0")
        defer { _ = try? server.psql("DROP ROLE IF EXISTS \(role)") }
        var limited = settings
        limited.user = role
        limited.password = "limited"
        do {
            _ = try Store(location: .postgres(limited))
            XCTFail("opened with no connection allowed")
        } catch let error as StoreError {
            XCTAssertEqual(error.exitStatus, .tempFail, "\(error)")
            XCTAssertTrue(error.description.contains("too many connections"), "\(error)")
        }
    }

    func testPlaceholdersAreNumberedOutsideQuotes() {
        XCTAssertEqual(PostgresSQLConnection.numberedPlaceholders("SELECT ? , '?', \"a?\", ? WHERE x = '' AND y = ?"),
                       "SELECT $1 , '?', \"a?\", $2 WHERE x = '' AND y = $3")
        XCTAssertEqual(PostgresSQLConnection.numberedPlaceholders("SELECT ? -- why?\n, E'it\\'s ?', $$a ? b$$, $q$?$q$, /* ? */ ?, 'it''s ?', ?"),
                       "SELECT $1 -- why?\n, E'it\\'s ?', $$a ? b$$, $q$?$q$, /* ? */ $2, 'it''s ?', $3")
        XCTAssertEqual(PostgresSQLConnection.numberedPlaceholders("SELECT $1 ?"), "SELECT $1 $1")
        XCTAssertEqual(PostgresSQLConnection.numberedPlaceholders("'open ?"), "'open ?")
    }
}

/// Every `ScheduleStoreTests` test again, on a real PostgreSQL server.
final class PostgresScheduleStoreTests: ScheduleStoreTests {
    private var database: PostgresSettings?

    override func makeLocation() throws -> DatabaseLocation {
        let settings = try database ?? PostgresServer.shared().createDatabase().settings()
        database = settings
        return .postgres(settings)
    }

    /// Item 2 of issue 23: masters on several hosts see one schedule due at once. Two stores on one
    /// database, three firers each, fire it for every second of a minute, each a little later than
    /// the one before: every fire time starts exactly one instance, and none is skipped.
    func testMastersFiringOneScheduleAtOnceStartEachFireTimeOnce() async throws {
        let id = try await add("* * * * * ?", now: t0)
        let stores = [store!, try Store(location: try makeLocation())]
        try await withThrowingTaskGroup(of: Void.self) { group in
            for k in 0..<6 {
                group.addTask {
                    for second in 1...60 {
                        _ = try await stores[k % 2].fire(schedule: id, now: self.t0 + Double(second) + 0.5, misfireThreshold: 3600)
                    }
                }
            }
            try await group.waitForAll()
        }
        let times = try await fired(id)
        XCTAssertEqual(times, (0...60).map { t0 + Double($0) }, "each fire time once (the first at t0), in order")
    }
}
