import SluiceCore
import SluiceEngine

/// Task types built from closures, for engine tests.
public enum ClosureTask {
    struct Processor: TaskProcessor {
        let body: @Sendable (Event, TaskContext) async throws -> TaskOutput
        func process(_ event: Event, _ context: TaskContext) async throws -> TaskOutput { try await body(event, context) }
    }

    struct Source: TaskSource {
        let body: @Sendable (SourceEmitter, TaskContext) async throws -> Void
        func run(_ emitter: SourceEmitter, _ context: TaskContext) async throws { try await body(emitter, context) }
    }

    /// A processor type named `name` that accepts any fields.
    public static func processor(_ name: String, fields: [FieldSpec] = [],
                                 _ body: @escaping @Sendable (Event, TaskContext) async throws -> TaskOutput) -> TaskRegistration {
        .processor(TaskSpec(name: name, summary: "test task", fields: fields)) { _ in Processor(body: body) }
    }

    /// A source type named `name`.
    public static func source(_ name: String, fields: [FieldSpec] = [],
                              _ body: @escaping @Sendable (SourceEmitter, TaskContext) async throws -> Void) -> TaskRegistration {
        .source(TaskSpec(name: name, summary: "test source", kind: .source, fields: fields)) { _ in Source(body: body) }
    }
}
