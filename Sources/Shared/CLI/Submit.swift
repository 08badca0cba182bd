import Foundation

/// What `ds-submit` was asked to do.
public struct SubmitRequest: Sendable {
    public var input: String
    public var params: [String: String] = [:]
    public var priority: Priority?
    public var name: String?
    public var dryRun = false
    public var wait = false
    public var json = false
    public init(input: String) { self.input = input }
}

/// `ds-submit`: validate, store a versioned definition and a START command, optionally wait.
public enum Submitter {
    /// Parses `k=v`; the key may not be empty.
    public static func parseParam(_ text: String) -> (String, String)? {
        guard let eq = text.firstIndex(of: "="), eq != text.startIndex else { return nil }
        return (String(text[..<eq]), String(text[text.index(after: eq)...]))
    }

    public static func readInput(_ input: String) throws -> Data {
        if input == "-" { return FileHandle.standardInput.readDataToEndOfFile() }
        guard FileManager.default.fileExists(atPath: input) else { throw InputError.missingFile(input) }
        do { return try Data(contentsOf: URL(fileURLWithPath: input)) } catch {
            throw InputError.unreadable(input, error.localizedDescription)
        }
    }

    /// Validates everything before any connection is made: bad input never touches the database or ZooKeeper.
    public static func prepare(_ request: SubmitRequest) throws -> WorkflowDefinition {
        var definition = try WorkflowParser.parse(try readInput(request.input), source: request.input)
        if let name = request.name {
            guard !name.isEmpty, !name.contains("/") else {
                throw WorkflowValidationError(source: request.input, problems: [
                    ValidationProblem(task: nil, field: "--name", message: "must be a non-empty name without '/'")])
            }
            definition.name = name
        }
        if let p = request.priority { definition.priority = p }
        return definition
    }

    /// Runs the request; returns the exit status.
    public static func run(_ request: SubmitRequest, configuration: Configuration) async throws -> ExitStatus {
        let definition = try prepare(request)
        if request.dryRun {
            print(definition.canonicalJSON(pretty: !request.json))
            return .success
        }
        let zk = try await configuration.connectZooKeeper()
        defer { zk.close() }
        let store = try Store(path: configuration.databasePath)
        let submitted = try await store.submit(definition, params: request.params, now: ProcessStats.now())
        try await notifyMasters(zk, configuration.paths, commandID: submitted.instanceId)
        guard request.wait else {
            if request.json { print(WireJSON.string(submitted)) } else { print(submitted.instanceId) }
            return .success
        }
        if !request.json && !Tool.stdoutIsTerminal {
            Tool.warn("ds-submit", "instance \(submitted.instanceId) of '\(definition.name)' v\(submitted.version) submitted; waiting")
        }
        let watcher = InstanceWatcher(store: store, zk: zk, paths: configuration.paths, definition: definition,
                                      instanceID: submitted.instanceId)
        let final = try await watcher.waitForEnd(live: !request.json && Tool.stdoutIsTerminal)
        if request.json {
            print(WireJSON.string(final))
        } else {
            print(final.table(), terminator: "")
            print("instance \(final.instance.id!) \(final.instance.name) \(final.instance.state.rawValue) in \(InstanceReport.duration(final.instance.startTime, final.instance.endTime))")
        }
        return final.instance.state == .success ? .success : .failure
    }

    /// Touches `/signal/commands` so that every master's watch fires and one claims at once.
    static func notifyMasters(_ zk: ZooKeeperClient, _ paths: ZooKeeperPaths, commandID: Int64) async throws {
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
