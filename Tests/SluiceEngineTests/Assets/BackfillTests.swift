import Foundation
import SluiceConfig
import SluiceCore
import SluiceEngine
import SluiceTesting
import Testing

/// Daily partitions that all read one unpartitioned asset, `rates`.
let sharedUpstreamYAML = """
    flow:
      name: shared
      tasks:
        - rates: {name: rates, asset: true}
        - step:
            name: daily
            depends_on: [rates]
            asset: {partitions: {daily: {start: 2025-01-01}}}
    """

@Suite("Backfills")
struct BackfillTests {
    /// `step` plus `rates`, which counts its executions, then holds until `runs` runs exist in
    /// the store (so every run started with it has planned to compute it too), then answers (or fails).
    func registry(_ log: ExecutionLog, store: any Store, runs: Int, fail: Bool = false) -> TaskRegistry {
        var reg = log.tasks(blocking: false)
        reg.register(ClosureTask.processor("rates") { e, ctx in
            log.counts.withLock { $0[ctx.taskName, default: 0] += 1 }
            let deadline = ContinuousClock.now + .seconds(60)
            while try await store.runs(RunFilter()).count < runs, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(5))
            }
            if fail { throw TaskError.permanent("rates are down") }
            return .event(e.with(data: ["eur": 2]))
        })
        return reg
    }

    static func days(_ range: ClosedRange<Int>) -> [String] { range.map { "2025-01-" + ($0 < 10 ? "0\($0)" : "\($0)") } }

    func backfill(_ runner: DurableRunner, _ plan: FlowPlan, _ partitions: [String], maxParallel: Int) async throws -> BackfillRecord {
        let record = try await runner.createBackfill(plan, source: sharedUpstreamYAML, asset: "daily", partitions: partitions,
                                                     maxParallel: maxParallel, force: false)
        return try await runner.executeBackfill(id: record.id, plan: plan, source: sharedUpstreamYAML)
    }

    @Test("A backfill of eight days, four at a time, computes the upstream they all read once; the others load it")
    func sharedOnce() async throws {
        let store = MemoryStore()
        let log = ExecutionLog()
        let reg = registry(log, store: store, runs: 4)
        let runner = makeRunner(store, reg)
        let plan = try loadPlan(runner, reg, sharedUpstreamYAML)
        let done = try await backfill(runner, plan, Self.days(1...8), maxParallel: 4)
        #expect(done.status == .completed)
        #expect(log.count("rates") == 1, "rates ran \(log.count("rates")) times")
        #expect(log.count("daily") == 8)
        let rates = try await store.materializations(MaterializationFilter(asset: "rates"))
        #expect(rates.map(\.status) == [.materialized])
        let daily = try await store.materializations(MaterializationFilter(asset: "daily", statuses: [.materialized]))
        #expect(daily.count == 8)
        #expect(daily.allSatisfy { $0.inputs.map(\.materialization) == [rates[0].id] }, "every day read the one value")
        #expect(try await store.list(.system, prefix: "asset-compute/", now: Date()).isEmpty, "claims are given back")
    }

    @Test("Two processes backfilling different days on one store compute the shared upstream once")
    func twoProcesses() async throws {
        let store = MemoryStore()
        let log = ExecutionLog()
        // Separate engines (and memory I/O) as in two processes; one count of executions.
        let regA = registry(log, store: store, runs: 4), regB = registry(log, store: store, runs: 4)
        let a = makeRunner(store, regA), b = makeRunner(store, regB)
        let planA = try loadPlan(a, regA, sharedUpstreamYAML), planB = try loadPlan(b, regB, sharedUpstreamYAML)
        async let first = backfill(a, planA, Self.days(1...2), maxParallel: 2)
        async let second = backfill(b, planB, Self.days(3...4), maxParallel: 2)
        let (one, two) = try await (first, second)
        #expect(one.status == .completed && two.status == .completed)
        #expect(log.count("rates") == 1, "rates ran \(log.count("rates")) times")
        #expect(log.count("daily") == 4)
    }

    @Test("Two processes materializing the same partition at once compute it once; the other loads it")
    func sameTargetTwice() async throws {
        let store = MemoryStore()
        let log = ExecutionLog()
        let regA = registry(log, store: store, runs: 2), regB = registry(log, store: store, runs: 2)
        let a = makeRunner(store, regA), b = makeRunner(store, regB)
        let planA = try loadPlan(a, regA, sharedUpstreamYAML), planB = try loadPlan(b, regB, sharedUpstreamYAML)
        async let first = a.materialize(planA, source: sharedUpstreamYAML, asset: "rates", partition: "")
        async let second = b.materialize(planB, source: sharedUpstreamYAML, asset: "rates", partition: "")
        let (one, two) = try await (first, second)
        for result in [one, two] {
            guard case .ran(let outcome, _) = result else { Issue.record("expected a run, got \(result)"); continue }
            #expect(outcome.record.status == .completed, "\(outcome.record.error ?? "")")
        }
        #expect(log.count("rates") == 1, "rates ran \(log.count("rates")) times")
        let rates = try await store.materializations(MaterializationFilter(asset: "rates"))
        #expect(rates.map(\.status) == [.materialized])
        #expect(try await store.list(.system, prefix: "asset-compute/", now: Date()).isEmpty, "claims are given back")
    }

    @Test("When the run computing the shared upstream fails, the runs waiting for it fail naming it instead of computing it again")
    func holderFails() async throws {
        let store = MemoryStore()
        let log = ExecutionLog()
        let reg = registry(log, store: store, runs: 4, fail: true)
        let runner = makeRunner(store, reg)
        let plan = try loadPlan(runner, reg, sharedUpstreamYAML)
        let done = try await backfill(runner, plan, Self.days(1...4), maxParallel: 4)
        #expect(done.status == .failed)
        #expect(log.count("rates") == 1 && log.count("daily") == 0)
        let runs = try await store.runs(RunFilter())
        #expect(runs.count == 4 && runs.allSatisfy { $0.status == .failed })
        let holder = try #require(runs.first { $0.error == "task 'rates' failed: rates are down" })
        let waiters = runs.filter { $0.id != holder.id }
        #expect(waiters.allSatisfy {
            $0.error?.contains("asset 'rates' failed in run \(holder.id), which was computing it for this run too: task 'rates' failed: rates are down") == true
        }, "\(waiters.map(\.error))")
    }

    struct LeftClaim: Sendable, CustomStringConvertible {
        /// How long the claim of a run that went away lasts.
        let ttl: Double
        /// How long a run waits for another to compute what it reads.
        let wait: Duration
        /// nil: the run takes the claim over and completes.
        let error: String?
        var description: String { error == nil ? "taken over once it runs out" : "waited for too long" }
    }

    static let leftClaims: [LeftClaim] = [
        LeftClaim(ttl: 1, wait: .seconds(60), error: nil),
        LeftClaim(ttl: 3600, wait: .milliseconds(300), error: "waited 300ms for run ghost to compute asset 'rates', which this run reads"),
    ]

    @Test("A claim whose run went away is taken over when it runs out; a wait is bounded", arguments: leftClaims)
    func leftClaim(_ c: LeftClaim) async throws {
        let store = MemoryStore()
        let log = ExecutionLog()
        let reg = registry(log, store: store, runs: 1)
        var engine = Engine(registry: reg)
        engine.assets = AssetRuntime(store: store, sharedWait: c.wait)
        let loader = FlowLoader(catalog: reg.catalog)
        let runner = DurableRunner(engine: engine, store: store) { flow in try loader.load(text: flow.source, file: flow.name) }
        let plan = try loadPlan(runner, reg, sharedUpstreamYAML)
        let ghost: Value = ["run": "ghost", "state": "computing"]
        #expect(try await store.create(.system, "asset-compute/rates/", ghost, ttl: c.ttl, now: Date()) != nil)

        let result = try await runner.materialize(plan, source: sharedUpstreamYAML, asset: "daily", partition: "2025-01-01")
        guard case .ran(let outcome, _) = result else { Issue.record("expected a run, got \(result)"); return }
        if let error = c.error {
            #expect(outcome.record.status == .failed)
            #expect(outcome.record.error?.contains(error) == true, "\(outcome.record.error ?? "")")
            #expect(log.count("rates") == 0)
        } else {
            #expect(outcome.record.status == .completed, "\(outcome.record.error ?? "")")
            #expect(log.count("rates") == 1 && log.count("daily") == 1)
        }
    }
}
