import SluiceCore
import SluiceEngine

/// Converts between JSON text and structured data.
struct ConvertTask: TaskProcessor {
    static let spec = TaskSpec(
        name: "convert",
        aliases: [
            TaskAlias("transform.json_parse", defaults: ["target_format": "json"]),
            TaskAlias("transform.json_stringify", defaults: ["target_format": "string"]),
        ],
        summary: "Parses JSON text into data (`target_format: json`) or writes data as JSON text (`string`).",
        fields: [
            FieldSpec("target_format", .oneOf(["json", "string"]), required: true,
                      summary: "json: parse a JSON string into data; string: serialize the data as JSON text."),
            FieldSpec("pretty", .bool, default: false, summary: "Indent the JSON text (target_format: string)."),
            FieldSpec("value", .any, templated: true, summary: "What to convert (default: the event data)."),
        ],
        inputs: [PortSpec("json", "JSON text to parse (FlowEngine)."), PortSpec("value", "Data to serialize (FlowEngine).")],
        examples: [
            TaskExample("Parse a JSON string field", yaml: """
                flow:
                  name: parse
                  tasks:
                    - generate:
                        name: raw
                        payload: {body: '{"n": 1}'}
                    - convert:
                        name: decode
                        target_format: json
                        value: "{{event.data.body}}"
                """),
        ]
    )

    static let registration = TaskRegistration.processor(spec) { _ in ConvertTask() }

    func process(_ event: Event, _ context: TaskContext) async throws -> TaskOutput {
        let input = context.value("value", in: event) ?? context.value("json", in: event) ?? event.data
        switch try context.config.string("target_format") {
        case "json":
            guard case .string(let text) = input else { return .event(event.with(data: input)) }
            do {
                return .event(event.with(data: try Value.parseJSON(text)))
            } catch {
                throw TaskError.invalidInput("input is not valid JSON: \(error)")
            }
        default:
            let pretty = try context.config.bool("pretty") ?? false
            return .event(event.with(data: .string(input.jsonString(pretty ? .prettyPrinted : .compact))))
        }
    }
}
