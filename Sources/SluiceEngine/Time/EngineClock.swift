import Foundation

/// Where the engine gets time from. Every timer (retry delays, timeouts, schedules, buffer
/// flushes) goes through it, so tests drive schedules and retries without sleeping.
public protocol EngineClock: Sendable {
    /// Wall-clock time, for timestamps and calendar schedules.
    func now() -> Date
    /// Monotonic time since an arbitrary origin, for durations and deadlines.
    func uptime() -> Duration
    /// Suspends for `duration`; throws `CancellationError` when the task is cancelled.
    func sleep(for duration: Duration) async throws
}

/// The real clock.
public struct SystemClock: EngineClock {
    public init() {}

    public func now() -> Date { Date() }

    public func uptime() -> Duration {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return .seconds(ts.tv_sec) + .nanoseconds(ts.tv_nsec)
    }

    public func sleep(for duration: Duration) async throws {
        guard duration > .zero else { try Task.checkCancellation(); return }
        try await ContinuousClock().sleep(for: duration)
    }
}

extension Date {
    /// Microseconds since the Unix epoch, the unit of `Event.timestamp`.
    public var microsecondsSince1970: Int64 { Int64((timeIntervalSince1970 * 1_000_000).rounded()) }
}
