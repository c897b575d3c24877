/// Resource limits with Rhai's meaning. Zero means unlimited where Rhai allows it.
public struct ScriptLimits: Sendable, Equatable {
    public var maxOperations: Int = 0
    public var maxCallLevels: Int = 64
    /// Deepest expression nesting at global level and inside functions (parse time).
    public var maxExpressionDepth: Int = 64
    public var maxFunctionExpressionDepth: Int = 32
    public var maxStringSize: Int = 0
    public var maxArraySize: Int = 0
    public var maxMapSize: Int = 0
    public var maxVariables: Int = 0
    public var maxFunctions: Int = 0

    public init() {}

    /// Limits for scripts inside flows: bounded so a runaway script stops.
    public static let flowDefaults: ScriptLimits = {
        var l = ScriptLimits()
        l.maxOperations = 1_000_000
        l.maxStringSize = 1 << 24
        l.maxArraySize = 1 << 20
        l.maxMapSize = 1 << 16
        return l
    }()

    var checksData: Bool { maxStringSize > 0 || maxArraySize > 0 || maxMapSize > 0 }

    func check(_ value: Dynamic, _ pos: ScriptPosition) throws(Signal) {
        try check(DataSize(value, stringLimit: maxStringSize), pos)
    }

    func check(_ size: DataSize, _ pos: ScriptPosition) throws(Signal) {
        if maxStringSize > 0, size.strings > maxStringSize {
            throw .runtime("ErrorDataTooLarge", "Length of string too large", pos)
        }
        if maxArraySize > 0, size.arrays > maxArraySize {
            throw .runtime("ErrorDataTooLarge", "Size of array/BLOB too large", pos)
        }
        if maxMapSize > 0, size.maps > maxMapSize {
            throw .runtime("ErrorDataTooLarge", "Size of object map too large", pos)
        }
    }
}

/// A value's size the way Rhai counts it against the limits: nested array and map sizes add
/// up; strings count their longest one, in chars.
struct DataSize {
    var strings = 0, arrays = 0, maps = 0
    /// Strings no longer than this in UTF-8 bytes are within it in chars too: they are not
    /// counted char by char (0: always counted).
    private let stringLimit: Int

    init(_ value: Dynamic, stringLimit: Int = 0) {
        self.stringLimit = stringLimit
        measure(value)
    }

    /// Whether a container holding a value of this size grows when it holds `other` instead.
    /// Strings do not add up, so only arrays and maps count.
    func addsUp(to other: DataSize) -> Bool { other.arrays > arrays || other.maps > maps }

    private mutating func measure(_ value: Dynamic) {
        switch value {
        case .string(let s):
            let bytes = s.utf8.count
            strings = max(strings, stringLimit > 0 && bytes <= stringLimit ? bytes : s.unicodeScalars.count)
        case .array(let a):
            arrays += a.count
            for v in a { measure(v) }
        case .blob(let b): arrays += b.count
        case .map(let m):
            maps += m.count
            for v in m.values { measure(v) }
        case .shared(let box): measure(box.value)
        default: break
        }
    }
}

/// A native function: gets the interpreter, the arguments (the first may be changed in place
/// when it is a method receiver) and the call's position; returns nil when the argument
/// types match none of its forms.
struct NativeFunction {
    /// Whether it changes its first argument (so it cannot run on a constant).
    let mutating: Bool
    let body: (Interpreter, inout [Dynamic], ScriptPosition) throws(Signal) -> Dynamic?
}

/// Configuration shared by compiled scripts: limits, the native function library, and where
/// `print` and `debug` go.
public final class ScriptEngine: @unchecked Sendable {
    public var limits: ScriptLimits
    var natives: [String: NativeFunction]
    /// Names a property read calls as a function (`s.len`, `x.is_even`).
    var getters: Set<String>
    /// Accept `null` as `()`: Flowgen scripts write `return null;`, which Rhai itself reserves.
    public var nullIsUnit = false
    public var onPrint: @Sendable (String) -> Void
    public var onDebug: @Sendable (String) -> Void

    public init(limits: ScriptLimits = ScriptLimits()) {
        self.limits = limits
        natives = [:]
        getters = []
        onPrint = { print($0) }
        onDebug = { print($0) }
        StandardLibrary.install(into: self)
    }

    func register(_ name: String, mutating: Bool = false,
                  _ body: @escaping (Interpreter, inout [Dynamic], ScriptPosition) throws(Signal) -> Dynamic?) {
        if let existing = natives[name] {
            // Another form of the same name: try the earlier forms first.
            natives[name] = NativeFunction(mutating: mutating || existing.mutating) { x, args, pos throws(Signal) in
                if let r = try existing.body(x, &args, pos) { return r }
                return try body(x, &args, pos)
            }
        } else {
            natives[name] = NativeFunction(mutating: mutating, body: body)
        }
    }

    /// Adds the functions flow scripts use beyond Rhai's own: `uuid`, `sha256`, `sha512`,
    /// `timestamp_now`, `timestamp_format`, `parse_timestamp` and the `regex_*` family.
    public func installFlowHelpers() { StandardLibrary.installFlowHelpers(self) }

    /// Registers a host function visible to scripts under `name`.
    public func register(_ name: String, _ body: @escaping ([Dynamic]) throws(ScriptError) -> Dynamic?) {
        register(name) { _, args, pos throws(Signal) in
            do throws(ScriptError) {
                return try body(args)
            } catch {
                var e = error
                if e.position == nil { e.position = pos }
                throw .error(e)
            }
        }
    }

    /// Compiles a script (statements) or a single expression.
    public func compile(_ source: String, expression: Bool = false, scope: [String] = [],
                        constants: Set<String> = []) throws(ScriptError) -> CompiledScript {
        var parser = try Parser(source: source, engine: self, expressionOnly: expression, scope: scope, constants: constants)
        return try parser.parseProgram()
    }

    func compile(_ source: String, enclosing: [Parser.FunctionScope.Name]) throws(ScriptError) -> CompiledScript {
        var parser = try Parser(source: source, engine: self, expressionOnly: false, scope: [], enclosing: enclosing)
        return try parser.parseProgram()
    }

    /// Compiles and runs; for tools and tests.
    public func eval(_ source: String, scope: ScriptScope = ScriptScope()) throws(ScriptError) -> Dynamic {
        let script = try compile(source, scope: scope.names, constants: scope.constants)
        return try script.run(scope: scope)
    }
}

/// Variables a host passes into a script, in order.
public struct ScriptScope: @unchecked Sendable {
    public struct Variable {
        public var name: String
        public var value: Dynamic
        public var constant: Bool
    }

    public var variables: [Variable] = []

    public init() {}

    public mutating func push(_ name: String, _ value: Dynamic, constant: Bool = false) {
        variables.append(Variable(name: name, value: value, constant: constant))
    }

    public var names: [String] { variables.map(\.name) }
    public var constants: Set<String> { Set(variables.filter(\.constant).map(\.name)) }
}

/// A function written in a script.
final class ScriptFunction {
    let name: String
    let params: [String]
    /// For `fn int.name()`: the receiver type it is restricted to.
    let receiverType: String?
    let body: Node
    var frameSize = 0
    /// For a closure: the slots its captured variables occupy.
    var captureSlots: [Int] = []
    /// The top level: its errors are not wrapped as "in call to function".
    var isMain = false

    init(name: String, params: [String], receiverType: String?, body: Node) {
        self.name = name
        self.params = params
        self.receiverType = receiverType
        self.body = body
    }
}

/// A parsed, linked script, ready to run any number of times (on any thread).
public final class CompiledScript: @unchecked Sendable {
    let engine: ScriptEngine
    let main: ScriptFunction
    /// Script functions by name, then by arity.
    let functions: [String: [Int: ScriptFunction]]
    /// Top-level names in scope order, for host variables.
    let scopeNames: [String]
    /// The slots of global constants, for `global::NAME`.
    let globalConstants: [String: Int]

    init(engine: ScriptEngine, main: ScriptFunction, functions: [String: [Int: ScriptFunction]],
         scopeNames: [String], globalConstants: [String: Int]) {
        self.engine = engine
        self.main = main
        self.functions = functions
        self.scopeNames = scopeNames
        self.globalConstants = globalConstants
    }

    @inline(__always) func function(_ name: String, arity: Int) -> ScriptFunction? {
        functions[name]?[arity]
    }

    public func hasFunction(_ name: String) -> Bool { functions[name] != nil }

    /// For `eval` code: the caller's slots it captures, and its own top-level variables.
    var enclosingCaptures: [Int] = []
    var topLevel: [(String, Int)] = []
    /// What the code reads of its variables: those it uses whole, and of those it only ever
    /// reads as `name.property`, which properties. Nil when `eval` or `name!()` may reach any.
    struct Reads {
        var whole: Set<String>
        var properties: [String: Set<String>]
    }

    var reads: Reads?

    /// Whether running the script may read the host variable `name`: false only when no code
    /// in it names the variable and nothing (`eval`, `name!()`) reaches variables by name. A
    /// host may then pass a placeholder instead of building the value.
    public func mayRead(_ name: String) -> Bool {
        guard let reads else { return true }
        return reads.whole.contains(name) || reads.properties[name] != nil
    }

    /// The properties of the host variable `name` the script reads, when it only ever reads
    /// it as `name.property`; nil when it may use the variable whole (or reach it by name).
    public func propertiesRead(of name: String) -> Set<String>? {
        guard let reads, !reads.whole.contains(name) else { return nil }
        return reads.properties[name] ?? []
    }

    /// Whether the script may read `property` of the host variable `name` (a map): false when
    /// the variable is only ever used as `name.other` for other properties (never passed on,
    /// returned, indexed or iterated whole), so the host may leave that entry out.
    public func mayRead(_ name: String, property: String) -> Bool {
        guard let reads else { return true }
        return reads.whole.contains(name) || reads.properties[name]?.contains(property) == true
    }

    /// Runs the script. Host variables must come in the order given to `compile`.
    public func run(scope: ScriptScope = ScriptScope()) throws(ScriptError) -> Dynamic {
        let x = Interpreter(program: self, engine: engine)
        for v in scope.variables { x.push(v.value) }
        var this: Dynamic? = nil
        do {
            return try x.callScript(main, argc: scope.variables.count, this: &this, pos: ScriptPosition(line: 1, column: 1))
        } catch {
            throw error.scriptError
        }
    }

    /// Runs the script and hands back the final values of the host variables too.
    public func run(scope: inout ScriptScope, output: ((String) -> Void)? = nil) throws(ScriptError) -> Dynamic {
        let x = Interpreter(program: self, engine: engine)
        x.printer = output
        for v in scope.variables { x.push(v.value) }
        x.mainKeepsFrame = true
        var this: Dynamic? = nil
        let result: Dynamic
        do {
            result = try x.callScript(main, argc: scope.variables.count, this: &this, pos: ScriptPosition(line: 1, column: 1))
        } catch {
            throw error.scriptError
        }
        for (i, value) in x.keptFrame.prefix(scope.variables.count).enumerated() {
            scope.variables[i].value = value.flattened
        }
        return result
    }
}
