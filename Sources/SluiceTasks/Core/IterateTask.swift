import SluiceCore
import SluiceEngine

/// Splits an event holding an array into one event per element.
struct IterateTask: TaskProcessor {
    static let spec = TaskSpec(
        name: "iterate",
        summary: "Splits an array into one event per element (a scatter); the elements flow on independently.",
        fields: [
            FieldSpec("iterate_key", .string, aliases: ["key"], summary: "Dotted path of the array in the data (default: the data itself)."),
        ],
        examples: [
            TaskExample("One event per order", yaml: """
                flow:
                  name: split
                  tasks:
                    - generate:
                        name: batch
                        payload: {orders: [{id: 1}, {id: 2}]}
                    - iterate:
                        name: each
                        iterate_key: orders
                    - log:
                        name: show
                """),
        ]
    )

    static let registration = TaskRegistration.processor(spec) { _ in IterateTask() }

    func process(_ event: Event, _ context: TaskContext) async throws -> TaskOutput {
        let key = try context.config.string("iterate_key")
        let target = key.map { event.data.lookup(path: $0) } ?? event.data
        guard case .array(let elements)? = target else {
            let found = target.map { "\($0.typeName)" } ?? "nothing"
            throw TaskError.invalidInput(key.map { "'\($0)' must be an array, found \(found)" } ?? "the event data must be an array, found \(found)")
        }
        return .events(elements.map { event.with(data: $0) })
    }
}
