import Foundation

/// How an asset is split into independently materialized parts, each named by a key:
/// time windows (`hourly`, `daily`, `monthly`), a `static` list, or a `multi`-dimensional
/// product of those (a date × a region, FlowStone's tuple partitions).
///
/// Keys: daily `2025-01-15`, monthly `2025-01`, hourly `2025-01-15T14:00` (UTC) or
/// `2025-01-15T14:00+01:00` in another time zone (the offset keeps the repeated hour of a
/// daylight-saving change apart), static keys as written, multi keys joined by `|` in the
/// order the dimensions were written (`2025-01-15|us-east`).
public indirect enum Partitions: Sendable, Equatable {
    case time(TimeWindows)
    case list([String])
    case multi([Dimension])

    public struct Dimension: Sendable, Equatable {
        public var name: String
        public var partitions: Partitions
        public init(name: String, partitions: Partitions) {
            self.name = name
            self.partitions = partitions
        }
    }

    /// Every key, in order. A time dimension without an end stops at the window holding `now`
    /// (a window still open is included).
    public func keys(now: Date) -> [String] {
        switch self {
        case .time(let t): return t.keys(now: now)
        case .list(let keys): return keys
        case .multi(let dimensions):
            var result = [""]
            for (i, d) in dimensions.enumerated() {
                let keys = d.partitions.keys(now: now)
                result = result.flatMap { prefix in keys.map { i == 0 ? $0 : prefix + "|" + $0 } }
            }
            return result
        }
    }

    /// The keys from `first` to `last`, both included, in order.
    public func keys(from first: String, to last: String, now: Date) throws(PartitionError) -> [String] {
        try validate(first)
        try validate(last)
        let all = keys(now: now)
        guard let a = all.firstIndex(of: first), let b = all.firstIndex(of: last) else {
            throw PartitionError("\(first) or \(last) is past the last partition so far")
        }
        guard a <= b else { throw PartitionError("the range \(first) to \(last) is backwards") }
        return Array(all[a...b])
    }

    /// Checks that `key` names a partition; the error says why not.
    public func validate(_ key: String) throws(PartitionError) {
        switch self {
        case .time(let t): _ = try t.window(of: key)
        case .list(let keys):
            guard keys.contains(key) else {
                throw PartitionError("'\(key)' is not one of the partitions (\(keys.joined(separator: ", ")))")
            }
        case .multi(let dimensions):
            let parts = key.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == dimensions.count else {
                throw PartitionError("'\(key)' needs \(dimensions.count) parts joined by '|' (\(dimensions.map(\.name).joined(separator: "|")))")
            }
            for (part, d) in zip(parts, dimensions) {
                do {
                    try d.partitions.validate(part)
                } catch {
                    throw PartitionError("\(d.name): \(error.message)")
                }
            }
        }
    }

    /// The time windows of a time partitioning, or of the time dimension of a multi one.
    public var timeWindows: TimeWindows? {
        switch self {
        case .time(let t): return t
        case .list: return nil
        case .multi(let dimensions): return dimensions.lazy.compactMap(\.partitions.timeWindows).first
        }
    }
}

/// A bad partition key or definition, with the reason.
public struct PartitionError: Error, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Consecutive windows of one size, from a start to an end (or open), in a time zone.
public struct TimeWindows: Sendable, Equatable {
    public enum Unit: String, Sendable, CaseIterable { case hourly, daily, monthly }

    public var unit: Unit
    /// The first window starts here (a window boundary in `timeZone`).
    public var start: Date
    /// Windows end before this; nil: open, up to now.
    public var end: Date?
    public var timeZone: TimeZone

    public init(unit: Unit, start: Date, end: Date? = nil, timeZone: TimeZone = TimeZone(identifier: "UTC")!) {
        self.unit = unit
        self.start = start
        self.end = end
        self.timeZone = timeZone
    }

    var calendar: Calendar {
        var c = Calendar(identifier: .gregorian)
        c.timeZone = timeZone
        return c
    }

    private var step: DateComponents {
        switch unit {
        case .hourly: return DateComponents(hour: 1)
        case .daily: return DateComponents(day: 1)
        case .monthly: return DateComponents(month: 1)
        }
    }

    /// The start of the window `offset` windows after the one starting at `date`.
    public func advance(_ date: Date, by offset: Int) -> Date {
        if unit == .hourly { return date.addingTimeInterval(Double(offset) * 3600) }
        var components = step
        if unit == .daily { components.day = offset } else { components.month = offset }
        return calendar.date(byAdding: components, to: date)!
    }

    /// The start of the window holding `date`.
    public func floor(_ date: Date) -> Date {
        let c = calendar
        switch unit {
        case .hourly:
            return Date(timeIntervalSince1970: (date.timeIntervalSince1970 / 3600).rounded(.down) * 3600)
        case .daily:
            return c.startOfDay(for: date)
        case .monthly:
            return c.date(from: c.dateComponents([.year, .month], from: date))!
        }
    }

    public func key(ofWindowStarting date: Date) -> String {
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute], from: date)
        func two(_ n: Int?) -> String { let v = n ?? 0; return v < 10 ? "0\(v)" : "\(v)" }
        let ymd = "\(c.year!)-\(two(c.month))-\(two(c.day))"
        switch unit {
        case .monthly: return "\(c.year!)-\(two(c.month))"
        case .daily: return ymd
        case .hourly:
            let base = "\(ymd)T\(two(c.hour)):\(two(c.minute))"
            if timeZone.identifier == "UTC" || timeZone.identifier == "GMT" { return base }
            let offset = timeZone.secondsFromGMT(for: date) / 60
            let sign = offset < 0 ? "-" : "+"
            return base + sign + two(abs(offset) / 60) + ":" + two(abs(offset) % 60)
        }
    }

    /// Every window's key from the start to the end, or to the window holding `now`.
    public func keys(now: Date) -> [String] {
        let limit = end ?? advance(floor(now), by: 1)
        var keys: [String] = []
        var t = start
        while t < limit {
            keys.append(key(ofWindowStarting: t))
            t = advance(t, by: 1)
        }
        return keys
    }

    /// The window a key names: [start, end).
    public func window(of key: String) throws(PartitionError) -> (start: Date, end: Date) {
        guard let begin = parse(key) else {
            throw PartitionError("'\(key)' is not a \(unit.rawValue) partition key (like \(self.key(ofWindowStarting: start)))")
        }
        guard begin >= start, end.map({ begin < $0 }) ?? true else {
            let range = end.map { "before \(self.key(ofWindowStarting: advance($0, by: -1)))" } ?? "open-ended"
            throw PartitionError("\(key) is outside the partitions (from \(self.key(ofWindowStarting: start)), \(range))")
        }
        return (begin, advance(begin, by: 1))
    }

    /// The start of the window a key names; nil when it is not a key of this unit and zone.
    private func parse(_ key: String) -> Date? {
        let s = Array(key.utf8)
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= s.count else { return nil }
            var n = 0
            for b in s[range] {
                guard b >= 48, b <= 57 else { return nil }
                n = n * 10 + Int(b - 48)
            }
            return n
        }
        func at(_ i: Int, _ c: Character) -> Bool { i < s.count && s[i] == c.asciiValue! }
        guard let year = number(0..<4), at(4, "-"), let month = number(5..<7), (1...12).contains(month) else { return nil }
        var c = DateComponents(year: year, month: month, day: 1, hour: 0, minute: 0)
        switch unit {
        case .monthly:
            guard s.count == 7 else { return nil }
        case .daily, .hourly:
            guard at(7, "-"), let day = number(8..<10), day >= 1,
                  day <= Int(CivilCalendar.daysIn(year: Int64(year), month: Int64(month))) else { return nil }
            c.day = day
            if unit == .daily {
                guard s.count == 10 else { return nil }
            } else {
                guard at(10, "T"), let hour = number(11..<13), hour < 24, at(13, ":"), number(14..<16) == 0 else { return nil }
                c.hour = hour
            }
        }
        guard let date = calendar.date(from: c) else { return nil }
        // Round trip: a key must be exactly the key of its window (offset included).
        return self.key(ofWindowStarting: date) == key ? date : (unit == .hourly ? alternate(c, key) : nil)
    }

    /// The other instance of a local hour that occurs twice (when clocks go back).
    private func alternate(_ c: DateComponents, _ key: String) -> Date? {
        guard let first = calendar.date(from: c) else { return nil }
        let later = first.addingTimeInterval(3600)
        return self.key(ofWindowStarting: later) == key ? later : nil
    }
}

/// Which partitions of an upstream asset one partition of a downstream asset reads.
public enum PartitionMapping: Sendable, Equatable {
    /// The partition with the same key (the default).
    case identity
    /// The window `n` windows earlier (a running total reading yesterday's).
    case previous(Int)
    /// Every upstream window inside the downstream one (a monthly report reading its days).
    case allOfWindow
    /// Every upstream partition.
    case all

    /// The upstream keys `key` of the downstream asset reads; empty when there is none (the
    /// window before the first).
    public func upstreamKeys(of key: String, downstream: Partitions?, upstream: Partitions?, now: Date) throws(PartitionError) -> [String] {
        guard let upstream else { return [] }
        guard let downstream else {
            // An unpartitioned asset reads its partitioned upstream whole.
            return upstream.keys(now: now)
        }
        switch self {
        case .all:
            return upstream.keys(now: now)
        case .identity:
            try upstream.validate(key)
            return [key]
        case .previous(let n):
            guard case .time(let down) = downstream, case .time(let up) = upstream else {
                throw PartitionError("a 'previous' mapping needs time partitions on both assets")
            }
            let window = try down.window(of: key)
            let earlier = down.advance(window.start, by: -n)
            let upKey = up.key(ofWindowStarting: up.floor(earlier))
            do {
                try up.validate(upKey)
            } catch {
                return []
            }
            return [upKey]
        case .allOfWindow:
            guard case .time(let down) = downstream, case .time(let up) = upstream else {
                throw PartitionError("an 'all_of_window' mapping needs time partitions on both assets")
            }
            let window = try down.window(of: key)
            var keys: [String] = []
            var t = up.floor(window.start)
            while t < window.end {
                let k = up.key(ofWindowStarting: t)
                if (try? up.validate(k)) != nil { keys.append(k) }
                t = up.advance(t, by: 1)
            }
            return keys
        }
    }
}

extension TimeWindows {
    /// Validates with its own messages (`validate` on `Partitions` wraps it).
    public func validate(_ key: String) throws(PartitionError) { _ = try window(of: key) }
}

// MARK: - Reading definitions

extension Partitions {
    /// Reads a definition as flow files write it:
    ///
    ///     daily: {start: 2025-01-01, end: 2025-04-01, timezone: Europe/Berlin}   # end exclusive, optional
    ///     hourly: {start: 2025-01-01T00:00}
    ///     monthly: {start: 2024-01}
    ///     static: [us-east, eu-west]
    ///     multi: {date: {daily: {start: 2025-01-01}}, region: {static: [us-east, eu-west]}}
    public init(config: Value) throws(PartitionError) {
        guard case .object(let o) = config, o.count == 1, let kind = o.keys.first, let body = o[kind] else {
            throw PartitionError("partitions must be one of hourly, daily, monthly, static or multi, e.g. {daily: {start: 2025-01-01}}")
        }
        switch kind {
        case "hourly", "daily", "monthly":
            self = .time(try TimeWindows(unit: TimeWindows.Unit(rawValue: kind)!, config: body))
        case "static":
            guard case .array(let items) = body, !items.isEmpty else {
                throw PartitionError("static partitions are a non-empty list of keys, e.g. static: [us-east, eu-west]")
            }
            var keys: [String] = []
            for item in items {
                guard let key = item.stringValue ?? item.intValue.map({ String($0) }), !key.isEmpty, !key.contains("|") else {
                    throw PartitionError("a static partition key must be a non-empty string without '|', found \(item.jsonString())")
                }
                guard !keys.contains(key) else { throw PartitionError("static partition '\(key)' is listed twice") }
                keys.append(key)
            }
            self = .list(keys)
        case "multi":
            guard case .object(let dims) = body, dims.count >= 2 else {
                throw PartitionError("multi partitions name two or more dimensions, e.g. multi: {date: {daily: ...}, region: {static: [...]}}")
            }
            var dimensions: [Dimension] = []
            for (name, definition) in dims {
                do throws(PartitionError) {
                    let partitions = try Partitions(config: definition)
                    if case .multi = partitions { throw PartitionError("a dimension cannot itself be multi") }
                    dimensions.append(Dimension(name: name, partitions: partitions))
                } catch {
                    throw PartitionError("dimension '\(name)': \(error.message)")
                }
            }
            self = .multi(dimensions)
        default:
            throw PartitionError("unknown partitions '\(kind)' (one of hourly, daily, monthly, static, multi)")
        }
    }
}

extension TimeWindows {
    init(unit: Unit, config: Value) throws(PartitionError) {
        guard case .object(let o) = config else {
            throw PartitionError("\(unit.rawValue) partitions need at least a start, e.g. \(unit.rawValue): {start: 2025-01-01}")
        }
        for key in o.keys where !["start", "end", "timezone"].contains(key) {
            throw PartitionError("unknown field '\(key)' in \(unit.rawValue) partitions (start, end, timezone)")
        }
        let zoneName = o["timezone"]?.stringValue ?? "UTC"
        guard let zone = TimeZone(identifier: zoneName) else {
            throw PartitionError("unknown time zone '\(zoneName)' (use an IANA name such as Europe/Berlin)")
        }
        var probe = TimeWindows(unit: unit, start: .distantPast, timeZone: zone)
        func boundary(_ field: String) throws(PartitionError) -> Date? {
            guard let value = o[field] else { return nil }
            guard let text = value.stringValue, let date = probe.boundary(text) else {
                throw PartitionError("\(unit.rawValue) partitions: '\(field)' must be a \(unit.rawValue) window start such as "
                                     + "\(unit == .monthly ? "2025-01" : unit == .daily ? "2025-01-01" : "2025-01-01T00:00"), found \(value.jsonString())")
            }
            return date
        }
        guard let start = try boundary("start") else {
            throw PartitionError("\(unit.rawValue) partitions need a start, e.g. \(unit.rawValue): {start: 2025-01-01}")
        }
        let end = try boundary("end")
        if let end, end <= start { throw PartitionError("\(unit.rawValue) partitions: the end comes before the start") }
        probe.start = start
        probe.end = end
        self = probe
    }

    /// A window start written as a date (`2025-01-01`), a month (`2025-01`) or a local time
    /// (`2025-01-01T06:00`); nil when it is none, or not on a window boundary.
    func boundary(_ text: String) -> Date? {
        let parts = text.split(separator: "T", maxSplits: 1).map(String.init)
        let date = parts[0].split(separator: "-").map { Int($0) }
        guard date.count >= 2, date.count <= 3, date.allSatisfy({ $0 != nil }) else { return nil }
        var c = DateComponents(year: date[0]!, month: date[1]!, day: date.count == 3 ? date[2]! : 1, hour: 0, minute: 0)
        if parts.count == 2 {
            let time = parts[1].split(separator: ":").map { Int($0) }
            guard time.count == 2, let h = time[0], let m = time[1] else { return nil }
            c.hour = h
            c.minute = m
        }
        guard let month = c.month, (1...12).contains(month), let day = c.day, day >= 1,
              day <= Int(CivilCalendar.daysIn(year: Int64(c.year!), month: Int64(month))),
              let d = calendar.date(from: c), floor(d) == d else { return nil }
        return d
    }
}

extension PartitionMapping {
    /// `identity`, `previous` (one window back), `{previous: n}`, `all_of_window` or `all`.
    public init(config: Value) throws(PartitionError) {
        switch config {
        case "identity": self = .identity
        case "previous": self = .previous(1)
        case "all_of_window": self = .allOfWindow
        case "all": self = .all
        case .object(let o) where o.count == 1 && o["previous"] != nil:
            guard let n = o["previous"]?.intValue, n >= 1 else { throw PartitionError("previous: n needs a whole number of windows, 1 or more") }
            self = .previous(Int(n))
        default:
            throw PartitionError("unknown partition mapping \(config.jsonString()) (identity, previous, {previous: n}, all_of_window, all)")
        }
    }
}
