import SluiceCore

/// What a task type needs to set itself up: its definition and config as written.
public struct TaskSetup: Sendable {
    public let definition: TaskDefinition
    /// The config as written (templates unrendered); validated against the spec already.
    public var config: Value.Object { definition.config }
    public let clock: any EngineClock
    public let environment: [String: String]
    /// What scripts reach as `ctx.cache` (keys namespaced per flow by the script task).
    public var cache: any KeyValueCache
    /// Where a task keeps state across runs and restarts (a schedule's counter and last run);
    /// scripts cannot reach it. Nil when nothing outlives the process: tasks keep no state then.
    public var state: (any KeyValueCache)?
    /// The flow the task belongs to.
    public var flowName: String
    /// Where webhook sources serve their endpoints; nil when no server runs (`sluice run`).
    public var webhooks: WebhookRouter?

    public init(definition: TaskDefinition, clock: any EngineClock, environment: [String: String]) {
        self.definition = definition
        self.clock = clock
        self.environment = environment
        self.cache = InMemoryCache.shared
        self.state = nil
        self.flowName = ""
    }
}

/// A task type: its spec and how to make an instance.
public struct TaskRegistration: Sendable {
    enum Factory: Sendable {
        case processor(@Sendable (TaskSetup) throws -> any TaskProcessor)
        case source(@Sendable (TaskSetup) throws -> any TaskSource)
        case engineOperator(OperatorKind)
    }

    public let spec: TaskSpec
    let factory: Factory

    public static func processor(_ spec: TaskSpec, _ make: @escaping @Sendable (TaskSetup) throws -> any TaskProcessor) -> TaskRegistration {
        TaskRegistration(spec: spec, factory: .processor(make))
    }

    public static func source(_ spec: TaskSpec, _ make: @escaping @Sendable (TaskSetup) throws -> any TaskSource) -> TaskRegistration {
        var spec = spec
        spec.kind = .source
        return TaskRegistration(spec: spec, factory: .source(make))
    }

    static func engineOperator(_ spec: TaskSpec, _ kind: OperatorKind) -> TaskRegistration {
        var spec = spec
        spec.kind = .operator
        return TaskRegistration(spec: spec, factory: .engineOperator(kind))
    }
}

/// Operators the engine implements itself because they take over run bookkeeping.
enum OperatorKind: Sendable {
    case buffer
    case gather
}

/// The task types a flow can use.
public struct TaskRegistry: Sendable {
    private var registrations: [String: TaskRegistration] = [:]
    private var order: [String] = []

    public init() {}

    /// Adds a task type; a later registration of the same name replaces the earlier one.
    public mutating func register(_ registration: TaskRegistration) {
        if registrations[registration.spec.name] == nil { order.append(registration.spec.name) }
        registrations[registration.spec.name] = registration
    }

    public func registration(for name: String) -> TaskRegistration? { registrations[name] }

    /// Specs in registration order.
    public var specs: [TaskSpec] { order.compactMap { registrations[$0]?.spec } }

    /// The catalog a `FlowLoader` validates against.
    public var catalog: TaskCatalog { TaskCatalog(specs) }
}
