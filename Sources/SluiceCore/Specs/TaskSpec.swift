import OrderedCollections

/// What a task type is and accepts: drives parsing, validation, `sluice tasks` and the docs.
public struct TaskSpec: Sendable {
    public var name: String
    public var aliases: [TaskAlias]
    public var summary: String
    public var kind: TaskKind
    public var fields: [FieldSpec]
    /// Named inputs (FlowEngine ports); a field can be filled from the input of the same name.
    public var inputs: [PortSpec]
    /// Named outputs: keys of the output object an edge can pick with `from_port`.
    public var outputs: [PortSpec]
    /// Flow snippets that use the task; each one is validated by the test suite.
    public var examples: [TaskExample]
    /// The task only computes (bounded work, no waiting on I/O or time), so the engine may run
    /// it in the task that produced its event instead of handing the event to its own workers.
    public var computesOnly: Bool

    public init(name: String, aliases: [TaskAlias] = [], summary: String, kind: TaskKind = .processor, fields: [FieldSpec] = [],
                inputs: [PortSpec] = [], outputs: [PortSpec] = [], examples: [TaskExample] = [], computesOnly: Bool = false) {
        self.name = name
        self.aliases = aliases
        self.summary = summary
        self.kind = kind
        self.fields = fields
        self.inputs = inputs
        self.outputs = outputs
        self.examples = examples
        self.computesOnly = computesOnly
    }

    public func field(named name: String) -> FieldSpec? { fields.first(where: { $0.name == name || $0.aliases.contains(name) }) }
}

/// Another name a task type answers to, with config defaults that make it behave like the
/// original system's node (FlowEngine's `http.request` returns `{status, headers, body}`).
public struct TaskAlias: Sendable {
    public var name: String
    public var defaults: Value.Object

    public init(_ name: String, defaults: Value.Object = [:]) {
        self.name = name
        self.defaults = defaults
    }
}

/// Whether a task produces events on its own, transforms them, or works across runs.
public struct TaskKind: Sendable, Hashable, CustomStringConvertible {
    public let rawValue: String
    package init(_ rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    /// Emits events from outside the flow (a timer, a webhook, a subscription); starts runs.
    public static let source = TaskKind("source")
    /// Maps one event to zero, one or many.
    public static let processor = TaskKind("processor")
    /// Consumes many events (possibly of many runs) and emits fewer: buffer, gather.
    public static let `operator` = TaskKind("operator")
}

public struct PortSpec: Sendable {
    public var name: String
    public var summary: String

    public init(_ name: String, _ summary: String = "") {
        self.name = name
        self.summary = summary
    }
}

public struct TaskExample: Sendable {
    public var title: String
    /// A complete flow file in YAML.
    public var yaml: String

    public init(_ title: String, yaml: String) {
        self.title = title
        self.yaml = yaml
    }
}

/// One config field of a task type.
public struct FieldSpec: Sendable {
    public var name: String
    /// Other spellings accepted (Flowgen's `endpoint` for `url`).
    public var aliases: [String]
    public var type: FieldType
    public var required: Bool
    public var defaultValue: Value?
    public var summary: String
    /// Whether `{{...}}` templates are rendered in this field for every event.
    public var templated: Bool
    /// Accepted and ignored: a field of the original system that has no meaning here.
    public var inert: Bool

    public init(_ name: String, _ type: FieldType, required: Bool = false, default defaultValue: Value? = nil,
                templated: Bool = false, aliases: [String] = [], inert: Bool = false, summary: String) {
        self.name = name
        self.aliases = aliases
        self.type = type
        self.required = required
        self.defaultValue = defaultValue
        self.summary = summary
        self.templated = templated
        self.inert = inert
    }
}

/// The type of a config field.
public struct FieldType: Sendable, CustomStringConvertible {
    package indirect enum Kind: Sendable {
        case any, string, integer, number, bool, duration
        case oneOf([String])
        case array(Kind)
        case map(Kind)
        case object([FieldSpec])
        case either(Kind, Kind)
    }

    package let kind: Kind

    public static let any = FieldType(kind: .any)
    public static let string = FieldType(kind: .string)
    public static let integer = FieldType(kind: .integer)
    public static let number = FieldType(kind: .number)
    public static let bool = FieldType(kind: .bool)
    /// `500ms`, `10s`, `1m30s`, or a number of seconds.
    public static let duration = FieldType(kind: .duration)
    /// One of the listed strings.
    public static func oneOf(_ values: [String]) -> FieldType { FieldType(kind: .oneOf(values)) }
    public static func array(of element: FieldType) -> FieldType { FieldType(kind: .array(element.kind)) }
    /// A mapping with free keys and values of one type.
    public static func map(of value: FieldType) -> FieldType { FieldType(kind: .map(value.kind)) }
    /// A mapping with known fields.
    public static func object(_ fields: [FieldSpec]) -> FieldType { FieldType(kind: .object(fields)) }
    /// Either of two types (`args`: a string or a list of strings).
    public static func either(_ a: FieldType, _ b: FieldType) -> FieldType { FieldType(kind: .either(a.kind, b.kind)) }

    public var description: String { FieldType.name(kind) }

    package static func name(_ kind: Kind) -> String {
        switch kind {
        case .any: return "any"
        case .string: return "string"
        case .integer: return "integer"
        case .number: return "number"
        case .bool: return "bool"
        case .duration: return "duration"
        case .oneOf(let values): return values.joined(separator: "|")
        case .array(let e): return "[\(name(e))]"
        case .map(let v): return "{string: \(name(v))}"
        case .object: return "object"
        case .either(let a, let b): return "\(name(a)) or \(name(b))"
        }
    }

    /// The fields of an `object` type.
    public var objectFields: [FieldSpec]? { if case .object(let f) = kind { return f } else { return nil } }
}

extension TaskSpec {
    /// The spec as JSON: what `sluice tasks --json` prints and the API serves.
    public var json: Value {
        [
            "name": .string(name),
            "aliases": .array(aliases.map { .string($0.name) }),
            "summary": .string(summary),
            "kind": .string(kind.rawValue),
            "fields": .array(fields.map(\.json)),
            "inputs": .array(inputs.map { ["name": .string($0.name), "summary": .string($0.summary)] }),
            "outputs": .array(outputs.map { ["name": .string($0.name), "summary": .string($0.summary)] }),
            "examples": .array(examples.map { ["title": .string($0.title), "yaml": .string($0.yaml)] }),
        ]
    }
}

extension FieldSpec {
    public var json: Value {
        var o: Value.Object = ["name": .string(name), "type": .string(type.description), "required": .bool(required), "summary": .string(summary)]
        if let d = defaultValue { o["default"] = d }
        if !aliases.isEmpty { o["aliases"] = .array(aliases.map(Value.string)) }
        if templated { o["templated"] = true }
        if let sub = type.objectFields { o["fields"] = .array(sub.map(\.json)) }
        return .object(o)
    }
}
