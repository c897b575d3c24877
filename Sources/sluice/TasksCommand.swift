import ArgumentParser
import Foundation
import SluiceCore
import SluiceEngine
import SluiceTasks

struct TasksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tasks",
        abstract: "List the task types, or describe one."
    )

    @Argument(help: "A task type (or alias) to describe.")
    var type: String?

    @Flag(name: .long, help: "Print JSON: a list of {name, aliases, summary, kind, fields, inputs, outputs}.")
    var json = false

    @Flag(name: .long, help: "Print Markdown reference docs.")
    var markdown = false

    func run() async throws {
        let catalog = BuiltinTasks.registry.catalog
        var specs = catalog.specs
        if let type {
            guard let (spec, _) = catalog.resolve(type) else {
                let hint = Suggestion.closest(to: type, in: catalog.allNames).map { " (did you mean '\($0)'?)" } ?? ""
                Console.error("unknown task type '\(type)'\(hint)")
                throw ExitCode(ExitStatus.invalidInput)
            }
            specs = [spec]
        }
        if json {
            Console.output(Value.array(specs.map(TaskDocs.json)).jsonString(.prettyPrinted))
        } else if markdown {
            Console.output(TaskDocs.markdown(specs, table: type == nil))
        } else if type != nil {
            Console.output(TaskDocs.text(specs[0]))
        } else {
            let width = specs.map(\.name.count).max() ?? 0
            for spec in specs {
                let aliases = spec.aliases.isEmpty ? "" : " (also: \(spec.aliases.map(\.name).joined(separator: ", ")))"
                Console.output(spec.name.padding(toLength: width + 2, withPad: " ", startingAt: 0) + spec.summary + aliases)
            }
        }
    }
}

/// Task reference docs generated from the specs, so they cannot drift from the code.
enum TaskDocs {
    static func json(_ spec: TaskSpec) -> Value { spec.json }

    static func text(_ spec: TaskSpec) -> String {
        var out = "\(spec.name) — \(spec.summary)\n"
        if !spec.aliases.isEmpty { out += "aliases: \(spec.aliases.map(\.name).joined(separator: ", "))\n" }
        out += "kind: \(spec.kind)\n\nfields:\n"
        for f in spec.fields {
            var line = "  \(f.name): \(f.type)"
            if f.required { line += " (required)" }
            if let d = f.defaultValue { line += " = \(d.jsonString())" }
            out += line + "\n      \(f.summary)\n"
        }
        if !spec.outputs.isEmpty { out += "\noutputs: \(spec.outputs.map(\.name).joined(separator: ", "))\n" }
        for example in spec.examples { out += "\nexample: \(example.title)\n\(example.yaml)\n" }
        return out
    }

    static func markdown(_ specs: [TaskSpec], table: Bool) -> String {
        var out = ""
        if table {
            out += "| task | kind | what it does |\n|---|---|---|\n"
            for s in specs {
                let aliases = s.aliases.isEmpty ? "" : " (`\(s.aliases.map(\.name).joined(separator: "`, `"))`)"
                out += "| `\(s.name)`\(aliases) | \(s.kind) | \(s.summary.replacingOccurrences(of: "|", with: "\\|")) |\n"
            }
            return out
        }
        for s in specs {
            out += "## `\(s.name)`\n\n\(s.summary)\n\n| field | type | default | |\n|---|---|---|---|\n"
            for f in s.fields {
                out += "| `\(f.name)`\(f.required ? " (required)" : "") | \(f.type.description.replacingOccurrences(of: "|", with: "\\|")) | \(f.defaultValue.map { "`\($0.jsonString())`" } ?? "") | \(f.summary) |\n"
            }
            out += "\n"
        }
        return out
    }
}
