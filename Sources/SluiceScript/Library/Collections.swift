extension StandardLibrary {
    /// Calls a predicate-style callback with the element and, if the callback wants it, the index.
    static func each(_ x: Interpreter, _ f: Dynamic, _ v: Dynamic, _ i: Int, _ pos: ScriptPosition) throws(Signal) -> Dynamic {
        try x.callback(f, [v, .int(Int64(i))], pos: pos)
    }

    static func truthy(_ v: Dynamic, _ pos: ScriptPosition) throws(Signal) -> Bool {
        guard case .bool(let b) = v else { throw .mismatch(v.typeName, expecting: "bool", pos) }
        return b
    }

    /// The default order used by `sort()`: numbers, strings, chars and bools; mixed kinds are an error.
    static func defaultOrder(_ a: Dynamic, _ b: Dynamic, _ pos: ScriptPosition) throws(Signal) -> Bool {
        if let o = Operators.compare(a, b) { return o < 0 }
        if case .unit = a, case .unit = b { return false }
        throw .runtime("ErrorFunctionNotFound", "Function not found: sort (\(a.signatureName), \(b.signatureName))", pos)
    }

    static func comparator(_ x: Interpreter, _ f: Dynamic, _ pos: ScriptPosition) -> (Dynamic, Dynamic) throws(Signal) -> Bool {
        { (l: Dynamic, r: Dynamic) throws(Signal) -> Bool in
            let v = try x.callback(f, [l, r], pos: pos)
            switch v {
            case .int(let i): return i < 0
            case .float(let d): return d < 0
            case .bool(let b): return b
            default: throw .mismatch(v.typeName, expecting: "i64", pos)
            }
        }
    }

    /// A stable merge sort that lets the comparison throw.
    static func sorted(_ items: [Dynamic], by less: (Dynamic, Dynamic) throws(Signal) -> Bool) throws(Signal) -> [Dynamic] {
        if items.count < 2 { return items }
        var a = items
        var buffer = items
        var width = 1
        while width < a.count {
            var start = 0
            while start < a.count {
                let mid = min(start + width, a.count), end = min(start + 2 * width, a.count)
                var i = start, j = mid, k = start
                while i < mid && j < end {
                    if try less(a[j], a[i]) {
                        buffer[k] = a[j]
                        j += 1
                    } else {
                        buffer[k] = a[i]
                        i += 1
                    }
                    k += 1
                }
                while i < mid { buffer[k] = a[i]; i += 1; k += 1 }
                while j < end { buffer[k] = a[j]; j += 1; k += 1 }
                start += 2 * width
            }
            swap(&a, &buffer)
            width *= 2
        }
        return a
    }

    static func installArrays(_ e: ScriptEngine) {
        e.register("push", mutating: true) { _, a, _ in
            guard a.count == 2 else { return nil }
            if var arr = a[0].takeArray() {
                arr.append(a[1])
                a[0] = .array(arr)
                return .unit
            }
            guard case .blob = a[0], let v = int(a[1]), var b = a[0].takeBlob() else { return nil }
            b.append(UInt8(truncatingIfNeeded: v))
            a[0] = .blob(b)
            return .unit
        }
        e.register("insert", mutating: true) { _, a, _ in
            guard a.count == 3, let i = int(a[1]) else { return nil }
            if var arr = a[0].takeArray() {
                defer { a[0] = .array(arr) }
                let j = i < 0 ? max(0, Int64(arr.count) + i) : min(i, Int64(arr.count))
                arr.insert(a[2], at: Int(j))
                return .unit
            }
            guard case .blob = a[0], let v = int(a[2]), var b = a[0].takeBlob() else { return nil }
            defer { a[0] = .blob(b) }
            let j = i < 0 ? max(0, Int64(b.count) + i) : min(i, Int64(b.count))
            b.insert(UInt8(truncatingIfNeeded: v), at: Int(j))
            return .unit
        }
        e.register("shift", mutating: true) { _, a, _ in
            guard a.count == 1 else { return nil }
            if var arr = a[0].takeArray() {
                defer { a[0] = .array(arr) }
                return arr.isEmpty ? .unit : arr.removeFirst()
            }
            if var b = a[0].takeBlob() {
                defer { a[0] = .blob(b) }
                // An empty blob gives 0, as in Rhai.
                return .int(b.isEmpty ? 0 : Int64(b.removeFirst()))
            }
            return nil
        }
        e.register("chop", mutating: true) { _, a, _ in
            guard a.count == 2, let n = int(a[1]) else { return nil }
            let keep = Int(max(0, min(n, Int64(Int32.max))))
            switch a[0] {
            case .array(let arr): a[0] = .array(Array(arr.suffix(keep)))
            case .blob(let b): a[0] = .blob(Array(b.suffix(keep)))
            default: return nil
            }
            return .unit
        }
        e.register("reverse", mutating: true) { _, a, _ in
            guard a.count == 1 else { return nil }
            switch a[0] {
            case .array(let arr): a[0] = .array(arr.reversed())
            case .blob(let b): a[0] = .blob(b.reversed())
            default: return nil
            }
            return .unit
        }
        e.register("extract") { _, a, _ in
            guard a.count >= 2 else { return nil }
            switch a[0] {
            case .array(let arr):
                guard let (x, y) = slice(a[1...], arr.count) else { return nil }
                return .array(Array(arr[x..<y]))
            case .blob(let b):
                guard let (x, y) = slice(a[1...], b.count) else { return nil }
                return .blob(Array(b[x..<y]))
            default: return nil
            }
        }
        e.register("splice", mutating: true) { _, a, _ in
            guard a.count == 3 || a.count == 4 else { return nil }
            let last = a.count - 1
            if var arr = a[0].takeArray() {
                defer { a[0] = .array(arr) }
                guard let (x, y) = slice(a[1..<last], arr.count) else { return nil }
                if case .array(let r) = a[last] { arr.replaceSubrange(x..<y, with: r) } else { arr.replaceSubrange(x..<y, with: [a[last]]) }
                return .unit
            }
            guard case .blob(let r) = a[last], var b = a[0].takeBlob() else { return nil }
            defer { a[0] = .blob(b) }
            guard let (x, y) = slice(a[1..<last], b.count) else { return nil }
            b.replaceSubrange(x..<y, with: r)
            return .unit
        }
        e.register("split", mutating: true) { _, a, _ in
            guard a.count == 2, let i = int(a[1]) else { return nil }
            switch a[0] {
            case .array(let arr):
                let (j, _) = span(arr.count, i, nil)
                a[0] = .array(Array(arr[..<j]))
                return .array(Array(arr[j...]))
            case .blob(let b):
                let (j, _) = span(b.count, i, nil)
                a[0] = .blob(Array(b[..<j]))
                return .blob(Array(b[j...]))
            default: return nil
            }
        }
        e.register("index_of") { x, a, pos throws(Signal) in
            guard a.count == 2 || a.count == 3, case .array(let arr) = a[0] else { return nil }
            var start = 0
            if a.count == 3 {
                guard let s = int(a[2]) else { return nil }
                start = span(arr.count, s, nil).0
            }
            for i in start..<max(start, arr.count) {
                if case .fnPtr = a[1] {
                    if try truthy(try each(x, a[1], arr[i], i, pos), pos) { return .int(Int64(i)) }
                } else if case .string(let name) = a[1], x.program.hasFunction(name) || x.engine.natives[name] != nil {
                    if try truthy(try each(x, a[1], arr[i], i, pos), pos) { return .int(Int64(i)) }
                } else if Operators.equals(arr[i], a[1]) {
                    return .int(Int64(i))
                }
            }
            return .int(-1)
        }
        e.register("find") { x, a, pos throws(Signal) in
            guard a.count == 2, case .array(let arr) = a[0], isCallable(a[1]) else { return nil }
            for (i, v) in arr.enumerated() where try truthy(try each(x, a[1], v, i, pos), pos) { return v }
            return .unit
        }
        e.register("find_map") { x, a, pos throws(Signal) in
            guard a.count == 2, case .array(let arr) = a[0], isCallable(a[1]) else { return nil }
            for (i, v) in arr.enumerated() {
                let r = try each(x, a[1], v, i, pos)
                if case .unit = r { continue }
                return r
            }
            return .unit
        }
        e.register("map") { x, a, pos throws(Signal) in
            guard a.count == 2, case .array(let arr) = a[0], isCallable(a[1]) else { return nil }
            var out: [Dynamic] = []
            out.reserveCapacity(arr.count)
            for (i, v) in arr.enumerated() { out.append(try each(x, a[1], v, i, pos)) }
            return .array(out)
        }
        e.register("filter") { x, a, pos throws(Signal) in
            guard a.count == 2, case .array(let arr) = a[0], isCallable(a[1]) else { return nil }
            var out: [Dynamic] = []
            for (i, v) in arr.enumerated() where try truthy(try each(x, a[1], v, i, pos), pos) { out.append(v) }
            return .array(out)
        }
        e.register("some") { x, a, pos throws(Signal) in
            guard a.count == 2, case .array(let arr) = a[0], isCallable(a[1]) else { return nil }
            for (i, v) in arr.enumerated() where try truthy(try each(x, a[1], v, i, pos), pos) { return .bool(true) }
            return .bool(false)
        }
        e.register("all") { x, a, pos throws(Signal) in
            guard a.count == 2, case .array(let arr) = a[0], isCallable(a[1]) else { return nil }
            for (i, v) in arr.enumerated() where !(try truthy(try each(x, a[1], v, i, pos), pos)) { return .bool(false) }
            return .bool(true)
        }
        e.register("for_each", mutating: true) { x, a, pos throws(Signal) in
            guard a.count == 2, case .fnPtr(let f) = a[1], var arr = a[0].takeArray() else { return nil }
            defer { a[0] = .array(arr) }
            for i in arr.indices {
                var this: Dynamic? = arr[i]
                let wants = f.function.map { $0.params.count - f.curried.count } ?? 1
                // The element is `this`; a parameter, if any, gets the index.
                _ = try x.call(f, wants >= 1 ? [.int(Int64(i))] : [], this: &this, pos: pos)
                arr[i] = this ?? .unit
            }
            return .unit
        }
        for (name, reversed) in [("reduce", false), ("reduce_rev", true)] {
            e.register(name) { x, a, pos throws(Signal) in
                guard a.count == 2 || a.count == 3, case .array(let arr) = a[0], isCallable(a[1]) else { return nil }
                var acc = a.count == 3 ? a[2] : .unit
                let order = reversed ? Array(arr.indices.reversed()) : Array(arr.indices)
                for i in order { acc = try x.callback(a[1], [acc, arr[i], .int(Int64(i))], element: 1, pos: pos) }
                return acc
            }
        }
        e.register("zip") { x, a, pos throws(Signal) in
            guard a.count == 3, case .array(let l) = a[0], case .array(let r) = a[1], isCallable(a[2]) else { return nil }
            var out: [Dynamic] = []
            for i in 0..<min(l.count, r.count) { out.append(try x.callback(a[2], [l[i], r[i], .int(Int64(i))], pos: pos)) }
            return .array(out)
        }
        for (name, descending) in [("sort", false), ("sort_desc", true), ("order", false), ("order_desc", true)] {
            e.register(name, mutating: name.hasPrefix("sort")) { x, a, pos throws(Signal) in
                guard case .array(let arr)? = a.first else { return nil }
                let result: [Dynamic]
                if a.count == 1 {
                    let up = try sorted(arr) { (l: Dynamic, r: Dynamic) throws(Signal) -> Bool in try defaultOrder(l, r, pos) }
                    result = descending ? up.reversed() : up
                } else if a.count == 2, !descending, isCallable(a[1]) {
                    result = try sorted(arr, by: comparator(x, a[1], pos))
                } else {
                    return nil
                }
                if name.hasPrefix("sort") {
                    a[0] = .array(result)
                    return .unit
                }
                return .array(result)
            }
        }
        e.register("sort_by", mutating: true) { x, a, pos throws(Signal) in
            guard a.count == 2, case .array(let arr) = a[0], isCallable(a[1]) else { return nil }
            a[0] = .array(try sorted(arr, by: comparator(x, a[1], pos)))
            return .unit
        }
        e.register("order_by") { x, a, pos throws(Signal) in
            guard a.count == 2, case .array(let arr) = a[0], isCallable(a[1]) else { return nil }
            return .array(try sorted(arr, by: comparator(x, a[1], pos)))
        }
        e.register("dedup", mutating: true) { x, a, pos throws(Signal) in
            guard case .array(let arr)? = a.first, a.count <= 2 else { return nil }
            var out: [Dynamic] = []
            for v in arr {
                if let last = out.last {
                    let same = a.count == 2 ? try truthy(try x.callback(a[1], [last, v], pos: pos), pos) : Operators.equals(last, v)
                    if same { continue }
                }
                out.append(v)
            }
            a[0] = .array(out)
            return .unit
        }
        for (name, keepMatching) in [("drain", false), ("retain", true)] {
            e.register(name, mutating: true) { x, a, pos throws(Signal) in
                guard a.count >= 2 else { return nil }
                switch a[0] {
                case .array(let arr):
                    var kept: [Dynamic] = [], removed: [Dynamic] = []
                    if a.count == 2, isCallable(a[1]) {
                        for (i, v) in arr.enumerated() {
                            let hit = try truthy(try each(x, a[1], v, i, pos), pos)
                            if hit == keepMatching { kept.append(v) } else { removed.append(v) }
                        }
                    } else {
                        guard let (s, t) = slice(a[1...], arr.count) else { return nil }
                        let inside = Array(arr[s..<t]), outside = Array(arr[..<s] + arr[t...])
                        (kept, removed) = keepMatching ? (inside, outside) : (outside, inside)
                    }
                    a[0] = .array(kept)
                    return .array(removed)
                case .blob(let b):
                    guard let (s, t) = slice(a[1...], b.count) else { return nil }
                    let inside = Array(b[s..<t]), outside = Array(b[..<s] + b[t...])
                    a[0] = .blob(keepMatching ? inside : outside)
                    return .blob(keepMatching ? outside : inside)
                case .map(let m):
                    guard a.count == 2, isCallable(a[1]) else { return nil }
                    var kept: [String: Dynamic] = [:], removed: [String: Dynamic] = [:]
                    for k in m.keys.sorted() {
                        let hit = try truthy(try x.callback(a[1], [.string(k), m[k]!], pos: pos), pos)
                        if hit == keepMatching { kept[k] = m[k] } else { removed[k] = m[k] }
                    }
                    a[0] = .map(kept)
                    return .map(removed)
                default: return nil
                }
            }
        }
    }

    static func installMaps(_ e: ScriptEngine) {
        e.register("keys") { _, a, _ in
            guard a.count == 1, case .map(let m) = a[0] else { return nil }
            return .array(m.keys.sorted().map { .string($0) })
        }
        e.register("values") { _, a, _ in
            guard a.count == 1, case .map(let m) = a[0] else { return nil }
            return .array(m.keys.sorted().map { m[$0]! })
        }
        e.register("mixin", mutating: true) { _, a, _ in
            guard a.count == 2, case .map(let more) = a[1], var m = a[0].takeMap() else { return nil }
            m.merge(more) { _, new in new }
            a[0] = .map(m)
            return .unit
        }
        e.register("fill_with", mutating: true) { _, a, _ in
            guard a.count == 2, case .map(let more) = a[1], var m = a[0].takeMap() else { return nil }
            m.merge(more) { old, _ in old }
            a[0] = .map(m)
            return .unit
        }
        e.register("filter") { x, a, pos throws(Signal) in
            guard a.count == 2, case .map(let m) = a[0], isCallable(a[1]) else { return nil }
            var out: [String: Dynamic] = [:]
            for k in m.keys.sorted() where try truthy(try x.callback(a[1], [.string(k), m[k]!], pos: pos), pos) { out[k] = m[k] }
            return .map(out)
        }
        e.register("map") { x, a, pos throws(Signal) in
            guard a.count == 2, case .map(let m) = a[0], isCallable(a[1]) else { return nil }
            var out: [String: Dynamic] = [:]
            for k in m.keys.sorted() { out[k] = try x.callback(a[1], [.string(k), m[k]!], pos: pos) }
            return .map(out)
        }
    }
}
