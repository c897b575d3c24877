import SluiceCore
import SluiceEngine

/// Waits, then passes the event on unchanged.
struct DelayTask: TaskProcessor {
    static let spec = TaskSpec(
        name: "delay",
        aliases: [TaskAlias("time.delay")],
        summary: "Waits for `duration`, then passes the event on unchanged.",
        fields: [
            FieldSpec("duration", .duration, templated: true, aliases: ["delay"], summary: "How long to wait (default 1s)."),
            FieldSpec("delay_ms", .integer, templated: true, summary: "How long to wait, in milliseconds (FlowEngine's time.delay)."),
        ],
        examples: [
            TaskExample("Pause between two steps", yaml: """
                flow:
                  name: pause
                  tasks:
                    - log:
                        name: before
                    - delay:
                        name: wait
                        duration: 250ms
                    - log:
                        name: after
                """),
        ]
    )

    static let registration = TaskRegistration.processor(spec) { _ in DelayTask() }

    func process(_ event: Event, _ context: TaskContext) async throws -> TaskOutput {
        let wait: Duration
        if let d = try context.config.duration("duration") {
            wait = d
        } else if let ms = try context.config.int("delay_ms") {
            guard ms >= 0 else { throw TaskError.invalidConfig("'delay_ms' must not be negative") }
            wait = .milliseconds(ms)
        } else {
            wait = .seconds(1)
        }
        try await context.clock.sleep(for: wait)
        return .event(event)
    }
}
