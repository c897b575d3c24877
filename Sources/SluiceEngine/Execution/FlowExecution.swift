import Foundation
import SluiceConfig
import SluiceCore
import Synchronization

/// How an execution ended.
public struct ExecutionSummary: Sendable {
    public var runsCompleted: Int
    public var runsFailed: Int
    public var runsCancelled: Int
    /// True when the execution was stopped (Ctrl-C, or a failed run of a workflow) rather than
    /// ending because its sources were exhausted.
    public var interrupted: Bool
    /// Tasks that were working when the execution was stopped.
    public var interruptedTasks: [String]
}

/// One execution of a prepared flow: its stages, its runs, and how it ends.
final class FlowExecution: Sendable {
    enum Ending: Sendable { case natural, failedWorkflow, cancelled }

    private struct State {
        var activeRuns: [ObjectIdentifier: RunState] = [:]
        /// Active runs that hold a place under `max_runs_in_flight`.
        var limitedRuns = 0
        var sourcesRunning = 0
        var ending: Ending?
        var waiter: CheckedContinuation<Ending, Never>?
        var completed = 0
        var failed = 0
        var cancelled = 0
        var interrupted: [String] = []
        /// The running sources, so that `stopSources` can end them while runs go on.
        var sourceTasks: [Task<Void, any Error>] = []
        var sourcesStopped = false
    }

    let plan: FlowPlan
    let stages: [Stage]
    let clock: any EngineClock
    let bus: EventBus
    let environmentValue: Value
    let parallelLimiter: AsyncSemaphore?
    let runLimiter: AsyncSemaphore
    let onRunFinished: @Sendable (RunReport) -> Void
    /// A workflow (no source, one run) stops everything when its run fails.
    let stopOnRunFailure: Bool
    private let runCounter = Atomic<UInt64>(0)
    private let scatterCounter = Atomic<UInt64>(0)
    private let state = Mutex(State())
    /// Whether a gather may stop a scatter: only then are item attempts made stoppable.
    private let gathers: Bool
    private let stops = Mutex(ScatterStops())
    /// Set once any scatter is stopped, so the check on every event costs one atomic load until then.
    private let anyStopped = Atomic<Bool>(false)
    let runPrefix: String
    /// The store record of a workflow's run, when it is durable.
    let durable: DurableRun?
    /// What each task does in a run that materializes assets.
    let assetRun: AssetRunPlan?

    init(plan: FlowPlan, input: Event?, durable: DurableRun? = nil, onRunFinished: @escaping @Sendable (RunReport) -> Void) {
        self.plan = plan
        self.assetRun = AssetRunPlan.of(plan, input: input)
        self.durable = plan.sources.isEmpty ? durable : nil
        self.stages = plan.stages.map { $0.fresh() }
        self.clock = plan.clock
        self.bus = plan.bus
        self.environmentValue = plan.environmentValue
        self.parallelLimiter = plan.definition.settings.maxParallelTasks.map(AsyncSemaphore.init)
        self.runLimiter = AsyncSemaphore(plan.definition.settings.maxRunsInFlight)
        self.onRunFinished = onRunFinished
        self.stopOnRunFailure = plan.sources.isEmpty
        self.runPrefix = FlowExecution.makePrefix()
        self.gathers = plan.stages.contains { if case .gather = $0.behavior { true } else { false } }
    }

    /// The milliseconds since 1970 in base 36, moved on past the last prefix given: two
    /// executions started in the same millisecond (two flows loaded at once) must not number
    /// their runs `x-1`, `x-2` alike.
    static func makePrefix() -> String {
        let millis = UInt64(Date().timeIntervalSince1970 * 1000)
        var last = lastPrefix.load(ordering: .relaxed)
        while true {
            let next = max(millis, last + 1)
            let (exchanged, original) = lastPrefix.compareExchange(expected: last, desired: next, ordering: .relaxed)
            if exchanged { return String(next, radix: 36) }
            last = original
        }
    }

    private static let lastPrefix = Atomic<UInt64>(0)

    func nextScatterID() -> UInt64 { scatterCounter.add(1, ordering: .relaxed).newValue }

    /// What templates see: `event`, `env`, `run`, `flow`.
    func templateContext(for event: Event, run: RunState) -> Value.Object {
        ["event": event.projection, "env": environmentValue, "run": ["id": .string(run.id)], "flow": ["name": .string(plan.definition.name)]]
    }

    // MARK: - Running

    func run(input: Event?) async -> ExecutionSummary {
        state.withLock { $0.sourcesRunning = plan.sources.isEmpty ? 1 : plan.sources.count }
        let ending: Ending = await withTaskGroup(of: Void.self) { group in
            for stage in stages where !plan.sources.contains(stage.index) {
                for _ in 0..<stage.concurrency {
                    group.addTask { await stage.work(self) }
                }
            }
            if plan.sources.isEmpty {
                var root = input ?? Event(data: .emptyObject)
                // The asset plan is the engine's; tasks see the rest of the input.
                if root.data[AssetRunPlan.inputKey] != nil, case .object(var o) = root.data {
                    o.removeValue(forKey: AssetRunPlan.inputKey)
                    root.data = .object(o)
                }
                group.addTask {
                    await self.startRun(with: root, from: nil)
                    self.sourceFinished()
                }
            } else {
                for index in plan.sources {
                    group.addTask { await self.runSource(self.stages[index]) }
                }
            }
            let ending = await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Ending, Never>) in
                    let ready = state.withLock { s -> Ending? in
                        if let e = s.ending { return e }
                        s.waiter = continuation
                        return nil
                    }
                    if let ready { continuation.resume(returning: ready) }
                }
            } onCancel: {
                self.end(.cancelled)
            }
            if ending != .natural { group.cancelAll() }
            for index in plan.buffers {
                if case .buffer(let b) = stages[index].behavior { b.shutdown() }
            }
            for stage in stages { stage.channel.close() }
            parallelLimiter?.releaseAll()
            runLimiter.releaseAll()
            await group.waitForAll()
            return ending
        }
        sweepStoppedItems()
        return finalize(ending)
    }

    private func runSource(_ stage: Stage) async {
        guard case .source(let source) = stage.behavior else { return }
        let emitter = SourceEmitter(execution: self, stage: stage)
        let context = TaskContext(config: stage.config.raw, taskName: stage.name, attempt: 1, shared: stage.shared, run: nil)
        let task = Task { try await source.run(emitter, context) }
        let stopped = state.withLock { s -> Bool in
            s.sourceTasks.append(task)
            return s.sourcesStopped
        }
        if stopped { task.cancel() }
        do {
            try await withTaskCancellationHandler { try await task.value } onCancel: { task.cancel() }
        } catch is CancellationError {
        } catch {
            stage.shared.emit(.taskFailed, run: nil, task: stage.name, message: "source stopped: \(Stage.classify(error).message)")
            state.withLock { $0.failed += 1 }
        }
        sourceFinished()
    }

    /// Ends the sources (they stop emitting) and lets the runs they started finish: the
    /// execution then ends as if its sources were exhausted.
    func stopSources() {
        let tasks = state.withLock { s -> [Task<Void, any Error>] in
            s.sourcesStopped = true
            return s.sourceTasks
        }
        for task in tasks { task.cancel() }
    }

    /// Starts a run whose root event goes on from `source`, the stage that produced it (to its
    /// children), or without one to the flow's roots.
    /// With `waitForRoom` false, returns nil at once when `max_runs_in_flight` runs are open.
    /// `onFinish` gets the run's report when it ends. `inline`: the caller is a task of this run
    /// alone, which may do the first tasks' work itself (see `Outbox.flush`).
    @discardableResult
    func startRun(with event: Event, from source: Stage?, waitForRoom: Bool = true, inline: Bool = false,
                  onFinish: (@Sendable (RunReport) -> Void)? = nil) async -> RunState? {
        if waitForRoom {
            await runLimiter.acquire()
        } else if !runLimiter.tryAcquire() {
            return nil
        }
        if isEnding { runLimiter.release(); return nil }
        let run = register(limited: true, startedBy: source?.name)
        if let onFinish { run.setOnFinish(onFinish) }
        let envelope = Envelope(event: event, run: run, scatter: [])
        // Each target holds a token of the run; the run's own is given back once they are sent
        // (or handled here, with `inline`).
        var out = Outbox(stageCount: stages.count)
        if let source {
            source.deliver(envelope, &out)
        } else {
            for target in plan.roots { out.append(.event(envelope, slot: -1), to: target) }
        }
        out.release(run)
        await out.flush(self, inline: inline)
        return run
    }

    /// Starts the run a buffer's batch of several runs' events carries on in. It holds one
    /// token for the caller and does not count against `max_runs_in_flight`: it stands for
    /// runs that already do.
    func startBatchRun(from stage: Stage) -> RunState {
        register(limited: false, startedBy: stage.name)
    }

    /// Creates a run holding one token, makes it active, announces it and arms its deadline.
    private func register(limited: Bool, startedBy task: String?) -> RunState {
        let number = runCounter.add(1, ordering: .relaxed).newValue
        let run = RunState(number: number, prefix: runPrefix, startedAt: clock.uptime(), limited: limited, execution: self,
                           durable: number == 1 ? durable : nil)
        run.retain()
        state.withLock {
            $0.activeRuns[ObjectIdentifier(run)] = run
            if limited { $0.limitedRuns += 1 }
        }
        if !bus.isEmpty {
            bus.emit(EngineEvent(.runStarted, flow: plan.definition.name, runID: run.id, task: task, timestamp: clock.now()), run: run)
        }
        if let timeout = plan.definition.settings.runTimeout {
            let clock = self.clock
            run.setTimer(Task { [weak run] in
                guard (try? await clock.sleep(for: timeout)) != nil else { return }
                run?.fail("run exceeded its deadline of \(timeout.shortDescription)", task: nil)
            })
        }
        return run
    }

    var isEnding: Bool { state.withLock { $0.ending != nil } }

    private func sourceFinished() {
        let done = state.withLock { s -> Bool in
            s.sourcesRunning -= 1
            return s.sourcesRunning == 0 && s.activeRuns.isEmpty
        }
        if done { end(.natural) } else { runStalled() }
    }

    /// Some run has nothing left in flight but events held by buffers. When every open run is
    /// in that state and no more runs can start (the sources are done, or `max_runs_in_flight`
    /// is reached), nothing would ever move again: the buffers nearest the sources emit what
    /// they hold, and the flow goes on.
    func runStalled() {
        guard !plan.buffers.isEmpty else { return }
        let reason = state.withLock { s -> String? in
            guard s.ending == nil, !s.activeRuns.isEmpty else { return nil }
            let reason: String
            if s.sourcesRunning == 0 {
                reason = "completion"
            } else if s.limitedRuns >= plan.definition.settings.maxRunsInFlight {
                reason = "capacity"
            } else {
                return nil
            }
            for run in s.activeRuns.values where !run.isStalled { return nil }
            return reason
        }
        guard let reason else { return }
        let holding = plan.buffers.filter { index in
            guard case .buffer(let b) = stages[index].behavior else { return false }
            return b.heldCount.load(ordering: .sequentiallyConsistent) > 0
        }
        for index in holding where plan.upstreamBuffers[index]?.isDisjoint(with: holding) ?? true {
            stages[index].channel.sendControl(.drain(reason: reason))
        }
    }

    // MARK: - Stopping a scatter

    /// Scatters a gather gave up on (by frame id, with the reason) and the item attempts
    /// running now that such a stop cancels.
    private struct ScatterStops {
        var reasons: [UInt64: String] = [:]
        var running: [UInt64: (frames: [UInt64], cancel: @Sendable () -> Void)] = [:]
        var nextAttempt: UInt64 = 0
    }

    /// Stops the items of scatter `frame` that have not reached its gather: queued ones never
    /// start, running attempts are cancelled. Each is recorded as cancelled with `reason`.
    func stopScatter(_ frame: UInt64, reason: String) {
        let cancels = stops.withLock { s -> [@Sendable () -> Void] in
            s.reasons[frame] = s.reasons[frame] ?? reason
            return s.running.values.filter { $0.frames.contains(frame) }.map(\.cancel)
        }
        anyStopped.store(true, ordering: .sequentiallyConsistent)
        for cancel in cancels { cancel() }
    }

    /// Why an event at scatter position `scatter` was stopped, or nil when it goes on.
    func stopReason(_ scatter: [ScatterFrame]) -> String? {
        guard !scatter.isEmpty, anyStopped.load(ordering: .sequentiallyConsistent) else { return nil }
        return stops.withLock { s in
            for frame in scatter { if let reason = s.reasons[frame.id] { return reason } }
            return nil
        }
    }

    /// Whether a gather may stop work at scatter position `scatter` (else `stoppable` is not needed).
    func mayStop(_ scatter: [ScatterFrame]) -> Bool { gathers && !scatter.isEmpty }

    /// Runs `body` (an item's attempt, or its wait before a retry) so that stopping its scatter
    /// cancels it. Outside a scatter, or in a flow without a gather, it just runs `body`.
    func stoppable<T: Sendable>(_ scatter: [ScatterFrame], _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        guard mayStop(scatter) else { return try await body() }
        let task = Task { try await body() }
        let frames = scatter.map(\.id)
        let cancel: @Sendable () -> Void = { task.cancel() }
        let (id, stopped) = stops.withLock { s -> (UInt64, Bool) in
            s.nextAttempt += 1
            if frames.contains(where: { s.reasons[$0] != nil }) { return (s.nextAttempt, true) }
            s.running[s.nextAttempt] = (frames, cancel)
            return (s.nextAttempt, false)
        }
        if stopped { task.cancel() }
        defer { _ = stops.withLock { $0.running.removeValue(forKey: id) } }
        return try await withTaskCancellationHandler { try await task.value } onCancel: { task.cancel() }
    }

    /// Items of stopped scatters still queued when the execution ended (a failed gather stops a
    /// workflow): recorded as cancelled, so none goes missing.
    private func sweepStoppedItems() {
        guard anyStopped.load(ordering: .sequentiallyConsistent) else { return }
        for stage in stages {
            for case .event(let envelope, _) in stage.channel.takeRemaining() {
                if let reason = stopReason(envelope.scatter) { stage.cancelItem(envelope, reason: reason) }
            }
        }
    }

    /// A task attempt was stopped by cancellation.
    func noteInterrupted(_ task: String) {
        state.withLock { s in
            if !s.interrupted.contains(task) { s.interrupted.append(task) }
        }
    }

    func flush(run: RunState, stage: Int) {
        stages[stage].channel.sendControl(.flush(run))
    }

    /// A run failed before it finished; a workflow stops its other tasks at once.
    func runFailedEarly(_ run: RunState) {
        if stopOnRunFailure { end(.failedWorkflow) }
    }

    func runFinished(_ run: RunState, report: RunReport) {
        let (done, sourcesDone) = state.withLock { s -> (Bool, Bool) in
            guard s.activeRuns.removeValue(forKey: ObjectIdentifier(run)) != nil else { return (false, false) }
            if run.limited { s.limitedRuns -= 1 }
            switch report.status {
            case .completed: s.completed += 1
            case .failed: s.failed += 1
            default: s.cancelled += 1
            }
            return (s.sourcesRunning == 0 && s.activeRuns.isEmpty, s.sourcesRunning == 0)
        }
        if run.limited { runLimiter.release() }
        emitRunEnd(report, run: run)
        onRunFinished(report)
        run.takeOnFinish()?(report)
        if done { end(.natural) } else if sourcesDone { runStalled() }
    }

    private func emitRunEnd(_ report: RunReport, run: RunState, interrupted: [String]? = nil) {
        guard !bus.isEmpty else { return }
        let kind: EngineEvent.Kind = report.status == .completed ? .runCompleted : report.status.isWaiting ? .runSuspended : .runFailed
        let message = report.status == .cancelled ? "cancelled" : report.error
        bus.emit(EngineEvent(kind, flow: plan.definition.name, runID: report.id, task: report.failedTask, message: message,
                             duration: report.duration, interrupted: interrupted, timestamp: clock.now()), run: run)
    }

    private func end(_ ending: Ending) {
        let waiter = state.withLock { s -> CheckedContinuation<Ending, Never>? in
            guard s.ending == nil else { return nil }
            s.ending = ending
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume(returning: ending)
    }

    /// Reports runs that were still going when the execution stopped.
    private func finalize(_ ending: Ending) -> ExecutionSummary {
        let active = stages.filter { $0.activeAttempts.load(ordering: .relaxed) > 0 }.map(\.name)
        let interrupted = state.withLock { s in
            for name in active where !s.interrupted.contains(name) { s.interrupted.append(name) }
            return s.interrupted
        }
        let leftovers = state.withLock { s -> [RunState] in
            defer { s.activeRuns.removeAll() }
            return Array(s.activeRuns.values)
        }
        for run in leftovers.sorted(by: { $0.number < $1.number }) {
            let report = run.abandon(duration: clock.uptime() - run.startedAt)
            state.withLock {
                if report.status == .failed { $0.failed += 1 } else { $0.cancelled += 1 }
            }
            emitRunEnd(report, run: run, interrupted: interrupted)
            onRunFinished(report)
            run.takeOnFinish()?(report)
        }
        return state.withLock { s in
            ExecutionSummary(runsCompleted: s.completed, runsFailed: s.failed, runsCancelled: s.cancelled,
                             interrupted: ending == .cancelled, interruptedTasks: ending == .natural ? [] : interrupted)
        }
    }
}

/// Hands a source's events to the engine; each one starts a run.
public struct SourceEmitter: Sendable {
    let execution: FlowExecution
    let stage: Stage

    /// Emits one event; suspends while the flow is saturated (back-pressure).
    public func emit(_ event: Event) async throws {
        try Task.checkCancellation()
        var event = event
        if event.subject.isEmpty { event.subject = stage.name }
        if event.timestamp == 0 { event.timestamp = execution.clock.now().microsecondsSince1970 }
        await execution.startRun(with: event, from: stage)
    }

    /// Starts a run for `event` and returns its id, or nil when the flow has no room for
    /// another run (`max_runs_in_flight`) or is stopping: the caller refuses the message
    /// instead of waiting (a webhook answers 503). `onFinish` gets the run's report.
    public func tryStart(_ event: Event, inline: Bool = false, onFinish: @escaping @Sendable (RunReport) -> Void) async throws -> String? {
        try Task.checkCancellation()
        var event = event
        if event.subject.isEmpty { event.subject = stage.name }
        if event.timestamp == 0 { event.timestamp = execution.clock.now().microsecondsSince1970 }
        let run = await execution.startRun(with: event, from: stage, waitForRoom: false,
                                           inline: inline, onFinish: onFinish)
        return run?.id
    }

    /// The flow this source feeds.
    public var flowName: String { execution.plan.definition.name }
}

extension RunState {
    /// Ends a run that can no longer finish on its own (the execution stopped).
    func abandon(duration: Duration) -> RunReport {
        markCancelled()
        return finishReport(duration: duration)
    }
}
