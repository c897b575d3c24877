import Foundation
import SluiceCore

/// Fans engine events out to the sinks; building an event is skipped when nobody listens.
struct EventBus: Sendable {
    let sinks: [any EngineEventSink]
    let wantsTaskEvents: Bool
    let isEmpty: Bool
    let splitsRuns: Bool

    init(_ sinks: [any EngineEventSink]) {
        self.sinks = sinks
        self.wantsTaskEvents = sinks.contains(where: \.wantsTaskEvents)
        self.isEmpty = sinks.isEmpty
        self.splitsRuns = sinks.contains(where: \.splitsRuns)
    }

    /// The sinks a new run's events go to: each sink's own for the run, or the sink itself.
    func sinks(forRun id: String, flow: String) -> [any EngineEventSink] {
        guard splitsRuns else { return sinks }
        return sinks.compactMap { sink in
            guard let own = sink.sink(forRun: id, flow: flow) else { return sink }
            return type(of: own) == NoRunEvents.self ? nil : own
        }
    }

    /// An event of `run` goes to the run's sinks; one of no run to the bus's.
    func emit(_ event: EngineEvent, run: RunState?) {
        for sink in run?.sinks ?? sinks { sink.receive(event) }
    }
}

/// What every worker of one stage shares.
final class StageShared: Sendable {
    let flowName: String
    let clock: any EngineClock
    let environment: [String: String]
    let bus: EventBus
    let inputPorts: Set<String>
    let limits: SharedLimits

    init(flowName: String, clock: any EngineClock, environment: [String: String], bus: EventBus, inputPorts: Set<String>,
         limits: SharedLimits) {
        self.flowName = flowName
        self.clock = clock
        self.environment = environment
        self.bus = bus
        self.inputPorts = inputPorts
        self.limits = limits
    }

    func emit(_ kind: EngineEvent.Kind, run: RunState?, task: String?, attempt: Int? = nil, message: String? = nil, level: String? = nil,
              duration: Duration? = nil, delay: Duration? = nil, percent: Double? = nil, interrupted: [String]? = nil) {
        guard !bus.isEmpty else { return }
        bus.emit(EngineEvent(kind, flow: flowName, runID: run?.id ?? "", task: task, attempt: attempt, message: message, level: level,
                             duration: duration, delay: delay, percent: percent, interrupted: interrupted, timestamp: clock.now()),
                 run: run)
    }
}
