/// A parsed document node that remembers where it was written, so validation can point at it.
public struct SourceNode: Sendable {
    public enum Kind: Sendable {
        case scalar(Value)
        case sequence([SourceNode])
        case mapping([Member])
    }

    public struct Member: Sendable {
        public var key: String
        public var keyLocation: SourceLocation
        public var value: SourceNode

        public init(key: String, keyLocation: SourceLocation, value: SourceNode) {
            self.key = key
            self.keyLocation = keyLocation
            self.value = value
        }
    }

    public var kind: Kind
    public var location: SourceLocation
    /// For a scalar written in a plain (unquoted) YAML style or as a JSON string: the text as written.
    public var isQuotedString: Bool

    public init(_ kind: Kind, at location: SourceLocation, isQuotedString: Bool = false) {
        self.kind = kind
        self.location = location
        self.isQuotedString = isQuotedString
    }

    /// The member named `key` of a mapping.
    public subscript(key: String) -> SourceNode? {
        guard case .mapping(let members) = kind else { return nil }
        return members.first(where: { $0.key == key })?.value
    }

    public var members: [Member]? { if case .mapping(let m) = kind { return m } else { return nil } }
    public var elements: [SourceNode]? { if case .sequence(let e) = kind { return e } else { return nil } }
    public var scalar: Value? { if case .scalar(let v) = kind { return v } else { return nil } }

    /// The plain value, dropping positions.
    public var value: Value {
        switch kind {
        case .scalar(let v): return v
        case .sequence(let e): return .array(e.map(\.value))
        case .mapping(let m):
            var o = Value.Object(minimumCapacity: m.count)
            for member in m { o[member.key] = member.value.value }
            return .object(o)
        }
    }

    /// What kind of node this is, for messages: "a mapping", "a list", "a string", ...
    public var kindName: String {
        switch kind {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .scalar(let v):
            switch v {
            case .null: return "null"
            case .string: return "a string"
            case .bool: return "a boolean"
            case .int: return "an integer"
            case .double: return "a number"
            default: return v.typeName
            }
        }
    }
}

/// Builds a located tree while parsing JSON.
public struct SourceNodeBuilder: JSONBuilder {
    let file: String
    let lines: LineIndex

    public init(file: String, bytes: [UInt8]) {
        self.file = file
        self.lines = LineIndex(bytes: bytes)
    }

    func location(_ offset: Int) -> SourceLocation {
        let (line, column) = lines.position(of: offset)
        return SourceLocation(file: file, line: line, column: column)
    }

    public mutating func scalar(_ value: Value, at offset: Int) -> SourceNode {
        var isString = false
        if case .string = value { isString = true }
        return SourceNode(.scalar(value), at: location(offset), isQuotedString: isString)
    }

    public mutating func array(_ elements: [SourceNode], at offset: Int) -> SourceNode {
        SourceNode(.sequence(elements), at: location(offset))
    }

    public mutating func object(_ members: [(key: String, keyOffset: Int, value: SourceNode)], at offset: Int) -> SourceNode {
        SourceNode(.mapping(members.map { .init(key: $0.key, keyLocation: location($0.keyOffset), value: $0.value) }), at: location(offset))
    }
}
