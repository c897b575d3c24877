import ArgumentParser
import Foundation
import Logging
import SluiceCore
import SluiceEngine

extension RunCommand {
    /// Runs a flow with `schedule:` until SIGINT/SIGTERM: while this process leads the
    /// schedule, each tick starts a durable run with trigger `schedule` (or queues it for a
    /// worker with --queue) and prints one line.
    func runScheduled(_ definition: FlowDefinition, schedule: ScheduleSpec, sinks: [any EngineEventSink]) async throws {
        let source = try flowSource()
        let status = try await storeOptions.using(besides: flow) { opened in
            try await startSchedule(definition, schedule, source: source, runner: try storeOptions.runner(opened, sinks: sinks))
        }
        if status != ExitStatus.success { throw ExitCode(status) }
    }

    private func startSchedule(_ definition: FlowDefinition, _ schedule: ScheduleSpec, source: String, runner: DurableRunner) async throws -> Int32 {
        guard let plan = prepared(definition, runner.prepare) else { return ExitStatus.invalidInput }
        var logger = Logger(label: "sluice.scheduler") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = quiet ? .warning : .info
        let name = plan.definition.name
        let queue = self.queue
        let scheduler = try Scheduler(schedule: schedule, flow: name, store: runner.store, holder: runner.options.worker,
                                      leaseTTL: runner.options.claimTTL, logger: logger) { tick in
            // Firing a tick twice (a crash between claim and run) finds this run instead of starting another.
            let key = Scheduler.claimKey(schedule: name, tick: tick.time)
            let id: String, status: String
            if queue {
                id = try await runner.enqueue(plan, source: source, input: tick.input, trigger: "schedule", idempotencyKey: key).id
                status = "queued"
            } else {
                let outcome = try await runner.start(plan, source: source, input: tick.input, trigger: "schedule", idempotencyKey: key)
                id = outcome.record.id
                status = outcome.ending == .interrupted ? "interrupted" : outcome.record.status.rawValue
            }
            Console.output("\(ScheduledTick.iso8601(tick.time))\(tick.isCatchUp ? " (catch-up)" : "")"
                           + "\(tick.partition.map { " partition \($0)" } ?? ""): run \(id) \(status)")
        }
        if !quiet { Console.error("schedule of flow '\(name)': waiting to lead it (stop with Ctrl-C)") }
        let work = Task {
            // Runs of this flow that a crashed process left behind go first.
            for outcome in (try? await runner.resumeOrphans(flow: name)) ?? [] {
                Console.error("resumed interrupted run \(outcome.record.id): \(outcome.record.status)")
            }
            await scheduler.run()
        }
        let interrupts = InterruptHandler { work.cancel() }
        await work.value
        interrupts.stop()
        return ExitStatus.success
    }
}
