import Foundation
import SluiceCore
import SluiceEngine

/// The contract every `Store` backend keeps, written once and run against each (memory, SQLite,
/// PostgreSQL). A backend's test suite runs every case on a fresh, empty store:
///
///     @Test(arguments: StoreConformance.cases)
///     func conformance(_ c: StoreConformance.Case) async throws { try await c.run(makeStore()) }
public enum StoreConformance {
    public struct Case: Sendable, CustomStringConvertible {
        public let name: String
        public let run: @Sendable (any Store) async throws -> Void
        public var description: String { name }
    }

    /// A broken expectation, with what was expected and where in the conformance file.
    public struct Failure: Error, CustomStringConvertible {
        public let message: String
        public let file: String
        public let line: Int
        public var description: String { "\((file as NSString).lastPathComponent):\(line): \(message)" }

        init(message: String, file: String = #fileID, line: Int) {
            self.message = message
            self.file = file
            self.line = line
        }
    }

    static func expect(_ condition: Bool, _ message: @autoclosure () -> String, file: String = #fileID, line: Int = #line) throws {
        if !condition { throw Failure(message: message(), file: file, line: line) }
    }

    static func expectEqual<T: Equatable>(_ actual: T, _ expected: T, _ what: String, file: String = #fileID, line: Int = #line) throws {
        if actual != expected { throw Failure(message: "\(what): got \(actual), expected \(expected)", file: file, line: line) }
    }

    /// A fixed instant the cases count from.
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    static func run(_ id: String, flow: String = "f", created: Date = t0, key: String? = nil) -> RunRecord {
        RunRecord(id: id, flow: flow, flowHash: "h-\(flow)", trigger: "cli", input: ["n": .int(1)], idempotencyKey: key, created: created)
    }

    /// A materialization of `asset`'s `partition` by `run`, started `at` seconds after t0.
    static func materialization(_ run: String, _ asset: String, _ partition: String = "", at started: Double,
                                status: Materialization.Status = .materialized, summary: Value = .null,
                                inputs: [Materialization.Input] = []) -> Materialization {
        Materialization(id: Materialization.id(run: run, asset: asset, partition: partition), asset: asset, partition: partition,
                        runID: run, status: status, started: t0.addingTimeInterval(started),
                        ended: status == .running ? nil : t0.addingTimeInterval(started + 0.5), version: "v-\(asset)",
                        summary: summary, error: status == .failed ? "task '\(asset)' failed: boom" : nil, inputs: inputs)
    }

    /// An input edge to the materialization `m`.
    static func input(_ m: Materialization) -> Materialization.Input {
        .init(asset: m.asset, partition: m.partition, materialization: m.id)
    }

    /// The batch-failure cases' probe: a materialization and an audit entry that must not land.
    static func assetWrites(run: String) -> (Materialization, AuditEntry) {
        (materialization(run, "orders", "2026-01-01", at: 1, summary: ["rows": 3],
                         inputs: [.init(asset: "raw", partition: "2026-01-01", materialization: "r0/raw/2026-01-01")]),
         AuditEntry(time: t0, actor: "alice", action: "run.started", target: run))
    }

    /// Fails unless the store holds no materialization, lineage edge or audit entry.
    static func expectNoAssetRecords(_ store: any Store, line: Int = #line) async throws {
        try expectEqual(try await store.materializations(MaterializationFilter()).map(\.id), [], "materializations", line: line)
        try expectEqual(try await store.readers(of: "raw", partition: nil, limit: 10).map(\.id), [], "lineage", line: line)
        try expectEqual(try await store.audit(AuditFilter()).map(\.action), [], "audit entries", line: line)
    }

    public static let cases: [Case] = [
        Case(name: "flows are stored once by content hash") { store in
            let flow = StoredFlow(name: "orders", source: "name: orders\ntasks: []\n", created: t0)
            try expectEqual(flow.hash.count, 64, "hash length")
            try await store.saveFlow(flow)
            var again = flow
            again.name = "renamed"
            try await store.saveFlow(again)
            try expectEqual(try await store.flow(hash: flow.hash), flow, "stored flow")
            try expect(try await store.flow(hash: String(repeating: "0", count: 64)) == nil, "an unknown hash is nil")
        },
        Case(name: "runs round-trip, update and list newest first with filters") { store in
            for i in 0..<5 {
                _ = try await store.createRun(run("r\(i)", flow: i % 2 == 0 ? "a" : "b", created: t0.addingTimeInterval(Double(i))),
                                              idempotencyWindow: 0)
            }
            var r2 = try await store.run(id: "r2")
            try expectEqual(r2?.input, ["n": .int(1)], "input")
            r2?.status = .failed
            r2?.started = t0.addingTimeInterval(2.5)
            r2?.ended = t0.addingTimeInterval(3.25)
            r2?.error = "task 'x' failed: boom"
            try await store.updateRun(r2!)
            try expectEqual(try await store.run(id: "r2"), r2, "updated run")
            try expectEqual(try await store.runs(RunFilter()).map(\.id), ["r4", "r3", "r2", "r1", "r0"], "all runs")
            try expectEqual(try await store.runs(RunFilter(flow: "a")).map(\.id), ["r4", "r2", "r0"], "flow a")
            try expectEqual(try await store.runs(RunFilter(statuses: [.failed])).map(\.id), ["r2"], "failed runs")
            try expectEqual(try await store.runs(RunFilter(limit: 2)).map(\.id), ["r4", "r3"], "limit")
            do {
                try await store.updateRun(run("missing"))
                throw Failure(message: "updating an unknown run should throw", line: #line)
            } catch let error as StoreError {
                try expectEqual(error, .notFound("run missing"), "error")
            }
        },
        Case(name: "an idempotency key returns the first run within the window") { store in
            let first = try await store.createRun(run("r1", key: "k"), idempotencyWindow: 60)
            let second = try await store.createRun(run("r2", created: t0.addingTimeInterval(30), key: "k"), idempotencyWindow: 60)
            try expectEqual(second.id, first.id, "same key within the window")
            try expect(try await store.run(id: "r2") == nil, "no second run is recorded")
            let later = try await store.createRun(run("r3", created: t0.addingTimeInterval(120), key: "k"), idempotencyWindow: 60)
            try expectEqual(later.id, "r3", "after the window")
            let other = try await store.createRun(run("r4", flow: "g", created: t0.addingTimeInterval(121), key: "k"), idempotencyWindow: 60)
            try expectEqual(other.id, "r4", "another flow's key")
        },
        Case(name: "attempts and checkpoints belong to their run") { store in
            _ = try await store.createRun(run("r"), idempotencyWindow: 0)
            var a1 = TaskAttempt(runID: "r", task: "fetch", attempt: 1, status: .running, started: t0)
            try await store.saveAttempt(a1)
            a1.status = .failed
            a1.ended = t0.addingTimeInterval(1)
            a1.error = "timeout"
            try await store.saveAttempt(a1)
            let a2 = TaskAttempt(runID: "r", task: "fetch", attempt: 2, status: .succeeded, started: t0.addingTimeInterval(2),
                                 ended: t0.addingTimeInterval(3))
            try await store.saveAttempt(a2)
            try expectEqual(try await store.attempts(runID: "r"), [a1, a2], "attempts")
            try await store.saveCheckpoint(runID: "r", key: "fetch", output: ["rows": [1, 2, 3]])
            try await store.saveCheckpoint(runID: "r", key: "store", output: .null)
            try expectEqual(try await store.checkpoints(runID: "r"), ["fetch": ["rows": [1, 2, 3]], "store": .null], "checkpoints")
            try expectEqual(try await store.checkpoints(runID: "other"), [:], "another run")
        },
        Case(name: "the event log keeps order across appends") { store in
            try await store.appendEvents(runID: "r", [["type": "run_started"], ["type": "task_started", "task": "a"]])
            try await store.appendEvents(runID: "r", [["type": "run_completed"]])
            let types = try await store.events(runID: "r").map { $0["type"] }
            try expectEqual(types, [.string("run_started"), .string("task_started"), .string("run_completed")], "events")
        },
        Case(name: "cached results expire and are purged") { store in
            try await store.saveResult(key: "k1", value: ["x": 1], expires: t0.addingTimeInterval(10))
            try await store.saveResult(key: "k2", value: "y", expires: t0.addingTimeInterval(100))
            try expectEqual(try await store.cachedResult(key: "k1", now: t0), ["x": 1], "fresh result")
            try expect(try await store.cachedResult(key: "k1", now: t0.addingTimeInterval(10)) == nil, "expired at its time")
            try await store.saveResult(key: "k3", value: 3, expires: t0.addingTimeInterval(20))
            try expectEqual(try await store.purgeExpiredResults(now: t0.addingTimeInterval(50)), 1, "purged")
            try expectEqual(try await store.cachedResult(key: "k2", now: t0.addingTimeInterval(50)), "y", "still fresh")
        },
        Case(name: "expired key-value entries are purged, live ones stay") { store in
            try await store.put(.system, "gate/r/a", 1, ttl: 10, now: t0)
            try await store.put(.runtime, "flow.x", 2, ttl: 10, now: t0)
            try await store.put(.system, "gate/r/b", 3, ttl: 100, now: t0)
            try await store.put(.system, "gate/r/c", 4, ttl: nil, now: t0)
            try expectEqual(try await store.purgeExpiredEntries(now: t0.addingTimeInterval(50)), 2, "purged")
            // Gone for good: not even a reader with an earlier clock sees them.
            try expect(try await store.get(.system, "gate/r/a", now: t0) == nil, "purged entry")
            try expect(try await store.get(.runtime, "flow.x", now: t0) == nil, "purged entry of the other bucket")
            try expectEqual(try await store.list(.system, prefix: "gate/r/", now: t0.addingTimeInterval(50)).map(\.key), ["gate/r/b", "gate/r/c"], "live")
        },
        Case(name: "key-value: put, get, TTL, delete, prefix listing, buckets apart") { store in
            let e1 = try await store.put(.runtime, "flow.a", 1, ttl: nil, now: t0)
            let e2 = try await store.put(.runtime, "flow.b", ["v": true], ttl: 5, now: t0)
            try await store.put(.runtime, "other.c", 3, ttl: nil, now: t0)
            try await store.put(.system, "flow.a", "system", ttl: nil, now: t0)
            try expect(e2.revision > e1.revision, "revisions go up")
            try expectEqual(try await store.get(.runtime, "flow.a", now: t0)?.value, 1, "get")
            try expectEqual(try await store.get(.system, "flow.a", now: t0)?.value, "system", "the system bucket is apart")
            try expectEqual(try await store.list(.runtime, prefix: "flow.", now: t0).map(\.key), ["flow.a", "flow.b"], "list")
            try expect(try await store.get(.runtime, "flow.b", now: t0.addingTimeInterval(5)) == nil, "expired")
            try expectEqual(try await store.list(.runtime, prefix: "flow.", now: t0.addingTimeInterval(6)).map(\.key), ["flow.a"],
                            "expired entries are not listed")
            try expect(try await store.delete(.runtime, "flow.a", now: t0), "delete answers true for a live key")
            try expect(!(try await store.delete(.runtime, "flow.a", now: t0)), "and false the second time")
            try expect(try await store.get(.runtime, "flow.a", now: t0) == nil, "deleted")
        },
        Case(name: "key-value: create is atomic and compare-and-set checks the revision") { store in
            let made = try await store.create(.runtime, "seen.1", true, ttl: 10, now: t0)
            try expect(made != nil, "first create stores")
            try expect(try await store.create(.runtime, "seen.1", false, ttl: 10, now: t0) == nil, "second create does not")
            try expect(try await store.create(.runtime, "seen.1", "again", ttl: nil, now: t0.addingTimeInterval(10)) != nil,
                       "create after expiry stores")
            // Many concurrent creates of one key: exactly one wins.
            let wins = try await withThrowingTaskGroup(of: Bool.self) { group in
                for i in 0..<20 {
                    group.addTask { try await store.create(.runtime, "race", .int(Int64(i)), ttl: nil, now: t0) != nil }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            try expectEqual(wins, 1, "winners of a create race")
            let e = try await store.put(.runtime, "counter", 1, ttl: nil, now: t0)
            let next = try await store.compareAndSet(.runtime, "counter", 2, revision: e.revision, ttl: nil, now: t0)
            try expectEqual(next?.value, 2, "CAS with the current revision")
            try expect(try await store.compareAndSet(.runtime, "counter", 3, revision: e.revision, ttl: nil, now: t0) == nil,
                       "CAS with a stale revision")
            try expect(try await store.compareAndSet(.runtime, "absent", 1, revision: 1, ttl: nil, now: t0) == nil, "CAS on no key")
        },
        Case(name: "key-value: changes after a revision, for a watcher") { store in
            let a = try await store.put(.runtime, "w.a", 1, ttl: nil, now: t0)
            try await store.put(.runtime, "x.b", 2, ttl: nil, now: t0)
            try await store.put(.runtime, "w.c", 3, ttl: nil, now: t0)
            try await store.put(.runtime, "w.a", 4, ttl: nil, now: t0)
            let changed = try await store.changes(.runtime, prefix: "w.", afterRevision: a.revision, now: t0)
            try expectEqual(changed.map(\.key), ["w.c", "w.a"], "changes in revision order")
            try expectEqual(changed.last?.value, 4, "the newest value")
            let none = try await store.changes(.runtime, prefix: "w.", afterRevision: changed.last!.revision, now: t0)
            try expect(none.isEmpty, "nothing after the newest revision")
        },
        Case(name: "key-value: a watcher sees changes under its prefix as they happen") { store in
            let start = try await store.put(.runtime, "w.before", 0, ttl: nil, now: t0)
            let stream = store.watch(.runtime, prefix: "w.", afterRevision: start.revision, interval: 0.05, now: { t0 })
            let seen = Task {
                var keys: [String] = []
                for try await entry in stream {
                    keys.append(entry.key)
                    if keys.count == 2 { break }
                }
                return keys
            }
            try await store.put(.runtime, "x.other", 1, ttl: nil, now: t0)
            try await store.put(.runtime, "w.one", 1, ttl: nil, now: t0)
            try await store.put(.runtime, "w.two", 2, ttl: nil, now: t0)
            // Bounded: a watcher that never delivers fails the case instead of hanging it.
            let guardTask = Task {
                try await Task.sleep(for: .seconds(10))
                seen.cancel()
            }
            let keys = try await seen.value
            guardTask.cancel()
            try expectEqual(keys, ["w.one", "w.two"], "watched keys")
        },
        Case(name: "leases: one holder at a time, fencing generations, expiry") { store in
            let a = try await store.acquireLease("leader", holder: "a", ttl: 10, now: t0)
            try expectEqual(a?.generation, 1, "first generation")
            try expect(try await store.acquireLease("leader", holder: "b", ttl: 10, now: t0.addingTimeInterval(5)) == nil,
                       "held by another")
            let renewed = try await store.renewLease(a!, ttl: 10, now: t0.addingTimeInterval(8))
            try expectEqual(renewed?.expires, t0.addingTimeInterval(18), "renewed")
            try expect(try await store.acquireLease("leader", holder: "b", ttl: 10, now: t0.addingTimeInterval(12)) == nil,
                       "still held after renewal")
            let b = try await store.acquireLease("leader", holder: "b", ttl: 10, now: t0.addingTimeInterval(18))
            try expectEqual(b?.generation, 2, "taken over after expiry with a higher generation")
            try expect(try await store.renewLease(renewed!, ttl: 10, now: t0.addingTimeInterval(19)) == nil,
                       "the old holder cannot renew")
            try expectEqual(try await store.lease("leader", now: t0.addingTimeInterval(19))?.holder, "b", "current holder")
            try await store.releaseLease(b!)
            try expect(try await store.lease("leader", now: t0.addingTimeInterval(19)) == nil, "released")
            let c = try await store.acquireLease("leader", holder: "c", ttl: 10, now: t0.addingTimeInterval(19))
            try expectEqual(c?.generation, 3, "generations keep rising after a release")
        },
        Case(name: "queue: claims in order, expiry reclaims with a new generation, finish removes") { store in
            try await store.enqueue(runID: "r1", now: t0)
            try await store.enqueue(runID: "r2", now: t0.addingTimeInterval(1))
            try await store.enqueue(runID: "r1", now: t0.addingTimeInterval(2))
            let c1 = try await store.claimRun(worker: "w1", ttl: 10, now: t0.addingTimeInterval(3))
            try expectEqual(c1?.name, "r1", "oldest first")
            let c2 = try await store.claimRun(worker: "w2", ttl: 10, now: t0.addingTimeInterval(3))
            try expectEqual(c2?.name, "r2", "then the next")
            try expect(try await store.claimRun(worker: "w3", ttl: 10, now: t0.addingTimeInterval(4)) == nil, "nothing left")
            let hb = try await store.heartbeat(c1!, ttl: 10, now: t0.addingTimeInterval(9))
            try expect(hb != nil, "heartbeat extends")
            let late = try await store.heartbeat(hb!, ttl: 10, now: t0.addingTimeInterval(25))
            try expectEqual(late?.generation, hb?.generation, "a late heartbeat keeps a claim nobody took")
            // w2 stops heartbeating: its run is reclaimed after the claim expires.
            let re = try await store.claimRun(worker: "w3", ttl: 10, now: t0.addingTimeInterval(14))
            try expectEqual(re?.name, "r2", "expired claim reclaimed")
            try expect((re?.generation ?? 0) > (c2?.generation ?? 0), "with a higher generation")
            try expect(try await store.heartbeat(c2!, ttl: 10, now: t0.addingTimeInterval(14)) == nil, "the old worker lost it")
            try expect(!(try await store.finish(c2!)), "and cannot finish it")
            try expect(try await store.finish(re!), "the new worker finishes")
            try expect(try await store.finish(late!), "w1 finishes")
            try expect(try await store.claimRun(worker: "w1", ttl: 10, now: t0.addingTimeInterval(100)) == nil, "queue empty")
        },
        Case(name: "a batch lands whole or not at all") { store in
            var r = try await store.createRun(run("b1"), idempotencyWindow: 0)
            r.status = .running
            let attempt = TaskAttempt(runID: "b1", task: "a", attempt: 1, status: .succeeded, started: t0, ended: t0.addingTimeInterval(1))
            try await store.commit(StoreBatch(runs: [r], attempts: [attempt], checkpoints: [.init(runID: "b1", key: "a", output: 7)],
                                              events: [.init(runID: "b1", event: ["type": "task_completed"])]))
            try expectEqual(try await store.run(id: "b1")?.status, .running, "run updated")
            try expectEqual(try await store.attempts(runID: "b1"), [attempt], "attempt")
            try expectEqual(try await store.checkpoints(runID: "b1"), ["a": 7], "checkpoint")
            try expectEqual(try await store.events(runID: "b1").count, 1, "event")
            // An unknown run in the batch: nothing of it is written.
            do {
                try await store.commit(StoreBatch(runs: [run("nope")], checkpoints: [.init(runID: "b1", key: "b", output: 8)],
                                                  events: [.init(runID: "b1", event: ["type": "x"])]))
                throw Failure(message: "a batch updating an unknown run should throw", line: #line)
            } catch let error as StoreError {
                try expectEqual(error, .notFound("run nope"), "error")
            }
            try expectEqual(try await store.checkpoints(runID: "b1"), ["a": 7], "no checkpoint from the failed batch")
            try expectEqual(try await store.events(runID: "b1").count, 1, "no event from the failed batch")
        },
        Case(name: "fenced writes fail once the claim has moved on") { store in
            _ = try await store.createRun(run("f1"), idempotencyWindow: 0)
            try await store.enqueue(runID: "f1", now: t0)
            let first = try await store.claim(runID: "f1", worker: "w1", ttl: 10, now: t0)
            try expectEqual(first?.holder, "w1", "claimed by id")
            try expect(try await store.claim(runID: "f1", worker: "w2", ttl: 10, now: t0.addingTimeInterval(5)) == nil,
                       "a live claim cannot be taken")
            try expect(try await store.claim(runID: "absent", worker: "w2", ttl: 10, now: t0) == nil, "an unqueued run cannot be claimed")
            try await store.commit(StoreBatch(checkpoints: [.init(runID: "f1", key: "a", output: 1)], fence: first))
            let second = try await store.claim(runID: "f1", worker: "w2", ttl: 10, now: t0.addingTimeInterval(11))
            try expect((second?.generation ?? 0) > (first?.generation ?? 0), "expired claim taken with a higher generation")
            do {
                try await store.commit(StoreBatch(checkpoints: [.init(runID: "f1", key: "b", output: 2)], fence: first))
                throw Failure(message: "a write under a lost claim should throw", line: #line)
            } catch let error as StoreError {
                guard case .leaseLost = error else { throw Failure(message: "expected leaseLost, got \(error)", line: #line) }
            }
            try await store.commit(StoreBatch(checkpoints: [.init(runID: "f1", key: "b", output: 3)], fence: second))
            try expectEqual(try await store.checkpoints(runID: "f1"), ["a": 1, "b": 3], "only current claims write")
            var last = StoreBatch(checkpoints: [.init(runID: "f1", key: "c", output: 4)], fence: second)
            last.finishesClaim = true
            try await store.commit(last)
            try expect(!(try await store.finish(second!)), "the batch took the run off the queue")
            try expect(try await store.claimRun(worker: "w3", ttl: 10, now: t0.addingTimeInterval(100)) == nil, "nothing left to claim")
        },
        Case(name: "materializations: round-trip with inputs, upsert by id, filters, the newest per partition, limit") { store in
            let d1 = "2026-01-01", d2 = "2026-01-02"
            let raw = Materialization.Input(asset: "raw", partition: d1, materialization: "r0/raw/2026-01-01")
            let fx = Materialization.Input(asset: "fx", partition: "", materialization: "r0/fx")
            // Equal start times are ordered by id, descending.
            let a = materialization("r1", "orders", d1, at: 0, summary: ["type": "table", "rows": 10, "bytes": 2048.5],
                                    inputs: [raw, fx])
            let b = materialization("r1", "orders", d2, at: 0, status: .failed)
            let c = materialization("r2", "orders", d1, at: 10, status: .running, inputs: [raw, fx])
            let report = materialization("r2", "report", at: 11, inputs: [input(c)])
            let e = materialization("r4", "orders", d2, at: 19)
            let f = materialization("r3", "orders", d2, at: 20, summary: ["rows": 12])
            try await store.saveMaterialization(a)
            var batch = StoreBatch()
            batch.materializations = [b, c, report, e, f]
            try await store.commit(batch)
            try expectEqual(try await store.materializations(MaterializationFilter()), [f, e, report, c, b, a], "all, newest first")

            // Replacing by id replaces the status, times, summary and inputs.
            var done = c
            done.status = .materialized
            done.ended = t0.addingTimeInterval(12.25)
            done.summary = ["rows": 11]
            done.inputs = [.init(asset: "raw", partition: d1, materialization: "r2/raw/2026-01-01")]
            try await store.saveMaterialization(done)
            try expectEqual(try await store.materializations(MaterializationFilter(runID: "r2", statuses: [.materialized])),
                            [report, done], "after the upsert")
            try expectEqual(try await store.materializations(MaterializationFilter()).count, 6, "an upsert adds no row")

            func ids(_ filter: MaterializationFilter) async throws -> [String] {
                try await store.materializations(filter).map(\.id)
            }
            try expectEqual(try await ids(MaterializationFilter(asset: "orders")), [f.id, e.id, done.id, b.id, a.id], "asset")
            try expectEqual(try await ids(MaterializationFilter(asset: "report")), [report.id], "another asset")
            try expectEqual(try await ids(MaterializationFilter(asset: "nope")), [], "an unknown asset")
            try expectEqual(try await ids(MaterializationFilter(asset: "orders", partitions: [d1])), [done.id, a.id], "one partition")
            try expectEqual(try await ids(MaterializationFilter(partitions: [d2, "2026-01-09"])), [f.id, e.id, b.id], "partitions")
            try expectEqual(try await ids(MaterializationFilter(partitions: [""])), [report.id], "the unpartitioned")
            try expectEqual(try await ids(MaterializationFilter(partitions: [])), [], "no partitions")
            try expectEqual(try await ids(MaterializationFilter(runID: "r1")), [b.id, a.id], "run")
            try expectEqual(try await ids(MaterializationFilter(statuses: [.failed])), [b.id], "status")
            try expectEqual(try await ids(MaterializationFilter(statuses: [.failed, .running])), [b.id], "statuses")
            try expectEqual(try await ids(MaterializationFilter(statuses: [])), [], "no statuses")
            try expectEqual(try await ids(MaterializationFilter(asset: "orders", partitions: [d1], runID: "r1", statuses: [.materialized])),
                            [a.id], "every condition at once")

            // latestOnly: the newest matching one of each (asset, partition), then the limit.
            try expectEqual(try await ids(MaterializationFilter(latestOnly: true)), [f.id, report.id, done.id], "latest of each")
            try expectEqual(try await ids(MaterializationFilter(asset: "orders", latestOnly: true)), [f.id, done.id], "latest orders")
            try expectEqual(try await ids(MaterializationFilter(asset: "orders", statuses: [.failed], latestOnly: true)), [b.id],
                            "the newest failure, not the newest overall")
            try expectEqual(try await ids(MaterializationFilter(runID: "r1", latestOnly: true)), [b.id, a.id], "latest of a run")
            try expectEqual(try await ids(MaterializationFilter(asset: "orders", latestOnly: true, limit: 2)), [f.id, done.id],
                            "the limit applies after keeping the newest")
            try expectEqual(try await ids(MaterializationFilter(limit: 2)), [f.id, e.id], "limit")
            try expectEqual(try await ids(MaterializationFilter(asset: "orders", limit: 0)), [], "limit 0")
            try expectEqual(try await store.materializations(MaterializationFilter(asset: "orders", partitions: [d1], latestOnly: true)),
                            [done], "the newest of a partition, whole")
        },
        Case(name: "materializations: readers(of:) follows lineage downstream, newest first") { store in
            let d1 = "2026-01-01", d2 = "2026-01-02"
            let fx = materialization("r0", "fx", at: 0)
            let raw1 = materialization("r0", "raw", d1, at: 0)
            let raw2 = materialization("r0", "raw", d2, at: 0)
            let orders1 = materialization("r1", "orders", d1, at: 1, inputs: [input(raw1), input(fx)])
            let orders2 = materialization("r1", "orders", d2, at: 2, inputs: [input(raw2), input(fx)])
            // Two inputs of one asset: the reader is listed once.
            let report = materialization("r2", "report", at: 5, summary: ["pages": 2], inputs: [input(orders1), input(orders2)])
            var weekly = materialization("r3", "weekly", "2026-W01", at: 6, inputs: [input(orders1)])
            var batch = StoreBatch()
            batch.materializations = [fx, raw1, raw2, orders1, orders2, report, weekly]
            try await store.commit(batch)

            func readers(_ asset: String, _ partition: String?, limit: Int = 10) async throws -> [String] {
                try await store.readers(of: asset, partition: partition, limit: limit).map(\.id)
            }
            try expectEqual(try await store.readers(of: "orders", partition: nil, limit: 10), [weekly, report], "readers of an asset")
            try expectEqual(try await readers("orders", d1), [weekly.id, report.id], "readers of a partition")
            try expectEqual(try await readers("orders", d2), [report.id], "readers of another partition")
            try expectEqual(try await readers("fx", ""), [orders2.id, orders1.id], "readers of an unpartitioned asset")
            try expectEqual(try await readers("fx", nil, limit: 1), [orders2.id], "limit")
            try expectEqual(try await readers("raw", "2026-01-09"), [], "a partition nobody read")
            try expectEqual(try await readers("report", nil), [], "nothing reads the report")
            try expectEqual(try await readers("2026-01-01", nil), [], "a partition is not an asset")

            // Replacing a materialization replaces its lineage edges.
            weekly.inputs = [input(orders2)]
            try await store.saveMaterialization(weekly)
            try expectEqual(try await readers("orders", d1), [report.id], "the old edge is gone")
            try expectEqual(try await readers("orders", d2), [weekly.id, report.id], "the new edge is there")
            weekly.inputs = []
            try await store.saveMaterialization(weekly)
            try expectEqual(try await readers("orders", nil), [report.id], "no edges left")
            try expectEqual(try await store.materializations(MaterializationFilter(asset: "weekly")), [weekly], "without inputs")
        },
        Case(name: "audit: rising ids in append order, newest first, target and action-prefix filters, limit") { store in
            // The ids passed in are ignored: the store numbers the entries.
            let entries = [
                AuditEntry(id: 42, time: t0, actor: "schedule nightly", action: "run.started", target: "r1",
                           detail: ["trigger": "schedule", "input": ["b": 1, "a": [true, "x"]]]),
                AuditEntry(id: 42, time: t0.addingTimeInterval(1.5), actor: "alice", action: "gate.approved", target: "r1",
                           detail: ["gate": "deploy"]),
                AuditEntry(id: 42, time: t0.addingTimeInterval(2), actor: "bob", action: "gate.rejected", target: "r2"),
                AuditEntry(id: 42, time: t0.addingTimeInterval(3), actor: "alice", action: "run.cancelled", target: "r2", detail: .null),
                AuditEntry(id: 42, time: t0.addingTimeInterval(4), actor: "worker host:123", action: "gate.signalled", target: "r1"),
                AuditEntry(id: 42, time: t0.addingTimeInterval(5), actor: "alice", action: "backfill.started", target: "orders"),
            ]
            var first = StoreBatch()
            first.audit = Array(entries[0..<3])
            try await store.commit(first)
            try await store.appendAudit(entries[3])
            var last = StoreBatch()
            last.audit = Array(entries[4...])
            try await store.commit(last)

            let listed = try await store.audit(AuditFilter())
            let ids = listed.reversed().map(\.id)
            try expect(ids.first.map { $0 >= 1 } ?? false, "ids start at 1 or above: \(ids)")
            try expect(zip(ids, ids.dropFirst()).allSatisfy { $0 < $1 }, "ids rise in append order: \(ids)")
            try expectEqual(listed.map { e in
                var e = e
                e.id = 42
                return e
            }, entries.reversed(), "entries, newest first")

            func actions(_ filter: AuditFilter) async throws -> [String] {
                try await store.audit(filter).map(\.action)
            }
            try expectEqual(try await actions(AuditFilter(target: "r1")), ["gate.signalled", "gate.approved", "run.started"], "target")
            try expectEqual(try await actions(AuditFilter(target: "r")), [], "a target is matched whole")
            try expectEqual(try await actions(AuditFilter(actionPrefix: "gate.")),
                            ["gate.signalled", "gate.rejected", "gate.approved"], "action prefix")
            try expectEqual(try await actions(AuditFilter(actionPrefix: "gate.r")), ["gate.rejected"], "a longer prefix")
            try expectEqual(try await actions(AuditFilter(actionPrefix: "%")), [], "a prefix is not a pattern")
            try expectEqual(try await actions(AuditFilter(actionPrefix: "run_")), [], "nor is _ a wildcard")
            try expectEqual(try await actions(AuditFilter(actionPrefix: "")).count, 6, "the empty prefix")
            try expectEqual(try await actions(AuditFilter(target: "r1", actionPrefix: "gate.")), ["gate.signalled", "gate.approved"],
                            "target and prefix")
            try expectEqual(try await actions(AuditFilter(limit: 2)), ["backfill.started", "gate.signalled"], "limit")
            try expectEqual(try await store.audit(AuditFilter(target: "r1", limit: 1)).map(\.id), [listed[1].id], "limit with a target")
            try await store.appendAudit(AuditEntry(time: t0.addingTimeInterval(6), actor: "bob", action: "run.started", target: "r3"))
            let newest = try await store.audit(AuditFilter(limit: 1))
            try expect((newest.first?.id ?? 0) > (listed.first?.id ?? .max), "a later append gets a higher id")
        },
        Case(name: "asset records of a fenced batch with a stale claim are not written") { store in
            _ = try await store.createRun(run("f1"), idempotencyWindow: 0)
            try await store.enqueue(runID: "f1", now: t0)
            let first = try await store.claim(runID: "f1", worker: "w1", ttl: 10, now: t0)
            let second = try await store.claim(runID: "f1", worker: "w2", ttl: 10, now: t0.addingTimeInterval(11))
            try expect(first != nil && second != nil, "claimed twice")
            let (m, entry) = assetWrites(run: "f1")
            var stale = StoreBatch(checkpoints: [.init(runID: "f1", key: "orders", output: 1)], fence: first)
            stale.materializations = [m]
            stale.audit = [entry]
            do {
                try await store.commit(stale)
                throw Failure(message: "a write under a lost claim should throw", line: #line)
            } catch let error as StoreError {
                guard case .leaseLost = error else { throw Failure(message: "expected leaseLost, got \(error)", line: #line) }
            }
            try await expectNoAssetRecords(store)
            try expectEqual(try await store.checkpoints(runID: "f1"), [:], "no checkpoint either")
            var current = stale
            current.fence = second
            try await store.commit(current)
            try expectEqual(try await store.materializations(MaterializationFilter()), [m], "written under the current claim")
            try expectEqual(try await store.audit(AuditFilter()).map(\.target), ["f1"], "audited under the current claim")
        },
        Case(name: "asset records of a batch naming an unknown run are not written") { store in
            let (m, entry) = assetWrites(run: "ghost")
            var batch = StoreBatch(runs: [run("ghost")])
            batch.materializations = [m]
            batch.audit = [entry]
            do {
                try await store.commit(batch)
                throw Failure(message: "a batch updating an unknown run should throw", line: #line)
            } catch let error as StoreError {
                try expectEqual(error, .notFound("run ghost"), "error")
            }
            try await expectNoAssetRecords(store)
            batch.runs = []
            try await store.commit(batch)
            try expectEqual(try await store.readers(of: "raw", partition: "2026-01-01", limit: 10), [m], "written without the run")
        },
        Case(name: "queue: concurrent claimers never share a run") { store in
            for i in 0..<30 { try await store.enqueue(runID: "q\(i)", now: t0.addingTimeInterval(Double(i))) }
            let claimed = try await withThrowingTaskGroup(of: [String].self) { group in
                for w in 0..<3 {
                    group.addTask {
                        var mine: [String] = []
                        while let c = try await store.claimRun(worker: "w\(w)", ttl: 60, now: t0.addingTimeInterval(100)) {
                            mine.append(c.name)
                        }
                        return mine
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            try expectEqual(claimed.count, 30, "claims")
            try expectEqual(Set(claimed).count, 30, "distinct runs claimed")
        },
    ]
}
