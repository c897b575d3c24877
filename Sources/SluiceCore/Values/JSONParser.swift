/// A JSON syntax error with the line and column (1-based) where it was found.
public struct JSONSyntaxError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public var line: Int
    public var column: Int

    public var description: String { "\(line):\(column): \(message)" }
}

/// Receives what the parser reads; one conformance builds plain values, another a located tree.
public protocol JSONBuilder {
    associatedtype Node
    mutating func scalar(_ value: Value, at offset: Int) -> Node
    mutating func array(_ elements: [Node], at offset: Int) -> Node
    mutating func object(_ members: [(key: String, keyOffset: Int, value: Node)], at offset: Int) -> Node
}

/// Builds plain `Value`s: the fast path for event payloads and `--input`.
public struct ValueBuilder: JSONBuilder {
    public init() {}
    public mutating func scalar(_ value: Value, at offset: Int) -> Value { value }
    public mutating func array(_ elements: [Value], at offset: Int) -> Value { .array(elements) }
    public mutating func object(_ members: [(key: String, keyOffset: Int, value: Value)], at offset: Int) -> Value {
        var o = Value.Object(minimumCapacity: members.count)
        for m in members { o[m.key] = m.value }
        return .object(o)
    }
}

/// A strict RFC 8259 JSON parser over UTF-8 bytes.
///
/// Integers that fit in 64 bits stay integers; other numbers become doubles. Nesting is limited
/// (`maxDepth`) so hostile input cannot exhaust the stack.
public struct JSONParser<Builder: JSONBuilder> {
    private let bytes: [UInt8]
    private var pos = 0
    private var builder: Builder
    private let maxDepth: Int

    public init(bytes: [UInt8], builder: Builder, maxDepth: Int = 512) {
        self.bytes = bytes
        self.builder = builder
        self.maxDepth = maxDepth
    }

    /// Parses one JSON document; trailing non-space characters are an error.
    public mutating func parseDocument() throws(JSONSyntaxError) -> Builder.Node {
        skipSpace()
        let node = try parseValue(depth: 0)
        skipSpace()
        if pos < bytes.count { throw error("unexpected '\(charName(bytes[pos]))' after the JSON value") }
        return node
    }

    private mutating func parseValue(depth: Int) throws(JSONSyntaxError) -> Builder.Node {
        guard pos < bytes.count else { throw error("unexpected end of input, expected a value") }
        if depth > maxDepth { throw error("nesting deeper than \(maxDepth) levels") }
        let start = pos
        switch bytes[pos] {
        case UInt8(ascii: "{"):
            pos += 1
            var members: [(key: String, keyOffset: Int, value: Builder.Node)] = []
            skipSpace()
            if peek == UInt8(ascii: "}") { pos += 1; return builder.object(members, at: start) }
            while true {
                skipSpace()
                guard peek == UInt8(ascii: "\"") else { throw error("expected a string key in object") }
                let keyOffset = pos
                let key = try parseString()
                skipSpace()
                guard peek == UInt8(ascii: ":") else { throw error("expected ':' after object key") }
                pos += 1
                skipSpace()
                let value = try parseValue(depth: depth + 1)
                members.append((key, keyOffset, value))
                skipSpace()
                if peek == UInt8(ascii: ",") { pos += 1; continue }
                if peek == UInt8(ascii: "}") { pos += 1; break }
                throw error("expected ',' or '}' in object")
            }
            return builder.object(members, at: start)
        case UInt8(ascii: "["):
            pos += 1
            var elements: [Builder.Node] = []
            skipSpace()
            if peek == UInt8(ascii: "]") { pos += 1; return builder.array(elements, at: start) }
            while true {
                skipSpace()
                elements.append(try parseValue(depth: depth + 1))
                skipSpace()
                if peek == UInt8(ascii: ",") { pos += 1; continue }
                if peek == UInt8(ascii: "]") { pos += 1; break }
                throw error("expected ',' or ']' in array")
            }
            return builder.array(elements, at: start)
        case UInt8(ascii: "\""):
            return builder.scalar(.string(try parseString()), at: start)
        case UInt8(ascii: "t"):
            try literal("true"); return builder.scalar(.bool(true), at: start)
        case UInt8(ascii: "f"):
            try literal("false"); return builder.scalar(.bool(false), at: start)
        case UInt8(ascii: "n"):
            try literal("null"); return builder.scalar(.null, at: start)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return builder.scalar(try parseNumber(), at: start)
        default:
            throw error("unexpected '\(charName(bytes[pos]))', expected a value")
        }
    }

    private var peek: UInt8? { pos < bytes.count ? bytes[pos] : nil }

    private mutating func skipSpace() {
        while pos < bytes.count {
            switch bytes[pos] {
            case 0x20, 0x09, 0x0A, 0x0D: pos += 1
            default: return
            }
        }
    }

    private mutating func literal(_ word: String) throws(JSONSyntaxError) {
        var i = pos
        for expected in word.utf8 {
            guard i < bytes.count, bytes[i] == expected else { throw error("invalid literal, expected '\(word)'") }
            i += 1
        }
        pos = i
    }

    private mutating func parseNumber() throws(JSONSyntaxError) -> Value {
        let start = pos
        var isInteger = true
        if peek == UInt8(ascii: "-") { pos += 1 }
        guard let first = peek, first >= 48, first <= 57 else { throw error("invalid number") }
        if first == 48 {
            pos += 1
            if let p = peek, p >= 48, p <= 57 { throw error("leading zeros are not allowed in numbers") }
        } else {
            while let p = peek, p >= 48, p <= 57 { pos += 1 }
        }
        if peek == UInt8(ascii: ".") {
            isInteger = false
            pos += 1
            guard let p = peek, p >= 48, p <= 57 else { throw error("expected digits after '.'") }
            while let p = peek, p >= 48, p <= 57 { pos += 1 }
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            isInteger = false
            pos += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { pos += 1 }
            guard let p = peek, p >= 48, p <= 57 else { throw error("expected digits in exponent") }
            while let p = peek, p >= 48, p <= 57 { pos += 1 }
        }
        let text = String(decoding: bytes[start..<pos], as: UTF8.self)
        if isInteger, let i = Int64(text) { return .int(i) }
        guard let d = Double(text) else { throw error("invalid number '\(text)'") }
        return .double(d)
    }

    private mutating func parseString() throws(JSONSyntaxError) -> String {
        pos += 1  // opening quote
        let start = pos
        // Fast path: no escapes.
        while pos < bytes.count {
            let b = bytes[pos]
            if b == UInt8(ascii: "\"") {
                let s = String(decoding: bytes[start..<pos], as: UTF8.self)
                pos += 1
                return s
            }
            if b == UInt8(ascii: "\\") { break }
            if b < 0x20 { throw error("control character in string; escape it") }
            pos += 1
        }
        var out = Array(bytes[start..<pos])
        while pos < bytes.count {
            let b = bytes[pos]
            switch b {
            case UInt8(ascii: "\""):
                pos += 1
                return String(decoding: out, as: UTF8.self)
            case UInt8(ascii: "\\"):
                pos += 1
                guard let e = peek else { break }
                pos += 1
                switch e {
                case UInt8(ascii: "\""): out.append(34)
                case UInt8(ascii: "\\"): out.append(92)
                case UInt8(ascii: "/"): out.append(47)
                case UInt8(ascii: "b"): out.append(8)
                case UInt8(ascii: "f"): out.append(12)
                case UInt8(ascii: "n"): out.append(10)
                case UInt8(ascii: "r"): out.append(13)
                case UInt8(ascii: "t"): out.append(9)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        guard peek == UInt8(ascii: "\\"), pos + 1 < bytes.count, bytes[pos + 1] == UInt8(ascii: "u") else {
                            throw error("unpaired surrogate in \\u escape")
                        }
                        pos += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw error("invalid low surrogate in \\u escape") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00..<0xE000).contains(scalar) {
                        throw error("unpaired surrogate in \\u escape")
                    }
                    out.append(contentsOf: Array(String(Character(Unicode.Scalar(scalar)!)).utf8))
                default:
                    pos -= 1
                    throw error("invalid escape '\\\(charName(e))'")
                }
            default:
                if b < 0x20 { throw error("control character in string; escape it") }
                out.append(b)
                pos += 1
            }
        }
        throw error("unterminated string")
    }

    private mutating func hex4() throws(JSONSyntaxError) -> UInt32 {
        guard pos + 4 <= bytes.count else { throw error("incomplete \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[pos]
            let d: UInt32
            switch c {
            case 48...57: d = UInt32(c - 48)
            case 65...70: d = UInt32(c - 55)
            case 97...102: d = UInt32(c - 87)
            default: throw error("invalid hex digit in \\u escape")
            }
            v = v << 4 | d
            pos += 1
        }
        return v
    }

    private func charName(_ b: UInt8) -> String {
        b >= 0x20 && b < 0x7F ? String(UnicodeScalar(b)) : "\\x" + String(b, radix: 16)
    }

    private func error(_ message: String) -> JSONSyntaxError {
        let (line, column) = LineIndex(bytes: bytes).position(of: pos)
        return JSONSyntaxError(message: message, line: line, column: column)
    }
}

extension Value {
    /// Parses JSON text into a value.
    public static func parseJSON(_ text: String) throws(JSONSyntaxError) -> Value {
        var parser = JSONParser(bytes: Array(text.utf8), builder: ValueBuilder())
        return try parser.parseDocument()
    }

    /// Parses JSON bytes into a value.
    public static func parseJSON(bytes: [UInt8]) throws(JSONSyntaxError) -> Value {
        var parser = JSONParser(bytes: bytes, builder: ValueBuilder())
        return try parser.parseDocument()
    }
}

/// Maps byte offsets in a text to 1-based line and column (columns count characters, not bytes).
public struct LineIndex: Sendable {
    private let lineStarts: [Int]
    private let bytes: [UInt8]

    public init(bytes: [UInt8]) {
        var starts = [0]
        for (i, b) in bytes.enumerated() where b == UInt8(ascii: "\n") { starts.append(i + 1) }
        self.lineStarts = starts
        self.bytes = bytes
    }

    public func position(of offset: Int) -> (line: Int, column: Int) {
        var lo = 0, hi = lineStarts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if lineStarts[mid] <= offset { lo = mid } else { hi = mid - 1 }
        }
        let start = lineStarts[lo]
        let end = min(offset, bytes.count)
        // Count UTF-8 lead bytes so multi-byte characters are one column.
        let column = bytes[start..<max(start, end)].reduce(0) { $0 + ($1 & 0xC0 == 0x80 ? 0 : 1) } + 1
        return (lo + 1, column)
    }
}
