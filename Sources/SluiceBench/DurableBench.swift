import Foundation
import SluiceConfig
import SluiceCore
import SluiceEngine
import SluicePostgres
import SluiceSQLite
import Synchronization

/// Durable runs of a 3-task chain: each run recorded, each task checkpointed before the next
/// starts, against the engine with no store at all.
func durableBenchmark() async {
    let memoryStoreHop = Mutex<Double>(0)
    let yaml = chainYAML(3)
    let reg = registry()
    let runs = quick ? 200 : 2_000
    let memory = await timeWorkflow(yaml, iterations: runs)
    let memoryHop = (await timeWorkflow(chainYAML(13), iterations: runs).median - memory.median) / 10
    report("3-task chain, no store (median run)", format(memory.median))
    report("  per task hop (13-task minus 3-task chain, / 10)", format(memoryHop))

    var backends: [(String, () async throws -> (any Store, @Sendable () async -> Void))] = [
        ("memory store", { (MemoryStore(), {}) }),
        ("SQLite", {
            let dir = NSTemporaryDirectory() + "sluice-bench-\(getpid())"
            let store = try SQLiteStore(path: dir + "/sluice.db")
            return (store, { try? FileManager.default.removeItem(atPath: dir) })
        }),
    ]
    if let url = ProcessInfo.processInfo.environment["SLUICE_PG_URL"] {
        backends.append(("PostgreSQL", {
            let schema = "bench_\(getpid())"
            let store = try await PostgresStore.connect(url: url, schema: schema)
            return (store, { await store.close() })
        }))
    } else {
        print("PostgreSQL: skipped (set SLUICE_PG_URL, e.g. run under scripts/with-postgres)")
    }

    for (name, open) in backends {
        do {
            let (store, close) = try await open()
            try await measure(store)
            await close()
        } catch {
            print("\(name): failed: \(error)")
        }

        func measure(_ store: any Store) async throws {
            let loader = FlowLoader(catalog: reg.catalog)
            let runner = DurableRunner(engine: Engine(registry: reg, environment: [:]), store: store,
                                       options: .init(claimTTL: 60)) { try loader.load(text: $0.source, file: $0.name) }
            let plan = try runner.prepare(try loader.load(text: yaml, file: "bench.yaml"))
            let clock = ContinuousClock()
            // One run at a time: the latency a single caller sees; the cost of a hop is the
            // difference between a 13-task and a 3-task chain, over 10 tasks.
            func medianRun(_ plan: FlowPlan, _ source: String) async throws -> Double {
                var samples: [Double] = []
                for _ in 0..<(runs / 4) {
                    let start = clock.now
                    let outcome = try await runner.start(plan, source: source, input: ["n": 1])
                    samples.append(seconds(clock.now - start))
                    precondition(outcome.record.status == .completed, "bench run failed")
                }
                return Stats(samples: samples).median
            }
            let longYAML = chainYAML(13)
            let sequential = try await medianRun(plan, yaml)
            let long = try await medianRun(try runner.prepare(try loader.load(text: longYAML, file: "bench.yaml")), longYAML)
            let hop = (long - sequential) / 10
            // Many runs at once: their writes share transactions (group commit).
            let parallel = 32
            let start = clock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<parallel {
                    group.addTask {
                        for _ in 0..<(runs / parallel) { _ = try await runner.start(plan, source: yaml, input: ["n": 1]) }
                    }
                }
                try await group.waitForAll()
            }
            let rate = Double(runs / parallel * parallel) / seconds(clock.now - start)
            // One task completion's write set on its own (its attempt, its checkpoint and two
            // events), committed as one transaction: the "+ 1 transaction" of the per-hop target.
            let probe = try await store.createRun(RunRecord(id: "probe-\(UUID())", flow: "p", flowHash: "p", trigger: "bench",
                                                            created: Date()), idempotencyWindow: 0)
            var txn: [Double] = []
            for i in 0..<(quick ? 50 : 300) {
                let key = "t\(i)"
                let batch = StoreBatch(
                    attempts: [TaskAttempt(runID: probe.id, task: key, attempt: 1, status: .succeeded, started: Date(), ended: Date())],
                    checkpoints: [.init(runID: probe.id, key: key, output: ["event": ["data": ["n": 1]]])],
                    events: [.init(runID: probe.id, event: ["type": "task_started", "task": .string(key)]),
                             .init(runID: probe.id, event: ["type": "task_completed", "task": .string(key)])])
                let t = clock.now
                try await store.commit(batch)
                txn.append(seconds(clock.now - t))
            }
            let transaction = Stats(samples: txn).median
            // The target: at most twice the hop with the in-memory store, plus one
            // transaction of a task's write set.
            if name == "memory store" { memoryStoreHop.withLock { $0 = hop } }
            let budget = 2 * memoryStoreHop.withLock { $0 } + transaction
            report("\(name): one durable run at a time (median run)", format(sequential))
            report("  per task hop", format(hop), target: name == "SQLite" ? "≤ 2x memory-store hop + 1 write set = \(format(budget))" : nil,
                   ok: name == "SQLite" ? hop <= budget : nil)
            report("  one task's write set (attempt, checkpoint, 2 events) as a transaction", format(transaction))
            report("  \(parallel) callers at once", String(format: "%.0f runs/s", rate),
                   target: name == "SQLite" ? "≥ 500 runs/s" : nil, ok: name == "SQLite" ? rate >= 500 : nil)
        }
    }
}
