import OrderedCollections

/// One task of a flow as written: its type, its config and how it connects.
public struct TaskDefinition: Sendable {
    public var name: String
    /// The canonical task type name (an alias written in the file is resolved).
    public var type: String
    /// The type as written, when it was an alias (`shell.exec` for `shell`).
    public var typeAsWritten: String
    /// The task's own config fields, with defaults from the alias applied.
    public var config: Value.Object
    /// Where each config field was written, for errors found later (template rendering).
    public var configLocations: [String: SourceLocation]
    /// Incoming edges. Empty for a root task.
    public var inputs: [Edge]
    /// True when `depends_on` was written explicitly, even as an empty list.
    public var explicitDependencies: Bool
    public var retry: RetryPolicy?
    /// Deadline for one attempt.
    public var timeout: Duration?
    public var onError: ErrorAction
    /// Set when the task is an asset: its output is stored by key and partition.
    public var asset: AssetSpec?
    /// Results of this task are cached for this long (in a durable run): an attempt with the
    /// same type, config and input within it takes the stored output instead of running.
    public var cacheTTL: Duration?
    /// How many events the task works on at once.
    public var concurrency: Int?
    /// How fast its attempts may start: a token bucket shared by every task with the same key.
    public var rateLimit: RateLimit?
    /// A slot name: attempts of every task with this key, in every process on the same store,
    /// hold at most `concurrencyLimit` slots at once. Set together with `concurrencyLimit`.
    public var concurrencyKey: String?
    public var concurrencyLimit: Int?
    /// A condition; when false the event does not go through this task (its path ends here).
    public var when: String?
    public var join: JoinMode
    public var location: SourceLocation

    public init(name: String, type: String, typeAsWritten: String? = nil, config: Value.Object = [:],
                configLocations: [String: SourceLocation] = [:], inputs: [Edge] = [], explicitDependencies: Bool = false,
                retry: RetryPolicy? = nil, timeout: Duration? = nil, onError: ErrorAction = .fail, concurrency: Int? = nil,
                when: String? = nil, join: JoinMode = .all, location: SourceLocation) {
        self.name = name
        self.type = type
        self.typeAsWritten = typeAsWritten ?? type
        self.config = config
        self.configLocations = configLocations
        self.inputs = inputs
        self.explicitDependencies = explicitDependencies
        self.retry = retry
        self.timeout = timeout
        self.onError = onError
        self.concurrency = concurrency
        self.when = when
        self.join = join
        self.location = location
    }

    /// Names of the tasks this one depends on, in the order written, without repeats.
    public var dependencies: [String] {
        var seen = Set<String>()
        return inputs.map(\.from).filter { seen.insert($0).inserted }
    }
}

/// An edge into a task. Ports are set for FlowEngine workflows, where an edge carries one
/// named output of its source into one named input of its target.
public struct Edge: Sendable, Hashable {
    public var from: String
    public var fromPort: String?
    public var toPort: String?
    public var location: SourceLocation?

    public init(from: String, fromPort: String? = nil, toPort: String? = nil, location: SourceLocation? = nil) {
        self.from = from
        self.fromPort = fromPort
        self.toPort = toPort
        self.location = location
    }
}

/// What happens to an event when a task has failed on it and retries are used up.
public struct ErrorAction: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable { case fail, `continue`, route(String) }
    public let kind: Kind

    /// Fail the run (the default).
    public static let fail = ErrorAction(kind: .fail)
    /// Pass the event on with its `error` set.
    public static let `continue` = ErrorAction(kind: .continue)
    /// Send the failed event, with `error` set, to the named (dead-letter) task.
    public static func route(to task: String) -> ErrorAction { ErrorAction(kind: .route(task)) }

    public var description: String {
        switch kind {
        case .fail: return "fail"
        case .continue: return "continue"
        case .route(let t): return t
        }
    }
}

/// How a task with several parents combines their events.
public struct JoinMode: Sendable, Hashable, CustomStringConvertible {
    public let rawValue: String
    package init(_ rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }
    /// Wait for one event from every parent for the same run and merge them.
    public static let all = JoinMode("all")
    /// Pass each parent's event on as it arrives.
    public static let any = JoinMode("any")
}
