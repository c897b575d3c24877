import Foundation
import Logging
import SluiceCore
import SluiceEngine
import SluiceTesting
import Synchronization
import Testing

/// Every tick fired, with the process (holder) that fired it.
final class FiredTicks: Sendable {
    private let list = Mutex<[(holder: String, tick: ScheduledTick)]>([])

    func add(_ holder: String, _ tick: ScheduledTick) { list.withLock { $0.append((holder, tick)) } }
    var all: [(holder: String, tick: ScheduledTick)] { list.withLock { $0 } }
    /// Each tick as `time` in ISO-8601, `+` marking a catch-up.
    var times: [String] { all.map { ScheduledTick.iso8601($0.tick.time) + ($0.tick.isCatchUp ? "+" : "") } }
}

/// Keeps what a scheduler logs, as `message key=value ...` lines (metadata sorted), instead
/// of printing it: tests never bootstrap the global logging system.
final class LogLines: Sendable {
    private let lines = Mutex<[String]>([])
    var all: [String] { lines.withLock { $0 } }

    var logger: Logger {
        Logger(label: "test.scheduler") { _ in Handler(log: self) }
    }

    struct Handler: LogHandler {
        let log: LogLines
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let all = metadata.merging(event.metadata ?? [:]) { $1 }
            let line = ([event.message.description] + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }).joined(separator: " ")
            log.lines.withLock { $0.append(line) }
        }
    }
}

@Suite("Scheduler")
struct SchedulerTests {
    static let flow = "nightly"
    static let day = Duration.seconds(86_400)
    /// The test clock starts at 2026-01-01T00:00:00Z.
    static func date(_ text: String) -> Date { try! Date(text, strategy: .iso8601) }

    let clock = TestClock()
    let store = MemoryStore()
    let fired = FiredTicks()
    let log = LogLines()

    /// A scheduler whose lease lasts `leaseTTL` of test time (renewed, and retried by a
    /// follower, every third of it).
    func scheduler(_ schedule: ScheduleSpec, holder: String = "a", leaseTTL: Double = 90 * 86_400,
                   fail: Bool = false) throws -> Scheduler {
        let fired = self.fired
        return try Scheduler(schedule: schedule, flow: Self.flow, store: store, clock: clock, holder: holder, leaseTTL: leaseTTL,
                             logger: log.logger) { tick in
            fired.add(holder, tick)
            if fail { throw DurableError("the run could not start") }
        }
    }

    /// Waits (a bounded time) until `count` tasks sleep on the clock: the scheduler has done
    /// everything due and waits for its next tick.
    func settle(_ count: Int) async throws {
        // Generous: in the full suite, CLI tests that wait on child processes can hold both
        // threads of the concurrency pool on this 2-core machine for many seconds.
        let deadline = ContinuousClock.now + .seconds(90)
        while clock.sleeperCount < count {
            try #require(ContinuousClock.now < deadline, "only \(clock.sleeperCount) of \(count) sleepers")
            try await Task.sleep(for: .milliseconds(1))
        }
    }

    func last() async throws -> String? {
        try await store.get(.system, Scheduler.lastKey(schedule: Self.flow), now: clock.now())?.value["time"]?.stringValue
    }

    /// Records `last` as if the schedule had last fired at `date` before this process started.
    func seedLast(_ date: String) async throws {
        try await store.put(.system, Scheduler.lastKey(schedule: Self.flow), Scheduler.position(Self.date(date)), ttl: nil, now: clock.now())
    }

    @Test("A daily cron schedule fires once a day at its time: three days, three ticks")
    func cronTicks() async throws {
        let running = try scheduler(ScheduleSpec(.cron("0 6 * * *")))
        let task = Task { await running.run() }
        try await settle(2)  // the schedule and its lease's renewal
        #expect(fired.all.isEmpty, "a schedule that never ran starts from now")
        #expect(try await last() == "2026-01-01T00:00:00Z")
        for _ in 0..<3 {
            clock.advance(by: Self.day)
            try await settle(2)
        }
        #expect(fired.times == ["2026-01-01T06:00:00Z", "2026-01-02T06:00:00Z", "2026-01-03T06:00:00Z"])
        #expect(try await last() == "2026-01-03T06:00:00Z")
        let claim = try await store.get(.system, "schedule/nightly/\(Int(Self.date("2026-01-03T06:00:00Z").timeIntervalSince1970))", now: clock.now())
        #expect(claim?.value["holder"] == "a", "each tick is claimed in the store before it fires")
        task.cancel()
        await task.value
    }

    @Test("An interval schedule fires at multiples of the interval, with the tick in each run's input")
    func intervalTicks() async throws {
        let spec = ScheduleSpec(.interval(.seconds(900)), input: ["kind": "sync"])
        let running = try scheduler(spec)
        let task = Task { await running.run() }
        try await settle(2)
        clock.advance(by: .seconds(60))
        try await settle(2)
        #expect(fired.all.isEmpty)
        for _ in 0..<4 {
            clock.advance(by: .seconds(900))
            try await settle(2)
        }
        #expect(fired.times == ["2026-01-01T00:15:00Z", "2026-01-01T00:30:00Z", "2026-01-01T00:45:00Z", "2026-01-01T01:00:00Z"])
        #expect(fired.all.first?.tick.input == ["scheduled_time": "2026-01-01T00:15:00Z", "schedule": "nightly", "kind": "sync"])
        #expect(fired.all.allSatisfy { !$0.tick.isCatchUp && $0.tick.partition == nil })
        task.cancel()
        await task.value
    }

    @Test("Cron fields are read on the wall clock of the schedule's time zone")
    func timeZone() async throws {
        let running = try scheduler(ScheduleSpec(.cron("0 6 * * *"), timeZone: "Europe/Berlin"))
        let task = Task { await running.run() }
        try await settle(2)
        clock.advance(by: Self.day)
        try await settle(2)
        #expect(fired.times == ["2026-01-01T05:00:00Z"], "06:00 in Berlin is 05:00 UTC in winter")
        task.cancel()
        await task.value
    }

    struct CatchUpCase: Sendable, CustomStringConvertible {
        let policy: ScheduleSpec.CatchUp
        let max: Int
        /// Fired on start, then at the next tick; `+` marks a catch-up.
        let expected: [String]
        var description: String { "\(policy), max \(max)" }
    }

    static let catchUps: [CatchUpCase] = [
        CatchUpCase(policy: .skip, max: 10, expected: ["2026-01-01T01:00:00Z"]),
        CatchUpCase(policy: .latest, max: 10, expected: ["2026-01-01T00:00:00Z+", "2026-01-01T01:00:00Z"]),
        CatchUpCase(policy: .all, max: 10, expected: ["2025-12-31T20:00:00Z+", "2025-12-31T21:00:00Z+", "2025-12-31T22:00:00Z+",
                                                      "2025-12-31T23:00:00Z+", "2026-01-01T00:00:00Z+", "2026-01-01T01:00:00Z"]),
        CatchUpCase(policy: .all, max: 3, expected: ["2025-12-31T22:00:00Z+", "2025-12-31T23:00:00Z+", "2026-01-01T00:00:00Z+",
                                                     "2026-01-01T01:00:00Z"]),
    ]

    @Test("After five missed hourly ticks, catch_up decides which fire: none, the latest, or all (the newest max)", arguments: catchUps)
    func catchUp(_ c: CatchUpCase) async throws {
        // Down since just after the 19:00 tick: 20:00 to 00:00 (now) were missed.
        try await seedLast("2025-12-31T19:00:00Z")
        let running = try scheduler(ScheduleSpec(.interval(.seconds(3600)), catchUp: c.policy, maxCatchUp: c.max))
        let task = Task { await running.run() }
        try await settle(2)
        #expect(try await last() == "2026-01-01T00:00:00Z", "the missed ticks are handled, fired or not")
        clock.advance(by: .seconds(3600))
        try await settle(2)
        #expect(fired.times == c.expected)
        let dropped = 5 - c.expected.count + 1
        #expect(log.all.filter { $0.hasPrefix("missed ticks not fired") }
                == (dropped == 0 ? [] : ["missed ticks not fired flow.name=nightly schedule.catch_up=\(c.policy) schedule.dropped=\(dropped)"]),
                "\(log.all)")
        task.cancel()
        await task.value
    }

    @Test("A tick that came due while the previous tick's run was going is missed; the newest due tick fires on time")
    func lateWhileLeading() async throws {
        let running = try scheduler(ScheduleSpec(.interval(.seconds(3600)), catchUp: .latest))
        let task = Task { await running.run() }
        try await settle(2)
        clock.advance(by: .seconds(3 * 3600))  // 01:00, 02:00 and 03:00 are due at once
        try await settle(2)
        #expect(fired.times == ["2026-01-01T02:00:00Z+", "2026-01-01T03:00:00Z"])
        task.cancel()
        await task.value
    }

    @Test("Two schedulers on one store: only the leader fires, each tick once; the other takes over when it stops")
    func leaderOnly() async throws {
        let spec = ScheduleSpec(.cron("0 6 * * *"), catchUp: .latest)
        // A three-day lease, renewed (and retried by the follower) daily.
        let aScheduler = try scheduler(spec, holder: "a", leaseTTL: 3 * 86_400)
        let a = Task { await aScheduler.run() }
        try await settle(2)
        let bScheduler = try scheduler(spec, holder: "b", leaseTTL: 3 * 86_400)
        let b = Task { await bScheduler.run() }
        try await settle(3)  // a's schedule and renewal, b's wait for the lease
        for _ in 0..<2 {
            clock.advance(by: Self.day)
            try await settle(3)
        }
        #expect(fired.all.map(\.holder) == ["a", "a"])
        #expect(fired.times == ["2026-01-01T06:00:00Z", "2026-01-02T06:00:00Z"])

        // a stops (and releases the lease): b takes it at its next try and catches up 01-03.
        a.cancel()
        await a.value
        clock.advance(by: Self.day)
        try await settle(2)
        #expect(fired.all.map(\.holder) == ["a", "a", "b"])
        #expect(fired.times == ["2026-01-01T06:00:00Z", "2026-01-02T06:00:00Z", "2026-01-03T06:00:00Z+"])
        clock.advance(by: Self.day)
        try await settle(2)
        #expect(fired.times.last == "2026-01-04T06:00:00Z")
        #expect(Set(fired.times.map { $0.prefix(20) }).count == fired.times.count, "no tick fired twice")
        b.cancel()
        await b.value
    }

    @Test("A tick another process already claimed is not fired again")
    func claimedElsewhere() async throws {
        let tick = Self.date("2026-01-01T06:00:00Z")
        let claimed = try await store.create(.system, Scheduler.claimKey(schedule: Self.flow, tick: tick), ["holder": "elsewhere"], ttl: nil, now: clock.now())
        #expect(claimed != nil)
        let running = try scheduler(ScheduleSpec(.cron("0 6 * * *")))
        let task = Task { await running.run() }
        try await settle(2)
        for _ in 0..<2 {
            clock.advance(by: Self.day)
            try await settle(2)
        }
        #expect(fired.times == ["2026-01-02T06:00:00Z"])
        task.cancel()
        await task.value
    }

    @Test("A daily schedule with partition yesterday hands each run the day before its tick")
    func partitionYesterday() async throws {
        let spec = ScheduleSpec(.cron("0 6 * * *"), partition: "yesterday")
        let running = try scheduler(spec)
        let task = Task { await running.run() }
        try await settle(2)
        for _ in 0..<2 {
            clock.advance(by: Self.day)
            try await settle(2)
        }
        #expect(fired.all.map(\.tick.partition) == ["2025-12-31", "2026-01-01"])
        #expect(fired.all.first?.tick.input["partition"] == "2025-12-31")
        task.cancel()
        await task.value
    }

    @Test("A run that fails to start does not stop the schedule")
    func failedFireContinues() async throws {
        let running = try scheduler(ScheduleSpec(.interval(.seconds(60))), fail: true)
        let task = Task { await running.run() }
        try await settle(2)
        for _ in 0..<2 {
            clock.advance(by: .seconds(60))
            try await settle(2)
        }
        #expect(fired.times == ["2026-01-01T00:01:00Z", "2026-01-01T00:02:00Z"])
        task.cancel()
        await task.value
    }
}

@Suite("TickPlanner")
struct TickPlannerTests {
    static func at(_ text: String) -> Date { SchedulerTests.date(text) }

    struct Row: Sendable, CustomStringConvertible {
        let schedule: ScheduleSpec
        let cursor: String
        let now: String
        let starting: Bool
        let step: TickPlanner.Step
        let note: String
        var description: String { note }
    }

    static let hourly = ScheduleSpec(.interval(.seconds(3600)))
    static let rows: [Row] = [
        Row(schedule: hourly, cursor: "2026-01-01T00:00:00Z", now: "2026-01-01T00:30:00Z", starting: false,
            step: .sleep(until: at("2026-01-01T01:00:00Z")), note: "nothing due: sleep until the next tick"),
        Row(schedule: hourly, cursor: "2026-01-01T00:00:00Z", now: "2026-01-01T01:00:00Z", starting: false,
            step: .fire([.init(at("2026-01-01T01:00:00Z"), catchUp: false)], dropped: .init(0), newest: at("2026-01-01T01:00:00Z")),
            note: "a tick due now fires on time"),
        Row(schedule: hourly, cursor: "2026-01-01T00:00:00Z", now: "2026-01-01T01:00:00Z", starting: true,
            step: .fire([], dropped: .init(1), newest: at("2026-01-01T01:00:00Z")), note: "on start, a due tick was missed: skip drops it"),
        Row(schedule: hourly, cursor: "2026-01-01T00:00:00Z", now: "2026-01-01T03:30:00Z", starting: false,
            step: .fire([.init(at("2026-01-01T03:00:00Z"), catchUp: false)], dropped: .init(2), newest: at("2026-01-01T03:00:00Z")),
            note: "late while leading: skip fires only the newest"),
        Row(schedule: ScheduleSpec(.interval(.seconds(3600)), catchUp: .all, maxCatchUp: 2), cursor: "2025-12-01T00:00:00Z",
            now: "2026-01-01T00:10:00Z", starting: true,
            step: .fire([.init(at("2025-12-31T23:00:00Z"), catchUp: true), .init(at("2026-01-01T00:00:00Z"), catchUp: true)],
                        dropped: .init(742), newest: at("2026-01-01T00:00:00Z")),
            note: "a month down: all keeps the newest two"),
        Row(schedule: ScheduleSpec(.cron("0 6 * * *"), catchUp: .latest), cursor: "2025-06-01T06:00:00Z",
            now: "2026-01-01T07:00:00Z", starting: true,
            step: .fire([.init(at("2026-01-01T06:00:00Z"), catchUp: true)], dropped: .init(23, exact: false), newest: at("2026-01-01T06:00:00Z")),
            note: "cron, long down: the latest is found without counting every tick"),
        Row(schedule: ScheduleSpec(.cron("0 6 * * *"), catchUp: .all, maxCatchUp: 10), cursor: "2025-12-29T06:00:00Z",
            now: "2026-01-01T07:00:00Z", starting: true,
            step: .fire(["2025-12-30", "2025-12-31", "2026-01-01"].map { .init(at($0 + "T06:00:00Z"), catchUp: true) },
                        dropped: .init(0), newest: at("2026-01-01T06:00:00Z")),
            note: "cron, three days down: all fires the three"),
    ]

    @Test("The planner decides from the position and the time alone", arguments: rows)
    func step(_ row: Row) throws {
        let planner = try TickPlanner(row.schedule)
        #expect(planner.step(cursor: Self.at(row.cursor), now: Self.at(row.now), starting: row.starting) == row.step)
    }
}
