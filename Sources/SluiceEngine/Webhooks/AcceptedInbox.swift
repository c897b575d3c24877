import Foundation
import SluiceCore
import Synchronization

/// Where a webhook with `respond: accepted` keeps each request's event from before it answers
/// 202 until its run ends, so that a process that dies in between does not lose it: another
/// serving process (or the same one, restarted) runs it again. At least once: a process that
/// dies after the run but before it cleared the entry has the run done twice.
///
/// One entry per request in the store's system bucket, `inbox/<flow>/<task>/<id>`: the
/// event, the process running it (`owner`) and when that process last said so (`renewed`,
/// seconds since 1970). The owner renews every third of `ttl` (`keepRenewing`, one loop per
/// process, which goes on while runs drain at shutdown); an entry not renewed for `ttl` is an
/// orphan, and the first process to change it (compare-and-set on its revision) runs it. A
/// request costs two writes: the entry, and its deletion when the run ends.
public final class AcceptedInbox: Sendable {
    public let store: any Store
    /// This process, in entries.
    public let owner: String
    /// Seconds an entry stays this process's without renewal.
    public let ttl: Double
    private struct Held {
        var revision: Int64
        var value: Value
        /// The run ended but deleting the entry failed: renewed, and deleted again, until gone.
        var finished = false
    }

    /// Entries this process runs, by key: renewed until their runs end.
    private let held = Mutex<[String: Held]>([:])
    /// Entries being cleared (`finish`), which a stopping process waits for.
    private let clearing = Atomic<Int>(0)

    /// The time entries are stamped and judged with.
    private let now: @Sendable () -> Date

    public init(store: any Store, ttl: Double, owner: String = AcceptedInbox.processOwner(), now: @escaping @Sendable () -> Date = { Date() }) {
        self.store = store
        self.ttl = max(1, ttl)
        self.owner = owner
        self.now = now
    }

    public static func processOwner() -> String {
        "\(ProcessInfo.processInfo.hostName):\(getpid()):\(UUID().uuidString.prefix(8))"
    }

    /// A new entry id; also the event's id when the request names none.
    public static func newID() -> String { UUID().uuidString }

    /// Records `event`, come in through `task` of `flow`, as this process's under `id`. The
    /// caller answers 202 only after this returned.
    public func accept(flow: String, task: String, id: String, event: Event) async throws {
        let key = Self.key(flow, task, id)
        let now = self.now()
        let value = entry(event.projection, at: now)
        let stored = try await store.put(.system, key, value, ttl: nil, now: now)
        held.withLock { $0[key] = Held(revision: stored.revision, value: value) }
    }

    /// The run of the entry ended: the entry goes. If the store refuses, the entry stays this
    /// process's (renewed) and its deletion is tried again with each renewal.
    public func done(flow: String, task: String, id: String) async {
        await delete(Self.key(flow, task, id))
    }

    private func delete(_ key: String) async {
        do {
            _ = try await store.delete(.system, key, now: now())
            held.withLock { _ = $0.removeValue(forKey: key) }
        } catch {
            held.withLock { $0[key]?.finished = true }
        }
    }

    /// `done` from code that cannot wait (a run's end); `settle` waits for it.
    public func finish(flow: String, task: String, id: String) {
        clearing.add(1, ordering: .relaxed)
        Task {
            await done(flow: flow, task: task, id: id)
            clearing.subtract(1, ordering: .relaxed)
        }
    }

    /// Waits, bounded, until the entries being cleared are (at shutdown, so that a restart
    /// does not run them again).
    public func settle(within limit: Duration = .seconds(5)) async {
        let deadline = ContinuousClock.now + limit
        while clearing.load(ordering: .relaxed) > 0, ContinuousClock.now < deadline, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Stops renewing the entry without clearing it: once `ttl` passed, a process runs it
    /// again (a run cut short by a shutdown).
    public func release(flow: String, task: String, id: String) {
        _ = held.withLock { $0.removeValue(forKey: Self.key(flow, task, id)) }
    }

    /// Runs an entry may have begun (one per process that took it) before it is given up:
    /// an event that kills its process must not do so at every start.
    public static let maxRuns = 5

    /// What `adoptOrphans` found.
    public struct Orphans: Sendable {
        /// Now this process's: the caller runs each and calls `finish` (or `release`) after.
        public var adopted: [(id: String, event: Event)] = []
        /// Begun `maxRuns` times already: moved to `inbox-failed/…` and not run again.
        public var givenUp: [(id: String, event: Event)] = []
    }

    /// Entries that came in through `task` of `flow` and were not renewed for `ttl`. A store
    /// error ends the look early; what was taken until then is returned.
    public func adoptOrphans(flow: String, task: String) async -> Orphans {
        let now = self.now()
        let prefix = Self.key(flow, task, "")
        var found = Orphans()
        guard let entries = try? await store.list(.system, prefix: prefix, now: now) else { return found }
        for entry in entries {
            let id = String(entry.key.dropFirst(prefix.count))
            // A flow or task whose name goes on with `/…` has its own prefix: not these entries.
            guard !id.isEmpty, !id.contains("/"), held.withLock({ $0[entry.key] == nil }) else { continue }
            guard let renewed = entry.value["renewed"]?.doubleValue, now.timeIntervalSince1970 - renewed >= ttl else { continue }
            let event = entry.value["event"] ?? .null
            let runs = Int(entry.value["runs"]?.intValue ?? 1) + 1
            let value = self.entry(event, at: now, runs: runs)
            guard let taken = try? await store.compareAndSet(.system, entry.key, value, revision: entry.revision, ttl: nil, now: now) else {
                continue  // another process took it first, or the store did not answer
            }
            if runs > Self.maxRuns {
                // Taken (so one process gives it up), then filed apart.
                guard (try? await store.put(.system, "inbox-failed/" + entry.key.dropFirst("inbox/".count), value, ttl: nil, now: now)) != nil
                else { continue }
                _ = try? await store.delete(.system, entry.key, now: now)
                found.givenUp.append((id, Event(projection: event)))
            } else {
                held.withLock { $0[entry.key] = Held(revision: taken.revision, value: value) }
                found.adopted.append((id, Event(projection: event)))
            }
        }
        return found
    }

    /// Renews every entry this process runs (and deletes again those whose deletion failed).
    /// An entry another process took over meanwhile (this one stalled past `ttl`) is let go.
    public func renewAll() async {
        let mine = held.withLock { $0 }
        let now = self.now()
        for (key, entry) in mine {
            if entry.finished {
                await delete(key)
                continue
            }
            let value = self.entry(entry.value["event"] ?? .null, at: now, runs: Int(entry.value["runs"]?.intValue ?? 1))
            do {
                if let renewed = try await store.compareAndSet(.system, key, value, revision: entry.revision, ttl: nil, now: now) {
                    held.withLock { $0[key]?.revision = renewed.revision }
                } else {
                    held.withLock { _ = $0.removeValue(forKey: key) }
                }
            } catch {
                // The store did not answer: try again next time.
            }
        }
    }

    /// Renews every third of `ttl` until cancelled: one loop for the process, running while
    /// runs drain at shutdown too.
    public func keepRenewing() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(ttl / 3))
            await renewAll()
        }
    }

    /// Entries in the store (any process's), counted by the flow and task they came in
    /// through: what `sluice serve` checks against the endpoints it serves, so that requests
    /// no endpoint will run again (the flow was renamed, or is no longer `accepted`) are told.
    public func waiting() async throws -> [(flow: String, task: String, count: Int)] {
        var counts: [[String]: Int] = [:]  // [flow, task]
        for entry in try await store.list(.system, prefix: "inbox/", now: now()) {
            let parts = entry.key.dropFirst("inbox/".count).split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count >= 3 else { continue }
            counts[[parts.dropLast(2).joined(separator: "/"), String(parts[parts.count - 2])], default: 0] += 1
        }
        return counts.map { (flow: $0.key[0], task: $0.key[1], count: $0.value) }.sorted { ($0.flow, $0.task) < ($1.flow, $1.task) }
    }

    /// How many entries this process runs now.
    public var heldCount: Int { held.withLock { $0.count } }

    private func entry(_ event: Value, at now: Date, runs: Int = 1) -> Value {
        ["event": event, "owner": .string(owner), "renewed": .double(now.timeIntervalSince1970), "runs": .int(Int64(runs))]
    }

    static func key(_ flow: String, _ task: String, _ id: String) -> String { "inbox/\(flow)/\(task)/\(id)" }
}
