import Foundation
import Shared
import XCTest

/// Issue 23 end to end on PostgreSQL: daemons and tools get `--db postgres://…` (DS_DB with
/// DS_DB_PASSWORD_FILE) for a fresh database of the test process's scratch server, and the
/// existing scenarios run on it as they do on SQLite. Skipped, saying why, where no PostgreSQL
/// can run (not root, or no server binaries).
final class PostgresEndToEndTests: ClusterTestCase {
    override class var onPostgreSQL: Bool { true }

    /// Each test ran on the PostgreSQL database: the store the tools wrote is there, and no
    /// SQLite file was made.
    override func tearDown() {
        if let cluster {
            XCTAssertEqual(cluster.environment["DS_DB"], cluster.postgres?.url)
            XCTAssertFalse(FileManager.default.fileExists(atPath: cluster.databasePath), "a SQLite file was made")
        }
        super.tearDown()
    }

    /// The same scenario as WorkflowRunTests.testDiamondSucceedsInDependencyOrder.
    func testADiamondSucceedsInDependencyOrder() throws {
        try diamondSucceedsInDependencyOrder()
    }

    /// The same scenario as FailoverTests.testKilledWorkerTaskCompletesOnTheOtherWorkerAndNeverRunsOnBeside.
    func testAWorkerKilledMidTaskFailsOverAndEveryTaskRunsOnce() async throws {
        try await killedWorkerTaskCompletesOnTheOtherWorker()
    }

    /// As SchedulingOrderTests.testThreeMastersRunThreeHundredWorkflowsEachOnce, with two masters
    /// on the one database, one killed (-9) midway: every workflow SUCCESS, every task once.
    func testTwoMastersShareTheWorkAndOneIsKilled() async throws {
        try await mastersShareWorkflows(masters: 2, workflows: 120, killingOne: true)
    }

    /// As ScheduleTests.testEverySecondWithThreeMastersOneInstancePerFireTimeAlsoWhenOneIsKilled,
    /// with two masters: each fire time starts exactly one instance.
    func testAScheduleFiresOncePerFireTimeWithTwoMasters() async throws {
        try await scheduleFiresOncePerFireTime(masters: 2)
    }

    /// Every tool that opens the database opens the PostgreSQL one (ds-worker opens none).
    func testEveryToolWorksOnThePostgreSQLDatabase() throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 1)
        let (submitted, summary) = try cluster.submitAndWait(#"{"name":"tools","tasks":[{"name":"t","command":"echo hello"}]}"#)
        XCTAssertEqual(submitted.status, 0, submitted.stderr)
        XCTAssertEqual(summary.instance.state, "SUCCESS")
        let instance = String(summary.instance.id), attempt = String(summary.tasks[0].id)
        let runs: [(String, [String], String)] = [
            ("ds-instance", ["list"], "tools"),
            ("ds-instance", ["show", instance], "SUCCESS"),
            ("ds-logs", [attempt], "hello"),
            ("ds-pool", ["set", "pg", "2"], ""),
            ("ds-pool", ["list"], "pg"),
            ("ds-queue", ["list"], ""),
            ("ds-schedule", ["list"], ""),
            ("ds-alert", ["list"], "ID"),
            ("ds-failover", ["--list"], ""),
            ("ds-instance", ["prune", "--older-than", "1h", "--dry-run"], ""),
        ]
        for (tool, arguments, expected) in runs {
            let run = try cluster.run(tool, arguments)
            XCTAssertEqual(run.status, 0, "\(tool) \(arguments): \(run.stderr)")
            if !expected.isEmpty { XCTAssertTrue(run.stdout.contains(expected), "\(tool) \(arguments): \(run.stdout)") }
            XCTAssertFalse(run.stderr.contains("database"), "\(tool) \(arguments): \(run.stderr)")
        }
    }

    /// A tool against a PostgreSQL server that is down exits 75 ("database unreachable"), and
    /// nothing is written: once the server is back, the database holds what it held before.
    func testAToolAgainstAStoppedServerExits75AndWritesNothing() async throws {
        let server = try PostgresServer.start()
        defer { server.remove() }
        let database = try server.createDatabase()
        let before = try await Store(location: database.location)
            .submit(WorkflowDefinition(name: "w", tasks: [TaskDefinition(name: "a", command: "true")]), params: [:], now: 1).instanceId
        try server.stop()
        let workflow = try cluster.workflowFile(#"{"name":"w","tasks":[{"name":"a","command":"true"}]}"#)
        let runs: [(String, [String])] = [
            ("ds-submit", [workflow]),
            ("ds-master", []),
            ("ds-instance", ["list"]),
            ("ds-instance", ["stop", String(before)]),
            ("ds-pool", ["set", "p", "2"]),
            ("ds-schedule", ["list"]),
            ("ds-alert", ["ack", "1"]),
            ("ds-queue", ["list"]),
            ("ds-failover", ["--list"]),
            ("ds-logs", ["1"]),
        ]
        for (tool, arguments) in runs {
            let run = try cluster.run(tool, arguments, environment: database.environment)
            XCTAssertEqual(run.status, 75, "\(tool) \(arguments): \(run.stderr)")
            XCTAssertTrue(run.stderr.contains("database unreachable"), "\(tool) \(arguments): \(run.stderr)")
        }
        try server.start()
        let store = try Store(location: database.location)
        let instances = try await store.instances(InstanceQuery())
        XCTAssertEqual(instances.map(\.id), [before], "nothing written while the server was down")
        XCTAssertEqual(instances.first?.state, .submitted, "the stop was not written")
        let pools = try await store.pools()
        XCTAssertTrue(pools.isEmpty, "the pool was not written: \(pools)")
    }

    /// Item 4: a master outlives a PostgreSQL outage of 30 s (its server stopped while work runs,
    /// then started again on its port): it waits and retries, does not exit, and loses nothing:
    /// every workflow submitted before the outage ends SUCCESS with each task succeeded once, and
    /// one submitted after it runs too.
    func testAMasterOutlivesA30SecondOutageAndLosesNothing() async throws {
        let server = try PostgresServer.start()
        defer { server.remove() }
        let own = try Cluster(zk: Self.server!, postgres: try server.createDatabase())
        defer { own.remove() }
        let master = try own.startMaster()
        let worker = try own.startWorker(slots: 4)
        let workflow = #"{"name":"outage","tasks":[{"name":"a","command":"sleep 2"},{"name":"b","deps":["a"],"command":"sleep 2"},{"name":"c","deps":["b"],"command":"true"}]}"#
        var ids: [Int64] = []
        for _ in 0..<5 { ids.append(try own.submit(workflow)) }
        try await Task.sleep(for: .seconds(3))
        try server.stop()
        try await Task.sleep(for: .seconds(30))
        XCTAssertTrue(master.isRunning, "the master exited during the outage with status \(master.isRunning ? 0 : master.terminationStatus)")
        try server.start()
        ids.append(try own.submit(workflow))
        let store = try own.store()
        for id in ids {
            let state = try await own.waitForEnd(id, timeout: 300)
            XCTAssertEqual(state, .success, "instance \(id)")
            let succeeded = try await store.taskAttempts(of: id).filter { $0.state == .success }.map(\.taskName).sorted()
            XCTAssertEqual(succeeded, ["a", "b", "c"], "instance \(id): each task succeeded once")
        }
        XCTAssertTrue(master.isRunning, "the master is still running")
        XCTAssertTrue(worker.isRunning, "the worker is still running")
    }
}
