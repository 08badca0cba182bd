import Foundation
import Shared
import XCTest

/// Network partitions (issue 21): masters and workers on hosts of their own (network namespaces
/// on a bridge, `NetworkHosts`), ZooKeeper on the bridge address, the database a file they all
/// share (one machine). A host's link is cut for longer than its session while it holds work, and
/// a master is killed with `kill -9` in the same run. What must hold comes from the tasks' own
/// markers (every task ends exactly once, no two runs of one task overlap) and from the database
/// (a master cut off writes nothing once another has adopted its instances).
///
/// Runs as root only (namespaces, veth, a bridge); elsewhere every test skips, saying why.
class PartitionTests: XCTestCase {
    static let sessionTimeout = "4s"
    /// `PostgresPartitionTests`: the same tests with the database on a PostgreSQL server on the
    /// bridge address (a host cut off then reaches neither ZooKeeper nor the database).
    class var onPostgreSQL: Bool { false }
    static var network: NetworkHosts?
    static var server: ZooKeeperServer?
    static var postgres: PostgresServer?
    /// The host each traced master runs on, by its trace file: on PostgreSQL, the writes it made
    /// are those from its address.
    var tracedHosts: [String: String] = [:]
    static var unavailable: String?
    static var setupError: Error?
    var cluster: Cluster!

    var network: NetworkHosts { Self.network! }
    var markers: String { cluster.directory.appendingPathComponent("markers").path }
    var locks: String { cluster.directory.appendingPathComponent("locks").path }
    var gate: String { cluster.directory.appendingPathComponent("go").path }

    override class func setUp() {
        super.setUp()
        if let reason = NetworkHosts.unavailableReason() { unavailable = reason; return }
        do {
            let network = try NetworkHosts()
            Self.network = network
            for name in ["m1", "m2", "w1", "w2"] { try network.addHost(name) }
            server = try ZooKeeperServer(address: network.bridgeAddress)
            if onPostgreSQL { postgres = try PostgresServer.start(host: network.bridgeAddress) }
        } catch {
            setupError = error
        }
    }

    override class func tearDown() {
        postgres?.remove()
        postgres = nil
        server?.remove()
        server = nil
        network?.remove()
        network = nil
        super.tearDown()
    }

    override func setUpWithError() throws {
        if let reason = Self.unavailable { throw XCTSkip(reason) }
        if let error = Self.setupError { throw error }
        cluster = try Cluster(zk: Self.server!, sessionTimeout: Self.sessionTimeout, postgres: try Self.postgres?.createDatabase())
        try FileManager.default.createDirectory(atPath: locks, withIntermediateDirectories: true)
    }

    override func tearDown() {
        // A test that failed half-way leaves no host cut off for the next one.
        for name in ["m1", "m2", "w1", "w2"] { try? Self.network?.heal(name) }
        if let run = testRun, run.failureCount > 0, let cluster {
            print(cluster.daemonLogs())
            print("markers:\n" + cluster.lines(markers).joined(separator: "\n"))
        }
        cluster?.remove()
        super.tearDown()
    }

    // MARK: Daemons on hosts

    @discardableResult
    func startMaster(on host: String, port: Int, tracedTo trace: String? = nil) throws -> Process {
        var prefix = network[host].prefix
        if let trace {
            tracedHosts[trace] = network[host].address
            // Every write the master makes to a file, with the file's path and a wall-clock time:
            // what it wrote to the database, whenever, however it was cut off.
            prefix += ["/usr/bin/strace", "-f", "-qq", "--seccomp-bpf", "-ttt", "-y", "-s", "0",
                       "-e", "trace=write,pwrite64,pwritev,pwritev2,ftruncate", "-o", trace, "--"]
        }
        return try cluster.startMaster(host: network[host].address, port: port, prefix: prefix)
    }

    /// The traced master itself: strace's one child.
    func tracee(of process: Process) -> pid_t? {
        let pid = process.processIdentifier
        let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
        return text.split(separator: " ").compactMap { pid_t($0) }.first
    }

    @discardableResult
    func startWorker(on host: String, port: Int, slots: Int = 2) throws -> Process {
        try cluster.startWorker(slots: slots, host: network[host].address, port: port, prefix: network[host].prefix)
    }

    func waitForRegistration(master identity: String) async throws {
        let zk = try await cluster.client()
        defer { zk.close() }
        let path = cluster.paths.masters
        try await eventually("master \(identity) registers", timeout: 120) {
            try await zk.childrenIfPresent(path).contains(identity)
        }
    }

    func waitForRegistration(worker identity: String) async throws {
        let zk = try await cluster.client()
        defer { zk.close() }
        let path = cluster.paths.workerGroup("default")
        try await eventually("worker \(identity) registers", timeout: 120) {
            try await zk.childrenIfPresent(path).contains(identity)
        }
    }

    // MARK: Tasks that witness their own runs

    /// A task that holds a lock file of its own (one per instance and task) while it runs and
    /// notes `start` (with whether the lock was free), a `beat` every half second and its `end`,
    /// each with its attempt, task instance id and the wall-clock time. `waitsForGate`: it ends
    /// only once the test creates the gate file.
    func witnessTask(_ name: String, beats: Int, deps: [String] = [], waitsForGate: Bool = false) -> [String: Any] {
        let id = "$DS_WORKFLOW_INSTANCE_ID $DS_TASK_NAME $DS_TASK_ATTEMPT $DS_TASK_INSTANCE_ID"
        var command = "exec 9>>\(locks)/$DS_WORKFLOW_INSTANCE_ID-$DS_TASK_NAME.lock; "
            + "if flock -n 9; then lock=alone; else lock=beside; fi; "
            + "echo \"start \(id) $lock $(date +%s.%N)\" >> \(markers); "
            + "i=0; while [ $i -lt \(beats) ]; do sleep 0.5; echo \"beat \(id) $(date +%s.%N)\" >> \(markers); i=$((i+1)); done; "
        if waitsForGate {
            command += "while [ ! -e \(gate) ]; do sleep 0.2; echo \"beat \(id) $(date +%s.%N)\" >> \(markers); done; "
        }
        command += "echo \"end \(id) $(date +%s.%N)\" >> \(markers)"
        return ["name": name, "deps": deps, "command": command]
    }

    func submit(_ name: String, _ tasks: [[String: Any]]) throws -> Int64 {
        let data = try JSONSerialization.data(withJSONObject: ["name": name, "tasks": tasks], options: [.sortedKeys])
        return try cluster.submit(String(decoding: data, as: UTF8.self))
    }

    /// One run of one task: an attempt's process, from its start marker to its last sign of life.
    struct Run {
        var instance: Int64
        var task: String
        var attempt: Int
        var taskInstance: Int64
        var foundLockHeld = false
        var start: Double = 0
        var lastSeen: Double = 0
        var ended = false
    }

    /// The runs the markers show, by task instance id.
    func runs() -> [Run] {
        var runs: [Int64: Run] = [:]
        for line in cluster.lines(markers) {
            let f = line.split(separator: " ").map(String.init)
            guard f.count >= 6, let instance = Int64(f[1]), let attempt = Int(f[3]), let id = Int64(f[4]),
                  let time = Double(f.last!) else { continue }
            var run = runs[id] ?? Run(instance: instance, task: f[2], attempt: attempt, taskInstance: id)
            switch f[0] {
            case "start":
                run.start = time
                run.foundLockHeld = f[5] == "beside"
            case "end": run.ended = true
            default: break
            }
            run.lastSeen = max(run.lastSeen, time)
            runs[id] = run
        }
        return runs.values.sorted { $0.taskInstance < $1.taskInstance }
    }

    /// Fails for every task of `instances` (names `tasks`) that did not end exactly once, and for
    /// every two runs of one task that were alive at once: one found the other's lock held, or
    /// started before the other's last sign of life (both were alive then).
    func assertEveryTaskRanExactlyOnceAlone(_ instances: [Int64], tasks: [String], file: StaticString = #filePath, line: UInt = #line) {
        let all = runs()
        for instance in instances {
            for task in tasks {
                let mine = all.filter { $0.instance == instance && $0.task == task }
                let ends = mine.filter(\.ended)
                XCTAssertEqual(ends.count, 1, "instance \(instance) task \(task) must end exactly once; runs: "
                               + mine.map { "attempt \($0.attempt) (task instance \($0.taskInstance))\($0.ended ? " ended" : " killed")" }.joined(separator: ", "),
                               file: file, line: line)
                for run in mine where run.foundLockHeld {
                    XCTFail("instance \(instance) task \(task): attempt \(run.attempt) (task instance \(run.taskInstance)) started while another run of it held its lock",
                            file: file, line: line)
                }
                for (i, a) in mine.enumerated() {
                    for b in mine[(i + 1)...] {
                        let overlap = min(a.lastSeen, b.lastSeen) - max(a.start, b.start)
                        if overlap > 0 {
                            XCTFail(String(format: "instance %lld task %@: task instances %lld and %lld ran side by side for at least %.1f s",
                                           instance, task, a.taskInstance, b.taskInstance, overlap), file: file, line: line)
                        }
                    }
                }
            }
        }
    }

    // MARK: Database witness

    /// Installs a trigger that notes, with the time of the statement, every change of an
    /// instance's owner session: when an adoption was written, by the database's own clock. On
    /// PostgreSQL also every row a client writes to the tables of instances, attempts and
    /// commands, with its address (its host) and the time: only what commits is kept.
    func recordOwnershipChanges() throws {
        guard cluster.postgres != nil else {
            try sql("""
                CREATE TABLE IF NOT EXISTS test_owner_change (instance INTEGER, old_session INTEGER, new_session INTEGER, time REAL);
                CREATE TRIGGER IF NOT EXISTS test_owner_change_audit AFTER UPDATE OF master_session ON workflow_instance
                WHEN OLD.master_session IS NOT NEW.master_session
                BEGIN INSERT INTO test_owner_change VALUES (NEW.id, OLD.master_session, NEW.master_session, (julianday('now') - 2440587.5) * 86400.0); END;
                """)
            return
        }
        try sql("""
            CREATE TABLE test_owner_change (instance BIGINT, old_session BIGINT, new_session BIGINT, time DOUBLE PRECISION);
            CREATE FUNCTION test_owner_change_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
              IF OLD.master_session IS DISTINCT FROM NEW.master_session THEN
                INSERT INTO test_owner_change VALUES (NEW.id, OLD.master_session, NEW.master_session, extract(epoch FROM clock_timestamp()));
              END IF;
              RETURN NEW;
            END $$;
            CREATE TRIGGER test_owner_change_audit AFTER UPDATE OF master_session ON workflow_instance
              FOR EACH ROW EXECUTE FUNCTION test_owner_change_audit();
            CREATE TABLE test_write (client TEXT, tbl TEXT, op TEXT, time DOUBLE PRECISION);
            CREATE FUNCTION test_write_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
              INSERT INTO test_write VALUES (host(inet_client_addr()), TG_TABLE_NAME, TG_OP, extract(epoch FROM clock_timestamp()));
              RETURN NULL;
            END $$;
            CREATE TRIGGER test_write_audit AFTER INSERT OR UPDATE OR DELETE ON workflow_instance FOR EACH ROW EXECUTE FUNCTION test_write_audit();
            CREATE TRIGGER test_write_audit AFTER INSERT OR UPDATE OR DELETE ON task_instance FOR EACH ROW EXECUTE FUNCTION test_write_audit();
            CREATE TRIGGER test_write_audit AFTER INSERT OR UPDATE OR DELETE ON command FOR EACH ROW EXECUTE FUNCTION test_write_audit();
            GRANT INSERT ON test_owner_change, test_write TO ds;
            """)
    }

    /// Adoptions away from `session`: instance and time.
    func adoptions(from session: Int64) throws -> [(instance: Int64, time: Double)] {
        try sql("SELECT instance, time FROM test_owner_change WHERE old_session = \(session) ORDER BY time;")
            .split(separator: "\n").compactMap { line in
                let f = line.split(separator: "|")
                guard f.count == 2, let id = Int64(f[0]), let time = Double(f[1]) else { return nil }
                return (id, time)
            }
    }

    /// Runs SQL on the cluster's database: `sqlite3` on the file, or `psql` as PostgreSQL's superuser.
    @discardableResult
    func sql(_ statements: String) throws -> String {
        if let database = cluster.postgres, let server = Self.postgres {
            return try server.psql(statements, database: database.name)
        }
        return try NetworkHosts.run(["/usr/bin/sqlite3", "-cmd", ".timeout 30000", cluster.databasePath, statements])
    }

    /// The writes a traced master made to the database, with their times: on SQLite those to
    /// its files (`ds.db`, its WAL and shared memory) in the trace; on PostgreSQL the rows written
    /// from its host's address (installed by `recordOwnershipChanges`).
    func databaseWrites(in trace: String) -> [(time: Double, line: String)] {
        if cluster.postgres != nil {
            guard let address = tracedHosts[trace],
                  let rows = try? sql("SELECT time, tbl || ' ' || op FROM test_write WHERE client = '\(address)' ORDER BY time;") else { return [] }
            return rows.split(separator: "\n").compactMap { line in
                let f = line.split(separator: "|", maxSplits: 1)
                guard f.count == 2, let time = Double(f[0]) else { return nil }
                return (time, "\(address): \(f[1])")
            }
        }
        let text = (try? String(contentsOfFile: trace, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            guard line.contains(cluster.databasePath), !line.contains("= -1 E") else { return nil }
            guard let time = line.split(separator: " ").lazy.compactMap({ Double($0) }).first(where: { $0 > 1_000_000_000 }) else { return nil }
            return (time, String(line))
        }
    }

    func owners(_ ids: [Int64]) async throws -> [Int64: Int64?] {
        let store = try cluster.store()
        var owners: [Int64: Int64?] = [:]
        for id in ids { owners[id] = try await store.instance(id)?.masterSession }
        return owners
    }

    // MARK: Tests

    /// A master cut off for three sessions: the other adopts its instances, the cut-off one writes
    /// nothing to the database after that and exits once it hears its session is gone. Then the
    /// adopting master is killed with `kill -9` and a master restarted on the healed host adopts
    /// everything back. Every workflow succeeds, every task ran exactly once and never beside itself.
    func testCutOffMasterWritesNothingAfterAnotherAdopts() async throws {
        let trace = cluster.directory.appendingPathComponent("m1.strace").path
        let cutOff = try startMaster(on: "m1", port: 7101, tracedTo: trace)
        let m1 = "\(network["m1"].address):7101", m2 = "\(network["m2"].address):7102"
        try await waitForRegistration(master: m1)
        try startWorker(on: "w1", port: 7201)
        try startWorker(on: "w2", port: 7202)
        // Sequential tasks; the last but one holds its instance open until the test opens the gate.
        let names = ["t1", "t2", "t3", "t4", "t5", "held", "last"]
        func workflow() -> [[String: Any]] {
            [witnessTask("t1", beats: 3), witnessTask("t2", beats: 3, deps: ["t1"]), witnessTask("t3", beats: 3, deps: ["t2"]),
             witnessTask("t4", beats: 3, deps: ["t3"]), witnessTask("t5", beats: 3, deps: ["t4"]),
             witnessTask("held", beats: 1, deps: ["t5"], waitsForGate: true), witnessTask("last", beats: 1, deps: ["held"])]
        }
        var ids = try (0..<2).map { try submit("cut-master-\($0)", workflow()) }
        // A retry timer m1 sets just before the cut, due after the adoption (most likely): work m1
        // may believe it still has to do while it can no longer hear ZooKeeper, but can still
        // reach the database. Its first attempt fails once the test says so.
        let failNow = cluster.directory.appendingPathComponent("fail-now").path
        let failedOnce = cluster.directory.appendingPathComponent("failed-once").path
        let retrying = try submit("retry-across-the-cut", [[
            "name": "flaky", "retries": 1, "retry_interval": "8s",
            "command": "if [ ! -e \(failedOnce) ]; then touch \(failedOnce); while [ ! -e \(failNow) ]; do sleep 0.1; done; exit 1; fi; "
                + "echo flaky >> \(markers)-flaky"]])
        try await eventually("m1 owns every instance and their first tasks run") {
            let store = try self.cluster.store()
            for id in ids + [retrying] { guard try await store.instance(id)?.host == m1 else { return false } }
            return Set(self.runs().map(\.instance)) == Set(ids) && FileManager.default.fileExists(atPath: failedOnce)
        }
        let firstOwners = try await owners(ids)
        let session1 = try XCTUnwrap(firstOwners[ids[0]] ?? nil)
        try recordOwnershipChanges()
        let adopter = try startMaster(on: "m2", port: 7102)
        try await waitForRegistration(master: m2)
        FileManager.default.createFile(atPath: failNow, contents: nil)
        try await eventually("m1 stored the first attempt's failure and set its retry timer") {
            try await self.cluster.store().taskAttempts(of: retrying).contains { $0.state == .failure }
        }

        try network.cut("m1")
        let cutAt = Date()
        // Submitted while m1 is cut off but still reaches the database: only m2 may take it.
        try await eventually("m2 adopts every instance of m1", timeout: 180) {
            try self.adoptions(from: session1).count >= ids.count + 1
        }
        ids.append(try submit("submitted-during-the-cut", workflow()))
        let adoptedAt = try adoptions(from: session1).map(\.time).min()!
        // Longer than three sessions in all, however fast the adoption came.
        let rest = 12 - Date().timeIntervalSince(cutAt)
        if rest > 0 { try await Task.sleep(for: .seconds(rest)) }
        let healedAt = Date().timeIntervalSince1970
        try network.heal("m1")
        // A fenced master carries on with a new session once it reaches ZooKeeper again (issue 21,
        // finding 19); what it writes from then on is that new session's own work.
        try await eventually("the cut-off master registers again with a new session", timeout: 120) {
            cluster.daemonLogs().contains("registering again with a new session")
        }
        XCTAssertTrue(cutOff.isRunning, "the cut-off master carries on")
        // To the master itself: a SIGTERM to strace only detached it, and the master ran on
        // (the test waited its 120 s for nothing, and on PostgreSQL hung in its teardown).
        kill(tracee(of: cutOff) ?? cutOff.processIdentifier, SIGTERM)
        let status = cluster.exitStatus(of: cutOff, within: 120)
        XCTAssertEqual(status, 0, "the cut-off master stops gracefully on SIGTERM (strace passes its status on; nil: still running)")

        let writes = databaseWrites(in: trace)
        let late = writes.filter { $0.time > adoptedAt && $0.time < healedAt }
        print(String(format: "m1 (cut off) made %d database writes, the last %.3f s before m2's adoption; it exited %@",
                     writes.count, adoptedAt - (writes.map(\.time).max() ?? 0), status.map { String($0) } ?? "-"))
        XCTAssertTrue(late.isEmpty, "m1 wrote to the database after m2 adopted its instances (at \(adoptedAt)):\n"
                      + late.prefix(20).map(\.line).joined(separator: "\n"))
        XCTAssertFalse(writes.isEmpty, "the trace must show m1's writes from before the cut (else it proves nothing)")
        let ownedByCutOff = try await owners(ids).filter { $0.value == session1 }
        XCTAssertTrue(ownedByCutOff.isEmpty, "instances still or again owned by the cut-off master: \(ownedByCutOff.keys.sorted())")

        // The healed host's master comes back (a new session); the adopting one dies with kill -9.
        try startMaster(on: "m1", port: 7101)
        try await eventually("the restarted m1 registers with a new session") {
            let zk = try await self.cluster.client()
            defer { zk.close() }
            guard let stat = try await zk.exists(self.cluster.paths.masters + "/" + m1) else { return false }
            return stat.ephemeralOwner != session1
        }
        try await eventually("m2 owns every instance") {
            try await self.cluster.store().instance(ids.last!)?.host == m2
        }
        let lastOwner = try await owners([ids.last!])
        let session2 = try XCTUnwrap(lastOwner[ids.last!] ?? nil)
        cluster.kill9(adopter)
        try await eventually("the restarted m1 adopts every instance back", timeout: 180) {
            try await self.owners(ids).values.allSatisfy { $0 != nil && $0 != session2 && $0 != session1 }
        }
        FileManager.default.createFile(atPath: gate, contents: nil)
        for id in ids + [retrying] {
            let state = try await cluster.waitForEnd(id, timeout: 300)
            XCTAssertEqual(state, .success, "instance \(id)")
        }
        assertEveryTaskRanExactlyOnceAlone(ids, tasks: names)
        XCTAssertEqual(cluster.lines(markers + "-flaky"), ["flaky"], "the retry ran once")
    }

    /// A worker cut off for longer than its session while it runs two long tasks, and the master
    /// that owns their instance killed with `kill -9` just after the cut: the other master adopts
    /// and fails the worker over. Each task ends exactly once and never runs beside its failover
    /// attempt: the cut-off worker must have stopped its runs before they are started elsewhere.
    func testCutOffWorkerTasksCompleteExactlyOnce() async throws {
        let owner = try startMaster(on: "m1", port: 7111)
        try await waitForRegistration(master: "\(network["m1"].address):7111")
        let w1 = "\(network["w1"].address):7211"
        try startWorker(on: "w1", port: 7211)
        try await waitForRegistration(worker: w1)
        let names = ["a", "b"]
        let id = try submit("cut-worker", [witnessTask("a", beats: 20), witnessTask("b", beats: 20)])
        try await eventually("both tasks run on w1") {
            let attempts = try await self.cluster.store().taskAttempts(of: id)
            return self.runs().count == 2 && attempts.allSatisfy { $0.host == w1 }
        }
        try startMaster(on: "m2", port: 7112)
        try startWorker(on: "w2", port: 7212)
        try await waitForRegistration(master: "\(network["m2"].address):7112")
        try await waitForRegistration(worker: "\(network["w2"].address):7212")

        try network.cut("w1")
        let cutAt = Date()
        cluster.kill9(owner)
        try await eventually("the tasks are failed over to w2", timeout: 180) {
            try await self.cluster.store().taskAttempts(of: id).filter { $0.state == .needFaultTolerance }.count == 2
        }
        let rest = 15 - Date().timeIntervalSince(cutAt)
        if rest > 0 { try await Task.sleep(for: .seconds(rest)) }
        try network.heal("w1")
        let state = try await cluster.waitForEnd(id, timeout: 300)
        XCTAssertEqual(state, .success)
        // Whatever the cut-off worker still runs shows in the markers within a few beats.
        try await Task.sleep(for: .seconds(3))
        assertEveryTaskRanExactlyOnceAlone([id], tasks: names)
    }

    /// A worker frozen (SIGSTOP, the worker process alone: its task supervisors and tasks go on)
    /// for three sessions: its task is failed over, and must not be running beside the new attempt.
    func testFrozenWorkerTaskDoesNotRunBesideItsFailover() async throws {
        try startMaster(on: "m1", port: 7121)
        let w1 = "\(network["w1"].address):7221"
        let frozen = try startWorker(on: "w1", port: 7221)
        try await waitForRegistration(worker: w1)
        let id = try submit("frozen-worker", [witnessTask("t", beats: 30)])
        try await eventually("the task runs on w1") { self.runs().count == 1 }
        try startWorker(on: "w2", port: 7222)
        try await waitForRegistration(worker: "\(network["w2"].address):7222")

        kill(frozen.processIdentifier, SIGSTOP)
        try await Task.sleep(for: .seconds(12))
        kill(frozen.processIdentifier, SIGCONT)
        let state = try await cluster.waitForEnd(id, timeout: 300)
        XCTAssertEqual(state, .success)
        try await Task.sleep(for: .seconds(3))
        assertEveryTaskRanExactlyOnceAlone([id], tasks: ["t"])
    }
}

/// Issue 23, item 6: the partition tests with masters and workers on hosts of their own and the
/// database on a PostgreSQL server on the bridge: two masters on two hosts share the work, a
/// master host cut off for longer than its session is adopted from and writes nothing after the
/// adoption (its writes are witnessed by the server, by client address), the adopter killed with
/// kill -9, a worker host cut off or frozen: every task once, never beside itself.
final class PostgresPartitionTests: PartitionTests {
    override class var onPostgreSQL: Bool { true }

    /// The rig: the daemons get the PostgreSQL server on the bridge (the other tests show the
    /// hosts' daemons reach it), and a tool reaches it there.
    func testTheDatabaseIsThePostgreSQLServerOnTheBridge() throws {
        XCTAssertEqual(cluster.environment["DS_DB"], cluster.postgres?.url)
        XCTAssertEqual(cluster.postgres?.host, network.bridgeAddress)
        let run = try cluster.run("ds-pool", ["set", "bridge", "1"])
        XCTAssertEqual(run.status, 0, "ds-pool set: \(run.stderr)")
    }
}
