import Foundation
import SluiceConfig
import SluiceCore
import SluiceEngine
import SluiceTesting
import Synchronization
import Testing

/// Who is inside a limited section now, and the most there ever were at once.
final class Occupancy: Sendable {
    private let state = Mutex<(now: Int, most: Int, entered: [String])>((0, 0, []))

    func enter(_ who: String) {
        state.withLock { s in
            s.now += 1
            s.most = max(s.most, s.now)
            s.entered.append(who)
        }
    }

    func leave() { state.withLock { $0.now -= 1 } }

    var most: Int { state.withLock { $0.most } }
    var entered: [String] { state.withLock { $0.entered } }
}

/// Yields until `condition` holds: a task the test clock woke needs a moment to run. Records
/// an issue when it never does (within a few seconds).
func eventually(_ what: Comment, _ condition: () async throws -> Bool) async rethrows {
    for i in 0..<5_000 {
        if try await condition() { return }
        if i < 100 { await Task.yield() } else { try? await Task.sleep(for: .milliseconds(1)) }
    }
    Issue.record("never happened: \(what)")
}

@Suite("Shared limits: token buckets and concurrency slots")
struct SharedLimitsTests {
    static let backends = ["memory", "store"]

    /// Two "processes": separate objects on one store, or (without a store) one object.
    static func limits(_ backend: String, store: MemoryStore = MemoryStore()) -> (SharedLimits, SharedLimits) {
        if backend == "memory" {
            let one = SharedLimits(random: { 0.5 })
            return (one, one)
        }
        return (SharedLimits(store: store, random: { 0.5 }), SharedLimits(store: store, random: { 0.5 }))
    }

    // MARK: Token buckets

    @Test("A token bucket refills at its rate up to its burst, and says how long until the next token")
    func bucketTable() {
        let spec = RateLimit(count: 2, per: .seconds(1), burst: 3)  // one token every 0.5 s, at most 3
        let rows: [(start: TokenBucket, now: Double, wait: Double?, after: TokenBucket)] = [
            (TokenBucket(tokens: 3, updated: 100), 100, nil, TokenBucket(tokens: 2, updated: 100)),
            (TokenBucket(tokens: 0, updated: 100), 100, 0.5, TokenBucket(tokens: 0, updated: 100)),
            (TokenBucket(tokens: 0, updated: 100), 100.25, 0.25, TokenBucket(tokens: 0.5, updated: 100.25)),
            (TokenBucket(tokens: 0, updated: 100), 100.5, nil, TokenBucket(tokens: 0, updated: 100.5)),
            // Never above the burst, however long it was quiet.
            (TokenBucket(tokens: 1, updated: 100), 1000, nil, TokenBucket(tokens: 2, updated: 1000)),
            // Another process's clock ran ahead: its time is kept, nothing refills.
            (TokenBucket(tokens: 0.5, updated: 100), 99, 0.25, TokenBucket(tokens: 0.5, updated: 100)),
        ]
        for row in rows {
            var bucket = row.start
            let wait = bucket.take(spec, now: row.now)
            #expect(wait == row.wait, "\(row.start) at \(row.now)")
            #expect(bucket == row.after, "\(row.start) at \(row.now)")
        }
    }

    @Test("A bucket lets the burst through at once, then one attempt per token, waiting exactly until it is due",
          arguments: backends)
    func rateWaits(_ backend: String) async throws {
        let clock = TestClock()
        let (a, _) = Self.limits(backend)
        let spec = RateLimit(count: 2, per: .seconds(1))  // burst 2
        #expect(try await a.acquireToken(key: "k", spec: spec, clock: clock) == .zero)
        #expect(try await a.acquireToken(key: "k", spec: spec, clock: clock) == .zero)
        #expect(clock.sleepRequests.isEmpty)
        let third = Task { try await a.acquireToken(key: "k", spec: spec, clock: clock) }
        await clock.waitForSleepers(1)
        #expect(clock.sleepRequests == [.milliseconds(500)])
        clock.advance(by: .milliseconds(500))
        #expect(try await third.value == .milliseconds(500))
        // Another key has its own bucket.
        #expect(try await a.acquireToken(key: "other", spec: spec, clock: clock) == .zero)
    }

    @Test("Two processes on one store share a bucket")
    func sharedBucket() async throws {
        let clock = TestClock()
        let store = MemoryStore()
        let (a, b) = Self.limits("store", store: store)
        let spec = RateLimit(count: 10, per: .seconds(60), burst: 2, key: "api")
        try await a.acquireToken(key: "api", spec: spec, clock: clock)
        try await b.acquireToken(key: "api", spec: spec, clock: clock)
        let entry = try #require(try await store.get(.system, "ratelimit/api", now: clock.now()))
        #expect(entry.value["tokens"]?.doubleValue == 0)
        let waiting = Task { try await a.acquireToken(key: "api", spec: spec, clock: clock) }
        await clock.waitForSleepers(1)
        #expect(clock.sleepRequests == [.seconds(6)])  // 10/min: a token every 6 s
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
    }

    @Test("Attempts racing for one stored bucket take exactly its tokens (compare-and-set conflicts are read again)")
    func bucketRace() async throws {
        let clock = TestClock()
        let store = MemoryStore()
        let spec = RateLimit(count: 2, per: .seconds(1), burst: 5)
        let processes = (0..<4).map { _ in SharedLimits(store: store) }
        let taken = Counter()
        let tasks = (0..<10).map { i in
            Task {
                try await processes[i % 4].acquireToken(key: "race", spec: spec, clock: clock)
                taken.next()
            }
        }
        await clock.waitForSleepers(5)
        await eventually("the five with tokens finish") { taken.current == 5 }
        #expect(clock.sleeperCount == 5)
        #expect(clock.sleepRequests.allSatisfy { $0 == .milliseconds(500) }, "\(clock.sleepRequests)")
        // One token later exactly one more goes through; the others wait for the next.
        clock.advance(by: .milliseconds(500))
        await eventually("the others sleep again") { taken.current + clock.sleeperCount == 10 }
        #expect(taken.current == 6)
        for task in tasks { task.cancel() }
    }

    // MARK: Concurrency slots

    @Test("At most `limit` bodies hold a key at once; the next goes in when one gives its slot back", arguments: backends)
    func slots(_ backend: String) async throws {
        let clock = TestClock()
        let (a, b) = Self.limits(backend)
        let inside = Occupancy()
        // Each body holds its slot until the clock passes its deadline.
        func hold(_ limits: SharedLimits, _ who: String, for seconds: Int) -> Task<Void, any Error> {
            Task {
                try await limits.withSlot(key: "k", limit: 2, clock: clock) { _ in
                    inside.enter(who)
                    defer { inside.leave() }
                    try await clock.sleep(for: .seconds(seconds))
                }
            }
        }
        let first = [hold(a, "a1", for: 10), hold(a, "a2", for: 20)]
        await eventually("a1 and a2 hold both slots") { inside.entered.count == 2 }
        let late = hold(b, "b1", for: 5)
        // Waiting b1 may poll the store, but does not get in.
        await clock.waitForSleepers(backend == "store" ? 3 : 2)
        clock.advance(by: .seconds(1))
        await clock.waitForSleepers(backend == "store" ? 3 : 2)
        #expect(inside.entered.sorted() == ["a1", "a2"])
        clock.advance(by: .seconds(9))  // a1 ends
        try await first[0].value
        await eventually("b1 takes a1's slot") {
            if inside.entered.contains("b1") { return true }
            clock.advance(by: .milliseconds(100))  // the next poll
            return false
        }
        clock.advance(by: .seconds(20))
        try await first[1].value
        try await late.value
        #expect(inside.most == 2)
        #expect(inside.entered == ["a1", "a2", "b1"] || inside.entered == ["a2", "a1", "b1"])
    }

    @Test("A slot is given back when its body throws or is cancelled", arguments: backends)
    func slotGivenBack(_ backend: String) async throws {
        let clock = TestClock()
        let store = MemoryStore()
        let (a, _) = Self.limits(backend, store: store)
        await #expect(throws: TaskError.self) {
            try await a.withSlot(key: "k", limit: 1, clock: clock) { _ in throw TaskError("boom") }
        }
        let held = Task { try await a.withSlot(key: "k", limit: 1, clock: clock) { _ in try await clock.sleep(for: .seconds(60)) } }
        await clock.waitForSleepers(backend == "store" ? 2 : 1)  // the body, and the renewal
        held.cancel()
        await #expect(throws: CancellationError.self) { try await held.value }
        if backend == "store" {
            #expect(try await store.list(.system, prefix: "slots/k/", now: clock.now()).isEmpty)
        }
        // The one slot is free again: this does not wait.
        let waited = try await a.withSlot(key: "k", limit: 1, clock: clock) { $0 }
        #expect(waited == .zero)
    }

    @Test("A waiter whose task is cancelled leaves the queue; the next one gets the slot")
    func cancelledWaiter() async throws {
        let clock = TestClock()
        let limits = SharedLimits()
        let inside = Occupancy()
        let holder = Task { try await limits.withSlot(key: "k", limit: 1, clock: clock) { _ in try await clock.sleep(for: .seconds(1)) } }
        await clock.waitForSleepers(1)
        let gaveUp = Task { try await limits.withSlot(key: "k", limit: 1, clock: clock) { _ in inside.enter("gave up") } }
        let next = Task { try await limits.withSlot(key: "k", limit: 1, clock: clock) { _ in inside.enter("next") } }
        gaveUp.cancel()
        await #expect(throws: CancellationError.self) { try await gaveUp.value }
        clock.advance(by: .seconds(1))
        try await holder.value
        try await next.value
        #expect(inside.entered == ["next"])
    }

    @Test("A held slot is renewed; the slots of a process that died come free after their TTL")
    func renewalAndDeadHolders() async throws {
        let clock = TestClock()
        let store = MemoryStore()
        let config = SharedLimits.Configuration(slotTTL: 30, renewInterval: .seconds(10), pollInterval: .milliseconds(100))
        let alive = SharedLimits(store: store, configuration: config, random: { 0.5 })
        let held = Task { try await alive.withSlot(key: "r", limit: 1, clock: clock) { _ in try await clock.sleep(for: .seconds(100)) } }
        await clock.waitForSleepers(2)
        let before = try #require(try await store.get(.system, "slots/r/0", now: clock.now())?.expires)
        #expect(before == clock.now().addingTimeInterval(30))
        clock.advance(by: .seconds(10))
        try await eventually("the slot is renewed") {
            try await store.get(.system, "slots/r/0", now: clock.now())?.expires == clock.now().addingTimeInterval(30)
        }
        held.cancel()
        _ = try? await held.value

        // A process killed while holding both slots of `d` never gives them back.
        for i in 0..<2 { _ = try await store.create(.system, "slots/d/\(i)", ["holder": "dead"], ttl: 30, now: clock.now()) }
        let waiter = SharedLimits(store: store, configuration: config, random: { 0.5 })
        let entered = Counter()
        let late = Task {
            try await waiter.withSlot(key: "d", limit: 2, clock: clock) { waited in
                entered.next()
                return waited
            }
        }
        await clock.waitForSleepers(1)
        clock.advance(by: .seconds(29))
        await clock.waitForSleepers(1)
        #expect(entered.current == 0)
        // Announced as waiting, for other processes' fairness.
        #expect(try await store.list(.system, prefix: "slots/d/wait/", now: clock.now()).count == 1)
        clock.advance(by: .seconds(1))
        await eventually("the dead holder's slot comes free") {
            if entered.current == 1 { return true }
            clock.advance(by: .milliseconds(100))
            return false
        }
        #expect(try await late.value >= .seconds(30))
        #expect(try await store.list(.system, prefix: "slots/d/", now: clock.now()).isEmpty, "slot and wait entry are gone")
    }

    @Test("A process that gives a slot back lets another process's waiter take it before its own next attempt")
    func fairHandOver() async throws {
        let clock = TestClock()
        let store = MemoryStore()
        // b polls every 60 ms; a newcomer in a that defers to it waits 140 ms.
        let a = SharedLimits(store: store, random: { 0.9 })
        let b = SharedLimits(store: store, random: { 0.1 })
        let inside = Occupancy()
        func hold(_ limits: SharedLimits, _ who: String) -> Task<Void, any Error> {
            Task {
                try await limits.withSlot(key: "f", limit: 1, clock: clock) { _ in
                    inside.enter(who)
                    try await clock.sleep(for: .seconds(1))
                }
            }
        }
        let a1 = hold(a, "a1")
        await clock.waitForSleepers(2)  // a1's body and its renewal
        let b1 = hold(b, "b1")
        await clock.waitForSleepers(3)  // and b1, polling
        let a2 = hold(a, "a2")          // queued in a behind a1
        // Up to a1's end at 1 s (between two of b1's polls): a2 then finds b1 waiting.
        while clock.uptime() < .seconds(1) {
            await clock.waitForSleepers(3)
            clock.advanceToNextDeadline()
        }
        try await a1.value
        await clock.waitForSleepers(2)  // b1 and a2
        clock.advanceToNextDeadline()   // b1's poll comes first
        await eventually("b1 or a2 gets the slot") { inside.entered.count == 2 }
        #expect(inside.entered == ["a1", "b1"])
        await eventually("a2 gets it after b1") {
            if inside.entered.count == 3 { return true }
            clock.advance(by: .milliseconds(50))
            return false
        }
        clock.advance(by: .seconds(2))
        try await b1.value
        try await a2.value
        #expect(inside.entered == ["a1", "b1", "a2"])
    }

    // MARK: In the engine

    @Test("rate_limit: each attempt, each retry too, takes a token; a wait is noted at debug level")
    func engineRateLimit() async throws {
        let clock = TestClock()
        let starts = Mutex<[Duration]>([])
        let fails = Counter()
        let record = ClosureTask.processor("record") { e, ctx in
            starts.withLock { $0.append(ctx.clock.uptime()) }
            if e.data == 3, fails.next() == 1 { throw TaskError("once") }
            return .event(e)
        }
        let h = FlowHarness(registry: registry([record]), clock: clock)
        let plan = try h.plan("""
            flow:
              tasks:
                - split: {name: each}
                - record:
                    name: call
                    rate_limit: 2/s
                    retry: {max_attempts: 2, initial_backoff: 100ms, jitter: none}
            """)
        let run = Task { await h.engine.runOnce(plan, input: [1, 2, 3]) }
        // 1 and 2 take the burst; 3 waits 500 ms, fails, backs off 100 ms, waits 400 ms for the next token.
        for _ in 0..<3 {
            await clock.waitForSleepers(1)
            clock.advanceToNextDeadline()
        }
        let (summary, _) = await run.value
        #expect(summary.runsCompleted == 1)
        #expect(clock.sleepRequests == [.milliseconds(500), .milliseconds(100), .milliseconds(400)])
        #expect(starts.withLock { $0 } == [.zero, .zero, .milliseconds(500), .seconds(1)])
        let notes = h.recorder.events(.log, task: "call")
        #expect(notes.map(\.message) == ["waited 500ms for rate limit 'test/call' (2/s)", "waited 400ms for rate limit 'test/call' (2/s)"])
        #expect(notes.allSatisfy { $0.level == "debug" })
    }

    @Test("concurrency_key: attempts of tasks in different flows share the key's slots")
    func engineSlots() async throws {
        let clock = TestClock()
        let inside = Occupancy()
        let work = ClosureTask.processor("work") { e, ctx in
            inside.enter(ctx.flowName)
            defer { inside.leave() }
            try await ctx.clock.sleep(for: .seconds(1))
            return .event(e)
        }
        let h = FlowHarness(registry: registry([work]), clock: clock)
        func flow(_ name: String) throws -> FlowPlan {
            try h.plan("""
                flow:
                  name: \(name)
                  tasks:
                    - split: {name: each}
                    - work: {name: w, max_concurrent: 4, concurrency_key: shared, concurrency_limit: 3}
                """)
        }
        let runs = [try flow("one"), try flow("two")].map { plan in Task { await h.engine.runOnce(plan, input: [1, 2, 3, 4]) } }
        // Eight attempts of a second each, three at a time: 3, 3, then 2.
        for (asleep, entered) in [(3, 3), (3, 6), (2, 8)] {
            await clock.waitForSleepers(asleep)
            #expect(inside.entered.count == entered)
            clock.advance(by: .seconds(1))
        }
        for run in runs { #expect(await run.value.0.runsCompleted == 1) }
        #expect(inside.most == 3)
        #expect(Set(inside.entered) == ["one", "two"])
    }
}
