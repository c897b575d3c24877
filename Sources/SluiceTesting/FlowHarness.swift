import SluiceConfig
import SluiceCore
import SluiceEngine

/// Loads a flow from YAML text and runs it with recorded events: the shape most engine tests need.
public struct FlowHarness: Sendable {
    public let engine: Engine
    public let recorder: EventRecorder
    public let loader: FlowLoader

    public init(registry: TaskRegistry, clock: any EngineClock = SystemClock(), environment: [String: String] = [:],
                random: @escaping @Sendable () -> Double = { 0.5 }) {
        let recorder = EventRecorder()
        self.recorder = recorder
        self.engine = Engine(registry: registry, clock: clock, sinks: [recorder], environment: environment, random: random)
        self.loader = FlowLoader(catalog: registry.catalog)
    }

    /// Loads and prepares `yaml`; throws every validation error.
    public func plan(_ yaml: String, file: String = "test.yaml") throws(FlowErrors) -> FlowPlan {
        try engine.prepare(try loader.load(text: yaml, file: file))
    }

    /// Runs `yaml` once on `input`; returns the summary and every run's report.
    public func run(_ yaml: String, input: Value = .emptyObject, file: String = "test.yaml") async throws -> (ExecutionSummary, [RunReport]) {
        let plan = try plan(yaml, file: file)
        return await engine.runOnce(plan, input: input)
    }
}
