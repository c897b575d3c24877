import Foundation
import Testing
@testable import SluiceEngine
import SluiceTesting

@Suite("CronSchedule")
struct CronScheduleTests {
    // MARK: - Next fire times

    /// One expression, a zone, a start instant and the fire times expected one after another.
    struct FireCase: Sendable, CustomTestStringConvertible {
        let expression: String
        let zone: String
        let after: String
        let expected: [String]
        let note: String

        init(_ expression: String, zone: String = "GMT", after: String, _ expected: [String], _ note: String) {
            self.expression = expression
            self.zone = zone
            self.after = after
            self.expected = expected
            self.note = note
        }

        var testDescription: String { "\(note): '\(expression)' in \(zone)" }
    }

    static let fireCases: [FireCase] = [
        FireCase("* * * * *", after: "2025-01-01T00:00:00Z",
                 ["2025-01-01T00:01:00Z", "2025-01-01T00:02:00Z", "2025-01-01T00:03:00Z"], "every minute"),
        FireCase("* * * * *", after: "2025-01-01T23:59:59Z",
                 ["2025-01-02T00:00:00Z"], "every minute, from the last second of a day"),
        FireCase("*/15 * * * *", after: "2025-01-01T00:07:00Z",
                 ["2025-01-01T00:15:00Z", "2025-01-01T00:30:00Z", "2025-01-01T00:45:00Z", "2025-01-01T01:00:00Z"],
                 "every 15 minutes"),
        FireCase("0 * * * *", after: "2025-01-01T10:00:00Z",
                 ["2025-01-01T11:00:00Z", "2025-01-01T12:00:00Z"], "strictly after a matching instant"),
        FireCase("0 9-11 * * *", after: "2025-01-01T10:30:00Z",
                 ["2025-01-01T11:00:00Z", "2025-01-02T09:00:00Z", "2025-01-02T10:00:00Z"], "hour range"),
        FireCase("10-30/10 8 * * *", after: "2025-01-01T00:00:00Z",
                 ["2025-01-01T08:10:00Z", "2025-01-01T08:20:00Z", "2025-01-01T08:30:00Z", "2025-01-02T08:10:00Z"],
                 "range with step"),
        FireCase("5/20 * * * *", after: "2025-01-01T00:00:00Z",
                 ["2025-01-01T00:05:00Z", "2025-01-01T00:25:00Z", "2025-01-01T00:45:00Z", "2025-01-01T01:05:00Z"],
                 "start with step"),
        FireCase("0 6,18 * * *", after: "2025-01-01T07:00:00Z",
                 ["2025-01-01T18:00:00Z", "2025-01-02T06:00:00Z", "2025-01-02T18:00:00Z"], "hour list"),
        FireCase("0,30 1-2,22 * * *", after: "2025-01-01T02:30:00Z",
                 ["2025-01-01T22:00:00Z", "2025-01-01T22:30:00Z", "2025-01-02T01:00:00Z"], "lists mixed with ranges"),
        FireCase("0 12 * JAN,mar Mon-WED", after: "2025-01-29T13:00:00Z",
                 ["2025-03-03T12:00:00Z", "2025-03-04T12:00:00Z", "2025-03-05T12:00:00Z", "2025-03-10T12:00:00Z"],
                 "month and day names, any case"),
        FireCase("0 0 * * 7", after: "2025-01-01T00:00:00Z",
                 ["2025-01-05T00:00:00Z", "2025-01-12T00:00:00Z"], "weekday 7 is Sunday"),
        FireCase("0 0 * * 0", after: "2025-01-01T00:00:00Z",
                 ["2025-01-05T00:00:00Z", "2025-01-12T00:00:00Z"], "weekday 0 is Sunday"),
        FireCase("0 0 * * FRI-SUN", after: "2025-01-01T00:00:00Z",
                 ["2025-01-03T00:00:00Z", "2025-01-04T00:00:00Z", "2025-01-05T00:00:00Z", "2025-01-10T00:00:00Z"],
                 "weekday range ending on Sunday"),
        FireCase("0 0 * * 5-7", after: "2025-01-01T00:00:00Z",
                 ["2025-01-03T00:00:00Z", "2025-01-04T00:00:00Z", "2025-01-05T00:00:00Z", "2025-01-10T00:00:00Z"],
                 "numeric weekday range through 7"),
        FireCase("0 0 * * 1/2", after: "2025-01-01T00:00:00Z",
                 ["2025-01-03T00:00:00Z", "2025-01-06T00:00:00Z", "2025-01-08T00:00:00Z", "2025-01-10T00:00:00Z"],
                 "weekday start with step: Mon, Wed, Fri"),
        FireCase("*/20 * * * * *", after: "2025-01-01T00:00:00Z",
                 ["2025-01-01T00:00:20Z", "2025-01-01T00:00:40Z", "2025-01-01T00:01:00Z"], "seconds field"),
        FireCase("0 30 9 * * MON-FRI", after: "2025-01-03T09:30:00Z",
                 ["2025-01-06T09:30:00Z", "2025-01-07T09:30:00Z"], "seconds field with weekday names"),
        FireCase("30 0 12 * * *", after: "2025-01-01T12:00:30Z",
                 ["2025-01-02T12:00:30Z", "2025-01-03T12:00:30Z"], "fixed second"),
        FireCase("0 0 13 * FRI", after: "2025-01-01T00:00:00Z",
                 ["2025-01-03T00:00:00Z", "2025-01-10T00:00:00Z", "2025-01-13T00:00:00Z", "2025-01-17T00:00:00Z"],
                 "day of month OR day of week when both are restricted"),
        FireCase("0 0 */10 * MON", after: "2025-01-01T00:00:00Z",
                 ["2025-03-31T00:00:00Z", "2025-04-21T00:00:00Z"],
                 "day of month AND day of week when one starts with *"),
        FireCase("0 0 1 * *", after: "2025-01-15T00:00:00Z",
                 ["2025-02-01T00:00:00Z", "2025-03-01T00:00:00Z"], "day field alone"),
        FireCase("0 0 29 2 *", after: "2025-01-01T00:00:00Z",
                 ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"], "February 29th"),
        FireCase("0 0 29 2 *", after: "2096-03-01T00:00:00Z",
                 ["2104-02-29T00:00:00Z"], "February 29th across 2100, which is not a leap year"),
        FireCase("0 0 31 * *", after: "2025-01-31T00:00:00Z",
                 ["2025-03-31T00:00:00Z", "2025-05-31T00:00:00Z", "2025-07-31T00:00:00Z", "2025-08-31T00:00:00Z"],
                 "month rollover skips short months"),
        FireCase("0 0 30 * *", after: "2025-01-30T00:00:00Z",
                 ["2025-03-30T00:00:00Z", "2025-04-30T00:00:00Z"], "month rollover skips February"),
        FireCase("59 23 31 12 *", after: "2025-06-01T00:00:00Z",
                 ["2025-12-31T23:59:00Z", "2026-12-31T23:59:00Z"], "last minute of the year"),
        FireCase("0 0 1 1 *", after: "2025-12-31T23:59:59Z",
                 ["2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"], "year rollover"),
        FireCase("0 0 * JUN *", after: "2025-07-01T00:00:00Z",
                 ["2026-06-01T00:00:00Z", "2026-06-02T00:00:00Z"], "month already past this year"),

        // Macros
        FireCase("@yearly", after: "2025-03-01T00:00:00Z", ["2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"], "@yearly"),
        FireCase("@annually", after: "2025-03-01T00:00:00Z", ["2026-01-01T00:00:00Z"], "@annually"),
        FireCase("@monthly", after: "2025-03-01T00:00:00Z", ["2025-04-01T00:00:00Z", "2025-05-01T00:00:00Z"], "@monthly"),
        FireCase("@weekly", after: "2025-01-01T00:00:00Z", ["2025-01-05T00:00:00Z", "2025-01-12T00:00:00Z"], "@weekly"),
        FireCase("@daily", after: "2025-01-01T00:00:00Z", ["2025-01-02T00:00:00Z", "2025-01-03T00:00:00Z"], "@daily"),
        FireCase("@midnight", after: "2025-01-01T12:00:00Z", ["2025-01-02T00:00:00Z"], "@midnight"),
        FireCase("@hourly", after: "2025-01-01T12:30:00Z", ["2025-01-01T13:00:00Z", "2025-01-01T14:00:00Z"], "@hourly"),
        FireCase("  @DAILY ", after: "2025-01-01T00:00:00Z", ["2025-01-02T00:00:00Z"], "macro in capitals, padded"),

        // Time zones
        FireCase("0 9 * * *", zone: "Asia/Kolkata", after: "2025-01-01T00:00:00Z",
                 ["2025-01-01T03:30:00Z", "2025-01-02T03:30:00Z"], "half-hour offset"),
        FireCase("0 9 * * MON", zone: "Europe/Berlin", after: "2025-01-01T00:00:00Z",
                 ["2025-01-06T08:00:00Z", "2025-01-13T08:00:00Z"], "Berlin winter"),
        FireCase("0 0 1 * *", zone: "America/New_York", after: "2025-01-01T04:59:59Z",
                 ["2025-01-01T05:00:00Z", "2025-02-01T05:00:00Z"], "New York midnight on the 1st"),
        FireCase("30 2 * * *", zone: "America/New_York", after: "2025-03-08T08:00:00Z",
                 ["2025-03-10T06:30:00Z", "2025-03-11T06:30:00Z"], "New York spring forward skips 02:30"),
        FireCase("0 * * * *", zone: "America/New_York", after: "2025-03-09T06:30:00Z",
                 ["2025-03-09T07:00:00Z", "2025-03-09T08:00:00Z"], "New York spring forward: hourly jumps 01:00 to 03:00"),
        FireCase("* * * * * *", zone: "America/New_York", after: "2025-03-09T06:59:59Z",
                 ["2025-03-09T07:00:00Z"], "New York spring forward: every second crosses the gap"),
        FireCase("30 1 * * *", zone: "America/New_York", after: "2025-11-01T12:00:00Z",
                 ["2025-11-02T05:30:00Z", "2025-11-03T06:30:00Z"], "New York fall back fires 01:30 once, the first time"),
        FireCase("*/15 * * * *", zone: "America/New_York", after: "2025-11-02T05:40:00Z",
                 ["2025-11-02T05:45:00Z", "2025-11-02T07:00:00Z", "2025-11-02T07:15:00Z"],
                 "New York fall back: the repeated hour does not fire again"),
        FireCase("*/15 * * * *", zone: "America/New_York", after: "2025-11-02T06:10:00Z",
                 ["2025-11-02T07:00:00Z"], "New York fall back: starting inside the repeated hour"),
        FireCase("* * * * * *", zone: "America/New_York", after: "2025-11-02T06:10:00Z",
                 ["2025-11-02T07:00:00Z"], "New York fall back: every second, inside the repeated hour"),
        FireCase("30 2 * * *", zone: "Europe/Berlin", after: "2025-03-29T02:00:00Z",
                 ["2025-03-31T00:30:00Z"], "Berlin spring forward skips 02:30"),
        FireCase("30 2 * * *", zone: "Europe/Berlin", after: "2025-10-25T12:00:00Z",
                 ["2025-10-26T00:30:00Z", "2025-10-27T01:30:00Z"], "Berlin fall back fires 02:30 once"),
        FireCase("15 2 * * *", zone: "Australia/Lord_Howe", after: "2025-10-04T12:00:00Z",
                 ["2025-10-05T15:15:00Z"], "Lord Howe half-hour spring forward skips 02:15"),
        FireCase("45 2 * * *", zone: "Australia/Lord_Howe", after: "2025-10-04T12:00:00Z",
                 ["2025-10-04T15:45:00Z"], "Lord Howe: 02:45 survives the half-hour gap"),
        FireCase("*/15 * * * *", zone: "Australia/Lord_Howe", after: "2025-04-05T14:40:00Z",
                 ["2025-04-05T14:45:00Z", "2025-04-05T15:30:00Z"], "Lord Howe half-hour fall back"),
    ]

    @Test("next(after:) returns the expected fire times", arguments: fireCases)
    func fireTimes(_ fire: FireCase) throws {
        let zone = try #require(TimeZone(identifier: fire.zone))
        let schedule = try CronSchedule(fire.expression, timeZone: zone)
        var cursor = try instant(fire.after)
        for expected in fire.expected {
            let next = try #require(schedule.next(after: cursor), "no fire time after \(cursor)")
            #expect(next == (try instant(expected)), "after \(cursor)")
            cursor = next
        }
    }

    @Test("Never-matching days give nil", arguments: ["0 0 30 2 *", "0 0 31 4 *", "0 0 31 JUN,SEP,NOV *"])
    func impossibleDays(_ expression: String) throws {
        let schedule = try CronSchedule(expression)
        #expect(schedule.next(after: try instant("2025-01-01T00:00:00Z")) == nil)
    }

    @Test("A fractional start rounds up to the next matching second")
    func fractionalStart() throws {
        let schedule = try CronSchedule("* * * * * *")
        let start = try instant("2025-01-01T00:00:00Z")
        #expect(schedule.next(after: start.addingTimeInterval(0.5)) == start.addingTimeInterval(1))
        #expect(schedule.next(after: start.addingTimeInterval(-0.5)) == start)
    }

    @Test("Unusable start dates give nil or a later date, never a crash")
    func extremeDates() throws {
        let schedule = try CronSchedule("0 0 * * *")
        #expect(schedule.next(after: Date(timeIntervalSince1970: .infinity)) == nil)
        #expect(schedule.next(after: Date(timeIntervalSince1970: -.infinity)) == nil)
        #expect(schedule.next(after: Date(timeIntervalSince1970: .nan)) == nil)
        #expect(schedule.next(after: Date(timeIntervalSince1970: 1e15)) == nil)
        let future = try #require(schedule.next(after: .distantFuture))
        #expect(future > .distantFuture)
        let past = try #require(schedule.next(after: .distantPast))
        #expect(past > .distantPast)
        let beforeEpoch = try #require(schedule.next(after: try instant("1969-12-31T12:00:00Z")))
        #expect(beforeEpoch == (try instant("1970-01-01T00:00:00Z")))
    }

    @Test("The expression and time zone are kept as given")
    func keepsExpression() throws {
        let berlin = try #require(TimeZone(identifier: "Europe/Berlin"))
        let schedule = try CronSchedule("  */5 * * * * ", timeZone: berlin)
        #expect(schedule.expression == "  */5 * * * * ")
        #expect(schedule.timeZone == berlin)
        #expect(try CronSchedule("@daily").timeZone == .gmt)
        #expect(try CronSchedule("0 0 * * *") == CronSchedule("0 0 * * *"))
        #expect(try CronSchedule("0 0 * * *") != CronSchedule("0 0 * * *", timeZone: berlin))
        #expect(try CronSchedule("0 0 * * *") != CronSchedule("0 1 * * *"))
        let set: Set = [try CronSchedule("@hourly"), try CronSchedule("@hourly"), try CronSchedule("@daily")]
        #expect(set.count == 2)
    }

    // MARK: - Parse errors

    struct ErrorCase: Sendable, CustomTestStringConvertible {
        let expression: String
        let message: String
        var testDescription: String { "'\(expression)'" }
    }

    static let errorCases: [ErrorCase] = [
        ErrorCase(expression: "x y",
                  message: "cron expression 'x y' has 2 fields; expected 5 (minute hour day month weekday) or 6 (with seconds first)"),
        ErrorCase(expression: "* * * * * * *",
                  message: "cron expression '* * * * * * *' has 7 fields; expected 5 (minute hour day month weekday) or 6 (with seconds first)"),
        ErrorCase(expression: "   ",
                  message: "cron expression is empty; expected 5 fields (minute hour day month weekday) or 6 (with seconds first)"),
        ErrorCase(expression: "0 25 * * *", message: "cron field 'hour' value '25' is out of range 0-23"),
        ErrorCase(expression: "60 * * * *", message: "cron field 'minute' value '60' is out of range 0-59"),
        ErrorCase(expression: "60 * * * * *", message: "cron field 'second' value '60' is out of range 0-59"),
        ErrorCase(expression: "0 0 0 * *", message: "cron field 'day' value '0' is out of range 1-31"),
        ErrorCase(expression: "0 0 32 * *", message: "cron field 'day' value '32' is out of range 1-31"),
        ErrorCase(expression: "0 0 * 13 *", message: "cron field 'month' value '13' is out of range 1-12"),
        ErrorCase(expression: "0 0 * * 8", message: "cron field 'weekday' value '8' is out of range 0-7"),
        ErrorCase(expression: "0 0-99999999999999999999 * * *",
                  message: "cron field 'hour' value '99999999999999999999' is out of range 0-23"),
        ErrorCase(expression: "*/0 * * * *", message: "cron field 'minute' step '0' in '*/0' is not a positive number"),
        ErrorCase(expression: "*/x * * * *", message: "cron field 'minute' step 'x' in '*/x' is not a positive number"),
        ErrorCase(expression: "*/ * * * *", message: "cron field 'minute' step '' in '*/' is not a positive number"),
        ErrorCase(expression: "0 */25 * * *", message: "cron field 'hour' step '25' in '*/25' is out of range 1-24"),
        ErrorCase(expression: "1/2/3 * * * *", message: "cron field 'minute' value '1/2/3' is malformed"),
        ErrorCase(expression: "1-2-3 * * * *", message: "cron field 'minute' value '1-2-3' is malformed"),
        ErrorCase(expression: "-5 * * * *", message: "cron field 'minute' value '-5' is malformed"),
        ErrorCase(expression: "/5 * * * *", message: "cron field 'minute' value '/5' is malformed"),
        ErrorCase(expression: "1,,2 * * * *", message: "cron field 'minute' has an empty list item in '1,,2'"),
        ErrorCase(expression: "0 0 * * 5-1", message: "cron field 'weekday' range '5-1' is backwards; write the smaller value first"),
        ErrorCase(expression: "0 17-9 * * *", message: "cron field 'hour' range '17-9' is backwards; write the smaller value first"),
        ErrorCase(expression: "0 0 * FOO *", message: "cron field 'month' value 'FOO' is not a number or month name"),
        ErrorCase(expression: "0 0 * * FUNDAY", message: "cron field 'weekday' value 'FUNDAY' is not a number or day name"),
        ErrorCase(expression: "0 0 * * JAN", message: "cron field 'weekday' value 'JAN' is not a number or day name"),
        ErrorCase(expression: "0 0 MON * *", message: "cron field 'day' value 'MON' is not a number"),
        ErrorCase(expression: "a b c d e", message: "cron field 'minute' value 'a' is not a number"),
        ErrorCase(expression: "0 0 ? * *", message: "cron field 'day' value '?' is not a number"),
        ErrorCase(expression: "0 0 ٣ * *", message: "cron field 'day' value '٣' is not a number"),
        ErrorCase(expression: "@reboot",
                  message: "cron macro '@reboot' is not supported; expected one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly"),
        ErrorCase(expression: "@daily 5",
                  message: "cron macro '@daily 5' is not supported; expected one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly"),
    ]

    @Test("Bad expressions throw a message naming the field and value", arguments: errorCases)
    func parseErrors(_ bad: ErrorCase) {
        let error = #expect(throws: CronSchedule.ParseError.self) { try CronSchedule(bad.expression) }
        #expect(error?.description == bad.message)
        #expect(error?.message == bad.message)
        #expect(error?.expression == bad.expression)
    }

    @Test("The parser never crashes on random input", arguments: 0..<4)
    func randomInput(seed: UInt64) throws {
        var random = SeededGenerator(seed: seed)
        let pieces: [String] = "0123456789*/,-@ \t\nJANFEBMONSUNxyz?#LW٣é💥".map { String($0) }
            + ["59", "60", "99999999999999999999", "*/", "@daily"]
        let start = try instant("2025-06-15T12:34:56Z")
        let zone = try #require(TimeZone(identifier: "America/New_York"))
        var parsed = 0
        for _ in 0..<2_500 {
            let length = Int(random.next() % 24)
            var text = ""
            for _ in 0..<length { text += pieces[Int(random.next() % UInt64(pieces.count))] }
            if let schedule = try? CronSchedule(text, timeZone: zone) {
                parsed += 1
                if let next = schedule.next(after: start) { #expect(next > start, "'\(text)'") }
            }
        }
        // Mutated valid expressions reach deeper into the field parser than pure noise.
        let seeds = ["*/5 1-3,7 * JAN-MAR MON-FRI", "0 0 29 2 *", "10 */2 1,15 * SUN", "@weekly"]
        for _ in 0..<2_500 {
            var characters = Array(seeds[Int(random.next() % UInt64(seeds.count))])
            for _ in 0..<(1 + random.next() % 3) where !characters.isEmpty {
                let index = Int(random.next() % UInt64(characters.count))
                characters[index] = pieces[Int(random.next() % UInt64(pieces.count))].first ?? "*"
            }
            let text = String(characters)
            if let schedule = try? CronSchedule(text, timeZone: zone) {
                parsed += 1
                if let next = schedule.next(after: start) { #expect(next > start, "'\(text)'") }
            }
        }
        #expect(parsed > 0)
    }

    // MARK: - Cross-checks against Foundation's Calendar

    @Test("Random expressions agree with a slow day-by-day search using Calendar", arguments: 0..<4)
    func matchesReference(seed: UInt64) throws {
        var random = SeededGenerator(seed: 1000 + seed)
        for _ in 0..<60 {
            let spec = RandomSpec(&random)
            let schedule = try CronSchedule(spec.expression)
            let start = Date(timeIntervalSince1970: Double(946_684_800 + Int(random.next() % 2_800_000_000)))
            let actual = schedule.next(after: start)
            if let expected = try spec.referenceNext(after: start) {
                #expect(actual == expected, "'\(spec.expression)' after \(start)")
            } else if let actual {
                // Rare day combinations can be years apart; the reference gives up sooner than the schedule.
                #expect(actual > start.addingTimeInterval(700 * 86_400), "'\(spec.expression)' after \(start)")
            }
        }
    }

    @Test("Fire times match the fields on the zone's wall clock, per Calendar",
          arguments: ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "America/Sao_Paulo", "Asia/Kathmandu"])
    func wallClockAgreesWithCalendar(zoneName: String) throws {
        let zone = try #require(TimeZone(identifier: zoneName))
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        var random = SeededGenerator(seed: UInt64(zoneName.utf8.count))
        for _ in 0..<80 {
            let spec = RandomSpec(&random)
            let schedule = try CronSchedule(spec.expression, timeZone: zone)
            var cursor = Date(timeIntervalSince1970: Double(946_684_800 + Int(random.next() % 2_800_000_000)))
            for _ in 0..<3 {
                guard let next = schedule.next(after: cursor) else { break }  // rare: no match for years
                #expect(next > cursor)
                let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: next)
                let matches = try spec.matches(
                    month: #require(parts.month), day: #require(parts.day), weekday: #require(parts.weekday) - 1,
                    hour: #require(parts.hour), minute: #require(parts.minute), second: #require(parts.second))
                #expect(matches, "'\(spec.expression)' in \(zoneName) fired at \(next)")
                cursor = next
            }
        }
    }

    @Test("next(after:) reaches far-apart fire times (leap days for eight centuries)")
    func farApartFireTimes() throws {
        let zone = try #require(TimeZone(identifier: "America/New_York"))
        let schedule = try CronSchedule("0 0 29 2 *", timeZone: zone)
        var cursor = try instant("2025-01-01T00:00:00Z")
        for _ in 0..<200 {
            guard let next = schedule.next(after: cursor) else { break }
            cursor = next
        }
        // 200 leap days reach past the year 2800 (and skip 2100, 2200, 2300, 2500, 2600, 2700).
        #expect(cursor > (try instant("2800-01-01T00:00:00Z")))
    }
}

// MARK: - Helpers

extension CronScheduleTests {
    /// A member rather than a free function, so it cannot clash with helpers in other test files.
    private func instant(_ iso: String) throws -> Date {
        try Date(iso, strategy: .iso8601)
    }
}

/// A random cron expression together with the value sets it should mean, expanded independently.
private struct RandomSpec {
    var expression = ""
    var seconds: Set<Int> = []
    var minutes: Set<Int> = []
    var hours: Set<Int> = []
    var days: Set<Int> = []
    var months: Set<Int> = []
    var weekdays: Set<Int> = []
    var daysStar = false
    var weekdaysStar = false

    init(_ random: inout SeededGenerator) {
        let withSeconds = random.next() % 3 == 0
        let second = Self.field(0...59, &random)
        let minute = Self.field(0...59, &random)
        let hour = Self.field(0...23, &random)
        // Days stop at 28 so every month has a match and the reference never needs more than a year or two.
        let day = Self.field(1...28, &random, star: 1...31)
        let month = Self.field(1...12, &random)
        let weekday = Self.field(0...7, &random, star: 0...6)
        seconds = withSeconds ? second.values : [0]
        minutes = minute.values
        hours = hour.values
        days = day.values
        months = month.values
        weekdays = Set(weekday.values.map { $0 == 7 ? 0 : $0 })
        daysStar = day.text.hasPrefix("*")
        weekdaysStar = weekday.text.hasPrefix("*")
        expression = ([withSeconds ? second.text : nil, minute.text, hour.text, day.text, month.text, weekday.text])
            .compactMap { $0 }.joined(separator: " ")
    }

    private static func field(_ range: ClosedRange<Int>, _ random: inout SeededGenerator,
                              star: ClosedRange<Int>? = nil) -> (text: String, values: Set<Int>) {
        let all = star ?? range
        func pick() -> Int { range.lowerBound + Int(random.next() % UInt64(range.count)) }
        func item() -> (String, Set<Int>) {
            switch random.next() % 6 {
            case 0:
                return ("*", Set(all))
            case 1:
                let step = 1 + Int(random.next() % 7)
                return ("*/\(step)", Set(stride(from: all.lowerBound, through: all.upperBound, by: step)))
            case 2:
                let (a, b) = (pick(), pick())
                return ("\(min(a, b))-\(max(a, b))", Set(min(a, b)...max(a, b)))
            case 3:
                let (a, b) = (pick(), pick())
                let step = 1 + Int(random.next() % 5)
                return ("\(min(a, b))-\(max(a, b))/\(step)", Set(stride(from: min(a, b), through: max(a, b), by: step)))
            default:
                let value = pick()
                return ("\(value)", [value])
            }
        }
        let count = random.next() % 4 == 0 ? 2 : 1
        var texts: [String] = []
        var values: Set<Int> = []
        for _ in 0..<count {
            let (text, set) = item()
            texts.append(text)
            values.formUnion(set)
        }
        return (texts.joined(separator: ","), values)
    }

    func dayMatches(day: Int, weekday: Int) -> Bool {
        let dayOK = days.contains(day)
        let weekdayOK = weekdays.contains(weekday)
        return daysStar || weekdaysStar ? dayOK && weekdayOK : dayOK || weekdayOK
    }

    func matches(month: Int, day: Int, weekday: Int, hour: Int, minute: Int, second: Int) -> Bool {
        months.contains(month) && dayMatches(day: day, weekday: weekday)
            && hours.contains(hour) && minutes.contains(minute) && seconds.contains(second)
    }

    /// Walks UTC days with Calendar and tries every allowed time of day in order: slow but obviously right.
    func referenceNext(after start: Date) throws -> Date? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = .gmt
        var day = calendar.startOfDay(for: start)
        let times = hours.sorted().flatMap { h in
            minutes.sorted().flatMap { m in seconds.sorted().map { s in h * 3600 + m * 60 + s } }
        }
        for _ in 0..<800 {
            let parts = calendar.dateComponents([.month, .day, .weekday], from: day)
            let month = try #require(parts.month), dayOfMonth = try #require(parts.day)
            let weekday = try #require(parts.weekday) - 1
            if months.contains(month), dayMatches(day: dayOfMonth, weekday: weekday) {
                for time in times {
                    let candidate = day.addingTimeInterval(Double(time))
                    if candidate > start { return candidate }
                }
            }
            day = try #require(calendar.date(byAdding: .day, value: 1, to: day))
        }
        return nil
    }
}
