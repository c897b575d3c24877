import ArgumentParser
import Foundation
import SluiceCore
import SluiceEngine

struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Execute queued runs from the store, and take over runs whose process stopped heartbeating.",
        discussion: """
            Start several workers on one PostgreSQL store to share the work (`sluice run --queue` queues runs). A worker \
            heartbeats each run it holds; when it dies, another takes the run over once the claim expires (--claim-ttl) \
            and resumes it from its checkpoints. Stops on SIGINT/SIGTERM, leaving its runs resumable at once.
            """
    )

    @Option(name: .long, help: "Runs executed at once by this worker.")
    var concurrency = 4

    @Flag(name: .long, help: "Print each task's events, not only each run's end.")
    var verbose = false

    @OptionGroup var storeOptions: StoreOptions

    func run() async throws {
        guard concurrency >= 1 else { throw ValidationError("--concurrency must be at least 1") }
        try await withStore(storeOptions) { opened in
            let printer = HumanEventPrinter(color: Console.stderrIsTerminal)
            let sink: any EngineEventSink = verbose ? printer : RunEndPrinter(printer: printer)
            let runner = try storeOptions.runner(opened, sinks: [sink])
            Console.error("worker \(runner.options.worker) on \(storeOptions.location(besides: nil)), \(concurrency) at a time")
            let work = Task { await runner.work(concurrency: concurrency) }
            let interrupts = InterruptHandler { work.cancel() }
            await work.value
            interrupts.stop()
        }
    }
}

/// Passes on only run-level events and errors: a worker's log without every task.
struct RunEndPrinter: EngineEventSink {
    let printer: HumanEventPrinter
    var wantsTaskEvents: Bool { false }
    func receive(_ event: EngineEvent) {
        if event.kind == .runCompleted || event.kind == .runFailed || event.kind == .runSuspended || event.kind == .log { printer.receive(event) }
    }
}
