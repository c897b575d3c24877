import Foundation
import SluiceCore

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
                     cache: cache, state: taskState, limits: limits, assets: assets)
    }

    /// Runs a prepared flow until its sources are exhausted and their runs have ended, or until
    /// the calling task is cancelled. A flow without a source runs once, on `input` (an empty
    /// object when nil). `onRunFinished` sees every run as it ends.
    public func run(_ plan: FlowPlan, input: Event? = nil,
                    onRunFinished: @escaping @Sendable (RunReport) -> Void = { _ in }) async -> ExecutionSummary {
        await run(plan, input: input, durable: nil, onRunFinished: onRunFinished)
    }

    func run(_ plan: FlowPlan, input: Event?, durable: DurableRun?,
             onRunFinished: @escaping @Sendable (RunReport) -> Void) async -> ExecutionSummary {
        let execution = FlowExecution(plan: plan, input: input, durable: durable, onRunFinished: onRunFinished)
        return await execution.run(input: input)
    }

    /// Runs a flow once on `input` and returns the run's report (for tests and embedding).
    public func runOnce(_ plan: FlowPlan, input: Value = .emptyObject) async -> (ExecutionSummary, [RunReport]) {
        let reports = ReportCollector()
        let summary = await run(plan, input: Event(data: input), onRunFinished: { reports.add($0) })
        return (summary, reports.reports)
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
