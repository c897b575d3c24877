import OrderedCollections

/// The unit of data that moves along a flow's edges.
public struct Event: Sendable, Hashable {
    /// The source's id for this message (a webhook request id, a tick number, a NATS message id).
    public var id: String
    /// What the event is about; by default the name of the task that produced it.
    public var subject: String
    public var data: Value
    /// String-keyed metadata, carried forward to every event derived from this one.
    public var meta: Value.Object
    /// Microseconds since the Unix epoch when the event was produced.
    public var timestamp: Int64
    /// Set when a task failed on this event and the flow chose to continue.
    public var error: EventError?

    public init(id: String = "", subject: String = "", data: Value, meta: Value.Object = [:], timestamp: Int64 = 0, error: EventError? = nil) {
        self.id = id
        self.subject = subject
        self.data = data
        self.meta = meta
        self.timestamp = timestamp
        self.error = error
    }

    /// A new event derived from this one: same id and meta, new data.
    public func with(data: Value) -> Event {
        var copy = self
        copy.data = data
        return copy
    }

    /// The event as scripts and templates see it: `{id, subject, data, meta, timestamp, error}`.
    public var projection: Value {
        var o = Value.Object(minimumCapacity: 6)
        o["id"] = .string(id)
        o["subject"] = .string(subject)
        o["data"] = data
        o["meta"] = .object(meta)
        o["timestamp"] = .int(timestamp)
        o["error"] = error.map { ["task": .string($0.task), "message": .string($0.message)] } ?? .null
        return .object(o)
    }

    /// The event a `projection` was made of (missing members take their defaults).
    public init(projection v: Value) {
        self.init(id: v["id"]?.stringValue ?? "", subject: v["subject"]?.stringValue ?? "", data: v["data"] ?? .null,
                  meta: v["meta"]?.objectValue ?? [:], timestamp: v["timestamp"]?.intValue ?? 0)
        if let e = v["error"], let task = e["task"]?.stringValue, let message = e["message"]?.stringValue {
            error = EventError(task: task, message: message)
        }
    }
}

/// What went wrong for an event that carries on after a failure (`on_error: continue` or a dead-letter route).
public struct EventError: Sendable, Hashable {
    public var task: String
    public var message: String

    public init(task: String, message: String) {
        self.task = task
        self.message = message
    }
}
