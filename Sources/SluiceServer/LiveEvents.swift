import DequeModule
import Foundation
import SluiceCore
import SluiceEngine
import Synchronization

/// Receives every engine event of the server: keeps recent runs (with their last events) for
/// the API and dashboard, adds them up for the metrics, and fans events out to live
/// subscribers (WebSocket and SSE clients), each with a bounded buffer.
///
/// Each run's events go straight to its own record, under that record's lock: two runs on
/// two threads do not meet. The list of runs is locked when a run starts, the metrics when
/// it ends (its events are counted then, or when `/metrics` is read), not for each event.
/// Lock order: a record's lock may be held while taking the metrics' lock, never the reverse.
final class LiveEvents: EngineEventSink {
    /// A run as the server last saw it; in-memory runs of streams exist only here.
    struct RecentRun: Sendable {
        var id: String
        var flow: String
        var status: String
        var trigger: String?
        var started: Date
        var ended: Date?
        var error: String?
        var failedTask: String?
        var events: [EngineEvent]
        var droppedEvents = 0
    }

    struct Subscriber {
        var flow: String?
        var run: String?
        var continuation: AsyncStream<EngineEvent>.Continuation
    }

    /// What the records share with the server: the metrics and the live subscribers. Records
    /// hold it, so that nothing holds them back in a cycle.
    final class Outlet: Sendable {
        struct Subscribers {
            var byID: [UInt64: Subscriber] = [:]
            var next: UInt64 = 0
        }

        let metrics = Mutex(EngineMetrics())
        let subscribers = Mutex(Subscribers())
        let subscriberCount = Atomic<Int>(0)
        /// Events kept per run.
        let eventsPerRun: Int

        init(eventsPerRun: Int) {
            self.eventsPerRun = eventsPerRun
        }

        func publish(_ event: EngineEvent) {
            guard subscriberCount.load(ordering: .relaxed) > 0 else { return }
            let targets = subscribers.withLock { s in
                s.byID.values.filter { ($0.flow == nil || $0.flow == event.flow) && ($0.run == nil || $0.run == event.runID) }.map(\.continuation)
            }
            for continuation in targets { continuation.yield(event) }
        }
    }

    /// One run's record; the engine sends the run's events here.
    final class Record: EngineEventSink {
        struct Inner {
            var run: RecentRun
            /// The newest events not yet counted in the metrics.
            var uncounted = 0
        }

        let id: String
        let inner: Mutex<Inner>
        /// Whether the run has ended (completed, failed or suspended); read without the lock
        /// when old runs are dropped.
        let ended = Atomic<Bool>(false)
        let outlet: Outlet

        init(_ run: RecentRun, outlet: Outlet) {
            id = run.id
            inner = Mutex(Inner(run: run))
            self.outlet = outlet
        }

        func receive(_ event: EngineEvent) {
            let limit = outlet.eventsPerRun
            let ends = event.kind.endsRun
            if event.kind == .runStarted { ended.store(false, ordering: .relaxed) }
            inner.withLock { r in
                LiveEvents.update(&r.run, with: event)
                if r.run.events.count >= limit {
                    let drop = r.run.events.count - limit + 1
                    // Events about to be dropped are counted first.
                    if r.run.events.count - r.uncounted < drop { count(&r) }
                    r.run.events.removeFirst(drop)
                    r.run.droppedEvents += drop
                } else if r.run.events.isEmpty {
                    r.run.events.reserveCapacity(min(limit, 16))
                }
                r.run.events.append(event)
                r.uncounted += 1
                // An event after the run's end (none today) is counted at once: nothing
                // else would count it.
                if ends || ended.load(ordering: .relaxed) {
                    count(&r)
                    ended.store(true, ordering: .relaxed)
                }
            }
            outlet.publish(event)
        }

        /// Adds the run's uncounted events to the metrics (with the record's lock held).
        func count(_ r: inout Inner) {
            guard r.uncounted > 0 else { return }
            let events = r.run.events.suffix(r.uncounted)
            r.uncounted = 0
            outlet.metrics.withLock { $0.record(events) }
        }

        var snapshot: RecentRun { inner.withLock { $0.run } }
    }

    private struct Runs {
        var byID: [String: Record] = [:]
        /// In the order they started, for listing and eviction.
        var order: Deque<Record> = []
    }

    private let runs = Mutex(Runs())
    let outlet: Outlet
    /// Runs kept.
    let maxRuns: Int

    init(eventsPerRun: Int, maxRuns: Int = 1000) {
        outlet = Outlet(eventsPerRun: max(1, eventsPerRun))
        self.maxRuns = maxRuns
    }

    var splitsRuns: Bool { true }

    /// The run's record, made (and listed) now if it is new; a resumed run keeps its record.
    func sink(forRun id: String, flow: String) -> (any EngineEventSink)? {
        record(id: id, flow: flow, started: Date())
    }

    private func record(id: String, flow: String, started: Date) -> Record {
        // Dropped records are freed when this returns, after the lock.
        var evicted: [Record] = []
        return runs.withLock { s in
            if let existing = s.byID[id] {
                // A resumed run: it is going again, and moves to the newest end of the list.
                existing.ended.store(false, ordering: .relaxed)
                if let at = s.order.firstIndex(where: { $0 === existing }) {
                    s.order.remove(at: at)
                    s.order.append(existing)
                }
                return existing
            }
            let record = Record(RecentRun(id: id, flow: flow, status: "running", started: started, events: []), outlet: outlet)
            s.byID[id] = record
            s.order.append(record)
            if s.order.count > maxRuns { evicted = evict(&s) }
            return record
        }
    }

    /// Events that did not come through a run's own sink: those of no run, and those a worker
    /// passes on.
    func receive(_ event: EngineEvent) {
        if !event.runID.isEmpty, let found = runs.withLock({ $0.byID[event.runID] }) {
            found.receive(event)
        } else if event.kind == .runStarted {
            record(id: event.runID, flow: event.flow, started: event.timestamp).receive(event)
        } else {
            outlet.metrics.withLock { $0.record(event) }
            outlet.publish(event)
        }
    }

    /// What the engine's events added up to, for `/metrics`, including those of runs still
    /// going.
    var engineMetrics: EngineMetrics {
        let running = runs.withLock { s in s.order.filter { !$0.ended.load(ordering: .relaxed) } }
        for record in running { record.inner.withLock { record.count(&$0) } }
        return outlet.metrics.withLock { $0 }
    }

    fileprivate static func update(_ run: inout RecentRun, with event: EngineEvent) {
        switch event.kind {
        case .runStarted:
            run.status = "running"
            run.ended = nil
            if run.events.isEmpty { run.started = event.timestamp }
        case .runCompleted:
            run.status = "completed"
            run.ended = event.timestamp
        case .runFailed:
            run.status = event.message == "cancelled" ? "cancelled" : "failed"
            run.ended = event.timestamp
            run.error = event.message
            run.failedTask = event.task
        case .runSuspended:
            run.status = "suspended"
            run.ended = event.timestamp
            run.error = event.message
        default: break
        }
    }

    /// Drops the oldest ended runs beyond `maxRuns`; running ones stay. Usually the oldest
    /// have ended and go one by one from the front. Behind one still running, runs pile up
    /// until there are a quarter more than kept; then one pass drops the oldest ended ones.
    /// Returns the dropped records, for the caller to free after the lock.
    private func evict(_ s: inout Runs) -> [Record] {
        var dropped: [Record] = []
        while s.order.count > maxRuns, let first = s.order.first, first.ended.load(ordering: .relaxed) {
            s.order.removeFirst()
            s.byID.removeValue(forKey: first.id)
            dropped.append(first)
        }
        guard s.order.count > maxRuns + maxRuns / 4 else { return dropped }
        var keep: Deque<Record> = []
        var excess = s.order.count - maxRuns
        for record in s.order {
            if excess > 0, record.ended.load(ordering: .relaxed) {
                s.byID.removeValue(forKey: record.id)
                dropped.append(record)
                excess -= 1
            } else {
                keep.append(record)
            }
        }
        s.order = keep
        return dropped
    }

    /// Live events matching the filters, as they happen. A subscriber that falls `buffer`
    /// events behind loses the oldest ones instead of holding memory.
    func subscribe(flow: String?, run: String?, buffer: Int) -> AsyncStream<EngineEvent> {
        let (stream, continuation) = AsyncStream<EngineEvent>.makeStream(bufferingPolicy: .bufferingNewest(max(1, buffer)))
        let outlet = self.outlet
        let id = outlet.subscribers.withLock { s -> UInt64 in
            s.next += 1
            s.byID[s.next] = Subscriber(flow: flow, run: run, continuation: continuation)
            return s.next
        }
        outlet.subscriberCount.add(1, ordering: .relaxed)
        continuation.onTermination = { _ in
            outlet.subscribers.withLock { _ = $0.byID.removeValue(forKey: id) }
            outlet.subscriberCount.subtract(1, ordering: .relaxed)
        }
        return stream
    }

    /// Ends every subscription (at shutdown).
    func finishAll() {
        let continuations = outlet.subscribers.withLock { $0.byID.values.map(\.continuation) }
        for c in continuations { c.finish() }
    }

    func run(_ id: String) -> RecentRun? {
        runs.withLock { $0.byID[id] }?.snapshot
    }

    /// Recent runs, newest first.
    func recentRuns(flow: String?, status: String?, limit: Int) -> [RecentRun] {
        let records = runs.withLock { s in Array(s.order.reversed()) }
        var out: [RecentRun] = []
        for record in records {
            let run = record.snapshot
            if let flow, run.flow != flow { continue }
            if let status, run.status != status { continue }
            out.append(run)
            if out.count >= limit { break }
        }
        return out
    }
}
