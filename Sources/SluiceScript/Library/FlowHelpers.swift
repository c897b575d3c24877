import Foundation
import SluiceCore

/// Functions for the `script` flow task, under the names Flowgen scripts use: ids, digests,
/// wall-clock timestamps (i64 milliseconds since the Unix epoch, always UTC) and regular
/// expressions.
extension StandardLibrary {
    static func installFlowHelpers(_ e: ScriptEngine) {
        e.register("uuid") { _, a, _ in a.isEmpty ? .string(UUID().uuidString.lowercased()) : nil }
        let digests: [(String, ([UInt8]) -> [UInt8])] = [("sha256", Digest.sha256.hash), ("sha512", Digest.sha512.hash)]
        for (name, digest) in digests {
            e.register(name) { _, a, _ in
                guard a.count == 1 else { return nil }
                switch a[0] {
                case .string(let s): return .string(Digest.hex(digest(Array(s.utf8))))
                case .blob(let b): return .string(Digest.hex(digest(b)))
                default: return nil
                }
            }
        }
        installTimestamps(e)
        installRegex(e)
    }

    // MARK: - Timestamps

    private static func installTimestamps(_ e: ScriptEngine) {
        e.register("timestamp_now") { _, a, _ in a.isEmpty ? .int(UTCTime.nowMilliseconds()) : nil }
        e.register("timestamp_format") { _, a, _ in
            guard a.count == 1 || a.count == 2, let ms = int(a[0]) else { return nil }
            let format: String
            if a.count == 2 {
                guard let f = string(a[1]) else { return nil }
                format = f
            } else {
                format = UTCTime.rfc3339
            }
            return .string(UTCTime(milliseconds: ms).format(TimeFormat.pieces(format)))
        }
        e.register("parse_timestamp") { _, a, pos throws(Signal) in
            guard a.count == 1 || a.count == 2, let text = string(a[0]) else { return nil }
            do throws(TimestampError) {
                if a.count == 1 { return .int(try UTCTime.parseISO8601(text)) }
                guard let format = string(a[1]) else { return nil }
                return .int(try TimeFormat.parse(text, TimeFormat.pieces(format)))
            } catch {
                let using = a.count == 2 ? " with format '\(a[1].displayText)'" : ""
                throw .runtime("ErrorRuntime", "Cannot parse timestamp '\(text)'\(using): \(error.reason)", pos)
            }
        }
    }

    // MARK: - Regular expressions

    private static func installRegex(_ e: ScriptEngine) {
        e.register("regex_match") { _, a, pos throws(Signal) in
            guard a.count == 2, let text = string(a[0]), let pattern = string(a[1]) else { return nil }
            return .bool(try RegexCache.shared.compiled(pattern, pos).firstMatch(text) != nil)
        }
        e.register("regex_find") { _, a, pos throws(Signal) in
            guard a.count == 2, let text = string(a[0]), let pattern = string(a[1]) else { return nil }
            guard let m = try RegexCache.shared.compiled(pattern, pos).firstMatch(text) else { return .unit }
            return .string(CompiledPattern.text(m.range, in: text) ?? "")
        }
        e.register("regex_find_all") { _, a, pos throws(Signal) in
            guard a.count == 2, let text = string(a[0]), let pattern = string(a[1]) else { return nil }
            let matches = try RegexCache.shared.compiled(pattern, pos).matches(text)
            return .array(matches.map { .string(CompiledPattern.text($0.range, in: text) ?? "") })
        }
        e.register("regex_replace") { _, a, pos throws(Signal) in
            guard a.count == 3, let text = string(a[0]), let pattern = string(a[1]),
                  let replacement = string(a[2]) else { return nil }
            let compiled = try RegexCache.shared.compiled(pattern, pos)
            let template = ReplacementTemplate(replacement, compiled)
            var out = ""
            var rest = text.startIndex
            for m in compiled.matches(text) {
                guard let r = Range(m.range, in: text) else { continue }
                out += text[rest..<r.lowerBound]
                out += template.expand(m, in: text)
                rest = r.upperBound
            }
            out += text[rest...]
            return .string(out)
        }
    }
}


// MARK: - Calendar arithmetic

/// Why a timestamp could not be read; the caller adds the text.
struct TimestampError: Error {
    let reason: String
    init(_ reason: String) { self.reason = reason }
}

/// An instant broken down in UTC on the proleptic Gregorian calendar, to the millisecond.
struct UTCTime {
    static let rfc3339 = "%Y-%m-%dT%H:%M:%S%.3fZ"
    static let millisecondsPerDay: Int64 = 86_400_000
    static let weekdays = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
    static let months = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
                         "October", "November", "December"]

    var year: Int64, month: Int64, day: Int64
    var hour: Int64, minute: Int64, second: Int64, millisecond: Int64
    /// 0 is Sunday.
    var weekday: Int64
    /// 1 is the first of January.
    var dayOfYear: Int64
    /// The instant this was made from.
    var epochMilliseconds: Int64

    init(milliseconds ms: Int64) {
        epochMilliseconds = ms
        let days = CivilCalendar.floorDiv(ms, Self.millisecondsPerDay)
        var rest = CivilCalendar.floorMod(ms, Self.millisecondsPerDay)
        (year, month, day) = CivilCalendar.civil(fromDays: days)
        hour = rest / 3_600_000
        rest %= 3_600_000
        minute = rest / 60_000
        rest %= 60_000
        second = rest / 1000
        millisecond = rest % 1000
        weekday = CivilCalendar.weekday(days: days)
        dayOfYear = days - CivilCalendar.days(year: year, month: 1, day: 1) + 1
    }

    /// The wall clock, in milliseconds since the epoch.
    static func nowMilliseconds() -> Int64 {
        var t = timespec()
        clock_gettime(CLOCK_REALTIME, &t)
        return Int64(t.tv_sec) * 1000 + Int64(t.tv_nsec) / 1_000_000
    }

    /// Milliseconds since the epoch for a UTC date and time, or nil past the range of i64.
    static func milliseconds(year: Int64, month: Int64, day: Int64, hour: Int64, minute: Int64, second: Int64,
                             millisecond: Int64) -> Int64? {
        let d = CivilCalendar.days(year: year, month: month, day: day)
        let (dayMs, o1) = d.multipliedReportingOverflow(by: millisecondsPerDay)
        let (ms, o2) = dayMs.addingReportingOverflow(((hour * 60 + minute) * 60 + second) * 1000 + millisecond)
        return o1 || o2 ? nil : ms
    }

    /// RFC 3339 and the common ISO 8601 forms: `2026-11-21`, `2026-11-21T10:00`,
    /// `2026-11-21T10:00:00.123456Z`, `2026-11-21 10:00:00+01:00`. Fractions finer than a
    /// millisecond are cut off; no offset means UTC; white space around the text is ignored.
    static func parseISO8601(_ text: String) throws(TimestampError) -> Int64 {
        var s = TextScanner(text.trimmingCharacters(in: .whitespacesAndNewlines))
        let year = try s.number(4, 4, "a four-digit year")
        try s.expect("-")
        let month = try s.number(2, 2, "a two-digit month")
        try s.expect("-")
        let day = try s.number(2, 2, "a two-digit day")
        var hour: Int64 = 0, minute: Int64 = 0, second: Int64 = 0, ms: Int64 = 0, offset: Int64 = 0
        if !s.atEnd {
            guard s.take("T") || s.take("t") || s.take(" ") else {
                throw TimestampError("expected 'T' between date and time at character \(s.position)")
            }
            hour = try s.number(2, 2, "a two-digit hour")
            try s.expect(":")
            minute = try s.number(2, 2, "two-digit minutes")
            if s.take(":") {
                second = try s.number(2, 2, "two-digit seconds")
                if s.take(".") || s.take(",") { ms = try s.fraction(1, Int.max) }
            }
            if !s.atEnd { offset = try s.offset() }
        }
        guard s.atEnd else { throw TimestampError("unexpected '\(s.rest)' at character \(s.position)") }
        return try resolve(year: year, month: month, day: day, hour: hour, minute: minute, second: second,
                           millisecond: ms, offsetSeconds: offset)
    }

    /// Checks the fields' ranges and converts a local time at `offsetSeconds` east of UTC.
    static func resolve(year: Int64, month: Int64, day: Int64, hour: Int64, minute: Int64, second: Int64,
                        millisecond: Int64, offsetSeconds: Int64) throws(TimestampError) -> Int64 {
        guard (1...12).contains(month) else { throw TimestampError("month \(month) is out of range") }
        let last = CivilCalendar.daysIn(year: year, month: month)
        guard (1...last).contains(day) else {
            throw TimestampError("day \(day) is out of range (\(TimeFormat.padded(year, 4))-\(TimeFormat.padded(month, 2)) has \(last) days)")
        }
        guard (0...23).contains(hour) else { throw TimestampError("hour \(hour) is out of range") }
        guard (0...59).contains(minute) else { throw TimestampError("minute \(minute) is out of range") }
        guard (0...59).contains(second) else { throw TimestampError("second \(second) is out of range") }
        guard let local = milliseconds(year: year, month: month, day: day, hour: hour, minute: minute,
                                       second: second, millisecond: millisecond) else {
            throw TimestampError("year \(year) is out of range")
        }
        let (utc, overflow) = local.subtractingReportingOverflow(offsetSeconds * 1000)
        if overflow { throw TimestampError("year \(year) is out of range") }
        return utc
    }
}

/// Reads a timestamp a character at a time.
struct TextScanner {
    let chars: [Unicode.Scalar]
    var index = 0

    init(_ text: String) { chars = Array(text.unicodeScalars) }

    var atEnd: Bool { index == chars.count }
    /// 1-based, for messages.
    var position: Int { index + 1 }
    var rest: String { StandardLibrary.string(from: chars[index...]) }
    var next: Unicode.Scalar? { atEnd ? nil : chars[index] }

    mutating func take(_ c: Unicode.Scalar) -> Bool {
        guard next == c else { return false }
        index += 1
        return true
    }

    mutating func expect(_ c: Unicode.Scalar) throws(TimestampError) {
        guard take(c) else { throw TimestampError("expected '\(Character(c))' at character \(position)\(found)") }
    }

    /// What stands at the current position, for messages.
    var found: String { next.map { " (found '\(Character($0))')" } ?? " (found the end)" }

    mutating func skipSpaces() {
        while let c = next, c.properties.isWhitespace { index += 1 }
    }

    /// An unsigned decimal of `least` to `most` digits.
    mutating func number(_ least: Int, _ most: Int, _ what: String) throws(TimestampError) -> Int64 {
        var value: Int64 = 0, n = 0
        while n < most, let c = next, ("0"..."9").contains(c) {
            value = value * 10 + Int64(c.value - 48)
            index += 1
            n += 1
        }
        guard n >= least else { throw TimestampError("expected \(what) at character \(position - n)\(found)") }
        return value
    }

    /// `least` to `most` digits after a decimal point, as whole milliseconds (cut, not rounded).
    mutating func fraction(_ least: Int, _ most: Int) throws(TimestampError) -> Int64 {
        var ms: Int64 = 0, n = 0
        while n < most, let c = next, ("0"..."9").contains(c) {
            if n < 3 { ms = ms * 10 + Int64(c.value - 48) }
            index += 1
            n += 1
        }
        guard n >= least else {
            let what = least == most ? "\(least) fractional digits" : "fractional digits"
            throw TimestampError("expected \(what) at character \(position - n)\(found)")
        }
        for _ in n..<max(n, 3) { ms *= 10 }
        return ms
    }

    /// `Z`, `±hh:mm`, `±hhmm` or `±hh`, as seconds east of UTC.
    mutating func offset() throws(TimestampError) -> Int64 {
        if take("Z") || take("z") { return 0 }
        let sign: Int64
        if take("+") { sign = 1 } else if take("-") || take("\u{2212}") { sign = -1 } else {
            throw TimestampError("expected a UTC offset ('Z' or ±hh:mm) at character \(position)\(found)")
        }
        let hours = try number(2, 2, "a two-digit offset hour")
        var minutes: Int64 = 0
        if take(":") {
            minutes = try number(2, 2, "two-digit offset minutes")
        } else if let c = next, ("0"..."9").contains(c) {
            minutes = try number(2, 2, "two-digit offset minutes")
        }
        guard hours <= 23, minutes <= 59 else {
            throw TimestampError("offset \(sign < 0 ? "-" : "+")\(TimeFormat.padded(hours, 2)):\(TimeFormat.padded(minutes, 2)) is out of range")
        }
        return sign * (hours * 3600 + minutes * 60)
    }

    /// A name from `names` (whole, or its first three letters), ignoring case; its index.
    mutating func name(_ names: [String], _ what: String) throws(TimestampError) -> Int64 {
        let ahead = String(String.UnicodeScalarView(chars[index...].prefix(12))).lowercased()
        for full in [true, false] {
            for (i, candidate) in names.enumerated() {
                let word = (full ? candidate : String(candidate.prefix(3))).lowercased()
                if ahead.hasPrefix(word) {
                    index += word.unicodeScalars.count
                    return Int64(i)
                }
            }
        }
        throw TimestampError("expected \(what) at character \(position)\(found)")
    }
}

// MARK: - strftime-style formats

/// strftime-style formats, always in UTC. Directives: `%Y` `%y` `%m` `%d` `%e` `%H` `%M` `%S`,
/// `%3f` `%6f` `%9f` (milliseconds, micro-, nanoseconds, no dot), `%.3f` `%.6f` `%.9f` (with the
/// dot), `%f` (nanoseconds), `%j` (day of the year), `%a` `%A` `%b` `%B` (English names), `%z`
/// (`+0000`), `%:z` (`+00:00`), `%Z` (`UTC`), `%s` (seconds since the epoch), `%F` (`%Y-%m-%d`),
/// `%T` (`%H:%M:%S`) and `%%`. Other directives stand for themselves.
enum TimeFormat {
    enum Field {
        case year, shortYear, month, day, spacedDay, hour, minute, second
        /// Sub-second digits (3, 6 or 9), after a dot or not; `%f` is nine without.
        case fraction(digits: Int, dot: Bool)
        case dayOfYear, weekdayName(full: Bool), monthName(full: Bool), offset(colon: Bool), zoneName, epochSeconds
    }

    enum Piece {
        case literal(String)
        case field(Field)
    }

    /// A format split into literal text and fields.
    static func pieces(_ format: String) -> [Piece] {
        var out: [Piece] = []
        let c = Array(format.unicodeScalars)
        var i = 0
        func literal(_ s: String) {
            if case .literal(let prev)? = out.last { out[out.count - 1] = .literal(prev + s) } else { out.append(.literal(s)) }
        }
        while i < c.count {
            guard c[i] == "%", i + 1 < c.count else {
                literal(String(Character(c[i])))
                i += 1
                continue
            }
            // Multi-character directives first: %.3f, %3f, %:z.
            let a = c[i + 1], b = i + 2 < c.count ? c[i + 2] : nil, d = i + 3 < c.count ? c[i + 3] : nil
            if a == ".", let n = b.flatMap(fractionDigits), d == "f" {
                out.append(.field(.fraction(digits: n, dot: true)))
                i += 4
                continue
            }
            if let n = fractionDigits(a), b == "f" {
                out.append(.field(.fraction(digits: n, dot: false)))
                i += 3
                continue
            }
            if a == ":", b == "z" {
                out.append(.field(.offset(colon: true)))
                i += 3
                continue
            }
            let field: Field?
            switch a {
            case "Y": field = .year
            case "y": field = .shortYear
            case "m": field = .month
            case "d": field = .day
            case "e": field = .spacedDay
            case "H": field = .hour
            case "M": field = .minute
            case "S": field = .second
            case "f": field = .fraction(digits: 9, dot: false)
            case "j": field = .dayOfYear
            case "a": field = .weekdayName(full: false)
            case "A": field = .weekdayName(full: true)
            case "b": field = .monthName(full: false)
            case "B": field = .monthName(full: true)
            case "z": field = .offset(colon: false)
            case "Z": field = .zoneName
            case "s": field = .epochSeconds
            case "F":
                out += pieces("%Y-%m-%d")
                field = nil
            case "T":
                out += pieces("%H:%M:%S")
                field = nil
            case "%":
                literal("%")
                field = nil
            default:
                literal("%" + String(Character(a)))
                field = nil
            }
            if let field { out.append(.field(field)) }
            i += 2
        }
        return out
    }

    /// The digit counts `%3f`, `%6f` and `%9f` allow.
    private static func fractionDigits(_ s: Unicode.Scalar) -> Int? {
        switch s {
        case "3": 3
        case "6": 6
        case "9": 9
        default: nil
        }
    }

    static func padded(_ v: Int64, _ width: Int, _ pad: Character = "0") -> String {
        let digits = String(v.magnitude)
        let sign = v < 0 ? "-" : ""
        return sign + String(repeating: pad, count: max(0, width - digits.count)) + digits
    }

    /// Parses `text` against a format. Fields left out take the epoch's values (1970-01-01,
    /// midnight, UTC); `%s` gives the instant on its own.
    static func parse(_ text: String, _ format: [Piece]) throws(TimestampError) -> Int64 {
        var s = TextScanner(text)
        var year: Int64 = 1970, month: Int64?, day: Int64?, dayOfYear: Int64?, weekday: Int64?
        var hour: Int64 = 0, minute: Int64 = 0, second: Int64 = 0, ms: Int64 = 0, offset: Int64 = 0
        var epochSeconds: Int64?
        for piece in format {
            switch piece {
            case .literal(let l):
                for c in l.unicodeScalars {
                    if c.properties.isWhitespace { s.skipSpaces() } else { try s.expect(c) }
                }
            case .field(let f):
                switch f {
                case .year:
                    // Four digits, or more with an explicit sign.
                    if s.take("-") { year = -(try s.number(1, 9, "a year")) }
                    else if s.take("+") { year = try s.number(1, 9, "a year") }
                    else { year = try s.number(1, 4, "a year") }
                case .shortYear:
                    let y = try s.number(2, 2, "a two-digit year")
                    year = y < 69 ? 2000 + y : 1900 + y
                case .month: month = try s.number(1, 2, "a month")
                case .day: day = try s.number(1, 2, "a day")
                case .spacedDay:
                    s.skipSpaces()
                    day = try s.number(1, 2, "a day")
                case .hour: hour = try s.number(1, 2, "an hour")
                case .minute: minute = try s.number(1, 2, "minutes")
                case .second: second = try s.number(1, 2, "seconds")
                case .fraction(let digits, let dot):
                    if dot { try s.expect(".") }
                    ms = try s.fraction(digits, digits)
                case .dayOfYear: dayOfYear = try s.number(1, 3, "a day of the year")
                case .weekdayName: weekday = try s.name(UTCTime.weekdays, "a weekday name")
                case .monthName: month = try s.name(UTCTime.months, "a month name") + 1
                case .offset: offset = try s.offset()
                case .zoneName:
                    if s.take("Z") { offset = 0 } else {
                        _ = try s.name(["UTC", "GMT"], "the zone name UTC or GMT")
                        offset = 0
                    }
                case .epochSeconds:
                    let negative = s.take("-")
                    let v = try s.number(1, 18, "seconds since the epoch")
                    epochSeconds = negative ? -v : v
                }
            }
        }
        guard s.atEnd else { throw TimestampError("unexpected '\(s.rest)' at character \(s.position)") }
        if let epochSeconds {
            let (whole, overflow) = epochSeconds.multipliedReportingOverflow(by: 1000)
            let (instant, past) = whole.addingReportingOverflow(ms)
            if overflow || past { throw TimestampError("\(epochSeconds) seconds is out of range") }
            return instant
        }
        if let dayOfYear {
            let length: Int64 = CivilCalendar.isLeap(year) ? 366 : 365
            guard (1...length).contains(dayOfYear) else {
                throw TimestampError("day of the year \(dayOfYear) is out of range (\(year) has \(length) days)")
            }
            let (_, m, d) = CivilCalendar.civil(fromDays: CivilCalendar.days(year: year, month: 1, day: 1) + dayOfYear - 1)
            if let month, month != m { throw TimestampError("day of the year \(dayOfYear) is not in month \(month)") }
            if let day, day != d { throw TimestampError("day of the year \(dayOfYear) is not day \(day) of its month") }
            month = m
            day = d
        }
        let result = try UTCTime.resolve(year: year, month: month ?? 1, day: day ?? 1, hour: hour, minute: minute,
                                         second: second, millisecond: ms, offsetSeconds: offset)
        if let weekday {
            let local = CivilCalendar.days(year: year, month: month ?? 1, day: day ?? 1)
            let actual = CivilCalendar.floorMod(local + 4, 7)
            guard actual == weekday else {
                throw TimestampError("the date is a \(UTCTime.weekdays[Int(actual)]), not a \(UTCTime.weekdays[Int(weekday)])")
            }
        }
        return result
    }
}

extension UTCTime {
    func format(_ pieces: [TimeFormat.Piece]) -> String {
        var out = ""
        for piece in pieces {
            switch piece {
            case .literal(let l): out += l
            case .field(let f):
                switch f {
                case .year: out += year > 9999 ? "+\(year)" : TimeFormat.padded(year, 4)
                case .shortYear: out += TimeFormat.padded(CivilCalendar.floorMod(year, 100), 2)
                case .month: out += TimeFormat.padded(month, 2)
                case .day: out += TimeFormat.padded(day, 2)
                case .spacedDay: out += TimeFormat.padded(day, 2, " ")
                case .hour: out += TimeFormat.padded(hour, 2)
                case .minute: out += TimeFormat.padded(minute, 2)
                case .second: out += TimeFormat.padded(second, 2)
                case .fraction(let digits, let dot):
                    out += (dot ? "." : "") + TimeFormat.padded(millisecond, 3) + String(repeating: "0", count: digits - 3)
                case .dayOfYear: out += TimeFormat.padded(dayOfYear, 3)
                case .weekdayName(let full):
                    let name = UTCTime.weekdays[Int(weekday)]
                    out += full ? name : String(name.prefix(3))
                case .monthName(let full):
                    let name = UTCTime.months[Int(month - 1)]
                    out += full ? name : String(name.prefix(3))
                case .offset(let colon): out += colon ? "+00:00" : "+0000"
                case .zoneName: out += "UTC"
                case .epochSeconds: out += String(CivilCalendar.floorDiv(epochMilliseconds, 1000))
                }
            }
        }
        return out
    }
}

// MARK: - Regular expression support

/// A compiled pattern and the numbers of its named groups.
struct CompiledPattern {
    let regex: NSRegularExpression
    let groupNames: [String: Int]

    func matches(_ text: String) -> [NSTextCheckingResult] {
        regex.matches(in: text, range: NSRange(text.startIndex..., in: text))
    }

    func firstMatch(_ text: String) -> NSTextCheckingResult? {
        regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text))
    }

    /// The text of a match or group, nil for a group that took no part.
    static func text(_ range: NSRange, in source: String) -> String? {
        guard range.location != NSNotFound, let r = Range(range, in: source) else { return nil }
        return String(source[r])
    }

    /// ICU syntax, as `NSRegularExpression` wants it, from a pattern that may use the `regex`
    /// crate's `(?P<name>…)` or be empty; and the group number of each name, found by counting
    /// opening parentheses outside escapes, `\Q…\E` quotes and character classes.
    static func prepare(_ pattern: String) -> (String, [String: Int]) {
        let c = Array(pattern.unicodeScalars)
        var out = String.UnicodeScalarView()
        var names: [String: Int] = [:]
        var groups = 0, classDepth = 0, i = 0
        while i < c.count {
            let ch = c[i]
            if ch == "\\" {
                if i + 1 < c.count, c[i + 1] == "Q" {
                    // Quoted text runs to `\E` or the end.
                    var j = i + 2
                    while j < c.count, !(c[j] == "\\" && j + 1 < c.count && c[j + 1] == "E") { j += 1 }
                    let end = min(j + 2, c.count)
                    out.append(contentsOf: c[i..<end])
                    i = end
                } else {
                    out.append(contentsOf: c[i..<min(i + 2, c.count)])
                    i += 2
                }
                continue
            }
            if classDepth > 0 {
                if ch == "[" { classDepth += 1 } else if ch == "]" { classDepth -= 1 }
            } else if ch == "[" {
                classDepth = 1
                out.append(ch)
                i += 1
                // A `]` first in a class (after an optional `^`) is a literal.
                if i < c.count, c[i] == "^" { out.append(c[i]); i += 1 }
                if i < c.count, c[i] == "]" { out.append(c[i]); i += 1 }
                continue
            } else if ch == "(" {
                let next = i + 1 < c.count ? c[i + 1] : nil
                if next != "?" {
                    groups += 1
                } else {
                    // `(?<name>` or `(?P<name>`, but not the look-behinds `(?<=` and `(?<!`.
                    var j = i + 2
                    if j < c.count, c[j] == "P", j + 1 < c.count, c[j + 1] == "<" { j += 1 }
                    if j + 1 < c.count, c[j] == "<", c[j + 1] != "=", c[j + 1] != "!" {
                        var name = String.UnicodeScalarView()
                        var k = j + 1
                        while k < c.count, c[k] != ">" { name.append(c[k]); k += 1 }
                        groups += 1
                        names[String(name)] = groups
                        out.append(contentsOf: "(?<".unicodeScalars)
                        out.append(contentsOf: name)
                        i = k
                        continue
                    }
                }
            }
            out.append(ch)
            i += 1
        }
        // ICU refuses an empty pattern; the empty group matches the same (everywhere).
        return (out.isEmpty ? "(?:)" : String(out), names)
    }
}

/// Compiled patterns, shared by every script and thread: compiling costs far more than a
/// match. Holds at most `capacity` patterns; a new one past that pushes out an arbitrary one.
final class RegexCache: @unchecked Sendable {
    static let shared = RegexCache(capacity: 256)

    let capacity: Int
    private let lock = NSLock()
    private var patterns: [String: CompiledPattern] = [:]

    init(capacity: Int) { self.capacity = capacity }

    var count: Int { lock.withLock { patterns.count } }

    func compiled(_ pattern: String, _ pos: ScriptPosition) throws(Signal) -> CompiledPattern {
        if let known = lock.withLock({ patterns[pattern] }) { return known }
        let (icu, names) = CompiledPattern.prepare(pattern)
        let regex: NSRegularExpression
        do {
            regex = try NSRegularExpression(pattern: icu)
        } catch {
            throw .runtime("ErrorRuntime", "Invalid regular expression '\(pattern)': the pattern does not compile", pos)
        }
        // Should the count of groups be off (syntax this scan does not know), names resolve to nothing.
        let valid = names.values.allSatisfy { $0 <= regex.numberOfCaptureGroups }
        let compiled = CompiledPattern(regex: regex, groupNames: valid ? names : [:])
        lock.withLock {
            if patterns.count >= capacity, patterns[pattern] == nil { patterns.remove(at: patterns.startIndex) }
            patterns[pattern] = compiled
        }
        return compiled
    }
}

/// A replacement string in the `regex` crate's syntax: `$1` or `${1}` a numbered group, `$name`
/// or `${name}` a named one, `$$` a dollar sign. A group that does not exist or took no part
/// adds nothing. Unlike the crate, `$` and digits take the longest run of digits that names a
/// group, so with two groups `$1a` is group 1 then `a`, and `$12` group 1 then `2`.
struct ReplacementTemplate {
    enum Part {
        case text(String)
        /// A group number; 0 is the whole match. Nil when the reference names no group.
        case group(Int?)
    }

    let parts: [Part]

    init(_ template: String, _ pattern: CompiledPattern) {
        let groupCount = pattern.regex.numberOfCaptureGroups
        let c = Array(template.unicodeScalars)
        var parts: [Part] = []
        var text = String.UnicodeScalarView()
        func flush() {
            if !text.isEmpty { parts.append(.text(String(text))) }
            text = String.UnicodeScalarView()
        }
        func isDigit(_ s: Unicode.Scalar) -> Bool { ("0"..."9").contains(s) }
        func isWord(_ s: Unicode.Scalar) -> Bool { s == "_" || isDigit(s) || ("a"..."z").contains(s) || ("A"..."Z").contains(s) }
        func resolve(_ reference: String) -> Int? {
            if reference.unicodeScalars.allSatisfy(isDigit) {
                return Int(reference).flatMap { $0 <= groupCount ? $0 : nil }
            }
            return pattern.groupNames[reference]
        }
        var i = 0
        while i < c.count {
            let next = i + 1 < c.count ? c[i + 1] : nil
            guard c[i] == "$", let next else {
                text.append(c[i])
                i += 1
                continue
            }
            if next == "$" {
                text.append("$")
                i += 2
            } else if next == "{", let close = c[(i + 2)...].firstIndex(of: "}"), close > i + 2 {
                flush()
                parts.append(.group(resolve(String(String.UnicodeScalarView(c[(i + 2)..<close])))))
                i = close + 1
            } else if isDigit(next) {
                flush()
                var end = i + 1
                while end < c.count, isDigit(c[end]) { end += 1 }
                // The longest prefix of the digits that is a group; always at least one digit.
                var take = end - (i + 1)
                while take > 1, resolve(String(String.UnicodeScalarView(c[(i + 1)..<(i + 1 + take)]))) == nil { take -= 1 }
                parts.append(.group(resolve(String(String.UnicodeScalarView(c[(i + 1)..<(i + 1 + take)])))))
                i += 1 + take
            } else if isWord(next) {
                flush()
                var end = i + 1
                while end < c.count, isWord(c[end]) { end += 1 }
                parts.append(.group(resolve(String(String.UnicodeScalarView(c[(i + 1)..<end])))))
                i = end
            } else {
                text.append("$")
                i += 1
            }
        }
        flush()
        self.parts = parts
    }

    func expand(_ m: NSTextCheckingResult, in source: String) -> String {
        var out = ""
        for part in parts {
            switch part {
            case .text(let t): out += t
            case .group(let n?): out += CompiledPattern.text(m.range(at: n), in: source) ?? ""
            case .group(nil): break
            }
        }
        return out
    }
}
