import OrderedCollections

/// A payload value: what events carry, what config fields hold and what scripts see.
///
/// Arrays and objects are copy-on-write, so passing a `Value` along an edge or into a fan-out
/// copies a reference, not the data. Objects keep their key order (what the author wrote, or what
/// the source sent), but compare equal regardless of order, like JSON objects do.
public enum Value: Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case bytes([UInt8])
    case array([Value])
    case object(Object)

    public typealias Object = OrderedDictionary<String, Value>

    /// An empty object, the data of an on-demand trigger without input.
    public static let emptyObject = Value.object([:])
}

// MARK: - Accessors

extension Value {
    public var isNull: Bool { if case .null = self { return true } else { return false } }

    public var boolValue: Bool? { if case .bool(let b) = self { return b } else { return nil } }

    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }

    /// The integer this value holds, accepting doubles without a fractional part.
    public var intValue: Int64? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d.rounded() == d && abs(d) < 9.2e18: return Int64(d)
        default: return nil
        }
    }

    /// The number this value holds, as a double.
    public var doubleValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    public var arrayValue: [Value]? { if case .array(let a) = self { return a } else { return nil } }

    public var objectValue: Object? { if case .object(let o) = self { return o } else { return nil } }

    /// The member `key` of an object, or nil for anything else.
    public subscript(key: String) -> Value? {
        get { if case .object(let o) = self { return o[key] } else { return nil } }
        set {
            guard case .object(var o) = self else { return }
            self = .null  // drop our reference so `o` is uniquely referenced
            o[key] = newValue
            self = .object(o)
        }
    }

    /// The element at `index` of an array; negative indices count from the end.
    public subscript(index: Int) -> Value? {
        guard case .array(let a) = self else { return nil }
        let i = index < 0 ? a.count + index : index
        return a.indices.contains(i) ? a[i] : nil
    }

    /// Follows a dotted path (`data.items.0.id`): object members by name, array elements by index.
    public func lookup<S: StringProtocol>(path: S) -> Value? {
        var current = self
        for part in path.split(separator: ".", omittingEmptySubsequences: false) {
            switch current {
            case .object(let o):
                guard let next = o[String(part)] else { return nil }
                current = next
            case .array:
                guard let i = Int(part), let next = current[i] else { return nil }
                current = next
            default:
                return nil
            }
        }
        return current
    }

    /// The name of this value's type, as messages and `type_of` show it.
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "bool"
        case .int: return "integer"
        case .double: return "float"
        case .string: return "string"
        case .bytes: return "bytes"
        case .array: return "array"
        case .object: return "object"
        }
    }

    /// Loose truthiness for callers that want it: null, false, 0, "" and empty collections are false.
    /// (`when:` conditions do not use it; they must produce a real bool, as in Rhai.)
    public var isTruthy: Bool {
        switch self {
        case .null: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0 && !d.isNaN
        case .string(let s): return !s.isEmpty
        case .bytes(let b): return !b.isEmpty
        case .array(let a): return !a.isEmpty
        case .object(let o): return !o.isEmpty
        }
    }

    /// The text a template inserts for this value: strings as they are, everything else as JSON.
    public var textValue: String {
        switch self {
        case .string(let s): return s
        case .null: return ""
        default: return jsonString()
        }
    }
}

// MARK: - Equality and hashing (objects compare without regard to key order)

extension Value: Hashable {
    public static func == (lhs: Value, rhs: Value) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.int(let a), .int(let b)): return a == b
        case (.double(let a), .double(let b)): return a == b
        case (.string(let a), .string(let b)): return a == b
        case (.bytes(let a), .bytes(let b)): return a == b
        case (.array(let a), .array(let b)): return a == b
        case (.object(let a), .object(let b)):
            guard a.count == b.count else { return false }
            for (key, value) in a {
                guard let other = b[key], other == value else { return false }
            }
            return true
        default: return false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0)
        case .bool(let b): hasher.combine(1); hasher.combine(b)
        case .int(let i): hasher.combine(2); hasher.combine(i)
        case .double(let d): hasher.combine(3); hasher.combine(d)
        case .string(let s): hasher.combine(4); hasher.combine(s)
        case .bytes(let b): hasher.combine(5); hasher.combine(b)
        case .array(let a): hasher.combine(6); hasher.combine(a)
        case .object(let o):
            hasher.combine(7)
            hasher.combine(o.count)
            // Order-independent: combine a commutative sum of the members' hashes.
            var sum = 0
            for (key, value) in o {
                var h = Hasher()
                h.combine(key)
                h.combine(value)
                sum = sum &+ h.finalize()
            }
            hasher.combine(sum)
        }
    }
}

// MARK: - Literals

extension Value: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: Value...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, Value)...) {
        self = .object(Object(elements, uniquingKeysWith: { _, last in last }))
    }
}

extension Value: CustomStringConvertible {
    public var description: String { jsonString() }
}
