import Foundation
import SluiceCore

extension DurableRunner {
    /// How a request to materialize an asset partition ended.
    public enum Materialized: Sendable {
        /// Nothing to do: the partition is up to date (`force` recomputes it).
        case upToDate(PartitionStatus)
        /// A run computed what the plan says.
        case ran(Outcome, AssetRunPlan)
    }

    /// Works out what materializing `partition` of `asset` (a task name or an asset key) takes.
    public func planMaterialization(_ plan: FlowPlan, asset: String, partition: String, force: Bool = false,
                                    withUpstream: Bool = false) async throws -> AssetRunPlan {
        guard let task = plan.assetGraph.task(for: asset) else {
            let known = plan.assetGraph.assets.values.map(\.key).sorted()
            throw AssetError("flow '\(plan.definition.name)' has no asset '\(asset)'"
                             + (known.isEmpty ? " (it has no assets)" : " (its assets: \(known.joined(separator: ", ")))"))
        }
        var planner = AssetPlanner(graph: plan.assetGraph, store: store, now: engine.clock.now())
        return try await planner.plan(target: task, partition: partition, force: force, withUpstream: withUpstream)
    }

    /// Materializes one partition of an asset in a durable run: upstream partitions that are
    /// missing, failed or stale are computed first, each once; the others are loaded.
    public func materialize(_ plan: FlowPlan, source: String, asset: String, partition: String, force: Bool = false,
                            withUpstream: Bool = false, trigger: String = "cli", idempotencyKey: String? = nil) async throws -> Materialized {
        let runPlan = try await planMaterialization(plan, asset: asset, partition: partition, force: force, withUpstream: withUpstream)
        if runPlan.computeCount == 0 {
            var planner = AssetPlanner(graph: plan.assetGraph, store: store, now: engine.clock.now())
            return .upToDate(try await planner.status(of: runPlan.target, partition: partition))
        }
        let outcome = try await start(plan, source: source, input: Self.materializationInput(runPlan), trigger: trigger,
                                      idempotencyKey: idempotencyKey)
        return .ran(outcome, runPlan)
    }

    /// A run's input that makes it carry out `plan`.
    public static func materializationInput(_ plan: AssetRunPlan) -> Value {
        [AssetRunPlan.inputKey: plan.value, "partition": .string(plan.partition)]
    }
}
