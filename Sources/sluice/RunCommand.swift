import ArgumentParser
import Foundation
import SluiceConfig
import SluiceCore
import SluiceEngine
import SluiceTasks

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a flow; print each run's leaf results as JSON on stdout and events on stderr."
    )

    @Argument(help: "The flow file (YAML, JSON, or FlowEngine workflow JSON).")
    var flow: String

    @Option(name: .long, help: "Input of an on-demand flow: JSON text, or @file to read it from a file.")
    var input: String?

    @Option(name: .long, help: "How to print events on stderr: human or json.")
    var events: EventFormat = .human

    @Flag(name: .long, help: "Print no events, only results (and errors).")
    var quiet = false

    enum EventFormat: String, ExpressibleByArgument, CaseIterable { case human, json }

    func run() async throws {
        let definition: FlowDefinition
        do {
            definition = try makeLoader().load(path: flow)
        } catch {
            printErrors(error)
            throw ExitCode(ExitStatus.invalidInput)
        }
        for warning in definition.warnings where !quiet { Console.error("warning: \(warning)") }

        var inputValue: Value?
        if let input {
            var text = input
            if input.hasPrefix("@") {
                let path = String(input.dropFirst())
                guard let contents = try? String(contentsOfFile: path, encoding: .utf8) else {
                    Console.error("--input: cannot read \(path)")
                    throw ExitCode(ExitStatus.invalidInput)
                }
                text = contents
            }
            do {
                inputValue = try Value.parseJSON(text)
            } catch {
                Console.error("--input: invalid JSON at \(error.line):\(error.column): \(error.message)")
                throw ExitCode(ExitStatus.invalidInput)
            }
        }

        var sinks: [any EngineEventSink] = []
        if !quiet {
            sinks.append(events == .json ? JSONEventPrinter() as any EngineEventSink : HumanEventPrinter(color: Console.stderrIsTerminal))
        }
        let engine = Engine(registry: BuiltinTasks.registry, sinks: sinks)
        let plan: FlowPlan
        do {
            plan = try engine.prepare(definition)
        } catch {
            printErrors(error)
            throw ExitCode(ExitStatus.invalidInput)
        }

        let pretty = Console.stdoutIsTerminal
        let work = Task {
            await engine.run(plan, input: inputValue.map { Event(data: $0) }) { report in
                guard report.status == .completed else { return }
                // In a stream, a run that reached no leaf (filtered out, or absorbed into a
                // buffer's batch) has nothing to print; a workflow always prints its result.
                if plan.isStream && report.results.isEmpty { return }
                Console.output(report.resultValue.jsonString(pretty ? .prettyPrinted : .compact))
            }
        }
        let interrupts = InterruptHandler { work.cancel() }
        let summary = await work.value
        interrupts.stop()

        if summary.interrupted {
            let tasks = summary.interruptedTasks
            Console.error("interrupted" + (tasks.isEmpty ? "" : "; tasks stopped: \(tasks.joined(separator: ", "))"))
            throw ExitCode(ExitStatus.interrupted)
        }
        if summary.runsFailed > 0 || summary.runsCancelled > 0 { throw ExitCode(ExitStatus.runFailed) }
    }
}

/// Turns the first Ctrl-C into cancellation of the run, and a second one into an immediate exit.
final class InterruptHandler: @unchecked Sendable {
    // Touched only on the handler's queue.
    private var sources: [DispatchSourceSignal] = []
    private var count = 0
    private let queue = DispatchQueue(label: "sluice.signals")

    init(onInterrupt: @escaping @Sendable () -> Void) {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            source.setEventHandler { [unowned self] in
                count += 1
                if count == 1 {
                    Console.error("stopping (press Ctrl-C again to exit at once)")
                    onInterrupt()
                } else {
                    BuiltinTasks.killChildProcesses()
                    exit(ExitStatus.interrupted)
                }
            }
            source.resume()
            sources.append(source)
        }
    }

    func stop() {
        queue.sync {
            for s in sources { s.cancel() }
            sources.removeAll()
        }
    }
}
