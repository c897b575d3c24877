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

    @Option(name: .long, help: "A second run with this key (within 24 h) returns the first run's result instead of running again.")
    var idempotencyKey: String?

    @Flag(name: .long, help: "Record the run for a `sluice worker` to execute, print its id and return.")
    var queue = false

    @Option(name: .long, help: "With --queue: how many runs to queue.")
    var count = 1

    @OptionGroup var storeOptions: StoreOptions

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
        if let schedule = definition.settings.schedule {
            guard inputValue == nil, idempotencyKey == nil else {
                throw ValidationError("--input and --idempotency-key do not apply to a scheduled flow; each tick's run gets the schedule's input")
            }
            return try await runScheduled(definition, schedule: schedule, sinks: sinks)
        }
        // A workflow is recorded in the store and resumable; a stream relies on its source
        // (at-least-once delivery) and runs in memory.
        let isStream = definition.tasks.contains { BuiltinTasks.registry.registration(for: $0.type)?.spec.kind == .source }
        if isStream || storeOptions.isMemory {
            if queue { throw ValidationError("--queue needs a durable store and a flow without a source") }
            let engine = Engine(registry: BuiltinTasks.registry, sinks: sinks)
            let input = inputValue
            let status = try await storeOptions.using(besides: flow) { opened in
                var engine = engine
                if storeOptions.isMemory {
                    // Nothing is kept, but table assets with a url still reach their database.
                    engine.assets.setTableManager(opened.tables.manager)
                    return try await runStream(definition, engine: engine, store: nil, input: input)
                }
                // A stream is not checkpointed, but its scripts' ctx.cache, its schedules'
                // state and its leader lease live in the store.
                storeOptions.attachCaches(opened, to: &engine)
                return try await runStream(definition, engine: engine, store: opened.store, input: input)
            }
            if status != ExitStatus.success { throw ExitCode(status) }
        } else {
            try await runDurably(definition, input: inputValue, sinks: sinks)
        }
    }

    private func runStream(_ definition: FlowDefinition, engine: Engine, store: (any Store)?, input: Value?) async throws -> Int32 {
        guard let plan = prepared(definition, engine.prepare) else { return ExitStatus.invalidInput }
        guard definition.settings.requireLeaderElection else { return await runInMemory(engine, plan, input: input) }
        guard let store else {
            Console.error("error: require_leader_election needs a store shared by the processes (--store PATH or postgres://...)")
            return ExitStatus.invalidInput
        }
        return try await runAsLeader(definition.name, store: store) { await runInMemory(engine, plan, input: input) }
    }

    /// Runs `body` only while this process holds the flow's leader lease in the store; waits
    /// for it first, and starts again if it is lost. Ctrl-C stops the wait too.
    private func runAsLeader(_ flowName: String, store: any Store, _ body: @escaping @Sendable () async -> Int32) async throws -> Int32 {
        let options = try storeOptions.runnerOptions()
        let leadership = Leadership(store: store, name: "flow:" + flowName, holder: options.worker, ttl: options.claimTTL)
        let quiet = self.quiet
        let work = Task {
            await leadership.run(onChange: { leading, lease in
                guard !quiet else { return }
                Console.error(leading ? "leading flow '\(flowName)' (lease generation \(lease?.generation ?? 0))"
                                      : "lost the lead of flow '\(flowName)'; waiting to take it again")
            }, body)
        }
        if !quiet { Console.error("waiting to lead flow '\(flowName)' (require_leader_election)") }
        let interrupts = InterruptHandler { work.cancel() }
        let status = await work.value
        interrupts.stop()
        return status ?? ExitStatus.interrupted
    }

    private func runInMemory(_ engine: Engine, _ plan: FlowPlan, input: Value?) async -> Int32 {
        let pretty = Console.stdoutIsTerminal
        let work = Task {
            await engine.run(plan, input: input.map { Event(data: $0) }) { report in
                guard report.status == .completed else { return }
                // In a stream, a run that reached no leaf (filtered out, or absorbed into a
                // buffer's batch) has nothing to print; a workflow always prints its result.
                if plan.isStream && report.results.isEmpty { return }
                Console.output(report.resultValue.jsonString(pretty ? .prettyPrinted : .compact))
            }
        }
        let summary = await withTaskCancellationHandler {
            let interrupts = InterruptHandler { work.cancel() }
            defer { interrupts.stop() }
            return await work.value
        } onCancel: {
            work.cancel()
        }
        if summary.interrupted {
            Console.error(interruptedMessage(summary.interruptedTasks))
            return ExitStatus.interrupted
        }
        return summary.runsFailed > 0 || summary.runsCancelled > 0 ? ExitStatus.runFailed : ExitStatus.success
    }

    private func runDurably(_ definition: FlowDefinition, input: Value?, sinks: [any EngineEventSink]) async throws {
        guard count >= 1 else { throw ValidationError("--count must be at least 1") }
        let source = try flowSource()
        let status = try await storeOptions.using(besides: flow) { opened in
            try await execute(definition, source: source, input: input ?? .emptyObject, runner: try storeOptions.runner(opened, sinks: sinks))
        }
        if status != ExitStatus.success { throw ExitCode(status) }
    }

    /// The flow file's text, stored with each durable run.
    func flowSource() throws -> String {
        do {
            return try String(contentsOfFile: flow, encoding: .utf8)
        } catch {
            Console.error("error: cannot read \(flow): \(error.localizedDescription)")
            throw ExitCode(ExitStatus.invalidInput)
        }
    }

    private func execute(_ definition: FlowDefinition, source: String, input: Value, runner: DurableRunner) async throws -> Int32 {
        guard let plan = prepared(definition, runner.prepare) else { return ExitStatus.invalidInput }
        if queue {
            for _ in 0..<count {
                let record = try await runner.enqueue(plan, source: source, input: input, idempotencyKey: idempotencyKey)
                Console.output(record.id)
            }
            return ExitStatus.success
        }
        let work = Task {
            // Runs of this flow that a crashed process left behind go first.
            for outcome in try await runner.resumeOrphans(flow: plan.definition.name) {
                Console.error("resumed interrupted run \(outcome.record.id): \(outcome.record.status)")
            }
            return try await runner.start(plan, source: source, input: input, trigger: "cli", idempotencyKey: idempotencyKey)
        }
        let interrupts = InterruptHandler { work.cancel() }
        defer { interrupts.stop() }
        let outcome: DurableRunner.Outcome
        do {
            outcome = try await work.value
        } catch {
            Console.error("error: \(error)")
            return ExitStatus.runFailed
        }
        return report(outcome)
    }
}

/// "interrupted", with the tasks that were stopped.
func interruptedMessage(_ tasks: [String]) -> String {
    "interrupted" + (tasks.isEmpty ? "" : "; tasks stopped: \(tasks.joined(separator: ", "))")
}

/// Prints how a durable run ended here (its result on stdout, the rest on stderr) and answers
/// the exit status.
func report(_ outcome: DurableRunner.Outcome) -> Int32 {
    let id = outcome.record.id
    switch outcome.ending {
    case .interrupted:
        Console.error(interruptedMessage(outcome.summary?.interruptedTasks ?? []) + "; resume with: sluice runs resume \(id)")
        return ExitStatus.interrupted
    case .lost(let why):
        Console.error("error: run \(id) stopped here: \(why)")
        return ExitStatus.runFailed
    case .reused:
        Console.error("run \(id) already has idempotency key '\(outcome.record.idempotencyKey ?? "")' (\(outcome.record.status)); "
                      + "not started again")
    case .finished:
        break
    }
    if let result = outcome.result { Console.output(result.jsonString(Console.stdoutIsTerminal ? .prettyPrinted : .compact)) }
    if outcome.record.status.isWaiting {
        Console.error("run \(id) is \(outcome.record.status): \(outcome.record.error ?? "")")
        return ExitStatus.success
    }
    switch outcome.record.status {
    case .completed, .running, .queued: return ExitStatus.success
    default: return ExitStatus.runFailed
    }
}

/// Turns the first Ctrl-C (or SIGTERM) into cancellation of what registered, and a second one
/// into an immediate exit. Handlers nest (a leader's wait and the run inside it): the signals
/// are taken over once per process, since setting a disposition again would undo the first.
final class InterruptHandler: Sendable {
    private struct Center {
        var sources: [DispatchSourceSignal] = []
        var handlers: [ObjectIdentifier: @Sendable () -> Void] = [:]
        var count = 0
    }

    private static let queue = DispatchQueue(label: "sluice.signals")
    // Touched only on `queue`.
    nonisolated(unsafe) private static var center = Center()

    init(onInterrupt: @escaping @Sendable () -> Void) {
        let id = ObjectIdentifier(self)
        Self.queue.sync {
            if Self.center.sources.isEmpty { Self.install() }
            Self.center.handlers[id] = onInterrupt
        }
    }

    private static func install() {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            source.setEventHandler {
                center.count += 1
                if center.count == 1 {
                    Console.error("stopping (press Ctrl-C again to exit at once)")
                    for handler in center.handlers.values { handler() }
                } else {
                    BuiltinTasks.killChildProcesses()
                    exit(ExitStatus.interrupted)
                }
            }
            source.resume()
            center.sources.append(source)
        }
    }

    func stop() {
        let id = ObjectIdentifier(self)
        Self.queue.sync { _ = Self.center.handlers.removeValue(forKey: id) }
    }
}
