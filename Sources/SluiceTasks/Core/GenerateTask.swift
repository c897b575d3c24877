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
            FieldSpec("allow_rerun", .bool, inert: true, summary: "Flowgen: reset a persisted counter. Accepted; counters are not persisted yet."),
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
        try GenerateTask(setup.config)
    }

    let payload: Value
    let interval: Duration?
    let cron: CronSchedule?
    let count: Int?

    init(_ config: Value.Object) throws {
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
    }

    func run(_ emitter: SourceEmitter, _ context: TaskContext) async throws {
        var emitted = 0
        func more() -> Bool { count.map { emitted < $0 } ?? true }
        while more() {
            if let cron {
                let now = context.clock.now()
                guard let next = cron.next(after: now) else { return }
                try await context.clock.sleep(for: .milliseconds(Int64(next.timeIntervalSince(now) * 1000)))
            } else if let interval, emitted > 0 {
                try await context.clock.sleep(for: interval)
            }
            emitted += 1
            try await emitter.emit(Event(id: String(emitted), data: payload))
        }
    }
}
