import Foundation
import SluiceCore

/// Something that happened while a flow ran: what the CLI prints, tests assert on and the
/// server streams.
public struct EngineEvent: Sendable, CustomStringConvertible {
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        /// The kinds are a closed set: they compare and hash by this number, not by their text
        /// (every sink tests the kind of every event).
        let code: UInt8
        init(_ rawValue: String, _ code: UInt8) {
            self.rawValue = rawValue
            self.code = code
        }
        public var description: String { rawValue }

        public static func == (a: Kind, b: Kind) -> Bool { a.code == b.code }
        public func hash(into hasher: inout Hasher) { hasher.combine(code) }

        public static let runStarted = Kind("run_started", 0)
        public static let runCompleted = Kind("run_completed", 1)
        public static let runFailed = Kind("run_failed", 2)
        /// The run waits at an approval or signal gate; `message` says what for.
        public static let runSuspended = Kind("run_suspended", 3)
        public static let taskStarted = Kind("task_started", 4)
        public static let taskCompleted = Kind("task_completed", 5)
        public static let taskFailed = Kind("task_failed", 6)
        public static let taskRetrying = Kind("task_retrying", 7)
        public static let taskSkipped = Kind("task_skipped", 8)
        /// An item of a scatter was stopped, or never started, because its gather gave up.
        public static let taskCancelled = Kind("task_cancelled", 9)
        public static let log = Kind("log", 10)
        public static let progress = Kind("progress", 11)
        public static let stdout = Kind("stdout", 12)
        public static let stderr = Kind("stderr", 13)

        /// Whether the event ends its run (completed, failed or suspended).
        public var endsRun: Bool { code >= 1 && code <= 3 }
        /// Whether the event is about a task (`task_…`).
        public var isTask: Bool { code >= 4 && code <= 9 }
    }

    public var kind: Kind
    public var flow: String
    public var runID: String
    public var task: String?
    public var attempt: Int?
    /// A log line, an error message, a stdout line.
    public var message: String?
    /// Log level for `log` events: trace, debug, info, warn, error.
    public var level: String?
    /// How long the task attempt or the run took.
    public var duration: Duration?
    /// Delay before the next attempt, for `task_retrying`.
    public var delay: Duration?
    /// 0...100 for `progress`.
    public var percent: Double?
    /// Tasks that were working when a run was cancelled.
    public var interrupted: [String]?
    public var timestamp: Date

    public init(_ kind: Kind, flow: String, runID: String, task: String? = nil, attempt: Int? = nil, message: String? = nil,
                level: String? = nil, duration: Duration? = nil, delay: Duration? = nil, percent: Double? = nil,
                interrupted: [String]? = nil, timestamp: Date) {
        self.kind = kind
        self.flow = flow
        self.runID = runID
        self.task = task
        self.attempt = attempt
        self.message = message
        self.level = level
        self.duration = duration
        self.delay = delay
        self.percent = percent
        self.interrupted = interrupted
        self.timestamp = timestamp
    }

    /// The event as a JSON object, the form `--events json` prints and the API streams.
    public var json: Value {
        var o = Value.Object()
        o["type"] = .string(kind.rawValue)
        o["time"] = .string(EngineEvent.iso8601(timestamp))
        o["flow"] = .string(flow)
        o["run"] = .string(runID)
        if let task { o["task"] = .string(task) }
        if let attempt { o["attempt"] = .int(Int64(attempt)) }
        if let level { o["level"] = .string(level) }
        if let message { o["message"] = .string(message) }
        if let duration { o["duration_ms"] = .double((duration.seconds * 1e6).rounded() / 1e3) }
        if let delay { o["delay_ms"] = .double((delay.seconds * 1e6).rounded() / 1e3) }
        if let percent { o["percent"] = .double(percent) }
        if let interrupted { o["interrupted"] = .array(interrupted.map(Value.string)) }
        return .object(o)
    }

    public var description: String { json.jsonString() }

    /// `2026-11-22T09:05:03.250Z`: UTC with milliseconds. Written by hand: every event of a
    /// durable run is logged, and building a Foundation formatter per event cost more than the
    /// rest of a task hop.
    public static func iso8601(_ date: Date) -> String {
        let t = date.timeIntervalSince1970
        var whole = time_t(t.rounded(.down))
        let millis = min(999, Int(((t - Double(whole)) * 1000).rounded(.down)))
        var parts = tm()
        gmtime_r(&whole, &parts)
        var bytes = [UInt8](repeating: 0, count: 24)
        func put(_ value: Int, _ at: Int, _ width: Int) {
            var v = value
            for i in stride(from: at + width - 1, through: at, by: -1) {
                bytes[i] = UInt8(48 + v % 10)
                v /= 10
            }
        }
        put(Int(parts.tm_year) + 1900, 0, 4)
        put(Int(parts.tm_mon) + 1, 5, 2)
        put(Int(parts.tm_mday), 8, 2)
        put(Int(parts.tm_hour), 11, 2)
        put(Int(parts.tm_min), 14, 2)
        put(Int(parts.tm_sec), 17, 2)
        put(millis, 20, 3)
        for (i, c) in [(4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":"), (19, "."), (23, "Z")] { bytes[i] = c.utf8.first! }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Receives engine events. Called synchronously on the engine's threads: keep it quick.
public protocol EngineEventSink: Sendable {
    /// Whether this sink wants per-task events (`task_started`, `task_completed`); a sink that
    /// does not spares high-rate streams the cost of building them.
    var wantsTaskEvents: Bool { get }
    func receive(_ event: EngineEvent)
    /// Whether `sink(forRun:flow:)` may give a sink of its own; when no sink does, a run
    /// starts without asking.
    var splitsRuns: Bool { get }
    /// Where the events of one run go, asked once as the run starts (before its
    /// `run_started`). Nil, the default, sends them to `receive` with everyone else's;
    /// `NoRunEvents()` sends them nowhere. A sink that keeps something per run uses it to reach
    /// that at once, instead of finding the run (under a lock all runs share) for each event.
    /// Asked only of sinks whose `splitsRuns` is true.
    func sink(forRun id: String, flow: String) -> (any EngineEventSink)?
}

extension EngineEventSink {
    public var wantsTaskEvents: Bool { true }
    public var splitsRuns: Bool { false }
    public func sink(forRun id: String, flow: String) -> (any EngineEventSink)? { nil }
}

/// What a sink gives for a run whose events it has no use for: the run skips it.
public struct NoRunEvents: EngineEventSink {
    public init() {}
    public func receive(_ event: EngineEvent) {}
}

/// Collects events in memory; for tests and for reports.
public final class EventRecorder: EngineEventSink, @unchecked Sendable {
    // Guarded by `lock`; the engine calls `receive` from many threads.
    private let lock = NSLock()
    private var storage: [EngineEvent] = []

    public init() {}

    public func receive(_ event: EngineEvent) {
        lock.lock()
        storage.append(event)
        lock.unlock()
    }

    public var events: [EngineEvent] {
        lock.lock()
        defer { lock.unlock() }
        return storage
    }

    /// Events of one kind, optionally for one task.
    public func events(_ kind: EngineEvent.Kind, task: String? = nil) -> [EngineEvent] {
        events.filter { $0.kind == kind && (task == nil || $0.task == task) }
    }
}
