import Foundation
import SluiceCore

/// A stored request to materialize many partitions of an asset, one durable run per partition,
/// at most `maxParallel` at a time. It lives in the store's system bucket
/// (`backfill/<id>`), so it survives its process: `resume` carries on where it stopped, and
/// partitions already materialized are not done again.
public struct BackfillRecord: Sendable, Equatable {
    public enum Status: String, Sendable, CaseIterable { case running, completed, failed, cancelled }

    public var id: String
    public var flow: String
    public var flowHash: String
    /// The asset's task name.
    public var asset: String
    public var partitions: [String]
    public var maxParallel: Int
    public var force: Bool
    public var status: Status
    public var created: Date
    public var ended: Date?
    /// The run materializing each partition, once it was created.
    public var runs: [String: String]
    /// Partitions found up to date when their turn came (not run).
    public var skipped: [String]

    public init(id: String, flow: String, flowHash: String, asset: String, partitions: [String], maxParallel: Int, force: Bool,
                status: Status = .running, created: Date, ended: Date? = nil, runs: [String: String] = [:], skipped: [String] = []) {
        self.id = id
        self.flow = flow
        self.flowHash = flowHash
        self.asset = asset
        self.partitions = partitions
        self.maxParallel = maxParallel
        self.force = force
        self.status = status
        self.created = created
        self.ended = ended
        self.runs = runs
        self.skipped = skipped
    }

    public static func key(_ id: String) -> String { "backfill/" + id }

    public var value: Value {
        var runs = Value.Object()
        for p in partitions { if let r = self.runs[p] { runs[p] = .string(r) } }
        return ["id": .string(id), "flow": .string(flow), "flow_hash": .string(flowHash), "asset": .string(asset),
                "partitions": .array(partitions.map(Value.string)), "max_parallel": .int(Int64(maxParallel)), "force": .bool(force),
                "status": .string(status.rawValue), "created": .double(created.timeIntervalSince1970),
                "ended": ended.map { .double($0.timeIntervalSince1970) } ?? .null, "runs": .object(runs),
                "skipped": .array(skipped.map(Value.string))]
    }

    public init?(value v: Value) {
        guard case .string(let id)? = v["id"], case .string(let flow)? = v["flow"], case .string(let hash)? = v["flow_hash"],
              case .string(let asset)? = v["asset"], let partitions = v["partitions"]?.arrayValue?.compactMap(\.stringValue),
              let maxParallel = v["max_parallel"]?.intValue, let status = v["status"]?.stringValue.flatMap(Status.init(rawValue:)),
              let created = v["created"]?.doubleValue else { return nil }
        var runs: [String: String] = [:]
        for (p, r) in v["runs"]?.objectValue ?? [:] { runs[p] = r.stringValue }
        self.init(id: id, flow: flow, flowHash: hash, asset: asset, partitions: partitions, maxParallel: Int(maxParallel),
                  force: v["force"]?.boolValue ?? false, status: status, created: Date(timeIntervalSince1970: created),
                  ended: v["ended"]?.doubleValue.map(Date.init(timeIntervalSince1970:)), runs: runs,
                  skipped: v["skipped"]?.arrayValue?.compactMap(\.stringValue) ?? [])
    }
}

/// Where a backfill stands, partition by partition.
public struct BackfillProgress: Sendable, Equatable {
    public var total: Int
    public var completed: Int
    public var failed: Int
    public var running: Int
    public var skipped: Int
    public var pending: Int { total - completed - failed - running - skipped }
    public var done: Int { completed + failed + skipped }
}

extension DurableRunner {
    /// Records a new backfill of `partitions` of `asset` in `plan`'s flow.
    public func createBackfill(_ plan: FlowPlan, source: String, asset: String, partitions: [String], maxParallel: Int,
                               force: Bool) async throws -> BackfillRecord {
        guard let task = plan.assetGraph.task(for: asset) else {
            throw AssetError("flow '\(plan.definition.name)' has no asset '\(asset)'")
        }
        guard maxParallel >= 1 else { throw AssetError("max parallel must be at least 1") }
        guard !partitions.isEmpty else { throw AssetError("a backfill needs at least one partition") }
        for p in partitions { try plan.assetGraph.validate(p, of: task) }
        let flow = StoredFlow(name: plan.definition.name, source: source, created: engine.clock.now())
        try await store.saveFlow(flow)
        let record = BackfillRecord(id: "bf-" + Self.newRunID(at: engine.clock.now()), flow: flow.name, flowHash: flow.hash,
                                    asset: task, partitions: partitions, maxParallel: maxParallel, force: force,
                                    created: engine.clock.now())
        guard try await store.create(.system, BackfillRecord.key(record.id), record.value, ttl: nil, now: engine.clock.now()) != nil else {
            throw AssetError("backfill \(record.id) exists already")
        }
        return record
    }

    public func backfill(id: String) async throws -> BackfillRecord? {
        guard let entry = try await store.get(.system, BackfillRecord.key(id), now: engine.clock.now()) else { return nil }
        guard let record = BackfillRecord(value: entry.value) else { throw StoreError.corrupt("backfill \(id) cannot be read") }
        return record
    }

    /// Newest first.
    public func backfills() async throws -> [BackfillRecord] {
        try await store.list(.system, prefix: "backfill/", now: engine.clock.now()).compactMap { BackfillRecord(value: $0.value) }
            .sorted { ($0.created, $0.id) > ($1.created, $1.id) }
    }

    /// Changes a stored backfill, retrying when another process changed it in between.
    @discardableResult
    func updateBackfill(_ id: String, _ change: (inout BackfillRecord) -> Void) async throws -> BackfillRecord {
        while true {
            guard let entry = try await store.get(.system, BackfillRecord.key(id), now: engine.clock.now()),
                  var record = BackfillRecord(value: entry.value) else { throw StoreError.notFound("backfill \(id)") }
            change(&record)
            if try await store.compareAndSet(.system, BackfillRecord.key(id), record.value, revision: entry.revision, ttl: nil,
                                             now: engine.clock.now()) != nil {
                return record
            }
        }
    }

    /// Stops a backfill: no more partitions start, and the runs going now are cancelled.
    public func cancelBackfill(id: String) async throws -> BackfillRecord {
        guard let current = try await backfill(id: id) else { throw StoreError.notFound("backfill \(id)") }
        guard current.status == .running else { throw AssetError("backfill \(id) has already ended (\(current.status.rawValue))") }
        let record = try await updateBackfill(id) {
            $0.status = .cancelled
            $0.ended = self.engine.clock.now()
        }
        for runID in record.runs.values {
            if let run = try await store.run(id: runID), !run.status.isFinal { _ = try? await cancel(runID: runID, reason: "backfill \(id) cancelled") }
        }
        return record
    }

    /// Where each partition of a backfill stands, from its runs.
    public func progress(of record: BackfillRecord) async throws -> BackfillProgress {
        var p = BackfillProgress(total: record.partitions.count, completed: 0, failed: 0, running: 0, skipped: record.skipped.count)
        for runID in record.runs.values {
            switch try await store.run(id: runID)?.status {
            case .completed?: p.completed += 1
            case .failed?, .cancelled?: p.failed += 1
            case nil: break
            default: p.running += 1
            }
        }
        return p
    }

    /// Carries a backfill out (or on, after a crash or an interruption): each partition that has
    /// no run yet is planned (skipped when up to date, unless forced) and materialized in its
    /// own durable run; a run left unfinished is resumed; at most `maxParallel` at once.
    /// `progress` is called whenever a partition finishes. Stops early when the backfill is
    /// cancelled from elsewhere; cancelling the calling task leaves everything resumable.
    /// Partitions running at once that read one upstream partition compute it once (`AssetClaims`).
    public func executeBackfill(id: String, plan: FlowPlan, source: String,
                                progress: @escaping @Sendable (BackfillRecord, BackfillProgress) -> Void = { _, _ in }) async throws -> BackfillRecord {
        guard var record = try await backfill(id: id) else { throw StoreError.notFound("backfill \(id)") }
        guard record.status == .running else { return record }
        let partitions = record.partitions
        // Counted once from the store, then kept up to date from what each partition's turn did:
        // reading every run after each partition would cost n² reads in a long backfill.
        var tally = try await self.progress(of: record)
        tally.running = 0
        try await withThrowingTaskGroup(of: PartitionEnd?.self) { group in
            var next = 0
            var active = 0
            func launch(_ p: String) {
                group.addTask { try await self.backfillPartition(id, partition: p, plan: plan, source: source) }
            }
            while next < partitions.count || active > 0 {
                while active < record.maxParallel && next < partitions.count {
                    launch(partitions[next])
                    next += 1
                    active += 1
                }
                let ended = try await group.next() ?? nil
                active -= 1
                switch ended {
                case .completed?: tally.completed += 1
                case .failed?: tally.failed += 1
                case .skipped?: tally.skipped += 1
                case nil: break
                }
                tally.running = active
                guard let now = try await backfill(id: id) else { throw StoreError.notFound("backfill \(id)") }
                record = now
                progress(record, tally)
                if record.status == .cancelled {
                    group.cancelAll()
                    next = partitions.count
                }
            }
        }
        if record.status == .running {
            let p = try await self.progress(of: record)
            record = try await updateBackfill(id) {
                $0.status = p.failed > 0 ? .failed : .completed
                $0.ended = self.engine.clock.now()
            }
        }
        return record
    }

    /// How a partition's turn ended; nil when it had ended before this execution started.
    private enum PartitionEnd { case completed, failed, skipped }

    private func backfillPartition(_ id: String, partition: String, plan: FlowPlan, source: String) async throws -> PartitionEnd? {
        guard let record = try await backfill(id: id), record.status == .running else { return nil }
        if let runID = record.runs[partition] {
            if try await store.run(id: runID)?.status.isFinal ?? true { return nil }
            return try await finish(runID)
        }
        if record.skipped.contains(partition) { return nil }
        let runPlan = try await planMaterialization(plan, asset: record.asset, partition: partition, force: record.force)
        if runPlan.computeCount == 0 {
            try await updateBackfill(id) { if !$0.skipped.contains(partition) { $0.skipped.append(partition) } }
            return .skipped
        }
        // The idempotency key makes a run created just before a crash the same run next time.
        let run = try await enqueue(plan, source: source, input: Self.materializationInput(runPlan), trigger: "backfill",
                                    idempotencyKey: "backfill:\(id):\(partition)")
        try await updateBackfill(id) { $0.runs[partition] = run.id }
        return try await finish(run.id)
    }

    /// Sees a run through to its end: executes it here, or follows the process that holds it.
    private func finish(_ runID: String) async throws -> PartitionEnd {
        guard let run = try await store.run(id: runID) else { throw StoreError.notFound("run \(runID)") }
        if run.status.isFinal { return run.status == .completed ? .completed : .failed }
        let status: RunStatus
        do {
            status = try await resume(runID: runID).record.status
        } catch let error as DurableError where error.description.contains("has already ended") {
            // It ended between the read and the resume.
            status = try await store.run(id: runID)?.status ?? .failed
        }
        try Task.checkCancellation()
        // Ended, or stopped short of it (waiting at a gate, claim lost): not completed here.
        return status == .completed ? .completed : .failed
    }
}
