import Foundation
import SluiceCore

/// A task that maps one event to zero, one or many.
public protocol TaskProcessor: Sendable {
    /// Handles one event. Throw `TaskError` to say whether a retry can help; any other error
    /// counts as retryable.
    func process(_ event: Event, _ context: TaskContext) async throws -> TaskOutput
}

/// A task that produces events from outside the flow; each event it emits starts a run.
public protocol TaskSource: Sendable {
    /// Emits events until the source is exhausted (return) or the flow stops (cancellation).
    func run(_ emitter: SourceEmitter, _ context: TaskContext) async throws
}

/// What a processor produced for one event.
public struct TaskOutput: Sendable {
    enum Storage: Sendable {
        case none
        case one(Event)
        case many([Event])
    }

    let storage: Storage

    /// Nothing: the event's path ends here (a filter).
    public static let drop = TaskOutput(storage: .none)
    /// One event.
    public static func event(_ event: Event) -> TaskOutput { TaskOutput(storage: .one(event)) }
    /// Several events that flow on independently; a downstream `gather` can collect them again.
    public static func events(_ events: [Event]) -> TaskOutput { TaskOutput(storage: .many(events)) }
}

/// What a task gets for one attempt on one event.
public struct TaskContext: Sendable {
    /// The task's config, with templates rendered for this event.
    public let config: Value.Object
    public let taskName: String
    /// 1 for the first attempt.
    public let attempt: Int
    let shared: StageShared
    let run: RunState?
    /// The event's identity in its run, as checkpoints name it (`task`, or `task@i` for an item
    /// of a scatter); empty outside a durable run.
    var item = ""
    /// The tasks feeding this one.
    var parents: [String] = []

    public var flowName: String { shared.flowName }
    public var runID: String { run?.id ?? "" }
    public var clock: any EngineClock { shared.clock }
    /// The process environment as the flow sees it.
    public var environment: [String: String] { shared.environment }

    /// A log line attributed to this task.
    public func log(_ message: String, level: String = "info") {
        shared.emit(.log, run: run, task: taskName, message: message, level: level)
    }

    /// A line a child process wrote to its standard output.
    public func stdout(_ line: String) { shared.emit(.stdout, run: run, task: taskName, message: line) }

    /// A line a child process wrote to its standard error.
    public func stderr(_ line: String) { shared.emit(.stderr, run: run, task: taskName, message: line) }

    public func progress(_ percent: Double, _ message: String? = nil) {
        shared.emit(.progress, run: run, task: taskName, message: message, percent: percent)
    }

    /// A field's value: from the config, or else from the input of the same name
    /// (`event.data.<name>`, how FlowEngine workflows pass values between nodes).
    public func value(_ field: String, in event: Event) -> Value? {
        if let v = config[field], !v.isNull { return v }
        if shared.inputPorts.contains(field), let v = event.data[field], !v.isNull { return v }
        return nil
    }
}

/// Typed reads of config fields; a wrong type becomes a non-retryable `TaskError` naming the field.
extension Value.Object {
    public func string(_ key: String) throws(TaskError) -> String? {
        switch self[key] {
        case nil, .null?: return nil
        case .string(let s)?: return s
        case .int(let i)?: return String(i)
        case .double(let d)?: return String(d)
        case .bool(let b)?: return String(b)
        case let v?: throw TaskError.invalidConfig("field '\(key)' must be a string, got \(v.typeName)")
        }
    }

    public func int(_ key: String) throws(TaskError) -> Int? {
        switch self[key] {
        case nil, .null?: return nil
        case .string(let s)?:
            guard let i = Int(s.trimmingCharacters(in: .whitespaces)) else { throw TaskError.invalidConfig("field '\(key)' must be an integer, got '\(s)'") }
            return i
        case let v?:
            guard let i = v.intValue else { throw TaskError.invalidConfig("field '\(key)' must be an integer, got \(v.typeName)") }
            return Int(i)
        }
    }

    public func double(_ key: String) throws(TaskError) -> Double? {
        switch self[key] {
        case nil, .null?: return nil
        case .string(let s)?:
            guard let d = Double(s) else { throw TaskError.invalidConfig("field '\(key)' must be a number, got '\(s)'") }
            return d
        case let v?:
            guard let d = v.doubleValue else { throw TaskError.invalidConfig("field '\(key)' must be a number, got \(v.typeName)") }
            return d
        }
    }

    public func bool(_ key: String) throws(TaskError) -> Bool? {
        switch self[key] {
        case nil, .null?: return nil
        case .bool(let b)?: return b
        case .string("true")?: return true
        case .string("false")?: return false
        case let v?: throw TaskError.invalidConfig("field '\(key)' must be true or false, got \(v.jsonString())")
        }
    }

    public func duration(_ key: String) throws(TaskError) -> Duration? {
        switch self[key] {
        case nil, .null?: return nil
        case .string(let s)?:
            guard let d = Duration(parsing: s) else { throw TaskError.invalidConfig("field '\(key)' is not a duration: '\(s)'") }
            return d
        case let v?:
            guard let seconds = v.doubleValue, seconds >= 0 else { throw TaskError.invalidConfig("field '\(key)' must be a duration, got \(v.jsonString())") }
            return .milliseconds(Int64(seconds * 1000))
        }
    }

    /// A list of strings; a single string becomes a one-element list.
    public func strings(_ key: String) throws(TaskError) -> [String]? {
        switch self[key] {
        case nil, .null?: return nil
        case .string(let s)?: return [s]
        case .array(let a)?: return a.map(\.textValue)
        case let v?: throw TaskError.invalidConfig("field '\(key)' must be a list of strings, got \(v.typeName)")
        }
    }

    /// A mapping of strings (headers, environment variables).
    public func stringMap(_ key: String) throws(TaskError) -> [(String, String)]? {
        switch self[key] {
        case nil, .null?: return nil
        case .object(let o)?: return o.map { ($0.key, $0.value.textValue) }
        case let v?: throw TaskError.invalidConfig("field '\(key)' must be a mapping, got \(v.typeName)")
        }
    }
}
