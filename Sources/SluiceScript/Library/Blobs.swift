extension StandardLibrary {
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
        for (name, little) in [("parse_le_int", true), ("parse_be_int", false)] {
            e.register(name) { _, a, _ in
                guard a.count >= 2, case .blob(let b) = a[0], let (s, t) = slice(a[1...], b.count) else { return nil }
                var bytes = Array(b[s..<min(t, s + 8)])
                if !little { bytes.reverse() }
                var v: UInt64 = 0
                for (i, byte) in bytes.enumerated() { v |= UInt64(byte) << UInt64(8 * i) }
                return .int(Int64(bitPattern: v))
            }
        }
        for (name, little) in [("parse_le_float", true), ("parse_be_float", false)] {
            e.register(name) { _, a, _ in
                guard a.count >= 2, case .blob(let b) = a[0], let (s, t) = slice(a[1...], b.count) else { return nil }
                var bytes = Array(b[s..<min(t, s + 8)])
                bytes += [UInt8](repeating: 0, count: 8 - bytes.count)
                if !little { bytes.reverse() }
                var v: UInt64 = 0
                for (i, byte) in bytes.enumerated() { v |= UInt64(byte) << UInt64(8 * i) }
                return .float(Double(bitPattern: v))
            }
        }
        for (name, little) in [("write_le", true), ("write_be", false)] {
            e.register(name, mutating: true) { _, a, _ in
                guard a.count >= 3, case .blob(var b) = a[0], let (s, t) = slice(a[1..<(a.count - 1)], b.count) else { return nil }
                let bits: UInt64
                switch a[a.count - 1] {
                case .int(let i): bits = UInt64(bitPattern: i)
                case .float(let f): bits = f.bitPattern
                default: return nil
                }
                let width = min(t - s, 8)
                var bytes = (0..<8).map { UInt8(truncatingIfNeeded: bits >> UInt64(8 * $0)) }
                if !little { bytes.reverse(); bytes = Array(bytes.suffix(width)) } else { bytes = Array(bytes.prefix(width)) }
                for i in 0..<width { b[s + i] = bytes[i] }
                a[0] = .blob(b)
                return .unit
            }
        }
        for name in ["write_utf8", "write_ascii"] {
            e.register(name, mutating: true) { _, a, _ in
                guard a.count >= 3, case .blob(var b) = a[0], case .string(let str) = a[a.count - 1],
                      let (s, t) = slice(a[1..<(a.count - 1)], b.count) else { return nil }
                var bytes = Array(str.utf8)
                if name == "write_ascii" { bytes = str.unicodeScalars.filter(\.isASCII).map { UInt8($0.value) } }
                for i in 0..<min(t - s, bytes.count) { b[s + i] = bytes[i] }
                a[0] = .blob(b)
                return .unit
            }
        }
    }
}
