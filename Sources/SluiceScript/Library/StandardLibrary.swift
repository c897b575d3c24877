import Foundation

/// The functions every script sees, grouped by the type they work on.
enum StandardLibrary {
    static func install(into e: ScriptEngine) {
        installCore(e)
        installStrings(e)
        installArrays(e)
        installMaps(e)
        installNumbers(e)
        installBlobs(e)
        e.getters = ["len", "is_empty", "is_zero", "is_odd", "is_even", "floor", "ceiling", "round", "int", "fraction",
                     "is_nan", "is_finite", "is_infinite", "chars", "bytes", "start", "end", "elapsed", "is_inclusive",
                     "is_exclusive", "tag"]
    }

    // MARK: - Argument helpers

    static func int(_ v: Dynamic) -> Int64? {
        if case .int(let i) = v { return i }
        return nil
    }

    static func number(_ v: Dynamic) -> Double? {
        switch v {
        case .int(let i): return Double(i)
        case .float(let f): return f
        default: return nil
        }
    }

    static func string(_ v: Dynamic) -> String? {
        switch v {
        case .string(let s): return s
        case .char(let c): return String(Character(c))
        default: return nil
        }
    }

    static func isCallable(_ v: Dynamic) -> Bool {
        switch v {
        case .fnPtr, .string: return true
        default: return false
        }
    }

    static func bool(_ v: Dynamic, _ pos: ScriptPosition) throws(Signal) -> Bool {
        guard case .bool(let b) = v else { throw .mismatch(v.typeName, expecting: "bool", pos) }
        return b
    }

    static func arithmetic(_ message: String, _ pos: ScriptPosition) -> Signal {
        .runtime("ErrorArithmetic", message, pos)
    }

    // MARK: - Core

    private static func installCore(_ e: ScriptEngine) {
        e.register("print") { x, a, _ in
            guard a.count == 1 else { return nil }
            if let p = x.printer { p(a[0].displayText) } else { x.engine.onPrint(a[0].displayText) }
            return .unit
        }
        e.register("debug") { x, a, _ in
            guard a.count == 1 else { return nil }
            if let p = x.printer { p(a[0].debugText) } else { x.engine.onDebug(a[0].debugText) }
            return .unit
        }
        e.register("type_of") { _, a, _ in a.count == 1 ? .string(a[0].typeName) : nil }
        e.register("to_string") { _, a, _ in a.count == 1 ? .string(a[0].displayText) : nil }
        e.register("to_debug") { _, a, _ in a.count == 1 ? .string(a[0].debugText) : nil }
        e.register("Fn") { x, a, pos throws(Signal) in
            guard a.count == 1, case .string(let name) = a[0] else { return nil }
            guard let first = name.unicodeScalars.first, first == "_" || first.properties.isAlphabetic,
                  name.unicodeScalars.allSatisfy({ $0 == "_" || $0.properties.isAlphabetic || ("0"..."9").contains($0) }) else {
                throw .runtime("ErrorFunctionNotFound", "Function not found: \(name) (not a valid function name)", pos)
            }
            return .fnPtr(FnPtr(name: name))
        }
        e.register("call", mutating: true) { x, a, pos throws(Signal) in
            guard let first = a.first else { return nil }
            if case .fnPtr(let f) = first {
                var this: Dynamic? = nil
                return try x.call(f, Array(a.dropFirst()), this: &this, pos: pos)
            }
            // `value.call(f, args)`: runs f with `this` bound to value.
            guard a.count >= 2, case .fnPtr(let f) = a[1] else { return nil }
            var this: Dynamic? = first
            a[0] = .unit
            defer { a[0] = this ?? .unit }
            return try x.call(f, Array(a.dropFirst(2)), this: &this, pos: pos)
        }
        e.register("curry") { _, a, _ in
            guard let first = a.first, case .fnPtr(let f) = first else { return nil }
            return .fnPtr(f.adding(curried: Array(a.dropFirst())))
        }
        e.register("is_def_fn") { x, a, _ in
            guard a.count == 2, case .string(let name) = a[0], let n = int(a[1]) else { return nil }
            return .bool(x.program.function(name, arity: Int(n)) != nil)
        }
        e.register("is_def_var") { _, a, _ in a.count == 1 ? .bool(false) : nil }
        e.register("timestamp") { _, a, _ in a.isEmpty ? .timestamp(monotonicNow()) : nil }
        e.register("elapsed") { _, a, _ in
            guard a.count == 1, case .timestamp(let t) = a[0] else { return nil }
            return .float(monotonicNow() - t)
        }
        e.register("parse_json") { _, a, pos throws(Signal) in
            guard a.count == 1, case .string(let s) = a[0] else { return nil }
            return try JSONBridge.parse(s, pos)
        }
        e.register("to_json") { _, a, _ in
            guard a.count == 1 else { return nil }
            return .string(JSONBridge.render(a[0]))
        }
        e.register("range") { _, a, pos throws(Signal) in
            guard a.count == 2 || a.count == 3 else { return nil }
            if let from = int(a[0]), let to = int(a[1]) {
                let step = a.count == 3 ? int(a[2]) : 1
                guard let step else { return nil }
                if step == 0 { throw .runtime("ErrorArithmetic", "Step value cannot be zero", pos) }
                if a.count == 2 { return .range(from, to, inclusive: false) }
                return .sequence(ScriptSequence(typeName: "StepRange<i64>") {
                    var i = from
                    return {
                        guard step > 0 ? i < to : i > to else { return nil }
                        defer { i = i.addingReportingOverflow(step).overflow ? (step > 0 ? to : to) : i + step }
                        return .int(i)
                    }
                })
            }
            guard let from = number(a[0]), let to = number(a[1]) else { return nil }
            let step = a.count == 3 ? number(a[2]) : 1.0
            guard let step else { return nil }
            if step == 0 || step.isNaN { throw .runtime("ErrorArithmetic", "Step value cannot be zero", pos) }
            return .sequence(ScriptSequence(typeName: "StepRange<f64>") {
                var i = from
                return {
                    guard step > 0 ? i < to : i > to else { return nil }
                    defer { i += step }
                    return .float(i)
                }
            })
        }
        // Ranges.
        e.register("start") { _, a, _ in
            guard a.count == 1, case .range(let s, _, _) = a[0] else { return nil }
            return .int(s)
        }
        e.register("end") { _, a, _ in
            guard a.count == 1, case .range(_, let end, _) = a[0] else { return nil }
            return .int(end)
        }
        e.register("is_inclusive") { _, a, _ in
            guard a.count == 1, case .range(_, _, let i) = a[0] else { return nil }
            return .bool(i)
        }
        e.register("is_exclusive") { _, a, _ in
            guard a.count == 1, case .range(_, _, let i) = a[0] else { return nil }
            return .bool(!i)
        }
        e.register("sleep") { _, a, _ in
            guard a.count == 1, let s = number(a[0]) else { return nil }
            if s > 0 { Thread.sleep(forTimeInterval: min(s, 10)) }
            return .unit
        }
    }

    static func monotonicNow() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    // MARK: - Shared by strings, arrays and maps

    static func len(_ v: Dynamic) -> Dynamic? {
        switch v {
        case .string(let s): return .int(Int64(s.unicodeScalars.count))
        case .array(let a): return .int(Int64(a.count))
        case .map(let m): return .int(Int64(m.count))
        case .blob(let b): return .int(Int64(b.count))
        case .range(let s, let e, let inclusive): return .int(max(0, inclusive ? e - s + 1 : e - s))
        default: return nil
        }
    }
}
