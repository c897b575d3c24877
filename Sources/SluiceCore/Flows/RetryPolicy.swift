/// How a failed task attempt is retried: exponential backoff with a cap and jitter.
///
/// Attempt `k` (k = 1 for the first retry) waits `initialBackoff × multiplier^(k-1)`, capped at
/// `maxBackoff`, then jittered. `maxAttempts` counts every attempt, the first included.
public struct RetryPolicy: Sendable, Hashable {
    public var maxAttempts: Int
    public var initialBackoff: Duration
    public var maxBackoff: Duration
    public var multiplier: Double
    public var jitter: Jitter
    public var retryOnTimeout: Bool

    public struct Jitter: Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
        /// Wait exactly the computed delay.
        public static let none = Jitter("none")
        /// Wait a uniformly random time between zero and the computed delay (AWS "full jitter").
        public static let full = Jitter("full")
        /// Wait half the delay plus a random part of the other half.
        public static let equal = Jitter("equal")
        public static let all: [Jitter] = [.none, .full, .equal]
    }

    public init(maxAttempts: Int = 3, initialBackoff: Duration = .seconds(1), maxBackoff: Duration = .seconds(60),
                multiplier: Double = 2, jitter: Jitter = .full, retryOnTimeout: Bool = true) {
        self.maxAttempts = maxAttempts
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
        self.multiplier = multiplier
        self.jitter = jitter
        self.retryOnTimeout = retryOnTimeout
    }

    /// One attempt, no retries.
    public static let none = RetryPolicy(maxAttempts: 1)

    /// Exponential backoff with full jitter.
    public static func exponential(maxAttempts: Int, initialBackoff: Duration = .seconds(1), maxBackoff: Duration = .seconds(60),
                                   multiplier: Double = 2) -> RetryPolicy {
        RetryPolicy(maxAttempts: maxAttempts, initialBackoff: initialBackoff, maxBackoff: maxBackoff, multiplier: multiplier)
    }

    /// The delay before retry number `retry` (1 = first retry), before jitter.
    public func baseDelay(beforeRetry retry: Int) -> Duration {
        let initial = initialBackoff.seconds
        let cap = maxBackoff.seconds
        let raw = initial * pow(multiplier, Double(max(0, retry - 1)))
        return .nanoseconds(Int64(min(raw.isFinite ? raw : cap, cap) * 1e9))
    }

    /// The delay before retry number `retry`, jittered with `random` in [0, 1).
    public func delay(beforeRetry retry: Int, random: Double) -> Duration {
        let base = baseDelay(beforeRetry: retry)
        switch jitter {
        case .full: return base * random
        case .equal: return base / 2 + (base / 2) * random
        default: return base
        }
    }
}

private func pow(_ x: Double, _ y: Double) -> Double {
    // Integer exponents only here; avoids importing Foundation into the core.
    var result = 1.0
    var n = Int(y)
    var b = x
    while n > 0 {
        if n & 1 == 1 { result *= b }
        b *= b
        n >>= 1
    }
    return result
}
