import Foundation
import SluiceConfig
import SluiceCore
import SluiceScript
import Synchronization

/// Where an event came from inside a run: one frame per scatter it went through.
struct ScatterFrame: Hashable, Sendable {
    let id: UInt64
    let index: Int
    let count: Int
}

/// An event on its way through the flow, with its run and scatter position.
struct Envelope: Sendable {
    var event: Event
    let run: RunState
    var scatter: [ScatterFrame]
}

/// What a stage's channel carries.
enum StageItem: Sendable {
    /// An event from the parent in `slot` (-1: deliver as is, no join).
    case event(Envelope, slot: Int)
    /// The run went quiet while a join or gather here waits on it: fire with what arrived.
    case flush(RunState)
    /// A buffer's timer for the batch of `key` went off.
    case tick(key: String, generation: UInt64)
    /// Emit everything a buffer holds (the flow's input ended, or its run limit is reached).
    case drain(reason: String)
}

/// An edge as the engine uses it: into which slot of the child, picking which port.
struct InputEdge: Sendable {
    let slot: Int
    let parentName: String
    let fromPort: String?
    let toPort: String?
    /// The parent's declared outputs; a declared port picks that key of its output object.
    let parentOutputs: Set<String>
}

/// One task of a running flow: reads its channel, works on events, sends results on.
final class Stage: Sendable {
    enum Behavior: Sendable {
        case processor(any TaskProcessor)
        case source(any TaskSource)
        case buffer(BufferOperator)
        case gather(GatherOperator)

        var isOperator: Bool {
            switch self {
            case .buffer, .gather: return true
            default: return false
            }
        }
    }

    let index: Int
    let name: String
    let definition: TaskDefinition
    let spec: TaskSpec
    let behavior: Behavior
    let channel: Channel<StageItem>
    let config: ConfigTemplate
    let condition: ScriptCondition?
    let retry: RetryPolicy
    let timeout: Duration?
    let concurrency: Int
    let shared: StageShared
    /// Distinct parents, one slot each; a join waits for every slot.
    let slots: [String]
    let edges: [InputEdge]
    let usesPorts: Bool
    let joins: Bool
    /// Children: (stage index, slot in that child).
    let children: [(stage: Int, slot: Int)]
    let deadLetter: Int?
    let random: @Sendable () -> Double
    let activeAttempts = Atomic<Int>(0)
    /// For a stage whose events may be handled in the task that produced them (the task only
    /// computes, runs unordered (concurrency above 1), and has no join, ports, asset, cache,
    /// timeout or shared limit): one permit per unit of `concurrency`. A worker holds one while
    /// it handles an item; work run inline takes one if free and nothing waits in the channel.
    /// Nil for every other stage.
    let inlineCapacity: AsyncSemaphore?
    private let joinState = Mutex<[JoinKey: JoinWaiting]>([:])

    /// A join's parts so far for one run (and scatter position).
    struct JoinWaiting {
        var parts: [Envelope?]
        var filled = 0
        init(slots: Int) { parts = Array(repeating: nil, count: slots) }

        /// Stores a parent's part; returns how many slots are filled now.
        mutating func fill(_ slot: Int, with envelope: Envelope) -> Int {
            if parts[slot] == nil { filled += 1 }
            parts[slot] = envelope
            return filled
        }
    }

    struct JoinKey: Hashable {
        let run: ObjectIdentifier
        let scatter: [ScatterFrame]
    }

    init(index: Int, definition: TaskDefinition, spec: TaskSpec, behavior: Behavior, config: ConfigTemplate, condition: ScriptCondition?,
         retry: RetryPolicy, shared: StageShared, edges: [InputEdge], slots: [String], children: [(stage: Int, slot: Int)],
         deadLetter: Int?, bufferSize: Int, random: @escaping @Sendable () -> Double) {
        self.index = index
        self.name = definition.name
        self.definition = definition
        self.spec = spec
        self.behavior = behavior
        self.channel = Channel(capacity: bufferSize)
        self.config = config
        self.condition = condition
        self.retry = retry
        self.timeout = definition.timeout
        // Operators keep state across events: one worker each.
        self.concurrency = behavior.isOperator ? 1 : definition.concurrency ?? 1
        self.shared = shared
        self.edges = edges
        self.slots = slots
        self.usesPorts = edges.contains(where: { $0.toPort != nil })
        self.joins = slots.count > 1 && definition.join == .all && !behavior.isOperator
        self.children = children
        self.deadLetter = deadLetter
        self.random = random
        var computes = false
        if case .processor = behavior { computes = spec.computesOnly }
        let inlinable = computes && concurrency > 1 && !joins && !usesPorts && definition.asset == nil && definition.cacheTTL == nil
            && definition.timeout == nil && definition.rateLimit == nil && definition.concurrencyKey == nil
        self.inlineCapacity = inlinable ? AsyncSemaphore(concurrency) : nil
    }

    var isLeaf: Bool { children.isEmpty }

    /// This stage with its own channel and empty joins and operator state: a plan is built
    /// once and may run many times, even at once, and each execution needs its own.
    func fresh() -> Stage {
        var behavior = self.behavior
        switch behavior {
        case .buffer(let b): behavior = .buffer(b.fresh())
        case .gather(let g): behavior = .gather(g.fresh())
        case .processor, .source: break
        }
        return Stage(index: index, definition: definition, spec: spec, behavior: behavior, config: config, condition: condition,
                     retry: retry, shared: shared, edges: edges, slots: slots, children: children, deadLetter: deadLetter,
                     bufferSize: channel.capacity, random: random)
    }

    // MARK: - Worker loop

    func work(_ execution: FlowExecution) async {
        var batch: [StageItem] = []
        var out = Outbox(stageCount: execution.stages.count)
        let limit = concurrency == 1 ? 128 : 1
        while await channel.receive(into: &batch, limit: limit) {
            for item in batch {
                await inlineCapacity?.acquire()
                await handle(item, &out, execution)
                inlineCapacity?.release()
                if out.count >= 128 { await out.flush(execution) }
            }
            batch.removeAll(keepingCapacity: true)
            await out.flush(execution)
            if Task.isCancelled { break }
        }
    }

    /// Handles `item` here, in the calling task, under a permit the caller took; what it
    /// produces goes on the same way.
    func handleInline(_ item: StageItem, _ execution: FlowExecution) async {
        var out = Outbox(stageCount: execution.stages.count)
        await handle(item, &out, execution)
        inlineCapacity?.release()
        await out.flush(execution, inline: true)
    }

    private func handle(_ item: StageItem, _ out: inout Outbox, _ execution: FlowExecution) async {
        switch item {
        case .tick(let key, let generation):
            if case .buffer(let buffer) = behavior { buffer.tick(key: key, generation: generation, stage: self, &out, execution) }
        case .drain(let reason):
            if case .buffer(let buffer) = behavior { buffer.drain(reason: reason, stage: self, &out, execution) }
        case .flush(let run) where behavior.isOperator:
            if case .gather(let gather) = behavior { gather.flush(run, stage: self, &out, execution) }
            out.release(run)
        case .flush(let run):
            let waiting = joinState.withLock { state -> [(JoinKey, [Envelope?])] in
                let keys = state.keys.filter { $0.run == ObjectIdentifier(run) }
                return keys.map { ($0, state.removeValue(forKey: $0)!.parts) }
            }
            run.removePending(stage: index, count: waiting.count)
            if !run.isFailed {
                for (key, parts) in waiting {
                    await process(merge(parts, scatter: key.scatter, run: run), &out, execution)
                }
            }
            out.release(run)
        case .event(let envelope, let slot):
            let run = envelope.run
            if let reason = execution.stopReason(envelope.scatter) {
                // An operator here only collects; the item's work had ended.
                if !behavior.isOperator { cancelItem(envelope, reason: reason) }
                out.release(run)
                return
            }
            if run.isFailed || Task.isCancelled {
                out.release(run)
                return
            }
            var input = envelope
            if slot >= 0 && joins {
                let key = JoinKey(run: ObjectIdentifier(run), scatter: envelope.scatter)
                let (complete, wasPending) = joinState.withLock { state -> ([Envelope?]?, Bool) in
                    // Updated in place: a join of n parents does O(n) work in all, not O(n²).
                    let isNew = state[key] == nil
                    let filled = state[key, default: JoinWaiting(slots: slots.count)].fill(slot, with: envelope)
                    if filled == slots.count {
                        return (state.removeValue(forKey: key)!.parts, !isNew)
                    }
                    if isNew { run.addPending(stage: index) }
                    return (nil, false)
                }
                if wasPending { run.removePending(stage: index) }
                guard let parts = complete else {
                    out.release(run)
                    return
                }
                input = merge(parts, scatter: envelope.scatter, run: run)
            } else if usesPorts && slot >= 0 {
                var parts: [Envelope?] = Array(repeating: nil, count: slots.count)
                parts[slot] = envelope
                input = merge(parts, scatter: envelope.scatter, run: run, onlySlot: slot)
            }
            await process(input, &out, execution)
            out.release(run)
        }
    }

    /// Combines the parents' events of one run: by port for FlowEngine workflows, else by parent name.
    private func merge(_ parts: [Envelope?], scatter: [ScatterFrame], run: RunState, onlySlot: Int? = nil) -> Envelope {
        let present = parts.compactMap { $0 }
        var data = Value.Object()
        var meta = Value.Object()
        var error: EventError?
        for part in present {
            for (k, v) in part.event.meta { meta[k] = v }
            if error == nil { error = part.event.error }
        }
        if usesPorts {
            for edge in edges where onlySlot == nil || edge.slot == onlySlot {
                guard let part = parts[edge.slot], part.event.error?.task != edge.parentName, let toPort = edge.toPort else { continue }
                data[toPort] = Stage.port(edge.fromPort, of: part.event.data, declared: edge.parentOutputs)
            }
        } else {
            for (slot, part) in parts.enumerated() {
                if let part { data[slots[slot]] = part.event.data }
            }
        }
        let first = present.first!.event
        let event = Event(id: first.id, subject: first.subject, data: .object(data), meta: meta, timestamp: first.timestamp, error: error)
        return Envelope(event: event, run: run, scatter: scatter)
    }

    /// The value an edge takes from a parent's output for `port`.
    static func port(_ port: String?, of data: Value, declared: Set<String>) -> Value {
        guard let port else { return data }
        if declared.contains(port) { return data[port] ?? .null }
        if let picked = data[port] { return picked }
        return data
    }

    // MARK: - Processing one event

    private func process(_ envelope: Envelope, _ out: inout Outbox, _ execution: FlowExecution) async {
        let run = envelope.run
        if let condition {
            let passes: Bool
            do {
                passes = try condition.isSatisfied(by: ["event": envelope.event.projection, "env": execution.environmentValue])
            } catch {
                fail(envelope, TaskError.permanent("condition 'when: \(condition.source)' failed: \(error)"), attempt: 1, &out, execution)
                return
            }
            if !passes {
                if shared.bus.wantsTaskEvents { shared.emit(.taskSkipped, run: run, task: name, message: "when: \(condition.source) is false") }
                return
            }
        }
        let renderedConfig = config.isDynamic ? config.render(execution.templateContext(for: envelope.event, run: run)) : config.raw
        let processor: any TaskProcessor
        switch behavior {
        case .processor(let p):
            processor = p
        case .buffer(let buffer):
            buffer.receive(envelope, config: renderedConfig, stage: self, &out, execution)
            return
        case .gather(let gather):
            gather.receive(envelope, stage: self, &out, execution)
            return
        case .source:
            // A source in the middle of a flow only forwards (its events come from itself).
            route(.event(envelope.event), from: envelope, &out, execution)
            return
        }
        if let assets = execution.assetRun {
            switch assets.role(of: name) {
            case .skip:
                return
            case .forward:
                route(.event(envelope.event), from: envelope, &out, execution)
                return
            case .asset(let compute, let load):
                await processAsset(envelope, compute: compute, load: load, processor: processor, config: renderedConfig, &out, execution)
                return
            case .run:
                break
            }
        }
        let key = run.durable.map { _ in DurableRun.key(task: name, scatter: envelope.scatter) } ?? ""
        guard let output = await execute(processor, envelope, key: key, config: renderedConfig, &out, execution) else { return }
        do {
            // A script asked to wait (FlowStone's shape): the gate sits after its checkpoint.
            // Only scripts: another task's data that happens to look like it is just data.
            if definition.type == "script", let request = try GateRequest.from(output: output) {
                // on_timeout: retry runs the script itself again.
                let passed = try await request.pass(run: run, key: (key.isEmpty ? name : key) + "#gate", task: name, input: envelope.event,
                                                    upstream: key.isEmpty ? [] : [key], clock: shared.clock)
                route(passed, from: envelope, &out, execution)
                return
            }
        } catch let suspended as GateSuspended {
            run.suspend(suspended.status, suspended.message)
            shared.emit(.log, run: run, task: name, message: suspended.message, level: "warning")
            return
        } catch {
            fail(envelope, Stage.classify(error), attempt: 1, &out, execution)
            return
        }
        route(output, from: envelope, &out, execution)
    }

    /// Runs the task on one event under checkpoint key `key`: takes a checkpointed or cached
    /// output when there is one, else makes attempts under the retry policy, recording each in a
    /// durable run. Answers the output, or nil when the event's path ended here (the task failed
    /// and `on_error` took over, or the run stopped). `asset` makes a successful attempt write
    /// its value and record the materialization with its checkpoint.
    func execute(_ processor: any TaskProcessor, _ envelope: Envelope, key: String, config renderedConfig: Value.Object,
                 asset: AssetWrite? = nil, _ out: inout Outbox, _ execution: FlowExecution) async -> TaskOutput? {
        let run = envelope.run
        let durable = run.durable
        if let saved = durable?.checkpointed(key) {
            // Done by an earlier process: its output is taken, the task is not run again.
            if shared.bus.wantsTaskEvents { shared.emit(.taskCompleted, run: run, task: name, message: "from checkpoint") }
            return saved
        }
        var cache: (key: String, ttl: Duration)?
        if let durable, let ttl = definition.cacheTTL, asset == nil {
            let resultKey = DurableRun.resultKey(type: definition.type, config: renderedConfig, input: envelope.event.data)
            cache = (resultKey, ttl)
            if let hit = await durable.cachedResult(resultKey, now: shared.clock.now()) {
                do {
                    try await durable.checkpoint(key, output: hit)
                } catch {
                    durable.lose(error, run: run)
                    return nil
                }
                if shared.bus.wantsTaskEvents { shared.emit(.taskCompleted, run: run, task: name, message: "cache hit") }
                return hit
            }
        }
        // On resume, attempts go on counting from the interrupted one.
        var attempt = (durable?.priorAttempts[key] ?? 0) + 1
        while true {
            let context = TaskContext(config: renderedConfig, taskName: name, attempt: attempt, shared: shared, run: run, item: key, parents: slots)
            let started = shared.clock.uptime()
            let startTime = durable == nil ? Date.distantPast : shared.clock.now()
            durable?.attemptStarted(key, attempt: attempt, at: startTime)
            if let asset, let durable { durable.materializing(asset.record(run: durable.id, status: .running, started: startTime)) }
            if shared.bus.wantsTaskEvents { shared.emit(.taskStarted, run: run, task: name, attempt: attempt, message: asset?.label) }
            do {
                if let limiter = execution.parallelLimiter { await limiter.acquire() }
                activeAttempts.add(1, ordering: .relaxed)
                defer {
                    activeAttempts.subtract(1, ordering: .relaxed)
                    execution.parallelLimiter?.release()
                }
                let output: TaskOutput
                if execution.mayStop(envelope.scatter) {
                    let event = envelope.event
                    output = try await execution.stoppable(envelope.scatter) {
                        try await self.limited(run) { try await self.attemptOnce(processor, event, context) }
                    }
                } else {
                    output = try await limited(run) { try await attemptOnce(processor, envelope.event, context) }
                }
                var materialization: Materialization?
                if let asset {
                    let summary = try await asset.write(output)
                    if let durable {
                        materialization = asset.record(run: durable.id, status: .materialized, started: startTime, ended: shared.clock.now(),
                                                       summary: summary)
                    }
                }
                if let durable {
                    // Stored before any child starts: a resumed run never redoes this task.
                    do {
                        try await durable.completed(key, attempt: attempt, started: startTime, ended: shared.clock.now(), output: output,
                                                    materialization: materialization)
                        if let cache { await durable.cacheResult(cache.key, output: output, expires: shared.clock.now().addingTimeInterval(cache.ttl.seconds)) }
                    } catch {
                        execution.noteInterrupted(name)
                        durable.lose(error, run: run)
                        return nil
                    }
                }
                if shared.bus.wantsTaskEvents {
                    shared.emit(.taskCompleted, run: run, task: name, attempt: attempt, message: asset?.label,
                                duration: shared.clock.uptime() - started)
                }
                return output
            } catch let suspended as GateSuspended {
                run.suspend(suspended.status, suspended.message)
                shared.emit(.log, run: run, task: name, message: suspended.message, level: "warning")
                return nil
            } catch {
                if let reason = execution.stopReason(envelope.scatter) {
                    cancelItem(envelope, reason: reason, attempt: attempt, started: startTime)
                    return nil
                }
                if Task.isCancelled || error is CancellationError {
                    execution.noteInterrupted(name)
                    run.markCancelled()
                    return nil
                }
                let taskError = Stage.classify(error)
                durable?.attemptFailed(key, attempt: attempt, started: startTime, ended: shared.clock.now(), error: taskError.message)
                let retryable = taskError.code == .timeout ? retry.retryOnTimeout : taskError.retryable
                if retryable && attempt < retry.maxAttempts && !run.isFailed {
                    let delay = retry.delay(beforeRetry: attempt, random: random())
                    shared.emit(.taskRetrying, run: run, task: name, attempt: attempt, message: taskError.message,
                                duration: shared.clock.uptime() - started, delay: delay)
                    do {
                        let clock = shared.clock
                        try await execution.stoppable(envelope.scatter) { try await clock.sleep(for: delay) }
                    } catch {
                        if let reason = execution.stopReason(envelope.scatter) { cancelItem(envelope, reason: reason) }
                        return nil
                    }
                    attempt += 1
                    continue
                }
                if let asset, let durable {
                    durable.materializing(asset.record(run: durable.id, status: .failed, started: startTime, ended: shared.clock.now(),
                                                       error: taskError.message))
                }
                fail(envelope, taskError, attempt: attempt, &out, execution, duration: shared.clock.uptime() - started)
                return nil
            }
        }
    }

    /// Runs `body` once the task's concurrency slot is held and its rate limit lets it start
    /// (in that order: the rate counts starts, not waits), and gives the slot back after it.
    private func limited<T>(_ run: RunState, _ body: () async throws -> T) async throws -> T {
        guard let key = definition.concurrencyKey, let limit = definition.concurrencyLimit else {
            try await takeToken(run, waitedForSlot: .zero, slot: "")
            return try await body()
        }
        return try await shared.limits.withSlot(key: key, limit: limit, clock: shared.clock) { waited in
            try await takeToken(run, waitedForSlot: waited, slot: "a '\(key)' slot (limit \(limit))")
            return try await body()
        }
    }

    /// Takes a token of the task's rate limit, if it has one. How long the attempt waited in
    /// all goes to a debug log line, not to the task's events.
    private func takeToken(_ run: RunState, waitedForSlot: Duration, slot: String) async throws {
        var waited = waitedForSlot
        var reasons = waited > .zero ? [slot] : []
        if let rate = definition.rateLimit {
            let key = rate.key ?? shared.flowName + "/" + name
            let forToken = try await shared.limits.acquireToken(key: key, spec: rate, clock: shared.clock)
            if forToken > .zero {
                waited += forToken
                reasons.append("rate limit '\(key)' (\(rate.rate))")
            }
        }
        if waited > .zero {
            shared.emit(.log, run: run, task: name, message: "waited \(waited.shortDescription) for \(reasons.joined(separator: " and "))",
                        level: "debug")
        }
    }

    private func attemptOnce(_ processor: any TaskProcessor, _ event: Event, _ context: TaskContext) async throws -> TaskOutput {
        guard let timeout else { return try await processor.process(event, context) }
        let clock = shared.clock
        return try await withThrowingTaskGroup(of: TaskOutput?.self) { group in
            group.addTask { try await processor.process(event, context) }
            group.addTask {
                try await clock.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let output = first else {
                throw TaskError("timed out after \(timeout.shortDescription)", code: .timeout, retryable: true)
            }
            return output
        }
    }

    static func classify(_ error: Error) -> TaskError {
        if let e = error as? TaskError { return e }
        return TaskError(String(describing: error), retryable: true)
    }

    func fail(_ envelope: Envelope, _ error: TaskError, attempt: Int, _ out: inout Outbox, _ execution: FlowExecution, duration: Duration? = nil) {
        let run = envelope.run
        shared.emit(.taskFailed, run: run, task: name, attempt: attempt, message: error.message, duration: duration)
        var failed = envelope.event
        failed.error = EventError(task: name, message: error.message)
        switch definition.onError.kind {
        case .fail:
            run.fail("task '\(name)' failed: \(error.message)", task: name)
        case .continue:
            route(.event(failed), from: envelope, &out, execution)
        case .route:
            guard let target = deadLetter else { return }
            var routed = envelope
            routed.event = failed
            out.append(.event(routed, slot: -1), to: target)
        }
    }

    /// Records an item of a scatter its gather gave up on as cancelled: a `task_cancelled`
    /// event and, in a durable run, an attempt with that status. `attempt` is the attempt that
    /// was stopped, nil when none had started.
    func cancelItem(_ envelope: Envelope, reason: String, attempt: Int? = nil, started: Date? = nil) {
        let run = envelope.run
        let key = DurableRun.key(task: name, scatter: envelope.scatter)
        if let durable = run.durable {
            let now = shared.clock.now()
            durable.attemptCancelled(key, attempt: attempt ?? (durable.priorAttempts[key] ?? 0) + 1, started: started ?? now,
                                     ended: now, reason: attempt == nil ? "not started: \(reason)" : reason)
        }
        shared.emit(.taskCancelled, run: run, task: name, attempt: attempt,
                    message: "\(key) \(attempt == nil ? "not started" : "stopped"): \(reason)")
    }

    /// Sends a task's output on to its children, or records it as a result of the run.
    func route(_ output: TaskOutput, from envelope: Envelope, _ out: inout Outbox, _ execution: FlowExecution) {
        switch output.storage {
        case .none:
            return
        case .one(let event):
            var next = envelope
            next.event = event
            deliver(next, &out)
        case .many(let events):
            let id = execution.nextScatterID()
            for (i, event) in events.enumerated() {
                var next = envelope
                next.event = event
                next.scatter.append(ScatterFrame(id: id, index: i, count: events.count))
                deliver(next, &out)
            }
        }
    }

    func deliver(_ envelope: Envelope, _ out: inout Outbox) {
        if children.isEmpty {
            envelope.run.record(LeafResult(task: name, event: envelope.event))
            return
        }
        for child in children {
            out.append(.event(envelope, slot: child.slot), to: child.stage)
        }
    }
}

/// Outputs of a batch, grouped by target stage, plus the tokens to give back once they are sent.
struct Outbox {
    private var byStage: [[StageItem]]
    private var touched: [Int] = []
    private var releases: [RunState] = []
    private(set) var count = 0

    init(stageCount: Int) {
        byStage = Array(repeating: [], count: stageCount)
    }

    mutating func append(_ item: StageItem, to stage: Int) {
        if case .event(let envelope, _) = item { envelope.run.retain() }
        if byStage[stage].isEmpty { touched.append(stage) }
        byStage[stage].append(item)
        count += 1
    }

    mutating func release(_ run: RunState) {
        releases.append(run)
    }

    /// Sends what was gathered (waiting while a child is full), then gives back the input tokens.
    /// With `inline` (the caller is a task of its own per run, such as a webhook request's), an
    /// item for a stage with `inlineCapacity`, a free permit and an empty channel, is handled
    /// here instead: no hand-over to another task. Stage workers do not inline: a worker doing
    /// its children's work would take their parallelism away. A caller whose task was
    /// cancelled (its client left) hands everything over: the run goes on in the stages.
    mutating func flush(_ execution: FlowExecution, inline: Bool = false) async {
        for stage in touched {
            var items = byStage[stage]
            byStage[stage].removeAll(keepingCapacity: true)
            let target = execution.stages[stage]
            if inline, let capacity = target.inlineCapacity, !Task.isCancelled {
                var rest: [StageItem] = []
                for item in items {
                    if rest.isEmpty, target.channel.count == 0, capacity.tryAcquire() {
                        await target.handleInline(item, execution)
                    } else {
                        rest.append(item)
                    }
                }
                items = rest
            }
            if !items.isEmpty { await target.channel.send(contentsOf: items) }
        }
        touched.removeAll(keepingCapacity: true)
        count = 0
        for run in releases { run.release() }
        releases.removeAll(keepingCapacity: true)
    }
}
