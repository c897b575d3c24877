import Foundation
import SluiceCore

/// A parsed cron expression, so a trigger can ask for its next fire time without re-parsing text.
///
/// Accepts the 5-field form (`minute hour day month weekday`), a 6-field form with seconds first,
/// and the `@yearly` / `@annually` / `@monthly` / `@weekly` / `@daily` / `@midnight` / `@hourly` macros.
/// Fields are matched against wall-clock time in `timeZone`, because that is what people mean by
/// "every day at 02:30". Across daylight-saving changes a wall time that does not exist is skipped
/// and a wall time that happens twice fires only at its first occurrence.
///
/// As in Vixie cron, when both day of month and day of week are restricted (neither starts with `*`)
/// a day matches if either one does; otherwise both must.
public struct CronSchedule: Sendable, Hashable {
    /// The expression as given, kept for messages and round-tripping into config files.
    public let expression: String
    /// The zone whose wall clock the fields are matched against.
    public let timeZone: TimeZone

    private let seconds: ValueSet
    private let minutes: ValueSet
    private let hours: ValueSet
    private let days: ValueSet
    private let months: ValueSet
    /// 0 = Sunday ... 6 = Saturday (7 is folded into 0 while parsing).
    private let weekdays: ValueSet
    /// True when the day-of-month field started with `*`; decides between the AND and OR day rules.
    private let daysUnrestricted: Bool
    /// True when the day-of-week field started with `*`.
    private let weekdaysUnrestricted: Bool

    /// Parses `expression` so syntax errors surface when a flow is loaded, not when it first fires.
    public init(_ expression: String, timeZone: TimeZone = .gmt) throws(CronSchedule.ParseError) {
        self.expression = expression
        self.timeZone = timeZone

        let trimmed = expression.trimmingCharacters(in: .whitespacesAndNewlines)
        let text: String
        if trimmed.hasPrefix("@") {
            guard let expansion = Self.macros[trimmed.lowercased()] else {
                throw ParseError(expression, "cron macro '\(trimmed)' is not supported; expected one of "
                    + "@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly")
            }
            text = expansion
        } else {
            text = trimmed
        }

        var fields = text.split(whereSeparator: \.isWhitespace).map(String.init)
        if fields.isEmpty {
            throw ParseError(expression, "cron expression is empty; expected 5 fields (minute hour day month weekday) "
                + "or 6 (with seconds first)")
        }
        guard fields.count == 5 || fields.count == 6 else {
            throw ParseError(expression, "cron expression '\(trimmed)' has \(fields.count) fields; expected 5 "
                + "(minute hour day month weekday) or 6 (with seconds first)")
        }
        if fields.count == 5 { fields.insert("0", at: 0) }

        seconds = try Field.second.parse(fields[0], in: expression)
        minutes = try Field.minute.parse(fields[1], in: expression)
        hours = try Field.hour.parse(fields[2], in: expression)
        days = try Field.day.parse(fields[3], in: expression)
        months = try Field.month.parse(fields[4], in: expression)
        var weekdaySet = try Field.weekday.parse(fields[5], in: expression)
        if weekdaySet.contains(7) {
            weekdaySet.remove(7)
            weekdaySet.insert(0)
        }
        weekdays = weekdaySet
        daysUnrestricted = fields[3].hasPrefix("*")
        weekdaysUnrestricted = fields[5].hasPrefix("*")
    }

    /// The first instant strictly after `date` whose wall-clock time in `timeZone` matches, so a
    /// scheduler can sleep until then; nil when nothing matches within eight years (enough to reach
    /// every February 29th, even across 2100) or `date` is not a usable time.
    public func next(after date: Date) -> Date? {
        let after = date.timeIntervalSince1970
        // Far outside any sensible schedule, and keeps the integer arithmetic below from overflowing.
        guard after.isFinite, abs(after) < 1e11 else { return nil }
        let afterSecond = Int(after.rounded(.down))

        var wall = Wall(local: afterSecond + offset(at: afterSecond) + 1)
        let lastYear = wall.year + Self.searchYears
        var budget = 100_000  // Far above what any search needs; a guard against looping forever.

        while wall.year <= lastYear, budget > 0 {
            budget -= 1
            if !months.contains(wall.month) {
                if let month = months.next(atOrAfter: wall.month) {
                    wall.month = month
                } else {
                    wall.year += 1
                    wall.month = 1
                }
                wall.startOfMonth()
                continue
            }
            let monthLength = Int(CivilCalendar.daysIn(year: Int64(wall.year), month: Int64(wall.month)))
            if wall.day > monthLength {
                wall.month += 1
                wall.startOfMonth()
                continue
            }
            if !dayMatches(year: wall.year, month: wall.month, day: wall.day) {
                var day = wall.day + 1
                while day <= monthLength, !dayMatches(year: wall.year, month: wall.month, day: day) { day += 1 }
                wall.day = day
                wall.startOfDay()
                continue
            }
            if !hours.contains(wall.hour) {
                if let hour = hours.next(atOrAfter: wall.hour) { wall.hour = hour } else { wall.day += 1; wall.hour = 0 }
                wall.minute = 0
                wall.second = 0
                continue
            }
            if !minutes.contains(wall.minute) {
                if let minute = minutes.next(atOrAfter: wall.minute) { wall.minute = minute } else { wall.hour += 1; wall.minute = 0 }
                wall.second = 0
                continue
            }
            if !seconds.contains(wall.second) {
                if let second = seconds.next(atOrAfter: wall.second) { wall.second = second } else { wall.minute += 1; wall.second = 0 }
                continue
            }

            let local = wall.local
            let resume: Int
            switch resolve(local: local) {
            case .once(let instant):
                if Double(instant) > after { return Date(timeIntervalSince1970: Double(instant)) }
                resume = local + 1
            case .twice(let first, let second):
                if Double(first) > after { return Date(timeIntervalSince1970: Double(first)) }
                // Already fired in the first pass: skip the rest of the repeated wall-clock span.
                resume = max(local + 1, endOfRepeat(first: first, second: second))
            case .never:
                resume = max(local + 1, endOfGap(local: local))
            }
            wall = Wall(local: resume)
        }
        return nil
    }

    // MARK: - Matching

    private static let searchYears = 8

    /// Applies the Vixie day rule in one place, so the search loop never has to think about it.
    private func dayMatches(year: Int, month: Int, day: Int) -> Bool {
        let dayOK = days.contains(day)
        let weekdayOK = weekdays.contains(Int(CivilCalendar.weekday(days: CivilCalendar.days(year: Int64(year), month: Int64(month), day: Int64(day)))))
        if daysUnrestricted || weekdaysUnrestricted { return dayOK && weekdayOK }
        return dayOK || weekdayOK
    }

    // MARK: - Time zone

    private enum Resolution {
        /// The wall time happens exactly once, at this instant (seconds since 1970).
        case once(Int)
        /// The wall time happens twice (the clock was set back); `first` < `second`.
        case twice(first: Int, second: Int)
        /// The wall time is skipped (the clock was set forward over it).
        case never
    }

    private func offset(at instant: Int) -> Int {
        timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(instant)))
    }

    /// Finds the instants that show `local` on the wall clock. Offset changes are assumed to be
    /// more than a few hours apart, so the offsets a day either side are the only candidates.
    private func resolve(local: Int) -> Resolution {
        let before = offset(at: local - 86_400)
        let after = offset(at: local + 86_400)
        let a = instant(local: local, ifOffset: before)
        let b = after == before ? nil : instant(local: local, ifOffset: after)
        switch (a, b) {
        case let (x?, y?):
            return x == y ? .once(x) : .twice(first: min(x, y), second: max(x, y))
        case let (x?, nil), let (nil, x?):
            return .once(x)
        case (nil, nil):
            // Two changes within a day of each other (rare); try the offset right at the wall time.
            if let x = instant(local: local, ifOffset: offset(at: local)) { return .once(x) }
            return .never
        }
    }

    private func instant(local: Int, ifOffset candidate: Int) -> Int? {
        let instant = local - candidate
        return offset(at: instant) == candidate ? instant : nil
    }

    /// The first wall time after a repeated span, found by bisecting for the instant the offset changed.
    private func endOfRepeat(first: Int, second: Int) -> Int {
        let firstOffset = offset(at: first)
        var low = first, high = second  // offset(low) == firstOffset, offset(high) != firstOffset
        while high - low > 1 {
            let middle = low + (high - low) / 2
            if offset(at: middle) == firstOffset { low = middle } else { high = middle }
        }
        return high + firstOffset
    }

    /// The first wall time after a skipped span, found by bisecting for where the wall clock jumps past `local`.
    private func endOfGap(local: Int) -> Int {
        func wall(_ instant: Int) -> Int { instant + offset(at: instant) }
        var low = local - 72_000, high = local + 72_000  // wider than any UTC offset
        guard wall(low) <= local, wall(high) > local else { return local + 1 }
        while high - low > 1 {
            let middle = low + (high - low) / 2
            if wall(middle) > local { high = middle } else { low = middle }
        }
        return wall(high)
    }

    // MARK: - Calendar arithmetic (proleptic Gregorian, the same rules as Foundation's for modern dates)

    /// Wall-clock fields that may temporarily run past their range; the search loop carries them over.
    private struct Wall {
        var year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int

        init(local: Int) {
            let days = Int(CivilCalendar.floorDiv(Int64(local), 86_400))
            let secondOfDay = local - days * 86_400
            (year, month, day) = CronSchedule.civil(days)
            hour = secondOfDay / 3600
            minute = secondOfDay / 60 % 60
            second = secondOfDay % 60
        }

        var local: Int {
            Int(CivilCalendar.days(year: Int64(year), month: Int64(month), day: Int64(day))) * 86_400 + hour * 3600 + minute * 60 + second
        }

        mutating func startOfMonth() {
            day = 1
            startOfDay()
        }

        mutating func startOfDay() {
            hour = 0
            minute = 0
            second = 0
        }
    }

    private static func civil(_ days: Int) -> (Int, Int, Int) {
        let (y, m, d) = CivilCalendar.civil(fromDays: Int64(days))
        return (Int(y), Int(m), Int(d))
    }

    // MARK: - Parsing

    /// Vixie cron's shorthands, expanded to the 5-field form so one parser handles both.
    private static let macros: [String: String] = [
        "@yearly": "0 0 1 1 *",
        "@annually": "0 0 1 1 *",
        "@monthly": "0 0 1 * *",
        "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *",
        "@midnight": "0 0 * * *",
        "@hourly": "0 * * * *",
    ]

    /// A set of small non-negative integers (0...63) as a bit mask, so "next allowed value" is one instruction.
    private struct ValueSet: Sendable, Hashable {
        private var bits: UInt64 = 0

        func contains(_ value: Int) -> Bool {
            value >= 0 && value < 64 && bits & (1 << UInt64(value)) != 0
        }

        mutating func insert(_ value: Int) {
            if value >= 0 && value < 64 { bits |= 1 << UInt64(value) }
        }

        mutating func remove(_ value: Int) {
            if value >= 0 && value < 64 { bits &= ~(1 << UInt64(value)) }
        }

        func next(atOrAfter value: Int) -> Int? {
            guard value < 64 else { return nil }
            let remaining = bits & (UInt64.max << UInt64(max(0, value)))
            return remaining == 0 ? nil : remaining.trailingZeroBitCount
        }
    }

    /// One field's name, bounds and names, so a single routine can parse all six fields.
    private struct Field: Sendable {
        let name: String
        /// Values that may be written.
        let range: ClosedRange<Int>
        /// Where `*` and `a/n` stop. Weekdays stop at 6, so `1/2` means Mon, Wed, Fri without adding 7 (Sunday).
        let openEnd: Int
        /// Three-letter names accepted in place of numbers, mapped to their values.
        let names: [String: Int]
        /// How the names are described in errors ("month name").
        let nameKind: String

        init(_ name: String, _ range: ClosedRange<Int>, openEnd: Int? = nil, names: [String: Int] = [:], nameKind: String = "") {
            self.name = name
            self.range = range
            self.openEnd = openEnd ?? range.upperBound
            self.names = names
            self.nameKind = nameKind
        }

        static let second = Field("second", 0...59)
        static let minute = Field("minute", 0...59)
        static let hour = Field("hour", 0...23)
        static let day = Field("day", 1...31)
        static let month = Field(
            "month", 1...12,
            names: ["JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6,
                    "JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10, "NOV": 11, "DEC": 12],
            nameKind: "month name")
        static let weekday = Field(
            "weekday", 0...7, openEnd: 6,
            names: ["SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6],
            nameKind: "day name")

        func parse(_ text: String, in expression: String) throws(ParseError) -> ValueSet {
            var set = ValueSet()
            for item in text.split(separator: ",", omittingEmptySubsequences: false) {
                guard !item.isEmpty else {
                    throw ParseError(expression, "cron field '\(name)' has an empty list item in '\(text)'")
                }
                try add(String(item), to: &set, in: expression)
            }
            return set
        }

        private func add(_ item: String, to set: inout ValueSet, in expression: String) throws(ParseError) {
            let parts = item.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard parts.count <= 2, !parts[0].isEmpty else {
                throw ParseError(expression, "cron field '\(name)' value '\(item)' is malformed")
            }
            var step = 1
            if parts.count == 2 {
                let span = openEnd - range.lowerBound + 1
                guard let value = Self.number(parts[1]), value > 0 else {
                    throw ParseError(expression, "cron field '\(name)' step '\(parts[1])' in '\(item)' is not a positive number")
                }
                guard value <= span else {
                    throw ParseError(expression, "cron field '\(name)' step '\(parts[1])' in '\(item)' is out of range 1-\(span)")
                }
                step = value
            }

            let base = parts[0]
            let low: Int, high: Int
            if base == "*" {
                (low, high) = (range.lowerBound, openEnd)
            } else if base.contains("-") {
                let ends = base.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
                guard ends.count == 2, !ends[0].isEmpty, !ends[1].isEmpty else {
                    throw ParseError(expression, "cron field '\(name)' value '\(item)' is malformed")
                }
                low = try value(ends[0], in: expression)
                var end = try value(ends[1], in: expression)
                // `MON-SUN` means Monday through Sunday, so a Sunday written last is day 7.
                if range.upperBound == 7, end == 0, ends[1].uppercased() == "SUN" { end = 7 }
                high = end
                guard low <= high else {
                    throw ParseError(expression, "cron field '\(name)' range '\(base)' is backwards; "
                        + "write the smaller value first")
                }
            } else {
                low = try value(base, in: expression)
                high = parts.count == 2 ? max(low, openEnd) : low
            }
            for value in stride(from: low, through: high, by: step) { set.insert(value) }
        }

        private func value(_ text: String, in expression: String) throws(ParseError) -> Int {
            if text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
                // Digits too long for Int are out of range too.
                guard let value = Int(text), range.contains(value) else {
                    throw ParseError(expression, "cron field '\(name)' value '\(text)' is out of range "
                        + "\(range.lowerBound)-\(range.upperBound)")
                }
                return value
            }
            if let value = names[text.uppercased()] { return value }
            let expected = nameKind.isEmpty ? "a number" : "a number or \(nameKind)"
            throw ParseError(expression, "cron field '\(name)' value '\(text)' is not \(expected)")
        }

        private static func number(_ text: String) -> Int? {
            guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
                return nil
            }
            return Int(text) ?? Int.max  // All digits but too long: report it as out of range.
        }
    }

    /// Why an expression was rejected, naming the field and value so the flow author can fix it.
    public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        /// The expression as given.
        public let expression: String
        /// What is wrong, e.g. `cron field 'hour' value '25' is out of range 0-23`.
        public let message: String

        init(_ expression: String, _ message: String) {
            self.expression = expression
            self.message = message
        }

        public var description: String { message }
    }
}

