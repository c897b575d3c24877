import Foundation

/// When a flow runs by itself: on a cron expression or a fixed interval, what happens to the
/// ticks missed while no process was running it, and what each run gets as input. Kept apart
/// from flows so an asset can carry one too (with `partition` naming the window a tick fills).
public struct ScheduleSpec: Sendable, Equatable {
    /// What makes the ticks.
    public enum Trigger: Sendable, Equatable {
        /// A cron expression (5 fields, 6 with seconds first, or a macro such as `@daily`) read
        /// on the wall clock of the schedule's time zone.
        case cron(String)
        /// Every so long, at whole multiples of the interval since the Unix epoch (15m ticks at
        /// :00, :15, :30, :45), so every process sharing a store computes the same ticks.
        case interval(Duration)
    }

    /// Which of the ticks missed while no process was leading the schedule still fire.
    public struct CatchUp: Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// None: the schedule continues with the next tick to come.
        public static let skip = CatchUp("skip")
        /// Only the most recent missed tick.
        public static let latest = CatchUp("latest")
        /// Each missed tick, oldest first, at most `maxCatchUp` of them (the newest).
        public static let all = CatchUp("all")
        public static let allValues: [CatchUp] = [.skip, .latest, .all]

        public init?(rawValue: String) {
            guard let known = Self.allValues.first(where: { $0.rawValue == rawValue }) else { return nil }
            self = known
        }
    }

    public var trigger: Trigger
    /// The IANA identifier of the zone cron fields and partition keys are read in.
    public var timeZone: String
    public var catchUp: CatchUp
    /// With `catchUp` all: at most this many missed ticks fire.
    public var maxCatchUp: Int
    /// Merged into each run's input, after `scheduled_time` and `schedule`.
    public var input: Value.Object
    /// Which time window a tick fills, relative to the tick: one of `partitionExpressions`.
    public var partition: String?
    /// Where the cron expression or interval was written: a cron expression is checked when
    /// the flow is prepared (the parser lives with the engine), and its errors point here.
    public var location: SourceLocation?

    public static let defaultMaxCatchUp = 10
    /// Input keys every run of a schedule gets; `input` cannot set them.
    public static let reservedInputKeys = ["scheduled_time", "schedule", "partition"]

    public init(_ trigger: Trigger, timeZone: String = "UTC", catchUp: CatchUp = .skip, maxCatchUp: Int = ScheduleSpec.defaultMaxCatchUp,
                input: Value.Object = [:], partition: String? = nil, location: SourceLocation? = nil) {
        self.trigger = trigger
        self.timeZone = timeZone
        self.catchUp = catchUp
        self.maxCatchUp = maxCatchUp
        self.input = input
        self.partition = partition
        self.location = location
    }

    /// The time zone; UTC when the identifier is unknown (the loader rejects those).
    public var zone: TimeZone { TimeZone(identifier: timeZone) ?? TimeZone(identifier: "UTC")! }

    // MARK: Partitions

    /// The partition expressions and the window each names: its unit, and how many windows
    /// before the one holding the tick (`yesterday` is the daily window before the tick's).
    public static let partitionExpressions: [String: (unit: TimeWindows.Unit, offset: Int)] = [
        "this_hour": (.hourly, 0), "previous_hour": (.hourly, -1),
        "today": (.daily, 0), "yesterday": (.daily, -1),
        "this_month": (.monthly, 0), "previous_month": (.monthly, -1),
    ]

    /// The key of the partition a tick at `tick` fills, in the key format of time-partitioned
    /// assets (`2025-01-15`, `2025-01-15T14:00`, `2025-01`) and the schedule's time zone; nil
    /// without a (known) `partition`.
    public func partitionKey(at tick: Date) -> String? {
        guard let partition, let window = Self.partitionExpressions[partition] else { return nil }
        return partitionKey(at: tick, in: TimeWindows(unit: window.unit, start: .distantPast, timeZone: zone))
    }

    /// The key of the partition a tick at `tick` fills among `windows` (an asset's time
    /// partitions, read in their own time zone); nil without a `partition` of their unit.
    public func partitionKey(at tick: Date, in windows: TimeWindows) -> String? {
        guard let partition, let window = Self.partitionExpressions[partition], window.unit == windows.unit else { return nil }
        return windows.key(ofWindowStarting: windows.advance(windows.floor(tick), by: window.offset))
    }
}
