/// How a node leaves other than by producing a value. Typed throws keep this allocation-free:
/// `return`, `break` and `continue` travel the same path as errors without boxing.
enum Signal: Error {
    case error(ScriptError)
    /// `throw value`, with where it was thrown.
    case thrown(Dynamic, ScriptPosition)
    case breakLoop(Dynamic)
    case continueLoop
    case returned(Dynamic)
}

// A compiled script is immutable and runs on one thread per evaluation; values never cross
// threads while a script runs, so these claims hold.
extension Dynamic: @unchecked Sendable {}
extension SharedBox: @unchecked Sendable {}
extension FnPtr: @unchecked Sendable {}

extension Signal {
    static func runtime(_ kind: String, _ message: String, _ pos: ScriptPosition) -> Signal {
        .error(ScriptError(.runtime, kind, message, at: pos))
    }

    static func mismatch(_ actual: String, expecting: String, _ pos: ScriptPosition) -> Signal {
        runtime("ErrorMismatchDataType", "Data type incorrect: \(actual) (expecting \(expecting))", pos)
    }

    /// The error a host sees.
    var scriptError: ScriptError {
        switch self {
        case .error(let e): return e
        case .thrown(let v, let pos): return ScriptError(.runtime, "ErrorRuntime", "Runtime error: \(v.displayText)", at: pos)
        case .breakLoop, .continueLoop: return ScriptError(.runtime, "ErrorLoopBreak", "Break statement should only be used inside a loop")
        case .returned: return ScriptError(.runtime, "ErrorReturn", "return outside a function")
        }
    }
}

struct CallerScope {
    /// The call depth the callee runs at: functions it calls in turn do not see the caller's scope.
    var calleeDepth: Int
    var callerBase: Int
    var names: [String: Int]
}

/// The state of one evaluation: a value stack holding every frame's slots, the operation
/// count and the call depth. Not thread-safe; each evaluation gets its own.
public final class Interpreter {
    var stack: UnsafeMutablePointer<Dynamic>
    var capacity: Int
    /// The first free slot.
    var top = 0
    /// The first slot of the running function's frame.
    var base = 0
    /// The receiver of a method-style call, if any.
    var thisValue: Dynamic?
    var operations: UInt64 = 0
    let maxOperations: UInt64
    var callDepth = 0
    let limits: ScriptLimits
    let program: CompiledScript
    let engine: ScriptEngine
    /// Where `print` and `debug` write for this run, instead of the engine's callbacks.
    var printer: ((String) -> Void)?
    /// Variables an `eval` defined that the compiled code did not know about.
    var dynamicVariables: [String: Dynamic] = [:]
    /// Constants an `eval` at the top level defined, which `global::` sees.
    var evalConstants: [String: Dynamic] = [:]
    /// While a function runs through `name!()`: its frame, and the caller's frame and variables.
    var callerScope: CallerScope?
    /// When set, the top-level frame is copied to `keptFrame` before it is dropped.
    var mainKeepsFrame = false
    var keptFrame: [Dynamic] = []

    init(program: CompiledScript, engine: ScriptEngine) {
        self.program = program
        self.engine = engine
        limits = engine.limits
        maxOperations = limits.maxOperations > 0 ? UInt64(limits.maxOperations) : .max
        capacity = 64
        stack = .allocate(capacity: capacity)
    }

    deinit {
        stack.deinitialize(count: top)
        stack.deallocate()
    }

    // MARK: - Slots

    @inline(__always) func ensure(_ extra: Int) {
        if top + extra > capacity { grow(top + extra) }
    }

    private func grow(_ needed: Int) {
        var newCapacity = capacity * 2
        while newCapacity < needed { newCapacity *= 2 }
        let bigger = UnsafeMutablePointer<Dynamic>.allocate(capacity: newCapacity)
        bigger.moveInitialize(from: stack, count: top)
        stack.deallocate()
        stack = bigger
        capacity = newCapacity
    }

    @inline(__always) func push(_ value: Dynamic) {
        ensure(1)
        (stack + top).initialize(to: value)
        top += 1
    }

    /// Drops slots down to `mark`.
    @inline(__always) func pop(to mark: Int) {
        if top > mark {
            (stack + mark).deinitialize(count: top - mark)
            top = mark
        }
    }

    @inline(__always) func read(_ slot: Int) -> Dynamic {
        let v = stack[base + slot]
        if case .shared(let box) = v { return box.value }
        return v
    }

    /// Looks at a variable in place, without copying it out of its slot.
    @inline(__always) func withSlot<R>(_ slot: Int, _ body: (borrowing Dynamic) -> R) -> R {
        body(stack[base + slot])
    }

    /// Stores into a variable, writing through a shared box.
    @inline(__always) func assign(_ slot: Int, _ value: Dynamic) {
        if case .shared(let box) = stack[base + slot] {
            box.value = value
        } else {
            stack[base + slot] = value
        }
    }

    /// Binds a fresh variable (`let`, a loop variable): replaces any box a closure holds.
    @inline(__always) func bind(_ slot: Int, _ value: Dynamic) {
        stack[base + slot] = value
    }

    /// Runs `body` on the value at an absolute stack index, in place, writing through a shared box.
    @inline(__always) func modify(at i: Int, _ body: (inout Dynamic) throws(Signal) -> Dynamic) throws(Signal) -> Dynamic {
        if case .shared(let box) = stack[i] {
            var v = box.value
            box.value = .unit
            defer { box.value = v }
            return try body(&v)
        }
        var v = stack[i]
        stack[i] = .unit
        defer { stack[i] = v }
        return try body(&v)
    }

    /// The stack index of a caller's variable, when the running function was called with `name!()`.
    func callerVariable(_ name: String) -> Int? {
        guard let s = callerScope, s.calleeDepth == callDepth, let slot = s.names[name] else { return nil }
        return s.callerBase + slot
    }

    /// Moves a variable into a shared box (once) so a closure can capture it.
    func share(_ slot: Int) -> SharedBox {
        if case .shared(let box) = stack[base + slot] { return box }
        let box = SharedBox(stack[base + slot])
        stack[base + slot] = .shared(box)
        return box
    }

    // MARK: - Limits

    @inline(__always) func tick(_ pos: ScriptPosition) throws(Signal) {
        operations &+= 1
        if operations > maxOperations {
            throw .error(ScriptError(.runtime, "ErrorTooManyOperations", "Too many operations", at: pos))
        }
    }

    /// Checks a grown value against the size limits.
    @inline(__always) func checkSize(_ value: Dynamic, _ pos: ScriptPosition) throws(Signal) {
        if limits.checksData { try limits.check(value, pos) }
    }

    // MARK: - Calls

    /// Runs a script function whose arguments are the top `argc` slots; pops them.
    func callScript(_ f: ScriptFunction, argc: Int, this: inout Dynamic?, captured: [SharedBox] = [],
                    pos: ScriptPosition) throws(Signal) -> Dynamic {
        let frameBase = top - argc
        if callDepth >= limits.maxCallLevels {
            pop(to: frameBase)
            throw .error(ScriptError(.runtime, "ErrorStackOverflow", "Stack overflow", at: pos))
        }
        try tick(pos)
        let locals = f.frameSize - argc
        if locals > 0 {
            ensure(locals)
            (stack + top).initialize(repeating: .unit, count: locals)
            top += locals
        }
        for (k, box) in captured.enumerated() { stack[frameBase + f.captureSlots[k]] = .shared(box) }
        let savedBase = base
        let savedThis = thisValue
        base = frameBase
        thisValue = this
        callDepth += 1
        defer {
            callDepth -= 1
            this = thisValue
            thisValue = savedThis
            if mainKeepsFrame, f.isMain {
                keptFrame = Array(UnsafeBufferPointer(start: stack + frameBase, count: top - frameBase))
            }
            base = savedBase
            pop(to: frameBase)
        }
        do {
            return try f.body.eval(self)
        } catch {
            switch error {
            case .returned(let v): return v
            case .error(let e) where !f.isMain && e.kind != "ErrorInFunctionCall" && ScriptError.catchable(e.kind):
                throw .error(ScriptError(.runtime, "ErrorInFunctionCall",
                                         "\(e.description)\nin call to function '\(f.name)'", at: pos))
            default: throw error
            }
        }
    }

    /// Calls a function pointer with arguments; `this` is bound when given.
    func call(_ ptr: FnPtr, _ arguments: [Dynamic], this: inout Dynamic?, pos: ScriptPosition) throws(Signal) -> Dynamic {
        let all = ptr.curried.isEmpty ? arguments : ptr.curried + arguments
        if let f = ptr.function {
            guard f.params.count == all.count else {
                throw .runtime("ErrorFunctionNotFound", "Function not found: \(ptr.name) (\(all.map(\.signatureName).joined(separator: ", ")))", pos)
            }
            for a in all { push(a) }
            return try callScript(f, argc: all.count, this: &this, captured: ptr.captured, pos: pos)
        }
        return try callNamed(ptr.name, all, this: &this, pos: pos)
    }

    /// `call(name, args)` by name: a script function, then a native one.
    func callNamed(_ name: String, _ arguments: [Dynamic], this: inout Dynamic?, pos: ScriptPosition) throws(Signal) -> Dynamic {
        if let f = program.function(name, arity: arguments.count) {
            for a in arguments { push(a) }
            return try callScript(f, argc: arguments.count, this: &this, pos: pos)
        }
        if let native = engine.natives[name] {
            var args = arguments
            if let result = try native.body(self, &args, pos) { return result }
        }
        throw notFound(name, arguments, pos)
    }

    /// A callback given to a native function: a pointer, or a function name as a string. It may
    /// take fewer parameters than offered (`|v|` where `|v, i|` would do); one that takes none
    /// sees `element` as `this`.
    func callback(_ f: Dynamic, _ arguments: [Dynamic], element: Int = 0, pos: ScriptPosition) throws(Signal) -> Dynamic {
        var this: Dynamic? = nil
        switch f.flattened {
        case .fnPtr(let ptr):
            if let fn = ptr.function {
                let wanted = max(0, fn.params.count - ptr.curried.count)
                if wanted < arguments.count {
                    if wanted < arguments.count - 1 || wanted == 0, element < arguments.count { this = arguments[element] }
                    return try call(ptr, Array(arguments.prefix(wanted)), this: &this, pos: pos)
                }
                return try call(ptr, arguments, this: &this, pos: pos)
            }
            return try callByName(ptr.name, ptr.curried, arguments, pos: pos)
        case .string(let name):
            return try callByName(name, [], arguments, pos: pos)
        default:
            throw .mismatch(f.typeName, expecting: "Fn", pos)
        }
    }

    /// A named callback with as many of the offered arguments as some function of that name takes.
    private func callByName(_ name: String, _ curried: [Dynamic], _ arguments: [Dynamic], pos: ScriptPosition) throws(Signal) -> Dynamic {
        var this: Dynamic? = nil
        // A script function: the one taking the most of the offered arguments.
        for n in stride(from: arguments.count, through: 0, by: -1) where program.function(name, arity: curried.count + n) != nil {
            return try callNamed(name, curried + arguments.prefix(n), this: &this, pos: pos)
        }
        // A native function: try the fullest form that matches.
        var lastError: Signal?
        for k in stride(from: arguments.count, through: 1, by: -1) {
            do {
                return try callNamed(name, curried + arguments.prefix(k), this: &this, pos: pos)
            } catch {
                if case .error(let e) = error, e.kind == "ErrorFunctionNotFound" { lastError = error; continue }
                throw error
            }
        }
        throw lastError ?? notFound(name, arguments, pos)
    }

    func notFound(_ name: String, _ arguments: [Dynamic], _ pos: ScriptPosition) -> Signal {
        .runtime("ErrorFunctionNotFound", "Function not found: \(name) (\(arguments.map(\.signatureName).joined(separator: ", ")))", pos)
    }
}

extension ScriptError {
    /// Whether `try … catch` can catch an error of this kind.
    static func catchable(_ kind: String) -> Bool {
        !["ErrorTooManyOperations", "ErrorTooManyVariables", "ErrorTooManyModules", "ErrorStackOverflow",
          "ErrorDataTooLarge", "ErrorTerminated", "ErrorParsing"].contains(kind)
    }
}
