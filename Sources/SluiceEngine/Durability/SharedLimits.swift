import Foundation
import SluiceCore
import Synchronization

/// Rate limits (`rate_limit`) and concurrency slots (`concurrency_key`) that every process on
/// the same store shares, built on the store's key-value API (`.system` bucket):
///
/// - a token bucket is one entry, `ratelimit/<key>`, holding `{tokens, updated}`, changed by
///   compare-and-set (a conflict reads it again);
/// - a key's slots are the entries `slots/<key>/0` … `slots/<key>/<limit - 1>`, each taken with
///   `create` (atomic across processes), renewed while held and deleted when given back. A
///   slot lasts `slotTTL` without renewal, so the slots of a process that died come free by
///   themselves.
///
/// Without a store the same limits hold in this process's memory, among the runs of the
/// engines that share this object. Time comes from the caller's clock, so tests drive the
/// waits with a `TestClock`.
public final class SharedLimits: Sendable {
    public struct Configuration: Sendable {
        /// Seconds a slot lasts without renewal: a dead process's slots come free after this.
        public var slotTTL: Double
        /// How often a held slot is renewed; well below `slotTTL`.
        public var renewInterval: Duration
        /// How often a waiter looks again for a slot that another process gives back (±50 %,
        /// at random, so that waiters in different processes do not poll in step).
        public var pollInterval: Duration

        public init(slotTTL: Double = 30, renewInterval: Duration = .seconds(10), pollInterval: Duration = .milliseconds(100)) {
            self.slotTTL = slotTTL
            self.renewInterval = renewInterval
            self.pollInterval = pollInterval
        }
    }

    /// nil: the limits hold in this process only.
    public let store: (any Store)?
    public let configuration: Configuration
    /// This object's name in the slots it holds and the waits it announces (host, pid and a
    /// random part); two objects on one store must not share it.
    public let holder: String
    private let random: @Sendable () -> Double
    private let buckets = Mutex<[String: TokenBucket]>([:])
    /// Slots held (or being looked for in the store) by this process, per key.
    private let local = LocalSlots()
    /// One waiter per key polls the store at a time; the others queue here.
    private let pollers = LocalSlots()
    private let acquisitions = Atomic<UInt64>(0)

    public init(store: (any Store)? = nil, configuration: Configuration = Configuration(),
                holder: String = DurableRunner.defaultWorkerName(), random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }) {
        self.store = store
        self.configuration = configuration
        self.holder = holder
        self.random = random
    }

    // MARK: - Rate limits

    /// Takes a token from `key`'s bucket, waiting on `clock` until one is due; answers how long
    /// it slept. A store that fails is reported as a retryable `TaskError`.
    @discardableResult
    public func acquireToken(key: String, spec: RateLimit, clock: any EngineClock) async throws -> Duration {
        var waited = Duration.zero
        while true {
            let wait: Double?
            if let store {
                wait = try await takeStoredToken(store, key: key, spec: spec, now: clock.now())
            } else {
                let now = clock.now().timeIntervalSince1970
                wait = buckets.withLock { buckets in
                    var bucket = buckets[key] ?? TokenBucket.full(spec, at: now)
                    defer { buckets[key] = bucket }
                    return bucket.take(spec, now: now)
                }
            }
            guard let wait else { return waited }
            let pause = TokenBucket.duration(wait)
            try await clock.sleep(for: pause)
            waited += pause
        }
    }

    /// One try at the stored bucket: nil when a token was taken, else seconds until one is due.
    private func takeStoredToken(_ store: any Store, key: String, spec: RateLimit, now: Date) async throws -> Double? {
        let name = "ratelimit/" + key
        // An untouched bucket refills completely in burst / rate: the entry is no longer needed then.
        let ttl = Double(spec.burst) / spec.perSecond + 60
        do {
            while true {
                let entry = try await store.get(.system, name, now: now)
                let t = now.timeIntervalSince1970
                var bucket = entry.flatMap { TokenBucket(value: $0.value) } ?? TokenBucket.full(spec, at: t)
                if let wait = bucket.take(spec, now: t) { return wait }
                let written = if let entry {
                    try await store.compareAndSet(.system, name, bucket.value, revision: entry.revision, ttl: ttl, now: now)
                } else {
                    try await store.create(.system, name, bucket.value, ttl: ttl, now: now)
                }
                // Another process changed the bucket in between: read it again.
                if written != nil { return nil }
                try Task.checkCancellation()
            }
        } catch let error as CancellationError {
            throw error
        } catch {
            throw TaskError("rate limit '\(key)': \(error)", retryable: true)
        }
    }

    // MARK: - Concurrency slots

    /// Runs `body` while holding one of `key`'s `limit` slots, and gives the slot back however
    /// `body` ends. `body` learns how long the slot was waited for (zero when one was free).
    /// With a store, the slot is renewed while `body` runs.
    public func withSlot<T>(key: String, limit: Int, clock: any EngineClock, _ body: (_ waited: Duration) async throws -> T) async throws -> T {
        let start = clock.uptime()
        let queued = try await local.acquire(key, limit: limit)
        defer { local.release(key) }
        guard let store else { return try await body(queued ? clock.uptime() - start : .zero) }

        let (slot, polled) = try await takeStoredSlot(store, key: key, limit: limit, clock: clock)
        let result: Result<T, any Error>
        do {
            let waited = queued || polled ? clock.uptime() - start : .zero
            result = .success(try await holding(slot, store, clock: clock) { try await body(waited) })
        } catch {
            result = .failure(error)
        }
        // Given back even when the attempt was cancelled: a task of its own is not.
        let name = slot.name, token = slot.token, now = clock.now()
        await Task {
            guard let entry = try? await store.get(.system, name, now: now), entry.value["holder"]?.stringValue == token else { return }
            _ = try? await store.delete(.system, name, now: now)
        }.value
        return try result.get()
    }

    /// A slot held in the store: its entry, this hold's token in it, and the revision it was taken at.
    private struct StoredSlot: Sendable {
        let name: String
        let token: String
        let revision: Int64
    }

    /// Takes a free slot of `key`, polling while all are held; answers it and whether it had to wait.
    private func takeStoredSlot(_ store: any Store, key: String, limit: Int, clock: any EngineClock) async throws -> (StoredSlot, Bool) {
        let queued = try await pollers.acquire(key, limit: 1)
        defer { pollers.release(key) }
        let prefix = "slots/\(key)/"
        let waiterName = prefix + "wait/" + holder
        let token = holder + "#" + String(acquisitions.add(1, ordering: .relaxed).newValue)
        // Whether other processes can see that this one waits (an entry `slots/<key>/wait/<holder>`).
        var announced = false
        var slept = false
        do {
            while true {
                let now = clock.now()
                let entries = try await store.list(.system, prefix: prefix, now: now)
                var held = Set<Int>()
                var othersWait = false
                for entry in entries {
                    let rest = entry.key.dropFirst(prefix.count)
                    if let i = Int(rest), String(i) == rest {
                        held.insert(i)
                    } else if rest.hasPrefix("wait/") && entry.key != waiterName {
                        othersWait = true
                    }
                }
                // Processes that were already waiting go first, once: without this, a process that
                // gives a slot back would take it again at once for its next attempt, every time.
                if announced || !othersWait {
                    for i in 0..<limit where !held.contains(i) {
                        let name = prefix + String(i)
                        if let entry = try await store.create(.system, name, ["holder": .string(token)], ttl: configuration.slotTTL, now: now) {
                            if announced { _ = try? await store.delete(.system, waiterName, now: now) }
                            return (StoredSlot(name: name, token: token, revision: entry.revision), queued || slept)
                        }
                    }
                }
                // Seen by others for as long as this process keeps polling.
                try await store.put(.system, waiterName, ["since": .double(now.timeIntervalSince1970)],
                                    ttl: max(1, 3 * configuration.pollInterval.seconds), now: now)
                announced = true
                slept = true
                try await clock.sleep(for: configuration.pollInterval * (0.5 + random()))
            }
        } catch {
            if announced { _ = try? await store.delete(.system, waiterName, now: clock.now()) }
            if error is CancellationError { throw error }
            throw TaskError("concurrency slot '\(key)': \(error)", retryable: true)
        }
    }

    /// Runs `body` while renewing `slot` every `renewInterval`.
    private func holding<T>(_ slot: StoredSlot, _ store: any Store, clock: any EngineClock, _ body: () async throws -> T) async throws -> T {
        let (ttl, every) = (configuration.slotTTL, configuration.renewInterval)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                var revision = slot.revision
                let value: Value = ["holder": .string(slot.token)]
                while true {
                    try await clock.sleep(for: every)
                    let now = clock.now()
                    // A store that fails now may answer at the next renewal, within the TTL.
                    if let renewed = try? await store.compareAndSet(.system, slot.name, value, revision: revision, ttl: ttl, now: now) {
                        revision = renewed.revision
                    } else if let taken = try? await store.create(.system, slot.name, value, ttl: ttl, now: now) {
                        // It expired (this process stalled) and nobody took it: take it again.
                        revision = taken.revision
                    } else if (try? await store.get(.system, slot.name, now: now)) != nil {
                        // Another holder has it now; nothing more to renew.
                        return
                    }
                }
            }
            defer { group.cancelAll() }
            return try await body()
        }
    }
}

/// A token bucket's state: `tokens` left at `updated` (seconds since 1970). Pure: the caller
/// brings the time and keeps the state, in memory or in the store.
package struct TokenBucket: Equatable, Sendable {
    package var tokens: Double
    package var updated: Double

    /// Slack, in tokens: a token due now is taken even when rounding left it a hair short (times
    /// are doubles of seconds since 1970, good to a fraction of a microsecond).
    static let slack = 1e-3

    /// A full bucket at `now`.
    package static func full(_ spec: RateLimit, at now: Double) -> TokenBucket {
        TokenBucket(tokens: Double(spec.burst), updated: now)
    }

    /// Refills for the time since `updated`, then takes one token: nil when it did, else how
    /// many seconds until the next one is due (the state is then only refilled). A `now` before
    /// `updated` (another process's clock ran ahead) refills nothing.
    package mutating func take(_ spec: RateLimit, now: Double) -> Double? {
        let elapsed = max(0, now - updated)
        tokens = min(Double(spec.burst), tokens + elapsed * spec.perSecond)
        updated = max(updated, now)
        guard tokens >= 1 - Self.slack else { return (1 - tokens) / spec.perSecond }
        tokens = max(0, tokens - 1)
        return nil
    }

    /// A wait in whole microseconds, at least one: a zero wait would only spin.
    static func duration(_ seconds: Double) -> Duration {
        .microseconds(max(1, Int64((seconds * 1e6).rounded())))
    }

    var value: Value { ["tokens": .double(tokens), "updated": .double(updated)] }

    package init(tokens: Double, updated: Double) {
        self.tokens = tokens
        self.updated = updated
    }

    /// A stored state; nil when the entry is not one (then the bucket starts full again).
    init?(value: Value) {
        guard let tokens = value["tokens"]?.doubleValue, let updated = value["updated"]?.doubleValue,
              tokens.isFinite, updated.isFinite else { return nil }
        self.init(tokens: tokens, updated: updated)
    }
}

/// Slots within one process: attempts hold a key's slots up to each one's own limit; waiters
/// are served in the order they came, and leave the queue when their task is cancelled.
final class LocalSlots: Sendable {
    private struct Waiter {
        let id: UInt64
        let limit: Int
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var held: [String: Int] = [:]
        var waiting: [String: [Waiter]] = [:]
        /// Waiters between deciding to wait and joining the queue.
        var arriving: Set<UInt64> = []
        /// Arriving waiters whose task was cancelled before they joined.
        var cancelled: Set<UInt64> = []
        var nextID: UInt64 = 0

        /// Takes a slot when fewer than `limit` are held. Nobody queued can be passed over:
        /// a waiter stays queued only while at least its own limit is held.
        mutating func take(_ key: String, limit: Int) -> Bool {
            let count = held[key, default: 0]
            guard count < limit else { return false }
            held[key] = count + 1
            return true
        }
    }

    private let state = Mutex(State())

    /// Holds one of `key`'s slots; answers whether it had to wait.
    func acquire(_ key: String, limit: Int) async throws -> Bool {
        try Task.checkCancellation()
        let id: UInt64? = state.withLock { s in
            if s.take(key, limit: limit) { return nil }
            s.nextID += 1
            s.arriving.insert(s.nextID)
            return s.nextID
        }
        guard let id else { return false }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let now: Result<Void, any Error>? = state.withLock { s in
                    s.arriving.remove(id)
                    if s.cancelled.remove(id) != nil { return .failure(CancellationError()) }
                    // A slot came free since the first look.
                    if s.take(key, limit: limit) { return .success(()) }
                    s.waiting[key, default: []].append(Waiter(id: id, limit: limit, continuation: continuation))
                    return nil
                }
                if let now { continuation.resume(with: now) }
            }
        } onCancel: {
            let waiter = state.withLock { s -> Waiter? in
                if let i = s.waiting[key]?.firstIndex(where: { $0.id == id }) { return s.waiting[key]!.remove(at: i) }
                if s.arriving.contains(id) { s.cancelled.insert(id) }
                return nil
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
        return true
    }

    /// Gives back one of `key`'s slots, to the first waiter it lets in.
    func release(_ key: String) {
        let next = state.withLock { s -> Waiter? in
            let count = s.held[key, default: 1] - 1
            s.held[key] = count > 0 ? count : nil
            guard let i = s.waiting[key]?.firstIndex(where: { $0.limit > count }) else { return nil }
            let waiter = s.waiting[key]!.remove(at: i)
            if s.waiting[key]!.isEmpty { s.waiting[key] = nil }
            s.held[key] = count + 1
            return waiter
        }
        next?.continuation.resume()
    }

    /// How many of `key`'s slots are held here (for tests).
    func held(_ key: String) -> Int { state.withLock { $0.held[key, default: 0] } }
}
