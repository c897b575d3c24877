/// Builds the node tree from tokens. Variables become frame slots here, closures learn what
/// they capture, and once the whole script is read every call is linked to its function.
struct Parser {
    /// The variables of one function (or the top level) while it is being parsed.
    final class FunctionScope {
        struct Name {
            var name: String
            var slot: Int
            var constant: Bool
            /// A constant the host passed in: assigning to it fails when it runs.
            var fromHost = false
        }
        let parent: FunctionScope?
        let isClosure: Bool
        var names: [Name] = []
        var captured: [String: Name] = [:]
        /// (slot in the enclosing frame, slot in this frame)
        var captures: [(outer: Int, inner: Int)] = []
        var slots = 0
        var loops = 0
        /// Whether an `eval` may have defined variables from here on.
        var hasEval = false

        init(parent: FunctionScope?, isClosure: Bool) {
            self.parent = parent
            self.isClosure = isClosure
        }

        func allocate() -> Int {
            slots += 1
            return slots - 1
        }

        /// Every variable code here can see, in scope order (a later name shadows an earlier one):
        /// what `eval` and `name!()` hand on.
        var visible: [Name] {
            var all = names
            for (_, n) in captured where !all.contains(where: { $0.name == n.name }) { all.insert(n, at: 0) }
            return all
        }

        func lookup(_ name: String) -> Name? {
            if let n = names.last(where: { $0.name == name }) { return n }
            if let n = captured[name] { return n }
            guard isClosure, let parent, let outer = parent.lookup(name) else { return nil }
            let inner = Name(name: name, slot: allocate(), constant: outer.constant)
            captured[name] = inner
            captures.append((outer.slot, inner.slot))
            return inner
        }
    }

    private var tokens: [LocatedToken]
    private var index = 0
    private let engine: ScriptEngine
    private let expressionOnly: Bool
    private let hostScope: [String]
    private let hostConstants: Set<String>
    private var scope: FunctionScope
    private var functions: [String: [Int: ScriptFunction]] = [:]
    private var functionCount = 0
    private var calls: [CallNode] = []
    private var methodCalls: [MethodCallNode] = []
    private var inTests: [InNode] = []
    private var scopedCalls: [ScopedCallNode] = []
    private var depth = 0
    private var inFunction = false
    private var blockDepth = 0
    private var closureCount = 0
    private var evalCount = 0
    /// Whether this is code given to `eval`, which runs inside another script.
    private let compilingEval: Bool
    /// The catch variable's slot while inside `catch (e) { … }`, for a bare `throw;`.
    private var catchSlot: Int?
    /// Variable names the code refers to; with `eval` or `name!()` it may reach any. A
    /// variable only ever read as `name.property` has those properties noted instead.
    private var referenced: Set<String> = []
    private var propertiesRead: [String: Set<String>] = [:]
    private var reachesAnyVariable = false

    init(source: String, engine: ScriptEngine, expressionOnly: Bool, scope: [String], constants: Set<String> = [],
         enclosing: [FunctionScope.Name]? = nil) throws(ScriptError) {
        hostConstants = constants
        compilingEval = enclosing != nil
        if let enclosing {
            // `eval` code sees the caller's variables the way a closure does.
            let outer = FunctionScope(parent: nil, isClosure: false)
            outer.names = enclosing
            self.scope = FunctionScope(parent: outer, isClosure: true)
        } else {
            self.scope = FunctionScope(parent: nil, isClosure: false)
        }
        tokens = try Lexer.tokenize(source)
        self.engine = engine
        self.expressionOnly = expressionOnly
        hostScope = scope
    }

    // MARK: - Tokens

    private var current: LocatedToken { tokens[index] }
    private var token: Token { tokens[index].token }
    private var pos: ScriptPosition { tokens[index].position }
    private func peek(_ n: Int = 1) -> Token { tokens[min(index + n, tokens.count - 1)].token }

    private mutating func advance() { if index < tokens.count - 1 { index += 1 } }

    private func isSymbol(_ s: Symbol) -> Bool { token == .symbol(s) }
    private func isKeyword(_ k: Keyword) -> Bool { token == .keyword(k) }

    private mutating func accept(_ s: Symbol) -> Bool {
        if isSymbol(s) {
            advance()
            return true
        }
        return false
    }

    private mutating func accept(_ k: Keyword) -> Bool {
        if isKeyword(k) {
            advance()
            return true
        }
        return false
    }

    private mutating func expect(_ s: Symbol, _ context: String) throws(ScriptError) {
        guard accept(s) else { throw missing(s.rawValue, context) }
    }

    private func missing(_ what: String, _ context: String) -> ScriptError {
        fail("MissingToken", "Expecting '\(what)' \(context)")
    }

    private func fail(_ kind: String, _ message: String, at position: ScriptPosition? = nil) -> ScriptError {
        let p = position ?? pos
        if case .reservedWord(let w) = token, position == nil {
            return ScriptError(.parse, "Reserved", "Syntax error: '\(w)' is a reserved keyword", at: p)
        }
        if case .reservedSymbol(let w) = token, position == nil {
            return ScriptError(.parse, "Reserved", "Syntax error: '\(w)' is a reserved symbol", at: p)
        }
        return ScriptError(.parse, kind, "Syntax error: \(message)", at: p)
    }

    private mutating func identifier(_ context: String) throws(ScriptError) -> String {
        guard case .identifier(let name) = token else {
            if case .keyword(let k) = token {
                throw fail("Reserved", "'\(k.rawValue)' is a keyword and cannot be used \(context)")
            }
            throw fail("VariableExpected", "Expecting name \(context)")
        }
        advance()
        return name
    }

    // MARK: - Program

    mutating func parseProgram() throws(ScriptError) -> CompiledScript {
        for name in hostScope {
            declare(name, constant: hostConstants.contains(name))
            scope.names[scope.names.count - 1].fromHost = true
        }
        var statements: [Node] = []
        if expressionOnly {
            let e = try expression()
            guard token == .eof else { throw fail("BadInput", "Unexpected '\(describe(token))' after the expression") }
            statements.append(e)
        } else {
            while token != .eof {
                if accept(.semicolon) { continue }
                let (s, needsTerminator) = try statement()
                if let s { statements.append(s) }
                if needsTerminator, token != .eof, !accept(.semicolon) {
                    throw missing(";", "to terminate this statement")
                }
            }
        }
        let main = ScriptFunction(name: "", params: [], receiverType: nil, body: BlockNode(statements, ScriptPosition(line: 1, column: 1)))
        main.frameSize = scope.slots
        main.isMain = true
        main.captureSlots = scope.captures.map(\.inner)
        link()
        var constants: [String: Int] = [:]
        for n in scope.names where n.constant { constants[n.name] = n.slot }
        let script = CompiledScript(engine: engine, main: main, functions: functions, scopeNames: hostScope, globalConstants: constants)
        script.enclosingCaptures = scope.captures.map(\.outer)
        script.topLevel = scope.names.map { ($0.name, $0.slot) }
        if !reachesAnyVariable { script.reads = .init(whole: referenced, properties: propertiesRead) }
        return script
    }

    private mutating func link() {
        for c in calls { c.script = functions[c.name]?[c.args.count].map { Unmanaged.passUnretained($0) } }
        for m in methodCalls { m.link(functions[m.name] ?? [:]) }
        for i in inTests { i.scriptContains = functions["contains"]?[2] }
        for c in scopedCalls where c.name != nil { c.script = functions[c.name!]?[c.args.count] }
    }

    @discardableResult
    private mutating func declare(_ name: String, constant: Bool) -> Int {
        let slot = scope.allocate()
        scope.names.append(.init(name: name, slot: slot, constant: constant))
        return slot
    }

    // MARK: - Statements

    /// A statement, and whether it needs a `;` (or the end of its block) after it.
    private mutating func statement() throws(ScriptError) -> (Node?, Bool) {
        let start = pos
        switch token {
        case .keyword(.let), .keyword(.const):
            let constant = isKeyword(.const)
            advance()
            let name = try identifier("for a variable")
            var value: Node?
            if accept(.assign) { value = try expression() }
            if constant, value == nil { value = LiteralNode(.unit, start) }
            let slot = declare(name, constant: constant)
            return (LetNode(slot: slot, value, start), true)
        case .keyword(.fn), .keyword(.private):
            try functionDefinition()
            return (nil, false)
        case .keyword(.break), .keyword(.continue):
            let isBreak = isKeyword(.break)
            guard scope.loops > 0 else { throw fail("LoopBreak", "'\(isBreak ? "break" : "continue")' must be inside a loop") }
            advance()
            var value: Node?
            if isBreak, !endsStatement { value = try expression() }
            return (JumpNode(isBreak ? .breakLoop : .continueLoop, value, start), true)
        case .keyword(.return):
            advance()
            let value = endsStatement ? nil : try expression()
            return (JumpNode(.returnValue, value, start), true)
        case .keyword(.throw):
            advance()
            if endsStatement, let catchSlot { return (RethrowNode(slot: catchSlot, start), true) }
            let value = endsStatement ? nil : try expression()
            return (JumpNode(.throwValue, value, start), true)
        case .keyword(.import), .keyword(.export):
            throw fail("BadInput", "modules are not available in Sluice scripts")
        default:
            let blockLike = startsBlockStatement
            let e = try expression()
            if let kind = assignment {
                advance()
                guard e.isLValue else { throw fail("AssignmentToInvalidLHS", "Cannot assign to this expression", at: e.pos) }
                if let v = e as? VariableNode, v.constant, scope.lookup(v.name)?.fromHost != true {
                    throw fail("AssignmentToConstant", "Cannot assign to constant '\(v.name)'", at: e.pos)
                }
                let value = try expression()
                switch kind {
                case .plain: return (AssignNode(e, nil, value, start), true)
                case .compound(let op): return (AssignNode(e, op, value, start), true)
                case .coalesce: return (AssignNode(e, nil, LogicNode(.coalesce, e, value, start), start), true)
                }
            }
            return (e, !(blockLike && previousIsRightBrace))
        }
    }

    private var previousIsRightBrace: Bool { index > 0 && tokens[index - 1].token == .symbol(.rightBrace) }

    private var startsBlockStatement: Bool {
        switch token {
        case .keyword(.if), .keyword(.switch), .keyword(.while), .keyword(.loop), .keyword(.do), .keyword(.for),
             .keyword(.try), .symbol(.leftBrace):
            return true
        default: return false
        }
    }

    private var endsStatement: Bool {
        token == .symbol(.semicolon) || token == .symbol(.rightBrace) || token == .eof
    }

    private enum Assignment {
        case plain, compound(BinaryOperator), coalesce
    }

    private var assignment: Assignment? {
        guard case .symbol(let s) = token else { return nil }
        switch s {
        case .assign: return .plain
        case .plusAssign: return .compound(.add)
        case .minusAssign: return .compound(.subtract)
        case .multiplyAssign: return .compound(.multiply)
        case .divideAssign: return .compound(.divide)
        case .moduloAssign: return .compound(.modulo)
        case .powerAssign: return .compound(.power)
        case .shiftLeftAssign: return .compound(.shiftLeft)
        case .shiftRightAssign: return .compound(.shiftRight)
        case .bitAndAssign: return .compound(.bitAnd)
        case .bitOrAssign: return .compound(.bitOr)
        case .xorAssign: return .compound(.xor)
        case .coalesceAssign: return .coalesce
        default: return nil
        }
    }

    private mutating func block() throws(ScriptError) -> Node {
        let start = pos
        try expect(.leftBrace, "to start a block")
        let mark = scope.names.count
        let evalsBefore = evalCount
        blockDepth += 1
        defer {
            blockDepth -= 1
            scope.names.removeLast(scope.names.count - mark)
        }
        var statements: [Node] = []
        while !isSymbol(.rightBrace) {
            if token == .eof { throw missing("}", "to end the block") }
            if accept(.semicolon) { continue }
            let (s, needsTerminator) = try statement()
            if let s { statements.append(s) }
            if needsTerminator, !isSymbol(.rightBrace), !accept(.semicolon) {
                throw missing(";", "to terminate this statement")
            }
        }
        advance()
        if expressionOnly, statements.count != 1 || statements[0] is LetNode || statements[0] is AssignNode {
            throw fail("BadInput", "An expression may only hold blocks of a single expression", at: start)
        }
        if evalCount > evalsBefore { return ScopedEvalBlockNode(statements, start) }
        return BlockNode(statements, start)
    }

    private mutating func functionDefinition() throws(ScriptError) {
        let start = pos
        if accept(Keyword.private) {}
        guard isKeyword(.fn) else { throw fail("MissingToken", "Expecting 'fn' after 'private'") }
        if inFunction || blockDepth > 0 || scope.isClosure {
            throw fail("WrongFnDefinition", "Functions can only be defined at global level")
        }
        advance()
        var name = try identifier("for a function")
        var receiverType: String?
        if accept(.dot) {
            receiverType = name
            name = try identifier("for a method")
        }
        try expect(.leftParen, "to start the parameter list")
        var params: [String] = []
        while !accept(.rightParen) {
            let p = try identifier("for a parameter")
            if params.contains(p) { throw fail("FnDuplicatedParam", "Duplicated parameter '\(p)' in function '\(name)'") }
            params.append(p)
            if !accept(.comma) {
                try expect(.rightParen, "to end the parameter list")
                break
            }
        }
        if functions[name]?[params.count] != nil {
            throw fail("FnDuplicatedDefinition", "Function '\(name)' with \(params.count) parameters is defined twice", at: start)
        }
        functionCount += 1
        if engine.limits.maxFunctions > 0, functionCount > engine.limits.maxFunctions {
            throw fail("TooManyFunctions", "Too many functions", at: start)
        }
        let outer = scope
        scope = FunctionScope(parent: nil, isClosure: false)
        inFunction = true
        defer {
            scope = outer
            inFunction = false
        }
        for p in params { declare(p, constant: false) }
        let body = try block()
        let f = ScriptFunction(name: name, params: params, receiverType: receiverType, body: body)
        f.frameSize = scope.slots
        functions[name, default: [:]][params.count] = f
    }

    // MARK: - Expressions

    private var maxDepth: Int {
        inFunction ? engine.limits.maxFunctionExpressionDepth : engine.limits.maxExpressionDepth
    }

    private mutating func expression() throws(ScriptError) -> Node {
        try binary(0)
    }

    private static func precedence(_ t: Token) -> (Int, BinaryOperator?)? {
        switch t {
        case .symbol(let s):
            switch s {
            case .or: return (30, nil)
            case .pipe: return (30, .bitOr)
            case .xor: return (30, .xor)
            case .and: return (60, nil)
            case .bitAnd: return (60, .bitAnd)
            case .equal: return (90, .equal)
            case .notEqual: return (90, .notEqual)
            case .notIn: return (110, nil)
            case .less: return (130, .less)
            case .lessOrEqual: return (130, .lessOrEqual)
            case .greater: return (130, .greater)
            case .greaterOrEqual: return (130, .greaterOrEqual)
            case .coalesce: return (135, nil)
            case .range, .inclusiveRange: return (140, nil)
            case .plus: return (150, .add)
            case .minus: return (150, .subtract)
            case .multiply: return (180, .multiply)
            case .divide: return (180, .divide)
            case .modulo: return (180, .modulo)
            case .power: return (190, .power)
            case .shiftLeft: return (210, .shiftLeft)
            case .shiftRight: return (210, .shiftRight)
            default: return nil
            }
        case .keyword(.in): return (110, nil)
        default: return nil
        }
    }

    private mutating func enter() throws(ScriptError) {
        depth += 1
        if maxDepth > 0, depth > maxDepth {
            throw fail("ExprTooDeep", "Expression exceeds maximum complexity")
        }
    }

    private mutating func binary(_ minimum: Int) throws(ScriptError) -> Node {
        try enter()
        defer { depth -= 1 }
        var left = try unary()
        var chain = 0
        while let (prec, op) = Parser.precedence(token), prec >= minimum {
            let t = token
            let at = pos
            advance()
            chain += 1
            if maxDepth > 0, depth + 1 + chain > maxDepth {
                throw fail("ExprTooDeep", "Expression exceeds maximum complexity", at: at)
            }
            let right: Node
            if (t == .symbol(.range) || t == .symbol(.inclusiveRange)) && isSymbol(.rightBracket) {
                right = LiteralNode(.int(.max), at)
            } else {
                right = try binary(t == .symbol(.power) ? prec : prec + 1)
            }
            switch t {
            case .symbol(.or): left = LogicNode(.or, left, right, at)
            case .symbol(.and): left = LogicNode(.and, left, right, at)
            case .symbol(.coalesce): left = LogicNode(.coalesce, left, right, at)
            case .keyword(.in), .symbol(.notIn):
                let test = InNode(left, right, negated: t == .symbol(.notIn), at)
                inTests.append(test)
                left = test
            case .symbol(.range), .symbol(.inclusiveRange):
                left = RangeNode(left, right, inclusive: t == .symbol(.inclusiveRange), at)
            default: left = BinaryNode(op!, left, right, at)
            }
        }
        return left
    }

    private mutating func unary() throws(ScriptError) -> Node {
        let start = pos
        switch token {
        case .symbol(.minus):
            advance()
            try enter()
            defer { depth -= 1 }
            let operand = try unary()
            if let lit = operand as? LiteralNode {
                if case .int(let i) = lit.value, i != .min { return LiteralNode(.int(-i), start) }
                if case .float(let f) = lit.value { return LiteralNode(.float(-f), start) }
            }
            return UnaryNode(.negate, operand, start)
        case .symbol(.plus):
            advance()
            try enter()
            defer { depth -= 1 }
            return UnaryNode(.plus, try unary(), start)
        case .symbol(.bang):
            advance()
            try enter()
            defer { depth -= 1 }
            return UnaryNode(.not, try unary(), start)
        default:
            return try postfix(try primary())
        }
    }

    private mutating func postfix(_ base: Node) throws(ScriptError) -> Node {
        var node = base
        // After a `?.` or `?[`, the rest of the chain short-circuits on `()` too.
        var chainIsElvis = false
        while true {
            let at = pos
            if isSymbol(.dot) || isSymbol(.elvis) {
                chainIsElvis = chainIsElvis || isSymbol(.elvis)
                let elvis = chainIsElvis
                advance()
                let name: String
                switch token {
                case .identifier(let n): name = n
                case .keyword(let k) where k == .this || k == .global: throw fail("PropertyExpected", "Expecting name of a property")
                default: throw fail("PropertyExpected", "Expecting name of a property")
                }
                advance()
                if isSymbol(.leftParen) {
                    let args = try arguments()
                    if name == "is_shared", args.isEmpty, let v = node as? VariableNode {
                        node = IsSharedNode(slot: v.slot, at)
                        continue
                    }
                    let call = MethodCallNode(node, name, args, elvis: elvis, native: engine.natives[name], at)
                    methodCalls.append(call)
                    node = call
                } else {
                    node = PropertyNode(node, name, elvis: elvis, at)
                }
            } else if isSymbol(.leftBracket) || isSymbol(.elvisIndex) {
                chainIsElvis = chainIsElvis || isSymbol(.elvisIndex)
                let elvis = chainIsElvis
                advance()
                if isSymbol(.rightBracket) { throw fail("MalformedIndexExpr", "Expecting an index") }
                let i: Node
                if isSymbol(.range) || isSymbol(.inclusiveRange) {
                    // `[..n]`, `[..=n]`, `[..]`
                    let inclusive = isSymbol(.inclusiveRange)
                    let rangePos = pos
                    advance()
                    let end: Node = isSymbol(.rightBracket) ? LiteralNode(.int(.max), rangePos) : try expression()
                    i = RangeNode(LiteralNode(.int(0), rangePos), end, inclusive: inclusive, rangePos)
                } else {
                    i = try expression()
                }
                try checkIndex(container: node, index: i)
                try expect(.rightBracket, "to end the index")
                node = IndexNode(node, i, elvis: elvis, at)
            } else {
                return node
            }
        }
    }

    /// Rhai rejects, at parse time, an index that can never fit a literal container.
    private func checkIndex(container: Node, index: Node) throws(ScriptError) {
        let isLogic = (index as? LogicNode).map { $0.kind != .coalesce } ?? false
        let literal = (index as? LiteralNode)?.value
        var bad = false
        switch literal {
        case .int?, .string?, .char?, .range?, nil: break
        default: bad = true
        }
        if container is ArrayNode {
            if isLogic { bad = true }
            switch literal {
            case .string?, .char?: bad = true
            default: break
            }
        } else if container is MapNode {
            if isLogic { bad = true }
            switch literal {
            case .int?, .char?: bad = true
            default: break
            }
        }
        if bad { throw fail("MalformedIndexExpr", "This value cannot index that container", at: index.pos) }
    }

    private mutating func arguments() throws(ScriptError) -> [Node] {
        try expect(.leftParen, "for the arguments")
        var args: [Node] = []
        while !accept(.rightParen) {
            args.append(try expression())
            if !accept(.comma) {
                try expect(.rightParen, "to end the arguments")
                break
            }
        }
        return args
    }

    private func describe(_ t: Token) -> String {
        switch t {
        case .int(let i): return String(i)
        case .float(let f): return String(f)
        case .string(let s): return "\"\(s)\""
        case .char(let c): return "'\(c)'"
        case .interpolated: return "`…`"
        case .identifier(let s), .reservedWord(let s), .reservedSymbol(let s): return s
        case .keyword(let k): return k.rawValue
        case .symbol(let s): return s.rawValue
        case .eof: return "end of script"
        }
    }

    private mutating func primary() throws(ScriptError) -> Node {
        let start = pos
        switch token {
        case .int(let i):
            advance()
            return LiteralNode(.int(i), start)
        case .float(let f):
            advance()
            return LiteralNode(.float(f), start)
        case .string(let s):
            if engine.limits.maxStringSize > 0, s.utf8.count > engine.limits.maxStringSize {
                throw fail("LiteralTooLarge", "Length of string literal exceeds the maximum limit (\(engine.limits.maxStringSize))")
            }
            advance()
            return LiteralNode(.string(s), start)
        case .char(let c):
            advance()
            return LiteralNode(.char(c), start)
        case .interpolated(let parts):
            advance()
            return try interpolation(parts, start)
        case .keyword(.true), .keyword(.false):
            let b = isKeyword(.true)
            advance()
            return LiteralNode(.bool(b), start)
        case .keyword(.this):
            advance()
            return ThisNode(start)
        case .keyword(.global):
            advance()
            try expect(.doubleColon, "after 'global'")
            let name = try identifier("after 'global::'")
            return GlobalConstantNode(name, start)
        case .keyword(.if): return try ifExpression()
        case .keyword(.switch): return try switchExpression()
        case .keyword(.while), .keyword(.loop), .keyword(.do), .keyword(.for):
            if expressionOnly { throw fail("BadInput", "Loops are statements, not allowed in an expression") }
            return isKeyword(.for) ? try forExpression() : try loopExpression()
        case .symbol(.range), .symbol(.inclusiveRange):
            // `..n`, `..=n`, `..`: a range from 0.
            let inclusive = isSymbol(.inclusiveRange)
            advance()
            let end: Node = isSymbol(.rightBracket) || isSymbol(.rightParen) || isSymbol(.comma)
                ? LiteralNode(.int(.max), start) : try binary(141)
            return RangeNode(LiteralNode(.int(0), start), end, inclusive: inclusive, start)
        case .keyword(.try): return try tryExpression()
        case .keyword(.fn):
            throw fail("WrongFnDefinition", "Functions can only be defined at global level")
        case .keyword(.break), .keyword(.continue), .keyword(.return), .keyword(.throw):
            if expressionOnly { throw fail("BadInput", "'\(describe(token))' is a statement, not allowed in an expression") }
            return try statement().0!
        case .symbol(.leftBrace):
            if expressionOnly { throw fail("BadInput", "Statement blocks are not allowed in an expression") }
            return try block()
        case .symbol(.leftParen):
            advance()
            if isSymbol(.rightParen) {
                // `()` is the unit value only when written without a space.
                guard pos.line == start.line, pos.column == start.column + 1 else {
                    throw fail("BadInput", "Expecting an expression inside the parentheses")
                }
                advance()
                return LiteralNode(.unit, start)
            }
            try enter()
            defer { depth -= 1 }
            let e = try expression()
            try expect(.rightParen, "to close the parenthesis")
            return e
        case .symbol(.leftBracket):
            advance()
            var items: [Node] = []
            while !accept(.rightBracket) {
                items.append(try expression())
                if !accept(.comma) {
                    try expect(.rightBracket, "to end the array literal")
                    break
                }
            }
            if engine.limits.maxArraySize > 0, items.count > engine.limits.maxArraySize {
                throw fail("LiteralTooLarge", "Size of array literal exceeds the maximum limit (\(engine.limits.maxArraySize))", at: start)
            }
            return ArrayNode(items, start)
        case .symbol(.mapStart):
            advance()
            var entries: [(String, Node)] = []
            var seen: Set<String> = []
            while !accept(.rightBrace) {
                let key: String
                switch token {
                case .identifier(let k), .string(let k): key = k
                case .keyword(let k): key = k.rawValue
                case .interpolated: throw fail("PropertyExpected", "An interpolated string cannot be a property name")
                default: throw fail("PropertyExpected", "Expecting a property name")
                }
                let keyPos = pos
                advance()
                if !seen.insert(key).inserted { throw fail("DuplicatedProperty", "Duplicated property '\(key)'", at: keyPos) }
                try expect(.colon, "after the property name")
                entries.append((key, try expression()))
                if !accept(.comma) {
                    try expect(.rightBrace, "to end the object map")
                    break
                }
            }
            if engine.limits.maxMapSize > 0, entries.count > engine.limits.maxMapSize {
                throw fail("LiteralTooLarge", "Number of properties in object map literal exceeds the maximum limit (\(engine.limits.maxMapSize))", at: start)
            }
            return MapNode(entries, start)
        case .symbol(.pipe), .symbol(.or):
            return try closure()
        case .identifier(let name):
            advance()
            if isSymbol(.leftParen) { return try call(name, start) }
            if isSymbol(.bang), peek() == .symbol(.leftParen) {
                advance()
                return try scopedCall(name, start)
            }
            if isSymbol(.doubleColon) {
                var path = name
                while accept(.doubleColon) { path += "::" + (try identifier("in a module path")) }
                if isSymbol(.leftParen) { _ = try arguments() }
                return ModulePathNode(path, start)
            }
            if let n = scope.lookup(name) {
                if isSymbol(.dot), case .identifier(let property) = peek(), peek(2) != .symbol(.leftParen) {
                    propertiesRead[name, default: []].insert(property)
                } else {
                    referenced.insert(name)
                }
                if scope.hasEval { return EvalVariableNode(name, slot: n.slot, constant: n.constant, start) }
                return VariableNode(name, slot: n.slot, constant: n.constant, start)
            }
            return UnresolvedNameNode(name, start)
        case .reservedWord("null") where engine.nullIsUnit:
            advance()
            return LiteralNode(.unit, start)
        case .eof:
            throw fail("UnexpectedEOF", "Script is incomplete")
        default:
            throw fail("BadInput", "Unexpected '\(describe(token))'")
        }
    }

    private mutating func call(_ name: String, _ start: ScriptPosition) throws(ScriptError) -> Node {
        let args = try arguments()
        switch name {
        case "is_shared" where args.count == 1:
            if let v = args[0] as? VariableNode { return IsSharedNode(slot: v.slot, start) }
            return IsSharedNode(slot: nil, start)
        case "is_def_var" where args.count == 1:
            if let lit = args[0] as? LiteralNode, case .string(let n) = lit.value {
                return LiteralNode(.bool(scope.lookup(n) != nil), start)
            }
        case "eval" where args.count == 1:
            reachesAnyVariable = true
            let visible = scope.visible
            scope.hasEval = true
            evalCount += 1
            return EvalNode(args[0], visible: visible, start)
        default: break
        }
        if scope.lookup(name) != nil { referenced.insert(name) }
        let node = CallNode(name, args, native: engine.natives[name], variableSlot: scope.lookup(name)?.slot,
                            lateBound: compilingEval, start)
        calls.append(node)
        return node
    }

    /// `name!(args)` or `call!(fp, args)`: the function runs inside this scope.
    private mutating func scopedCall(_ name: String, _ start: ScriptPosition) throws(ScriptError) -> Node {
        let args = try arguments()
        if name == "call", args.isEmpty { throw fail("FnMissingParams", "call!() needs a function pointer", at: start) }
        var visible: [String: Int] = [:]
        reachesAnyVariable = true
        for n in scope.visible { visible[n.name] = n.slot }
        let node = ScopedCallNode(name == "call" ? nil : name, args, visible: visible, start)
        scopedCalls.append(node)
        return node
    }

    private mutating func interpolation(_ parts: [InterpolationPart], _ start: ScriptPosition) throws(ScriptError) -> Node {
        var nodes: [Node] = []
        for part in parts {
            switch part {
            case .text(let t):
                if engine.limits.maxStringSize > 0, t.utf8.count > engine.limits.maxStringSize {
                    throw fail("LiteralTooLarge", "Length of string literal exceeds the maximum limit (\(engine.limits.maxStringSize))", at: start)
                }
                nodes.append(LiteralNode(.string(t), start))
            case .code(let code, let at):
                var inner = try Lexer.tokenize(code)
                for k in inner.indices {
                    let p = inner[k].position
                    inner[k].position = ScriptPosition(line: at.line + p.line - 1, column: p.line == 1 ? at.column + p.column - 1 : p.column)
                }
                let savedTokens = tokens, savedIndex = index
                tokens = inner
                index = 0
                defer {
                    tokens = savedTokens
                    index = savedIndex
                }
                var statements: [Node] = []
                blockDepth += 1
                defer { blockDepth -= 1 }
                while token != .eof {
                    if accept(.semicolon) { continue }
                    let (s, needsTerminator) = try statement()
                    if let s { statements.append(s) }
                    if needsTerminator, token != .eof, !accept(.semicolon) { throw missing(";", "to terminate this statement") }
                }
                nodes.append(statements.count == 1 ? statements[0] : BlockNode(statements, at))
            }
        }
        return InterpolatedNode(nodes, start)
    }

    private mutating func closure() throws(ScriptError) -> Node {
        let start = pos
        var params: [String] = []
        if accept(.or) {
            // `||`: no parameters.
        } else {
            try expect(.pipe, "to start the closure parameters")
            while !accept(.pipe) {
                let p = try identifier("for a closure parameter")
                if params.contains(p) { throw fail("FnDuplicatedParam", "Duplicated parameter '\(p)' in closure") }
                params.append(p)
                if !accept(.comma) {
                    try expect(.pipe, "to end the closure parameters")
                    break
                }
            }
        }
        let outer = scope
        scope = FunctionScope(parent: outer, isClosure: true)
        let savedCatch = catchSlot
        catchSlot = nil
        defer {
            scope = outer
            catchSlot = savedCatch
        }
        for p in params { declare(p, constant: false) }
        let body: Node
        if isSymbol(.leftBrace) {
            body = try block()
        } else {
            body = try statement().0 ?? LiteralNode(.unit, start)
        }
        closureCount += 1
        let f = ScriptFunction(name: "anon$\(start.line)_\(start.column)_\(closureCount)", params: params, receiverType: nil, body: body)
        f.frameSize = scope.slots
        f.captureSlots = scope.captures.map(\.inner)
        return ClosureNode(f, captures: scope.captures.map(\.outer), start)
    }

    private mutating func condition() throws(ScriptError) -> Node {
        let c = try expression()
        if assignment != nil {
            throw fail("BadInput", "An assignment cannot be a condition (use '==')")
        }
        return c
    }

    private mutating func ifExpression() throws(ScriptError) -> Node {
        let start = pos
        advance()
        let c = try condition()
        let then = try block()
        var otherwise: Node?
        if accept(Keyword.else) {
            otherwise = isKeyword(.if) ? try ifExpression() : try block()
        }
        return IfNode(c, then, otherwise, start)
    }

    private mutating func loopBody() throws(ScriptError) -> Node {
        scope.loops += 1
        defer { scope.loops -= 1 }
        return try block()
    }

    private mutating func loopExpression() throws(ScriptError) -> Node {
        let start = pos
        if accept(Keyword.loop) { return WhileNode(.loop, nil, try loopBody(), start) }
        if accept(Keyword.while) {
            let c = try condition()
            return WhileNode(.whileTrue, c, try loopBody(), start)
        }
        advance() // do
        let body = try loopBody()
        let until: Bool
        if accept(Keyword.while) { until = false } else if accept(Keyword.until) { until = true } else {
            throw missing("while' or 'until", "after the 'do' block")
        }
        let c = try condition()
        return WhileNode(until ? .doUntil : .doWhile, c, body, start)
    }

    private mutating func forExpression() throws(ScriptError) -> Node {
        let start = pos
        advance()
        var name: String
        var counter: String?
        if accept(.leftParen) {
            name = try identifier("for the loop variable")
            try expect(.comma, "between the loop variable and the counter")
            counter = try identifier("for the loop counter")
            try expect(.rightParen, "after the loop counter")
        } else {
            name = try identifier("for the loop variable")
        }
        guard accept(Keyword.in) else { throw missing("in", "after the loop variable") }
        let source = try expression()
        let mark = scope.names.count
        defer { scope.names.removeLast(scope.names.count - mark) }
        let slot = declare(name, constant: false)
        let counterSlot = counter.map { declare($0, constant: false) }
        let body = try loopBody()
        return ForNode(slot: slot, counterSlot: counterSlot, source, body, start)
    }

    private mutating func tryExpression() throws(ScriptError) -> Node {
        let start = pos
        advance()
        let body = try block()
        guard accept(Keyword.catch) else { throw missing("catch", "after the 'try' block") }
        let mark = scope.names.count
        defer { scope.names.removeLast(scope.names.count - mark) }
        var slot: Int?
        if accept(.leftParen) {
            slot = declare(try identifier("for the caught error"), constant: false)
            try expect(.rightParen, "after the caught error")
        }
        let savedCatch = catchSlot
        catchSlot = slot
        defer { catchSlot = savedCatch }
        let handler = try block()
        return TryNode(body, errorSlot: slot, handler, start)
    }

    private mutating func switchExpression() throws(ScriptError) -> Node {
        let start = pos
        advance()
        let subject = try expression()
        try expect(.leftBrace, "to start the switch cases")
        var cases: [SwitchNode.Case] = []
        var ranges: [SwitchNode.RangeCase] = []
        var fallback: Node?
        while !accept(.rightBrace) {
            if token == .eof { throw missing("}", "to end the switch") }
            if fallback != nil { throw fail("WrongSwitchDefaultCase", "The default case must be the last one") }
            var values: [Dynamic] = []
            var range: (Int64, Int64, Bool)?
            var isDefault = false
            if case .identifier("_") = token {
                advance()
                isDefault = true
            } else {
                repeat {
                    let patternPos = pos
                    let p = try binary(31)
                    if let r = p as? RangeNode, let a = (r.from as? LiteralNode)?.value, let b = (r.to as? LiteralNode)?.value,
                       case .int(let i) = a, case .int(let j) = b {
                        range = (i, j, r.inclusive)
                    } else if let lit = constantValue(p) {
                        if case .interpolated = tokens[max(0, index - 1)].token {
                            throw fail("BadInput", "An interpolated string cannot be a switch case", at: patternPos)
                        }
                        if !ranges.isEmpty, lit.typeName == "i64" || lit.typeName == "f64" {
                            throw fail("WrongSwitchIntegerCase", "Integer cases must come before range cases", at: patternPos)
                        }
                        values.append(lit)
                    } else {
                        throw fail("ExprExpected", "A switch case must be a constant", at: patternPos)
                    }
                } while accept(.pipe)
            }
            var guardNode: Node?
            if accept(Keyword.if) {
                if isDefault { throw fail("WrongSwitchCaseCondition", "The default case cannot have a condition") }
                guardNode = try expression()
            }
            try expect(.arrow, "after the switch case")
            let bodyIsBlock = isSymbol(.leftBrace)
            let body = try expression()
            if isDefault {
                fallback = body
            } else if let (a, b, inclusive) = range {
                ranges.append(.init(from: a, to: b, inclusive: inclusive, condition: guardNode, body: body))
            } else {
                cases.append(.init(values: values, condition: guardNode, body: body))
            }
            if !accept(.comma), !isSymbol(.rightBrace), !bodyIsBlock {
                throw missing(",", "between switch cases")
            }
        }
        return SwitchNode(subject, cases: cases, ranges: ranges, fallback: fallback, start)
    }

    /// The value of a constant expression (literals, and arrays and maps of them).
    private func constantValue(_ node: Node) -> Dynamic? {
        if let lit = node as? LiteralNode { return lit.value }
        if let a = node as? ArrayNode {
            var items: [Dynamic] = []
            for i in a.items {
                guard let v = constantValue(i) else { return nil }
                items.append(v)
            }
            return .array(items)
        }
        if let m = node as? MapNode {
            var map: [String: Dynamic] = [:]
            for (k, n) in m.entries {
                guard let v = constantValue(n) else { return nil }
                map[k] = v
            }
            return .map(map)
        }
        return nil
    }
}
