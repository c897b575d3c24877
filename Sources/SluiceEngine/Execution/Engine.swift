import Foundation
import SluiceCore
import Synchronization

/// Runs flows. Holds what every execution shares: the task types, the clock, the event sinks.
public struct Engine: Sendable {
    public var registry: TaskRegistry
    public var clock: any EngineClock
    public var sinks: [any EngineEventSink]
    /// The environment templates see as `env`.
    public var environment: [String: String]
    /// Source of randomness for retry jitter, in [0, 1).
    public var random: @Sendable () -> Double
    /// `ctx.cache` for scripts: this process's memory unless a store backs it.
    public var cache: any KeyValueCache = InMemoryCache.shared
    /// Tasks' state across runs (schedules' counters and last runs); nil keeps none.
    public var taskState: (any KeyValueCache)?
    /// I/O managers and the store for asset tasks.
    public var assets = AssetRuntime()
    /// Tasks' `rate_limit` buckets and `concurrency_key` slots: shared by the runs of this engine
    /// (and its copies) unless a store backs them, then by every process on that store.
    public var limits = SharedLimits()
    /// Where `http_endpoint` sources serve; set by `sluice serve`.
    public var webhooks: WebhookRouter?

    public init(registry: TaskRegistry, clock: any EngineClock = SystemClock(), sinks: [any EngineEventSink] = [],
                environment: [String: String] = ProcessInfo.processInfo.environment,
                random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }) {
        self.registry = registry
        self.clock = clock
        self.sinks = sinks
        self.environment = environment
        self.random = random
    }

    /// Instantiates a flow's tasks; reports every problem at once.
    public func prepare(_ definition: FlowDefinition) throws(FlowErrors) -> FlowPlan {
        try FlowPlan(definition: definition, registry: registry, clock: clock, sinks: sinks, environment: environment, random: random,
                     cache: cache, state: taskState, limits: limits, assets: assets, webhooks: webhooks)
    }

    /// Runs a prepared flow until its sources are exhausted and their runs have ended, or until
    /// the calling task is cancelled. A flow without a source runs once, on `input` (an empty
    /// object when nil). `onRunFinished` sees every run as it ends.
    /// `control` lets another task stop the sources while the runs they started finish.
    public func run(_ plan: FlowPlan, input: Event? = nil, control: ExecutionControl? = nil,
                    onRunFinished: @escaping @Sendable (RunReport) -> Void = { _ in }) async -> ExecutionSummary {
        await run(plan, input: input, durable: nil, control: control, onRunFinished: onRunFinished)
    }

    func run(_ plan: FlowPlan, input: Event?, durable: DurableRun?, control: ExecutionControl? = nil,
             onRunFinished: @escaping @Sendable (RunReport) -> Void) async -> ExecutionSummary {
        let execution = FlowExecution(plan: plan, input: input, durable: durable, onRunFinished: onRunFinished)
        control?.attach(execution)
        return await execution.run(input: input)
    }

    /// Runs a flow once on `input` and returns the run's report (for tests and embedding).
    public func runOnce(_ plan: FlowPlan, input: Value = .emptyObject) async -> (ExecutionSummary, [RunReport]) {
        let reports = ReportCollector()
        let summary = await run(plan, input: Event(data: input), onRunFinished: { reports.add($0) })
        return (summary, reports.reports)
    }
}

/// Steers an execution from outside: `stopSources` ends its sources (a webhook stops taking
/// requests, a timer stops ticking) and the execution ends once the runs they started have.
/// Cancelling the task that runs the execution instead stops the runs too.
public final class ExecutionControl: Sendable {
    private struct State {
        var execution: FlowExecution?
        var stopRequested = false
    }

    private let state = Mutex(State())

    public init() {}

    func attach(_ execution: FlowExecution) {
        let stop = state.withLock { s -> Bool in
            s.execution = execution
            return s.stopRequested
        }
        if stop { execution.stopSources() }
    }

    /// Whether `stopSources` was called.
    public var isStopRequested: Bool { state.withLock { $0.stopRequested } }

    public func stopSources() {
        let execution = state.withLock { s -> FlowExecution? in
            s.stopRequested = true
            return s.execution
        }
        execution?.stopSources()
    }
}

/// Thread-safe list of run reports.
final class ReportCollector: @unchecked Sendable {
    // Guarded by `lock`: runs finish on many threads.
    private let lock = NSLock()
    private var storage: [RunReport] = []

    func add(_ report: RunReport) {
        lock.lock()
        storage.append(report)
        lock.unlock()
    }

    var reports: [RunReport] {
        lock.lock()
        defer { lock.unlock() }
        return storage
    }
}
