import Foundation

enum BinaryOperator: String {
    case add = "+", subtract = "-", multiply = "*", divide = "/", modulo = "%", power = "**"
    case shiftLeft = "<<", shiftRight = ">>", bitAnd = "&", bitOr = "|", xor = "^"
    case equal = "==", notEqual = "!=", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
}

/// Rhai's built-in operators on values.
enum Operators {
    static func apply(_ op: BinaryOperator, _ l: Dynamic, _ r: Dynamic, _ pos: ScriptPosition) throws(Signal) -> Dynamic {
        switch (l, r) {
        case (.int(let a), .int(let b)): return try integer(op, a, b, pos)
        case (.float(let a), .float(let b)): return try float(op, a, b, l, r, pos)
        case (.int(let a), .float(let b)): return try float(op, Double(a), b, l, r, pos)
        case (.float(let a), .int(let b)):
            if op == .power { return .float(Foundation.pow(a, Double(b))) }
            return try float(op, a, Double(b), l, r, pos)
        default: break
        }
        switch op {
        case .equal: return .bool(equals(l, r))
        case .notEqual: return .bool(!equals(l, r))
        case .less, .lessOrEqual, .greater, .greaterOrEqual:
            guard let order = compare(l, r) else {
                if sameKind(l, r), !isOrdered(l) { throw notFound(op, l, r, pos) }
                return .bool(false)
            }
            return .bool(holds(op, order))
        default: break
        }
        switch (op, l, r) {
        case (.add, .string(let a), .string(let b)): return .string(a + b)
        case (.add, .string(let a), .unit): return .string(a)
        case (.add, .unit, .string(let b)): return .string(b)
        case (.add, .string(let a), _): return .string(a + r.displayText)
        case (.add, _, .string(let b)): return .string(l.displayText + b)
        case (.add, .char(let a), .char(let b)):
            var s = String(Character(a))
            s.unicodeScalars.append(b)
            return .string(s)
        case (.subtract, .string(let a), .string(let b)): return .string(b.isEmpty ? a : a.replacingOccurrences(of: b, with: ""))
        case (.subtract, .string(let a), .char(let c)): return .string(String(String.UnicodeScalarView(a.unicodeScalars.filter { $0 != c })))
        case (.add, .array(let a), .array(let b)): return .array(a + b)
        case (.add, .map(let a), .map(let b)): return .map(a.merging(b) { _, new in new })
        case (.add, .blob(let a), .blob(let b)): return .blob(a + b)
        case (.add, .blob(let a), .char(let c)): return .blob(a + Array(String(Character(c)).utf8))
        case (.add, .timestamp(let t), .int(let s)): return .timestamp(t + Double(s))
        case (.add, .timestamp(let t), .float(let s)): return .timestamp(t + s)
        case (.subtract, .timestamp(let t), .int(let s)): return .timestamp(t - Double(s))
        case (.subtract, .timestamp(let t), .float(let s)): return .timestamp(t - s)
        case (.subtract, .timestamp(let a), .timestamp(let b)): return .float(a - b)
        case (.bitAnd, .bool(let a), .bool(let b)): return .bool(a && b)
        case (.bitOr, .bool(let a), .bool(let b)): return .bool(a || b)
        case (.xor, .bool(let a), .bool(let b)): return .bool(a != b)
        default: throw notFound(op, l, r, pos)
        }
    }

    /// `lhs op= rhs`: like `lhs = lhs op rhs`, except that `+=` appends to strings, arrays and
    /// blobs in place and mixes maps in.
    static func compound(_ op: BinaryOperator, _ lhs: inout Dynamic, _ rhs: Dynamic, _ pos: ScriptPosition) throws(Signal) {
        if op == .add {
            if var a = lhs.takeArray() {
                if case .array(let more) = rhs { a += more } else { a.append(rhs) }
                lhs = .array(a)
                return
            }
            if var s = lhs.takeString() {
                s += rhs.displayText
                lhs = .string(s)
                return
            }
            if case .map(let more) = rhs, var m = lhs.takeMap() {
                m.merge(more) { _, new in new }
                lhs = .map(m)
                return
            }
            if case .blob = lhs {
                guard let more = rhs.bytesForBlob else { throw notFound(op, lhs, rhs, pos) }
                var b = lhs.takeBlob()!
                b += more
                lhs = .blob(b)
                return
            }
        }
        lhs = try apply(op, lhs, rhs, pos)
    }

    static func notFound(_ op: BinaryOperator, _ l: Dynamic, _ r: Dynamic, _ pos: ScriptPosition) -> Signal {
        .runtime("ErrorFunctionNotFound", "Function not found: \(op.rawValue) (\(l.signatureName), \(r.signatureName))", pos)
    }

    // MARK: - Integers

    @inline(__always)
    static func integer(_ op: BinaryOperator, _ a: Int64, _ b: Int64, _ pos: ScriptPosition) throws(Signal) -> Dynamic {
        switch op {
        case .add:
            let (v, o) = a.addingReportingOverflow(b)
            if o { throw .runtime("ErrorArithmetic", "Addition overflow: \(a) + \(b)", pos) }
            return .int(v)
        case .subtract:
            let (v, o) = a.subtractingReportingOverflow(b)
            if o { throw .runtime("ErrorArithmetic", "Subtraction overflow: \(a) - \(b)", pos) }
            return .int(v)
        case .multiply:
            let (v, o) = a.multipliedReportingOverflow(by: b)
            if o { throw .runtime("ErrorArithmetic", "Multiplication overflow: \(a) * \(b)", pos) }
            return .int(v)
        case .divide:
            if b == 0 { throw .runtime("ErrorArithmetic", "Division by zero: \(a) / \(b)", pos) }
            if a == .min && b == -1 { throw .runtime("ErrorArithmetic", "Division overflow: \(a) / \(b)", pos) }
            return .int(a / b)
        case .modulo:
            if b == 0 || (a == .min && b == -1) {
                throw .runtime("ErrorArithmetic", "Modulo division by zero or overflow: \(a) % \(b)", pos)
            }
            return .int(a % b)
        case .power:
            if b < 0 { throw .runtime("ErrorArithmetic", "Integer raised to a negative power: \(a) ** \(b)", pos) }
            guard let v = power(a, b) else { throw .runtime("ErrorArithmetic", "Exponential overflow: \(a) ** \(b)", pos) }
            return .int(v)
        case .shiftLeft: return .int(shift(a, by: b))
        case .shiftRight: return .int(shift(a, by: b == .min ? .max : -b))
        case .bitAnd: return .int(a & b)
        case .bitOr: return .int(a | b)
        case .xor: return .int(a ^ b)
        case .equal: return .bool(a == b)
        case .notEqual: return .bool(a != b)
        case .less: return .bool(a < b)
        case .lessOrEqual: return .bool(a <= b)
        case .greater: return .bool(a > b)
        case .greaterOrEqual: return .bool(a >= b)
        }
    }

    static func power(_ base: Int64, _ exponent: Int64) -> Int64? {
        var result: Int64 = 1, b = base, e = exponent
        while e > 0 {
            if e & 1 == 1 {
                let (v, o) = result.multipliedReportingOverflow(by: b)
                if o { return nil }
                result = v
            }
            e >>= 1
            if e > 0 {
                let (v, o) = b.multipliedReportingOverflow(by: b)
                if o { return nil }
                b = v
            }
        }
        return result
    }

    /// Left for a positive count, right (arithmetic) for a negative one.
    static func shift(_ a: Int64, by count: Int64) -> Int64 {
        if count >= 0 { return count >= 64 ? 0 : a << count }
        let right = count == .min ? Int64.max : -count
        return right >= 64 ? (a < 0 ? -1 : 0) : a >> right
    }

    // MARK: - Floats

    static func float(_ op: BinaryOperator, _ a: Double, _ b: Double, _ l: Dynamic, _ r: Dynamic,
                      _ pos: ScriptPosition) throws(Signal) -> Dynamic {
        switch op {
        case .add: return .float(a + b)
        case .subtract: return .float(a - b)
        case .multiply: return .float(a * b)
        case .divide: return .float(a / b)
        case .modulo: return .float(a.truncatingRemainder(dividingBy: b))
        case .power: return .float(Foundation.pow(a, b))
        case .equal: return .bool(floatEqual(a, b))
        case .notEqual: return .bool(!floatEqual(a, b))
        case .less, .lessOrEqual, .greater, .greaterOrEqual:
            return .bool(holds(op, floatCompare(a, b)))
        default: throw notFound(op, l, r, pos)
        }
    }

    /// Equality with a relative epsilon, as Rhai compares floats.
    static func floatEqual(_ x: Double, _ y: Double) -> Bool {
        if x == y { return true }
        if x.isNaN || y.isNaN || x.isInfinite || y.isInfinite { return false }
        let m = x * y == 0 ? 1.0 : max(abs(x), abs(y))
        return abs(x - y) / m <= Double.ulpOfOne
    }

    static func floatCompare(_ x: Double, _ y: Double) -> Int? {
        if x.isNaN || y.isNaN { return nil }
        if floatEqual(x, y) { return 0 }
        return x < y ? -1 : 1
    }

    @inline(__always) static func holds(_ op: BinaryOperator, _ order: Int?) -> Bool {
        guard let order else { return false }
        switch op {
        case .less: return order < 0
        case .lessOrEqual: return order <= 0
        case .greater: return order > 0
        case .greaterOrEqual: return order >= 0
        case .equal: return order == 0
        default: return order != 0
        }
    }

    // MARK: - Equality and order

    /// `==` on any two values; values of different kinds are unequal.
    static func equals(_ l: Dynamic, _ r: Dynamic) -> Bool {
        switch (l, r) {
        case (.unit, .unit): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.int(let a), .int(let b)): return a == b
        case (.float(let a), .float(let b)): return floatEqual(a, b)
        case (.int(let a), .float(let b)): return floatEqual(Double(a), b)
        case (.float(let a), .int(let b)): return floatEqual(a, Double(b))
        case (.char(let a), .char(let b)): return a == b
        case (.string(let a), .string(let b)): return a == b
        case (.char(let a), .string(let b)), (.string(let b), .char(let a)):
            var it = b.unicodeScalars.makeIterator()
            return it.next() == a && it.next() == nil
        case (.array(let a), .array(let b)): return a.count == b.count && zip(a, b).allSatisfy { equals($0, $1) }
        case (.map(let a), .map(let b)):
            return a.count == b.count && a.allSatisfy { k, v in b[k].map { equals(v, $0) } ?? false }
        case (.blob(let a), .blob(let b)): return a == b
        case (.range(let a1, let b1, let i1), .range(let a2, let b2, let i2)): return a1 == a2 && b1 == b2 && i1 == i2
        case (.timestamp(let a), .timestamp(let b)): return a == b
        case (.fnPtr(let a), .fnPtr(let b)): return a === b || (a.function == nil && b.function == nil && a.name == b.name)
        case (.shared(let a), _): return equals(a.value, r)
        case (_, .shared(let b)): return equals(l, b.value)
        default: return false
        }
    }

    /// Strict equality for `switch` cases: the same type and value.
    static func matches(_ l: Dynamic, _ r: Dynamic) -> Bool {
        switch (l, r) {
        case (.int, .float), (.float, .int), (.char, .string), (.string, .char): return false
        case (.float(let a), .float(let b)): return a == b
        default: return equals(l, r)
        }
    }

    /// The order of two values of one kind (-1, 0, 1), or nil when they have none.
    static func compare(_ l: Dynamic, _ r: Dynamic) -> Int? {
        switch (l, r) {
        case (.int(let a), .int(let b)): return a < b ? -1 : (a == b ? 0 : 1)
        case (.float(let a), .float(let b)): return floatCompare(a, b)
        case (.int(let a), .float(let b)): return floatCompare(Double(a), b)
        case (.float(let a), .int(let b)): return floatCompare(a, Double(b))
        case (.string(let a), .string(let b)): return order(a.unicodeScalars, b.unicodeScalars)
        case (.char(let a), .char(let b)): return a == b ? 0 : (a < b ? -1 : 1)
        case (.char(let a), .string(let b)): return order(String(Character(a)).unicodeScalars, b.unicodeScalars)
        case (.string(let a), .char(let b)): return order(a.unicodeScalars, String(Character(b)).unicodeScalars)
        case (.bool(let a), .bool(let b)): return a == b ? 0 : (a ? 1 : -1)
        case (.timestamp(let a), .timestamp(let b)): return a < b ? -1 : (a == b ? 0 : 1)
        default: return nil
        }
    }

    private static func order(_ a: String.UnicodeScalarView, _ b: String.UnicodeScalarView) -> Int {
        if a.elementsEqual(b) { return 0 }
        return a.lexicographicallyPrecedes(b) ? -1 : 1
    }

    private static func sameKind(_ l: Dynamic, _ r: Dynamic) -> Bool { l.typeName == r.typeName }

    /// Kinds for which `<` on two values of the kind is defined (possibly false).
    private static func isOrdered(_ v: Dynamic) -> Bool {
        switch v {
        case .unit: return true
        default: return false
        }
    }

    /// `item in container`.
    static func contains(_ container: Dynamic, _ item: Dynamic, _ pos: ScriptPosition) throws(Signal) -> Bool {
        switch (container, item) {
        case (.array(let a), _): return a.contains { equals($0, item) }
        case (.string(let s), .string(let sub)): return sub.isEmpty || s.contains(sub)
        case (.string(let s), .char(let c)): return s.unicodeScalars.contains(c)
        case (.map(let m), .string(let k)): return m[k] != nil
        case (.map(let m), .char(let c)): return m[String(Character(c))] != nil
        case (.range(let a, let b, let inclusive), .int(let i)): return i >= a && (inclusive ? i <= b : i < b)
        case (.blob(let b), .int(let i)): return b.contains { Int64($0) == i }
        default:
            throw .runtime("ErrorFunctionNotFound",
                           "Function not found: contains (\(container.signatureName), \(item.signatureName))", pos)
        }
    }
}
