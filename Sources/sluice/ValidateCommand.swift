import ArgumentParser
import Foundation
import SluiceConfig
import SluiceCore
import SluiceEngine
import SluiceTasks

struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check flow files (or every flow file in folders) without running them; exit 2 on any error."
    )

    @Argument(help: "Flow files or folders.")
    var paths: [String]

    @Flag(name: .long, help: "Print only errors.")
    var quiet = false

    func run() async throws {
        let loader = makeLoader()
        let engine = Engine(registry: BuiltinTasks.registry)
        var failed = 0
        var checked = 0
        for path in paths {
            for file in FlowLoader.flowFiles(at: path) {
                checked += 1
                do {
                    let definition = try loader.load(path: file)
                    _ = try engine.prepare(definition)
                    if !quiet {
                        for warning in definition.warnings { Console.error("warning: \(warning)") }
                        Console.output("\(file): ok (\(definition.tasks.count) task\(definition.tasks.count == 1 ? "" : "s"))")
                    }
                } catch {
                    failed += 1
                    printErrors(error)
                }
            }
        }
        if checked == 0 {
            Console.error("no flow files found in \(paths.joined(separator: ", "))")
            throw ExitCode(ExitStatus.invalidInput)
        }
        if failed > 0 { throw ExitCode(ExitStatus.invalidInput) }
    }
}
