import Foundation
import SluiceConfig
import SluiceCore
import SluiceEngine
import SluiceTesting
import Testing

/// `daily` reads `raw` of the same day and materializes yesterday at 01:00 UTC.
func scheduledAssetYAML(catchUp: String = "skip") -> String {
    """
    flow:
      name: nightly
      tasks:
        - step: {name: raw, asset: {partitions: {daily: {start: 2025-12-01}}}}
        - step:
            name: daily
            depends_on: [raw]
            asset:
              partitions: {daily: {start: 2025-12-01}}
              schedule: {cron: "0 1 * * *", partition: yesterday, catch_up: \(catchUp)}
    """
}

@Suite("Asset schedules")
struct AssetScheduleTests {
    /// The schedulers' clock starts at 2026-01-01T00:00:00Z; the runs use the system clock.
    let clock = TestClock()
    let store = MemoryStore()
    let log = ExecutionLog()
    static let schedule = "nightly@daily"

    func setUp(_ yaml: String) throws -> (DurableRunner, FlowPlan, [Scheduler]) {
        let reg = log.tasks(blocking: false)
        let runner = makeRunner(store, reg)
        let plan = try loadPlan(runner, reg, yaml)
        // A 90-day lease: renewed every 30 days of test time, so it outlives the clock's jumps.
        let schedulers = try Scheduler.assetSchedulers(of: plan, source: yaml, flow: "nightly", runner: runner, clock: clock,
                                                       leaseTTL: 90 * 86_400, logger: LogLines().logger)
        return (runner, plan, schedulers)
    }

    /// Waits (bounded) until `count` tasks sleep on the test clock: the scheduler and its lease renewal.
    func settle(_ count: Int = 2) async throws {
        let deadline = ContinuousClock.now + .seconds(90)
        while clock.sleeperCount < count {
            try #require(ContinuousClock.now < deadline, "only \(clock.sleeperCount) of \(count) sleepers: \(clock.sleepRequests)")
            try await Task.sleep(for: .milliseconds(1))
        }
    }

    /// Runs every queued run, as a worker would.
    func drain(_ runner: DurableRunner) async throws -> [DurableRunner.Outcome] {
        var outcomes: [DurableRunner.Outcome] = []
        while let outcome = try await runner.workOnce() { outcomes.append(outcome) }
        return outcomes
    }

    /// The materialized partitions of an asset, oldest first.
    func materialized(_ asset: String) async throws -> [String] {
        try await store.materializations(MaterializationFilter(asset: asset, statuses: [.materialized])).map(\.partition).sorted()
    }

    static func epoch(_ text: String) -> Int { Int(SchedulerTests.date(text).timeIntervalSince1970) }

    @Test("A daily asset scheduled at 01:00 with partition yesterday materializes the day before each tick, upstream first")
    func tick() async throws {
        let (runner, _, schedulers) = try setUp(scheduledAssetYAML())
        try #require(schedulers.count == 1)
        #expect(schedulers[0].name == Self.schedule)
        let task = Task { await schedulers[0].run() }
        try await settle()
        clock.advance(by: .seconds(3600))  // 2026-01-01T01:00
        try await settle()

        let queued = try await store.runs(RunFilter())
        try #require(queued.count == 1, "one run queued for the tick")
        #expect(queued[0].trigger == "schedule" && queued[0].status == .queued)
        #expect(queued[0].idempotencyKey == "schedule/\(Self.schedule)/\(Self.epoch("2026-01-01T01:00:00Z"))")
        #expect(queued[0].input["scheduled_time"] == "2026-01-01T01:00:00Z" && queued[0].input["partition"] == "2025-12-31")
        #expect(queued[0].input["schedule"] == .string(Self.schedule))

        let outcomes = try await drain(runner)
        #expect(outcomes.map(\.record.status) == [.completed])
        #expect(try await materialized("daily") == ["2025-12-31"])
        #expect(try await materialized("raw") == ["2025-12-31"], "the missing upstream partition is computed first")
        let records = try await store.materializations(MaterializationFilter())
        #expect(records.allSatisfy { $0.runID == queued[0].id })
        #expect(log.count("raw") == 1 && log.count("daily") == 1)

        // The next day's tick fills 2026-01-01.
        clock.advance(by: SchedulerTests.day)
        try await settle()
        _ = try await drain(runner)
        #expect(try await materialized("daily") == ["2025-12-31", "2026-01-01"])
        task.cancel()
        await task.value

        // A process starting later (a restart) does not fire those ticks again.
        let (_, _, again) = try setUp(scheduledAssetYAML())
        let restarted = Task { await again[0].run() }
        try await settle()
        #expect(try await store.runs(RunFilter()).count == 2)
        restarted.cancel()
        await restarted.value
    }

    @Test("A tick fired twice queues one run, and a partition already up to date queues none")
    func idempotent() async throws {
        let (runner, plan, _) = try setUp(scheduledAssetYAML())
        let tick = ScheduledTick(time: SchedulerTests.date("2026-01-01T01:00:00Z"), isCatchUp: false, partition: "2025-12-31",
                                 input: ["partition": "2025-12-31"])
        let first = try await runner.queueScheduledMaterialization(plan, source: scheduledAssetYAML(), asset: "daily", schedule: Self.schedule, tick: tick)
        let second = try await runner.queueScheduledMaterialization(plan, source: scheduledAssetYAML(), asset: "daily", schedule: Self.schedule, tick: tick)
        #expect(first.run != nil && first.run?.id == second.run?.id)
        #expect(first.plan.compute.keys.sorted() == ["daily", "raw"])
        _ = try await drain(runner)
        let later = ScheduledTick(time: SchedulerTests.date("2026-01-01T02:00:00Z"), isCatchUp: false, partition: "2025-12-31", input: [:])
        let upToDate = try await runner.queueScheduledMaterialization(plan, source: scheduledAssetYAML(), asset: "daily", schedule: Self.schedule, tick: later)
        #expect(upToDate.run == nil && upToDate.plan.computeCount == 0)
        #expect(try await store.runs(RunFilter()).count == 1)
    }

    struct CatchUpCase: Sendable, CustomStringConvertible {
        let policy: String
        /// The partitions materialized: the missed ticks kept, then the tick on time.
        let expected: [String]
        var description: String { policy }
    }

    static let catchUps: [CatchUpCase] = [
        CatchUpCase(policy: "skip", expected: ["2025-12-31"]),
        CatchUpCase(policy: "latest", expected: ["2025-12-30", "2025-12-31"]),
        CatchUpCase(policy: "all", expected: ["2025-12-28", "2025-12-29", "2025-12-30", "2025-12-31"]),
    ]

    @Test("After three missed nightly ticks, catch_up decides which partitions materialize, each in its own run",
          arguments: catchUps)
    func catchUp(_ c: CatchUpCase) async throws {
        // Last fired 2025-12-28T01:00: the ticks of 12-29, 12-30 and 12-31 were missed.
        try await store.put(.system, Scheduler.lastKey(schedule: Self.schedule), Scheduler.position(SchedulerTests.date("2025-12-28T01:00:00Z")),
                            ttl: nil, now: clock.now())
        let (runner, _, schedulers) = try setUp(scheduledAssetYAML(catchUp: c.policy))
        let task = Task { await schedulers[0].run() }
        try await settle()
        clock.advance(by: .seconds(3600))  // the tick on time: 2026-01-01T01:00
        try await settle()
        task.cancel()
        await task.value

        let runs = try await store.runs(RunFilter())
        #expect(runs.count == c.expected.count)
        #expect(Set(runs.compactMap(\.idempotencyKey)).count == runs.count, "one idempotency key per tick")
        let outcomes = try await drain(runner)
        #expect(outcomes.allSatisfy { $0.record.status == .completed })
        #expect(try await materialized("daily") == c.expected)
        #expect(try await materialized("raw") == c.expected)
    }
}
