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
        var runsStarted: [String: UInt64] = [:]  // flow
        var runsEnded: [Pair: UInt64] = [:]  // flow, status
        var taskDurations: [Pair: Histogram] = [:]  // flow, task
        var taskFailures: [Pair: UInt64] = [:]
        var taskRetries: [Pair: UInt64] = [:]
        var eventsOut: [String: UInt64] = [:]
        var webhookLatency: [Pair: Histogram] = [:]  // path, status
        var httpRequests: [Pair: UInt64] = [:]  // route, status
    }

    struct Pair: Hashable {
        var a: String
        var b: String
    }

    private let state = Mutex(State())

    func record(_ event: EngineEvent) {
        switch event.kind {
        case .runStarted, .runCompleted, .runFailed, .runSuspended, .taskCompleted, .taskFailed, .taskRetrying: break
        default: return
        }
        state.withLock { s in
            switch event.kind {
            case .runStarted: s.runsStarted[event.flow, default: 0] += 1
            case .runCompleted: s.runsEnded[Pair(a: event.flow, b: "completed"), default: 0] += 1
            case .runFailed: s.runsEnded[Pair(a: event.flow, b: event.message == "cancelled" ? "cancelled" : "failed"), default: 0] += 1
            case .runSuspended: s.runsEnded[Pair(a: event.flow, b: "suspended"), default: 0] += 1
            case .taskCompleted:
                s.eventsOut[event.flow, default: 0] += 1
                if let d = event.duration { s.taskDurations[Pair(a: event.flow, b: event.task ?? ""), default: Histogram()].observe(d.seconds) }
            case .taskFailed:
                s.taskFailures[Pair(a: event.flow, b: event.task ?? ""), default: 0] += 1
                if let d = event.duration { s.taskDurations[Pair(a: event.flow, b: event.task ?? ""), default: Histogram()].observe(d.seconds) }
            case .taskRetrying: s.taskRetries[Pair(a: event.flow, b: event.task ?? ""), default: 0] += 1
            default: break
            }
        }
    }

    func recordWebhook(path: String, status: Int, seconds: Double) {
        state.withLock { $0.webhookLatency[Pair(a: path, b: String(status)), default: Histogram()].observe(seconds) }
    }

    func recordRequest(route: String, status: Int) {
        state.withLock { $0.httpRequests[Pair(a: route, b: String(status)), default: 0] += 1 }
    }

    /// The exposition text; `gauges` are values read at scrape time (queue depth, flows).
    func render(gauges: [(name: String, help: String, samples: [(labels: String, value: Double)])]) -> String {
        let s = state.withLock { $0 }
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
        for (flow, n) in s.runsStarted.sorted(by: { $0.key < $1.key }) { out += "sluice_runs_started_total\(label(("flow", flow))) \(n)\n" }
        header("sluice_runs_finished_total", "counter", "Runs ended, by status.")
        for (k, n) in s.runsEnded.sorted(by: { ($0.key.a, $0.key.b) < ($1.key.a, $1.key.b) }) {
            out += "sluice_runs_finished_total\(label(("flow", k.a), ("status", k.b))) \(n)\n"
        }
        header("sluice_events_out_total", "counter", "Events emitted by tasks (task completions).")
        for (flow, n) in s.eventsOut.sorted(by: { $0.key < $1.key }) { out += "sluice_events_out_total\(label(("flow", flow))) \(n)\n" }
        header("sluice_task_failures_total", "counter", "Task attempts that failed.")
        for (k, n) in s.taskFailures.sorted(by: { ($0.key.a, $0.key.b) < ($1.key.a, $1.key.b) }) {
            out += "sluice_task_failures_total\(label(("flow", k.a), ("task", k.b))) \(n)\n"
        }
        header("sluice_task_retries_total", "counter", "Task retries scheduled.")
        for (k, n) in s.taskRetries.sorted(by: { ($0.key.a, $0.key.b) < ($1.key.a, $1.key.b) }) {
            out += "sluice_task_retries_total\(label(("flow", k.a), ("task", k.b))) \(n)\n"
        }
        header("sluice_task_duration_seconds", "histogram", "Task attempt durations.")
        for (k, h) in s.taskDurations.sorted(by: { ($0.key.a, $0.key.b) < ($1.key.a, $1.key.b) }) {
            histogram("sluice_task_duration_seconds", [("flow", k.a), ("task", k.b)], h)
        }
        header("sluice_webhook_request_duration_seconds", "histogram", "Webhook requests, from body read to response, by status.")
        for (k, h) in s.webhookLatency.sorted(by: { ($0.key.a, $0.key.b) < ($1.key.a, $1.key.b) }) {
            histogram("sluice_webhook_request_duration_seconds", [("path", k.a), ("status", k.b)], h)
        }
        header("sluice_http_requests_total", "counter", "API and dashboard requests, by route and status.")
        for (k, n) in s.httpRequests.sorted(by: { ($0.key.a, $0.key.b) < ($1.key.a, $1.key.b) }) {
            out += "sluice_http_requests_total\(label(("route", k.a), ("status", k.b))) \(n)\n"
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
