import Foundation
import SluiceCore
import SluiceEngine
import Synchronization

/// Receives every engine event of the server: keeps recent runs (with their last events) for
/// the API and dashboard, feeds the metrics, and fans events out to live subscribers
/// (WebSocket and SSE clients), each with a bounded buffer.
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

    private struct State {
        var runs: [String: RecentRun] = [:]
        /// Run ids in the order they started, for eviction.
        var order: [String] = []
        var subscribers: [UInt64: Subscriber] = [:]
        var nextSubscriber: UInt64 = 0
    }

    private let state = Mutex(State())
    private let subscriberCount = Atomic<Int>(0)
    let metrics: ServerMetrics
    /// Events kept per run.
    let eventsPerRun: Int
    /// Runs kept.
    let maxRuns: Int

    init(metrics: ServerMetrics, eventsPerRun: Int, maxRuns: Int = 1000) {
        self.metrics = metrics
        self.eventsPerRun = max(1, eventsPerRun)
        self.maxRuns = maxRuns
    }

    func receive(_ event: EngineEvent) {
        metrics.record(event)
        let limit = eventsPerRun
        state.withLock { s in
            // One lookup per event; the run is changed in place (copying it out and back would
            // copy its event list each time).
            if event.kind == .runStarted {
                if s.runs[event.runID] == nil {
                    s.order.append(event.runID)
                    s.runs[event.runID] = RecentRun(id: event.runID, flow: event.flow, status: "running", started: event.timestamp, events: [])
                    if s.order.count > maxRuns + maxRuns / 4 { evict(&s) }
                }
            }
            guard let index = s.runs.index(forKey: event.runID) else { return }
            Self.update(&s.runs.values[index], with: event, limit: limit)
        }
        guard subscriberCount.load(ordering: .relaxed) > 0 else { return }
        let targets = state.withLock { s in
            s.subscribers.values.filter { ($0.flow == nil || $0.flow == event.flow) && ($0.run == nil || $0.run == event.runID) }.map(\.continuation)
        }
        for continuation in targets { continuation.yield(event) }
    }

    private static func update(_ run: inout RecentRun, with event: EngineEvent, limit: Int) {
        switch event.kind {
        case .runStarted:
            run.status = "running"
            run.ended = nil
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
        append(event, to: &run, limit: limit)
    }

    private static func append(_ event: EngineEvent, to run: inout RecentRun, limit eventsPerRun: Int) {
        if run.events.count >= eventsPerRun {
            run.events.removeFirst(run.events.count - eventsPerRun + 1)
            run.droppedEvents += 1
        }
        run.events.append(event)
    }

    /// Drops the oldest finished runs beyond `maxRuns` (running ones stay); called once a
    /// quarter more have piled up, so the cost per run stays constant.
    private func evict(_ s: inout State) {
        var keep: [String] = []
        var excess = s.order.count - maxRuns
        for id in s.order {
            if excess > 0, let run = s.runs[id], run.status != "running" {
                s.runs.removeValue(forKey: id)
                excess -= 1
            } else {
                keep.append(id)
            }
        }
        s.order = keep
    }

    /// Live events matching the filters, as they happen. A subscriber that falls `buffer`
    /// events behind loses the oldest ones instead of holding memory.
    func subscribe(flow: String?, run: String?, buffer: Int) -> AsyncStream<EngineEvent> {
        let (stream, continuation) = AsyncStream<EngineEvent>.makeStream(bufferingPolicy: .bufferingNewest(max(1, buffer)))
        let id = state.withLock { s -> UInt64 in
            s.nextSubscriber += 1
            s.subscribers[s.nextSubscriber] = Subscriber(flow: flow, run: run, continuation: continuation)
            return s.nextSubscriber
        }
        subscriberCount.add(1, ordering: .relaxed)
        continuation.onTermination = { [weak self] _ in
            guard let self else { return }
            self.state.withLock { _ = $0.subscribers.removeValue(forKey: id) }
            self.subscriberCount.subtract(1, ordering: .relaxed)
        }
        return stream
    }

    /// Ends every subscription (at shutdown).
    func finishAll() {
        let continuations = state.withLock { $0.subscribers.values.map(\.continuation) }
        for c in continuations { c.finish() }
    }

    func run(_ id: String) -> RecentRun? { state.withLock { $0.runs[id] } }

    /// Recent runs, newest first.
    func recentRuns(flow: String?, status: String?, limit: Int) -> [RecentRun] {
        state.withLock { s in
            var out: [RecentRun] = []
            for id in s.order.reversed() {
                guard let run = s.runs[id] else { continue }
                if let flow, run.flow != flow { continue }
                if let status, run.status != status { continue }
                out.append(run)
                if out.count >= limit { break }
            }
            return out
        }
    }
}
