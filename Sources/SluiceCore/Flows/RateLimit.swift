/// `rate_limit`: how fast a task's attempts may start, as a token bucket that every task with
/// the same key shares (in any flow, and in every process on the same store).
///
/// The bucket holds up to `burst` tokens and gains `count` of them every `period`. Each attempt,
/// each retry too, takes one before it starts; with none left it waits until the next is due.
/// In any stretch of `t` seconds at most `burst + count × t / period` attempts start.
public struct RateLimit: Sendable, Hashable, CustomStringConvertible {
    /// Tokens gained every `period`.
    public var count: Int
    public var period: Duration
    /// The bucket's capacity: how many attempts may start at once after a quiet spell.
    public var burst: Int
    /// The bucket's name. nil: the task's own bucket, `<flow>/<task>`.
    public var key: String?

    /// A rate of `count` per `period`; the burst defaults to `count`.
    public init(count: Int, per period: Duration, burst: Int? = nil, key: String? = nil) {
        self.count = count
        self.period = period
        self.burst = burst ?? count
        self.key = key
    }

    /// What a rate is written as, and how long each period is.
    public static let periods: [(name: String, duration: Duration)] = [("s", .seconds(1)), ("min", .seconds(60)), ("h", .seconds(3600))]

    /// Reads `10/s`, `600/min` or `5000/h`.
    public init(parsing text: String) throws(ParseError) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map { $0.filter { $0 != " " } }
        guard parts.count == 2 else { throw ParseError("write a rate such as 10/s, 600/min or 5000/h") }
        guard let count = Int(parts[0]) else { throw ParseError("'\(parts[0])' is not a whole number of attempts (write e.g. 10/s)") }
        guard count > 0 else { throw ParseError("rate must be positive") }
        guard let period = Self.periods.first(where: { $0.name == parts[1] }) else {
            throw ParseError("unknown period '\(parts[1])' (\(Self.periods.map(\.name).joined(separator: ", ")))")
        }
        self.init(count: count, per: period.duration)
    }

    /// Tokens gained per second.
    public var perSecond: Double { Double(count) / period.seconds }

    /// The rate as written: `10/s`.
    public var rate: String {
        let name = Self.periods.first(where: { $0.duration == period })?.name ?? period.shortDescription
        return "\(count)/\(name)"
    }

    public var description: String {
        var text = rate
        if burst != count { text += ", burst \(burst)" }
        if let key { text += ", key '\(key)'" }
        return text
    }

    /// Why a rate could not be read.
    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public let message: String
        public init(_ message: String) { self.message = message }
        public var description: String { message }
    }
}
