import Foundation
import Shared
import XCTest

/// The worker's log server, `ds-logs`, log retention, and the daemons' `/metrics` and `/healthz`,
/// against real daemons, ZooKeeper and SQLite.
final class LogsAndMetricsTests: ClusterTestCase {
    var gates: String { cluster.directory.appendingPathComponent("gates").path }

    override func setUpWithError() throws {
        try super.setUpWithError()
        try FileManager.default.createDirectory(atPath: gates, withIntermediateDirectories: true)
    }

    /// A shell line that waits for the gate file `name` (made by `open`).
    func wait(_ name: String) -> String { "while [ ! -e \(gates)/\(name) ]; do sleep 0.05; done" }
    func open(_ name: String) { FileManager.default.createFile(atPath: "\(gates)/\(name)", contents: nil) }

    /// A tool left running, its stdout and stderr in files.
    struct Background {
        let process: Process
        let out: String
        let err: String
        var stdout: String { (try? String(contentsOfFile: out, encoding: .utf8)) ?? "" }
        var stderr: String { (try? String(contentsOfFile: err, encoding: .utf8)) ?? "" }
    }

    func background(_ tool: String, _ arguments: [String]) throws -> Background {
        let p = Process()
        p.executableURL = Binaries.url(tool)
        p.arguments = arguments
        p.environment = cluster.environment
        let id = UUID().uuidString
        let out = cluster.directory.appendingPathComponent("bg-\(id).out").path
        let err = cluster.directory.appendingPathComponent("bg-\(id).err").path
        FileManager.default.createFile(atPath: out, contents: nil)
        FileManager.default.createFile(atPath: err, contents: nil)
        p.standardOutput = FileHandle(forWritingAtPath: out)
        p.standardError = FileHandle(forWritingAtPath: err)
        p.standardInput = FileHandle.nullDevice
        try p.run()
        addTeardownBlock { if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() } }
        return Background(process: p, out: out, err: err)
    }

    // MARK: ds-logs

    /// `ds-logs -f` prints each line while the task still runs (the task waits for the test between
    /// lines), from a worker whose log server listens on a port of its own; it exits with the
    /// task's outcome, and the worker counts the requests it served.
    func testFollowPrintsLinesAsTheyComeAndExitsWithTheOutcome() async throws {
        try cluster.startMaster()
        try cluster.startWorker(["--listen", "127.0.0.1:0"])
        let address = try await listenAddress(under: cluster.paths.workerGroup("default"))
        let id = try cluster.submit("""
            {"name":"lines","tasks":[
              {"name":"talk","command":"echo line 1; \(wait("g1")); echo line 2; \(wait("g2")); printf 'no newline'; exit 3"},
              {"name":"fine","command":"\(wait("g3")); for i in 1 2 3 4 5; do echo ok $i; done"}]}
            """)
        let talk = try await taskID(id, "talk")
        let follow = try background("ds-logs", ["-f", String(talk)])
        try await eventually("line 1 is printed while the task waits") { follow.stdout == "line 1\n" }
        XCTAssertTrue(follow.process.isRunning)
        // Its /running node names the log server.
        let zk = try await cluster.client()
        let running = try WireJSON.decode(RunningTask.self, try await zk.getData(cluster.paths.running(talk)).0)
        zk.close()
        XCTAssertEqual(running.listen, address)
        open("g1")
        try await eventually("line 2 follows") { follow.stdout == "line 1\nline 2\n" }
        XCTAssertTrue(follow.process.isRunning, "the task still runs")
        open("g2")
        XCTAssertEqual(cluster.exitStatus(of: follow.process), 1, "the task failed: " + follow.stderr)
        XCTAssertEqual(follow.stdout, "line 1\nline 2\nno newline")
        XCTAssertTrue(follow.stderr.contains("ended FAILURE: exited with status 3"), follow.stderr)

        let fine = try await taskID(id, "fine")
        let servedBefore = try await served(address)
        let followFine = try background("ds-logs", ["-f", "-n", "2", String(fine)])
        // Its two requests (what is there, then what follows) have reached the worker: only then may
        // the task print.
        try await eventually("ds-logs follows 'fine'") { try await self.served(address) >= servedBefore + 2 }
        open("g3")
        XCTAssertEqual(cluster.exitStatus(of: followFine.process), 0, followFine.stderr)
        XCTAssertEqual(followFine.stdout, "ok 1\nok 2\nok 3\nok 4\nok 5\n", "-n 2 of nothing yet, then every new line")
        let tail = try cluster.run("ds-logs", ["-n", "2", String(fine)])
        XCTAssertEqual(tail.status, 0, tail.stderr)
        XCTAssertEqual(tail.stdout, "ok 4\nok 5\n")
        XCTAssertEqual(try cluster.run("ds-logs", ["-n", "0", String(fine)]).stdout, "")

        let servedAfter = try await served(address)
        XCTAssertEqual(servedAfter, 6, "every ds-logs above read through the log server: two requests per -f (what is there, then what follows), one per plain read")
    }

    func served(_ address: String) async throws -> Double {
        PrometheusText.parse(try await get(address, "/metrics").body)["ds_worker_log_requests_served_total"] ?? 0
    }

    /// A worker stopped gracefully while `ds-logs -f` follows one of its tasks: the task finishes
    /// within the grace period, and the follower gets the whole log and the outcome before the
    /// worker's server closes.
    func testFollowOutlastsTheWorkersGracefulStop() async throws {
        try cluster.startMaster()
        let worker = try cluster.startWorker(["--listen", "127.0.0.1:0"])
        let id = try cluster.submit(#"{"name":"graceful","tasks":[{"name":"a","command":"echo before; \#(wait("go")); echo after"}]}"#)
        let a = try await taskID(id, "a")
        let follow = try background("ds-logs", ["-f", String(a)])
        try await eventually("the first line is followed") { follow.stdout == "before\n" }
        kill(worker.processIdentifier, SIGTERM)
        try await Task.sleep(for: .milliseconds(300))
        XCTAssertTrue(worker.isRunning, "the worker waits for its task")
        open("go")
        XCTAssertEqual(cluster.exitStatus(of: follow.process), 0, follow.stderr)
        XCTAssertEqual(follow.stdout, "before\nafter\n")
        XCTAssertEqual(cluster.exitStatus(of: worker), 0)
    }

    /// `--instance -f` follows every task side by side, each line prefixed by its task name: both
    /// tasks' first lines are printed while both still run.
    func testInstanceFollowInterleavesTasks() async throws {
        try cluster.startMaster()
        try cluster.startWorker(slots: 2, ["--listen", "127.0.0.1:0"])
        let id = try cluster.submit("""
            {"name":"pair","tasks":[
              {"name":"a","command":"echo a1; \(wait("go")); echo a2"},
              {"name":"bravo","command":"echo b1; \(wait("go")); echo b2"},
              {"name":"after","deps":["a","bravo"],"command":"echo done"}]}
            """)
        let follow = try background("ds-logs", ["-f", "--instance", String(id)])
        try await eventually("both first lines, while both tasks wait") {
            let lines = Set(follow.stdout.split(separator: "\n"))
            return lines.contains("a     | a1") && lines.contains("bravo | b1")
        }
        open("go")
        XCTAssertEqual(cluster.exitStatus(of: follow.process), 0, follow.stderr)
        let lines = follow.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(Set(lines), ["a     | a1", "a     | a2", "bravo | b1", "bravo | b2", "after | done"], follow.stdout)
        XCTAssertLessThan(lines.firstIndex(of: "a     | a1")!, lines.firstIndex(of: "a     | a2")!)
        XCTAssertLessThan(lines.firstIndex(of: "bravo | b1")!, lines.firstIndex(of: "bravo | b2")!)
        XCTAssertEqual(lines.last, "after | done")
        // Without -f: each task whole, in attempt order.
        let all = try cluster.run("ds-logs", ["--instance", String(id)])
        XCTAssertEqual(all.status, 0, all.stderr)
        XCTAssertEqual(all.stdout, "a     | a1\na     | a2\nbravo | b1\nbravo | b2\nafter | done\n")
    }

    /// A `${setValue(...)}` whose value spans lines is ignored with a `[ds]` line in the task's
    /// log (it was ignored without a word), and the task still succeeds.
    func testAMultiLineSetValueIsToldInTheLog() async throws {
        try cluster.startMaster()
        try cluster.startWorker()
        let id = try cluster.submit(#"{"name":"multi","params":{"k":"0"},"tasks":[{"name":"t","command":"printf '${setValue(k=one\\ntwo)}\\n'"}]}"#)
        let state = try await cluster.waitForEnd(id)
        XCTAssertEqual(state, .success)
        let log = try cluster.run("ds-logs", ["--instance", String(id)])
        XCTAssertEqual(log.status, 0, log.stderr)
        XCTAssertTrue(log.stdout.contains("[ds] ignored 1 ${setValue(...)} not closed on its line (the first: 'k=one')"), log.stdout)
    }

    /// An ad-hoc task pushed to the queue has a log `ds-logs` prints. A failed task's log command
    /// is printed by `ds-submit --wait` and `ds-instance show`. With its worker stopped, the log is
    /// read from the file on this machine; with the file gone too, exit 69 names the worker.
    func testPushedTaskLogsHintsAndAGoneWorker() async throws {
        try cluster.startMaster()
        let worker = try cluster.startWorker(port: 7777, ["--listen", "127.0.0.1:0"])
        let push = try cluster.run("ds-queue", ["push", "--json", "--command", "echo pushed $GREETING", "--env", "GREETING=hi"])
        XCTAssertEqual(push.status, 0, push.stderr)
        struct Pushed: Decodable { var instance_id: Int64; var task_instance_id: Int64 }
        let pushed = try JSONDecoder().decode(Pushed.self, from: Data(push.stdout.utf8))
        let v1 = try await cluster.waitForEnd(pushed.instance_id)
        XCTAssertEqual(v1, .success)
        let pushedLog = try cluster.run("ds-logs", [String(pushed.task_instance_id)])
        XCTAssertEqual(pushedLog.status, 0, pushedLog.stderr)
        XCTAssertEqual(pushedLog.stdout, "pushed hi\n")
        // A task no worker can take has no log yet, and says so.
        let queued = try cluster.run("ds-queue", ["push", "--json", "--group", "nobody", "--command", "true"])
        let waiting = try JSONDecoder().decode(Pushed.self, from: Data(queued.stdout.utf8))
        try await eventually("the queued task has its attempt") { try await self.cluster.store().attemptRecord(waiting.task_instance_id) != nil }
        let notYet = try cluster.run("ds-logs", [String(waiting.task_instance_id)])
        XCTAssertEqual(notYet.status, 0, notYet.stderr)
        XCTAssertEqual(notYet.stdout, "")
        XCTAssertTrue(notYet.stderr.contains("has not started"), notYet.stderr)

        let file = try cluster.workflowFile(#"{"name":"bad","tasks":[{"name":"a","command":"echo fine"},{"name":"b","deps":["a"],"command":"echo broken >&2; exit 7"}]}"#)
        let wait = try cluster.run("ds-submit", [file, "--wait"])
        XCTAssertEqual(wait.status, 1)
        let instances = try await cluster.store().instances(InstanceQuery())
        let instance = try XCTUnwrap(instances.first { $0.name == "bad" }?.id)
        let b = try await taskID(instance, "b")
        XCTAssertTrue(wait.stderr.contains("task 'b' failed; its log: ds-logs \(b)"), wait.stderr)
        let show = try cluster.run("ds-instance", ["show", String(instance)])
        XCTAssertTrue(show.stdout.contains("task 'b' failed; its log: ds-logs \(b)"), show.stdout)
        XCTAssertFalse(show.stdout.contains("task 'a'"), show.stdout)
        let log = try cluster.run("ds-logs", [String(b)])
        XCTAssertEqual(log.stdout, "broken\n", "stderr is in the log too")

        // The worker stops: the file is on this machine.
        kill(worker.processIdentifier, SIGTERM)
        XCTAssertEqual(cluster.exitStatus(of: worker), 0)
        let local = try cluster.run("ds-logs", [String(b)])
        XCTAssertEqual(local.status, 0, local.stderr)
        XCTAssertEqual(local.stdout, "broken\n")
        // And not here either: unreachable, naming the worker.
        try FileManager.default.moveItem(atPath: cluster.logDirectory, toPath: cluster.logDirectory + ".moved")
        let gone = try cluster.run("ds-logs", [String(b)])
        XCTAssertEqual(gone.status, 69, gone.stderr)
        XCTAssertTrue(gone.stderr.contains("worker 127.0.0.1:7777"), gone.stderr)
        let bad = try cluster.run("ds-logs", ["123456"])
        XCTAssertEqual(bad.status, 65, bad.stderr)
        for usage in [[String](), ["0"], ["-n", "-1", "1"], ["1", "--instance", "1"], ["x"]] {
            XCTAssertEqual(try cluster.run("ds-logs", usage).status, 64, "\(usage)")
        }
    }

    // MARK: The log server

    /// Traversal, encoded traversal, absolute paths, unknown ids and links planted in the log
    /// folder all get 404: the server finds a log by id and never follows a path from a request.
    func testLogServerServesOnlyItsOwnLogsById() async throws {
        try cluster.startMaster()
        try cluster.startWorker(port: 7781, ["--listen", "127.0.0.1:0"])
        let logs = cluster.logDirectory + "/127.0.0.1:7781"
        let address = try await listenAddress(under: cluster.paths.workerGroup("default"))
        let id = try cluster.submit(#"{"name":"one","tasks":[{"name":"a","command":"echo the log"},{"name":"b","command":"echo other"}]}"#)
        let v2 = try await cluster.waitForEnd(id)
        XCTAssertEqual(v2, .success)
        let a = try await taskID(id, "a"), b = try await taskID(id, "b")
        let secret = cluster.directory.appendingPathComponent("secret.txt").path
        try "do not serve\n".write(toFile: secret, atomically: true, encoding: .utf8)
        let logPath = "\(logs)/\(id)/\(a).log"

        let ok = try await get(address, "/logs/\(a)")
        XCTAssertEqual(ok.status, 200)
        XCTAssertEqual(ok.body, "the log\n")
        let v3 = try await get(address, "/logs/\(a)?offset=4").body
        XCTAssertEqual(v3, "log\n")
        let v4 = try await get(address, "/logs/\(a)?offset=999").body
        XCTAssertEqual(v4, "")
        for target in ["/logs/\(a)?offset=-1", "/logs/\(a)?offset=x", "/logs/\(a)?follow=yes"] {
            let v5 = try await get(address, target).status
            XCTAssertEqual(v5, 400, target)
        }
        let refused = [
            "/logs/../../../../etc/passwd", "/logs/..%2f..%2f..%2fetc%2fpasswd", "/logs/%2e%2e/%2e%2e/etc/passwd",
            "/logs/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", "/logs/\(a)/../\(a)", "/logs/\(a)/", "/logs//etc/passwd", "/logs/" + logPath,
            "/logs/" + secret, "/logs/\(id)/\(a).log", "/logs/\(a).log", "/logs/-\(a)", "/logs/+\(a)", "/logs/0x1", "/logs/\(a)%00",
            "/logs/\(a)%20", "/logs/99999999", "/logs/99999999999999999999999", "/logs/", "/logs", "/etc/passwd", "//etc/passwd",
            "/../etc/passwd", "/", "/healthz/../logs/\(a)",
        ]
        for target in refused {
            let answer = try await get(address, target)
            XCTAssertEqual(answer.status, 404, "\(target): \(answer.body)")
            XCTAssertFalse(answer.body.contains("root:") || answer.body.contains("do not serve"), target)
        }
        // A link planted in place of a log, and an instance folder replaced by a link: not followed.
        try FileManager.default.removeItem(atPath: logPath)
        try FileManager.default.createSymbolicLink(atPath: logPath, withDestinationPath: secret)
        let v6 = try await get(address, "/logs/\(a)").status
        XCTAssertEqual(v6, 404)
        let folder = "\(logs)/\(id)"
        try FileManager.default.moveItem(atPath: folder, toPath: folder + ".real")
        try FileManager.default.createDirectory(atPath: cluster.directory.appendingPathComponent("elsewhere").path, withIntermediateDirectories: true)
        try "planted\n".write(toFile: cluster.directory.appendingPathComponent("elsewhere/\(b).log").path, atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: folder, withDestinationPath: cluster.directory.appendingPathComponent("elsewhere").path)
        let v7 = try await get(address, "/logs/\(b)").status
        XCTAssertEqual(v7, 404)
        let v8 = try await get(address, "/healthz").status
        XCTAssertEqual(v8, 200)
        // A client that starts a request and never finishes it is cut off, and holds nothing up.
        let stalled = try rawConnect(address)
        defer { close(stalled) }
        _ = "GET /logs/1 HTTP/1.1\r\nHost: x\r\n".withCString { send(stalled, $0, strlen($0), 0) }
        let meanwhile = try await get(address, "/healthz")
        XCTAssertEqual(meanwhile.status, 200)
        var byte: UInt8 = 0
        var timeout = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(stalled, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        XCTAssertEqual(recv(stalled, &byte, 1, 0), 0, "the server closes a request left unfinished (after 10 s)")
    }

    /// Requests that must cost the worker nothing lasting: HEAD (no body read, the file still
    /// closed), clients that never read a 20 MB log (memory stays bounded), an HTTP/1.0 client (no
    /// chunks); and a `ds-logs` whose reader goes away dies of SIGPIPE, quietly, like any filter.
    func testLogServerAndDsLogsUnderAbuse() async throws {
        try cluster.startMaster()
        let worker = try cluster.startWorker(["--listen", "127.0.0.1:0"])
        let address = try await listenAddress(under: cluster.paths.workerGroup("default"))
        let id = try cluster.submit(#"{"name":"big","tasks":[{"name":"a","command":"head -c 20000000 /dev/zero | tr '\\0' x; echo; echo last line"}]}"#)
        let ended = try await cluster.waitForEnd(id)
        XCTAssertEqual(ended, .success)
        let a = try await taskID(id, "a")
        let pid = worker.processIdentifier
        func openFiles() -> Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1 }
        func residentKiB() -> Int {
            let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
            let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
            return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
        }
        func exchange(_ request: String, read: Bool = true) throws -> (fd: Int32, answer: String) {
            let fd = try rawConnect(address)
            _ = request.withCString { send(fd, $0, strlen($0), 0) }
            guard read else { return (fd, "") }
            var answer = [UInt8]()
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while answer.count < 1 << 16 {
                let n = recv(fd, &buffer, buffer.count, 0)
                if n <= 0 { break }
                answer += buffer[0..<n]
            }
            close(fd)
            return (fd, String(decoding: answer, as: UTF8.self))
        }
        let filesBefore = openFiles()
        for _ in 0..<100 { _ = try exchange("HEAD /logs/\(a) HTTP/1.1\r\nHost: x\r\n\r\n") }
        try await eventually("HEAD requests leave no file open") { openFiles() <= filesBefore + 5 }

        let old = try exchange("GET /logs/\(a)?offset=20000000 HTTP/1.0\r\n\r\n").answer
        XCTAssertTrue(old.hasPrefix("HTTP/1.0 200"), old)
        XCTAssertFalse(old.lowercased().contains("chunked"), old)
        XCTAssertTrue(old.hasSuffix("\r\n\r\n\nlast line\n"), old)

        // Twenty clients ask for the 20 MB log and read nothing: the worker holds about one piece
        // per client, not the log (unbounded, this was 12 MB per client).
        let rssBefore = residentKiB()
        let servedBefore = try await served(address)
        var silent: [Int32] = []
        for _ in 0..<20 {
            let fd = try rawConnect(address)
            var small: Int32 = 4096
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
            _ = "GET /logs/\(a) HTTP/1.1\r\nHost: x\r\n\r\n".withCString { send(fd, $0, strlen($0), 0) }
            silent.append(fd)
        }
        // Every request has reached the worker; then it has had time to push (unbounded, it would).
        try await eventually("the worker answers all twenty") { try await self.served(address) >= servedBefore + 20 }
        var grown = 0
        for _ in 0..<30 {
            try await Task.sleep(for: .milliseconds(100))
            grown = max(grown, residentKiB() - rssBefore)
        }
        for fd in silent { close(fd) }
        XCTAssertLessThan(grown, 64 << 10, "RSS grew \(grown) KiB for 20 clients that do not read")
        let health = try await get(address, "/healthz")
        XCTAssertEqual(health.status, 200)

        // ds-logs -n and a reader that leaves.
        let tail = try cluster.run("ds-logs", ["-n", "1", String(a)])
        XCTAssertEqual(tail.stdout, "last line\n")
        let piped = try cluster.run("/bin/bash", ["-c", "set -o pipefail; \"$0\" \(a) | head -c 10 >/dev/null; echo status $?",
                                                   Binaries.url("ds-logs").path])
        XCTAssertEqual(piped.stdout, "status 141\n", "killed by SIGPIPE (128 + 13)")
        XCTAssertFalse(piped.stderr.contains("Fatal error"), piped.stderr)
    }

    /// Logs last written longer ago than `--log-retention` are removed: at the start (old files
    /// left from before) and while the worker runs; `0` keeps them.
    func testLogRetentionRemovesOldLogs() async throws {
        // The worker's own subfolder (named by its identity); another worker's beside it.
        let logs = cluster.logDirectory + "/127.0.0.1:7782"
        let old = "\(logs)/900/901.log", fresh = "\(logs)/902/903.log", stranger = "\(logs)/notes.txt"
        let othersOld = "\(cluster.logDirectory)/127.0.0.1:7783/900/904.log"
        for path in [old, fresh, stranger, othersOld] {
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try "x\n".write(toFile: path, atomically: true, encoding: .utf8)
        }
        let tenDaysAgo = Date().addingTimeInterval(-10 * 86_400)
        try FileManager.default.setAttributes([.modificationDate: tenDaysAgo], ofItemAtPath: old)
        try FileManager.default.setAttributes([.modificationDate: tenDaysAgo], ofItemAtPath: stranger)
        try FileManager.default.setAttributes([.modificationDate: tenDaysAgo], ofItemAtPath: othersOld)
        let keeper = try cluster.startWorker(port: 7782, ["--log-retention", "0"])
        try await eventually("the worker registered") {
            let zk = try await self.cluster.client()
            defer { zk.close() }
            return try await !zk.childrenIfPresent(self.cluster.paths.workerGroup("default")).isEmpty
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: old), "0 keeps every log")
        kill(keeper.processIdentifier, SIGTERM)
        XCTAssertEqual(cluster.exitStatus(of: keeper), 0)

        try cluster.startMaster()
        try cluster.startWorker(port: 7782, ["--log-retention", "2s"])
        try await eventually("the ten-day-old log and its folder are removed at the start") {
            !FileManager.default.fileExists(atPath: old) && !FileManager.default.fileExists(atPath: "\(logs)/900")
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: stranger), "files that are no task log are left alone")
        XCTAssertTrue(FileManager.default.fileExists(atPath: othersOld), "another worker's logs are its own business")
        // A task's own log goes once it is older than the retention, never while it is written.
        let id = try cluster.submit(#"{"name":"r","tasks":[{"name":"a","command":"echo 1; sleep 5; echo 2"}]}"#)
        let v9 = try await cluster.waitForEnd(id)
        XCTAssertEqual(v9, .success)
        let a = try await taskID(id, "a")
        let v10 = try await cluster.store().attemptRecord(a)?.state
        XCTAssertEqual(v10, .success)
        try await eventually("the finished task's log is removed after 2 s") {
            !FileManager.default.fileExists(atPath: "\(logs)/\(id)/\(a).log")
                && !FileManager.default.fileExists(atPath: fresh)
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: stranger))
        // A retry after the sweep removed its instance's folder makes it again.
        let retried = try cluster.submit(#"{"name":"again","tasks":[{"name":"r","retries":1,"retry_interval":"15s","command":"echo attempt $DS_TASK_ATTEMPT; [ $DS_TASK_ATTEMPT -ge 2 ]"}]}"#)
        let first = try await taskID(retried, "r")
        try await eventually("the first attempt's folder is swept") {
            let row = try await self.cluster.store().attemptRecord(first)
            return row?.state == .failure && !FileManager.default.fileExists(atPath: "\(logs)/\(retried)")
        }
        let attemptsWhenSwept = try await cluster.store().taskAttempts(of: retried).count
        XCTAssertEqual(attemptsWhenSwept, 1, "the retry comes after the sweep, or this proves nothing")
        let again = try await cluster.waitForEnd(retried)
        XCTAssertEqual(again, .success, cluster.daemonLogs())
        for bad in ["-1s", "x", "4000d", "0.5s", "1e-300s"] {
            let run = try cluster.run("ds-worker", ["--log-retention", bad])
            XCTAssertEqual(run.status, 64, "\(bad): \(run.stderr)")
        }
    }

    // MARK: Metrics and health

    /// Both daemons' `/metrics` parse with the Prometheus project's Python parser, and their
    /// counters move as tasks run, fail and fail over; `/healthz` answers ok.
    func testMetricsParseWithPrometheusClientAndMove() async throws {
        try cluster.startMaster(["--listen", "127.0.0.1:0"])
        let first = try cluster.startWorker(slots: 1, ["--listen", "127.0.0.1:0"])
        let master = try await listenAddress(under: cluster.paths.masters)
        let worker = try await listenAddress(under: cluster.paths.workerGroup("default"))
        for address in [master, worker] {
            let health = try await get(address, "/healthz")
            XCTAssertEqual(health.status, 200)
            XCTAssertEqual(health.body, "ok\n")
            let v11 = try await get(address, "/nothing").status
            XCTAssertEqual(v11, 404)
        }
        let masterBefore = try await scrape(master), workerBefore = try await scrape(worker)
        XCTAssertEqual(masterBefore["ds_zookeeper_connected"], 1)
        XCTAssertEqual(workerBefore["ds_worker_slots"], 1)
        XCTAssertEqual(masterBefore["ds_master_tasks_dispatched_total"] ?? 0, 0)

        let id = try cluster.submit("""
            {"name":"counted","failure_strategy":"CONTINUE","tasks":[
              {"name":"a","command":"true"},{"name":"b","deps":["a"],"command":"exit 1"},
              {"name":"c","deps":["a"],"command":"true"},
              {"name":"d","deps":["c"],"command":"echo d-start; \(wait("d")); echo d-end"}]}
            """)
        try await eventually("d runs") {
            try await self.cluster.store().taskAttempts(of: id).contains { $0.taskName == "d" && $0.state == .running }
        }
        // Followers of the instance, and of d's attempt that is about to be lost with its worker.
        let lostD = try await taskID(id, "d")
        let followLost = try background("ds-logs", ["-f", String(lostD)])
        let followAll = try background("ds-logs", ["-f", "--instance", String(id)])
        try await eventually("both follow d") { followLost.stdout == "d-start\n" && followAll.stdout.contains("d | d-start") }
        let busy = try await scrape(worker)
        XCTAssertEqual(busy["ds_worker_slots_in_use"], 1)
        let v12 = try await scrape(master)["ds_master_active_instances"]
        XCTAssertEqual(v12, 1)
        // Its worker dies: d fails over to a new worker.
        cluster.kill9(first)
        let second = try cluster.startWorker(slots: 1, ["--listen", "127.0.0.1:0"])
        _ = second
        try await eventually("d runs again") {
            try await self.cluster.store().taskAttempts(of: id).filter { $0.taskName == "d" }.count == 2
        }
        open("d")
        let v13 = try await cluster.waitForEnd(id)
        XCTAssertEqual(v13, .failure)
        // The lost attempt keeps its worker and log (recorded when it was claimed); its follower read
        // the rest from the file here and ends with its state; the instance's follower saw both.
        let lost = try await cluster.store().attemptRecord(lostD)
        XCTAssertEqual(lost?.state, .needFaultTolerance)
        XCTAssertNotNil(lost?.host)
        XCTAssertEqual(cluster.lines(try XCTUnwrap(lost?.logPath)), ["d-start"])
        XCTAssertEqual(cluster.exitStatus(of: followLost.process), 1, followLost.stderr)
        XCTAssertEqual(followLost.stdout, "d-start\n")
        XCTAssertTrue(followLost.stderr.contains("NEED_FAULT_TOLERANCE"), followLost.stderr)
        XCTAssertEqual(cluster.exitStatus(of: followAll.process), 1, "the instance failed (b): " + followAll.stderr)
        // Each attempt labelled apart: the failover's new attempt is d#2, not d again.
        let dLines = followAll.stdout.split(separator: "\n").filter { $0.hasPrefix("d ") || $0.hasPrefix("d#") }
        XCTAssertEqual(dLines, ["d | d-start", "d#2 | d-start", "d#2 | d-end"], followAll.stdout)
        XCTAssertFalse(followAll.stderr.contains("unreachable") || followAll.stderr.contains("lost the connection"), followAll.stderr)
        let after = try await scrape(master)
        XCTAssertEqual(after["ds_master_tasks_dispatched_total"], 5, "a, b, c, d and d again")
        XCTAssertEqual(after["ds_master_tasks_succeeded_total"], 3)
        XCTAssertEqual(after["ds_master_tasks_failed_total"], 1)
        XCTAssertEqual(after["ds_master_tasks_failed_over_total"], 1)
        XCTAssertEqual(after["ds_master_dispatch_latency_seconds_count"], 5)
        XCTAssertEqual(after["ds_master_command_claim_latency_seconds_count"], 1)
        XCTAssertEqual(after["ds_master_active_instances"], 0)
        XCTAssertEqual(after["ds_queue_window_depth{group=\"default\"}"], 0)
        XCTAssertEqual(after["ds_master_backlog{group=\"default\"}"], 0)
        XCTAssertGreaterThan(after["ds_zookeeper_requests_total{kind=\"multi\"}"] ?? 0, masterBefore["ds_zookeeper_requests_total{kind=\"multi\"}"] ?? 0)
        let newWorker = try await listenAddress(under: cluster.paths.workerGroup("default"))
        let w = try await scrape(newWorker)
        XCTAssertEqual(w["ds_worker_tasks_started_total"], 1)
        XCTAssertEqual(w["ds_worker_tasks_finished_total{state=\"success\"}"], 1)
        XCTAssertEqual(w["ds_worker_claim_latency_seconds_count"], 1)
        XCTAssertEqual(w["ds_worker_slots_in_use"], 0)
    }

    /// Scrapes `/metrics` and parses it with `prometheus_client`'s text parser (Debian's
    /// python3-prometheus-client, installed by scripts/install-deps.sh): `name{labels}` → value.
    func scrape(_ address: String) async throws -> [String: Double] {
        let text = try await get(address, "/metrics")
        XCTAssertEqual(text.status, 200)
        let script = """
            import json, sys
            from prometheus_client.parser import text_string_to_metric_families
            out = {}
            for family in text_string_to_metric_families(sys.stdin.read()):
                for s in family.samples:
                    labels = ",".join('%s="%s"' % kv for kv in sorted(s.labels.items()))
                    out[s.name + ("{" + labels + "}" if labels else "")] = s.value
            print(json.dumps(out))
            """
        let run = try cluster.run("/usr/bin/python3", ["-c", script], stdin: text.body)
        XCTAssertEqual(run.status, 0, "prometheus_client refused the text: \(run.stderr)\n\(text.body)")
        let parsed = try JSONDecoder().decode([String: Double].self, from: Data(run.stdout.utf8))
        // The parser and our quick reading agree on every plain sample.
        for (name, value) in PrometheusText.parse(text.body) { XCTAssertEqual(parsed[name], value, name) }
        return parsed
    }
}

/// The samples of a Prometheus text page without labels, read naively (to check the parser's reading).
enum PrometheusText {
    static func parse(_ text: String) -> [String: Double] {
        var samples: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") && !line.contains("{") {
            let parts = line.split(separator: " ")
            if parts.count == 2, let v = Double(parts[1]) { samples[String(parts[0])] = v }
        }
        return samples
    }
}
