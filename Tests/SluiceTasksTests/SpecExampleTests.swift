import SluiceConfig
import SluiceCore
import SluiceEngine
import SluiceTasks
import Testing

@Suite("Task specs")
struct SpecExampleTests {
    static let examples: [(String, String)] = BuiltinTasks.registry.specs.flatMap { spec in
        spec.examples.map { ("\(spec.name): \($0.title)", $0.yaml) }
    }

    @Test("Every example in every spec validates and prepares", arguments: examples)
    func exampleValidates(_ example: (String, String)) throws {
        let loader = FlowLoader(catalog: BuiltinTasks.registry.catalog)
        let flow = try loader.load(text: example.1, file: "\(example.0).yaml")
        _ = try Engine(registry: BuiltinTasks.registry).prepare(flow)
    }

    @Test("Every task type has a summary, documented fields and at least one example")
    func specsAreDocumented() {
        for spec in BuiltinTasks.registry.specs {
            #expect(!spec.summary.isEmpty, "\(spec.name)")
            #expect(!spec.examples.isEmpty, "\(spec.name) has no example")
            for field in spec.fields { #expect(!field.summary.isEmpty, "\(spec.name).\(field.name)") }
        }
    }
}
