import Foundation
import SluiceConfig
import SluiceCore
import SluiceEngine
import SluiceTesting
import Synchronization
import Testing

/// Counts executions per task name, and can hold one task until released.
final class ExecutionLog: Sendable {
    let counts = Mutex<[String: Int]>([:])
    let gate = Mutex<CheckedContinuation<Void, Never>?>(nil)
    let blockedFlag = Atomic<Bool>(false)
    var blocked: Bool { blockedFlag.load(ordering: .sequentiallyConsistent) }

    func count(_ task: String) -> Int { counts.withLock { $0[task] ?? 0 } }

    /// `step` records each execution; `hold` records it, then waits while `blocking` is on:
    /// `holdFor`, or until cancelled.
    func tasks(blocking: Bool, holdFor: Duration = .seconds(3600)) -> TaskRegistry {
        let log = self
        return registry([
            ClosureTask.processor("step") { e, ctx in
                log.counts.withLock { $0[ctx.taskName, default: 0] += 1 }
                var data = e.data
                data[ctx.taskName] = .int(Int64(ctx.attempt))
                return .event(e.with(data: data))
            },
            ClosureTask.processor("hold") { e, ctx in
                log.counts.withLock { $0[ctx.taskName, default: 0] += 1 }
                if blocking {
                    log.blockedFlag.store(true, ordering: .sequentiallyConsistent)
                    try await Task.sleep(for: holdFor)
                }
                return .event(e)
            },
        ])
    }
}

let chainYAML = """
    flow:
      name: chain
      tasks:
        - step: {name: a}
        - step: {name: b}
        - hold: {name: c}
        - step: {name: d}
    """

func makeRunner(_ store: any Store, _ registry: TaskRegistry, recorder: EventRecorder = EventRecorder(),
                claimTTL: Double = 15) -> DurableRunner {
    let loader = FlowLoader(catalog: registry.catalog)
    return DurableRunner(engine: Engine(registry: registry, sinks: [recorder]), store: store,
                         options: .init(claimTTL: claimTTL)) { flow in try loader.load(text: flow.source, file: flow.name) }
}

func loadPlan(_ runner: DurableRunner, _ registry: TaskRegistry, _ yaml: String) throws -> FlowPlan {
    try runner.prepare(try FlowLoader(catalog: registry.catalog).load(text: yaml, file: "chain.yaml"))
}

/// Starts the chain on a fresh store and waits until it hangs in task c.
func startBlockedRun() async throws -> (MemoryStore, ExecutionLog, DurableRunner, Task<DurableRunner.Outcome, any Error>, String) {
    let store = MemoryStore()
    let log = ExecutionLog()
    let reg = log.tasks(blocking: true)
    let runner = makeRunner(store, reg, claimTTL: 1)
    let plan = try loadPlan(runner, reg, chainYAML)
    let running = Task { try await runner.start(plan, source: chainYAML) }
    for _ in 0..<500 where !log.blocked { try await Task.sleep(for: .milliseconds(10)) }
    let id = try #require(try await store.runs(RunFilter()).first?.id)
    return (store, log, runner, running, id)
}

@Suite("Durable runs")
struct DurableRunTests {
    @Test("A run is recorded with its attempts, checkpoints, event log and result")
    func recorded() async throws {
        let store = MemoryStore()
        let log = ExecutionLog()
        let reg = log.tasks(blocking: false)
        let runner = makeRunner(store, reg)
        let outcome = try await runner.start(try loadPlan(runner, reg, chainYAML), source: chainYAML, input: ["x": 1])
        #expect(outcome.ending == .finished)
        #expect(outcome.record.status == .completed)
        #expect(outcome.result == ["x": 1, "a": 1, "b": 1, "d": 1])
        let stored = try #require(try await store.run(id: outcome.record.id))
        #expect(stored.status == .completed && stored.started != nil && stored.ended != nil)
        #expect(try await store.flow(hash: stored.flowHash)?.source == chainYAML)
        #expect(try await store.attempts(runID: stored.id).map(\.task) == ["a", "b", "c", "d"])
        #expect(try await store.attempts(runID: stored.id).allSatisfy { $0.status == .succeeded })
        let checkpoints = try await store.checkpoints(runID: stored.id)
        #expect(Set(checkpoints.keys) == ["a", "b", "c", "d", "$result"])
        let types = try await store.events(runID: stored.id).compactMap { $0["type"]?.stringValue }
        #expect(types.prefix(2) == ["run_claimed", "run_started"] && types.last == "run_completed")
        #expect(types.filter { $0 == "task_completed" }.count == 4)
        // Finished runs leave the queue.
        #expect(try await store.claimRun(worker: "w", ttl: 10, now: Date()) == nil)
    }

    @Test("An interrupted run resumes from its checkpoints: completed tasks do not run again")
    func resume() async throws {
        let store = MemoryStore()
        let first = ExecutionLog()
        let reg1 = first.tasks(blocking: true)
        let runner1 = makeRunner(store, reg1)
        let plan1 = try loadPlan(runner1, reg1, chainYAML)
        let running = Task { try await runner1.start(plan1, source: chainYAML, input: ["x": 1]) }
        for _ in 0..<500 where !first.blocked { try await Task.sleep(for: .milliseconds(10)) }
        #expect(first.blocked, "task c never started")
        running.cancel()
        let interrupted = try await running.value
        #expect(interrupted.ending == .interrupted)
        #expect(try await store.run(id: interrupted.record.id)?.status == .running)

        // A new process (a new runner on the same store) resumes it.
        let second = ExecutionLog()
        let reg2 = second.tasks(blocking: false)
        let outcomes = try await makeRunner(store, reg2).resumeOrphans(flow: "chain")
        #expect(outcomes.map(\.record.id) == [interrupted.record.id])
        #expect(outcomes.first?.record.status == .completed)
        #expect(second.count("a") == 0 && second.count("b") == 0, "completed tasks came from their checkpoints")
        #expect(second.count("c") == 1 && second.count("d") == 1)
        // c's interrupted attempt counts: the resumed one is its second.
        let cAttempts = try await store.attempts(runID: interrupted.record.id).filter { $0.task == "c" }
        #expect(cAttempts.map(\.attempt) == [1, 2])
        #expect(outcomes.first?.result == ["x": 1, "a": 1, "b": 1, "d": 1])
    }

    @Test("A second trigger with the same idempotency key returns the first run")
    func idempotency() async throws {
        let store = MemoryStore()
        let log = ExecutionLog()
        let reg = log.tasks(blocking: false)
        let runner = makeRunner(store, reg)
        let plan = try loadPlan(runner, reg, chainYAML)
        let first = try await runner.start(plan, source: chainYAML, input: ["x": 1], idempotencyKey: "order-7")
        let second = try await runner.start(plan, source: chainYAML, input: ["x": 2], idempotencyKey: "order-7")
        #expect(second.ending == .reused)
        #expect(second.record.id == first.record.id)
        #expect(second.result == first.result)
        #expect(log.count("a") == 1)
        #expect(try await store.runs(RunFilter()).count == 1)
    }

    @Test("A cached task's output is reused for the same type, config and input within its ttl")
    func resultCache() async throws {
        let store = MemoryStore()
        let log = ExecutionLog()
        let reg = log.tasks(blocking: false)
        let recorder = EventRecorder()
        let runner = makeRunner(store, reg, recorder: recorder)
        let yaml = """
            flow:
              name: cached
              tasks:
                - step: {name: a, cache: {ttl: 1h}}
                - step: {name: b}
            """
        let plan = try loadPlan(runner, reg, yaml)
        let first = try await runner.start(plan, source: yaml, input: ["x": 1, "y": 2])
        let second = try await runner.start(plan, source: yaml, input: ["y": 2, "x": 1])
        #expect(log.count("a") == 1, "the second run took a from the cache (same input, keys in another order)")
        #expect(log.count("b") == 2)
        #expect(second.result == first.result)
        #expect(recorder.events(.taskCompleted, task: "a").compactMap(\.message) == ["cache hit"])
        #expect(try await store.checkpoints(runID: second.record.id)["a"] != nil, "a cache hit is checkpointed like a run")
        _ = try await runner.start(plan, source: yaml, input: ["x": 2])
        #expect(log.count("a") == 2, "another input misses")
        #expect(throws: FlowErrors.self) {
            try FlowLoader(catalog: reg.catalog).load(text: "flow:\n  tasks:\n    - step: {name: a, cache: {ttl: 1h, size: 3}}\n", file: "f.yaml")
        }
    }

    @Test("Retry --from re-runs that task and what follows it; other outputs are kept")
    func retryFrom() async throws {
        let store = MemoryStore()
        let log = ExecutionLog()
        let reg = log.tasks(blocking: false)
        let runner = makeRunner(store, reg)
        let first = try await runner.start(try loadPlan(runner, reg, chainYAML), source: chainYAML, input: ["x": 1])
        let retried = try await runner.retry(runID: first.record.id, from: "b")
        #expect(retried.record.id != first.record.id)
        #expect(retried.record.trigger == "retry")
        #expect(retried.record.status == .completed)
        #expect(log.count("a") == 1 && log.count("b") == 2 && log.count("c") == 2 && log.count("d") == 2)
        await #expect(throws: DurableError.self) { try await runner.retry(runID: first.record.id, from: "nope") }
        await #expect(throws: DurableError.self) { try await runner.resume(runID: first.record.id) }
    }

    @Test("Cancelling a run stops the process executing it")
    func cancel() async throws {
        let (store, log, runner, running, id) = try await startBlockedRun()
        _ = try await runner.cancel(runID: id)
        let outcome = try await running.value
        #expect(outcome.record.status == .cancelled)
        #expect(log.count("d") == 0)
        #expect(try await store.run(id: id)?.status == .cancelled)
    }

    @Test("A cancel from another process takes the run's claim: the process executing it stops at its next write instead of finishing over the cancel")
    func cancelFromElsewhere() async throws {
        let store = MemoryStore()
        let log = ExecutionLog()
        let reg = log.tasks(blocking: true, holdFor: .milliseconds(300))
        // A long claim: the heartbeat that would notice the cancel does not come during the test.
        let runner = makeRunner(store, reg, claimTTL: 120)
        let running = Task { try await runner.start(try loadPlan(runner, reg, chainYAML), source: chainYAML) }
        for _ in 0..<500 where !log.blocked { try await Task.sleep(for: .milliseconds(10)) }
        let id = try #require(try await store.runs(RunFilter()).first?.id)
        _ = try await makeRunner(store, reg).cancel(runID: id, reason: "stop")
        let outcome = try await running.value
        #expect(log.count("d") == 0, "the run went on after the cancel")
        #expect(outcome.record.status == .cancelled)
        #expect(try await store.run(id: id)?.status == .cancelled)
        #expect(try await store.run(id: id)?.error == "stop")
        #expect(try await store.claimRun(worker: "w", ttl: 1, now: Date()) == nil, "the cancelled run is still queued")
    }

    @Test("A process that lost its claim stops, and its late writes are refused")
    func lostClaim() async throws {
        let (store, log, runner, running, id) = try await startBlockedRun()
        // Another worker takes the run over as if the claim had expired (its clock is ahead).
        let thief = try #require(try await store.claim(runID: id, worker: "other", ttl: 60, now: Date().addingTimeInterval(10)))
        let outcome = try await running.value
        guard case .lost = outcome.ending else {
            Issue.record("expected the run to be lost, got \(outcome.ending)")
            return
        }
        #expect(log.count("d") == 0)
        #expect(try await store.run(id: id)?.status == .running, "the old process wrote no ending")
        #expect(try await store.finish(thief))
    }
}

@Suite("Store-backed key-value cache")
struct StoreKeyValueCacheTests {
    @Test("Calls reach the store; create is atomic across caches sharing it")
    func basics() async throws {
        let store = MemoryStore()
        let a = StoreKeyValueCache(store: store, bucket: .runtime)
        let b = StoreKeyValueCache(store: store, bucket: .runtime)
        a.put("flow.x", ["n": 1], ttl: nil)
        #expect(b.get("flow.x") == ["n": 1])
        #expect(try await store.get(.runtime, "flow.x", now: Date())?.value == ["n": 1])
        #expect(StoreKeyValueCache(store: store, bucket: .system).get("flow.x") == nil, "buckets are apart")
        #expect(b.keys(prefix: "flow.") == ["flow.x"])
        #expect(b.delete("flow.x") && !a.delete("flow.x"))
        // Threads racing on one key through two caches: one create wins.
        let wins = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 16) { i in
            if (i % 2 == 0 ? a : b).create("race", .int(Int64(i)), ttl: nil) { wins.add(1, ordering: .relaxed) }
        }
        #expect(wins.load(ordering: .relaxed) == 1)
        #expect(a.lastError == nil)
    }
}
