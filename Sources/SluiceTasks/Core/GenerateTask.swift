import Foundation
import SluiceCore
import SluiceEngine

/// Emits events on a schedule: a number of them at once, every interval, or on a cron schedule.
struct GenerateTask: TaskSource {
    static let spec = TaskSpec(
        name: "generate",
        summary: "Emits events: `count` at once, every `interval`, or on a `cron` schedule; each starts a run.",
        kind: .source,
        fields: [
            FieldSpec("payload", .any, default: .emptyObject, templated: false, summary: "The data of every event."),
            FieldSpec("interval", .duration, summary: "Emit one event now, then one every interval."),
            FieldSpec("cron", .string, summary: "Emit on a cron schedule (5 fields, or 6 with seconds first)."),
            FieldSpec("timezone", .string, default: "UTC", summary: "IANA time zone the cron schedule is read in."),
            FieldSpec("count", .integer, summary: "Stop after this many events (default: 1 without interval or cron, unlimited with)."),
            FieldSpec("allow_rerun", .bool, default: false, summary: "Start the persisted counter (and last run) of a schedule again."),
            FieldSpec("ack_timeout", .duration, inert: true, summary: "Flowgen: how long to wait for a run. Accepted; runs are awaited by the engine."),
        ],
        outputs: [],
        examples: [
            TaskExample("Three events, one second apart", yaml: """
                flow:
                  name: ticks
                  tasks:
                    - generate:
                        name: tick
                        interval: 1s
                        count: 3
                        payload: {hello: world}
                    - log:
                        name: show
                """),
            TaskExample("Every weekday at 09:00 in Berlin", yaml: """
                flow:
                  name: morning
                  tasks:
                    - generate:
                        name: morning
                        cron: "0 9 * * MON-FRI"
                        timezone: Europe/Berlin
                    - log:
                        name: show
                """),
        ]
    )

    static let registration = TaskRegistration.source(spec) { setup in
        try GenerateTask(setup.config, state: setup.state, stateKey: "generate/\(setup.flowName)/\(setup.definition.name)")
    }

    let payload: Value
    let interval: Duration?
    let cron: CronSchedule?
    let count: Int?
    /// Where a schedule keeps how many events it emitted and when it last did, so a restart
    /// (on this process or another) neither fires early nor repeats ids, and a `count` holds
    /// across restarts. `allow_rerun: true` starts the counter again. A one-shot generator
    /// (no interval or cron) keeps no state: each run of the flow is its trigger.
    let state: (cache: any KeyValueCache, key: String)?
    /// Start from zero whatever was saved (the saved state is overwritten at the first event).
    let allowRerun: Bool

    init(_ config: Value.Object, state: (any KeyValueCache)? = nil, stateKey: String = "") throws {
        payload = config["payload"] ?? .emptyObject
        interval = try config.duration("interval")
        if let expression = try config.string("cron") {
            let zoneName = try config.string("timezone") ?? "UTC"
            guard let zone = TimeZone(identifier: zoneName) else {
                throw TaskError.invalidConfig("unknown time zone '\(zoneName)' (use an IANA name such as Europe/Berlin)")
            }
            do {
                cron = try CronSchedule(expression, timeZone: zone)
            } catch {
                throw TaskError.invalidConfig(error.description)
            }
        } else {
            cron = nil
        }
        if interval != nil && cron != nil { throw TaskError.invalidConfig("set either 'interval' or 'cron', not both") }
        if let interval, interval <= .zero { throw TaskError.invalidConfig("'interval' must be longer than zero") }
        let count = try config.int("count")
        if let count, count < 0 { throw TaskError.invalidConfig("'count' must not be negative") }
        self.count = count ?? ((interval == nil && cron == nil) ? 1 : nil)
        self.state = (interval != nil || cron != nil) ? state.map { ($0, stateKey) } : nil
        allowRerun = config["allow_rerun"] == true
    }

    func run(_ emitter: SourceEmitter, _ context: TaskContext) async throws {
        let saved = allowRerun ? nil : state.flatMap { $0.cache.get($0.key) }
        var emitted = Int(saved?["count"]?.intValue ?? 0)
        var last = saved?["last"]?.doubleValue.map { Date(timeIntervalSince1970: $0) }
        func more() -> Bool { count.map { emitted < $0 } ?? true }
        while more() {
            let now = context.clock.now()
            if let cron {
                // A tick missed while nothing ran is not made up; the next one is awaited.
                guard let next = cron.next(after: max(now, last ?? now)) else { return }
                try await context.clock.sleep(for: .milliseconds(Int64(next.timeIntervalSince(now) * 1000)))
            } else if let interval {
                if let last {
                    let wait = last.addingTimeInterval(interval.seconds).timeIntervalSince(now)
                    if wait > 0 { try await context.clock.sleep(for: .milliseconds(Int64((wait * 1000).rounded(.up)))) }
                }
            }
            emitted += 1
            last = context.clock.now()
            if let state {
                state.cache.put(state.key, ["count": .int(Int64(emitted)), "last": .double(last!.timeIntervalSince1970)], ttl: nil)
            }
            try await emitter.emit(Event(id: String(emitted), data: payload))
        }
    }
}
