import Foundation
import SluiceCore
import Synchronization

/// A store in this process's memory: for tests and for runs that need not outlive the process.
/// It follows the same contract as the durable backends (the conformance suite runs on it).
public final class MemoryStore: Store {
    private struct State {
        var flows: [String: StoredFlow] = [:]
        var runs: [String: RunRecord] = [:]
        var attempts: [String: [TaskAttempt]] = [:]
        var checkpoints: [String: [String: Value]] = [:]
        var events: [String: [Value]] = [:]
        var results: [String: (value: Value, expires: Date)] = [:]
        var kv: [KVBucket: [String: KVEntry]] = [:]
        var revisions: [KVBucket: Int64] = [:]
        var leases: [String: Lease] = [:]
        /// Queued runs in the order they were queued, with their current claim.
        var queue: [(runID: String, queued: Date, claim: Lease?)] = []
        var claimGenerations: [String: Int64] = [:]
        var materializations: [String: Materialization] = [:]
        var audit: [AuditEntry] = []

        mutating func claim(at i: Int, worker: String, ttl: Double, now: Date) -> Lease {
            let runID = queue[i].runID
            let generation = (claimGenerations[runID] ?? 0) + 1
            claimGenerations[runID] = generation
            let claim = Lease(name: runID, holder: worker, generation: generation, expires: now.addingTimeInterval(ttl))
            queue[i].claim = claim
            return claim
        }

        mutating func nextRevision(_ bucket: KVBucket) -> Int64 {
            let r = (revisions[bucket] ?? 0) + 1
            revisions[bucket] = r
            return r
        }

        func live(_ bucket: KVBucket, _ key: String, _ now: Date) -> KVEntry? {
            guard let e = kv[bucket]?[key] else { return nil }
            if let x = e.expires, x <= now { return nil }
            return e
        }

        mutating func store(_ bucket: KVBucket, _ key: String, _ value: Value, ttl: Double?, _ now: Date) -> KVEntry {
            let entry = KVEntry(key: key, value: value, revision: nextRevision(bucket), expires: ttl.map { now.addingTimeInterval($0) })
            kv[bucket, default: [:]][key] = entry
            return entry
        }
    }

    private let state = Mutex(State())

    public init() {}

    // MARK: Flows

    public func saveFlow(_ flow: StoredFlow) async throws {
        state.withLock { s in
            if s.flows[flow.hash] == nil { s.flows[flow.hash] = flow }
        }
    }

    public func flow(hash: String) async throws -> StoredFlow? {
        state.withLock { $0.flows[hash] }
    }

    // MARK: Runs

    public func createRun(_ run: RunRecord, idempotencyWindow: Double) async throws -> RunRecord {
        state.withLock { s in
            if let key = run.idempotencyKey {
                let since = run.created.addingTimeInterval(-idempotencyWindow)
                if let earlier = s.runs.values.filter({ $0.idempotencyKey == key && $0.flow == run.flow && $0.created >= since })
                    .min(by: { $0.created < $1.created }) {
                    return earlier
                }
            }
            s.runs[run.id] = run
            return run
        }
    }

    public func run(id: String) async throws -> RunRecord? {
        state.withLock { $0.runs[id] }
    }

    public func runs(_ filter: RunFilter) async throws -> [RunRecord] {
        state.withLock { s in
            let matching = s.runs.values.filter { r in
                (filter.flow.map { $0 == r.flow } ?? true) && (filter.statuses.map { $0.contains(r.status) } ?? true)
            }
            return Array(matching.sorted { ($0.created, $0.id) > ($1.created, $1.id) }.prefix(filter.limit))
        }
    }

    // MARK: Task attempts and checkpoints

    public func commit(_ batch: StoreBatch) async throws {
        try state.withLock { s throws(StoreError) in
            if let fence = batch.fence, s.queue.first(where: { $0.runID == fence.name })?.claim?.generation != fence.generation {
                throw StoreError.leaseLost("run \(fence.name) is no longer claimed by \(fence.holder) (generation \(fence.generation))")
            }
            for run in batch.runs where s.runs[run.id] == nil { throw StoreError.notFound("run \(run.id)") }
            for run in batch.runs { s.runs[run.id] = run }
            for attempt in batch.attempts {
                var list = s.attempts[attempt.runID] ?? []
                if let i = list.firstIndex(where: { $0.task == attempt.task && $0.attempt == attempt.attempt }) {
                    list[i] = attempt
                } else {
                    list.append(attempt)
                }
                s.attempts[attempt.runID] = list
            }
            for c in batch.checkpoints { s.checkpoints[c.runID, default: [:]][c.key] = c.output }
            for e in batch.events { s.events[e.runID, default: []].append(e.event) }
            for m in batch.materializations { s.materializations[m.id] = m }
            for var entry in batch.audit {
                entry.id = Int64(s.audit.count + 1)
                s.audit.append(entry)
            }
            if let fence = batch.fence, batch.finishesClaim { s.queue.removeAll { $0.runID == fence.name } }
        }
    }

    public func attempts(runID: String) async throws -> [TaskAttempt] {
        state.withLock { $0.attempts[runID] ?? [] }
    }

    public func checkpoints(runID: String) async throws -> [String: Value] {
        state.withLock { $0.checkpoints[runID] ?? [:] }
    }

    // MARK: Run event log

    public func events(runID: String) async throws -> [Value] {
        state.withLock { $0.events[runID] ?? [] }
    }

    // MARK: Assets and audit

    public func materializations(_ filter: MaterializationFilter) async throws -> [Materialization] {
        state.withLock { filter.select($0.materializations.values) }
    }

    public func readers(of asset: String, partition: String?, limit: Int) async throws -> [Materialization] {
        state.withLock { s in
            let reading = s.materializations.values.filter { m in
                m.inputs.contains { input in input.asset == asset && (partition.map { input.partition == $0 } ?? true) }
            }
            return MaterializationFilter(limit: limit).select(reading)
        }
    }

    public func audit(_ filter: AuditFilter) async throws -> [AuditEntry] {
        state.withLock { s in Array(s.audit.reversed().filter(filter.matches).prefix(filter.limit)) }
    }

    // MARK: Result cache

    public func cachedResult(key: String, now: Date) async throws -> Value? {
        state.withLock { s in
            guard let r = s.results[key] else { return nil }
            if r.expires <= now {
                s.results[key] = nil
                return nil
            }
            return r.value
        }
    }

    public func saveResult(key: String, value: Value, expires: Date) async throws {
        state.withLock { $0.results[key] = (value, expires) }
    }

    public func purgeExpiredResults(now: Date) async throws -> Int {
        state.withLock { s in
            let before = s.results.count
            s.results = s.results.filter { $0.value.expires > now }
            return before - s.results.count
        }
    }

    // MARK: Key-value cache

    public func get(_ bucket: KVBucket, _ key: String, now: Date) async throws -> KVEntry? {
        state.withLock { $0.live(bucket, key, now) }
    }

    public func put(_ bucket: KVBucket, _ key: String, _ value: Value, ttl: Double?, now: Date) async throws -> KVEntry {
        state.withLock { $0.store(bucket, key, value, ttl: ttl, now) }
    }

    public func create(_ bucket: KVBucket, _ key: String, _ value: Value, ttl: Double?, now: Date) async throws -> KVEntry? {
        state.withLock { s in
            if s.live(bucket, key, now) != nil { return nil }
            return s.store(bucket, key, value, ttl: ttl, now)
        }
    }

    public func compareAndSet(_ bucket: KVBucket, _ key: String, _ value: Value, revision: Int64, ttl: Double?,
                              now: Date) async throws -> KVEntry? {
        state.withLock { s in
            guard let current = s.live(bucket, key, now), current.revision == revision else { return nil }
            return s.store(bucket, key, value, ttl: ttl, now)
        }
    }

    public func delete(_ bucket: KVBucket, _ key: String, now: Date) async throws -> Bool {
        state.withLock { s in
            let wasLive = s.live(bucket, key, now) != nil
            s.kv[bucket]?[key] = nil
            return wasLive
        }
    }

    public func purgeExpiredEntries(now: Date) async throws -> Int {
        state.withLock { s in
            var gone = 0
            for bucket in Array(s.kv.keys) {
                let before = s.kv[bucket]?.count ?? 0
                s.kv[bucket] = s.kv[bucket]?.filter { $0.value.expires.map { $0 > now } ?? true }
                gone += before - (s.kv[bucket]?.count ?? 0)
            }
            return gone
        }
    }

    public func list(_ bucket: KVBucket, prefix: String, now: Date) async throws -> [KVEntry] {
        state.withLock { s in
            (s.kv[bucket] ?? [:]).values.filter { e in
                e.key.hasPrefix(prefix) && (e.expires.map { $0 > now } ?? true)
            }.sorted { $0.key < $1.key }
        }
    }

    public func changes(_ bucket: KVBucket, prefix: String, afterRevision: Int64, now: Date) async throws -> [KVEntry] {
        try await list(bucket, prefix: prefix, now: now).filter { $0.revision > afterRevision }.sorted { $0.revision < $1.revision }
    }

    // MARK: Leases

    public func acquireLease(_ name: String, holder: String, ttl: Double, now: Date) async throws -> Lease? {
        state.withLock { s in
            let expires = now.addingTimeInterval(ttl)
            if let current = s.leases[name], current.expires > now {
                guard current.holder == holder else { return nil }
                let renewed = Lease(name: name, holder: holder, generation: current.generation, expires: expires)
                s.leases[name] = renewed
                return renewed
            }
            let lease = Lease(name: name, holder: holder, generation: (s.leases[name]?.generation ?? 0) + 1, expires: expires)
            s.leases[name] = lease
            return lease
        }
    }

    public func renewLease(_ lease: Lease, ttl: Double, now: Date) async throws -> Lease? {
        state.withLock { s in
            guard let current = s.leases[lease.name], current.holder == lease.holder,
                  current.generation == lease.generation, current.expires > now else { return nil }
            let renewed = Lease(name: lease.name, holder: lease.holder, generation: lease.generation, expires: now.addingTimeInterval(ttl))
            s.leases[lease.name] = renewed
            return renewed
        }
    }

    public func releaseLease(_ lease: Lease) async throws {
        state.withLock { s in
            guard let current = s.leases[lease.name], current.holder == lease.holder, current.generation == lease.generation else { return }
            // Keep the generation so the next holder's is higher; expire it now.
            s.leases[lease.name] = Lease(name: lease.name, holder: "", generation: current.generation, expires: .distantPast)
        }
    }

    public func lease(_ name: String, now: Date) async throws -> Lease? {
        state.withLock { s in
            guard let l = s.leases[name], l.expires > now else { return nil }
            return l
        }
    }

    // MARK: Run queue

    public func enqueue(runID: String, now: Date) async throws {
        state.withLock { s in
            if !s.queue.contains(where: { $0.runID == runID }) { s.queue.append((runID, now, nil)) }
        }
    }

    public func claimRun(worker: String, ttl: Double, now: Date) async throws -> Lease? {
        state.withLock { s in
            guard let i = s.queue.firstIndex(where: { $0.claim.map { $0.expires <= now } ?? true }) else { return nil }
            return s.claim(at: i, worker: worker, ttl: ttl, now: now)
        }
    }

    public func claim(runID: String, worker: String, ttl: Double, now: Date) async throws -> Lease? {
        state.withLock { s in
            guard let i = s.queue.firstIndex(where: { $0.runID == runID && ($0.claim.map { $0.expires <= now } ?? true) }) else {
                return nil
            }
            return s.claim(at: i, worker: worker, ttl: ttl, now: now)
        }
    }

    public func heartbeat(_ claim: Lease, ttl: Double, now: Date) async throws -> Lease? {
        state.withLock { s in
            guard let i = s.queue.firstIndex(where: { $0.runID == claim.name }), let current = s.queue[i].claim,
                  current.generation == claim.generation else { return nil }
            let renewed = Lease(name: claim.name, holder: claim.holder, generation: claim.generation,
                                expires: now.addingTimeInterval(ttl))
            s.queue[i].claim = renewed
            return renewed
        }
    }

    public func finish(_ claim: Lease) async throws -> Bool {
        state.withLock { s in
            guard let i = s.queue.firstIndex(where: { $0.runID == claim.name }),
                  s.queue[i].claim?.generation == claim.generation else { return false }
            s.queue.remove(at: i)
            return true
        }
    }
}
