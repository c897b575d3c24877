import Foundation
import Logging
import SluiceCore

extension DurableRunner {
    /// Queues what a tick of an asset's schedule asks for: a materialization of the tick's
    /// partition (none for an unpartitioned asset), planned as `materialize` plans it, with the
    /// tick's input beside the plan. The tick's claim key is the run's idempotency key, so a
    /// tick fired twice queues one run. No run when the partition is up to date.
    public func queueScheduledMaterialization(_ plan: FlowPlan, source: String, asset task: String, schedule: String,
                                              tick: ScheduledTick) async throws -> (run: RunRecord?, plan: AssetRunPlan) {
        let runPlan = try await planMaterialization(plan, asset: task, partition: tick.partition ?? "")
        guard runPlan.computeCount > 0 else { return (nil, runPlan) }
        var input = tick.input.objectValue ?? [:]
        for (key, value) in Self.materializationInput(runPlan).objectValue ?? [:] { input[key] = value }
        let run = try await enqueue(plan, source: source, input: .object(input), trigger: "schedule",
                                    idempotencyKey: Scheduler.claimKey(schedule: schedule, tick: tick.time))
        return (run, runPlan)
    }
}

extension Scheduler {
    /// A scheduler per asset of `plan` with a schedule: each tick queues the materialization of
    /// the partition it names on `runner`'s store, for whichever worker claims it first; on the
    /// process leading that asset's schedule only (lease `schedule/<flow>@<asset>`, lasting
    /// `leaseTTL`, by default the runner's claim time).
    public static func assetSchedulers(of plan: FlowPlan, source: String, flow: String, runner: DurableRunner,
                                       clock: any EngineClock = SystemClock(), leaseTTL: Double? = nil, logger: Logger) throws -> [Scheduler] {
        try plan.definition.tasks.compactMap { task -> Scheduler? in
            guard let asset = task.asset, let schedule = asset.schedule else { return nil }
            let name = Scheduler.name(flow: flow, asset: asset.key)
            let tickLogger = {
                var l = logger
                l[metadataKey: "flow.name"] = .string(flow)
                l[metadataKey: "asset.key"] = .string(asset.key)
                return l
            }()
            return try Scheduler(schedule: schedule, flow: flow, asset: asset, store: runner.store, clock: clock, holder: runner.options.worker,
                                 leaseTTL: leaseTTL ?? runner.options.claimTTL, logger: logger) { tick in
                let (run, runPlan) = try await runner.queueScheduledMaterialization(plan, source: source, asset: task.name, schedule: name, tick: tick)
                var metadata: Logger.Metadata = ["schedule.tick": "\(ScheduledTick.iso8601(tick.time))", "partition.key": "\(runPlan.partition)"]
                if let run {
                    metadata["run.id"] = "\(run.id)"
                    metadata["asset.compute"] = "\(runPlan.computeCount)"
                    tickLogger.info("scheduled materialization queued", metadata: metadata)
                } else {
                    tickLogger.info("scheduled partition is up to date; nothing to materialize", metadata: metadata)
                }
            }
        }
    }
}
