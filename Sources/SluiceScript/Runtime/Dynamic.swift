/// A value inside a running script. Rhai calls it `Dynamic`; the cases follow its types.
///
/// Strings, arrays, maps and blobs are Swift copy-on-write values, so assignment copies
/// logically and mutation through a variable stays in place when nothing else shares the
/// storage. `shared` is how closures capture: the variable's value moves into a box that the
/// closure and the enclosing scope both hold.
public enum Dynamic {
    case unit
    case bool(Bool)
    case int(Int64)
    case float(Double)
    case char(Unicode.Scalar)
    case string(String)
    case array([Dynamic])
    case map([String: Dynamic])
    case blob([UInt8])
    case fnPtr(FnPtr)
    /// `a..b` or `a..=b`.
    case range(Int64, Int64, inclusive: Bool)
    /// Seconds on the monotonic clock.
    case timestamp(Double)
    /// A lazily produced sequence (`range(a, b, step)`, `s.chars()`, `x.bits()`).
    case sequence(ScriptSequence)
    /// An object the host hands in (`ctx.cache`), with its own methods.
    case host(HostObject)
    case shared(SharedBox)

    /// The name `type_of` gives.
    public var typeName: String {
        switch self {
        case .unit: "()"
        case .bool: "bool"
        case .int: "i64"
        case .float: "f64"
        case .char: "char"
        case .string: "string"
        case .array: "array"
        case .map: "map"
        case .blob: "blob"
        case .fnPtr: "Fn"
        case .range(_, _, let inclusive): inclusive ? "range=" : "range"
        case .timestamp: "timestamp"
        case .sequence(let s): s.typeName
        case .host(let h): h.typeName
        case .shared(let box): box.value.typeName
        }
    }

    /// The type as Rhai prints it in a function signature.
    var signatureName: String {
        switch self {
        case .string: "&str | ImmutableString | String"
        case .array: "Array"
        case .map: "Map"
        case .blob: "Blob"
        case .fnPtr: "FnPtr"
        case .range(_, _, let inclusive): inclusive ? "RangeInclusive<i64>" : "Range<i64>"
        case .timestamp: "Instant"
        case .shared(let box): box.value.signatureName
        default: typeName
        }
    }

    /// The value itself when it sits in a shared box.
    @inline(__always) var flattened: Dynamic {
        if case .shared(let box) = self { return box.value }
        return self
    }

    var isUnit: Bool {
        if case .unit = flattened { return true }
        return false
    }

    /// The bytes this value adds to a blob (`blob += x`, `blob.append(x)`): an int's low byte, a
    /// blob's bytes, a string's or char's UTF-8; nil for anything else.
    var bytesForBlob: [UInt8]? {
        switch self {
        case .int(let i): return [UInt8(truncatingIfNeeded: i)]
        case .blob(let b): return b
        case .string(let s): return Array(s.utf8)
        case .char(let c): return Array(String(Character(c)).utf8)
        default: return nil
        }
    }

    /// A value with no size to count against the limits: storing it never grows anything.
    var isScalar: Bool {
        switch self {
        case .unit, .bool, .int, .float, .char, .range, .timestamp: return true
        default: return false
        }
    }
}

/// A variable captured by a closure.
public final class SharedBox {
    public var value: Dynamic
    init(_ value: Dynamic) { self.value = value }
}

/// A function pointer: a named function, or a closure with the variables it captured, plus
/// arguments bound with `curry`.
public final class FnPtr {
    public let name: String
    let function: ScriptFunction?
    var curried: [Dynamic]
    let captured: [SharedBox]

    init(name: String, function: ScriptFunction? = nil, curried: [Dynamic] = [], captured: [SharedBox] = []) {
        self.name = name
        self.function = function
        self.curried = curried
        self.captured = captured
    }

    var isAnonymous: Bool { name.hasPrefix("anon$") }

    func adding(curried more: [Dynamic]) -> FnPtr {
        FnPtr(name: name, function: function, curried: curried + more, captured: captured)
    }
}

/// A sequence produced on demand, so `range(0, 1_000_000_000, 2)` costs nothing until iterated.
public final class ScriptSequence {
    let typeName: String
    let makeIterator: () -> () -> Dynamic?

    init(typeName: String, _ makeIterator: @escaping () -> () -> Dynamic?) {
        self.typeName = typeName
        self.makeIterator = makeIterator
    }

    func collect(limit: Int = .max) -> [Dynamic] {
        var result: [Dynamic] = []
        let next = makeIterator()
        while result.count < limit, let v = next() { result.append(v) }
        return result
    }
}

/// Something the host gives a script: it answers method calls and property reads.
public protocol HostObject: AnyObject {
    var typeName: String { get }
    /// Runs `receiver.name(arguments)`. Returns nil when there is no such method.
    func call(_ name: String, _ arguments: [Dynamic]) throws(ScriptError) -> Dynamic?
    /// Reads `receiver.name`. Returns nil when there is no such property.
    func property(_ name: String) -> Dynamic?
}

extension HostObject {
    public func property(_ name: String) -> Dynamic? { nil }
}

// MARK: - Display

extension Dynamic {
    /// The text `print`, `to_string` and string `+` use.
    public var displayText: String {
        switch self {
        case .unit: return ""
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .float(let f): return FloatFormat.display(f)
        case .char(let c): return String(Character(c))
        case .string(let s): return s
        case .timestamp: return "<timestamp>"
        case .shared(let box): return box.value.displayText
        default: return debugText
        }
    }

    /// The text `debug` and `to_debug` use, and the form of elements inside arrays and maps.
    public var debugText: String {
        switch self {
        case .unit: return "()"
        case .bool, .int, .timestamp: return displayText
        case .float(let f): return FloatFormat.debug(f)
        case .char(let c): return "'" + Self.escaped(String(Character(c)), quote: "'") + "'"
        case .string(let s): return "\"" + Self.escaped(s, quote: "\"") + "\""
        case .array(let a): return "[" + a.map(\.debugText).joined(separator: ", ") + "]"
        case .map(let m):
            return "#{" + m.keys.sorted().map { "\(Dynamic.string($0).debugText): \(m[$0]!.debugText)" }.joined(separator: ", ") + "}"
        case .blob(let b):
            return "[" + b.map { String($0, radix: 16, uppercase: false).leftPadded(to: 2) }.joined() + "]"
        case .fnPtr(let f): return "Fn(\(f.name))"
        case .range(let a, let b, let inclusive): return "\(a)\(inclusive ? "..=" : "..")\(b)"
        case .sequence(let s): return s.typeName
        case .host(let h): return h.typeName
        case .shared(let box): return box.value.debugText
        }
    }

    /// Rust's `{:?}` escaping for strings and chars.
    static func escaped(_ s: String, quote: Character) -> String {
        var out = ""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\\": out += "\\\\"
            case "\0": out += "\\0"
            default:
                if Character(scalar) == quote {
                    out += "\\" + String(quote)
                } else if scalar.value < 0x20 || scalar.value == 0x7F {
                    out += "\\u{" + String(scalar.value, radix: 16) + "}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }
}

extension String {
    func leftPadded(to width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}

/// Float text the way Rhai prints it: shortest round-trip digits, `.0` on integral values,
/// exponent form outside 1e-13...1e13.
enum FloatFormat {
    static func display(_ x: Double) -> String {
        if x == 0 { return "0.0" }
        return format(x)
    }

    static func debug(_ x: Double) -> String {
        if x == 0 { return x.sign == .minus ? "-0.0" : "0.0" }
        return format(x)
    }

    private static func format(_ x: Double) -> String {
        if x.isNaN { return "NaN" }
        if x.isInfinite { return x < 0 ? "-inf" : "inf" }
        let magnitude = abs(x)
        let (negative, digits, exponent) = decompose(x)
        let sign = negative ? "-" : ""
        if magnitude > 1e13 || magnitude < 1e-13 {
            // Rust `{:e}`: d.ddde±x without a plus sign.
            var mantissa = String(digits.first!)
            if digits.count > 1 { mantissa += "." + digits.dropFirst() }
            return "\(sign)\(mantissa)e\(exponent)"
        }
        // Place the decimal point: value = 0.d1d2d3... * 10^(exponent+1).
        let point = exponent + 1
        var text: String
        if point <= 0 {
            text = "0." + String(repeating: "0", count: -point) + digits
        } else if point >= digits.count {
            text = digits + String(repeating: "0", count: point - digits.count) + ".0"
        } else {
            let i = digits.index(digits.startIndex, offsetBy: point)
            text = digits[..<i] + "." + digits[i...]
        }
        return sign + text
    }

    /// The shortest decimal digits of `x` and the exponent of the first digit.
    private static func decompose(_ x: Double) -> (Bool, String, Int) {
        // Swift's description is shortest round-trip; it is either plain or `d.ddde±x`.
        var text = "\(abs(x))"
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exponent = Int(text[text.index(after: e)...])!
            text = String(text[..<e])
        }
        var integer = text
        var fraction = ""
        if let dot = text.firstIndex(of: ".") {
            integer = String(text[..<dot])
            fraction = String(text[text.index(after: dot)...])
        }
        var digits = integer + fraction
        exponent += integer.count - 1
        while digits.first == "0", digits.count > 1 {
            digits.removeFirst()
            exponent -= 1
        }
        while digits.last == "0", digits.count > 1 { digits.removeLast() }
        return (x < 0, digits, exponent)
    }
}

// MARK: - Changing a payload in place

// A `switch` over a value keeps a second reference to its payload for the whole case, so
// changing the bound copy copies the storage: O(n) per `push`. These move the payload out and
// leave `()` behind; the caller puts the changed value back (a `defer` does it on every path).
extension Dynamic {
    @inline(__always) mutating func takeArray() -> [Dynamic]? {
        guard case .array(let v) = self else { return nil }
        self = .unit
        return v
    }

    @inline(__always) mutating func takeBlob() -> [UInt8]? {
        guard case .blob(let v) = self else { return nil }
        self = .unit
        return v
    }

    @inline(__always) mutating func takeMap() -> [String: Dynamic]? {
        guard case .map(let v) = self else { return nil }
        self = .unit
        return v
    }

    @inline(__always) mutating func takeString() -> String? {
        guard case .string(let v) = self else { return nil }
        self = .unit
        return v
    }
}
