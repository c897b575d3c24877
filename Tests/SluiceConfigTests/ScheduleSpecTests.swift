import Foundation
import SluiceConfig
import SluiceCore
import SluiceEngine
import SluiceTasks
import Testing

@Suite("Flow schedules")
struct ScheduleSpecTests {
    let loader = FlowLoader(catalog: BuiltinTasks.registry.catalog)

    /// A flow whose `schedule:` mapping holds `lines` (from line 4, indented under it).
    static func flow(_ lines: [String]) -> String {
        (["flow:", "  name: nightly", "  schedule:"] + lines.map { "    " + $0 } + ["  tasks:", "    - script: {code: \"1\"}"])
            .joined(separator: "\n")
    }

    func errors(_ text: String) -> [String] {
        do {
            _ = try loader.load(text: text, file: "nightly.yaml")
            return []
        } catch {
            return error.errors.map(\.description)
        }
    }

    @Test("A cron schedule loads with its time zone, catch-up, input and partition")
    func cronSchedule() throws {
        let flow = try loader.load(text: Self.flow([
            "cron: \"0 6 * * *\"",
            "timezone: Europe/Berlin",
            "catch_up: all",
            "max_catch_up: 3",
            "input: {kind: nightly, depth: 2}",
            "partition: yesterday",
        ]), file: "nightly.yaml")
        let schedule = try #require(flow.settings.schedule)
        #expect(schedule.trigger == .cron("0 6 * * *"))
        #expect(schedule.timeZone == "Europe/Berlin" && schedule.zone.identifier == "Europe/Berlin")
        #expect(schedule.catchUp == .all && schedule.maxCatchUp == 3)
        #expect(schedule.input == ["kind": "nightly", "depth": 2])
        #expect(schedule.partition == "yesterday")
        #expect(schedule.location?.description == "nightly.yaml:4:11", "errors found later point at the expression")
    }

    @Test("An interval schedule takes the defaults: UTC, catch_up skip, at most 10, no input")
    func intervalSchedule() throws {
        let flow = try loader.load(text: Self.flow(["interval: 15m"]), file: "nightly.yaml")
        let schedule = try #require(flow.settings.schedule)
        #expect(schedule.trigger == .interval(.seconds(900)))
        #expect(schedule.timeZone == "UTC" && schedule.catchUp == .skip && schedule.maxCatchUp == 10)
        #expect(schedule.input.isEmpty && schedule.partition == nil)
        #expect(try loader.load(text: Self.flow(["cron: \"@hourly\"", "catch_up: latest"]), file: "n.yaml").settings.schedule?.catchUp == .latest)
        #expect(try loader.load(text: "flow: {tasks: [{script: {code: \"1\"}}]}", file: "n.yaml").settings.schedule == nil)
    }

    struct Mistake: Sendable, CustomStringConvertible {
        let lines: [String]
        /// `line:column` the error is reported at.
        let at: String
        let message: String
        var description: String { message }
    }

    static let mistakes: [Mistake] = [
        Mistake(lines: ["cron: \"0 6 * * *\"", "colour: red"], at: "5:5", message: "unknown field 'colour' in flow 'schedule'"),
        Mistake(lines: ["cron: \"0 6 * * *\"", "interval: 15m"], at: "4:5", message: "has both cron and interval; keep one"),
        Mistake(lines: ["catch_up: latest"], at: "4:5", message: "needs cron (e.g. \"0 6 * * *\") or interval"),
        Mistake(lines: ["cron: 6"], at: "4:11", message: "'schedule.cron' must be a cron expression"),
        Mistake(lines: ["cron: \"0 6 * * *\"", "timezone: Mars/Olympus"], at: "5:15", message: "must be an IANA time zone such as Europe/Berlin, found 'Mars/Olympus'"),
        Mistake(lines: ["cron: \"0 6 * * *\"", "catch_up: lates"], at: "5:15", message: "'schedule.catch_up' must be skip, latest or all (did you mean 'latest'?)"),
        Mistake(lines: ["cron: \"0 6 * * *\"", "catch_up: all", "max_catch_up: 0"], at: "6:19", message: "'schedule.max_catch_up' must be at least 1, found 0"),
        Mistake(lines: ["cron: \"0 6 * * *\"", "catch_up: all", "max_catch_up: -2"], at: "6:19", message: "must be at least 1, found -2"),
        Mistake(lines: ["cron: \"0 6 * * *\"", "max_catch_up: 5"], at: "5:19", message: "applies only with catch_up: all"),
        Mistake(lines: ["interval: 500ms"], at: "4:15", message: "must be a whole number of seconds, at least 1s"),
        Mistake(lines: ["interval: soon"], at: "4:15", message: "'schedule.interval' is not a duration: 'soon'"),
        Mistake(lines: ["interval: 15m", "timezone: Europe/Berlin"], at: "5:15", message: "has no effect on an interval schedule"),
        Mistake(lines: ["cron: \"0 6 * * *\"", "partition: last_week"], at: "5:16", message: "'schedule.partition' must be one of previous_hour, previous_month"),
        Mistake(lines: ["cron: \"0 6 * * *\"", "input: {schedule: x}"], at: "5:13", message: "'schedule.input' cannot set 'schedule'"),
        Mistake(lines: ["cron: \"0 6 * * *\"", "input: [1]"], at: "5:12", message: "'schedule.input' must be a mapping"),
    ]

    @Test("Mistakes in a schedule are reported at file:line:column", arguments: mistakes)
    func mistake(_ mistake: Mistake) {
        let found = errors(Self.flow(mistake.lines))
        #expect(found.contains { $0.hasPrefix("nightly.yaml:\(mistake.at): ") && $0.contains(mistake.message) }, "\(found)")
    }

    @Test("A schedule that is not a mapping is reported where it was written")
    func notAMapping() {
        let found = errors("flow:\n  schedule: 15m\n  tasks:\n    - script: {code: \"1\"}")
        #expect(found == ["nightly.yaml:2:13: flow 'schedule' must be a mapping such as {cron: \"0 6 * * *\"} or {interval: 15m}, found a string"])
    }

    @Test("A cron expression is checked when the flow is prepared, with the expression's position")
    func cronCheckedWhenPrepared() throws {
        let engine = Engine(registry: BuiltinTasks.registry)
        let invalid = try loader.load(text: Self.flow(["cron: \"0 25 * * *\""]), file: "nightly.yaml")
        let error = #expect(throws: FlowErrors.self) { try engine.prepare(invalid) }
        #expect(error?.errors.map(\.description) == [
            "nightly.yaml:4:11: 'schedule.cron' is not a valid cron expression: cron field 'hour' value '25' is out of range 0-23",
        ])
        let never = try loader.load(text: Self.flow(["cron: \"0 0 30 2 *\""]), file: "nightly.yaml")
        let neverError = #expect(throws: FlowErrors.self) { try engine.prepare(never) }
        #expect(neverError?.description.contains("matches no date in the next eight years") == true)
        let zoned = try loader.load(text: Self.flow(["cron: \"30 2 * * *\"", "timezone: Europe/Berlin"]), file: "nightly.yaml")
        #expect(throws: Never.self) { try engine.prepare(zoned) }
    }

    @Test("A flow driven by a source cannot have a schedule")
    func streamCannotBeScheduled() throws {
        let flow = try loader.load(text: """
            flow:
              schedule: {interval: 1m}
              tasks:
                - generate: {name: tick, interval: 1s}
                - script: {code: "1", depends_on: tick}
            """, file: "stream.yaml")
        let error = #expect(throws: FlowErrors.self) { try Engine(registry: BuiltinTasks.registry).prepare(flow) }
        #expect(error?.description.hasPrefix("stream.yaml:2:24: flow 'stream' is driven by a source, so it cannot have a schedule") == true,
                "\(String(describing: error))")
    }

    struct PartitionCase: Sendable, CustomStringConvertible {
        let expression: String
        let timeZone: String
        let tick: String
        let key: String
        var description: String { "\(expression) at \(tick) in \(timeZone)" }
    }

    static let partitions: [PartitionCase] = [
        PartitionCase(expression: "yesterday", timeZone: "UTC", tick: "2025-01-15T06:00:00Z", key: "2025-01-14"),
        PartitionCase(expression: "yesterday", timeZone: "UTC", tick: "2025-03-01T00:00:00Z", key: "2025-02-28"),
        PartitionCase(expression: "today", timeZone: "UTC", tick: "2025-01-15T06:00:00Z", key: "2025-01-15"),
        PartitionCase(expression: "previous_hour", timeZone: "UTC", tick: "2025-01-15T14:30:00Z", key: "2025-01-15T13:00"),
        PartitionCase(expression: "this_hour", timeZone: "UTC", tick: "2025-01-15T14:30:00Z", key: "2025-01-15T14:00"),
        PartitionCase(expression: "this_month", timeZone: "UTC", tick: "2025-01-15T06:00:00Z", key: "2025-01"),
        PartitionCase(expression: "previous_month", timeZone: "UTC", tick: "2025-01-01T00:00:00Z", key: "2024-12"),
        // 23:30 UTC is already the 16th in Berlin: its yesterday is the 15th.
        PartitionCase(expression: "yesterday", timeZone: "Europe/Berlin", tick: "2025-01-15T23:30:00Z", key: "2025-01-15"),
        PartitionCase(expression: "previous_hour", timeZone: "Europe/Berlin", tick: "2025-01-15T14:00:00Z", key: "2025-01-15T14:00+01:00"),
        PartitionCase(expression: "previous_month", timeZone: "America/New_York", tick: "2025-03-01T03:00:00Z", key: "2025-01"),
    ]

    @Test("A partition expression names the window a tick fills, in the key format of time-partitioned assets", arguments: partitions)
    func partitionKey(_ c: PartitionCase) throws {
        let tick = try Date(c.tick, strategy: .iso8601)
        let spec = ScheduleSpec(.cron("0 6 * * *"), timeZone: c.timeZone, partition: c.expression)
        #expect(spec.partitionKey(at: tick) == c.key)
        #expect(ScheduleSpec(.interval(.seconds(60))).partitionKey(at: tick) == nil)
    }
}
