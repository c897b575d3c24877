import OrderedCollections

/// A named DAG of tasks, as loaded from a flow file or built in code.
public struct FlowDefinition: Sendable {
    public var name: String
    public var labels: Value.Object
    public var tasks: [TaskDefinition]
    public var settings: FlowSettings
    /// The file it came from, if any.
    public var file: String?
    /// Problems that do not stop the flow from running (fields accepted but not acted on).
    public var warnings: [FlowError] = []
    /// Where the flow was written (the `flow:` key or the document start).
    public var location: SourceLocation?

    public init(name: String, labels: Value.Object = [:], tasks: [TaskDefinition], settings: FlowSettings = FlowSettings(),
                file: String? = nil, location: SourceLocation? = nil) {
        self.name = name
        self.labels = labels
        self.tasks = tasks
        self.settings = settings
        self.file = file
        self.location = location
    }

    public func task(named name: String) -> TaskDefinition? { tasks.first(where: { $0.name == name }) }
}

/// Flow-wide settings.
public struct FlowSettings: Sendable {
    /// At most this many task attempts run at once across the whole flow (FlowEngine's `max_parallel_nodes`).
    public var maxParallelTasks: Int?
    /// Deadline for a whole run, from its start (FlowEngine's `max_execution_time_ms`).
    public var runTimeout: Duration?
    /// Default retry policy for tasks that set none.
    public var retry: RetryPolicy?
    /// Capacity of each channel between tasks, in events.
    public var bufferSize: Int
    /// Runs of a streaming flow that may be in progress at once (each holds memory).
    public var maxRunsInFlight: Int
    /// Run on one process at a time among those sharing a store (the holder of the flow's
    /// leader lease); another takes over when it dies.
    public var requireLeaderElection = false
    /// Runs the flow by itself on a cron expression or interval, on the process that leads it.
    public var schedule: ScheduleSpec?
    /// True for FlowEngine workflows: values travel between tasks through named ports.
    public var usesPorts = false
    /// Fields Sluice accepts for compatibility but does not act on yet; the loader warns about them.
    public var inertFields: [String]

    public init(maxParallelTasks: Int? = nil, runTimeout: Duration? = nil, retry: RetryPolicy? = nil, bufferSize: Int = 1024,
                maxRunsInFlight: Int = 4096, inertFields: [String] = []) {
        self.maxParallelTasks = maxParallelTasks
        self.runTimeout = runTimeout
        self.retry = retry
        self.bufferSize = bufferSize
        self.maxRunsInFlight = maxRunsInFlight
        self.inertFields = inertFields
    }
}
