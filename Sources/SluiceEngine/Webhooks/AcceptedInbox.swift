import Foundation
import SluiceCore
import Synchronization

/// Where a webhook with `respond: accepted` keeps each request's event from before it answers
/// 202 until its run ends, so that a process that dies in between does not lose it: another
/// serving process (or the same one, restarted) runs it again. At least once: a process that
/// dies after the run but before it cleared the entry has the run done twice.
///
/// In the store's system bucket: `inbox/<flow>/<id>` holds the event; `inbox-claim/<flow>/<id>`
/// names the process running it and lasts `ttl` seconds unless that process renews it. An
/// entry whose claim ran out is an orphan; the first process to claim it again runs it.
public final class AcceptedInbox: Sendable {
    public let store: any Store
    /// This process, in claims.
    public let owner: String
    /// Seconds a claim lasts without renewal; renewed every third of it.
    public let ttl: Double
    /// Entries this process runs, by key: renewed until their runs end.
    private let held = Mutex<Set<String>>([])
    /// Entries being cleared (`finish`), which a stopping process waits for.
    private let clearing = Atomic<Int>(0)

    public init(store: any Store, ttl: Double, owner: String = AcceptedInbox.processOwner()) {
        self.store = store
        self.ttl = max(1, ttl)
        self.owner = owner
    }

    public static func processOwner() -> String {
        "\(ProcessInfo.processInfo.hostName):\(getpid()):\(UUID().uuidString.prefix(8))"
    }

    /// Records `event` of `flow` and claims it for this process; returns the entry's id. The
    /// caller answers 202 only after this returned.
    public func accept(flow: String, event: Event) async throws -> String {
        let id = UUID().uuidString
        let now = Date()
        // The claim first: a sweeping process never sees the entry unclaimed.
        _ = try await store.put(.system, Self.claimKey(flow, id), .string(owner), ttl: ttl, now: now)
        _ = try await store.put(.system, Self.entryKey(flow, id), event.projection, ttl: nil, now: now)
        held.withLock { _ = $0.insert(Self.claimKey(flow, id)) }
        return id
    }

    /// The run of the entry ended: the entry and its claim go.
    public func done(flow: String, id: String) async {
        held.withLock { _ = $0.remove(Self.claimKey(flow, id)) }
        let now = Date()
        _ = try? await store.delete(.system, Self.entryKey(flow, id), now: now)
        _ = try? await store.delete(.system, Self.claimKey(flow, id), now: now)
    }

    /// `done` from code that cannot wait (a run's end); `settle` waits for it.
    public func finish(flow: String, id: String) {
        clearing.add(1, ordering: .relaxed)
        Task {
            await done(flow: flow, id: id)
            clearing.subtract(1, ordering: .relaxed)
        }
    }

    /// Waits, bounded, until the entries being cleared are (at shutdown, so that a restart
    /// does not run them again).
    public func settle(within limit: Duration = .seconds(5)) async {
        let deadline = ContinuousClock.now + limit
        while clearing.load(ordering: .relaxed) > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Entries of `flow` whose claim ran out, now claimed by this process: the caller runs
    /// each and calls `done` after.
    public func adoptOrphans(flow: String) async throws -> [(id: String, event: Event)] {
        let now = Date()
        let prefix = Self.entryKey(flow, "")
        var adopted: [(id: String, event: Event)] = []
        for entry in try await store.list(.system, prefix: prefix, now: now) {
            let id = String(entry.key.dropFirst(prefix.count))
            guard !id.isEmpty, !id.contains("/") else { continue }
            guard try await store.create(.system, Self.claimKey(flow, id), .string(owner), ttl: ttl, now: now) != nil else { continue }
            held.withLock { _ = $0.insert(Self.claimKey(flow, id)) }
            adopted.append((id, Self.event(entry.value)))
        }
        return adopted
    }

    /// Stops renewing the entry's claim without clearing it: once the claim runs out, a
    /// process runs the entry again (a run cancelled by a shutdown).
    public func release(flow: String, id: String) {
        held.withLock { _ = $0.remove(Self.claimKey(flow, id)) }
    }

    /// Renews this process's claims on entries of `flow`; call every `ttl / 3` seconds.
    public func renew(flow: String) async {
        let prefix = Self.claimKey(flow, "")
        let keys = held.withLock { $0.filter { $0.hasPrefix(prefix) } }
        let now = Date()
        for key in keys { _ = try? await store.put(.system, key, .string(owner), ttl: ttl, now: now) }
    }

    /// How many entries this process runs now.
    public var heldCount: Int { held.withLock { $0.count } }

    static func entryKey(_ flow: String, _ id: String) -> String { "inbox/\(flow)/\(id)" }
    static func claimKey(_ flow: String, _ id: String) -> String { "inbox-claim/\(flow)/\(id)" }

    /// An event from its `projection`.
    static func event(_ v: Value) -> Event {
        var event = Event(id: v["id"]?.stringValue ?? "", subject: v["subject"]?.stringValue ?? "", data: v["data"] ?? .null,
                          meta: v["meta"]?.objectValue ?? [:], timestamp: v["timestamp"]?.intValue ?? 0)
        if let error = v["error"], let task = error["task"]?.stringValue, let message = error["message"]?.stringValue {
            event.error = EventError(task: task, message: message)
        }
        return event
    }
}
