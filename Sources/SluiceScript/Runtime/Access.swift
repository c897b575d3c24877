/// Reading and writing through `.property` and `[index]`.
enum Access {
    static func property(_ v: Dynamic, _ name: String, _ x: Interpreter, _ pos: ScriptPosition) throws(Signal) -> Dynamic {
        switch v {
        case .map(let m): return m[name] ?? .unit
        case .host(let h):
            if let p = h.property(name) { return p }
        case .fnPtr(let f):
            if name == "name" { return .string(f.name) }
            if name == "is_anonymous" { return .bool(f.isAnonymous) }
        default: break
        }
        if x.engine.getters.contains(name), let getter = x.engine.natives[name] {
            var args = [v]
            if let r = try getter.body(x, &args, pos) { return r }
        }
        throw .runtime("ErrorDotExpr", "Unknown property '\(name)' - a getter is not registered for type '\(v.typeName)'", pos)
    }

    /// A position counted from the end when negative, or nil when outside `0..<count`.
    @inline(__always) static func normalize(_ i: Int64, _ count: Int) -> Int? {
        let j = i < 0 ? Int64(count) + i : i
        return j >= 0 && j < Int64(count) ? Int(j) : nil
    }

    static func arrayBounds(_ i: Int64, _ count: Int, _ pos: ScriptPosition) -> Signal {
        .runtime("ErrorArrayBounds", count == 0 ? "Array index \(i) out of bounds: array is empty"
            : "Array index \(i) out of bounds: only \(count) elements in array", pos)
    }

    static func stringBounds(_ i: Int64, _ count: Int, _ pos: ScriptPosition) -> Signal {
        .runtime("ErrorStringBounds", count == 0 ? "String index \(i) out of bounds: string is empty"
            : "String index \(i) out of bounds: only \(count) characters in string", pos)
    }

    static func bitBounds(_ i: Int64, _ pos: ScriptPosition) -> Signal {
        .runtime("ErrorBitFieldBounds", "Bit-field index \(i) out of bounds: only 64 bits in number", pos)
    }

    static func index(_ v: Dynamic, _ i: Dynamic, _ pos: ScriptPosition) throws(Signal) -> Dynamic {
        switch (v, i) {
        case (.array(let a), .int(let n)):
            guard let j = normalize(n, a.count) else { throw arrayBounds(n, a.count, pos) }
            return a[j]
        case (.map(let m), .string(let k)): return m[k] ?? .unit
        case (.map(let m), .char(let c)): return m[String(Character(c))] ?? .unit
        case (.string(let s), .int(let n)):
            let scalars = s.unicodeScalars
            if n >= 0 {
                var it = scalars.makeIterator()
                var k: Int64 = 0
                while let c = it.next() {
                    if k == n { return .char(c) }
                    k += 1
                }
                throw stringBounds(n, scalars.count, pos)
            }
            let chars = Array(scalars)
            guard let j = normalize(n, chars.count) else { throw stringBounds(n, chars.count, pos) }
            return .char(chars[j])
        case (.string(let s), .range(let a, let b, let inclusive)):
            let chars = Array(s.unicodeScalars)
            let (start, end) = indexRange(a, b, inclusive, chars.count)
            return .string(String(String.UnicodeScalarView(chars[start..<end])))
        case (.array(let arr), .range(let a, let b, let inclusive)):
            let (start, end) = indexRange(a, b, inclusive, arr.count)
            return .array(Array(arr[start..<end]))
        case (.blob(let b), .int(let n)):
            guard let j = normalize(n, b.count) else { throw arrayBounds(n, b.count, pos) }
            return .int(Int64(b[j]))
        case (.int(let value), .int(let n)):
            guard let bit = normalize(n, 64) else { throw bitBounds(n, pos) }
            return .bool(value & (1 << Int64(bit)) != 0)
        case (.int(let value), .range(let a, let b, let inclusive)):
            let (shift, mask) = try StandardLibrary.bitRange(a, b, inclusive, pos)
            return .int(StandardLibrary.maskedBits(value, shift, mask))
        case (.array, _), (.blob, _), (.string, _):
            throw .runtime("ErrorMismatchDataType", "Data type incorrect: \(i.typeName) (expecting i64)", pos)
        case (.map, _):
            throw .runtime("ErrorMismatchDataType", "Data type incorrect: \(i.typeName) (expecting string)", pos)
        default:
            throw .runtime("ErrorIndexingType", "Indexing not supported: \(v.typeName)[\(i.typeName)]", pos)
        }
    }

    /// A range used as an index: negative bounds count from the end, then it is clamped.
    static func indexRange(_ a: Int64, _ b: Int64, _ inclusive: Bool, _ count: Int) -> (Int, Int) {
        let n = Int64(count)
        let start = a < 0 ? max(0, n + a) : a
        if b < 0, n + b <= start { return (Int(min(start, n)), Int(min(start, n))) }
        return clampRange(start, b < 0 ? n + b : b, inclusive, count)
    }

    /// A range clamped to `0...count`, as start and end offsets.
    static func clampRange(_ a: Int64, _ b: Int64, _ inclusive: Bool, _ count: Int) -> (Int, Int) {
        let start = Int(max(0, min(a, Int64(count))))
        let endValue = inclusive ? (b == .max ? b : b + 1) : b
        let end = Int(max(Int64(start), min(endValue, Int64(count))))
        return (start, end)
    }

    static func modifyIndex(_ parent: inout Dynamic, _ i: Dynamic, _ pos: ScriptPosition,
                            _ body: (inout Dynamic) throws(Signal) -> Dynamic) throws(Signal) -> Dynamic {
        // Containers are taken out so the write is in place (see Dynamic.takeArray).
        if case .int(let n) = i, var a = parent.takeArray() {
            defer { parent = .array(a) }
            guard let j = normalize(n, a.count) else { throw arrayBounds(n, a.count, pos) }
            return try body(&a[j])
        }
        if case .string(let k) = i, var m = parent.takeMap() {
            defer { parent = .map(m) }
            return try body(&m[k, default: .unit])
        }
        switch (parent, i) {
        case (.string(let s), .int(let n)):
            var chars = Array(s.unicodeScalars)
            guard let j = normalize(n, chars.count) else { throw stringBounds(n, chars.count, pos) }
            var c = Dynamic.char(chars[j])
            let r = try body(&c)
            switch c {
            case .char(let new): chars[j] = new
            case .string(let str) where str.unicodeScalars.count == 1: chars[j] = str.unicodeScalars.first!
            default: throw .mismatch(c.typeName, expecting: "char", pos)
            }
            parent = .string(String(String.UnicodeScalarView(chars)))
            return r
        case (.string(let s), .range(let a, let b, let inclusive)):
            var chars = Array(s.unicodeScalars)
            let (start, end) = indexRange(a, b, inclusive, chars.count)
            var part = Dynamic.string(String(String.UnicodeScalarView(chars[start..<end])))
            let r = try body(&part)
            chars.replaceSubrange(start..<end, with: part.displayText.unicodeScalars)
            parent = .string(String(String.UnicodeScalarView(chars)))
            return r
        case (.blob(var b), .int(let n)):
            guard let j = normalize(n, b.count) else { throw arrayBounds(n, b.count, pos) }
            var v = Dynamic.int(Int64(b[j]))
            let r = try body(&v)
            guard case .int(let byte) = v else { throw .mismatch(v.typeName, expecting: "i64", pos) }
            b[j] = UInt8(truncatingIfNeeded: byte)
            parent = .blob(b)
            return r
        case (.int(let value), .int(let n)):
            guard let bit = normalize(n, 64) else { throw bitBounds(n, pos) }
            var v = Dynamic.bool(value & (1 << Int64(bit)) != 0)
            let r = try body(&v)
            guard case .bool(let on) = v else { throw .mismatch(v.typeName, expecting: "bool", pos) }
            parent = .int(on ? value | (1 << Int64(bit)) : value & ~(1 << Int64(bit)))
            return r
        case (.int(let value), .range(let a, let b, let inclusive)):
            let (shift, mask) = try StandardLibrary.bitRange(a, b, inclusive, pos)
            var v = Dynamic.int(StandardLibrary.maskedBits(value, shift, mask))
            let r = try body(&v)
            guard case .int(let bits) = v else { throw .mismatch(v.typeName, expecting: "i64", pos) }
            let updated = (UInt64(bitPattern: value) & ~mask) | ((UInt64(bitPattern: bits) << UInt64(shift)) & mask)
            parent = .int(Int64(bitPattern: updated))
            return r
        default:
            var v = try index(parent, i, pos)
            return try body(&v)
        }
    }

    /// Whether a value fits the receiver type of `fn type.name()`.
    static func typeMatches(_ v: Dynamic, _ type: String) -> Bool {
        switch type {
        case "int", "INT": return v.typeName == "i64"
        case "float", "FLOAT": return v.typeName == "f64"
        case "str", "String", "ImmutableString": return v.typeName == "string"
        case "Array": return v.typeName == "array"
        case "Map": return v.typeName == "map"
        default: return v.typeName == type
        }
    }
}
