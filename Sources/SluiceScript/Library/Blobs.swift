extension StandardLibrary {
    /// The bytes a BLOB portion covers (Rhai `calc_offset_len`): a negative start counts from the end
    /// and stops at the first byte, a start past the end or a length ≤ 0 covers nothing, and the
    /// length is cut at the end.
    static func byteRange(_ count: Int, _ start: Int64, _ length: Int64) -> Range<Int> {
        let n = Int64(count)
        let s = start < 0 ? max(0, n + start) : min(start, n)
        return Int(s)..<Int(s + max(0, min(length, n - s)))
    }

    /// The bytes picked by (start, len) or a range argument, or nil when the arguments are neither.
    static func byteRange(_ args: ArraySlice<Dynamic>, _ count: Int) -> Range<Int>? {
        guard let (start, length) = bitSpan(args) else { return nil }
        return byteRange(count, start, length)
    }

    /// Up to eight bytes of `b` at `r`, zero-padded to eight, as a number in the given byte order.
    static func parseBytes(_ b: [UInt8], _ r: Range<Int>, little: Bool) -> UInt64 {
        var buffer = [UInt8](repeating: 0, count: 8)
        for (i, byte) in b[r].prefix(8).enumerated() { buffer[i] = byte }
        if !little { buffer.reverse() }
        return buffer.enumerated().reduce(0) { $0 | UInt64($1.element) << UInt64(8 * $1.offset) }
    }

    static func installBlobs(_ e: ScriptEngine) {
        e.register("blob") { x, a, pos throws(Signal) in
            guard a.count <= 2 else { return nil }
            if a.isEmpty { return .blob([]) }
            guard let n = int(a[0]) else { return nil }
            var fill: UInt8 = 0
            if a.count == 2 {
                guard let v = int(a[1]) else { return nil }
                fill = UInt8(truncatingIfNeeded: v)
            }
            let limit = x.limits.maxArraySize > 0 ? Int64(x.limits.maxArraySize) : 100_000_000
            if n > limit { throw .runtime("ErrorDataTooLarge", "Size of array/BLOB too large", pos) }
            return .blob([UInt8](repeating: fill, count: Int(max(0, n))))
        }
        e.register("to_array") { _, a, _ in
            guard a.count == 1, case .blob(let b) = a[0] else { return nil }
            return .array(b.map { .int(Int64($0)) })
        }
        e.register("as_string") { _, a, _ in
            guard a.count == 1, case .blob(let b) = a[0] else { return nil }
            return .string(String(decoding: b, as: UTF8.self))
        }
        // parse_*(start, len | range): at most eight bytes, the missing ones taken as zeros
        // (at the low end for big-endian, so `parse_be_int(b, i, 3)` fills the top three bytes).
        for (name, little) in [("parse_le_int", true), ("parse_be_int", false)] {
            e.register(name) { _, a, _ in
                guard a.count == 2 || a.count == 3, case .blob(let b) = a[0], let r = byteRange(a[1...], b.count) else { return nil }
                return .int(Int64(bitPattern: parseBytes(b, r, little: little)))
            }
        }
        for (name, little) in [("parse_le_float", true), ("parse_be_float", false)] {
            e.register(name) { _, a, _ in
                guard a.count == 2 || a.count == 3, case .blob(let b) = a[0], let r = byteRange(a[1...], b.count) else { return nil }
                return .float(Double(bitPattern: parseBytes(b, r, little: little)))
            }
        }
        // write_*(start, len | range, value): the first bytes of the value's eight in that byte
        // order, as many as the portion holds.
        for (name, little) in [("write_le", true), ("write_be", false)] {
            e.register(name, mutating: true) { _, a, _ in
                guard a.count == 3 || a.count == 4, case .blob(var b) = a[0],
                      let r = byteRange(a[1..<(a.count - 1)], b.count) else { return nil }
                let bits: UInt64
                switch a[a.count - 1] {
                case .int(let i): bits = UInt64(bitPattern: i)
                case .float(let f): bits = f.bitPattern
                default: return nil
                }
                var bytes = (0..<8).map { UInt8(truncatingIfNeeded: bits >> UInt64(8 * $0)) }
                if !little { bytes.reverse() }
                a[0] = .unit
                for (i, byte) in zip(r, bytes) { b[i] = byte }
                a[0] = .blob(b)
                return .unit
            }
        }
        // write_utf8/write_ascii(start, len | range, string): as many bytes as fit; `write_ascii`
        // skips the non-ASCII characters.
        for (name, asciiOnly) in [("write_utf8", false), ("write_ascii", true)] {
            e.register(name, mutating: true) { _, a, _ in
                guard a.count == 3 || a.count == 4, case .blob(var b) = a[0], case .string(let s) = a[a.count - 1],
                      let r = byteRange(a[1..<(a.count - 1)], b.count) else { return nil }
                let bytes = asciiOnly ? s.unicodeScalars.filter(\.isASCII).map { UInt8($0.value) } : Array(s.utf8)
                a[0] = .unit
                for (i, byte) in zip(r, bytes) { b[i] = byte }
                a[0] = .blob(b)
                return .unit
            }
        }
    }
}
