import Foundation
import SluiceCore
import SluiceEngine
import Synchronization

/// Counters and histograms for `/metrics`, in the Prometheus text format.
final class ServerMetrics: Sendable {
    struct Histogram {
        static let bounds: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
        var counts = [UInt64](repeating: 0, count: bounds.count)
        var count: UInt64 = 0
        var sum: Double = 0

        mutating func observe(_ seconds: Double) {
            count += 1
            sum += seconds
            if let i = Self.bounds.firstIndex(where: { seconds <= $0 }) { counts[i] += 1 }
        }
    }

    private struct State {
        var webhookLatency: [ByStatus: Histogram] = [:]  // path, status
        var httpRequests: [ByStatus: UInt64] = [:]  // route, status
    }

    /// A path or route and a response status.
    struct ByStatus: Hashable, Comparable {
        var label: String
        var status: Int

        static func < (a: ByStatus, b: ByStatus) -> Bool { (a.label, a.status) < (b.label, b.status) }
    }

    private let state = Mutex(State())

    func recordWebhook(path: String, status: Int, seconds: Double) {
        state.withLock { $0.webhookLatency[ByStatus(label: path, status: status), default: Histogram()].observe(seconds) }
    }

    func recordRequest(route: String, status: Int) {
        state.withLock { $0.httpRequests[ByStatus(label: route, status: status), default: 0] += 1 }
    }

    /// The exposition text; `gauges` are values read at scrape time (queue depth, flows).
    /// `engine` is what the engine's events added up to (kept by `LiveEvents`).
    func render(engine: EngineMetrics, gauges: [(name: String, help: String, samples: [(labels: String, value: Double)])]) -> String {
        let s = state.withLock { $0 }
        let flows = engine.flows.sorted { $0.key < $1.key }
        func eachTask(_ body: (String, String, EngineMetrics.TaskCounters) -> Void) {
            for (flow, f) in flows {
                for (task, t) in f.tasks.sorted(by: { $0.key < $1.key }) { body(flow, task, t) }
            }
        }
        var out = ""
        func header(_ name: String, _ type: String, _ help: String) { out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n" }
        func label(_ pairs: (String, String)...) -> String {
            "{" + pairs.map { "\($0.0)=\"\(escape($0.1))\"" }.joined(separator: ",") + "}"
        }
        func number(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v) }
        func histogram(_ name: String, _ labels: [(String, String)], _ h: Histogram) {
            let base = labels.map { "\($0.0)=\"\(escape($0.1))\"" }.joined(separator: ",")
            var cumulative: UInt64 = 0
            for (i, bound) in Histogram.bounds.enumerated() {
                cumulative += h.counts[i]
                out += "\(name)_bucket{\(base),le=\"\(number(bound))\"} \(cumulative)\n"
            }
            out += "\(name)_bucket{\(base),le=\"+Inf\"} \(h.count)\n"
            out += "\(name)_sum{\(base)} \(h.sum)\n\(name)_count{\(base)} \(h.count)\n"
        }

        header("sluice_runs_started_total", "counter", "Runs started (events in: one per source event or trigger).")
        for (flow, f) in flows where f.runsStarted > 0 { out += "sluice_runs_started_total\(label(("flow", flow))) \(f.runsStarted)\n" }
        header("sluice_runs_finished_total", "counter", "Runs ended, by status.")
        for (flow, f) in flows {
            for (status, n) in f.runsEnded.sorted(by: { $0.key < $1.key }) {
                out += "sluice_runs_finished_total\(label(("flow", flow), ("status", status))) \(n)\n"
            }
        }
        header("sluice_events_out_total", "counter", "Events emitted by tasks (task completions).")
        for (flow, f) in flows where f.eventsOut > 0 { out += "sluice_events_out_total\(label(("flow", flow))) \(f.eventsOut)\n" }
        header("sluice_task_failures_total", "counter", "Task attempts that failed.")
        eachTask { flow, task, t in
            if t.failures > 0 { out += "sluice_task_failures_total\(label(("flow", flow), ("task", task))) \(t.failures)\n" }
        }
        header("sluice_task_retries_total", "counter", "Task retries scheduled.")
        eachTask { flow, task, t in
            if t.retries > 0 { out += "sluice_task_retries_total\(label(("flow", flow), ("task", task))) \(t.retries)\n" }
        }
        header("sluice_task_duration_seconds", "histogram", "Task attempt durations.")
        eachTask { flow, task, t in
            if t.durations.count > 0 { histogram("sluice_task_duration_seconds", [("flow", flow), ("task", task)], t.durations) }
        }
        header("sluice_webhook_request_duration_seconds", "histogram", "Webhook requests, from body read to response, by status.")
        for (k, h) in s.webhookLatency.sorted(by: { $0.key < $1.key }) {
            histogram("sluice_webhook_request_duration_seconds", [("path", k.label), ("status", String(k.status))], h)
        }
        header("sluice_http_requests_total", "counter", "API and dashboard requests, by route and status.")
        for (k, n) in s.httpRequests.sorted(by: { $0.key < $1.key }) {
            out += "sluice_http_requests_total\(label(("route", k.label), ("status", String(k.status)))) \(n)\n"
        }
        for gauge in gauges {
            header(gauge.name, "gauge", gauge.help)
            for sample in gauge.samples { out += "\(gauge.name)\(sample.labels) \(number(sample.value))\n" }
        }
        return out
    }

    func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }
}

/// What the engine's events add up to, for `/metrics`: by flow, then by task. `LiveEvents`
/// keeps it under the lock it already takes for each event.
struct EngineMetrics {
    struct TaskCounters {
        var durations = ServerMetrics.Histogram()
        var failures: UInt64 = 0
        var retries: UInt64 = 0
    }

    struct FlowCounters {
        var runsStarted: UInt64 = 0
        var runsEnded: [String: UInt64] = [:]  // status
        var eventsOut: UInt64 = 0
        var tasks: [String: TaskCounters] = [:]

        mutating func record(_ event: EngineEvent) {
            switch event.kind {
            case .runStarted: runsStarted += 1
            case .runCompleted: runsEnded["completed", default: 0] += 1
            case .runFailed: runsEnded[event.message == "cancelled" ? "cancelled" : "failed", default: 0] += 1
            case .runSuspended: runsEnded["suspended", default: 0] += 1
            case .taskCompleted:
                eventsOut += 1
                if let d = event.duration { tasks[event.task ?? "", default: TaskCounters()].durations.observe(d.seconds) }
            case .taskFailed:
                EngineMetrics.change(&tasks[event.task ?? "", default: TaskCounters()]) { t in
                    t.failures += 1
                    if let d = event.duration { t.durations.observe(d.seconds) }
                }
            case .taskRetrying: tasks[event.task ?? "", default: TaskCounters()].retries += 1
            default: break
            }
        }
    }

    var flows: [String: FlowCounters] = [:]

    mutating func record(_ event: EngineEvent) {
        flows[event.flow, default: FlowCounters()].record(event)
    }

    /// Several events; each run of events of one flow looks the flow up once.
    mutating func record(_ events: ArraySlice<EngineEvent>) {
        var i = events.startIndex
        while i < events.endIndex {
            let flow = events[i].flow
            Self.change(&flows[flow, default: FlowCounters()]) { f in
                while i < events.endIndex, events[i].flow == flow {
                    f.record(events[i])
                    i += 1
                }
            }
        }
    }

    /// One look-up for several changes to the same entry.
    @inline(__always) fileprivate static func change<T>(_ value: inout T, _ body: (inout T) -> Void) { body(&value) }
}
