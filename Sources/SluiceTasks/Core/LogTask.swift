import SluiceCore
import SluiceEngine

/// Logs each event and passes it on unchanged.
struct LogTask: TaskProcessor {
    static let levels = ["trace", "debug", "info", "warn", "warning", "error"]

    static let spec = TaskSpec(
        name: "log",
        aliases: [TaskAlias("debug.log")],
        summary: "Logs each event (its data, or `message`) and passes it on unchanged.",
        fields: [
            FieldSpec("level", .oneOf(levels), default: "info", summary: "Log level."),
            FieldSpec("message", .any, templated: true, summary: "What to log; a template such as 'order {{event.data.id}}'. Default: the event data."),
            FieldSpec("include_meta", .bool, default: false, summary: "Also log the event's meta."),
        ],
        inputs: [PortSpec("message", "What to log (FlowEngine debug.log).")],
        outputs: [PortSpec("message", "The input, passed through.")],
        examples: [
            TaskExample("Log a field of each event", yaml: """
                flow:
                  name: logging
                  tasks:
                    - generate:
                        name: tick
                        payload: {id: 7}
                    - log:
                        name: show
                        level: warn
                        message: "order {{event.data.id}} arrived"
                """),
        ]
    )

    static let registration = TaskRegistration.processor(spec) { _ in LogTask() }

    func process(_ event: Event, _ context: TaskContext) async throws -> TaskOutput {
        let level = (try context.config.string("level")) ?? "info"
        var text = context.value("message", in: event)?.textValue ?? event.data.jsonString()
        if try context.config.bool("include_meta") == true { text += " meta=" + Value.object(event.meta).jsonString() }
        context.log(text, level: level == "warning" ? "warn" : level)
        return .event(event)
    }
}
