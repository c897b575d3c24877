import OrderedCollections

/// Options for writing a value as JSON.
public struct JSONWriteOptions: Sendable, Hashable {
    public var pretty: Bool
    public var sortedKeys: Bool

    public init(pretty: Bool = false, sortedKeys: Bool = false) {
        self.pretty = pretty
        self.sortedKeys = sortedKeys
    }

    public static let compact = JSONWriteOptions()
    public static let prettyPrinted = JSONWriteOptions(pretty: true)
    /// Sorted keys, no whitespace: one spelling per value, for fingerprints and golden files.
    public static let canonical = JSONWriteOptions(sortedKeys: true)
}

extension Value {
    /// This value as JSON text. Bytes are written as base64 strings; NaN and infinities as null.
    public func jsonString(_ options: JSONWriteOptions = .compact) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        writeJSON(into: &out, options: options, indent: 0)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends this value as JSON to `out`.
    public func writeJSON(into out: inout [UInt8], options: JSONWriteOptions = .compact, indent: Int = 0) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .int(let i): out.append(contentsOf: String(i).utf8)
        case .double(let d): Value.writeDouble(d, into: &out)
        case .string(let s): Value.writeString(s, into: &out)
        case .bytes(let b): Value.writeString(Base64.encode(b), into: &out)
        case .array(let a):
            if a.isEmpty { out.append(contentsOf: "[]".utf8); return }
            out.append(UInt8(ascii: "["))
            for (i, element) in a.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                if options.pretty { Value.newline(&out, indent + 1) }
                element.writeJSON(into: &out, options: options, indent: indent + 1)
            }
            if options.pretty { Value.newline(&out, indent) }
            out.append(UInt8(ascii: "]"))
        case .object(let o):
            if o.isEmpty { out.append(contentsOf: "{}".utf8); return }
            out.append(UInt8(ascii: "{"))
            var first = true
            func member(_ key: String, _ value: Value) {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                if options.pretty { Value.newline(&out, indent + 1) }
                Value.writeString(key, into: &out)
                out.append(UInt8(ascii: ":"))
                if options.pretty { out.append(UInt8(ascii: " ")) }
                value.writeJSON(into: &out, options: options, indent: indent + 1)
            }
            if options.sortedKeys {
                for key in o.keys.sorted() { member(key, o[key]!) }
            } else {
                for (key, value) in o { member(key, value) }
            }
            if options.pretty { Value.newline(&out, indent) }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static func newline(_ out: inout [UInt8], _ indent: Int) {
        out.append(UInt8(ascii: "\n"))
        out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: indent * 2))
    }

    static func writeDouble(_ d: Double, into out: inout [UInt8]) {
        guard d.isFinite else { out.append(contentsOf: "null".utf8); return }
        if d == d.rounded(), abs(d) < 1e16 {
            // Keep a fractional part so the value reads back as a float.
            out.append(contentsOf: String(Int64(d)).utf8)
            out.append(contentsOf: ".0".utf8)
        } else {
            out.append(contentsOf: d.description.utf8)
        }
    }

    static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [92, 34])
            case UInt8(ascii: "\\"): out.append(contentsOf: [92, 92])
            case UInt8(ascii: "\n"): out.append(contentsOf: [92, UInt8(ascii: "n")])
            case UInt8(ascii: "\r"): out.append(contentsOf: [92, UInt8(ascii: "r")])
            case UInt8(ascii: "\t"): out.append(contentsOf: [92, UInt8(ascii: "t")])
            case 0..<0x20:
                out.append(contentsOf: [92, UInt8(ascii: "u"), 48, 48, hex[Int(byte >> 4)], hex[Int(byte & 15)]])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// Standard base64 (RFC 4648) without line breaks.
public enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i + 2 < bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out.append(alphabet[Int(n >> 18 & 63)]); out.append(alphabet[Int(n >> 12 & 63)])
            out.append(alphabet[Int(n >> 6 & 63)]); out.append(alphabet[Int(n & 63)])
            i += 3
        }
        let rest = bytes.count - i
        if rest > 0 {
            let n = UInt32(bytes[i]) << 16 | (rest == 2 ? UInt32(bytes[i + 1]) << 8 : 0)
            out.append(alphabet[Int(n >> 18 & 63)]); out.append(alphabet[Int(n >> 12 & 63)])
            out.append(rest == 2 ? alphabet[Int(n >> 6 & 63)] : UInt8(ascii: "="))
            out.append(UInt8(ascii: "="))
        }
        return String(decoding: out, as: UTF8.self)
    }
}
