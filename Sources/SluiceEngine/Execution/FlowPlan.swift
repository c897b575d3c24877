import Foundation
import SluiceConfig
import SluiceCore
import SluiceScript

/// A flow ready to run: tasks instantiated, edges resolved, templates and conditions compiled.
/// Build it once; run it as often as needed.
public final class FlowPlan: Sendable {
    public let definition: FlowDefinition
    let stages: [Stage]
    /// Stages that are sources.
    let sources: [Int]

    /// Whether a source drives the flow (a run per event) rather than one trigger (a workflow).
    public var isStream: Bool { !sources.isEmpty }
    /// Stages an on-demand trigger feeds (no parents, not sources).
    let roots: [Int]
    /// Stages that are buffers, and for each the buffers upstream of it.
    let buffers: [Int]
    let upstreamBuffers: [Int: Set<Int>]
    let clock: any EngineClock
    let bus: EventBus
    let environmentValue: Value
    /// The flow's assets and their versions.
    public let assetGraph: AssetGraph
    let assets: AssetRuntime

    init(definition: FlowDefinition, registry: TaskRegistry, clock: any EngineClock, sinks: [any EngineEventSink],
         environment: [String: String], random: @escaping @Sendable () -> Double, cache: any KeyValueCache = InMemoryCache.shared,
         state: (any KeyValueCache)? = nil, limits: SharedLimits, assets: AssetRuntime = AssetRuntime(),
         webhooks: WebhookRouter? = nil) throws(FlowErrors) {
        self.definition = definition
        self.assetGraph = AssetGraph(definition)
        self.assets = assets
        self.clock = clock
        self.bus = EventBus(sinks)
        var env = Value.Object()
        for (k, v) in environment.sorted(by: { $0.key < $1.key }) { env[k] = .string(v) }
        self.environmentValue = .object(env)

        var errors = definition.graphErrors()
        let tasks = definition.tasks
        var indexOf: [String: Int] = [:]
        for (i, t) in tasks.enumerated() where indexOf[t.name] == nil { indexOf[t.name] = i }

        // Slots: distinct parents of each task, in the order written.
        let slotsOf: [[String]] = tasks.map { $0.dependencies }
        var childrenOf: [[(stage: Int, slot: Int)]] = Array(repeating: [], count: tasks.count)
        for (i, slots) in slotsOf.enumerated() {
            for (slot, parent) in slots.enumerated() {
                if let p = indexOf[parent] { childrenOf[p].append((i, slot)) }
            }
        }

        var stages: [Stage] = []
        var sources: [Int] = []
        var roots: [Int] = []
        for (i, task) in tasks.enumerated() {
            guard let registration = registry.registration(for: task.type) else {
                errors.append(FlowError(.unknownTaskType, "unknown task type '\(task.typeAsWritten)'", at: task.location))
                continue
            }
            let spec = registration.spec
            var setup = TaskSetup(definition: task, clock: clock, environment: environment)
            setup.cache = cache
            setup.state = state
            setup.webhooks = webhooks
            setup.flowName = definition.name
            let behavior: Stage.Behavior
            do {
                switch registration.factory {
                case .processor(let make): behavior = .processor(try make(setup))
                case .source(let make):
                    behavior = .source(try make(setup))
                    sources.append(i)
                case .engineOperator(.buffer): behavior = .buffer(try BufferOperator(setup))
                case .engineOperator(.gather): behavior = .gather(try GatherOperator(setup))
                }
            } catch let located as FlowError {
                // The task knows exactly where (a script's syntax error inside the file).
                errors.append(located)
                continue
            } catch {
                errors.append(FlowError(.invalidValue, "task '\(task.name)': \(Stage.classify(error).message)", at: task.location))
                continue
            }
            let config: ConfigTemplate
            do {
                config = try ConfigTemplate(task.config)
            } catch {
                errors.append(FlowError(.invalidValue, "task '\(task.name)': \(error.message)", at: task.location))
                continue
            }
            var condition: ScriptCondition?
            if let when = task.when {
                do {
                    condition = try ScriptCondition(when)
                } catch {
                    errors.append(FlowError(.invalidValue, "'when' of task '\(task.name)': \(error)", at: task.location))
                }
            }
            let edges: [InputEdge] = task.inputs.compactMap { edge in
                guard let slot = slotsOf[i].firstIndex(of: edge.from), let p = indexOf[edge.from] else { return nil }
                let parentOutputs = registry.registration(for: tasks[p].type)?.spec.outputs.map(\.name) ?? []
                return InputEdge(slot: slot, parentName: edge.from, fromPort: edge.fromPort, toPort: edge.toPort, parentOutputs: Set(parentOutputs))
            }
            var deadLetter: Int?
            if case .route(let target) = task.onError.kind { deadLetter = indexOf[target] }
            if task.inputs.isEmpty && spec.kind != .source && !FlowPlan.isDeadLetterTarget(task.name, in: tasks) { roots.append(i) }
            let shared = StageShared(flowName: definition.name, clock: clock, environment: environment, bus: bus,
                                     inputPorts: definition.settings.usesPorts ? Set(spec.inputs.map(\.name)) : [], limits: limits)
            stages.append(Stage(index: i, definition: task, spec: spec, behavior: behavior, config: config, condition: condition,
                                retry: task.retry ?? definition.settings.retry ?? .none, shared: shared, edges: edges,
                                slots: slotsOf[i], children: childrenOf[i], deadLetter: deadLetter,
                                bufferSize: definition.settings.bufferSize, random: random))
        }
        if !sources.isEmpty {
            for r in roots {
                errors.append(FlowError(.invalidValue, "task '\(tasks[r].name)' has no input: in a flow driven by a source, every other task needs depends_on",
                                        at: tasks[r].location))
            }
        }
        if let schedule = definition.settings.schedule {
            errors += FlowPlan.scheduleErrors(schedule, flow: definition, asset: nil, isStream: !sources.isEmpty, now: clock.now())
        }
        for task in tasks {
            guard let asset = task.asset, let schedule = asset.schedule else { continue }
            errors += FlowPlan.scheduleErrors(schedule, flow: definition, asset: asset.key, isStream: !sources.isEmpty, now: clock.now())
        }
        if !errors.isEmpty { throw FlowErrors(errors) }
        self.stages = stages
        self.sources = sources
        self.roots = roots
        let buffers = stages.filter { if case .buffer = $0.behavior { true } else { false } }.map(\.index)
        self.buffers = buffers
        self.upstreamBuffers = FlowPlan.upstream(of: buffers, among: Set(buffers), stages: stages)
    }

    /// For each of `targets`, the members of `among` it can receive events from (through any
    /// path, dead-letter routes included).
    private static func upstream(of targets: [Int], among: Set<Int>, stages: [Stage]) -> [Int: Set<Int>] {
        guard !targets.isEmpty else { return [:] }
        var parents: [[Int]] = Array(repeating: [], count: stages.count)
        for stage in stages {
            for child in stage.children { parents[child.stage].append(stage.index) }
            if let target = stage.deadLetter { parents[target].append(stage.index) }
        }
        var result: [Int: Set<Int>] = [:]
        for target in targets {
            var seen: Set<Int> = []
            var stack = parents[target]
            while let next = stack.popLast() {
                guard seen.insert(next).inserted else { continue }
                stack.append(contentsOf: parents[next])
            }
            result[target] = seen.intersection(among)
        }
        return result
    }

    /// A schedule's cron expression is parsed here, where the parser lives (the loader cannot
    /// see it), and only a workflow can be scheduled: the flow's own schedule, or an asset's.
    private static func scheduleErrors(_ schedule: ScheduleSpec, flow: FlowDefinition, asset: String?, isStream: Bool, now: Date) -> [FlowError] {
        var errors: [FlowError] = []
        let at = schedule.location ?? flow.location
        let what = asset.map { "the schedule of asset '\($0)'" } ?? "'schedule.cron'"
        if case .cron(let expression) = schedule.trigger {
            do {
                if try CronSchedule(expression, timeZone: schedule.zone).next(after: now) == nil {
                    errors.append(FlowError(.invalidValue, "\(what) \"\(expression)\" matches no date in the next eight years", at: at))
                }
            } catch {
                errors.append(FlowError(.invalidValue, "\(what) is not a valid cron expression: \(error.message)", at: at))
            }
        }
        if isStream {
            errors.append(FlowError(.invalidValue, "flow '\(flow.name)' is driven by a source, so \(asset.map { "asset '\($0)'" } ?? "it") "
                                    + "cannot have a schedule (a schedule starts a run of a workflow at each tick)", at: at))
        }
        return errors
    }

    private static func isDeadLetterTarget(_ name: String, in tasks: [TaskDefinition]) -> Bool {
        tasks.contains { if case .route(let t) = $0.onError.kind { return t == name } else { return false } }
    }
}
