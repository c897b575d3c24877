import Foundation
import SluiceCore

/// Where Sluice keeps what must outlive a process: flow definitions, runs, task attempts and
/// their checkpoints, the run event log, the result cache, the key-value cache, leases and the
/// run queue. Three backends implement it (memory, SQLite, PostgreSQL) and pass one
/// conformance suite (`StoreConformance` in SluiceTesting).
///
/// Every time-dependent call takes `now` from the caller (the engine's clock), so expiry, leases
/// and queue claims behave the same on every backend and tests control time. Nodes sharing a
/// PostgreSQL store therefore need synchronised clocks (NTP); lease times should be well above
/// the skew.
public protocol Store: Sendable {
    // MARK: Flows

    /// Records a flow definition under its content hash; storing the same hash again is a no-op.
    func saveFlow(_ flow: StoredFlow) async throws
    func flow(hash: String) async throws -> StoredFlow?

    // MARK: Runs

    /// Records a new run. With an idempotency key already used by a run created at or after
    /// `window`'s start, nothing is created and that earlier run comes back instead.
    func createRun(_ run: RunRecord, idempotencyWindow: Double) async throws -> RunRecord
    func run(id: String) async throws -> RunRecord?
    /// Newest first.
    func runs(_ filter: RunFilter) async throws -> [RunRecord]

    // MARK: Task attempts and checkpoints

    /// Applies every write of `batch` in one transaction, or none of them: run updates
    /// (`StoreError.notFound` for an unknown run), attempts (replacing the one with the same
    /// run, task and number), checkpoints, events, materializations (replacing the one with the
    /// same id, inputs included) and audit entries (appended, ids assigned in order). With a `fence`, nothing is written unless
    /// that queue claim is still current (`StoreError.leaseLost`): a worker that lost its run
    /// cannot overwrite the work of the one that took it over. With `finishesClaim`, the run
    /// also leaves the queue, as `finish` would.
    func commit(_ batch: StoreBatch) async throws
    /// In the order they started.
    func attempts(runID: String) async throws -> [TaskAttempt]
    /// Completed tasks' outputs by checkpoint key; resume takes them instead of running the tasks again.
    func checkpoints(runID: String) async throws -> [String: Value]

    // MARK: Run event log

    /// The run's event log (each event as its JSON object), in the order committed.
    func events(runID: String) async throws -> [Value]

    // MARK: Assets and audit

    /// Materializations (written through `commit`), newest first.
    func materializations(_ filter: MaterializationFilter) async throws -> [Materialization]
    /// Downstream lineage: the materializations that read `asset` (its `partition` only, when
    /// given), newest first.
    func readers(of asset: String, partition: String?, limit: Int) async throws -> [Materialization]
    /// The audit log (written through `commit`), newest first.
    func audit(_ filter: AuditFilter) async throws -> [AuditEntry]

    // MARK: Result cache

    func cachedResult(key: String, now: Date) async throws -> Value?
    func saveResult(key: String, value: Value, expires: Date) async throws
    /// Deletes expired results; answers how many went.
    func purgeExpiredResults(now: Date) async throws -> Int

    // MARK: Key-value cache

    func get(_ bucket: KVBucket, _ key: String, now: Date) async throws -> KVEntry?
    /// Stores a value; answers the entry with its new revision.
    @discardableResult
    func put(_ bucket: KVBucket, _ key: String, _ value: Value, ttl: Double?, now: Date) async throws -> KVEntry
    /// Stores only when the key is absent or expired; nil when it was there.
    func create(_ bucket: KVBucket, _ key: String, _ value: Value, ttl: Double?, now: Date) async throws -> KVEntry?
    /// Stores only when the live entry has `revision`; nil when it did not (changed, deleted, expired).
    func compareAndSet(_ bucket: KVBucket, _ key: String, _ value: Value, revision: Int64, ttl: Double?,
                       now: Date) async throws -> KVEntry?
    /// True when a live entry was deleted.
    @discardableResult
    func delete(_ bucket: KVBucket, _ key: String, now: Date) async throws -> Bool
    /// Live entries whose key starts with `prefix`, sorted by key.
    func list(_ bucket: KVBucket, prefix: String, now: Date) async throws -> [KVEntry]
    /// Deletes expired entries of every bucket (they are already invisible); answers how many went.
    func purgeExpiredEntries(now: Date) async throws -> Int
    /// Changes to keys under `prefix` after the entries the caller has seen: entries whose
    /// revision is above `afterRevision` (deletions are not reported). A backend may poll.
    func changes(_ bucket: KVBucket, prefix: String, afterRevision: Int64, now: Date) async throws -> [KVEntry]
    /// Every change under `prefix` after `afterRevision`, as it happens, until the consumer stops
    /// iterating. The default polls `changes` every `interval` seconds; PostgreSQL is woken by NOTIFY.
    func watch(_ bucket: KVBucket, prefix: String, afterRevision: Int64, interval: Double,
               now: @escaping @Sendable () -> Date) -> AsyncThrowingStream<KVEntry, any Error>

    // MARK: Leases

    /// Takes the lease when it is free or expired, or renews it when `holder` already has it.
    /// The generation goes up each time the lease changes hands (a fencing token). nil when
    /// another holder has it.
    func acquireLease(_ name: String, holder: String, ttl: Double, now: Date) async throws -> Lease?
    /// Extends a held lease; nil when it was lost (expired and taken, or the generation moved on).
    func renewLease(_ lease: Lease, ttl: Double, now: Date) async throws -> Lease?
    func releaseLease(_ lease: Lease) async throws
    func lease(_ name: String, now: Date) async throws -> Lease?

    // MARK: Run queue

    /// Queues a run for a worker to claim.
    func enqueue(runID: String, now: Date) async throws
    /// Claims the oldest queued run, or one whose claim expired (its worker stopped
    /// heartbeating): a lease named by the run's id, held by `worker`, with a higher generation
    /// each time. nil when nothing is claimable.
    func claimRun(worker: String, ttl: Double, now: Date) async throws -> Lease?
    /// Claims one queued run by id, when it is unclaimed or its claim expired (resume after a
    /// crash, or a run its creator executes itself). nil when it is not queued or held by a live claim.
    func claim(runID: String, worker: String, ttl: Double, now: Date) async throws -> Lease?
    /// Extends a claim; nil when it was lost (reclaimed by another worker). A claim that expired
    /// but that nobody took yet is still the holder's: nothing else can have started the run.
    func heartbeat(_ claim: Lease, ttl: Double, now: Date) async throws -> Lease?
    /// Takes a run off the queue for good (it ended); false when the claim was lost.
    @discardableResult
    func finish(_ claim: Lease) async throws -> Bool
}

public enum StoreError: Error, Equatable, CustomStringConvertible {
    case notFound(String)
    /// The store cannot be opened or used: a path or connection problem, with the reason.
    case unavailable(String)
    case corrupt(String)
    /// A fenced write found that the run's claim had passed to another worker.
    case leaseLost(String)

    public var description: String {
        switch self {
        case .notFound(let what): return "not found: \(what)"
        case .unavailable(let why): return "store unavailable: \(why)"
        case .corrupt(let why): return "store corrupt: \(why)"
        case .leaseLost(let what): return "lease lost: \(what)"
        }
    }
}

/// How the SQL backends keep values: JSON text (key order kept) and epoch seconds.
public enum StoreCoding {
    public static func json(_ v: Value) -> String { v.jsonString() }

    public static func value(_ text: String) throws -> Value {
        do {
            return try Value.parseJSON(text)
        } catch {
            throw StoreError.corrupt("a stored value is not JSON: \(error)")
        }
    }

    public static func time(_ d: Date) -> Double { d.timeIntervalSince1970 }
    public static func date(_ t: Double) -> Date { Date(timeIntervalSince1970: t) }
    public static func date(_ t: Double?) -> Date? { t.map { Date(timeIntervalSince1970: $0) } }
}

/// Writes that land together: one transaction per task completion, not one per row.
public struct StoreBatch: Sendable {
    public struct Checkpoint: Sendable, Equatable {
        public var runID: String
        /// The task's name, with its scatter position when it ran once per item (`task@0.3`).
        public var key: String
        public var output: Value
        public init(runID: String, key: String, output: Value) {
            self.runID = runID
            self.key = key
            self.output = output
        }
    }

    public struct RunEvent: Sendable, Equatable {
        public var runID: String
        public var event: Value
        public init(runID: String, event: Value) {
            self.runID = runID
            self.event = event
        }
    }

    public var runs: [RunRecord]
    public var attempts: [TaskAttempt]
    public var checkpoints: [Checkpoint]
    public var events: [RunEvent]
    public var materializations: [Materialization] = []
    public var audit: [AuditEntry] = []
    /// The queue claim the writes are made under, if any.
    public var fence: Lease?
    /// With a fence: the run leaves the queue in the same transaction (it ended).
    public var finishesClaim = false

    public init(runs: [RunRecord] = [], attempts: [TaskAttempt] = [], checkpoints: [Checkpoint] = [], events: [RunEvent] = [],
                fence: Lease? = nil) {
        self.runs = runs
        self.attempts = attempts
        self.checkpoints = checkpoints
        self.events = events
        self.fence = fence
    }

    public var isEmpty: Bool {
        runs.isEmpty && attempts.isEmpty && checkpoints.isEmpty && events.isEmpty && materializations.isEmpty && audit.isEmpty
    }
}

extension Store {
    public func watch(_ bucket: KVBucket, prefix: String, afterRevision: Int64, interval: Double,
                      now: @escaping @Sendable () -> Date) -> AsyncThrowingStream<KVEntry, any Error> {
        pollChanges(bucket, prefix: prefix, afterRevision: afterRevision, interval: interval, now: now, wait: nil)
    }

    /// `watch` with the default poll interval (a quarter second); a backend told of changes wakes sooner.
    public func watch(_ bucket: KVBucket, prefix: String, afterRevision: Int64,
                      now: @escaping @Sendable () -> Date) -> AsyncThrowingStream<KVEntry, any Error> {
        watch(bucket, prefix: prefix, afterRevision: afterRevision, interval: 0.25, now: now)
    }

    /// Polls `changes` every `interval` seconds. With `wait`, it polls again when `wait(interval)`
    /// returns instead: a backend that is told of changes returns early.
    public func pollChanges(_ bucket: KVBucket, prefix: String, afterRevision: Int64, interval: Double,
                            now: @escaping @Sendable () -> Date,
                            wait: (@Sendable (Double) async throws -> Void)?) -> AsyncThrowingStream<KVEntry, any Error> {
        let (stream, continuation) = AsyncThrowingStream<KVEntry, any Error>.makeStream()
        let pause = wait ?? { seconds in try await Task.sleep(for: .seconds(seconds)) }
        let poller = Task {
            var seen = afterRevision
            do {
                while !Task.isCancelled {
                    for entry in try await changes(bucket, prefix: prefix, afterRevision: seen, now: now()) {
                        seen = max(seen, entry.revision)
                        continuation.yield(entry)
                    }
                    try await pause(interval)
                }
                continuation.finish()
            } catch is CancellationError {
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in poller.cancel() }
        return stream
    }

    /// Replaces a run's record (status, timing, error). Throws `StoreError.notFound` for an unknown id.
    public func updateRun(_ run: RunRecord) async throws { try await commit(StoreBatch(runs: [run])) }
    public func saveAttempt(_ attempt: TaskAttempt) async throws { try await commit(StoreBatch(attempts: [attempt])) }
    public func saveCheckpoint(runID: String, key: String, output: Value) async throws {
        try await commit(StoreBatch(checkpoints: [.init(runID: runID, key: key, output: output)]))
    }
    public func appendEvents(runID: String, _ events: [Value]) async throws {
        try await commit(StoreBatch(events: events.map { .init(runID: runID, event: $0) }))
    }
    public func saveMaterialization(_ m: Materialization) async throws {
        var batch = StoreBatch()
        batch.materializations = [m]
        try await commit(batch)
    }
    public func appendAudit(_ entry: AuditEntry) async throws {
        var batch = StoreBatch()
        batch.audit = [entry]
        try await commit(batch)
    }
}

/// A flow definition as it ran.
public struct StoredFlow: Sendable, Equatable {
    public var hash: String
    public var name: String
    /// The definition's text (YAML or JSON, as loaded).
    public var source: String
    public var created: Date

    public init(hash: String, name: String, source: String, created: Date) {
        self.hash = hash
        self.name = name
        self.source = source
        self.created = created
    }

    /// A flow stored under the SHA-256 of its text.
    public init(name: String, source: String, created: Date) {
        self.init(hash: Digest.sha256Hex(Array(source.utf8)), name: name, source: source, created: created)
    }
}

public struct RunRecord: Sendable, Equatable {
    public var id: String
    public var flow: String
    public var flowHash: String
    public var status: RunStatus
    /// What started it: `cli`, `schedule`, `webhook`, `retry`, …
    public var trigger: String
    public var input: Value
    public var idempotencyKey: String?
    public var created: Date
    public var started: Date?
    public var ended: Date?
    public var error: String?

    public init(id: String, flow: String, flowHash: String, status: RunStatus = .queued, trigger: String,
                input: Value = .emptyObject, idempotencyKey: String? = nil, created: Date, started: Date? = nil,
                ended: Date? = nil, error: String? = nil) {
        self.id = id
        self.flow = flow
        self.flowHash = flowHash
        self.status = status
        self.trigger = trigger
        self.input = input
        self.idempotencyKey = idempotencyKey
        self.created = created
        self.started = started
        self.ended = ended
        self.error = error
    }
}

public struct RunFilter: Sendable, Equatable {
    public var flow: String?
    public var statuses: Set<RunStatus>?
    public var limit: Int

    public init(flow: String? = nil, statuses: Set<RunStatus>? = nil, limit: Int = 100) {
        self.flow = flow
        self.statuses = statuses
        self.limit = limit
    }
}

public struct TaskAttempt: Sendable, Equatable {
    /// `cancelled`: stopped, or never started, because its scatter's gather gave up.
    public enum Status: String, Sendable, CaseIterable { case running, succeeded, failed, cancelled }

    public var runID: String
    public var task: String
    /// 1 for the first attempt.
    public var attempt: Int
    public var status: Status
    public var started: Date
    public var ended: Date?
    public var error: String?

    public init(runID: String, task: String, attempt: Int, status: Status, started: Date, ended: Date? = nil, error: String? = nil) {
        self.runID = runID
        self.task = task
        self.attempt = attempt
        self.status = status
        self.started = started
        self.ended = ended
        self.error = error
    }
}

/// The key-value cache has two buckets: `system` for the engine's own state (leases' helpers,
/// flow definitions, task state), which scripts cannot reach, and `runtime`, which scripts see
/// through `ctx.cache` with keys namespaced per flow.
public enum KVBucket: String, Sendable, CaseIterable {
    case system, runtime
}

public struct KVEntry: Sendable, Equatable {
    public var key: String
    public var value: Value
    /// Goes up with every change to any key of the bucket: compare-and-set and `changes` use it.
    public var revision: Int64
    public var expires: Date?

    public init(key: String, value: Value, revision: Int64, expires: Date?) {
        self.key = key
        self.value = value
        self.revision = revision
        self.expires = expires
    }
}

/// A time-limited hold: on a named duty (leader election) or, from the run queue, on a run
/// (`name` is then the run's id and `holder` the worker).
public struct Lease: Sendable, Equatable {
    public var name: String
    public var holder: String
    /// Goes up each time the lease changes hands: work done under an older generation is stale.
    public var generation: Int64
    public var expires: Date

    public init(name: String, holder: String, generation: Int64, expires: Date) {
        self.name = name
        self.holder = holder
        self.generation = generation
        self.expires = expires
    }
}
