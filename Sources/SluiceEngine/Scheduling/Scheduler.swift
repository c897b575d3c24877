import Foundation
import Logging
import SluiceCore

/// One tick of a schedule, as handed to the code that starts its run.
public struct ScheduledTick: Sendable, Equatable {
    /// When the tick was due.
    public var time: Date
    /// True when it fires late: missed while no process led the schedule (or while the
    /// previous tick's run was still going), and kept by the schedule's `catch_up`.
    public var isCatchUp: Bool
    /// The key of the partition the tick fills, when the schedule names one.
    public var partition: String?
    /// The run's input: `scheduled_time` (ISO-8601, UTC), `schedule` (the schedule's name:
    /// the flow's, or `flow@asset`), `partition` when there is one, then the schedule's own input.
    public var input: Value

    public init(time: Date, isCatchUp: Bool, partition: String?, input: Value) {
        self.time = time
        self.isCatchUp = isCatchUp
        self.partition = partition
        self.input = input
    }

    /// `2026-01-01T06:00:00Z`: whole seconds (ticks fall on them), UTC.
    public static func iso8601(_ date: Date) -> String {
        let epoch = Int64(date.timeIntervalSince1970.rounded(.down))
        let days = CivilCalendar.floorDiv(epoch, 86_400)
        let second = epoch - days * 86_400
        let (year, month, day) = CivilCalendar.civil(fromDays: days)
        func two(_ n: Int64) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let yyyy = String(repeating: "0", count: max(0, 4 - String(year).count)) + String(year)
        return "\(yyyy)-\(two(month))-\(two(day))T\(two(second / 3600)):\(two(second / 60 % 60)):\(two(second % 60))Z"
    }
}

/// Fires a flow's schedule (or an asset's) on the one process, among those sharing a store,
/// that holds the lease `schedule/<name>` (the lease loop of `Leadership`); another process
/// takes over within the lease time when it dies. The name is the flow's, or `flow@asset`.
///
/// The store keeps the schedule's position in the system bucket, `schedule/<name>/last`: the
/// newest tick fired or passed over, or, until the first tick, when the schedule first ran.
/// When a process starts leading, the ticks after that position are the ones missed, and
/// `catch_up` decides which of them fire; a schedule with no position yet starts from now.
/// While leading, a tick that came due while the previous tick's run was still going counts as
/// missed too, except the newest, which fires as usual.
///
/// Each tick is claimed before it fires, with an atomic create of `schedule/<name>/<epoch
/// seconds>`, so it fires once even when two processes briefly both believe they lead. A
/// process that dies between claiming a tick and starting its run loses that tick: ticks fire
/// at most once.
public struct Scheduler: Sendable {
    public let schedule: ScheduleSpec
    public let flow: String
    /// The asset whose schedule this is (its ticks name partitions of its time windows), or nil
    /// for the flow's own schedule.
    public let asset: AssetSpec?
    public let store: any Store
    public let clock: any EngineClock
    /// This process's name in the lease and in claims.
    public let holder: String
    /// Seconds the leader's lease lasts without renewal.
    public let leaseTTL: Double
    public let logger: Logger
    let planner: TickPlanner
    private let fire: @Sendable (ScheduledTick) async throws -> Void

    /// How long a claim is kept: far longer than two processes can overlap as leaders. A
    /// restart does not rely on it, since it starts after `last`.
    static let claimTTL: Double = 86_400
    /// The pause before trying again after the store failed.
    static let retryDelay = Duration.seconds(5)

    /// Fails when the schedule's cron expression does not parse (a prepared flow's does).
    public init(schedule: ScheduleSpec, flow: String, asset: AssetSpec? = nil, store: any Store, clock: any EngineClock = SystemClock(),
                holder: String = DurableRunner.defaultWorkerName(), leaseTTL: Double = 15,
                logger: Logger = Logger(label: "sluice.scheduler"),
                fire: @escaping @Sendable (ScheduledTick) async throws -> Void) throws(CronSchedule.ParseError) {
        self.schedule = schedule
        self.flow = flow
        self.asset = asset
        self.store = store
        self.clock = clock
        self.holder = holder
        self.leaseTTL = leaseTTL
        var logger = logger
        logger[metadataKey: "flow.name"] = .string(flow)
        if let asset { logger[metadataKey: "asset.key"] = .string(asset.key) }
        self.logger = logger
        self.planner = try TickPlanner(schedule)
        self.fire = fire
    }

    /// What the schedule's lease and keys are named by: the flow, or `flow@asset`.
    public var name: String { Self.name(flow: flow, asset: asset?.key) }
    public static func name(flow: String, asset: String?) -> String { asset.map { "\(flow)@\($0)" } ?? flow }

    package static func leaseName(schedule: String) -> String { "schedule/\(schedule)" }
    package static func lastKey(schedule: String) -> String { "schedule/\(schedule)/last" }
    /// Also the idempotency key of the run a tick starts.
    package static func claimKey(schedule: String, tick: Date) -> String { "schedule/\(schedule)/\(Int64(tick.timeIntervalSince1970.rounded(.down)))" }

    /// The stored form of a position: `{time: ISO-8601, epoch: seconds}`.
    package static func position(_ date: Date) -> Value {
        ["time": .string(ScheduledTick.iso8601(date)), "epoch": .int(Int64(date.timeIntervalSince1970.rounded(.down)))]
    }

    /// Fires ticks while this process leads the schedule, waiting for the lead first and again
    /// after losing it; returns when cancelled.
    public func run() async {
        let leadership = Leadership(store: store, name: Self.leaseName(schedule: name), holder: holder, ttl: leaseTTL, clock: clock)
        let logger = self.logger
        _ = await leadership.run(onChange: { leading, lease in
            if leading {
                logger.info("leading the schedule", metadata: ["lease.generation": "\(lease?.generation ?? 0)"])
            } else {
                logger.info("lost the lead of the schedule; waiting to take it again")
            }
        }) {
            await lead()
        }
    }

    /// The loop run while leading: read the position, then fire what is due and sleep until
    /// the next tick, until cancelled.
    private func lead() async {
        var cursor: Date?
        var starting = true
        while !Task.isCancelled {
            do {
                guard let position = cursor else {
                    cursor = try await startingPosition()
                    starting = cursor != nil
                    if cursor == nil {
                        // Never ran before: start from now, and remember that.
                        let now = clock.now()
                        try await store.put(.system, Self.lastKey(schedule: name), Self.position(now), ttl: nil, now: now)
                        logger.info("first start of the schedule: no catch-up")
                        cursor = now
                    }
                    continue
                }
                let now = clock.now()
                switch planner.step(cursor: position, now: now, starting: starting) {
                case .idle:
                    logger.warning("the schedule has no tick in the next eight years")
                    try await clock.sleep(for: .seconds(86_400))
                case .sleep(let until):
                    try await clock.sleep(for: .seconds(until.timeIntervalSince(now)))
                case .fire(let ticks, let dropped, let newest):
                    if dropped.count > 0 {
                        logger.notice("missed ticks not fired", metadata: [
                            "schedule.dropped": "\(dropped.exact ? "" : "at least ")\(dropped.count)",
                            "schedule.catch_up": "\(schedule.catchUp)",
                        ])
                    }
                    for tick in ticks {
                        try await claimAndFire(tick)
                        cursor = tick.time
                        try Task.checkCancellation()
                    }
                    if cursor.map({ $0 < newest }) ?? true {
                        try await store.put(.system, Self.lastKey(schedule: name), Self.position(newest), ttl: nil, now: clock.now())
                        cursor = newest
                    }
                }
                starting = false
            } catch is CancellationError {
                return
            } catch {
                logger.warning("schedule store error; trying again", metadata: ["error": "\(error)"])
                try? await clock.sleep(for: Self.retryDelay)
            }
        }
    }

    /// The stored position, nil when the schedule never ran.
    private func startingPosition() async throws -> Date? {
        guard let entry = try await store.get(.system, Self.lastKey(schedule: name), now: clock.now()) else { return nil }
        guard let epoch = entry.value["epoch"]?.doubleValue else {
            throw StoreError.corrupt("\(Self.lastKey(schedule: name)) holds no epoch: \(entry.value.jsonString())")
        }
        return Date(timeIntervalSince1970: epoch)
    }

    /// Claims the tick (a store error before the claim leaves it for the retry), moves the
    /// position to it and fires it. A failed run does not stop the schedule.
    private func claimAndFire(_ planned: TickPlanner.Tick) async throws {
        let now = clock.now()
        let claim: Value = ["holder": .string(holder), "claimed": .string(ScheduledTick.iso8601(now))]
        var metadata: Logger.Metadata = ["schedule.tick": "\(ScheduledTick.iso8601(planned.time))"]
        guard try await store.create(.system, Self.claimKey(schedule: name, tick: planned.time), claim, ttl: Self.claimTTL, now: now) != nil else {
            logger.info("tick already fired by another process", metadata: metadata)
            return
        }
        do {
            try await store.put(.system, Self.lastKey(schedule: name), Self.position(planned.time), ttl: nil, now: now)
        } catch {
            // The claim already keeps the tick from firing twice; only a restart would see the older position.
            metadata["error"] = "\(error)"
            logger.warning("could not record the schedule's position", metadata: metadata)
        }
        let tick = makeTick(planned)
        do {
            try await fire(tick)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            metadata["error"] = "\(error)"
            logger.error("a scheduled run could not start", metadata: metadata)
        }
    }

    private func makeTick(_ planned: TickPlanner.Tick) -> ScheduledTick {
        let partition: String?
        if let asset {
            // An asset's keys are read in its own windows' time zone.
            partition = asset.partitions?.timeWindows.flatMap { schedule.partitionKey(at: planned.time, in: $0) }
        } else {
            partition = schedule.partitionKey(at: planned.time)
        }
        var input: Value.Object = ["scheduled_time": .string(ScheduledTick.iso8601(planned.time)), "schedule": .string(name)]
        if let partition { input["partition"] = .string(partition) }
        for (key, value) in schedule.input { input[key] = value }
        return ScheduledTick(time: planned.time, isCatchUp: planned.isCatchUp, partition: partition, input: .object(input))
    }
}

/// The scheduler's decisions, from its position and the time alone (no store, no clock): when
/// the next tick is, and which due ticks fire under the catch-up policy.
package struct TickPlanner: Sendable {
    package struct Tick: Sendable, Equatable {
        package var time: Date
        package var isCatchUp: Bool
        package init(_ time: Date, catchUp: Bool) {
            self.time = time
            self.isCatchUp = catchUp
        }
    }

    /// Missed ticks that do not fire; `exact` is false when there were too many to count.
    package struct Dropped: Sendable, Equatable {
        package var count: Int
        package var exact: Bool
        package init(_ count: Int, exact: Bool = true) {
            self.count = count
            self.exact = exact
        }
    }

    package enum Step: Sendable, Equatable {
        /// Nothing is due: sleep until the next tick.
        case sleep(until: Date)
        /// Fire these ticks, oldest first; the position then moves to `newest`, the newest tick due.
        case fire([Tick], dropped: Dropped, newest: Date)
        /// The schedule never fires again.
        case idle
    }

    enum Source: Sendable {
        case cron(CronSchedule)
        /// Whole seconds.
        case interval(Int64)
    }

    let source: Source
    let catchUp: ScheduleSpec.CatchUp
    let maxCatchUp: Int
    /// At most this many ticks are computed for one step (a cron firing every second, long down).
    static let searchBudget = 1_000_000

    package init(_ schedule: ScheduleSpec) throws(CronSchedule.ParseError) {
        switch schedule.trigger {
        case .cron(let expression): source = .cron(try CronSchedule(expression, timeZone: schedule.zone))
        case .interval(let every): source = .interval(max(1, every.components.seconds))
        }
        catchUp = schedule.catchUp
        maxCatchUp = max(1, schedule.maxCatchUp)
    }

    /// The next step from `cursor` (the newest tick handled) at `now`. When `starting` (the
    /// first step after taking the lead) every due tick was missed; later, the newest due tick
    /// is on time and the older ones were missed.
    package func step(cursor: Date, now: Date, starting: Bool) -> Step {
        guard let next = next(after: cursor) else { return .idle }
        guard next <= now else { return .sleep(until: next) }
        let keep: Int
        switch catchUp {
        case .all: keep = maxCatchUp
        case .latest: keep = 1
        default: keep = 0
        }
        // One more than the missed ticks kept: the newest due tick, on time or not.
        let (due, total, exact) = ticks(after: cursor, through: now, keepNewest: keep + 1)
        guard let newest = due.last else { return .sleep(until: next) }
        var missed = due, missedTotal = total
        var onTime: [Tick] = []
        if !starting {
            missed.removeLast()
            missedTotal -= 1
            onTime = [Tick(newest, catchUp: false)]
        }
        let fired = missed.suffix(keep).map { Tick($0, catchUp: true) }
        return .fire(fired + onTime, dropped: Dropped(missedTotal - fired.count, exact: exact), newest: newest)
    }

    /// The first tick strictly after `date`.
    package func next(after date: Date) -> Date? {
        switch source {
        case .cron(let cron):
            return cron.next(after: date)
        case .interval(let every):
            let t = Int64(date.timeIntervalSince1970.rounded(.down))
            return Date(timeIntervalSince1970: Double((CivilCalendar.floorDiv(t, every) + 1) * every))
        }
    }

    /// The newest `keepNewest` ticks in (after, through], oldest first, and how many there are
    /// in all (`exact` false: at least that many).
    func ticks(after: Date, through: Date, keepNewest keep: Int) -> (newest: [Date], total: Int, exact: Bool) {
        switch source {
        case .interval(let every):
            guard let first = next(after: after), first <= through else { return ([], 0, true) }
            let firstSecond = Int64(first.timeIntervalSince1970)
            let lastSecond = CivilCalendar.floorDiv(Int64(through.timeIntervalSince1970.rounded(.down)), every) * every
            let total = Int((lastSecond - firstSecond) / every) + 1
            let kept = min(keep, total)
            let newest = (0..<kept).reversed().map { Date(timeIntervalSince1970: Double(lastSecond - Int64($0) * every)) }
            return (newest, total, true)
        case .cron(let cron):
            // Cron cannot count backwards: search a window before `through`, widened until it
            // holds enough ticks or reaches `after`.
            var span = 3600.0
            var budget = Self.searchBudget
            while true {
                let from = max(after, through.addingTimeInterval(-span))
                var newest: [Date] = []
                var total = 0
                var t = from
                while budget > 0, let tick = cron.next(after: t), tick <= through {
                    budget -= 1
                    total += 1
                    newest.append(tick)
                    if newest.count >= 2 * keep + 64 { newest.removeFirst(newest.count - keep) }
                    t = tick
                }
                newest = Array(newest.suffix(keep))
                if from == after || newest.count >= keep || budget == 0 {
                    return (newest, total, from == after && budget > 0)
                }
                span *= 24
            }
        }
    }
}
