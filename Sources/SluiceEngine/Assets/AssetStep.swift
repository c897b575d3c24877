import Foundation
import SluiceCore

/// One partition of an asset being computed: where its value goes and what its
/// materialization record says.
struct AssetWrite: Sendable {
    let spec: AssetSpec
    let partition: String
    let version: String
    let inputs: [Materialization.Input]
    let manager: any IOManager

    /// `cleaned [2025-01-15]`, for task events.
    var label: String { partition.isEmpty ? spec.key : "\(spec.key) [\(partition)]" }

    func write(_ output: TaskOutput) async throws -> Value {
        guard let value = output.assetValue else {
            throw TaskError.permanent("asset '\(spec.key)' produced no value (its task filtered the event out)")
        }
        do {
            return try await manager.write(value, asset: spec.key, partition: partition)
        } catch let error as AssetError {
            throw TaskError(error.description, retryable: true)
        }
    }

    func record(run: String, status: Materialization.Status, started: Date, ended: Date? = nil, summary: Value = .null,
                error: String? = nil) -> Materialization {
        Materialization(id: Materialization.id(run: run, asset: spec.key, partition: partition), asset: spec.key, partition: partition,
                        runID: run, status: status, started: started, ended: ended, version: version, summary: summary, error: error,
                        inputs: inputs)
    }
}

extension AssetRunPlan {
    /// The plan of a workflow run of a flow with assets: the one in its input (`sluice
    /// materialize`, `sluice backfill`), else every asset computed for the input's
    /// `partition` (a plain `sluice run`).
    static func of(_ plan: FlowPlan, input: Event?) -> AssetRunPlan? {
        guard !plan.assetGraph.isEmpty, plan.sources.isEmpty else { return nil }
        if let v = input?.data[inputKey], let planned = AssetRunPlan(value: v) { return planned }
        let partition = input?.data["partition"]?.stringValue ?? ""
        var all = AssetRunPlan(target: "", partition: partition)
        for task in plan.definition.tasks {
            if let spec = task.asset { all.compute[task.name] = [spec.partitions == nil ? "" : partition] } else { all.run.insert(task.name) }
        }
        return all
    }
}

extension Stage {
    /// An asset's part of a materialization run: loads the partitions downstream assets read,
    /// computes the planned ones (each attempt writes its value through the I/O manager and
    /// records a materialization with its lineage, in the checkpoint's transaction), and emits
    /// the value (an object by partition when there are several).
    func processAsset(_ envelope: Envelope, compute: [String], load: [String], processor: any TaskProcessor, config: Value.Object,
                      _ out: inout Outbox, _ execution: FlowExecution) async {
        guard let spec = definition.asset else {
            route(.event(envelope.event), from: envelope, &out, execution)
            return
        }
        let runtime = execution.plan.assets
        let graph = execution.plan.assetGraph
        let run = envelope.run
        var values: [(String, Value)] = []
        do {
            for p in compute { try graph.validate(p, of: name) }
            for p in load { values.append((p, try await runtime.read(task: name, asset: spec, partition: p))) }
        } catch {
            fail(envelope, TaskError.permanent("\(error)"), attempt: 1, &out, execution)
            return
        }
        for p in compute {
            var event = envelope.event
            let write: AssetWrite
            do {
                let (deps, inputs) = try await assetInputs(partition: p, envelope, runtime: runtime, graph: graph, execution)
                event.data = .object(deps)
                event.meta["asset"] = .string(spec.key)
                event.meta["partition"] = .string(p)
                if let windows = spec.partitions?.timeWindows, case .time = spec.partitions, let window = try? windows.window(of: p) {
                    event.meta["partition_start"] = .string(EngineEvent.iso8601(window.start))
                    event.meta["partition_end"] = .string(EngineEvent.iso8601(window.end))
                }
                write = AssetWrite(spec: spec, partition: p, version: graph.versions[name] ?? "", inputs: inputs,
                                   manager: try runtime.manager(for: spec))
            } catch {
                fail(envelope, TaskError.permanent("\(error)"), attempt: 1, &out, execution)
                return
            }
            let rendered = self.config.isDynamic ? self.config.render(execution.templateContext(for: event, run: run)) : config
            let key = AssetRuntime.checkpointKey(task: name, partition: p)
            let partitionEnvelope = Envelope(event: event, run: run, scatter: envelope.scatter)
            var claim: (claims: AssetClaims, entry: KVEntry, run: String)?
            if let durable = run.durable, durable.checkpointed(key) == nil, let assetRun = execution.assetRun, let planned = assetRun.planned,
               let claims = runtime.claims(clock: shared.clock) {
                // A partition other runs may be computing too (an upstream they share, or the
                // target of two materializations at once): one of them does; the others load it.
                do {
                    switch try await claims.take(asset: spec.key, partition: p, version: write.version, run: durable.id, planned: planned) {
                    case .compute(let entry):
                        claim = (claims, entry, durable.id)
                    case .computed(let m):
                        values.append((p, try await runtime.read(task: name, asset: spec, partition: p)))
                        shared.emit(.log, run: run, task: name, message: "\(write.label) was materialized by run \(m.runID) since this run "
                                    + "was planned: loaded, not computed again")
                        continue
                    }
                } catch {
                    if Task.isCancelled || error is CancellationError {
                        execution.noteInterrupted(name)
                        run.markCancelled()
                    } else {
                        fail(envelope, TaskError.permanent("\(error)"), attempt: 1, &out, execution)
                    }
                    return
                }
            }
            let computed: TaskOutput?
            if let claim {
                computed = await claim.claims.holding(claim.entry) {
                    await execute(processor, partitionEnvelope, key: key, config: rendered, asset: write, &out, execution)
                }
                // No value: the runs waiting on the claim fail with this run's failure, or take the claim over when it was stopped.
                var failure: String?
                if computed == nil {
                    let stopped = run.isCancelled || execution.stopReason(envelope.scatter) != nil
                    failure = run.failure ?? (stopped ? nil : "its task failed (on_error took over)")
                }
                await claim.claims.release(claim.entry, run: claim.run, failure: failure)
            } else {
                computed = await execute(processor, partitionEnvelope, key: key, config: rendered, asset: write, &out, execution)
            }
            guard let output = computed, let value = output.assetValue else { return }
            if write.manager is MemoryIOManager {
                // Taken from a checkpoint after a restart: this process's memory gets it back.
                _ = try? await write.manager.write(value, asset: spec.key, partition: p)
            }
            values.append((p, value))
        }
        var result = envelope.event
        if values.count == 1 {
            result.data = values[0].1
        } else {
            var byPartition = Value.Object()
            for (p, v) in values { byPartition[p] = v }
            result.data = .object(byPartition)
        }
        route(.event(result), from: envelope, &out, execution)
    }

    /// What partition `key` of this asset reads: each parent's value by parent name (an upstream
    /// asset's mapped partitions loaded through its I/O manager: one value, or an object by
    /// partition for a window or `all` mapping; a plain task's event data), and the upstream
    /// materializations that makes it read, for lineage.
    private func assetInputs(partition key: String, _ envelope: Envelope, runtime: AssetRuntime, graph: AssetGraph,
                             _ execution: FlowExecution) async throws -> (Value.Object, [Materialization.Input]) {
        let now = shared.clock.now()
        var deps = Value.Object()
        if slots.isEmpty {
            // A root asset sees the run's input.
            if case .object(let o) = envelope.event.data { deps = o } else { deps["input"] = envelope.event.data }
        }
        for parent in slots {
            if let up = graph.assets[parent] {
                let keys = try graph.upstreamKeys(of: key, task: name, upstream: parent, now: now)
                let single: Bool
                switch definition.asset?.mapping(from: parent) ?? .identity {
                case .identity, .previous: single = true
                case .allOfWindow, .all: single = up.partitions == nil
                }
                if single {
                    if let first = keys.first { deps[parent] = try await runtime.read(task: parent, asset: up, partition: first) } else { deps[parent] = .null }
                } else {
                    var byKey = Value.Object()
                    for k in keys { byKey[k] = try await runtime.read(task: parent, asset: up, partition: k) }
                    deps[parent] = .object(byKey)
                }
            } else {
                deps[parent] = joins ? (envelope.event.data[parent] ?? .null) : envelope.event.data
            }
        }
        var inputs: [Materialization.Input] = []
        if let store = runtime.store {
            for upstream in graph.upstream[name] ?? [] {
                guard let up = graph.assets[upstream] else { continue }
                let keys = try graph.upstreamKeys(of: key, task: name, upstream: upstream, now: now)
                let latest = try await store.materializations(MaterializationFilter(asset: up.key, partitions: keys, statuses: [.materialized],
                                                                                    latestOnly: true, limit: .max))
                for m in latest.sorted(by: { $0.partition < $1.partition }) {
                    inputs.append(Materialization.Input(asset: up.key, partition: m.partition, materialization: m.id))
                }
            }
        }
        return (deps, inputs)
    }
}
