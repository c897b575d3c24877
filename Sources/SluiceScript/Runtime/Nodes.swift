/// A compiled piece of script. The tree is built once by the parser, with variables already
/// turned into frame slots and calls linked to their functions; evaluating it never looks a
/// name up in a dictionary except for `Fn("name")`-style dynamic calls.
class Node {
    let pos: ScriptPosition

    init(_ pos: ScriptPosition) { self.pos = pos }

    func eval(_ x: Interpreter) throws(Signal) -> Dynamic { .unit }

    /// The node as an `if`/`while` condition: a bool, or a type error at the node. Comparisons
    /// override it to answer without building a value.
    func condition(_ x: Interpreter) throws(Signal) -> Bool {
        let c = try eval(x)
        guard case .bool(let b) = c else { throw .mismatch(c.typeName, expecting: "bool", pos) }
        return b
    }

    /// Whether the node can be assigned to (a variable, property, index or `this`).
    var isLValue: Bool { false }

    /// Whether the chain starts at a constant, so a mutating method must not run on it.
    var rootIsConstant: Bool { false }

    /// The variable a property or index chain starts from (itself otherwise).
    var root: Node { self }

    /// Runs `body` on the storage this node names, in place.
    func modify(_ x: Interpreter, _ body: (inout Dynamic) throws(Signal) -> Dynamic) throws(Signal) -> Dynamic {
        throw .runtime("ErrorAssignmentToInvalidLHS", "Cannot assign to this expression", pos)
    }
}

// MARK: - Calling children without retaining them

// Calling a node held in an array (or in a `var`) costs a retain and a release per call; in a
// tight loop that is half the time. The tree outlives every evaluation (a CompiledScript owns
// it), so the hot paths keep unmanaged references next to the owning arrays and borrow them.
extension Unmanaged {
    @inline(__always) func with<R>(_ body: (Instance) throws(Signal) -> R) throws(Signal) -> R {
        try _withUnsafeGuaranteedRef { i in Result { () throws(Signal) -> R in try body(i) } }.get()
    }
}

/// Child nodes evaluated in order without a retain per call (nor one for the list: the
/// references live in memory of their own, not in an array buffer).
final class NodeList {
    /// Owns the nodes.
    let nodes: [Node]
    let refs: UnsafeMutableBufferPointer<Unmanaged<Node>>

    init(_ nodes: [Node]) {
        self.nodes = nodes
        refs = .allocate(capacity: nodes.count)
        _ = refs.initialize(from: nodes.map { Unmanaged.passUnretained($0) })
    }

    deinit { refs.deallocate() }

    var count: Int { refs.count }

    @inline(__always) func eval(_ i: Int, _ x: Interpreter) throws(Signal) -> Dynamic {
        try refs[i].with { (n: Node) throws(Signal) -> Dynamic in try n.eval(x) }
    }
}

// MARK: - Values and variables

final class LiteralNode: Node {
    let value: Dynamic
    init(_ value: Dynamic, _ pos: ScriptPosition) {
        self.value = value
        super.init(pos)
    }
    override func eval(_ x: Interpreter) throws(Signal) -> Dynamic { value }
}

final class InterpolatedNode: Node {
    let parts: [Node]
    init(_ parts: [Node], _ pos: ScriptPosition) {
        self.parts = parts
        super.init(pos)
    }
    override func eval(_ x: Interpreter) throws(Signal) -> Dynamic {
        var s = ""
        for p in parts { s += try p.eval(x).displayText }
        let v = Dynamic.string(s)
        try x.checkSize(v, pos)
        return v
    }
}

final class ArrayNode: Node {
    let items: [Node]
    init(_ items: [Node], _ pos: ScriptPosition) {
        self.items = items
        super.init(pos)
    }
    override func eval(_ x: Interpreter) throws(Signal) -> Dynamic {
        var a: [Dynamic] = []
        a.reserveCapacity(items.count)
        for i in items {
            try x.tick(i.pos)
            a.append(try i.eval(x))
        }
        let v = Dynamic.array(a)
        try x.checkSize(v, pos)
        return v
    }
}

final class MapNode: Node {
    let entries: [(String, Node)]
    init(_ entries: [(String, Node)], _ pos: ScriptPosition) {
        self.entries = entries
        super.init(pos)
    }
    override func eval(_ x: Interpreter) throws(Signal) -> Dynamic {
        var m: [String: Dynamic] = [:]
        m.reserveCapacity(entries.count)
        for (k, n) in entries {
            try x.tick(n.pos)
            m[k] = try n.eval(x)
        }
        let v = Dynamic.map(m)
        try x.checkSize(v, pos)
        return v
    }
}

final class VariableNode: Node {
    let name: String
    let slot: Int
    let constant: Bool
    init(_ name: String, slot: Int, constant: Bool, _ pos: ScriptPosition) {
        self.name = name
        self.slot = slot
        self.constant = constant
        super.init(pos)
    }
    override func eval(_ x: Interpreter) throws(Signal) -> Dynamic { x.read(slot) }
    override var isLValue: Bool { true }
    override var rootIsConstant: Bool { constant }

    override func modify(_ x: Interpreter, _ body: (inout Dynamic) throws(Signal) -> Dynamic) throws(Signal) -> Dynamic {
        if constant {
            throw .runtime("ErrorAssignmentToConstant", "Cannot modify constant \(name)", pos)
        }
        return try x.modify(at: x.base + slot, body)
    }
}

/// A variable read after an `eval`, which may have defined a newer variable of that name.
final class EvalVariableNode: Node {
    let name: String
    let slot: Int
    let constant: Bool
    init(_ name: String, slot: Int, constant: Bool, _ pos: ScriptPosition) {
        self.name = name
        self.slot = slot
        self.constant = constant
        super.init(pos)
    }
    override func eval(_ x: Interpreter) throws(Signal) -> Dynamic {
        x.dynamicVariables[name] ?? x.read(slot)
    }
}

/// A block holding an `eval`: variables the eval defined end with the block.
final class ScopedEvalBlockNode: Node {
    let block: BlockNode
    init(_ statements: [Node], _ pos: ScriptPosition) {
        block = BlockNode(statements, pos)
        super.init(pos)
    }
    override func eval(_ x: Interpreter) throws(Signal) -> Dynamic {
        let saved = x.dynamicVariables, savedConstants = x.evalConstants
        defer {
            x.dynamicVariables = saved
            x.evalConstants = savedConstants
        }
        return try block.eval(x)
    }
}

/// A name that is not a variable in scope: a script function used as a value, or an error.
final class UnresolvedNameNode: Node {
    let name: String
    init(_ name: String, _ pos: ScriptPosition) {
        self.name = name
        super.init(pos)
    }
    override func eval(_ x: Interpreter) throws(Signal) -> Dynamic {
        if let v = x.dynamicVariables[name] { return v }
        if let i = x.callerVariable(name) { return x.stack[i].flattened }
        if x.program.hasFunction(name) { return .fnPtr(FnPtr(name: name)) }
        throw .runtime("ErrorVariableNotFound", "Variable not found: \(name)", pos)
    }
    override var isLValue: Bool { true }
    override func modify(_ x: Interpreter, _ body: (inout Dynamic) throws(Signal) -> Dynamic) throws(Signal) -> Dynamic {
        guard let i = x.callerVariable(name) else {
            throw .runtime("ErrorVariableNotFound", "Variable not found: \(name)", pos)
        }
        return try x.modify(at: i, body)
    }
}

/// `module::path`: parsed, but Sluice scripts have no modules, so it fails when it runs.
final class ModulePathNode: Node {
    let path: String
    init(_ path: String, _ pos: ScriptPosition) {
        self.path = path
        super.init(pos)
    }
    override func eval(_ x: Interpreter) throws(Signal) -> Dynamic {
        throw .runtime("ErrorModuleNotFound", "Module not found: \(path) (modules are not available in Sluice scripts)", pos)
    }
}

/// `global::NAME`: a constant from the top level, readable inside functions.
final class GlobalConstantNode: Node {
    let name: String
    init(_ name: String, _ pos: ScriptPosition) {
        self.name = name
        super.init(pos)
    }
    override func eval(_ x: Interpreter) throws(Signal) -> Dynamic {
        if let v = x.evalConstants[name] { return v }
        guard let slot = x.program.globalConstants[name], slot < x.top else {
            throw .runtime("ErrorVariableNotFound", "Variable not found: global::\(name)", pos)
        }
        return x.stack[slot].flattened
    }
}

final class ThisNode: Node {
    override func eval(_ x: Interpreter) throws(Signal) -> Dynamic {
        guard let v = x.thisValue else { throw .runtime("ErrorUnboundThis", "'this' is not bound", pos) }
        return v
    }
    override var isLValue: Bool { true }
    override func modify(_ x: Interpreter, _ body: (inout Dynamic) throws(Signal) -> Dynamic) throws(Signal) -> Dynamic {
        guard var v = x.thisValue else { throw .runtime("ErrorUnboundThis", "'this' is not bound", pos) }
        x.thisValue = .unit
        defer { x.thisValue = v }
        return try body(&v)
    }
}

final class IsSharedNode: Node {
    let slot: Int?
    init(slot: Int?, _ pos: ScriptPosition) {
        self.slot = slot
        super.init(pos)
    }
    override func eval(_ x: Interpreter) throws(Signal) -> Dynamic {
        guard let slot else { return .bool(false) }
        if case .shared = x.stack[x.base + slot] { return .bool(true) }
        return .bool(false)
    }
}

// MARK: - Operators

final class BinaryNode: Node {
    let op: BinaryOperator
    let left: Node
    let right: Node
    /// The frame slot when an operand is a plain variable, read without a call; -1 otherwise.
    let leftSlot: Int
    let rightSlot: Int
    init(_ op: BinaryOperator, _ left: Node, _ right: Node, _ pos: ScriptPosition) {
        self.op = op
        self.left = left
        self.right = right
        leftSlot = (left as? VariableNode)?.slot ?? -1
        rightSlot = (right as? VariableNode)?.slot ?? -1
        super.init(pos)
    }
    @inline(__always) private func operands(_ x: Interpreter) throws(Signal) -> (Dynamic, Dynamic) {
        let l = leftSlot >= 0 ? x.read(leftSlot) : try left.eval(x)
        let r = rightSlot >= 0 ? x.read(rightSlot) : try right.eval(x)
        return (l, r)
    }
    override func eval(_ x: Interpreter) throws(Signal) -> Dynamic {
        let (l, r) = try operands(x)
        if case .int(let a) = l, case .int(let b) = r { return try Operators.integer(op, a, b, pos) }
        let v = try Operators.apply(op, l, r, pos)
        if op == .add { try x.checkSize(v, pos) }
        return v
    }
    override func condition(_ x: Interpreter) throws(Signal) -> Bool {
        let (l, r) = try operands(x)
        if case .int(let a) = l, case .int(let b) = r {
            switch op {
            case .less: return a < b
            case .lessOrEqual: return a <= b
            case .greater: return a > b
            case .greaterOrEqual: return a >= b
            case .equal: return a == b
            case .notEqual: return a != b
            default: break
            }
        }
        let v = try Operators.apply(op, l, r, pos)
        guard case .bool(let b) = v else { throw .mismatch(v.typeName, expecting: "bool", pos) }
        return b
    }
}

final class LogicNode: Node {
    enum Kind { case and, or, coalesce }
    let kind: Kind
    let left: Node
    let right: Node
    init(_ kind: Kind, _ left: Node, _ right: Node, _ pos: ScriptPosition) {
        self.kind = kind
        self.left = left
        self.right = right
        super.init(pos)
    }
    override func eval(_ x: Interpreter) throws(Signal) -> Dynamic {
        let l = try left.eval(x)
        if kind == .coalesce {
            if case .unit = l { return try right.eval(x) }
            return l
        }
        guard case .bool(let a) = l else { throw .mismatch(l.typeName, expecting: "bool", left.pos) }
        if kind == .and ? !a : a { return l }
        let r = try right.eval(x)
        guard case .bool = r else { throw .mismatch(r.typeName, expecting: "bool", right.pos) }
        return r
    }
}

final class InNode: Node {
    let item: Node
    let container: Node
    let negated: Bool
    /// Linked after parsing: a script's own `fn contains(container, item)`, which `in` uses.
    var scriptContains: ScriptFunction?
    init(_ item: Node, _ container: Node, negated: Bool, _ pos: ScriptPosition) {
        self.item = item
        self.container = container
        self.negated = negated
        super.init(pos)
    }
    override func eval(_ x: Interpreter) throws(Signal) -> Dynamic {
        let i = try item.eval(x)
        let c = try container.eval(x)
        if let f = scriptContains {
            x.push(c)
            x.push(i)
            var this: Dynamic? = nil
            let r = try x.callScript(f, argc: 2, this: &this, pos: pos)
            guard case .bool(let b) = r else { throw .mismatch(r.typeName, expecting: "bool", pos) }
            return .bool(b != negated)
        }
        return .bool(try Operators.contains(c, i, pos) != negated)
    }
}

final class RangeNode: Node {
    let from: Node
    let to: Node
    let inclusive: Bool
    init(_ from: Node, _ to: Node, inclusive: Bool, _ pos: ScriptPosition) {
        self.from = from
        self.to = to
        self.inclusive = inclusive
        super.init(pos)
    }
    override func eval(_ x: Interpreter) throws(Signal) -> Dynamic {
        let a = try from.eval(x), b = try to.eval(x)
        guard case .int(let i) = a, case .int(let j) = b else {
            throw .runtime("ErrorFunctionNotFound",
                           "Function not found: \(inclusive ? "..=" : "..") (\(a.signatureName), \(b.signatureName))", pos)
        }
        return .range(i, j, inclusive: inclusive)
    }
}

final class UnaryNode: Node {
    enum Kind { case negate, plus, not }
    let kind: Kind
    let operand: Node
    init(_ kind: Kind, _ operand: Node, _ pos: ScriptPosition) {
        self.kind = kind
        self.operand = operand
        super.init(pos)
    }
    override func eval(_ x: Interpreter) throws(Signal) -> Dynamic {
        let v = try operand.eval(x)
        switch (kind, v) {
        case (.negate, .int(let i)):
            if i == .min { throw .runtime("ErrorArithmetic", "Negation overflow: -\(i)", pos) }
            return .int(-i)
        case (.negate, .float(let f)): return .float(-f)
        case (.plus, .int), (.plus, .float): return v
        case (.not, .bool(let b)): return .bool(!b)
        default:
            let name = kind == .negate ? "-" : (kind == .plus ? "+" : "!")
            throw .runtime("ErrorFunctionNotFound", "Function not found: \(name) (\(v.signatureName))", pos)
        }
    }
}

// MARK: - Property and index access

/// A link of a `.property` / `[index]` chain: assignable when its base is, short-circuiting
/// on `()` after a `?.` or `?[`.
class ChainNode: Node {
    let base: Node
    let elvis: Bool
    init(_ base: Node, elvis: Bool, _ pos: ScriptPosition) {
        self.base = base
        self.elvis = elvis
        super.init(pos)
    }
    override var isLValue: Bool { base.isLValue }
    override var rootIsConstant: Bool { base.rootIsConstant }
    override var root: Node { base.root }
}

final class PropertyNode: ChainNode {
    let name: String
    /// The slot when the base is a plain variable.
    let directSlot: Int?
    init(_ base: Node, _ name: String, elvis: Bool, _ pos: ScriptPosition) {
        self.name = name
        directSlot = (base as? VariableNode)?.slot
        super.init(base, elvis: elvis, pos)
    }

    override func eval(_ x: Interpreter) throws(Signal) -> Dynamic {
        if let slot = directSlot {
            // A map in a plain variable: look the key up in place, without copying the map out.
            let found: Dynamic?? = x.withSlot(slot) { v in
                if case .map(let m) = v { return .some(m[name]) }
                return nil
            }
            if let found { return found ?? .unit }
        }
        let v = try base.eval(x)
        if elvis, case .unit = v { return .unit }
        return try Access.property(v, name, x, pos)
    }

    override func modify(_ x: Interpreter, _ body: (inout Dynamic) throws(Signal) -> Dynamic) throws(Signal) -> Dynamic {
        try base.modify(x) { (parent: inout Dynamic) throws(Signal) -> Dynamic in
            if elvis, case .unit = parent { return .unit }
            guard case .map(var m) = parent else {
                if case .host = parent {
                    var v = try Access.property(parent, name, x, pos)
                    return try body(&v)
                }
                throw .runtime("ErrorDotExpr", "Cannot set property '\(name)' of \(parent.typeName)", pos)
            }
            parent = .unit
            defer { parent = .map(m) }
            return try body(&m[name, default: .unit])
        }
    }
}

final class IndexNode: ChainNode {
    let index: Node
    /// `a[i]` where `a` is a plain variable and `i` has no side effects: the element is read
    /// and written in the frame, without copying the container out first.
    let directSlot: Int?
    init(_ base: Node, _ index: Node, elvis: Bool, _ pos: ScriptPosition) {
        self.index = index
        if let v = base as? VariableNode, !v.constant, index is VariableNode || index is LiteralNode {
            directSlot = v.slot
        } else {
            directSlot = nil
        }
        super.init(base, elvis: elvis, pos)
    }

    override func eval(_ x: Interpreter) throws(Signal) -> Dynamic {
        if let slot = directSlot, case .int(let k) = try index.eval(x) {
            let element: Dynamic? = x.withSlot(slot) { v in
                if case .array(let a) = v, let j = Access.normalize(k, a.count) { return a[j] }
                return nil
            }
            if let element { return element }
        }
        let v = try base.eval(x)
        if elvis, case .unit = v { return .unit }
        let i = try index.eval(x)
        return try Access.index(v, i, pos)
    }

    override func modify(_ x: Interpreter, _ body: (inout Dynamic) throws(Signal) -> Dynamic) throws(Signal) -> Dynamic {
        let i = try index.eval(x)
        if let slot = directSlot, case .int(let k) = i, var a = x.stack[x.base + slot].takeArray() {
            // Straight into the frame's array: no closure through the variable node.
            defer { x.stack[x.base + slot] = .array(a) }
            guard let j = Access.normalize(k, a.count) else { throw Access.arrayBounds(k, a.count, pos) }
            return try body(&a[j])
        }
        return try base.modify(x) { (parent: inout Dynamic) throws(Signal) -> Dynamic in
            if elvis, case .unit = parent { return .unit }
            return try Access.modifyIndex(&parent, i, pos, body)
        }
    }
}

// MARK: - Calls

/// `name(args)`: a script function, a native function, or a variable holding a function pointer.
final class CallNode: Node {
    let name: String
    let args: [Node]
    let argList: NodeList
    /// Linked after parsing: the script function of this arity (the script's function table owns it).
    var script: Unmanaged<ScriptFunction>?
    let native: NativeFunction?
    /// A variable of the same name, which may hold a function pointer.
    let variableSlot: Int?
    /// Code compiled by `eval` calls the functions of the script it runs in, found when it runs.
    let lateBound: Bool

    init(_ name: String, _ args: [Node], native: NativeFunction?, variableSlot: Int?, lateBound: Bool, _ pos: ScriptPosition) {
        self.name = name
        self.args = args
        argList = NodeList(args)
        self.native = native
        self.variableSlot = variableSlot
        self.lateBound = lateBound
        super.init(pos)
    }

    override func eval(_ x: Interpreter) throws(Signal) -> Dynamic {
        if let script {
            let mark = x.top
            let n = argList.count
            do {
                for i in 0..<n { x.push(try argList.eval(i, x)) }
            } catch {
                x.pop(to: mark)
                throw error
            }
            return try script.with { (f: ScriptFunction) throws(Signal) -> Dynamic in
                var this: Dynamic? = nil
                return try x.callScript(f, argc: n, this: &this, pos: pos)
            }
        }
        if lateBound, let f = x.program.function(name, arity: args.count) {
            let mark = x.top
            do {
                for a in args { x.push(try a.eval(x)) }
            } catch {
                x.pop(to: mark)
                throw error
            }
            var this: Dynamic? = nil
            return try x.callScript(f, argc: args.count, this: &this, pos: pos)
        }
        var values: [Dynamic] = []
        values.reserveCapacity(args.count)
        if let native, native.mutating, let first = args.first, first.isLValue, !first.rootIsConstant {
            // `pad(list, 5, 0)` changes `list`, as `list.pad(5, 0)` does.
            values.append(.unit)
            for a in args.dropFirst() { values.append(try a.eval(x)) }
            let result = try first.modify(x) { (v: inout Dynamic) throws(Signal) -> Dynamic in
                values[0] = v
                v = .unit
                defer { v = values[0] }
                return try native.body(x, &values, pos) ?? .unit
            }
            try x.checkSize(values[0], pos)
            return result
        }
        for a in args { values.append(try a.eval(x)) }
        if let native, let r = try native.body(x, &values, pos) {
            try x.checkSize(r, pos)
            return r
        }
        if let slot = variableSlot, case .fnPtr(let ptr) = x.read(slot) {
            var this: Dynamic? = nil
            return try x.call(ptr, values, this: &this, pos: pos)
        }
        throw x.notFound(name, values, pos)
    }
}

/// `name!(args)` and `call!(fp, args)`: a script function run inside the caller's scope. Names it
/// does not define itself are the caller's variables, which it can read and assign; its
/// parameters and `let`s stay its own.
final class ScopedCallNode: Node {
    /// nil for `call!`.
    let name: String?
    let args: [Node]
    /// The caller's variables visible at the call, by name.
    let visible: [String: Int]
    /// Linked after parsing.
    var script: ScriptFunction?

    init(_ name: String?, _ args: [Node], visible: [String: Int], _ pos: ScriptPosition) {
        self.name = name
        self.args = args
        self.visible = visible
        super.init(pos)
    }

    override func eval(_ x: Interpreter) throws(Signal) -> Dynamic {
        var values: [Dynamic] = []
        values.reserveCapacity(args.count)
        for a in args { values.append(try a.eval(x)) }
        var f = script
        var label = name ?? ""
        if name == nil {
            let first = values.removeFirst().flattened
            guard case .fnPtr(let ptr) = first else { throw .mismatch(first.typeName, expecting: "Fn", args[0].pos) }
            values = ptr.curried + values
            label = ptr.name
            f = ptr.function ?? x.program.function(ptr.name, arity: values.count)
        }
        guard let f, f.params.count == values.count else { throw x.notFound(label, values, pos) }
        let saved = x.callerScope
        x.callerScope = CallerScope(calleeDepth: x.callDepth + 1, callerBase: x.base, names: visible)
        defer { x.callerScope = saved }
        for v in values { x.push(v) }
        var this: Dynamic? = nil
        return try x.callScript(f, argc: values.count, this: &this, pos: pos)
    }
}

/// `receiver.name(args)`, with the receiver passed by reference.
final class MethodCallNode: Node {
    let receiver: Node
    let name: String
    let args: [Node]
    let argList: NodeList
    let elvis: Bool
    let native: NativeFunction?
    /// Linked after parsing: the script function `fn T.name(args)` (receiver as `this`) and
    /// `fn name(receiver, args)`, if the script defines them.
    var method: ScriptFunction?
    var function: ScriptFunction?

    init(_ receiver: Node, _ name: String, _ args: [Node], elvis: Bool, native: NativeFunction?, _ pos: ScriptPosition) {
        self.receiver = receiver
        self.name = name
        self.args = args
        argList = NodeList(args)
        self.elvis = elvis
        self.native = native
        super.init(pos)
    }

    func link(_ byArity: [Int: ScriptFunction]) {
        method = byArity[args.count]
        function = byArity[args.count + 1].flatMap { $0.receiverType == nil ? $0 : nil }
    }

    override func eval(_ x: Interpreter) throws(Signal) -> Dynamic {
        // One array for the native call: the receiver goes in front when it is known.
        var values: [Dynamic] = []
        values.reserveCapacity(args.count + 1)
        values.append(.unit)
        for i in 0..<argList.count { values.append(try argList.eval(i, x)) }
        let byReference = receiver.isLValue && (method != nil || native == nil || native!.mutating)
        if byReference {
            if receiver.rootIsConstant {
                // Run on a copy; a native that changed it is not pure.
                var r = try receiver.eval(x)
                let before = r
                let result = try invoke(x, &r, &values)
                if native != nil, method == nil, !Operators.matches(before, r) {
                    throw .runtime("ErrorNonPureMethodCallOnConstant", "Non-pure method '\(name)' cannot be called on constant", pos)
                }
                return result
            } else {
                return try receiver.modify(x) { (r: inout Dynamic) throws(Signal) -> Dynamic in
                    try self.invoke(x, &r, &values)
                }
            }
        }
        var r = try receiver.eval(x)
        return try invoke(x, &r, &values)
    }

    /// `all[0]` is a placeholder for the receiver; the arguments follow.
    private func invoke(_ x: Interpreter, _ receiver: inout Dynamic, _ all: inout [Dynamic]) throws(Signal) -> Dynamic {
        if elvis, case .unit = receiver { return .unit }
        let argc = all.count - 1
        if let f = method, f.receiverType.map({ Access.typeMatches(receiver, $0) }) ?? true {
            for v in all.dropFirst() { x.push(v) }
            var this: Dynamic? = receiver
            receiver = .unit
            defer { receiver = this ?? .unit }
            return try x.callScript(f, argc: argc, this: &this, pos: pos)
        }
        if let f = function {
            x.push(receiver)
            for v in all.dropFirst() { x.push(v) }
            var this: Dynamic? = nil
            return try x.callScript(f, argc: argc + 1, this: &this, pos: pos)
        }
        if let native {
            all[0] = receiver
            receiver = .unit
            let result = try native.body(x, &all, pos)
            receiver = all[0]
            if let result {
                if native.mutating { try x.checkSize(receiver, pos) }
                try x.checkSize(result, pos)
                return result
            }
            all[0] = .unit
        }
        let values = Array(all.dropFirst())
        switch receiver {
        case .map(let m):
            if case .fnPtr(let ptr)? = m[name] {
                var this: Dynamic? = receiver
                receiver = .unit
                defer { receiver = this ?? .unit }
                return try x.call(ptr, values, this: &this, pos: pos)
            }
        case .host(let h):
            do throws(ScriptError) {
                if let r = try h.call(name, values) { return r }
            } catch {
                var e = error
                if e.position == nil { e.position = pos }
                throw .error(e)
            }
        default: break
        }
        throw x.notFound(name, [receiver] + values, pos)
    }
}

/// `|a, b| body`: a function pointer carrying the variables it captures.
final class ClosureNode: Node {
    let function: ScriptFunction
    /// Slots in the enclosing frame, in the order the closure's frame expects them.
    let captures: [Int]
    init(_ function: ScriptFunction, captures: [Int], _ pos: ScriptPosition) {
        self.function = function
        self.captures = captures
        super.init(pos)
    }
    override func eval(_ x: Interpreter) throws(Signal) -> Dynamic {
        .fnPtr(FnPtr(name: function.name, function: function, captured: captures.map { x.share($0) }))
    }
}

// MARK: - Statements

final class BlockNode: Node {
    let statements: NodeList
    init(_ statements: [Node], _ pos: ScriptPosition) {
        self.statements = NodeList(statements)
        super.init(pos)
    }
    override func eval(_ x: Interpreter) throws(Signal) -> Dynamic {
        var last = Dynamic.unit
        for r in statements.refs {
            last = try r.with { (s: Node) throws(Signal) -> Dynamic in
                try x.tick(s.pos)
                return try s.eval(x)
            }
        }
        return last
    }
}

final class LetNode: Node {
    let slot: Int
    let value: Node?
    init(slot: Int, _ value: Node?, _ pos: ScriptPosition) {
        self.slot = slot
        self.value = value
        super.init(pos)
    }
    override func eval(_ x: Interpreter) throws(Signal) -> Dynamic {
        let v = try value?.eval(x) ?? .unit
        if x.limits.maxVariables > 0, slot >= x.limits.maxVariables {
            throw .runtime("ErrorTooManyVariables", "Too many variables defined", pos)
        }
        x.bind(slot, v)
        return .unit
    }
}

final class AssignNode: Node {
    let target: Node
    let op: BinaryOperator?
    let value: Node
    /// The target's slot when it is a plain variable (the fast path), -1 otherwise.
    let targetSlot: Int
    /// The value's slot when it is a plain variable, -1 otherwise.
    let valueSlot: Int
    init(_ target: Node, _ op: BinaryOperator?, _ value: Node, _ pos: ScriptPosition) {
        self.target = target
        self.op = op
        self.value = value
        targetSlot = (target as? VariableNode).flatMap { $0.constant ? nil : $0.slot } ?? -1
        valueSlot = (value as? VariableNode)?.slot ?? -1
        super.init(pos)
    }
    override func eval(_ x: Interpreter) throws(Signal) -> Dynamic {
        let v = valueSlot >= 0 ? x.read(valueSlot) : try value.eval(x)
        if targetSlot >= 0 {
            guard let op else {
                x.assign(targetSlot, v)
                return .unit
            }
            if case .int(let a) = x.read(targetSlot), case .int(let b) = v {
                x.assign(targetSlot, try Operators.integer(op, a, b, pos))
                return .unit
            }
        }
        let pos = self.pos
        let op = self.op
        let checks = x.limits.checksData
        let storesScalar = op == nil && v.isScalar
        var grew = false
        _ = try target.modify(x) { (current: inout Dynamic) throws(Signal) -> Dynamic in
            // A map property that did not exist reads as `()`: assigning it adds a key.
            let added = checks && current.isUnit
            // Otherwise, replacing a value with a scalar never grows anything: nothing to measure.
            let measures = checks && (added || !storesScalar)
            let before = measures ? DataSize(current, stringLimit: x.limits.maxStringSize) : nil
            if let op { try Operators.compound(op, &current, v, pos) } else { current = v }
            if let before {
                let after = DataSize(current, stringLimit: x.limits.maxStringSize)
                try x.limits.check(after, pos)
                grew = added || before.addsUp(to: after)
            }
            return .unit
        }
        // A container grows through its element: when the element grew, check the whole
        // variable (it was within the limits before, so an element that did not grow keeps it so).
        if grew, target.root !== target { try x.checkSize(try target.root.eval(x), pos) }
        return .unit
    }
}

final class IfNode: Node {
    let condition: Node
    let then: Node
    let otherwise: Node?
    init(_ condition: Node, _ then: Node, _ otherwise: Node?, _ pos: ScriptPosition) {
        self.condition = condition
        self.then = then
        self.otherwise = otherwise
        super.init(pos)
    }
    override func eval(_ x: Interpreter) throws(Signal) -> Dynamic {
        if try condition.condition(x) { return try then.eval(x) }
        return try otherwise?.eval(x) ?? .unit
    }
}

final class SwitchNode: Node {
    struct Case {
        var values: [Dynamic]
        var condition: Node?
        var body: Node
    }
    struct RangeCase {
        var from: Int64, to: Int64, inclusive: Bool
        var condition: Node?
        var body: Node
    }
    let subject: Node
    let cases: [Case]
    let ranges: [RangeCase]
    let fallback: Node?
    init(_ subject: Node, cases: [Case], ranges: [RangeCase], fallback: Node?, _ pos: ScriptPosition) {
        self.subject = subject
        self.cases = cases
        self.ranges = ranges
        self.fallback = fallback
        super.init(pos)
    }
    override func eval(_ x: Interpreter) throws(Signal) -> Dynamic {
        let v = try subject.eval(x)
        for c in cases where c.values.contains(where: { Operators.matches(v, $0) }) {
            if try guardHolds(c.condition, x) { return try c.body.eval(x) }
        }
        let number: Double? = switch v {
        case .int(let i): Double(i)
        case .float(let f): f
        default: nil
        }
        if case .range(let a, let b, let inclusive) = v {
            for r in ranges where r.from == a && r.to == b && r.inclusive == inclusive {
                if try guardHolds(r.condition, x) { return try r.body.eval(x) }
            }
        }
        if let number {
            for r in ranges where number >= Double(r.from) && (r.inclusive ? number <= Double(r.to) : number < Double(r.to)) {
                if try guardHolds(r.condition, x) { return try r.body.eval(x) }
            }
        }
        return try fallback?.eval(x) ?? .unit
    }
    private func guardHolds(_ condition: Node?, _ x: Interpreter) throws(Signal) -> Bool {
        guard let condition else { return true }
        let c = try condition.eval(x)
        guard case .bool(let b) = c else { throw .mismatch(c.typeName, expecting: "bool", condition.pos) }
        return b
    }
}

/// Runs a loop body; answers the value of a `break`, or nil to go on.
@inline(__always)
private func loopBody(_ body: Node, _ x: Interpreter) throws(Signal) -> Dynamic? {
    do {
        _ = try body.eval(x)
    } catch {
        switch error {
        case .breakLoop(let v): return v
        case .continueLoop: return nil
        default: throw error
        }
    }
    return nil
}

final class WhileNode: Node {
    enum Kind { case whileTrue, loop, doWhile, doUntil }
    let kind: Kind
    let condition: Node?
    let body: Node
    init(_ kind: Kind, _ condition: Node?, _ body: Node, _ pos: ScriptPosition) {
        self.kind = kind
        self.condition = condition
        self.body = body
        super.init(pos)
    }
    override func eval(_ x: Interpreter) throws(Signal) -> Dynamic {
        switch kind {
        case .loop:
            while true {
                try x.tick(pos)
                if let v = try loopBody(body, x) { return v }
            }
        case .whileTrue:
            while try test(x) {
                try x.tick(pos)
                if let v = try loopBody(body, x) { return v }
            }
        case .doWhile, .doUntil:
            repeat {
                try x.tick(pos)
                if let v = try loopBody(body, x) { return v }
            } while try test(x) == (kind == .doWhile)
        }
        return .unit
    }
    private func test(_ x: Interpreter) throws(Signal) -> Bool {
        try condition!.condition(x)
    }
}

final class ForNode: Node {
    let slot: Int
    let counterSlot: Int?
    let source: Node
    let body: Node
    init(slot: Int, counterSlot: Int?, _ source: Node, _ body: Node, _ pos: ScriptPosition) {
        self.slot = slot
        self.counterSlot = counterSlot
        self.source = source
        self.body = body
        super.init(pos)
    }

    @inline(__always) private func step(_ x: Interpreter, _ value: Dynamic, _ n: Int) throws(Signal) -> Dynamic? {
        try x.tick(pos)
        x.assign(slot, value)
        if let counterSlot { x.assign(counterSlot, .int(Int64(n))) }
        return try loopBody(body, x)
    }

    override func eval(_ x: Interpreter) throws(Signal) -> Dynamic {
        let iterable = try source.eval(x)
        // The loop variable is one variable for the whole loop (closures made in the body see its
        // last value), fresh each time the loop starts.
        x.bind(slot, .unit)
        if let counterSlot { x.bind(counterSlot, .unit) }
        var n = 0
        switch iterable {
        case .range(let a, let b, let inclusive):
            if a > b || (!inclusive && a == b) { return .unit }
            var i = a
            while true {
                if let v = try step(x, .int(i), n) { return v }
                n += 1
                if inclusive ? i >= b : i + 1 >= b { break }
                i += 1
            }
        case .array(let items):
            for item in items {
                if let v = try step(x, item, n) { return v }
                n += 1
            }
        case .string(let s):
            for c in s.unicodeScalars {
                if let v = try step(x, .char(c), n) { return v }
                n += 1
            }
        case .blob(let bytes):
            for b in bytes {
                if let v = try step(x, .int(Int64(b)), n) { return v }
                n += 1
            }
        case .sequence(let seq):
            let next = seq.makeIterator()
            while let item = next() {
                if let v = try step(x, item, n) { return v }
                n += 1
            }
        default:
            throw .runtime("ErrorFor", "For loop expects iterable type, not \(iterable.typeName)", source.pos)
        }
        return .unit
    }
}

final class JumpNode: Node {
    enum Kind { case breakLoop, continueLoop, returnValue, throwValue }
    let kind: Kind
    let value: Node?
    init(_ kind: Kind, _ value: Node?, _ pos: ScriptPosition) {
        self.kind = kind
        self.value = value
        super.init(pos)
    }
    override func eval(_ x: Interpreter) throws(Signal) -> Dynamic {
        let v = try value?.eval(x) ?? .unit
        switch kind {
        case .breakLoop: throw .breakLoop(v)
        case .continueLoop: throw .continueLoop
        case .returnValue: throw .returned(v)
        case .throwValue: throw .thrown(v, pos)
        }
    }
}

/// `throw;` inside `catch`: throws the caught error again.
final class RethrowNode: Node {
    let slot: Int
    init(slot: Int, _ pos: ScriptPosition) {
        self.slot = slot
        super.init(pos)
    }
    override func eval(_ x: Interpreter) throws(Signal) -> Dynamic {
        throw .thrown(x.read(slot), pos)
    }
}

final class TryNode: Node {
    let body: Node
    let errorSlot: Int?
    let handler: Node
    init(_ body: Node, errorSlot: Int?, _ handler: Node, _ pos: ScriptPosition) {
        self.body = body
        self.errorSlot = errorSlot
        self.handler = handler
        super.init(pos)
    }
    override func eval(_ x: Interpreter) throws(Signal) -> Dynamic {
        let mark = x.top
        let depth = x.callDepth
        let base = x.base
        let this = x.thisValue
        let caught: Dynamic
        do {
            return try body.eval(x)
        } catch {
            switch error {
            case .thrown(let v, _): caught = v
            case .error(let e) where ScriptError.catchable(e.kind): caught = TryNode.errorMap(e)
            default: throw error
            }
        }
        x.pop(to: mark)
        x.callDepth = depth
        x.base = base
        x.thisValue = this
        if let errorSlot { x.bind(errorSlot, caught) }
        _ = try handler.eval(x)
        return .unit
    }

    static func errorMap(_ e: ScriptError) -> Dynamic {
        var m: [String: Dynamic] = ["message": .string(e.description), "error": .string(e.kind)]
        if let p = e.position {
            m["line"] = .int(Int64(p.line))
            m["position"] = .int(Int64(p.column))
        }
        return .map(m)
    }
}

/// `eval(code)`: compiles and runs a script at run time, inside the caller's scope: it sees the
/// caller's variables, and the variables it defines stay defined after it.
final class EvalNode: Node {
    let code: Node
    let visible: [Parser.FunctionScope.Name]
    init(_ code: Node, visible: [Parser.FunctionScope.Name], _ pos: ScriptPosition) {
        self.code = code
        self.visible = visible
        super.init(pos)
    }
    override func eval(_ x: Interpreter) throws(Signal) -> Dynamic {
        let c = try code.eval(x)
        guard case .string(let source) = c else { throw .mismatch(c.typeName, expecting: "string", pos) }
        let script: CompiledScript
        do throws(ScriptError) {
            script = try x.engine.compile(source, enclosing: visible)
        } catch {
            throw .error(error)
        }
        let captured = script.enclosingCaptures.map { x.share($0) }
        // A constant `eval` defines at the top level is a global one, seen by `global::`.
        let atTopLevel = x.callDepth == 1
        let savedKeep = x.mainKeepsFrame
        x.mainKeepsFrame = true
        defer { x.mainKeepsFrame = savedKeep }
        var this: Dynamic? = nil
        let result = try x.callScript(script.main, argc: 0, this: &this, captured: captured, pos: pos)
        let frame = x.keptFrame
        for (name, slot) in script.topLevel where slot < frame.count {
            x.dynamicVariables[name] = frame[slot].flattened
        }
        if atTopLevel {
            for (name, slot) in script.globalConstants where slot < frame.count { x.evalConstants[name] = frame[slot].flattened }
        }
        return result
    }
}
