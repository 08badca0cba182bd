import Foundation

/// What `ds-submit` was asked to do.
public struct SubmitRequest: Sendable {
    public var input: String
    public var params: [String: String] = [:]
    public var priority: Priority?
    public var name: String?
    public var dryRun = false
    /// With `dryRun`: print the definition as Graphviz DOT instead of JSON.
    public var dot = false
    public var wait = false
    /// Store the definition only (for schedules); no instance starts.
    public var noStart = false
    public var json = false
    /// The zone the instance's dates are read in (--tz); nil: TZ, else the local zone. Stored
    /// with the instance, so that every master reads them alike.
    public var timeZone: String?
    /// Run an earlier stored version whose definition is the same, not only the latest (ds-queue
    /// push: its ad-hoc workflows change with every command, and come back).
    public var reuseAnyVersion = false
    public init(input: String) { self.input = input }
}

/// `ds-submit`: validate, store a versioned definition and a START command, optionally wait.
public enum Submitter {
    /// Parses `k=v`; the key may not be empty.
    public static func parseParam(_ text: String) -> (String, String)? {
        guard let eq = text.firstIndex(of: "="), eq != text.startIndex else { return nil }
        return (String(text[..<eq]), String(text[text.index(after: eq)...]))
    }

    /// The workflow file's bytes, at most one byte past `Limits.maxDefinitionBytes` (the parser
    /// then says it is too large): a huge file or an endless stream is never read whole.
    public static func readInput(_ input: String) throws -> Data {
        let handle: FileHandle
        if input == "-" {
            handle = FileHandle.standardInput
        } else {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: input, isDirectory: &isFolder) else { throw InputError.missingFile(input) }
            if isFolder.boolValue { throw InputError.unreadable(input, "it is a folder; pass a workflow JSON file") }
            guard let h = FileHandle(forReadingAtPath: input) else { throw InputError.unreadable(input, String(cString: strerror(errno))) }
            handle = h
        }
        var data = Data()
        do {
            while data.count <= Limits.maxDefinitionBytes, let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
                data.append(chunk)
            }
        } catch {
            throw InputError.unreadable(input, (error as NSError).localizedFailureReason ?? "\(error.localizedDescription)")
        }
        return data
    }

    /// Checks the overrides, and resolves every task's command and environment as a master
    /// will (with the clock of now): a parameter or command that would pass a bound of `Limits`
    /// once resolved is refused here, not left to fail at run time. Outputs of upstream tasks are
    /// unknown yet; a master checks the final item again before it writes it.
    public static func checkResolution(_ definition: WorkflowDefinition, overrides: [String: String], source: String) throws {
        var problems: [ValidationProblem] = []
        if overrides.count > Limits.maxEntries {
            problems.append(ValidationProblem(field: "--param", message: "\(overrides.count) overrides; the limit is \(Limits.maxEntries)"))
        }
        for (k, v) in overrides.sorted(by: { $0.key < $1.key }) {
            if let why = Limits.keyProblem(k) { problems.append(ValidationProblem(field: "--param", message: "name \(Limits.quoted(k)) \(why)")) }
            if let why = Limits.valueProblem(v) { problems.append(ValidationProblem(field: "--param", message: "value of \(Limits.quoted(k)) \(why)")) }
        }
        guard problems.isEmpty else { throw WorkflowValidationError(source: source, problems: problems) }
        let resolver = ParameterResolver(runTime: Date())
        let values: [String: String]
        do {
            values = try resolver.instanceParameters(workflow: definition.params, overrides: overrides)
        } catch {
            throw WorkflowValidationError(source: source, problems: [ValidationProblem(field: "params", message: "\(error)")])
        }
        for task in definition.tasks {
            let label = Limits.quoted(task.name)
            do {
                let (command, env) = try resolver.resolve(task, values)
                let item = WireJSON.encode(QueuedTask(taskInstanceId: Int64.max, workflowInstanceId: Int64.max, workflowName: definition.name,
                                                      taskName: task.name, attempt: 100, command: command, env: env, timeout: task.timeout,
                                                      timeoutStrategy: task.timeoutStrategy, master: String(repeating: "m", count: 255),
                                                      tenant: definition.tenant(of: task), outputs: definition.declaredOutputs(of: task)))
                if item.count > Limits.maxQueueItemBytes {
                    let envBytes = env.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count }
                    problems.append(ValidationProblem(task: label, field: envBytes > command.utf8.count ? "env" : "command", message:
                        "its command and environment, resolved, make a queue item of \(Limits.size(item.count)); the limit is \(Limits.size(Limits.maxQueueItemBytes))"))
                }
            } catch {
                problems.append(ValidationProblem(task: label, field: "command", message: "\(error)"))
            }
        }
        guard problems.isEmpty else { throw WorkflowValidationError(source: source, problems: problems) }
    }

    /// Validates everything before any connection is made: bad input never touches the database or ZooKeeper.
    public static func prepare(_ request: SubmitRequest) throws -> WorkflowDefinition {
        var definition = try WorkflowParser.parse(try readInput(request.input), source: request.input)
        if let name = request.name {
            if let why = Limits.nameProblem(name) {
                throw WorkflowValidationError(source: request.input, problems: [
                    ValidationProblem(task: nil, field: "--name", message: "\(Limits.quoted(name)) \(why)")])
            }
            definition.name = name
        }
        if let p = request.priority { definition.priority = p }
        try checkResolution(definition, overrides: request.params, source: request.input)
        return definition
    }

    /// A pool that does not exist would hold its tasks for ever: refused (exit 65), with what to do.
    static func checkPools(_ definition: WorkflowDefinition, _ request: SubmitRequest, _ store: Store) async throws {
        let missing = Set(try await store.missingPools(Set(definition.tasks.compactMap(\.pool))))
        guard !missing.isEmpty else { return }
        throw WorkflowValidationError(source: request.input, problems: definition.tasks.filter { $0.pool.map(missing.contains) ?? false }.map {
            ValidationProblem(task: Limits.quoted($0.name), field: "pool",
                              message: "pool \(Limits.quoted($0.pool!)) does not exist; make it first: ds-pool set \($0.pool!) SLOTS")
        })
    }

    /// `--dry-run`'s checks of what the database holds, when it can be read (nothing is written):
    /// an unknown pool is refused as a submit refuses it; a SUB_PROCESS target that is not stored
    /// is told on stderr (a submit stores it, and the node fails when it runs unless the target
    /// is stored by then). Without a database, stderr says the checks were skipped and why.
    static func checkAgainstDatabase(_ definition: WorkflowDefinition, _ request: SubmitRequest, tool: String,
                                     configuration: Configuration) async throws {
        let targets = definition.tasks.filter { $0.type == .subProcess && $0.workflow != nil }
        guard targets.count + definition.tasks.filter({ $0.pool != nil }).count > 0 else { return }
        func skipped(_ why: String) { Tool.warn(tool, "--dry-run did not check pools and SUB_PROCESS targets: \(why)") }
        guard configuration.databaseMayExist else {
            return skipped("there is no database at \(configuration.databasePath) (--db / DS_DB)")
        }
        let store: Store
        // Not upgraded: a look writes nothing, not even the schema.
        do { store = try configuration.openStore(upgrade: false) } catch {
            return skipped("the database cannot be read: \(error)")
        }
        do {
            try await checkPools(definition, request, store)
            for task in targets {
                guard try await store.storedDefinition(named: task.workflow!, version: task.version) == nil else { continue }
                Tool.warn(tool, "task \(Limits.quoted(task.name)): SUB_PROCESS workflow \(Limits.quoted(task.workflow!))\(task.version.map { " version \($0)" } ?? "") is not stored; the task fails when it runs unless it is stored first (ds-submit --no-start FILE)")
            }
        } catch let refusal as WorkflowValidationError {
            throw refusal
        } catch {
            skipped("the database cannot be read: \(error)")
        }
    }

    /// Runs the request; returns the exit status.
    public static func run(_ request: SubmitRequest, configuration: Configuration) async throws -> ExitStatus {
        try await submit(try prepare(request), request, configuration: configuration).status
    }

    /// Stores a validated definition and its START command, tells the masters, and waits if asked.
    public static func submit(_ definition: WorkflowDefinition, _ request: SubmitRequest, tool: String = "ds-submit",
                              configuration: Configuration, printID: Bool = true) async throws -> (status: ExitStatus, submitted: SubmittedInstance?) {
        if request.dryRun {
            try await checkAgainstDatabase(definition, request, tool: tool, configuration: configuration)
            if request.dot {
                print(DotGraph.render(definition, title: definition.name), terminator: "")
            } else {
                print(definition.canonicalJSON(pretty: !request.json))
            }
            return (.success, nil)
        }
        // Fixed here, where the instance is made, never left to the zone of whichever master runs it.
        let zoneName = try ScheduleTool.zone(request.timeZone).name
        let zk = try await configuration.connectZooKeeper()
        defer { zk.close() }
        // Not silent: a mistyped DS_DB makes a database no master serves (`--wait` says so too).
        // The root must take a write before the database does: an instance stored for a tree that
        // refuses writes would be run by some other cluster sharing the database, and run again on retry.
        try await zk.ensurePath(configuration.paths.root + "/signal")
        let isNew = !configuration.databaseMayExist
        let store = try configuration.openStore(create: true)
        if isNew { Tool.warn(tool, "created a new database \(configuration.databasePath); only masters started with this --db / DS_DB run its instances") }
        try await checkPools(definition, request, store)
        let submitted = try await store.submit(definition, params: request.params, timeZone: zoneName, now: ProcessStats.now(), start: !request.noStart,
                                               reuseAnyVersion: request.reuseAnyVersion)
        if request.noStart {
            if request.json {
                print(WireJSON.string(StoredDefinition(definitionId: submitted.definitionId, name: submitted.name, version: submitted.version)))
            } else {
                print("\(submitted.name) v\(submitted.version)")
            }
            return (.success, nil)
        }
        try await notifyMasters(zk, configuration.paths, commandID: submitted.instanceId)
        guard request.wait else {
            if printID { if request.json { print(WireJSON.string(submitted)) } else { print(submitted.instanceId) } }
            return (.success, submitted)
        }
        // Before the line below: a script that has read it knows Ctrl-C now says how to follow on.
        InterruptNotice.install(tool: tool, instanceID: submitted.instanceId)
        if !request.json && !Tool.stdoutIsTerminal {
            Tool.warn(tool, "instance \(submitted.instanceId) of '\(definition.name)' v\(submitted.version) submitted; waiting")
        }
        var watcher = InstanceWatcher(store: store, zk: zk, paths: configuration.paths, definition: definition,
                                      instanceID: submitted.instanceId)
        watcher.tool = tool
        let final = try await watcher.waitForEnd(live: !request.json && Tool.stdoutIsTerminal)
        final.print(json: request.json, tool: tool)
        return (final.instance.state == .success ? .success : .failure, submitted)
    }

    /// Touches `/signal/commands` so that every master's watch fires and one claims at once.
    public static func notifyMasters(_ zk: ZooKeeperClient, _ paths: ZooKeeperPaths, commandID: Int64) async throws {
        let data = Data(String(commandID).utf8)
        do {
            try await zk.setData(paths.commandSignal, data)
        } catch ZooKeeperError.noNode {
            try await zk.ensurePath(paths.root + "/signal")
            do { try await zk.create(paths.commandSignal, data: data) } catch ZooKeeperError.nodeExists {
                try await zk.setData(paths.commandSignal, data)
            }
        }
    }
}

/// What `ds-submit --no-start` stored.
struct StoredDefinition: Encodable {
    var definitionId: Int64
    var name: String
    var version: Int
}
