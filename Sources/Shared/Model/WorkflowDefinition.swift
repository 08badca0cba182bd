import Foundation

/// One task of a workflow definition, with every default filled in.
public struct TaskDefinition: Codable, Sendable, Equatable {
    public var name: String
    public var type: TaskType = .shell
    public var command: String
    public var deps: [String] = []
    public var retries: Int = 0
    /// Seconds between a failed attempt and the next.
    public var retryInterval: Double = 0
    /// Seconds; nil for none.
    public var timeout: Double?
    public var timeoutStrategy: TimeoutStrategy = .fail
    public var priority: Priority = .medium
    public var workerGroup: String = "default"
    public var env: [String: String] = [:]

    public init(name: String, command: String, deps: [String] = []) {
        self.name = name
        self.command = command
        self.deps = deps
    }

    enum CodingKeys: String, CodingKey {
        case name, type, command, deps, retries, retryInterval = "retry_interval", timeout,
             timeoutStrategy = "timeout_strategy", priority, workerGroup = "worker_group", env
    }
}

/// A validated workflow (format version 1), normalised: what is stored and what runs.
public struct WorkflowDefinition: Codable, Sendable, Equatable {
    public var name: String
    public var priority: Priority = .medium
    public var failureStrategy: FailureStrategy = .end
    public var params: [String: String] = [:]
    public var tasks: [TaskDefinition]

    public init(name: String, tasks: [TaskDefinition]) {
        self.name = name
        self.tasks = tasks
    }

    enum CodingKeys: String, CodingKey {
        case name, priority, failureStrategy = "failure_strategy", params, tasks
    }

    /// Stable JSON: sorted keys, so equal definitions store equal text.
    public func canonicalJSON(pretty: Bool = false) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        // Durations are bounded at validation; this keeps a stray non-finite number from trapping.
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }

    /// A stored definition, checked again as at submit: text written past ds-submit (by hand,
    /// by another version) must not reach the engine unchecked.
    public static func fromStored(_ json: String) throws -> WorkflowDefinition {
        try WorkflowParser.parse(Data(json.utf8), source: "stored definition", maxBytes: .max)
    }
}
