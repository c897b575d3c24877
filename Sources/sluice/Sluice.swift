import ArgumentParser
import Foundation
import SluiceConfig
import SluiceCore
import SluiceEngine
import SluiceTasks

@main
struct Sluice: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "sluice",
        abstract: "Streams, workflows and assets in one engine.",
        discussion: """
            Exit codes: 0 success, 1 a run failed, 2 invalid input (flow file, --input, arguments), 130 interrupted.
            """,
        version: version,
        subcommands: [RunCommand.self, ServeCommand.self, RunsCommand.self, WorkerCommand.self, MaterializeCommand.self, BackfillCommand.self, AssetsCommand.self,
                      LineageCommand.self, ApproveCommand.self, RejectCommand.self, SignalCommand.self, ValidateCommand.self, TasksCommand.self, InitCommand.self, ScriptCommand.self]
    )
}

/// Exits with a documented code.
struct ExitStatus {
    static let success: Int32 = 0
    static let runFailed: Int32 = 1
    static let invalidInput: Int32 = 2
    static let interrupted: Int32 = 130
}

/// Writes to standard error without buffering surprises.
enum Console {
    static let lock = NSLock()

    static func error(_ text: String) {
        lock.lock()
        FileHandle.standardError.write(Data((text + "\n").utf8))
        lock.unlock()
    }

    static func output(_ text: String) {
        lock.lock()
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
        lock.unlock()
    }

    static var stderrIsTerminal: Bool { isatty(STDERR_FILENO) == 1 }
    static var stdoutIsTerminal: Bool { isatty(STDOUT_FILENO) == 1 }
}

func makeLoader() -> FlowLoader { FlowLoader(catalog: BuiltinTasks.registry.catalog) }

func printErrors(_ errors: FlowErrors) {
    for e in errors.errors { Console.error("\(e)") }
}

/// A flow's plan, or nil once its problems are printed (the caller exits with invalid input).
func prepared(_ definition: FlowDefinition, _ prepare: (FlowDefinition) throws(FlowErrors) -> FlowPlan) -> FlowPlan? {
    do {
        return try prepare(definition)
    } catch {
        printErrors(error)
        return nil
    }
}
