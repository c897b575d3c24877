import Foundation

extension StandardLibrary {
    /// Characters of a string as an array of scalars, for position-based operations.
    static func scalars(_ s: String) -> [Unicode.Scalar] { Array(s.unicodeScalars) }

    static func string(from scalars: some Sequence<Unicode.Scalar>) -> String {
        var s = String.UnicodeScalarView()
        s.append(contentsOf: scalars)
        return String(s)
    }

    /// Start and length (Rhai rules: negative start counts from the end, clamped) as offsets.
    static func span(_ count: Int, _ start: Int64, _ length: Int64?) -> (Int, Int) {
        var s = start
        if s < 0 { s = max(0, Int64(count) + s) }
        if s >= Int64(count) { return (count, count) }
        let l = length ?? Int64(count)
        if l <= 0 { return (Int(s), Int(s)) }
        let end = l > Int64(count) - s ? Int64(count) : s + l
        return (Int(s), Int(end))
    }

    /// A (start, length) or range argument pair, as offsets into a collection.
    static func slice(_ args: ArraySlice<Dynamic>, _ count: Int) -> (Int, Int)? {
        let a = Array(args)
        if a.count == 1, case .range(let x, let y, let inclusive) = a[0] { return Access.clampRange(x, y, inclusive, count) }
        if a.count == 1, let s = int(a[0]) { return span(count, s, nil) }
        if a.count == 2, let s = int(a[0]), let l = int(a[1]) { return span(count, s, l) }
        return nil
    }

    static func installStrings(_ e: ScriptEngine) {
        e.register("len") { _, a, _ in a.count == 1 ? len(a[0]) : nil }
        e.register("is_empty") { _, a, _ in
            guard a.count == 1, case .int(let n)? = len(a[0]) else { return nil }
            return .bool(n == 0)
        }
        e.register("bytes") { _, a, _ in
            guard a.count == 1, case .string(let s) = a[0] else { return nil }
            return .int(Int64(s.utf8.count))
        }
        e.register("starts_with") { _, a, _ in
            guard a.count == 2, case .string(let s) = a[0], let p = string(a[1]) else { return nil }
            return .bool(s.unicodeScalars.starts(with: p.unicodeScalars))
        }
        e.register("ends_with") { _, a, _ in
            guard a.count == 2, case .string(let s) = a[0], let p = string(a[1]) else { return nil }
            return .bool(s.unicodeScalars.reversed().starts(with: p.unicodeScalars.reversed()))
        }
        e.register("index_of") { _, a, _ in
            guard a.count == 2 || a.count == 3, case .string(let s) = a[0], let p = string(a[1]) else { return nil }
            let chars = scalars(s), needle = scalars(p)
            var start = 0
            if a.count == 3 {
                guard let st = int(a[2]) else { return nil }
                start = span(chars.count, st, nil).0
            }
            if needle.isEmpty { return .int(Int64(min(start, chars.count))) }
            guard chars.count >= needle.count else { return .int(-1) }
            var i = start
            while i + needle.count <= chars.count {
                if chars[i..<(i + needle.count)].elementsEqual(needle) { return .int(Int64(i)) }
                i += 1
            }
            return .int(-1)
        }
        e.register("sub_string") { _, a, _ in
            guard a.count >= 2, case .string(let s) = a[0] else { return nil }
            let chars = scalars(s)
            guard let (x, y) = slice(a[1...], chars.count) else { return nil }
            return .string(string(from: chars[x..<y]))
        }
        e.register("crop", mutating: true) { _, a, _ in
            guard a.count >= 2, case .string(let s) = a[0] else { return nil }
            let chars = scalars(s)
            guard let (x, y) = slice(a[1...], chars.count) else { return nil }
            a[0] = .string(string(from: chars[x..<y]))
            return .unit
        }
        e.register("split") { _, a, _ in
            guard case .string(let s)? = a.first else { return nil }
            if a.count == 1 {
                return .array(s.split(whereSeparator: { $0.isWhitespace }).map { .string(String($0)) })
            }
            if a.count == 2, let pos = int(a[1]) {
                let chars = scalars(s)
                let (i, _) = span(chars.count, pos, nil)
                return .array([.string(string(from: chars[..<i])), .string(string(from: chars[i...]))])
            }
            guard let delim = string(a[1]) else { return nil }
            var limit = Int.max
            if a.count == 3 {
                guard let m = int(a[2]) else { return nil }
                limit = Int(max(1, min(m, Int64(Int.max))))
            }
            return .array(split(s, delim, limit).map { .string($0) })
        }
        e.register("split_rev") { _, a, _ in
            guard a.count >= 2, case .string(let s) = a[0], let delim = string(a[1]) else { return nil }
            var limit = Int.max
            if a.count == 3 {
                guard let m = int(a[2]) else { return nil }
                limit = Int(max(1, min(m, Int64(Int.max))))
            }
            let rev = split(String(s.reversed()), String(delim.reversed()), limit)
            return .array(rev.map { .string(String($0.reversed())) })
        }
        e.register("trim", mutating: true) { _, a, _ in
            guard a.count == 1, case .string(let s) = a[0] else { return nil }
            a[0] = .string(s.trimmingCharacters(in: .whitespacesAndNewlines))
            return .unit
        }
        e.register("to_upper") { _, a, _ in
            guard a.count == 1 else { return nil }
            switch a[0] {
            case .string(let s): return .string(s.uppercased())
            case .char(let c): return .char(String(Character(c)).uppercased().unicodeScalars.first!)
            default: return nil
            }
        }
        e.register("to_lower") { _, a, _ in
            guard a.count == 1 else { return nil }
            switch a[0] {
            case .string(let s): return .string(s.lowercased())
            case .char(let c): return .char(String(Character(c)).lowercased().unicodeScalars.first!)
            default: return nil
            }
        }
        e.register("make_upper", mutating: true) { _, a, _ in
            guard a.count == 1 else { return nil }
            switch a[0] {
            case .string(let s): a[0] = .string(s.uppercased())
            case .char(let c): a[0] = .char(String(Character(c)).uppercased().unicodeScalars.first!)
            default: return nil
            }
            return .unit
        }
        e.register("make_lower", mutating: true) { _, a, _ in
            guard a.count == 1 else { return nil }
            switch a[0] {
            case .string(let s): a[0] = .string(s.lowercased())
            case .char(let c): a[0] = .char(String(Character(c)).lowercased().unicodeScalars.first!)
            default: return nil
            }
            return .unit
        }
        e.register("replace", mutating: true) { _, a, _ in
            guard a.count == 3, case .string(let s) = a[0], let find = string(a[1]), let with = string(a[2]) else { return nil }
            if !find.isEmpty { a[0] = .string(s.replacingOccurrences(of: find, with: with)) }
            return .unit
        }
        e.register("pad", mutating: true) { _, a, pos throws(Signal) in
            guard a.count == 3, let n = int(a[1]) else { return nil }
            // Arrays and blobs are taken out before any `switch` on them: see Dynamic.takeArray.
            if case .array = a[0] {
                if n > 0, x_tooBig(Int(n)) { throw .runtime("ErrorDataTooLarge", "Size of array/BLOB too large", pos) }
                var arr = a[0].takeArray()!
                while arr.count < n { arr.append(a[2]) }
                a[0] = .array(arr)
                return .unit
            }
            if case .blob = a[0] {
                guard let v = int(a[2]) else { return nil }
                if n > 0, x_tooBig(Int(n)) { throw .runtime("ErrorDataTooLarge", "Size of array/BLOB too large", pos) }
                var b = a[0].takeBlob()!
                while b.count < n { b.append(UInt8(truncatingIfNeeded: v)) }
                a[0] = .blob(b)
                return .unit
            }
            guard case .string(let s) = a[0], let p = string(a[2]) else { return nil }
            var chars = scalars(s)
            let padding = scalars(p)
            if padding.isEmpty { return .unit }
            while chars.count < n {
                for c in padding where chars.count < n { chars.append(c) }
            }
            a[0] = .string(string(from: chars))
            return .unit
        }
        e.register("truncate", mutating: true) { _, a, _ in
            guard a.count == 2, let n = int(a[1]) else { return nil }
            let keep = Int(max(0, min(n, Int64(Int32.max))))
            switch a[0] {
            case .string(let s): a[0] = .string(string(from: scalars(s).prefix(keep)))
            case .array(let arr): a[0] = .array(Array(arr.prefix(keep)))
            case .blob(let b): a[0] = .blob(Array(b.prefix(keep)))
            default: return nil
            }
            return .unit
        }
        e.register("clear", mutating: true) { _, a, _ in
            guard a.count == 1 else { return nil }
            switch a[0] {
            case .string: a[0] = .string("")
            case .array: a[0] = .array([])
            case .map: a[0] = .map([:])
            case .blob: a[0] = .blob([])
            default: return nil
            }
            return .unit
        }
        e.register("remove", mutating: true) { _, a, _ in
            guard a.count == 2 else { return nil }
            // Containers are taken out before any `switch` on them: see Dynamic.takeArray.
            if case .int(let i) = a[1] {
                if var arr = a[0].takeArray() {
                    defer { a[0] = .array(arr) }
                    guard let j = Access.normalize(i, arr.count) else { return .unit }
                    return arr.remove(at: j)
                }
                if var b = a[0].takeBlob() {
                    defer { a[0] = .blob(b) }
                    guard let j = Access.normalize(i, b.count) else { return .unit }
                    return .int(Int64(b.remove(at: j)))
                }
            }
            if case .string(let k) = a[1], var m = a[0].takeMap() {
                defer { a[0] = .map(m) }
                return m.removeValue(forKey: k) ?? .unit
            }
            switch (a[0], a[1]) {
            case (.string(let s), .string(let sub)):
                if !sub.isEmpty { a[0] = .string(s.replacingOccurrences(of: sub, with: "")) }
                return .unit
            case (.string(let s), .char(let c)):
                a[0] = .string(string(from: s.unicodeScalars.filter { $0 != c }))
                return .unit
            default: return nil
            }
        }
        e.register("pop", mutating: true) { _, a, _ in
            if a.count == 1, var arr = a[0].takeArray() {
                defer { a[0] = .array(arr) }
                return arr.popLast() ?? .unit
            }
            if a.count == 1, var b = a[0].takeBlob() {
                defer { a[0] = .blob(b) }
                // An empty blob gives 0, as in Rhai.
                return .int(Int64(b.popLast() ?? 0))
            }
            switch (a.count, a.first) {
            case (1, .string(let s)?):
                var chars = scalars(s)
                guard let c = chars.popLast() else { return .unit }
                a[0] = .string(string(from: chars))
                return .char(c)
            case (2, .string(let s)?):
                guard let n = int(a[1]) else { return nil }
                var chars = scalars(s)
                let k = Int(max(0, min(n, Int64(chars.count))))
                let tail = string(from: chars.suffix(k))
                chars.removeLast(k)
                a[0] = .string(string(from: chars))
                return .string(tail)
            default: return nil
            }
        }
        e.register("get") { _, a, _ in
            guard a.count == 2 else { return nil }
            switch (a[0], a[1]) {
            case (.string(let s), .int(let i)):
                let chars = scalars(s)
                return Access.normalize(i, chars.count).map { .char(chars[$0]) } ?? .unit
            case (.array(let arr), .int(let i)): return Access.normalize(i, arr.count).map { arr[$0] } ?? .unit
            case (.blob(let b), .int(let i)): return Access.normalize(i, b.count).map { .int(Int64(b[$0])) } ?? .unit
            case (.map(let m), .string(let k)): return m[k] ?? .unit
            default: return nil
            }
        }
        e.register("set", mutating: true) { _, a, _ in
            guard a.count == 3 else { return nil }
            // Containers are taken out before any `switch` on them: see Dynamic.takeArray.
            if case .int(let i) = a[1] {
                if var arr = a[0].takeArray() {
                    if let j = Access.normalize(i, arr.count) { arr[j] = a[2] }
                    a[0] = .array(arr)
                    return .unit
                }
                if case .int(let v) = a[2], var b = a[0].takeBlob() {
                    if let j = Access.normalize(i, b.count) { b[j] = UInt8(truncatingIfNeeded: v) }
                    a[0] = .blob(b)
                    return .unit
                }
            }
            if case .string(let k) = a[1], var m = a[0].takeMap() {
                m[k] = a[2]
                a[0] = .map(m)
                return .unit
            }
            switch (a[0], a[1], a[2]) {
            case (.string(let s), .int(let i), .char(let c)):
                var chars = scalars(s)
                if let j = Access.normalize(i, chars.count) {
                    chars[j] = c
                    a[0] = .string(string(from: chars))
                }
            default: return nil
            }
            return .unit
        }
        e.register("chars") { _, a, _ in
            guard a.count >= 1, case .string(let s) = a[0] else { return nil }
            var chars = scalars(s)
            if a.count > 1 {
                guard let (x, y) = slice(a[1...], chars.count) else { return nil }
                chars = Array(chars[x..<y])
            }
            return .sequence(ScriptSequence(typeName: "CharsStream") {
                var i = 0
                return {
                    guard i < chars.count else { return nil }
                    defer { i += 1 }
                    return .char(chars[i])
                }
            })
        }
        e.register("to_chars") { _, a, _ in
            guard a.count == 1, case .string(let s) = a[0] else { return nil }
            return .array(s.unicodeScalars.map { .char($0) })
        }
        e.register("to_blob") { _, a, _ in
            guard a.count == 1, case .string(let s) = a[0] else { return nil }
            return .blob(Array(s.utf8))
        }
        e.register("append", mutating: true) { _, a, _ in
            guard a.count == 2 else { return nil }
            if var s = a[0].takeString() {
                s += a[1].displayText
                a[0] = .string(s)
                return .unit
            }
            if var arr = a[0].takeArray() {
                if case .array(let more) = a[1] { arr += more } else { arr.append(a[1]) }
                a[0] = .array(arr)
                return .unit
            }
            guard case .blob = a[0], let more = a[1].bytesForBlob else { return nil }
            var b = a[0].takeBlob()!
            b += more
            a[0] = .blob(b)
            return .unit
        }
        e.register("contains") { _, a, pos throws(Signal) in
            guard a.count == 2 else { return nil }
            switch a[0] {
            case .string, .array, .map, .range, .blob: return .bool(try Operators.contains(a[0], a[1], pos))
            default: return nil
            }
        }
        e.register("parse_int") { _, a, pos throws(Signal) in
            guard a.count == 1 || a.count == 2, case .string(let s) = a[0] else { return nil }
            var radix: Int64 = 10
            if a.count == 2 {
                guard let r = int(a[1]) else { return nil }
                radix = r
            }
            guard (2...36).contains(radix) else {
                throw arithmetic("Invalid radix: '\(radix)'", pos)
            }
            let t = s.trimmingCharacters(in: .whitespaces)
            guard let v = Int64(t.hasPrefix("+") ? String(t.dropFirst()) : t, radix: Int(radix)) else {
                throw arithmetic("Error parsing integer number '\(s)': invalid digit found in string", pos)
            }
            return .int(v)
        }
        e.register("parse_float") { _, a, pos throws(Signal) in
            guard a.count == 1, case .string(let s) = a[0] else { return nil }
            let t = s.trimmingCharacters(in: .whitespaces)
            guard let v = Double(t) ?? (t.lowercased() == "inf" ? Double.infinity : nil) else {
                throw arithmetic("Error parsing floating-point number '\(s)': invalid float literal", pos)
            }
            return .float(v)
        }
    }

    /// Splits keeping empty segments, at most `limit` pieces.
    static func split(_ s: String, _ delimiter: String, _ limit: Int) -> [String] {
        if delimiter.isEmpty {
            // Rust splits around every char boundary, with empty ends.
            var parts = [""] + s.unicodeScalars.map { String(Character($0)) } + [""]
            if parts.count > limit {
                let head = parts.prefix(limit - 1)
                parts = Array(head) + [parts.dropFirst(limit - 1).joined()]
            }
            return parts
        }
        var parts: [String] = []
        var rest = Substring(s)
        while parts.count < limit - 1, let r = rest.range(of: delimiter) {
            parts.append(String(rest[..<r.lowerBound]))
            rest = rest[r.upperBound...]
        }
        parts.append(String(rest))
        return parts
    }

    /// A guard for functions that grow a value to a requested size in one go.
    static func x_tooBig(_ n: Int) -> Bool { n > 100_000_000 }
}
