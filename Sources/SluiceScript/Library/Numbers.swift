import Foundation

extension StandardLibrary {
    static func installNumbers(_ e: ScriptEngine) {
        e.register("abs") { _, a, pos throws(Signal) in
            guard a.count == 1 else { return nil }
            switch a[0] {
            case .int(let i):
                if i == .min { throw arithmetic("Negation overflow: -\(i)", pos) }
                return .int(Swift.abs(i))
            case .float(let f): return .float(Swift.abs(f))
            default: return nil
            }
        }
        e.register("sign") { _, a, _ in
            guard a.count == 1 else { return nil }
            switch a[0] {
            case .int(let i): return .int(i.signum())
            case .float(let f): return .int(f.isNaN || f == 0 ? 0 : (f > 0 ? 1 : -1))
            default: return nil
            }
        }
        e.register("is_zero") { _, a, _ in
            guard a.count == 1, let n = number(a[0]) else { return nil }
            return .bool(n == 0)
        }
        e.register("is_odd") { _, a, _ in
            guard a.count == 1, let i = int(a[0]) else { return nil }
            return .bool(i & 1 == 1)
        }
        e.register("is_even") { _, a, _ in
            guard a.count == 1, let i = int(a[0]) else { return nil }
            return .bool(i & 1 == 0)
        }
        e.register("to_float") { _, a, _ in
            guard a.count == 1, let n = number(a[0]) else { return nil }
            return .float(n)
        }
        e.register("to_int") { _, a, pos throws(Signal) in
            guard a.count == 1 else { return nil }
            switch a[0] {
            case .int: return a[0]
            case .char(let c): return .int(Int64(c.value))
            case .float(let f):
                let t = f.rounded(.towardZero)
                guard t.isFinite, t >= -9.223372036854775808e18, t < 9.223372036854775808e18 else {
                    throw arithmetic("Integer overflow: to_int(\(FloatFormat.display(f)))", pos)
                }
                return .int(Int64(t))
            default: return nil
            }
        }
        e.register("to_char") { _, a, _ in
            guard a.count == 1, let i = int(a[0]), i >= 0, i <= UInt32.max, let c = Unicode.Scalar(UInt32(i)) else { return nil }
            return .char(c)
        }
        for (name, op) in [("floor", FloatingPointRoundingRule.down), ("ceiling", .up), ("round", .toNearestOrAwayFromZero),
                           ("int", .towardZero)] {
            e.register(name) { _, a, _ in
                guard a.count == 1, case .float(let f) = a[0] else { return nil }
                return .float(f.rounded(op))
            }
        }
        e.register("fraction") { _, a, _ in
            guard a.count == 1, case .float(let f) = a[0] else { return nil }
            return .float(f - f.rounded(.towardZero))
        }
        let unary: [(String, (Double) -> Double)] = [
            ("sqrt", { $0.squareRoot() }), ("exp", Foundation.exp), ("ln", Foundation.log), ("sin", Foundation.sin),
            ("cos", Foundation.cos), ("tan", Foundation.tan), ("asin", Foundation.asin), ("acos", Foundation.acos),
            ("sinh", Foundation.sinh), ("cosh", Foundation.cosh), ("tanh", Foundation.tanh), ("asinh", Foundation.asinh),
            ("acosh", Foundation.acosh), ("atanh", Foundation.atanh), ("to_degrees", { $0 * 180 / Double.pi }),
            ("to_radians", { $0 * Double.pi / 180 }),
        ]
        for (name, f) in unary {
            e.register(name) { _, a, _ in
                guard a.count == 1, let n = number(a[0]) else { return nil }
                return .float(f(n))
            }
        }
        e.register("atan") { _, a, _ in
            if a.count == 1, let n = number(a[0]) { return .float(Foundation.atan(n)) }
            if a.count == 2, let y = number(a[0]), let x = number(a[1]) { return .float(Foundation.atan2(y, x)) }
            return nil
        }
        e.register("hypot") { _, a, _ in
            guard a.count == 2, let x = number(a[0]), let y = number(a[1]) else { return nil }
            return .float(Foundation.hypot(x, y))
        }
        e.register("log") { _, a, _ in
            if a.count == 1, let n = number(a[0]) { return .float(Foundation.log10(n)) }
            if a.count == 2, let n = number(a[0]), let b = number(a[1]) { return .float(Foundation.log(n) / Foundation.log(b)) }
            return nil
        }
        e.register("is_nan") { _, a, _ in
            guard a.count == 1, case .float(let f) = a[0] else { return nil }
            return .bool(f.isNaN)
        }
        e.register("is_finite") { _, a, _ in
            guard a.count == 1, case .float(let f) = a[0] else { return nil }
            return .bool(f.isFinite)
        }
        e.register("is_infinite") { _, a, _ in
            guard a.count == 1, case .float(let f) = a[0] else { return nil }
            return .bool(f.isInfinite)
        }
        e.register("PI") { _, a, _ in a.isEmpty ? .float(Double.pi) : nil }
        e.register("E") { _, a, _ in a.isEmpty ? .float(M_E) : nil }
        for (name, radix) in [("to_hex", 16), ("to_octal", 8), ("to_binary", 2)] {
            e.register(name) { _, a, _ in
                guard a.count == 1, let i = int(a[0]) else { return nil }
                return .string(String(UInt64(bitPattern: i), radix: radix))
            }
        }
        for (name, isMax) in [("min", false), ("max", true)] {
            e.register(name) { _, a, _ in
                guard a.count == 2 else { return nil }
                switch (a[0], a[1]) {
                case (.int(let x), .int(let y)): return .int(isMax ? Swift.max(x, y) : Swift.min(x, y))
                case (.string, .string), (.char, .char):
                    guard let o = Operators.compare(a[0], a[1]) else { return nil }
                    return (o > 0) == isMax ? a[0] : a[1]
                default:
                    guard let x = number(a[0]), let y = number(a[1]) else { return nil }
                    return .float(isMax ? Swift.max(x, y) : Swift.min(x, y))
                }
            }
        }
        e.register("get_bit") { _, a, pos throws(Signal) in
            guard a.count == 2, case .int = a[0], case .int = a[1] else { return nil }
            return try Access.index(a[0], a[1], pos)
        }
        e.register("set_bit", mutating: true) { _, a, pos throws(Signal) in
            guard a.count == 3, case .int = a[0], case .int = a[1], case .bool = a[2] else { return nil }
            let v = a[2]
            _ = try Access.modifyIndex(&a[0], a[1], pos) { (bit: inout Dynamic) throws(Signal) -> Dynamic in
                bit = v
                return .unit
            }
            return .unit
        }
        e.register("get_bits") { _, a, pos throws(Signal) in
            guard a.count == 2 || a.count == 3, case .int(let value) = a[0], let (start, length) = bitSpan(a[1...]) else { return nil }
            if length <= 0 { return .int(0) }
            let (shift, width) = try bitField(start, length, pos)
            return .int(Int64(bitPattern: (UInt64(bitPattern: value) >> UInt64(shift)) & bitMask(width)))
        }
        e.register("set_bits", mutating: true) { _, a, pos throws(Signal) in
            guard a.count == 3 || a.count == 4, case .int(let value) = a[0], case .int(let newBits) = a[a.count - 1],
                  let (start, length) = bitSpan(a[1..<(a.count - 1)]) else { return nil }
            if length <= 0 { return .unit }
            let (shift, width) = try bitField(start, length, pos)
            let mask = bitMask(width) << UInt64(shift)
            let updated = (UInt64(bitPattern: value) & ~mask) | ((UInt64(bitPattern: newBits) << UInt64(shift)) & mask)
            a[0] = .int(Int64(bitPattern: updated))
            return .unit
        }
        e.register("bits") { _, a, pos throws(Signal) in
            guard (1...3).contains(a.count), case .int(let value) = a[0] else { return nil }
            var start: Int64 = 0, length = Int64.max
            if a.count == 2, case .int(let s) = a[1] {
                start = s
            } else if a.count > 1 {
                guard let span = bitSpan(a[1...]) else { return nil }
                (start, length) = span
            }
            let (shift, width) = try bitField(start, length, pos)
            return .sequence(ScriptSequence(typeName: "BitRange") {
                var rest = UInt64(bitPattern: value) >> UInt64(shift), left = width
                return {
                    guard left > 0 else { return nil }
                    defer { rest >>= 1; left -= 1 }
                    return .bool(rest & 1 != 0)
                }
            })
        }
    }

    /// Start and count from (start, len) or a range, turned into both the way Rhai does (the range's
    /// start clamps at 0). Used for bit fields and BLOB portions; the start is checked by the caller.
    static func bitSpan(_ args: ArraySlice<Dynamic>) -> (Int64, Int64)? {
        let a = Array(args)
        switch (a.count, a.first) {
        case (1, .range(let x, let y, let inclusive)?):
            let from = Swift.max(x, 0)
            if inclusive { return (from, Swift.min(Swift.max(y, from - 1), .max - 1) - from + 1) }
            return (from, Swift.max(y, from) - from)
        case (2, .int(let s)?):
            guard let l = int(a[1]) else { return nil }
            return (s, l)
        default: return nil
        }
    }

    /// The bits a start (negative counts from the MSB) and a length pick: the shift to the first
    /// bit and the number of bits, cut at bit 63. A start outside the 64 bits is an error.
    static func bitField(_ start: Int64, _ length: Int64, _ pos: ScriptPosition) throws(Signal) -> (Int, Int) {
        guard let shift = Access.normalize(start, 64) else { throw Access.bitBounds(start, pos) }
        return (shift, Int(Swift.max(0, Swift.min(length, Int64(64 - shift)))))
    }

    /// The bits `x[range]` covers on an INT, as the shift to its first bit and the mask of its bits
    /// in place. Either end outside the 64 bits is an error; an empty range covers nothing.
    static func bitRange(_ a: Int64, _ b: Int64, _ inclusive: Bool, _ pos: ScriptPosition) throws(Signal) -> (Int, UInt64) {
        guard a >= 0, a < 64 else { throw Access.bitBounds(a, pos) }
        let end: Int64
        if inclusive {
            let last = b == .max ? 63 : b
            guard last >= 0, last < 64 else { throw Access.bitBounds(last, pos) }
            end = last + 1
        } else {
            end = b == .max ? 64 : b
            guard end >= 0, end <= 64 else { throw Access.bitBounds(end, pos) }
        }
        if end <= a { return (0, 0) }
        return (Int(a), bitMask(Int(end - a)) << UInt64(a))
    }

    /// The bits of `value` under `mask`, shifted down (sign-extending when the mask holds bit 63, as Rhai does).
    static func maskedBits(_ value: Int64, _ shift: Int, _ mask: UInt64) -> Int64 {
        Int64(bitPattern: UInt64(bitPattern: value) & mask) >> Int64(shift)
    }

    /// The lowest `width` bits set.
    static func bitMask(_ width: Int) -> UInt64 { width >= 64 ? .max : (1 << UInt64(width)) - 1 }
}
