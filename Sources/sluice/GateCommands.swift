import ArgumentParser
import Foundation
import SluiceCore
import SluiceEngine

/// Decides an approval gate, then resumes the run here (or leaves it queued for a worker).
struct GateDecision: ParsableArguments {
    @Argument(help: "The waiting run's id.")
    var run: String

    @Option(name: .long, help: "The gate's task, when the run waits at several: NAME, or NAME@i for item i of a scatter.")
    var task: String?

    @Flag(name: .long, help: "Only queue the run again; a `sluice worker` resumes it.")
    var noWait = false

    @OptionGroup var storeOptions: StoreOptions

    func decide(approve: Bool, comment: String?) async throws {
        let status = try await storeOptions.using(besides: nil) { opened -> Int32 in
            let store = opened.store
            let runner = try storeOptions.runner(opened, sinks: [HumanEventPrinter(color: Console.stderrIsTerminal)])
            do {
                try await Gates(store: store).decide(run: run, task: task, approve: approve, actor: currentActor(), comment: comment)
            } catch let error as GateError {
                Console.error("error: \(error)")
                return ExitStatus.invalidInput
            }
            Console.error("run \(run) \(approve ? "approved" : "rejected") by \(currentActor())")
            return try await resumeAfterGate(run, runner: runner, queueOnly: noWait)
        }
        if status != ExitStatus.success { throw ExitCode(status) }
    }
}

/// Resumes a run whose gate was passed, unless another process takes it first.
func resumeAfterGate(_ runID: String, runner: DurableRunner, queueOnly: Bool) async throws -> Int32 {
    if queueOnly {
        Console.error("run \(runID) is queued; a worker resumes it")
        return ExitStatus.success
    }
    let work = Task { try await runner.resume(runID: runID) }
    let interrupts = InterruptHandler { work.cancel() }
    defer { interrupts.stop() }
    do {
        return report(try await work.value)
    } catch let error as DurableError {
        Console.error("run \(runID): \(error)")
        return ExitStatus.success
    }
}

struct ApproveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "approve",
                                                    abstract: "Approve a run waiting at an approval gate, and resume it.")
    @OptionGroup var gate: GateDecision
    @Option(name: .long, help: "Why (kept in the audit log).")
    var comment: String?

    func run() async throws { try await gate.decide(approve: true, comment: comment) }
}

struct RejectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "reject",
                                                    abstract: "Reject a run waiting at an approval gate: the gate task fails.")
    @OptionGroup var gate: GateDecision
    @Option(name: .long, help: "Why (required; kept in the audit log and the run's error).")
    var reason: String

    func run() async throws { try await gate.decide(approve: false, comment: reason) }
}

struct SignalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "signal",
                                                    abstract: "Deliver a signal to the gate waiting for TOKEN, and resume its run.")

    @Argument(help: "The gate's token.")
    var token: String

    @Option(name: .long, help: "JSON that becomes the gate task's output (default null).")
    var payload: String?

    @Flag(name: .long, help: "Only queue the run again; a `sluice worker` resumes it.")
    var noWait = false

    @OptionGroup var storeOptions: StoreOptions

    func run() async throws {
        var value = Value.null
        if let payload {
            do {
                value = try Value.parseJSON(payload)
            } catch {
                Console.error("--payload: invalid JSON at \(error.line):\(error.column): \(error.message)")
                throw ExitCode(ExitStatus.invalidInput)
            }
        }
        let status = try await storeOptions.using(besides: nil) { opened -> Int32 in
            let store = opened.store
            let runner = try storeOptions.runner(opened, sinks: [HumanEventPrinter(color: Console.stderrIsTerminal)])
            let gate: Value
            do {
                gate = try await Gates(store: store).signal(token: token, payload: value, actor: currentActor())
            } catch let error as GateError {
                Console.error("error: \(error)")
                return ExitStatus.invalidInput
            }
            let runID = gate["run"]?.stringValue ?? ""
            Console.error("signalled run \(runID)")
            return try await resumeAfterGate(runID, runner: runner, queueOnly: noWait)
        }
        if status != ExitStatus.success { throw ExitCode(status) }
    }
}
