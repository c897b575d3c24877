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

    /// A broken expectation, with what was expected and where in this file.
    public struct Failure: Error, CustomStringConvertible {
        public let message: String
        public let line: Int
        public var description: String { "StoreConformance.swift:\(line): \(message)" }
    }

    static func expect(_ condition: Bool, _ message: @autoclosure () -> String, line: Int = #line) throws {
        if !condition { throw Failure(message: message(), line: line) }
    }

    static func expectEqual<T: Equatable>(_ actual: T, _ expected: T, _ what: String, line: Int = #line) throws {
        if actual != expected { throw Failure(message: "\(what): got \(actual), expected \(expected)", line: line) }
    }

    /// A fixed instant the cases count from.
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    static func run(_ id: String, flow: String = "f", created: Date = t0, key: String? = nil) -> RunRecord {
        RunRecord(id: id, flow: flow, flowHash: "h-\(flow)", trigger: "cli", input: ["n": .int(1)], idempotencyKey: key, created: created)
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
