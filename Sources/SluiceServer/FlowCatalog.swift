import Foundation
import Logging
import SluiceConfig
import SluiceCore
import SluiceEngine
import Synchronization

/// The flows a server serves: loaded from the flows folder, kept running (sources and
/// schedules), and reloaded when their files change. An edit that does not load keeps the
/// version that runs and records the error; a valid one is started before the old one stops.
final class FlowCatalog: Sendable {
    /// What a flow does when nothing asks: stream (sources), scheduled, or on demand.
    enum Kind: String, Sendable { case stream, scheduled, workflow }

    /// One flow file and the version of it that runs.
    struct Entry: Sendable {
        var id: String
        var file: String
        /// The text that was last read, and its hash.
        var digest: String
        /// The version that runs (nil when the file never loaded).
        var active: Version?
        /// Why the file as it is now does not run (the active version, if any, is older).
        var errors: [String] = []
        var errorAt: Date?
    }

    struct Version: Sendable {
        var plan: FlowPlan
        var source: String
        var digest: String
        var loaded: Date
        var kind: Kind
        var running: Running?
    }

    /// How a running version is stopped.
    struct Running: Sendable {
        var control: ExecutionControl?
        var task: Task<Void, Never>
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var stopping = false
    }

    let root: String
    let loader: FlowLoader
    let runner: DurableRunner
    let engine: Engine
    let webhooks: WebhookRouter
    let config: ServeConfig
    let logger: Logger
    private let state = Mutex(State())
    private let sourceErrors: SourceErrors

    init(root: String, loader: FlowLoader, engine: Engine, runner: DurableRunner, webhooks: WebhookRouter, config: ServeConfig,
         sourceErrors: SourceErrors, logger: Logger) {
        self.root = root
        self.loader = loader
        self.engine = engine
        self.runner = runner
        self.webhooks = webhooks
        self.config = config
        self.sourceErrors = sourceErrors
        self.logger = logger
    }

    // MARK: - Reading

    var entries: [Entry] { state.withLock { Array($0.entries.values) }.sorted { $0.id < $1.id } }

    func entry(_ id: String) -> Entry? { state.withLock { $0.entries[id] } }

    /// The plan and source of a flow that loaded, for starting runs.
    func active(_ id: String) -> Version? { state.withLock { $0.entries[id]?.active } }

    /// Whether every flow file loads (for /health/ready and the dashboard).
    var problems: [String: [String]] {
        state.withLock { s in s.entries.filter { !$0.value.errors.isEmpty }.mapValues(\.errors) }
    }

    // MARK: - Loading

    /// A flow's identity: its path under the flows folder, without the extension.
    static func identity(of file: String, under root: String) -> String {
        var relative = file
        let base = root.hasSuffix("/") ? root : root + "/"
        if file.hasPrefix(base) { relative = String(file.dropFirst(base.count)) } else if file == root { relative = (file as NSString).lastPathComponent }
        return (relative as NSString).deletingPathExtension
    }

    /// The flow files now under the root, by identity.
    func scanFiles() -> [String: String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory) else { return [:] }
        var out: [String: String] = [:]
        for file in FlowLoader.flowFiles(at: root) {
            let name = (file as NSString).lastPathComponent
            // Hidden files and editors' temporary copies are not flows.
            if name.hasPrefix(".") || name.hasSuffix("~") || file.contains("/.") { continue }
            out[Self.identity(of: file, under: isDirectory.boolValue ? root : (root as NSString).deletingLastPathComponent)] = file
        }
        return out
    }

    /// A loaded definition as the server runs it: named by its identity, with the configured
    /// retry policy on tasks that set none. Workers apply the same to stored flows.
    func normalize(_ definition: FlowDefinition, id: String) -> FlowDefinition {
        var d = definition
        if d.labels["display_name"] == nil, d.name != id, !d.name.isEmpty { d.labels["display_name"] = .string(d.name) }
        d.name = id
        if let attempts = config.retryAttempts, d.settings.retry == nil {
            d.settings.retry = RetryPolicy(maxAttempts: max(1, attempts), initialBackoff: config.retryInitialBackoff, maxBackoff: config.retryMaxBackoff)
        }
        return d
    }

    /// Reads the folder once: loads new and changed files, stops deleted ones. Returns what changed.
    @discardableResult
    func reload() async -> [String] {
        let files = scanFiles()
        var changes: [String] = []
        let known = state.withLock { s in s.entries.mapValues(\.digest) }
        for (id, file) in files.sorted(by: { $0.key < $1.key }) {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { continue }
            let digest = Digest.sha256Hex(Array(text.utf8))
            if known[id] == digest { continue }
            changes.append(id)
            await load(id: id, file: file, text: text, digest: digest)
        }
        for id in known.keys where files[id] == nil {
            changes.append(id)
            let removed = state.withLock { $0.entries.removeValue(forKey: id) }
            if let running = removed?.active?.running { await stop(running, id: id) }
            logger.info("flow removed", metadata: ["flow": .string(id)])
        }
        return changes
    }

    private func load(id: String, file: String, text: String, digest: String) async {
        let previous = state.withLock { $0.entries[id] }
        var entry = previous ?? Entry(id: id, file: file, digest: digest)
        entry.file = file
        entry.digest = digest
        do {
            let definition = normalize(try loader.load(text: text, file: file), id: id)
            var plan = try engine.prepare(definition)
            // Durable runs log their events to the store through the runner's plan.
            if !plan.isStream { plan = try runner.prepare(definition) }
            try checkEndpoints(plan, id: id)
            var version = Version(plan: plan, source: text, digest: digest, loaded: Date(), kind: Self.kind(of: plan), running: nil)
            // The new version starts before the old one stops: a webhook's path passes from
            // one to the other without a gap.
            version.running = try await start(version, id: id)
            let old = previous?.active?.running
            entry.active = version
            entry.errors = []
            entry.errorAt = nil
            state.withLock { $0.entries[id] = entry }
            if let old { await stop(old, id: id) }
            logger.info(previous?.active == nil ? "flow loaded" : "flow reloaded",
                        metadata: ["flow": .string(id), "kind": .string(version.kind.rawValue), "file": .string(file)])
        } catch {
            let messages = (error as? FlowErrors)?.errors.map(\.description) ?? ["\(error)"]
            entry.errors = messages
            entry.errorAt = Date()
            state.withLock { $0.entries[id] = entry }
            logger.error("flow not loaded\(entry.active != nil ? "; the previous version keeps running" : ""): \(messages.joined(separator: "; "))",
                         metadata: ["flow": .string(id), "file": .string(file)])
        }
    }

    static func kind(of plan: FlowPlan) -> Kind {
        if plan.isStream { return .stream }
        if plan.definition.settings.schedule != nil || plan.definition.tasks.contains(where: { $0.asset?.schedule != nil }) { return .scheduled }
        return .workflow
    }

    /// Refuses a flow whose webhook path another flow serves.
    private func checkEndpoints(_ plan: FlowPlan, id: String) throws {
        var errors: [FlowError] = []
        for task in plan.definition.tasks {
            guard let (method, path) = WebhookRouter.endpoint(of: task) else { continue }
            if let owner = webhooks.owner(method: method, path: path), owner != id {
                errors.append(FlowError(.invalidValue, "\(method) \(path) is already served by flow '\(owner)'", at: task.location))
            }
        }
        if !errors.isEmpty { throw FlowErrors(errors) }
    }

    /// Starts what keeps a version busy: its sources, or its schedule. A stream whose
    /// endpoints do not come up (a source failed at once) is an error, and the old version stays.
    private func start(_ version: Version, id: String) async throws -> Running? {
        switch version.kind {
        case .workflow:
            return nil
        case .scheduled:
            let runner = self.runner, plan = version.plan, source = version.source
            // Each asset's schedule queues materializations of its partitions.
            var schedulers = try Scheduler.assetSchedulers(of: plan, source: source, flow: id, runner: runner, logger: logger)
            if let schedule = plan.definition.settings.schedule {
                schedulers.append(try Scheduler(schedule: schedule, flow: id, store: runner.store, holder: runner.options.worker,
                                                leaseTTL: runner.options.claimTTL, logger: logger) { tick in
                    // Queued: whichever server's worker claims it first runs it.
                    _ = try await runner.enqueue(plan, source: source, input: tick.input, trigger: "schedule",
                                                 idempotencyKey: Scheduler.claimKey(schedule: id, tick: tick.time))
                })
            }
            return Running(control: nil, task: Task {
                await withTaskGroup(of: Void.self) { group in
                    for scheduler in schedulers { group.addTask { await scheduler.run() } }
                }
            })
        case .stream:
            let control = ExecutionControl()
            let engine = self.engine, plan = version.plan, logger = self.logger
            sourceErrors.clear(flow: id)
            // The new version has come up once its sources have registered every endpoint
            // (an old version of the same flow holds the same paths until it stops).
            let endpoints = plan.definition.tasks.compactMap(WebhookRouter.endpoint(of:)).count
            let registeredBefore = webhooks.registrations(flow: id)
            let task: Task<Void, Never>
            if plan.definition.settings.requireLeaderElection {
                // One server on the store runs it; another takes over when that one stops.
                let leadership = Leadership(store: runner.store, name: "flow:" + id, holder: runner.options.worker, ttl: runner.options.claimTTL)
                let box = TaskBox()
                task = Task {
                    _ = await leadership.run(onChange: { leading, _ in
                        logger.info(leading ? "leading the flow (require_leader_election)" : "lost the lead of the flow", metadata: ["flow": .string(id)])
                    }) {
                        _ = await engine.run(plan, control: control)
                        // Stopped on purpose: do not lead again.
                        if control.isStopRequested { box.task?.cancel() }
                    }
                }
                box.task = task
                if control.isStopRequested { task.cancel() }
            } else {
                task = Task {
                    let summary = await engine.run(plan, control: control)
                    logger.debug("flow execution ended", metadata: ["flow": .string(id), "runs": .string("\(summary.runsCompleted)")])
                }
            }
            let running = Running(control: control, task: task)
            // Bounded: a source registers its endpoint as soon as it starts (a flow that waits
            // for the lead serves nothing yet).
            for _ in 0..<200 where endpoints > 0 && !plan.definition.settings.requireLeaderElection {
                if let message = sourceErrors.message(flow: id) {
                    task.cancel()
                    throw FlowErrors([FlowError(.invalidValue, "the flow's source stopped: \(message)", at: nil)])
                }
                if webhooks.registrations(flow: id) >= registeredBefore + endpoints { break }
                try? await Task.sleep(for: .milliseconds(10))
            }
            return running
        }
    }

    /// Stops a version: its sources end, its runs in flight finish (within the grace period).
    private func stop(_ running: Running, id: String) async {
        if let control = running.control {
            control.stopSources()
            let finished = await withTaskGroup(of: Bool.self) { group in
                group.addTask { await running.task.value; return true }
                group.addTask { try? await Task.sleep(for: self.config.gracePeriod); return false }
                let first = await group.next() ?? false
                group.cancelAll()
                return first
            }
            if !finished {
                logger.warning("runs of the old version did not finish within the grace period; cancelling them", metadata: ["flow": .string(id)])
                running.task.cancel()
                await running.task.value
            }
        } else {
            running.task.cancel()
            await running.task.value
        }
    }

    /// Stops every flow: sources stop taking events, runs in flight get the grace period.
    func stopAll() async {
        let running = state.withLock { s -> [(String, Running)] in
            s.stopping = true
            return s.entries.values.compactMap { e in e.active?.running.map { (e.id, $0) } }
        }
        await withTaskGroup(of: Void.self) { group in
            for (id, r) in running { group.addTask { await self.stop(r, id: id) } }
        }
    }

    /// Reloads every `interval` until cancelled.
    func watch(every interval: Duration) async {
        guard interval > .zero else { return }
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            if Task.isCancelled || state.withLock({ $0.stopping }) { return }
            await reload()
        }
    }
}

/// Notes why a flow's source stopped (a `task_failed` event outside any run), so the catalog
/// can tell a version that came up from one that did not.
final class SourceErrors: EngineEventSink {
    private let errors = Mutex<[String: String]>([:])
    var wantsTaskEvents: Bool { false }
    // Only events of no run matter here.
    var splitsRuns: Bool { true }
    func sink(forRun id: String, flow: String) -> (any EngineEventSink)? { NoRunEvents() }

    func receive(_ event: EngineEvent) {
        guard event.runID.isEmpty, event.kind == .taskFailed else { return }
        errors.withLock { $0[event.flow] = event.message ?? "failed" }
    }

    func clear(flow: String) { _ = errors.withLock { $0.removeValue(forKey: flow) } }

    func message(flow: String) -> String? { errors.withLock { $0[flow] } }
}

/// Writes what tasks log (the `log` task, `ctx.log` in scripts, child processes' lines) to the
/// server's log, with the flow, run and task as metadata. A class: each event hands the sink
/// on, and a reference is cheaper to pass than a logger.
final class TaskLogForwarder: EngineEventSink {
    let logger: Logger
    var wantsTaskEvents: Bool { false }

    init(logger: Logger) {
        self.logger = logger
    }

    func receive(_ event: EngineEvent) {
        let level: Logger.Level
        switch event.kind {
        case .log: level = event.level.flatMap(Logger.Level.init(rawValue:)) ?? (event.level == "warn" ? .warning : .info)
        case .stdout, .stderr: level = .debug
        default: return
        }
        var metadata: Logger.Metadata = ["flow": .string(event.flow)]
        if !event.runID.isEmpty { metadata["run"] = .string(event.runID) }
        if let task = event.task { metadata["task"] = .string(task) }
        logger.log(level: level, "\(event.message ?? "")", metadata: metadata)
    }
}

/// Lets a task's own body reach the task (to cancel it).
final class TaskBox: Sendable {
    private let slot = Mutex<Task<Void, Never>?>(nil)
    var task: Task<Void, Never>? {
        get { slot.withLock { $0 } }
        set { slot.withLock { $0 = newValue } }
    }
}
