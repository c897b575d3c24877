import Foundation
import SluiceCore

/// Fans engine events out to the sinks; building an event is skipped when nobody listens.
struct EventBus: Sendable {
    let sinks: [any EngineEventSink]
    let wantsTaskEvents: Bool
    let isEmpty: Bool

    init(_ sinks: [any EngineEventSink]) {
        self.sinks = sinks
        self.wantsTaskEvents = sinks.contains(where: \.wantsTaskEvents)
        self.isEmpty = sinks.isEmpty
    }

    func emit(_ event: EngineEvent) {
        for sink in sinks { sink.receive(event) }
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
                             duration: duration, delay: delay, percent: percent, interrupted: interrupted, timestamp: clock.now()))
    }
}
