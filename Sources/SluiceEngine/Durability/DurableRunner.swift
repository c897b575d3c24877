import Foundation
import SluiceCore
import Synchronization

/// Runs workflows durably on a store: every run is recorded, every task's output is
/// checkpointed as it completes, and a run whose process died is resumed from its checkpoints
/// by the next process (or a `sluice worker`) once its claim expires.
///
/// A run is executed under a claim from the store's run queue, renewed by a heartbeat. Every
/// write is fenced by that claim, so a process that lost it (stopped, partitioned, too slow to
/// heartbeat) can no longer record anything for the run and stops working on it.
public final class DurableRunner: Sendable {
    public struct Options: Sendable {
        /// How long a claim lasts without a heartbeat: a dead process's runs are taken over after this.
        public var claimTTL: Double
        /// A second trigger with the same idempotency key within this many seconds returns the first run.
        public var idempotencyWindow: Double
        /// This process's name in claims and leases.
        public var worker: String

        public init(claimTTL: Double = 15, idempotencyWindow: Double = 86_400, worker: String = DurableRunner.defaultWorkerName()) {
            self.claimTTL = claimTTL
            self.idempotencyWindow = idempotencyWindow
            self.worker = worker
        }

        var heartbeatInterval: Double { claimTTL / 3 }
    }

    /// How a durable run ended in this process.
    public struct Outcome: Sendable {
        public enum Ending: Sendable, Equatable {
            /// The run ended (completed, failed or cancelled); `record` says how.
            case finished
            /// An idempotency key matched an earlier run: nothing was started.
            case reused
            /// Stopped here (Ctrl-C, shutdown) and left resumable.
            case interrupted
            /// The claim passed to another process, or the store failed: this process stopped working on it.
            case lost(String)
        }

        public var record: RunRecord
        public var ending: Ending
        /// The run's result (leaf outputs), when it completed.
        public var result: Value?
        public var summary: ExecutionSummary?
    }

    public let store: any Store
    public let options: Options
    let engine: Engine
    let runLog = RunLogSink()
    let writer: StoreWriter
    /// Turns a stored definition back into a flow (the caller's loader and task catalog).
    let load: @Sendable (StoredFlow) throws -> FlowDefinition
    private let plans = Mutex<[String: FlowPlan]>([:])
    private let purged = Atomic<Bool>(false)
    /// Runs this process is executing now, so that cancelling one here stops it at once
    /// (another process's run notices at its next heartbeat).
    private let executing = Mutex<[String: Task<ExecutionSummary, Never>]>([:])

    /// The key under which a finished run's result is kept with its checkpoints.
    public static let resultKey = "$result"

    public init(engine: Engine, store: any Store, options: Options = Options(),
                load: @escaping @Sendable (StoredFlow) throws -> FlowDefinition) {
        var engine = engine
        engine.sinks.append(runLog)
        // Asset materializations are recorded where the runs are.
        if engine.assets.store == nil { engine.assets = AssetRuntime(store: store, claimTTL: options.claimTTL) }
        // Rate limits and concurrency slots are shared with every process on the store.
        if engine.limits.store == nil { engine.limits = SharedLimits(store: store) }
        self.engine = engine
        self.store = store
        self.options = options
        self.writer = StoreWriter(store: store)
        self.load = load
    }

    public static func defaultWorkerName() -> String {
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count)
        let name = String(decoding: host.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return "\(name):\(getpid()):\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
    }

    /// A new run id: sortable by creation time, unique across processes.
    public static func newRunID(at date: Date) -> String {
        let millis = String(UInt64(date.timeIntervalSince1970 * 1000), radix: 36)
        let random = String(UInt64.random(in: 0..<(1 << 40)), radix: 36)
        return millis + "-" + String(repeating: "0", count: max(0, 8 - random.count)) + random
    }

    /// Prepares a flow with this runner's engine (its events go to the run log).
    public func prepare(_ definition: FlowDefinition) throws(FlowErrors) -> FlowPlan {
        try engine.prepare(definition)
    }

    private var now: Date { engine.clock.now() }

    // MARK: - Starting, resuming, retrying

    /// Records a new run of `plan` (whose definition's text is `source`), claims it and runs it here.
    public func start(_ plan: FlowPlan, source: String, input: Value = .emptyObject, trigger: String = "cli",
                      idempotencyKey: String? = nil) async throws -> Outcome {
        let (stored, isNew) = try await record(plan, source: source, input: input, trigger: trigger, idempotencyKey: idempotencyKey)
        if !isNew { return Outcome(record: stored, ending: .reused, result: try await result(of: stored)) }
        return try await claimAndExecute(stored, plan: plan, fresh: true)
    }

    /// Records a new run to be executed by whichever worker claims it first.
    public func enqueue(_ plan: FlowPlan, source: String, input: Value = .emptyObject, trigger: String = "cli",
                        idempotencyKey: String? = nil) async throws -> RunRecord {
        let (stored, isNew) = try await record(plan, source: source, input: input, trigger: trigger, idempotencyKey: idempotencyKey)
        if isNew { try await store.enqueue(runID: stored.id, now: now) }
        return stored
    }

    /// Records a new queued run, or finds the earlier run with the same idempotency key (`isNew` false).
    private func record(_ plan: FlowPlan, source: String, input: Value, trigger: String,
                        idempotencyKey: String?) async throws -> (RunRecord, isNew: Bool) {
        let flow = try await save(plan, source: source)
        let record = RunRecord(id: Self.newRunID(at: now), flow: flow.name, flowHash: flow.hash, status: .queued, trigger: trigger,
                               input: input, idempotencyKey: idempotencyKey, created: now)
        let stored = try await store.createRun(record, idempotencyWindow: options.idempotencyWindow)
        return (stored, stored.id == record.id)
    }

    /// Stores a definition once per process and keeps its plan for the runs that name it.
    private func save(_ plan: FlowPlan, source: String) async throws -> StoredFlow {
        let flow = StoredFlow(name: plan.definition.name, source: source, created: now)
        if plans.withLock({ $0[flow.hash] }) == nil {
            try await store.saveFlow(flow)
            plans.withLock { $0[flow.hash] = $0[flow.hash] ?? plan }
        }
        return flow
    }

    /// Resumes an unfinished run here: its completed tasks come from their checkpoints. While
    /// another process holds it, its end is awaited (or it is taken over once that claim runs out).
    public func resume(runID: String) async throws -> Outcome {
        guard let record = try await store.run(id: runID) else { throw StoreError.notFound("run \(runID)") }
        if record.status.isFinal {
            throw DurableError("run \(runID) has already ended (\(record.status)); `sluice runs retry \(runID)` starts it again")
        }
        return try await claimAndExecute(record, plan: try await plan(for: record))
    }

    /// Resumes every unfinished run (of `flow`, or of any flow) that no live process holds.
    /// Answers what became of each.
    public func resumeOrphans(flow: String? = nil) async throws -> [Outcome] {
        var outcomes: [Outcome] = []
        for record in try await store.runs(RunFilter(flow: flow, statuses: [.queued, .running], limit: 1000)).reversed() {
            try await store.enqueue(runID: record.id, now: now)
            guard let claim = try await store.claim(runID: record.id, worker: options.worker, ttl: options.claimTTL, now: now) else {
                continue
            }
            outcomes.append(try await execute(record, plan: try await plan(for: record), claim: claim))
        }
        return outcomes
    }

    /// Starts `runID` again as a new run with the same flow definition and input. Tasks that
    /// completed in the old run keep their outputs, except `from` and everything downstream of
    /// it, which run again; without `from`, only what did not complete runs.
    public func retry(runID: String, from task: String? = nil) async throws -> Outcome {
        let (record, plan) = try await recordRetry(runID: runID, from: task)
        return try await claimAndExecute(record, plan: plan)
    }

    /// Records the retry of `runID` as `retry` does and queues it for a worker.
    public func queueRetry(runID: String, from task: String? = nil) async throws -> RunRecord {
        let (record, _) = try await recordRetry(runID: runID, from: task)
        try await store.enqueue(runID: record.id, now: now)
        return record
    }

    /// Queues an unfinished run for a worker to resume (one that no live process holds is
    /// claimed at once; one that another process executes is left to it).
    public func queueResume(runID: String) async throws -> RunRecord {
        guard let record = try await store.run(id: runID) else { throw StoreError.notFound("run \(runID)") }
        if record.status.isFinal {
            throw DurableError("run \(runID) has already ended (\(record.status)); retry starts it again")
        }
        if record.status.isWaiting {
            throw DurableError("run \(runID) waits at a gate (\(record.status)); approve, reject or signal it instead")
        }
        try await store.enqueue(runID: runID, now: now)
        return record
    }

    private func recordRetry(runID: String, from task: String?) async throws -> (RunRecord, FlowPlan) {
        guard let old = try await store.run(id: runID) else { throw StoreError.notFound("run \(runID)") }
        let plan = try await plan(for: old)
        var redo: Set<String> = []
        if let task {
            guard plan.definition.task(named: task) != nil else {
                let names = plan.definition.tasks.map(\.name).joined(separator: ", ")
                throw DurableError("flow '\(old.flow)' has no task '\(task)' (its tasks: \(names))")
            }
            redo = plan.definition.downstream(of: task)
        }
        let kept = try await store.checkpoints(runID: runID).filter { key, _ in
            let name = key.split(whereSeparator: { $0 == "@" || $0 == "[" }).first.map(String.init) ?? key
            return key != Self.resultKey && !redo.contains(name)
        }
        let record = RunRecord(id: Self.newRunID(at: now), flow: old.flow, flowHash: old.flowHash, status: .queued, trigger: "retry",
                               input: old.input, created: now)
        _ = try await store.createRun(record, idempotencyWindow: 0)
        try await store.commit(StoreBatch(
            checkpoints: kept.map { .init(runID: record.id, key: $0.key, output: $0.value) },
            events: [.init(runID: record.id, event: ["type": "run_retried", "run": .string(record.id), "from_run": .string(runID),
                                                     "from_task": task.map(Value.string) ?? .null])]))
        return (record, plan)
    }

    /// Marks a run cancelled. The run's queue claim is taken from whoever holds it (as if it had
    /// run out) and the run leaves the queue with the cancel: a process still executing it finds
    /// its claim gone, so its next write is refused and it stops, instead of finishing and
    /// writing `completed` over the cancel. A run this process executes stops at once. A run
    /// that is not queued (waiting at a gate) has no claim to take.
    public func cancel(runID: String, reason: String = "cancelled") async throws -> RunRecord {
        // Claimed before the run is read, so a run that ends meanwhile cannot be overwritten.
        let seized = try await store.claim(runID: runID, worker: "cancel", ttl: 0, now: .distantFuture)
        let current = try await store.run(id: runID)
        guard var record = current, !record.status.isFinal else {
            if let seized { _ = try? await store.finish(seized) }
            guard let current else { throw StoreError.notFound("run \(runID)") }
            throw DurableError("run \(runID) has already ended (\(current.status))")
        }
        record.status = .cancelled
        record.ended = now
        record.error = reason
        var batch = StoreBatch(runs: [record], events: [.init(runID: runID, event: ["type": "run_cancelled", "run": .string(runID)])],
                               fence: seized)
        batch.finishesClaim = seized != nil
        do {
            try await store.commit(batch)
        } catch {
            // Another cancel took the claim after this one: the run is cancelled all the same.
            if let current = try? await store.run(id: runID), current.status == .cancelled { return current }
            // Otherwise the claim is handed back (expired at once), so the run can be resumed.
            if let seized { _ = try? await store.heartbeat(seized, ttl: 0, now: now) }
            throw error
        }
        executing.withLock { $0[runID] }?.cancel()
        await retireGates(record)
        return record
    }

    /// Closes a finished run's gates and starts their retention. Best effort: the run has
    /// ended either way; a store problem here leaves its gates without an expiry.
    private func retireGates(_ record: RunRecord) async {
        let clock = engine.clock
        try? await Gates(store: store, now: { clock.now() }).retire(run: record.id, ending: record.status)
    }

    // MARK: - Workers

    /// Tells `work` to stop claiming runs and return once the runs it is executing have ended.
    public final class Drain: Sendable {
        private let flag = Atomic<Bool>(false)
        public init() {}
        public func start() { flag.store(true, ordering: .relaxed) }
        public var isDraining: Bool { flag.load(ordering: .relaxed) }
    }

    /// Claims and executes queued runs (and runs whose process died), `concurrency` at a time,
    /// until the calling task is cancelled (runs in flight are interrupted and stay resumable)
    /// or `drain` starts (runs in flight finish first).
    public func work(concurrency: Int = 4, poll: Duration = .milliseconds(100), drain: Drain? = nil) async {
        let going = { @Sendable in !Task.isCancelled && !(drain?.isDraining ?? false) }
        await withTaskGroup(of: Void.self) { group in
            // Gates whose deadline passed queue their runs again, for on_timeout to apply.
            group.addTask {
                let clock = self.engine.clock
                let gates = Gates(store: self.store, now: { clock.now() })
                while going() {
                    _ = try? await gates.wakeExpired()
                    try? await Task.sleep(for: .seconds(1))
                }
            }
            for _ in 0..<max(1, concurrency) {
                group.addTask {
                    while going() {
                        do {
                            if try await self.workOnce() == nil { try await Task.sleep(for: poll) }
                        } catch is CancellationError {
                            return
                        } catch {
                            let event = EngineEvent(.log, flow: "", runID: "", message: "worker: \(error)", level: "error",
                                                    timestamp: self.now)
                            for sink in self.engine.sinks { sink.receive(event) }
                            try? await Task.sleep(for: poll)
                        }
                    }
                }
            }
        }
    }

    /// Expired cached results and key-value entries (finished runs' gates among them) are
    /// deleted, not only skipped: once when a process starts running.
    private func purgeOnce() async throws {
        if !purged.exchange(true, ordering: .relaxed) {
            _ = try await store.purgeExpiredResults(now: now)
            _ = try await store.purgeExpiredEntries(now: now)
        }
    }

    /// Claims one run and executes it; nil when nothing was claimable.
    public func workOnce() async throws -> Outcome? {
        try await purgeOnce()
        guard let claim = try await store.claimRun(worker: options.worker, ttl: options.claimTTL, now: now) else { return nil }
        guard let record = try await store.run(id: claim.name), !record.status.isFinal else {
            try await store.finish(claim)
            return try await store.run(id: claim.name).map { Outcome(record: $0, ending: .finished) }
        }
        let plan: FlowPlan
        do {
            plan = try await self.plan(for: record)
        } catch {
            // A definition this process cannot load fails the run rather than looping on it.
            var failed = record
            failed.status = .failed
            failed.ended = now
            failed.error = "cannot load the flow definition: \(error)"
            try await store.commit(StoreBatch(runs: [failed], fence: claim))
            try await store.finish(claim)
            return Outcome(record: failed, ending: .finished)
        }
        return try await execute(record, plan: plan, claim: claim)
    }

    // MARK: - Executing a claimed run

    /// `fresh`: the run was created just now, so it has no checkpoints or attempts to read.
    private func claimAndExecute(_ record: RunRecord, plan: FlowPlan, fresh: Bool = false) async throws -> Outcome {
        try await purgeOnce()
        try await store.enqueue(runID: record.id, now: now)
        guard let claim = try await store.claim(runID: record.id, worker: options.worker, ttl: options.claimTTL, now: now) else {
            // Another process holds it: a worker that polled the queue first (a run created or
            // requeued a moment ago), or one that crashed and whose claim has not run out yet.
            return try await followElsewhere(record, plan: plan)
        }
        return try await execute(record, plan: plan, claim: claim, fresh: fresh)
    }

    /// Waits for a run another process is executing to end (or to be left: then it is taken over here).
    private func followElsewhere(_ record: RunRecord, plan: FlowPlan) async throws -> Outcome {
        while true {
            try await Task.sleep(for: .milliseconds(50))
            guard let current = try await store.run(id: record.id) else { throw StoreError.notFound("run \(record.id)") }
            if current.status.isFinal || current.status.isWaiting {
                return Outcome(record: current, ending: .finished, result: try await result(of: current))
            }
            if let claim = try await store.claim(runID: record.id, worker: options.worker, ttl: options.claimTTL, now: now) {
                return try await execute(current, plan: plan, claim: claim)
            }
        }
    }

    private func execute(_ record: RunRecord, plan: FlowPlan, claim: Lease, fresh: Bool = false) async throws -> Outcome {
        var record = record
        let checkpoints = fresh ? [:] : try await store.checkpoints(runID: record.id)
        var prior: [String: Int] = [:]
        for a in fresh ? [] : try await store.attempts(runID: record.id) { prior[a.task] = max(prior[a.task] ?? 0, a.attempt) }
        let durable = DurableRun(id: record.id, writer: writer, checkpoints: checkpoints, priorAttempts: prior, fence: claim)
        runLog.register(durable)
        defer { runLog.unregister(durable) }

        record.status = .running
        record.started = record.started ?? now
        // Who holds the run, in its log: a run taken over after a crash shows both claims.
        let claimed: Value = ["type": "run_claimed", "time": .string(EngineEvent.iso8601(now)), "run": .string(record.id),
                              "worker": .string(claim.holder), "generation": .int(claim.generation),
                              "resumed_tasks": .int(Int64(checkpoints.count))]
        // Posted: it goes out with the first task's checkpoint, or on its own if that comes later.
        writer.post(StoreBatch(runs: [record], events: [.init(runID: record.id, event: claimed)], fence: claim))

        let reports = ReportCollector()
        let (input, runID, engine) = (record.input, record.id, self.engine)
        let work = Task { await engine.run(plan, input: Event(data: input), durable: durable) { reports.add($0) } }
        executing.withLock { $0[runID] = work }
        defer { executing.withLock { _ = $0.removeValue(forKey: runID) } }
        let heartbeat = Task { await self.keepClaim(claim, runID: runID, work: work) }
        let summary = await withTaskCancellationHandler { await work.value } onCancel: { work.cancel() }
        heartbeat.cancel()
        let stopReason = await heartbeat.value

        if let lost = durable.lost.withLock({ $0 }) ?? stopReason.flatMap({ $0 == "cancelled" ? nil : $0 }) {
            // A cancel takes the claim: that is how the run ended, not a lost claim.
            if let current = try? await store.run(id: record.id), current.status == .cancelled {
                return Outcome(record: current, ending: .finished, summary: summary)
            }
            return Outcome(record: record, ending: .lost(lost), summary: summary)
        }
        if stopReason == "cancelled" || summary.interrupted, let current = try await store.run(id: record.id), current.status == .cancelled {
            try? await writer.flush()
            try await store.finish(claim)
            return Outcome(record: current, ending: .finished, summary: summary)
        }
        if summary.interrupted {
            // Stopped from outside (Ctrl-C, shutdown): left resumable at once, by any process.
            try? await writer.flush()
            _ = try? await store.heartbeat(claim, ttl: 0, now: now)
            return Outcome(record: record, ending: .interrupted, summary: summary)
        }
        let report = reports.reports.first
        if report?.status == .queued {
            // A gate asked for the run to start again from its checkpoints (on_timeout: retry).
            try await writer.flush()
            return try await execute(record, plan: plan, claim: claim)
        }
        record.status = report?.status ?? .failed
        record.ended = now
        record.error = report?.error
        var batch = StoreBatch(runs: [record], fence: claim)
        batch.finishesClaim = true
        if record.status == .completed, let report {
            batch.checkpoints.append(.init(runID: record.id, key: Self.resultKey, output: report.resultValue))
        }
        do {
            try await writer.commit(batch)
        } catch let error as StoreError {
            if case .leaseLost(let why) = error { return Outcome(record: record, ending: .lost(why), summary: summary) }
            throw error
        }
        if record.status.isFinal { await retireGates(record) }
        return Outcome(record: record, ending: .finished, result: record.status == .completed ? report?.resultValue : nil, summary: summary)
    }

    /// Renews the claim until cancelled; stops the run's work when the claim is lost or the
    /// run was cancelled from elsewhere, and answers why ("cancelled" for the latter).
    private func keepClaim(_ claim: Lease, runID: String, work: Task<ExecutionSummary, Never>) async -> String? {
        var claim = claim
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: .seconds(options.heartbeatInterval))
            } catch {
                return nil
            }
            do {
                guard let renewed = try await store.heartbeat(claim, ttl: options.claimTTL, now: now) else {
                    work.cancel()
                    return "the claim on run \(runID) expired and may have passed to another process"
                }
                claim = renewed
                if try await store.run(id: runID)?.status == .cancelled {
                    work.cancel()
                    return "cancelled"
                }
            } catch {
                // A store that cannot be reached: keep trying until the claim would have run out.
                if now >= claim.expires {
                    work.cancel()
                    return "the store could not be reached to renew the claim on run \(runID): \(error)"
                }
            }
        }
        return nil
    }

    // MARK: - Definitions and results

    /// The plan of the exact definition a run was started with.
    func plan(for record: RunRecord) async throws -> FlowPlan {
        if let plan = plans.withLock({ $0[record.flowHash] }) { return plan }
        guard let flow = try await store.flow(hash: record.flowHash) else {
            throw StoreError.corrupt("run \(record.id) refers to flow definition \(record.flowHash), which is not in the store")
        }
        let plan = try engine.prepare(try load(flow))
        plans.withLock { $0[flow.hash] = $0[flow.hash] ?? plan }
        return plan
    }

    /// A completed run's result, as recorded when it ended.
    public func result(of record: RunRecord) async throws -> Value? {
        guard record.status == .completed else { return nil }
        return try await store.checkpoints(runID: record.id)[Self.resultKey]
    }
}

/// A durable-run request that cannot be carried out, with the reason.
public struct DurableError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension FlowDefinition {
    /// `task` and every task that depends on it, directly or not.
    public func downstream(of task: String) -> Set<String> {
        var found: Set<String> = [task]
        var changed = true
        while changed {
            changed = false
            for t in tasks where !found.contains(t.name) && t.dependencies.contains(where: found.contains) {
                found.insert(t.name)
                changed = true
            }
        }
        return found
    }
}
