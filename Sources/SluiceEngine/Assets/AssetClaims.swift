import Foundation
import SluiceCore

/// Makes an upstream asset partition that several runs plan to compute (the partitions of a
/// parallel backfill reading one monthly or unpartitioned asset, catch-up ticks of a
/// schedule) computed by one of them: the first claims it in the store's system bucket
/// (`asset-compute/<asset>/<partition>`, an atomic create, renewed while it computes), the
/// others wait and load the value it writes. The store makes it hold across processes.
///
/// A claim whose run stops without a value (cancelled, or its process died and the claim ran
/// out) is taken over by a waiter; a run whose task failed marks its claim failed, and the
/// runs waiting for it fail with that run named instead of computing it again.
struct AssetClaims: Sendable {
    let store: any Store
    let clock: any EngineClock
    /// How long a claim lasts without renewal (the holder renews it every third of that).
    let ttl: Double
    /// How long a run waits for another to compute a partition before it fails.
    let maxWait: Duration

    /// What a run does with a partition it planned to compute.
    enum Turn: Sendable {
        /// Compute it here, holding this claim.
        case compute(KVEntry)
        /// Another run materialized it since the plan was made: load it.
        case computed(Materialization)
    }

    static func key(asset: String, partition: String) -> String { "asset-compute/\(asset)/\(partition)" }

    /// Claims `partition` of `asset` for `run`, or waits (bounded) until the run holding it ends.
    func take(asset: String, partition: String, version: String, run: String, planned: Date) async throws -> Turn {
        let key = Self.key(asset: asset, partition: partition)
        let label = partition.isEmpty ? "asset '\(asset)'" : "asset '\(asset)' [\(partition)]"
        let started = clock.now()
        var delay = 0.02
        while true {
            if let fresh = try await freshMaterialization(asset: asset, partition: partition, version: version, since: planned) {
                return .computed(fresh)
            }
            let mine: Value = ["run": .string(run), "state": "computing", "since": .double(clock.now().timeIntervalSince1970)]
            if let claim = try await store.create(.system, key, mine, ttl: ttl, now: clock.now()) {
                // Another run may have finished it between the check and the claim.
                if let fresh = try await freshMaterialization(asset: asset, partition: partition, version: version, since: planned) {
                    try await store.delete(.system, key, now: clock.now())
                    return .computed(fresh)
                }
                return .compute(claim)
            }
            guard let held = try await store.get(.system, key, now: clock.now()) else { continue }  // released just now
            let holder = held.value["run"]?.stringValue ?? "?"
            let failedAt = held.value["state"] == "failed" ? held.value["ended"]?.doubleValue : nil
            if let failedAt, failedAt >= planned.timeIntervalSince1970 {
                throw AssetError("\(label) failed in run \(holder), which was computing it for this run too: "
                                 + (held.value["error"]?.stringValue ?? "its task failed"))
            }
            // This run's own claim (from before a restart), or a failure older than this plan: take it over.
            if holder == run || failedAt != nil {
                if let claim = try await store.compareAndSet(.system, key, mine, revision: held.revision, ttl: ttl, now: clock.now()) {
                    return .compute(claim)
                }
                continue
            }
            let waited = clock.now().timeIntervalSince(started)
            if waited >= maxWait.seconds {
                throw AssetError("waited \(maxWait.shortDescription) for run \(holder) to compute \(label), which this run reads; "
                                 + "it has not finished: retry this run once it has")
            }
            try await clock.sleep(for: .seconds(min(delay, maxWait.seconds - waited)))
            delay = min(delay * 2, 1)
        }
    }

    /// The newest materialization of the partition, when it was made with `version` and ended
    /// at or after `since`.
    private func freshMaterialization(asset: String, partition: String, version: String, since: Date) async throws -> Materialization? {
        let latest = try await store.materializations(MaterializationFilter(asset: asset, partitions: [partition], statuses: [.materialized],
                                                                            latestOnly: true, limit: 1))
        guard let m = latest.first, m.version == version, (m.ended ?? m.started) >= since else { return nil }
        return m
    }

    /// Keeps `claim` alive (renewed every third of its ttl) while `body` computes.
    func holding<T>(_ claim: KVEntry, _ body: () async -> T) async -> T {
        let store = self.store, clock = self.clock, ttl = self.ttl
        return await withTaskGroup(of: Void.self, returning: T.self) { group in
            group.addTask {
                var current = claim
                while !Task.isCancelled {
                    guard (try? await clock.sleep(for: .seconds(ttl / 3))) != nil,
                          let renewed = try? await store.compareAndSet(.system, claim.key, current.value, revision: current.revision, ttl: ttl,
                                                                       now: clock.now()) else { return }
                    current = renewed
                }
            }
            let result = await body()
            group.cancelAll()
            return result
        }
    }

    /// Gives a claim up: deleted after a value was written or the run stopped; marked failed
    /// with `failure` for the runs waiting on it (kept a minute for them to read). Best effort:
    /// a claim left behind runs out, and a waiter takes it over then.
    func release(_ claim: KVEntry, run: String, failure: String?) async {
        // A failed run's execution is being cancelled: the release is its own task, so that the
        // store calls are not cancelled with it.
        let release = Task { await self.give(claim, run: run, failure: failure) }
        await release.value
    }

    private func give(_ claim: KVEntry, run: String, failure: String?) async {
        guard let held = try? await store.get(.system, claim.key, now: clock.now()), held.value["run"]?.stringValue == run else { return }
        if let failure {
            var value = held.value
            value["state"] = "failed"
            value["ended"] = .double(clock.now().timeIntervalSince1970)
            value["error"] = .string(failure)
            _ = try? await store.compareAndSet(.system, claim.key, value, revision: held.revision, ttl: max(ttl, 60), now: clock.now())
        } else {
            _ = try? await store.delete(.system, claim.key, now: clock.now())
        }
    }
}
