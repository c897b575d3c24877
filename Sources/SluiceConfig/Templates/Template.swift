import SluiceCore

/// A string with `{{path}}` placeholders, compiled once and rendered per event.
///
/// Paths are dotted (`event.data.items.0.id`) and rooted at one of the context's variables
/// (`event`, `env`, `run`, `flow`). A template that is exactly one placeholder keeps the JSON type
/// of what it refers to (`{{event.data}}` renders an object); otherwise values are inserted as
/// text. A path that leads nowhere renders as null (or the empty string inside text).
public struct Template: Sendable, Hashable {
    enum Segment: Sendable, Hashable {
        case text(String)
        case path(root: String, rest: String)
    }

    let segments: [Segment]
    public let source: String

    /// The variables a template may start from.
    public static let roots: Set<String> = ["event", "env", "run", "flow"]

    public struct SyntaxError: Error, Sendable, Hashable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// True when `text` contains a placeholder and should be compiled.
    public static func isTemplate(_ text: String) -> Bool { text.contains("{{") }

    public init(_ source: String) throws(SyntaxError) {
        self.source = source
        var segments: [Segment] = []
        var rest = Substring(source)
        while let open = rest.firstRange(of: "{{") {
            if open.lowerBound > rest.startIndex { segments.append(.text(String(rest[..<open.lowerBound]))) }
            let afterOpen = rest[open.upperBound...]
            guard let close = afterOpen.firstRange(of: "}}") else {
                throw SyntaxError(message: "template '\(source)' has '{{' without a closing '}}'")
            }
            let expression = afterOpen[..<close.lowerBound].trimmingSpaces()
            guard !expression.isEmpty else { throw SyntaxError(message: "template '\(source)' has an empty '{{}}'") }
            let parts = expression.split(separator: ".", maxSplits: 1)
            let root = String(parts[0])
            guard Template.roots.contains(root) else {
                throw SyntaxError(message: "template '{{\(expression)}}' starts with '\(root)'; a template path starts with one of \(Template.roots.sorted().joined(separator: ", "))")
            }
            guard expression.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "." || $0 == "-" }) else {
                throw SyntaxError(message: "template '{{\(expression)}}' is not a dotted path like event.data.id")
            }
            segments.append(.path(root: root, rest: parts.count > 1 ? String(parts[1]) : ""))
            rest = afterOpen[close.upperBound...]
        }
        if !rest.isEmpty { segments.append(.text(String(rest))) }
        self.segments = segments
    }

    /// Renders against `context`, an object whose members are the roots (`event`, `env`, ...).
    public func render(_ context: Value.Object) -> Value {
        if segments.count == 1, case .path(let root, let rest) = segments[0] {
            return Template.resolve(root: root, rest: rest, in: context) ?? .null
        }
        var out = ""
        for segment in segments {
            switch segment {
            case .text(let t): out += t
            case .path(let root, let rest): out += Template.resolve(root: root, rest: rest, in: context)?.textValue ?? ""
            }
        }
        return .string(out)
    }

    static func resolve(root: String, rest: String, in context: Value.Object) -> Value? {
        guard let base = context[root] else { return nil }
        return rest.isEmpty ? base : base.lookup(path: rest)
    }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return s
    }
}

/// A task's config with its templates compiled: renders only the parts that vary per event.
public struct ConfigTemplate: Sendable {
    indirect enum Node: Sendable {
        case constant(Value)
        case template(Template)
        case array([Node])
        case object([(String, Node)])
    }

    private let root: Node
    /// The config as written (templates unrendered).
    public let raw: Value.Object
    /// True when some field holds a template.
    public let isDynamic: Bool

    /// Compiles every string in `config` that contains `{{`.
    public init(_ config: Value.Object) throws(Template.SyntaxError) {
        self.raw = config
        let node = try ConfigTemplate.compile(.object(config))
        self.root = node
        if case .constant = node { isDynamic = false } else { isDynamic = true }
    }

    private static func compile(_ value: Value) throws(Template.SyntaxError) -> Node {
        switch value {
        case .string(let s) where Template.isTemplate(s):
            return .template(try Template(s))
        case .array(let elements):
            var nodes: [Node] = []
            var dynamic = false
            for e in elements {
                let n = try compile(e)
                if case .constant = n {} else { dynamic = true }
                nodes.append(n)
            }
            return dynamic ? .array(nodes) : .constant(value)
        case .object(let o):
            var nodes: [(String, Node)] = []
            var dynamic = false
            for (k, v) in o {
                let n = try compile(v)
                if case .constant = n {} else { dynamic = true }
                nodes.append((k, n))
            }
            return dynamic ? .object(nodes) : .constant(value)
        default:
            return .constant(value)
        }
    }

    /// The config for one event; the raw config itself when nothing is templated.
    public func render(_ context: Value.Object) -> Value.Object {
        guard isDynamic else { return raw }
        return ConfigTemplate.render(root, context).objectValue ?? raw
    }

    private static func render(_ node: Node, _ context: Value.Object) -> Value {
        switch node {
        case .constant(let v): return v
        case .template(let t): return t.render(context)
        case .array(let nodes): return .array(nodes.map { render($0, context) })
        case .object(let members):
            var o = Value.Object(minimumCapacity: members.count)
            for (k, n) in members { o[k] = render(n, context) }
            return .object(o)
        }
    }
}
