import Foundation
import SluiceCore
import Synchronization

/// Where a run is: waiting in the queue, running, or how it ended.
public struct RunStatus: Sendable, Hashable, CustomStringConvertible {
    public let rawValue: String
    init(_ rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    public static let queued = RunStatus("queued")
    public static let running = RunStatus("running")
    public static let completed = RunStatus("completed")
    public static let failed = RunStatus("failed")
    public static let cancelled = RunStatus("cancelled")
    /// Suspended at an approval gate: nothing runs and nothing is held until someone decides.
    public static let waitingApproval = RunStatus("waiting_approval")
    /// Suspended at a signal gate until its token is signalled (or the gate times out).
    public static let waitingSignal = RunStatus("waiting_signal")

    public static let allCases: [RunStatus] = [.queued, .running, .completed, .failed, .cancelled, .waitingApproval, .waitingSignal]

    /// Whether the run is parked at a gate.
    public var isWaiting: Bool { self == .waitingApproval || self == .waitingSignal }

    /// A status read back from a store; nil for a name Sluice does not know.
    public init?(rawValue: String) {
        guard let known = Self.allCases.first(where: { $0.rawValue == rawValue }) else { return nil }
        self = known
    }

    /// Whether the run has ended and will not change again (a retry is a new run).
    public var isFinal: Bool { self == .completed || self == .failed || self == .cancelled }
}

/// A leaf task's output for a run.
public struct LeafResult: Sendable {
    public var task: String
    public var event: Event
}

/// Everything that followed from one root event, once it has ended.
public struct RunReport: Sendable {
    public var id: String
    public var status: RunStatus
    public var results: [LeafResult]
    /// Why the run failed, if it did.
    public var error: String?
    /// The task whose failure failed the run.
    public var failedTask: String?
    public var duration: Duration
    /// Runs whose events a `buffer` combined into this one; they complete with it.
    public var absorbedRuns: Int

    /// The run's result as `sluice run` prints it: the data of the only leaf event, or, when
    /// there are several, an object keyed by leaf task (an array where one task emitted several).
    public var resultValue: Value {
        guard let first = results.first else { return .null }
        if results.allSatisfy({ $0.task == first.task }) {
            return results.count == 1 ? first.event.data : .array(results.map(\.event.data))
        }
        var grouped = OrderedDictionary<String, [Value]>()
        for r in results { grouped[r.task, default: []].append(r.event.data) }
        return .object(grouped.mapValues { $0.count == 1 ? $0[0] : .array($0) })
    }
}

/// The bookkeeping of one run: a count of events in flight (tokens), joins waiting on it, its
/// results. When the count drops to zero the run is quiescent: either a waiting join is
/// flushed with what it has, or the run is complete.
final class RunState: Sendable {
    private struct Inner {
        var pending: [Int: Int] = [:]  // stage index -> keys waiting there
        var results: [LeafResult] = []
        var error: String?
        var failedTask: String?
        var finished = false
        var cancelled = false
        /// Parked at a gate: the status it waits in, and what for.
        var suspended: (RunStatus, String)?
        var absorbed: [RunState] = []
        var timer: Task<Void, Never>?
        /// Who waits for this run's report (a webhook request).
        var onFinish: (@Sendable (RunReport) -> Void)?
    }

    let number: UInt64
    let prefix: String
    let startedAt: Duration
    /// Whether the run counts against `max_runs_in_flight` (a buffer's batch run does not).
    let limited: Bool
    private let inflight = Atomic<Int>(0)
    /// Tokens held by a buffer (or by a batch run that absorbed this run): the run waits on
    /// them but does no work of its own.
    private let held = Atomic<Int>(0)
    private let failedFlag = Atomic<Bool>(false)
    private let inner = Mutex(Inner())
    unowned let execution: FlowExecution
    /// Set when the run is recorded in a store: it checkpoints its tasks there.
    let durable: DurableRun?

    init(number: UInt64, prefix: String, startedAt: Duration, limited: Bool = true, execution: FlowExecution, durable: DurableRun? = nil) {
        self.durable = durable
        self.number = number
        self.limited = limited
        self.prefix = prefix
        self.startedAt = startedAt
        self.execution = execution
        self.id = durable?.id ?? prefix + "-" + String(number)
        self.sinks = execution.bus.sinks(forRun: id, flow: execution.plan.definition.name)
    }

    /// Made once: every event of the run carries it.
    let id: String
    /// Where the run's engine events go.
    let sinks: [any EngineEventSink]

    var isFailed: Bool { failedFlag.load(ordering: .relaxed) }

    /// Why the run failed, nil while it has not (or was cancelled).
    var failure: String? { inner.withLock { $0.cancelled ? nil : $0.error } }
    var isCancelled: Bool { inner.withLock { $0.cancelled } }

    /// Takes `n` tokens: events about to enter a stage.
    func retain(_ n: Int = 1) {
        inflight.add(n, ordering: .relaxed)
    }

    /// Gives back one token; the last one makes the run quiescent. When only held tokens are
    /// left, the run is stalled: the execution may have to drain its buffers.
    func release() {
        let left = inflight.subtract(1, ordering: .sequentiallyConsistent).newValue
        if left == 0 {
            quiesced()
        } else if left == held.load(ordering: .sequentiallyConsistent) {
            execution.runStalled()
        }
    }

    /// Marks one of the run's tokens as held by a buffer.
    func hold() {
        held.add(1, ordering: .sequentiallyConsistent)
    }

    /// The buffer let go of a held token (the caller still releases the token itself).
    func unhold() {
        held.subtract(1, ordering: .sequentiallyConsistent)
    }

    /// True when everything the run still has in flight is held by buffers.
    var isStalled: Bool {
        let h = held.load(ordering: .sequentiallyConsistent)
        return h > 0 && inflight.load(ordering: .sequentiallyConsistent) == h
    }

    /// A join at `stage` holds part of this run; it must be flushed if the rest never comes.
    func addPending(stage: Int) {
        inner.withLock { $0.pending[stage, default: 0] += 1 }
    }

    func removePending(stage: Int, count: Int = 1) {
        inner.withLock {
            let left = ($0.pending[stage] ?? 0) - count
            $0.pending[stage] = left > 0 ? left : nil
        }
    }

    func record(_ result: LeafResult) {
        inner.withLock { $0.results.append(result) }
    }

    /// Fails the run; its remaining events are dropped as they reach a stage.
    func fail(_ message: String, task: String?) {
        let first = inner.withLock { s -> Bool in
            guard s.error == nil else { return false }
            s.error = message
            s.failedTask = task
            return true
        }
        if first {
            failedFlag.store(true, ordering: .relaxed)
            execution.runFailedEarly(self)
        }
    }

    /// Parks the run at a gate: this path stops here, and once the rest of the run has reached
    /// its end or a gate of its own (each element of a scatter may wait at its own gate), the
    /// run ends with `status`.
    /// `.queued` asks for the run to start again from its checkpoints, and wins over waiting:
    /// the gates still pending suspend it again then.
    func suspend(_ status: RunStatus, _ message: String) {
        inner.withLock { if $0.suspended == nil || (status == .queued && $0.suspended?.0 != .queued) { $0.suspended = (status, message) } }
    }

    func markCancelled() {
        inner.withLock { $0.cancelled = true }
        failedFlag.store(true, ordering: .relaxed)
    }

    /// Runs whose completion waits on this one (a buffered batch).
    func absorb(_ runs: [RunState]) {
        inner.withLock { $0.absorbed.append(contentsOf: runs) }
    }

    func setOnFinish(_ body: @escaping @Sendable (RunReport) -> Void) {
        inner.withLock { $0.onFinish = body }
    }

    /// The waiter for the report, once: the run has ended.
    func takeOnFinish() -> (@Sendable (RunReport) -> Void)? {
        inner.withLock { s in
            defer { s.onFinish = nil }
            return s.onFinish
        }
    }

    func setTimer(_ task: Task<Void, Never>) {
        let finished = inner.withLock { s -> Bool in
            if s.finished { return true }
            s.timer = task
            return false
        }
        if finished { task.cancel() }
    }

    /// The report of a run ended from outside (the execution stopped): failed if it had
    /// failed, cancelled otherwise.
    func finishReport(duration: Duration) -> RunReport {
        let (report, timer) = inner.withLock { s -> (RunReport, Task<Void, Never>?) in
            s.finished = true
            let status: RunStatus = s.error != nil ? .failed : .cancelled
            let timer = s.timer
            s.timer = nil
            return (RunReport(id: id, status: status, results: s.results, error: s.error, failedTask: s.failedTask,
                              duration: duration, absorbedRuns: s.absorbed.count), timer)
        }
        timer?.cancel()
        return report
    }

    private func quiesced() {
        enum Next { case flush(Int), finish(RunReport, [RunState], Task<Void, Never>?), nothing }
        let next: Next = inner.withLock { s in
            if s.finished { return .nothing }
            if s.error == nil, !s.cancelled, s.suspended == nil, let stage = s.pending.keys.min() {
                return .flush(stage)
            }
            s.finished = true
            let status: RunStatus = s.error != nil ? .failed : s.suspended?.0 ?? (s.cancelled ? .cancelled : .completed)
            let report = RunReport(id: id, status: status, results: s.results, error: s.error ?? s.suspended?.1, failedTask: s.failedTask,
                                   duration: execution.clock.uptime() - startedAt, absorbedRuns: s.absorbed.count)
            let absorbed = s.absorbed
            s.absorbed = []
            s.results = []
            let timer = s.timer
            s.timer = nil
            return .finish(report, absorbed, timer)
        }
        switch next {
        case .flush(let stage):
            retain()
            execution.flush(run: self, stage: stage)
        case .finish(let report, let absorbed, let timer):
            timer?.cancel()
            for run in absorbed {
                if report.status == .failed { run.fail(report.error ?? "failed", task: report.failedTask) }
                if report.status == .cancelled { run.markCancelled() }
                run.unhold()
                run.release()
            }
            execution.runFinished(self, report: report)
        case .nothing:
            break
        }
    }
}
