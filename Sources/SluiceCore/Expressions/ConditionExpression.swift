import OrderedCollections

/// A task's `when:` condition: an expression in a subset of Rhai syntax, compiled once and then
/// evaluated against each event.
///
/// The subset behaves as Rhai does, so that conditions written today keep their meaning when a full
/// Rhai interpreter takes over:
///
/// - literals: integers (`1_000`, `0xff`, `0o17`, `0b101`), floats (`1.5`, `1e3`, `2.5e-3`),
///   strings (`"..."` with `\n \t \r \\ \" \'` and `\uXXXX`), characters (`'a'`, a one-character
///   string here), `true`, `false`, `()` (the unit value, `Value.null`), arrays `[1, 2]` and object
///   maps `#{a: 1, "b c": 2}`;
/// - variables, looked up in the object passed to `evaluate`; property access `a.b`, indexing
///   `a[0]`, `a[-1]` (from the end), `a["key"]`, and the short-circuiting `a?.b`, `a?[0]`;
/// - operators, loosest first, all left-associative except `**`:
///   `||`; `&&`; `==` `!=`; `in` `!in`; `<` `<=` `>` `>=`; `??`; `+` `-`; `*` `/` `%`; `**`;
///   prefix `!` `-` `+`; postfix `.` `?.` `[]` `?[]` and method calls;
/// - methods (also callable as functions, `len(x)`): `len`, `is_empty`, `contains`, `starts_with`,
///   `ends_with`, `to_lower`, `to_upper`.
///
/// As in Rhai there is no truthiness (`&&`, `||` and `!` need bools), integer arithmetic that
/// overflows is an error, a missing object property reads as `()`, and comparing values of
/// different types gives `false` (`true` for `!=`) rather than an error.
public struct ConditionExpression: Sendable {
    /// The longest source accepted, in Unicode scalars.
    public static let maxSourceLength = 10_000
    /// How deeply parentheses, brackets, argument lists and prefix operators may nest.
    public static let maxNestingDepth = 64

    /// The condition as written.
    public let source: String
    private let root: Node

    /// Compiles `source`. Throws a `ParseError` with the line and column of the first problem.
    public init(_ source: String) throws(ConditionExpression.ParseError) {
        var parser = try Parser(source: source)
        self.root = try parser.parseCondition()
        self.source = source
    }

    /// Evaluates the expression with `variables` as its top-level names (`event`, ...).
    public func evaluate(_ variables: Value.Object) throws(ConditionExpression.EvaluationError) -> Value {
        try Evaluator(variables: variables).evaluate(root)
    }

    /// True when the expression evaluates to `true`, false when it evaluates to `false`. Any other
    /// result is an error: like Rhai, conditions have no truthiness.
    public func isSatisfied(by variables: Value.Object) throws(EvaluationError) -> Bool {
        let result = try evaluate(variables)
        guard case .bool(let satisfied) = result else {
            throw EvaluationError(
                "the condition must produce a bool (true or false), but it produced \(describe(result))")
        }
        return satisfied
    }
}

extension ConditionExpression: Hashable, CustomStringConvertible {
    public static func == (lhs: ConditionExpression, rhs: ConditionExpression) -> Bool { lhs.source == rhs.source }
    public func hash(into hasher: inout Hasher) { hasher.combine(source) }
    public var description: String { source }
}

// MARK: - Errors

extension ConditionExpression {
    /// The source is not a valid condition. `message` says what and where
    /// (`expected ')' at column 14`); `line` and `column` are 1-based and count Unicode scalars.
    public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        public let message: String
        /// The line of the problem; 1 unless the source spans several lines.
        public let line: Int
        /// The column of the problem within its line.
        public let column: Int

        init(_ what: String, hint: String? = nil, at offset: Int, in scalars: [Unicode.Scalar]) {
            (line, column) = Self.position(of: offset, in: scalars)
            self.message = "\(what) at \(Self.place(line: line, column: column))" + (hint.map { " (\($0))" } ?? "")
        }

        static func position(of offset: Int, in scalars: [Unicode.Scalar]) -> (line: Int, column: Int) {
            var line = 1
            var lineStart = 0
            for i in 0..<min(offset, scalars.count) where scalars[i] == "\n" {
                line += 1
                lineStart = i + 1
            }
            return (line, offset - lineStart + 1)
        }

        static func place(line: Int, column: Int) -> String {
            line == 1 ? "column \(column)" : "line \(line), column \(column)"
        }

        public var description: String { message }
    }

    /// Evaluating the condition failed: an unknown variable, a type mismatch, an integer overflow...
    public struct EvaluationError: Error, Sendable, Hashable, CustomStringConvertible {
        public let message: String

        public init(_ message: String) { self.message = message }

        public var description: String { message }
    }
}

// MARK: - Syntax tree

private indirect enum Node: Sendable {
    case literal(Value)
    case variable(String)
    case array([Node])
    case object([ObjectMember])
    /// Prefix operators in source order, applied innermost (last) first.
    case unary([UnaryOperator], Node)
    /// Operands joined by binary operators, in postfix order (see `Step`).
    case expression([Step])
    /// A base followed by property, index and method steps.
    case access(Node, [AccessStep])
    /// `name(args...)`: a method called with its receiver as the first argument.
    case call(String, [Node])
}

private struct ObjectMember: Sendable {
    let key: String
    let value: Node
}

/// One step of a binary expression in postfix order, run on a stack of values. Grouping by
/// precedence happens when parsing; evaluation then needs no recursion between operators, so its
/// stack use grows only with parentheses and brackets, which the nesting limit bounds.
private enum Step: Sendable {
    /// Evaluates an operand and pushes it.
    case operand(Node)
    /// Pops the right and the left operand and pushes the result.
    case apply(BinaryOperator)
    /// `&&` or `||` with its left operand on top, which must be a bool: if it decides the result,
    /// jumps to `to` keeping it; otherwise pops it and the right operand follows.
    case shortCircuit(BinaryOperator, to: Int)
    /// The right operand of `&&` or `||` is on top and must be a bool.
    case checkBool(BinaryOperator)
    /// `??` with its left operand on top: unless it is `()`, jumps to `to` keeping it; otherwise
    /// pops it and the right operand follows.
    case coalesce(to: Int)
}

private enum AccessStep: Sendable {
    case property(String, optional: Bool)
    case index(Node, optional: Bool)
    case method(String, [Node], optional: Bool)
}

private enum UnaryOperator: Sendable {
    case not, negate, plus
}

private enum BinaryOperator: String, Sendable {
    case or = "||", and = "&&"
    case equal = "==", notEqual = "!="
    case `in` = "in", notIn = "!in"
    case less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
    case coalesce = "??"
    case add = "+", subtract = "-"
    case multiply = "*", divide = "/", remainder = "%"
    case power = "**"

    /// Precedence, loosest first (Rhai's 30, 60, 90, 110, 130, 135, 150, 180, 190). All levels
    /// associate to the left but `**`, which associates to the right.
    var level: Int {
        switch self {
        case .or: return 0
        case .and: return 1
        case .equal, .notEqual: return 2
        case .in, .notIn: return 3
        case .less, .lessOrEqual, .greater, .greaterOrEqual: return 4
        case .coalesce: return 5
        case .add, .subtract: return 6
        case .multiply, .divide, .remainder: return 7
        case .power: return 8
        }
    }
}

// MARK: - Tokens

private struct Token {
    enum Kind: Equatable {
        case int(Int64)
        case float(Double)
        case string(String)
        case char(String)
        case identifier(String)
        case symbol(String)
        case end
    }

    let kind: Kind
    /// Position of the first scalar, 0-based.
    let offset: Int
    let length: Int
}

private func isDigit(_ c: Unicode.Scalar) -> Bool { c.value >= 48 && c.value <= 57 }

private func isIdentifierStart(_ c: Unicode.Scalar) -> Bool {
    (c.value >= 65 && c.value <= 90) || (c.value >= 97 && c.value <= 122) || c == "_"
}

private func isIdentifierContinue(_ c: Unicode.Scalar) -> Bool { isIdentifierStart(c) || isDigit(c) }

private func hexValue(_ c: Unicode.Scalar) -> UInt32? {
    switch c.value {
    case 48...57: return c.value - 48
    case 65...70: return c.value - 55
    case 97...102: return c.value - 87
    default: return nil
    }
}

private struct Lexer {
    typealias ParseError = ConditionExpression.ParseError

    let scalars: [Unicode.Scalar]
    var pos = 0
    var tokens: [Token] = []

    init(scalars: [Unicode.Scalar]) { self.scalars = scalars }

    func peek(_ ahead: Int = 0) -> Unicode.Scalar? {
        let i = pos + ahead
        return i < scalars.count ? scalars[i] : nil
    }

    func error(_ what: String, hint: String? = nil, at offset: Int) -> ParseError {
        ParseError(what, hint: hint, at: offset, in: scalars)
    }

    mutating func tokenize() throws(ParseError) -> [Token] {
        while true {
            try skipSpaceAndComments()
            guard let c = peek() else { break }
            let start = pos
            if isDigit(c) {
                try lexNumber()
            } else if isIdentifierStart(c) {
                while let d = peek(), isIdentifierContinue(d) { pos += 1 }
                let name = String(String.UnicodeScalarView(scalars[start..<pos]))
                tokens.append(Token(kind: .identifier(name), offset: start, length: pos - start))
            } else if c == "\"" {
                let text = try lexQuoted(quote: "\"")
                tokens.append(Token(kind: .string(text), offset: start, length: pos - start))
            } else if c == "'" {
                let text = try lexQuoted(quote: "'")
                guard text.unicodeScalars.count == 1 else {
                    throw error(
                        "a character literal must hold exactly one character", hint: "use \"...\" for strings",
                        at: start)
                }
                tokens.append(Token(kind: .char(text), offset: start, length: pos - start))
            } else {
                try lexSymbol(c)
            }
        }
        tokens.append(Token(kind: .end, offset: scalars.count, length: 0))
        return tokens
    }

    mutating func skipSpaceAndComments() throws(ParseError) {
        while let c = peek() {
            if c.properties.isWhitespace {
                pos += 1
            } else if c == "/", peek(1) == "/" {
                while let d = peek(), d != "\n" { pos += 1 }
            } else if c == "/", peek(1) == "*" {
                // Block comments nest, as in Rhai.
                let start = pos
                var level = 0
                repeat {
                    guard let d = peek() else { throw error("unterminated comment starting", at: start) }
                    if d == "/", peek(1) == "*" {
                        level += 1
                        pos += 2
                    } else if d == "*", peek(1) == "/" {
                        level -= 1
                        pos += 2
                    } else {
                        pos += 1
                    }
                } while level > 0
            } else {
                return
            }
        }
    }

    mutating func add(_ symbol: String, length: Int) {
        tokens.append(Token(kind: .symbol(symbol), offset: pos, length: length))
        pos += length
    }

    mutating func lexSymbol(_ c: Unicode.Scalar) throws(ParseError) {
        let next = peek(1)
        switch c {
        case "(", ")", "[", "]", "{", "}", ",", ":", "+", "%":
            add(String(c), length: 1)
        case "-":
            add("-", length: 1)
        case "*":
            if next == "*" { add("**", length: 2) } else { add("*", length: 1) }
        case "/":
            add("/", length: 1)
        case "=":
            if next == "=" {
                if peek(2) == "=" {
                    throw error("unexpected token '==='", hint: "did you mean '=='?", at: pos)
                }
                add("==", length: 2)
            } else if next == ">" {
                throw error("unexpected token '=>'", hint: "did you mean '>='?", at: pos)
            } else {
                throw error(
                    "unexpected token '='", hint: "did you mean '=='? a condition cannot assign", at: pos)
            }
        case "!":
            if next == "=" {
                if peek(2) == "=" {
                    throw error("unexpected token '!=='", hint: "did you mean '!='?", at: pos)
                }
                add("!=", length: 2)
            } else if next == "i", peek(2) == "n", !(peek(3).map(isIdentifierContinue) ?? false) {
                add("!in", length: 3)
            } else {
                add("!", length: 1)
            }
        case "<":
            if next == "=" {
                add("<=", length: 2)
            } else if next == "<" {
                throw error("unexpected token '<<'", hint: "bit shifts are not supported in conditions", at: pos)
            } else if next == "-" {
                throw error(
                    "unexpected token '<-'", hint: "'<-' is reserved in Rhai; write '< -' to compare with a negative",
                    at: pos)
            } else {
                add("<", length: 1)
            }
        case ">":
            if next == "=" {
                add(">=", length: 2)
            } else if next == ">" {
                throw error("unexpected token '>>'", hint: "bit shifts are not supported in conditions", at: pos)
            } else {
                add(">", length: 1)
            }
        case "&":
            if next == "&" {
                add("&&", length: 2)
            } else {
                throw error("unexpected token '&'", hint: "did you mean '&&'?", at: pos)
            }
        case "|":
            if next == "|" {
                add("||", length: 2)
            } else {
                throw error("unexpected token '|'", hint: "did you mean '||'?", at: pos)
            }
        case "?":
            switch next {
            case "?": add("??", length: 2)
            case ".": add("?.", length: 2)
            case "[": add("?[", length: 2)
            default:
                throw error(
                    "unexpected token '?'", hint: "did you mean '??', '?.' or '?['? 'a ? b : c' is not Rhai",
                    at: pos)
            }
        case ".":
            if next == "." {
                throw error("unexpected token '..'", hint: "ranges are not supported in conditions", at: pos)
            }
            add(".", length: 1)
        case "#":
            if next == "{" {
                add("#{", length: 2)
            } else {
                throw error("unexpected token '#'", hint: "object map literals are written '#{ key: value }'", at: pos)
            }
        case "`":
            throw error("unexpected token '`'", hint: "back-quoted strings are not supported; use \"...\"", at: pos)
        case ";":
            throw error("unexpected token ';'", hint: "a condition is a single expression", at: pos)
        case "^":
            throw error(
                "unexpected token '^'", hint: "'^' is not supported in conditions; use '**' for powers", at: pos)
        default:
            throw error("unexpected character '\(c.escaped(asASCII: false))'", at: pos)
        }
    }

    mutating func lexNumber() throws(ParseError) {
        let start = pos
        if scalars[pos] == "0", let marker = peek(1), "xXoObB".unicodeScalars.contains(marker) {
            let radix: Int
            switch marker {
            case "x", "X": radix = 16
            case "o", "O": radix = 8
            default: radix = 2
            }
            pos += 2
            var digits = ""
            while let d = peek() {
                if d == "_" {
                    pos += 1
                } else if let v = hexValue(d), Int(v) < radix {
                    digits.unicodeScalars.append(d)
                    pos += 1
                } else {
                    break
                }
            }
            guard !digits.isEmpty else { throw error("malformed number", at: start) }
            guard let value = Int64(digits, radix: radix) else {
                throw error(
                    "integer literal is too large", hint: "the largest integer is 9223372036854775807", at: start)
            }
            tokens.append(Token(kind: .int(value), offset: start, length: pos - start))
            return
        }

        var text = ""
        var isFloat = false
        func digits(_ lexer: inout Lexer, into text: inout String) {
            while let d = lexer.peek(), isDigit(d) || d == "_" {
                if d != "_" { text.unicodeScalars.append(d) }
                lexer.pos += 1
            }
        }
        digits(&self, into: &text)
        if peek() == "." {
            // Rhai's rules: `1.5` and `1.` (before a symbol or the end) are floats; `1..`, `1._`
            // and `1.abs()` are not.
            let after = peek(1)
            if let a = after, isDigit(a) {
                isFloat = true
                text += "."
                pos += 1
                digits(&self, into: &text)
            } else if let a = after, a == "_" || a == "." || isIdentifierStart(a) {
                // not part of the number
            } else {
                isFloat = true
                text += ".0"
                pos += 1
            }
        }
        if peek() == "e" {
            if let a = peek(1), isDigit(a) {
                isFloat = true
                text += "e"
                pos += 1
                digits(&self, into: &text)
            } else if let sign = peek(1), sign == "+" || sign == "-" {
                guard let a = peek(2), isDigit(a) else { throw error("malformed number", at: start) }
                isFloat = true
                text += "e"
                text.unicodeScalars.append(sign)
                pos += 2
                digits(&self, into: &text)
            }
        }
        if isFloat {
            guard let value = Double(text), value.isFinite else {
                throw error("float literal is out of range", at: start)
            }
            tokens.append(Token(kind: .float(value), offset: start, length: pos - start))
        } else {
            guard let value = Int64(text) else {
                throw error(
                    "integer literal is too large", hint: "the largest integer is 9223372036854775807", at: start)
            }
            tokens.append(Token(kind: .int(value), offset: start, length: pos - start))
        }
    }

    /// Reads a string or character literal starting at its opening quote, returning its text.
    mutating func lexQuoted(quote: Unicode.Scalar) throws(ParseError) -> String {
        let start = pos
        let kind = quote == "\"" ? "string" : "character literal"
        pos += 1
        var text = ""
        while true {
            guard let c = peek() else { throw error("unterminated \(kind) starting", at: start) }
            if c == quote {
                pos += 1
                return text
            }
            if c == "\n" || c == "\r" {
                throw error("unterminated \(kind) starting", hint: "a string cannot span lines; write \\n", at: start)
            }
            guard c == "\\" else {
                text.unicodeScalars.append(c)
                pos += 1
                continue
            }
            guard let e = peek(1) else { throw error("unterminated \(kind) starting", at: start) }
            switch e {
            case "n": text += "\n"
            case "t": text += "\t"
            case "r": text += "\r"
            case "\\": text += "\\"
            case "\"": text += "\""
            case "'": text += "'"
            case "u":
                var code: UInt32 = 0
                for i in 2..<6 {
                    guard let h = peek(i), let v = hexValue(h) else {
                        throw error("malformed escape sequence", hint: "'\\u' takes exactly four hex digits", at: pos)
                    }
                    code = code * 16 + v
                }
                guard let scalar = Unicode.Scalar(code) else {
                    let hex = String(code, radix: 16, uppercase: true)
                    throw error("invalid unicode escape", hint: "U+\(hex) is not a character", at: pos)
                }
                text.unicodeScalars.append(scalar)
                pos += 4
            default:
                throw error(
                    "unknown escape sequence '\\\(e.escaped(asASCII: false))'",
                    hint: "supported: \\n \\t \\r \\\\ \\\" \\' \\uXXXX", at: pos)
            }
            pos += 2
        }
    }
}

// MARK: - Parser

/// Rhai keywords and reserved words, which cannot name a variable or a property.
private let reservedWords: Set<String> = [
    "true", "false", "let", "const", "if", "else", "switch", "do", "while", "until", "loop", "for", "in",
    "continue", "break", "return", "throw", "try", "catch", "fn", "private", "import", "export", "as",
    "global", "this", "public", "protected", "super", "new", "use", "module", "package", "var", "static",
    "shared", "with", "is", "goto", "exit", "match", "case", "default", "void", "null", "nil", "spawn",
    "thread", "go", "sync", "async", "await", "yield",
]

/// Rhai's built-in function keywords: they may be called, but not used as names.
private let functionKeywords: Set<String> = [
    "print", "debug", "type_of", "eval", "Fn", "call", "curry", "is_def_var", "is_def_fn", "is_shared",
]

private struct Parser {
    typealias ParseError = ConditionExpression.ParseError

    let scalars: [Unicode.Scalar]
    let tokens: [Token]
    var index = 0
    var depth = 0

    init(source: String) throws(ParseError) {
        var count = 0
        var scalars: [Unicode.Scalar] = []
        for scalar in source.unicodeScalars {
            count += 1
            if count > ConditionExpression.maxSourceLength {
                throw ParseError(
                    "the condition is too long", hint: "at most \(ConditionExpression.maxSourceLength) characters",
                    at: count - 1, in: scalars)
            }
            scalars.append(scalar)
        }
        self.scalars = scalars
        var lexer = Lexer(scalars: scalars)
        self.tokens = try lexer.tokenize()
    }

    var current: Token { tokens[index] }

    func isSymbol(_ symbol: String) -> Bool { current.kind == .symbol(symbol) }

    mutating func advance() { if index < tokens.count - 1 { index += 1 } }

    func text(of token: Token) -> String {
        if case .end = token.kind { return "the end of the condition" }
        let end = min(token.offset + token.length, scalars.count)
        var text = String(String.UnicodeScalarView(scalars[token.offset..<end]))
        if text.unicodeScalars.count > 30 { text = String(text.unicodeScalars.prefix(27)) + "..." }
        return "'\(text)'"
    }

    func error(_ what: String, hint: String? = nil, at token: Token) -> ParseError {
        ParseError(what, hint: hint, at: token.offset, in: scalars)
    }

    /// Enters one level of nesting at `token`, failing beyond the limit.
    mutating func enter(at token: Token) throws(ParseError) {
        depth += 1
        if depth > ConditionExpression.maxNestingDepth { throw nestingError(at: token) }
    }

    func nestingError(at token: Token) -> ParseError {
        error("the condition nests more than \(ConditionExpression.maxNestingDepth) levels deep", at: token)
    }

    mutating func expect(_ symbol: String, closing opener: Token? = nil) throws(ParseError) {
        guard isSymbol(symbol) else { throw expectedError(symbol, closing: opener) }
        advance()
    }

    func expectedError(_ symbol: String, closing opener: Token?) -> ParseError {
        let hint = opener.map { opener in
            let (line, column) = ParseError.position(of: opener.offset, in: scalars)
            return "to close the \(text(of: opener)) at \(ParseError.place(line: line, column: column))"
        }
        if case .end = current.kind { return error("expected '\(symbol)'", hint: hint, at: current) }
        return error("expected '\(symbol)' but found \(text(of: current))", hint: hint, at: current)
    }

    mutating func parseCondition() throws(ParseError) -> Node {
        if case .end = current.kind { throw error("the condition is empty", at: current) }
        let node = try parseExpression()
        if case .end = current.kind { return node }
        throw unexpectedAfterExpression()
    }

    func unexpectedAfterExpression() -> ParseError {
        switch current.kind {
        case .symbol(")"), .symbol("]"), .symbol("}"):
            return error("unexpected \(text(of: current))", hint: "it closes nothing", at: current)
        case .symbol("{"):
            return error("unexpected '{'", hint: "blocks are not supported in conditions", at: current)
        case .symbol("("):
            return error("unexpected '('", hint: "only methods and built-in functions can be called", at: current)
        case .identifier("and"):
            return error("unexpected 'and'", hint: "did you mean '&&'?", at: current)
        case .identifier("or"):
            return error("unexpected 'or'", hint: "did you mean '||'?", at: current)
        default:
            return error(
                "unexpected \(text(of: current))", hint: "expected an operator or the end of the condition", at: current)
        }
    }

    func binaryOperator() -> BinaryOperator? {
        switch current.kind {
        case .symbol(let s): return BinaryOperator(rawValue: s)
        case .identifier("in"): return .in
        default: return nil
        }
    }

    /// Parses a whole expression: a flat run of operands and binary operators, put in postfix
    /// order by precedence (shunting-yard), so that nesting costs stack only for parentheses and
    /// brackets.
    mutating func parseExpression() throws(ParseError) -> Node {
        let first = try parseUnary()
        guard binaryOperator() != nil else { return first }
        var steps: [Step] = [.operand(first)]
        var pending: [(op: BinaryOperator, jump: Int)] = []
        while let op = binaryOperator() {
            advance()
            // Complete the operators that bind at least as tightly (`**` binds to the right).
            while let top = pending.last, top.op.level > op.level || (top.op.level == op.level && op != .power) {
                pending.removeLast()
                Self.complete(top, in: &steps)
            }
            let jump = steps.count
            switch op {
            case .and, .or: steps.append(.shortCircuit(op, to: -1))
            case .coalesce: steps.append(.coalesce(to: -1))
            default: break
            }
            pending.append((op, jump))
            steps.append(.operand(try parseUnary()))
        }
        while let top = pending.popLast() { Self.complete(top, in: &steps) }
        return .expression(steps)
    }

    /// Emits the end of an operator whose right operand is complete.
    static func complete(_ entry: (op: BinaryOperator, jump: Int), in steps: inout [Step]) {
        switch entry.op {
        case .and, .or:
            steps.append(.checkBool(entry.op))
            steps[entry.jump] = .shortCircuit(entry.op, to: steps.count)
        case .coalesce:
            steps[entry.jump] = .coalesce(to: steps.count)
        default:
            steps.append(.apply(entry.op))
        }
    }

    // The functions from here on recurse for nested expressions. They keep their frames small
    // (messages are built in separate functions) so deep nesting needs little stack, even in
    // debug builds.

    mutating func parseUnary() throws(ParseError) -> Node {
        let outer = depth
        var ops: [UnaryOperator] = []
        while let op = unaryOperator() {
            ops.append(op)
            try enter(at: current)
            advance()
        }
        let operand = try parsePostfix()
        depth = outer
        return ops.isEmpty ? operand : .unary(ops, operand)
    }

    func unaryOperator() -> UnaryOperator? {
        switch current.kind {
        case .symbol("!"): return .not
        case .symbol("-"): return .negate
        case .symbol("+"): return .plus
        default: return nil
        }
    }

    mutating func parsePostfix() throws(ParseError) -> Node {
        let base = try parsePrimary()
        var steps: [AccessStep] = []
        while true {
            switch current.kind {
            case .symbol("."): steps.append(try parseMember(optional: false))
            case .symbol("?."): steps.append(try parseMember(optional: true))
            case .symbol("["): steps.append(try parseIndex(optional: false))
            case .symbol("?["): steps.append(try parseIndex(optional: true))
            default: return steps.isEmpty ? base : .access(base, steps)
            }
        }
    }

    /// Parses `.name` or `.name(args)`, the current token being the `.` or `?.`.
    mutating func parseMember(optional: Bool) throws(ParseError) -> AccessStep {
        advance()
        guard case .identifier(let name) = current.kind, !reservedWords.contains(name) else {
            throw memberNameError()
        }
        advance()
        guard isSymbol("(") else { return .property(name, optional: optional) }
        return .method(name, try parseArguments(), optional: optional)
    }

    /// Parses `[expr]`, the current token being the `[` or `?[`.
    mutating func parseIndex(optional: Bool) throws(ParseError) -> AccessStep {
        let opener = current
        advance()
        try enter(at: opener)
        let index = try parseExpression()
        try expect("]", closing: opener)
        depth -= 1
        return .index(index, optional: optional)
    }

    /// Parses `(expr, ...)`, the current token being the `(`.
    mutating func parseArguments() throws(ParseError) -> [Node] {
        let opener = current
        advance()
        try enter(at: opener)
        var arguments: [Node] = []
        if !isSymbol(")") {
            while true {
                arguments.append(try parseExpression())
                guard isSymbol(",") else { break }
                advance()
            }
        }
        try expect(")", closing: opener)
        depth -= 1
        return arguments
    }

    mutating func parsePrimary() throws(ParseError) -> Node {
        let token = current
        switch token.kind {
        case .int(let v):
            advance()
            return .literal(.int(v))
        case .float(let v):
            advance()
            return .literal(.double(v))
        case .string(let s), .char(let s):
            advance()
            return .literal(.string(s))
        case .identifier(let name):
            return try parseName(name)
        case .symbol("("):
            return try parseParenthesized()
        case .symbol("["):
            return try parseArrayLiteral()
        case .symbol("#{"):
            return try parseObjectLiteral()
        default:
            throw valueExpectedError()
        }
    }

    /// Parses a literal keyword, a variable or a function call.
    mutating func parseName(_ name: String) throws(ParseError) -> Node {
        switch name {
        case "true":
            advance()
            return .literal(.bool(true))
        case "false":
            advance()
            return .literal(.bool(false))
        default:
            if reservedWords.contains(name) { throw reservedWordError(name) }
            let token = current
            advance()
            if isSymbol("(") { return .call(name, try parseArguments()) }
            if functionKeywords.contains(name) { throw functionKeywordError(name, at: token) }
            return .variable(name)
        }
    }

    /// Parses `()` or `(expr)`, the current token being the `(`.
    mutating func parseParenthesized() throws(ParseError) -> Node {
        let opener = current
        advance()
        if isSymbol(")") {
            advance()
            return .literal(.null)
        }
        try enter(at: opener)
        let inner = try parseExpression()
        try expect(")", closing: opener)
        depth -= 1
        return inner
    }

    /// Parses `[a, b, ...]` (a trailing comma allowed), the current token being the `[`.
    mutating func parseArrayLiteral() throws(ParseError) -> Node {
        var elements: [Node] = []
        try parseList(closedBy: "]") { (parser: inout Parser) throws(ParseError) in elements.append(try parser.parseExpression()) }
        return .array(elements)
    }

    /// Parses `#{key: value, "key": value, ...}`, the current token being the `#{`.
    mutating func parseObjectLiteral() throws(ParseError) -> Node {
        var members: [ObjectMember] = []
        var seen: Set<String> = []
        try parseList(closedBy: "}") { (parser: inout Parser) throws(ParseError) in
            let key = try parser.parsePropertyName()
            guard seen.insert(key.name).inserted else { throw parser.duplicatePropertyError(key.name, at: key.token) }
            members.append(ObjectMember(key: key.name, value: try parser.parseExpression()))
        }
        return .object(members)
    }

    /// Parses items separated by commas (a trailing comma allowed) up to `closer`, the current
    /// token being the opening bracket.
    mutating func parseList(closedBy closer: String, _ item: (inout Parser) throws(ParseError) -> Void) throws(ParseError) {
        let opener = current
        advance()
        try enter(at: opener)
        defer { depth -= 1 }
        while !isSymbol(closer) {
            try item(&self)
            guard isSymbol(",") else {
                try expect(closer, closing: opener)
                return
            }
            advance()
        }
        advance()
    }

    /// Parses `name:` or `"name":` in an object map literal.
    mutating func parsePropertyName() throws(ParseError) -> (name: String, token: Token) {
        let token = current
        let name: String
        switch token.kind {
        case .identifier(let identifier): name = identifier
        case .string(let s): name = s
        default: throw error("expected a property name but found \(text(of: token))", at: token)
        }
        advance()
        try expect(":")
        return (name, token)
    }

    // MARK: Messages

    func memberNameError() -> ParseError {
        if case .identifier(let name) = current.kind {
            return error(
                "'\(name)' is a reserved word in Rhai", hint: "write [\"\(name)\"] to read a property of that name",
                at: current)
        }
        return error("expected a property or method name but found \(text(of: current))", at: current)
    }

    func reservedWordError(_ name: String) -> ParseError {
        switch name {
        case "null", "nil":
            return error(
                "'\(name)' is reserved in Rhai", hint: "write () for a missing value, as in 'x == ()'", at: current)
        case "in":
            return error("expected a value but found 'in'", at: current)
        default:
            return error(
                "'\(name)' is a reserved word in Rhai", hint: "a condition is a single expression", at: current)
        }
    }

    func functionKeywordError(_ name: String, at token: Token) -> ParseError {
        error("'\(name)' is a reserved word in Rhai", hint: "it can only be called, as in '\(name)(x)'", at: token)
    }

    func duplicatePropertyError(_ name: String, at token: Token) -> ParseError {
        error("duplicate property '\(name)' in an object map literal", at: token)
    }

    func valueExpectedError() -> ParseError {
        switch current.kind {
        case .symbol("{"):
            return error(
                "unexpected '{'", hint: "object maps are written '#{ key: value }'; blocks are not supported",
                at: current)
        case .end:
            return error("expected a value", hint: "the condition ends too early", at: current)
        default:
            return error("expected a value but found \(text(of: current))", at: current)
        }
    }
}

// MARK: - Evaluation

private typealias EvaluationError = ConditionExpression.EvaluationError

/// "an integer", "a string (\"x\")", ... for messages.
private func describe(_ value: Value) -> String {
    switch value {
    case .null: return "() (nothing)"
    case .bool(let b): return "a bool (\(b))"
    case .int(let i): return "an integer (\(i))"
    case .double(let d): return "a float (\(RhaiFormat.float(d)))"
    case .string(let s):
        let shown = s.unicodeScalars.count > 40 ? String(s.unicodeScalars.prefix(37)) + "..." : s
        return "a string (\"\(shown)\")"
    case .bytes: return "bytes"
    case .array: return "an array"
    case .object: return "an object"
    }
}

/// "integer", "string", ... for messages.
private func typeName(_ value: Value) -> String {
    switch value {
    case .null: return "()"
    case .bool: return "bool"
    case .int: return "integer"
    case .double: return "float"
    case .string: return "string"
    case .bytes: return "bytes"
    case .array: return "array"
    case .object: return "object"
    }
}

private struct Evaluator {
    // `evaluate` and the functions it calls recurse for nested expressions; like the parser they
    // keep their frames small by building messages elsewhere (`Failure`).

    let variables: Value.Object

    func evaluate(_ node: Node) throws(EvaluationError) -> Value {
        switch node {
        case .literal(let value): return value
        case .variable(let name): return try variable(name)
        case .array(let nodes): return try array(nodes)
        case .object(let members): return try object(members)
        case .unary(let ops, let operand): return try unary(ops, operand)
        case .expression(let steps): return try expression(steps)
        case .access(let base, let steps): return try access(base, steps)
        case .call(let name, let arguments): return try call(name, arguments)
        }
    }

    func variable(_ name: String) throws(EvaluationError) -> Value {
        guard let value = variables[name] else { throw Failure.undefinedVariable(name) }
        return value
    }

    func array(_ nodes: [Node]) throws(EvaluationError) -> Value {
        var elements: [Value] = []
        elements.reserveCapacity(nodes.count)
        for element in nodes { elements.append(try evaluate(element)) }
        return .array(elements)
    }

    func object(_ members: [ObjectMember]) throws(EvaluationError) -> Value {
        var object = Value.Object(minimumCapacity: members.count)
        for member in members { object[member.key] = try evaluate(member.value) }
        return .object(object)
    }

    func unary(_ ops: [UnaryOperator], _ operand: Node) throws(EvaluationError) -> Value {
        var value = try evaluate(operand)
        for op in ops.reversed() { value = try Operations.unary(op, value) }
        return value
    }

    func expression(_ steps: [Step]) throws(EvaluationError) -> Value {
        var stack: [Value] = []
        var pc = 0
        while pc < steps.count {
            switch steps[pc] {
            case .operand(let node):
                stack.append(try evaluate(node))
            case .apply(let op):
                guard let right = stack.popLast(), let left = stack.popLast() else { throw Failure.malformed() }
                stack.append(try Operations.binary(op, left, right))
            case .shortCircuit(let op, let target):
                guard case .bool(let left) = stack.last else { throw Failure.needsBools(op, left: stack.last) }
                if left == (op == .or) {  // true || ..., false && ...
                    pc = target
                    continue
                }
                stack.removeLast()
            case .checkBool(let op):
                guard case .bool = stack.last else { throw Failure.needsBools(op, right: stack.last) }
            case .coalesce(let target):
                guard case .null = stack.last else {
                    pc = target
                    continue
                }
                stack.removeLast()
            }
            pc += 1
        }
        guard stack.count == 1, let result = stack.last else { throw Failure.malformed() }
        return result
    }

    func access(_ base: Node, _ steps: [AccessStep]) throws(EvaluationError) -> Value {
        var value = try evaluate(base)
        for step in steps {
            switch step {
            case .property(let name, let optional):
                if case .object(let object) = value {
                    value = object[name] ?? .null
                } else if optional, case .null = value {
                    return .null  // `?.` short-circuits the rest of the chain
                } else {
                    throw Failure.noProperty(name, of: value)
                }
            case .index(let indexNode, let optional):
                if optional, case .null = value { return .null }
                let index = try evaluate(indexNode)
                value = try Operations.index(value, index)
            case .method(let name, let argumentNodes, let optional):
                if optional, case .null = value { return .null }
                let arguments = try values(argumentNodes)
                value = try Operations.call(name, on: value, with: arguments)
            }
        }
        return value
    }

    func call(_ name: String, _ argumentNodes: [Node]) throws(EvaluationError) -> Value {
        guard Method(rawValue: name) != nil else { throw Failure.unknownFunction(name) }
        var arguments = try values(argumentNodes)
        guard !arguments.isEmpty else { throw Failure.missingReceiver(name) }
        let receiver = arguments.removeFirst()
        return try Operations.call(name, on: receiver, with: arguments)
    }

    func values(_ nodes: [Node]) throws(EvaluationError) -> [Value] {
        var values: [Value] = []
        values.reserveCapacity(nodes.count)
        for node in nodes { values.append(try evaluate(node)) }
        return values
    }
}

/// Messages of evaluation errors raised on the recursive path.
private enum Failure {
    static func undefinedVariable(_ name: String) -> EvaluationError {
        EvaluationError("variable '\(name)' is not defined")
    }

    static func needsBools(_ op: BinaryOperator, left value: Value?) -> EvaluationError {
        EvaluationError("'\(op.rawValue)' needs bools, but its left side is \(describe(value ?? .null))")
    }

    static func needsBools(_ op: BinaryOperator, right value: Value?) -> EvaluationError {
        EvaluationError("'\(op.rawValue)' needs bools, but its right side is \(describe(value ?? .null))")
    }

    static func malformed() -> EvaluationError {
        EvaluationError("internal error: a malformed expression")
    }

    static func noProperty(_ name: String, of value: Value) -> EvaluationError {
        if case .null = value {
            return EvaluationError("cannot read property '\(name)' of () (use '?.' where it may be missing)")
        }
        return EvaluationError("cannot read property '\(name)' of \(describe(value)); only objects have properties")
    }

    static func unknownFunction(_ name: String) -> EvaluationError {
        EvaluationError("unknown function '\(name)' (available: \(Method.list))")
    }

    static func missingReceiver(_ name: String) -> EvaluationError {
        EvaluationError("'\(name)' needs a value to work on, as in '\(name)(x)' or 'x.\(name)()'")
    }
}

private enum Method: String, CaseIterable {
    case len, is_empty, contains, starts_with, ends_with, to_lower, to_upper

    static let list = allCases.map(\.rawValue).joined(separator: ", ")
}

/// The operators and methods, with Rhai's semantics.
private enum Operations {
    static func unary(_ op: UnaryOperator, _ value: Value) throws(EvaluationError) -> Value {
        switch (op, value) {
        case (.not, .bool(let b)): return .bool(!b)
        case (.not, _): throw EvaluationError("'!' needs a bool, but got \(describe(value))")
        case (.negate, .int(let i)):
            let (result, overflow) = Int64(0).subtractingReportingOverflow(i)
            if overflow { throw EvaluationError("integer overflow: -(\(i))") }
            return .int(result)
        case (.negate, .double(let d)): return .double(-d)
        case (.plus, .int), (.plus, .double): return value
        case (.negate, _), (.plus, _):
            throw EvaluationError("'\(op == .negate ? "-" : "+")' needs a number, but got \(describe(value))")
        }
    }

    static func binary(_ op: BinaryOperator, _ l: Value, _ r: Value) throws(EvaluationError) -> Value {
        switch op {
        case .equal: return .bool(equal(l, r))
        case .notEqual: return .bool(!equal(l, r))
        case .less, .lessOrEqual, .greater, .greaterOrEqual: return .bool(try compare(op, l, r))
        case .in: return .bool(try contains(r, l, what: "'in'"))
        case .notIn: return .bool(!(try contains(r, l, what: "'!in'")))
        case .add: return try add(l, r)
        case .subtract, .multiply, .divide, .remainder: return try arithmetic(op, l, r)
        case .power: return try power(l, r)
        case .or, .and, .coalesce:
            throw EvaluationError("internal error: '\(op.rawValue)' reached the wrong evaluator")
        }
    }

    /// Rhai's `==`: numbers compare across integer and float, strings byte by byte, arrays and
    /// objects deeply; values of different types are never equal. Iterative, so deeply nested
    /// values cannot exhaust the stack.
    static func equal(_ l: Value, _ r: Value) -> Bool {
        var pending: [(Value, Value)] = []
        var pair = (l, r)
        while true {
            switch pair {
            case (.array(let a), .array(let b)):
                guard a.count == b.count else { return false }
                pending.append(contentsOf: zip(a, b))
            case (.object(let a), .object(let b)):
                guard a.count == b.count else { return false }
                for (key, x) in a {
                    guard let y = b[key] else { return false }
                    pending.append((x, y))
                }
            default:
                guard scalarEqual(pair.0, pair.1) else { return false }
            }
            guard let next = pending.popLast() else { return true }
            pair = next
        }
    }

    static func scalarEqual(_ l: Value, _ r: Value) -> Bool {
        switch (l, r) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.int(let a), .int(let b)): return a == b
        case (.int(let a), .double(let b)): return Double(a) == b
        case (.double(let a), .int(let b)): return a == Double(b)
        case (.double(let a), .double(let b)): return a == b
        case (.string(let a), .string(let b)): return a.utf8.elementsEqual(b.utf8)
        case (.bytes(let a), .bytes(let b)): return a == b
        default: return false
        }
    }

    static func compare(_ op: BinaryOperator, _ l: Value, _ r: Value) throws(EvaluationError) -> Bool {
        func result<T: Comparable>(_ a: T, _ b: T) -> Bool {
            switch op {
            case .less: return a < b
            case .lessOrEqual: return a <= b
            case .greater: return a > b
            default: return a >= b
            }
        }
        switch (l, r) {
        case (.int(let a), .int(let b)): return result(a, b)
        case (.int(let a), .double(let b)): return result(Double(a), b)
        case (.double(let a), .int(let b)): return result(a, Double(b))
        case (.double(let a), .double(let b)): return result(a, b)
        case (.string(let a), .string(let b)):
            return result(ByteOrder(bytes: a.utf8), ByteOrder(bytes: b.utf8))
        case (.bool(let a), .bool(let b)): return result(a ? 1 : 0, b ? 1 : 0)
        case (.null, .null): return false
        case (.array, .array), (.object, .object), (.bytes, .bytes):
            throw EvaluationError("cannot compare two values of type \(typeName(l)) with '\(op.rawValue)'")
        default:
            return false  // different types: Rhai answers false
        }
    }

    /// Rhai's `contains(container, item)`, which `item in container` calls.
    static func contains(_ container: Value, _ item: Value, what: String) throws(EvaluationError) -> Bool {
        switch container {
        case .string(let s):
            guard case .string(let needle) = item else {
                throw EvaluationError("\(what) can only look for a string in a string, not \(describe(item))")
            }
            return ByteSearch.contains(Array(s.utf8), Array(needle.utf8))
        case .array(let elements):
            return elements.contains { equal($0, item) }
        case .object(let object):
            guard case .string(let key) = item else {
                throw EvaluationError("\(what) can only look for a string key in an object, not \(describe(item))")
            }
            return object[key] != nil
        default:
            throw EvaluationError("\(what) needs a string, array or object to look in, but got \(describe(container))")
        }
    }

    static func add(_ l: Value, _ r: Value) throws(EvaluationError) -> Value {
        switch (l, r) {
        case (.int, .int), (.int, .double), (.double, .int), (.double, .double):
            return try arithmetic(.add, l, r)
        case (.string(let a), _):
            guard let b = RhaiFormat.concatenationText(r) else { break }
            return .string(a + b)
        case (_, .string(let b)):
            guard let a = RhaiFormat.concatenationText(l) else { break }
            return .string(a + b)
        case (.array(let a), .array(let b)):
            return .array(a + b)
        case (.object(var a), .object(let b)):
            for (key, value) in b { a[key] = value }
            return .object(a)
        case (.bytes(let a), .bytes(let b)):
            return .bytes(a + b)
        default:
            break
        }
        throw EvaluationError("cannot apply '+' to \(describe(l)) and \(describe(r))")
    }

    static func arithmetic(_ op: BinaryOperator, _ l: Value, _ r: Value) throws(EvaluationError) -> Value {
        switch (l, r) {
        case (.int(let a), .int(let b)):
            let result: (partialValue: Int64, overflow: Bool)
            switch op {
            case .add: result = a.addingReportingOverflow(b)
            case .subtract: result = a.subtractingReportingOverflow(b)
            case .multiply: result = a.multipliedReportingOverflow(by: b)
            case .divide:
                if b == 0 { throw EvaluationError("division by zero: \(a) / 0") }
                result = a.dividedReportingOverflow(by: b)
            default:
                if b == 0 { throw EvaluationError("division by zero: \(a) % 0") }
                result = a.remainderReportingOverflow(dividingBy: b)
            }
            if result.overflow { throw EvaluationError("integer overflow: \(a) \(op.rawValue) \(b)") }
            return .int(result.partialValue)
        case (.int, .double), (.double, .int), (.double, .double):
            let a = l.doubleValue ?? 0
            let b = r.doubleValue ?? 0
            switch op {
            case .add: return .double(a + b)
            case .subtract: return .double(a - b)
            case .multiply: return .double(a * b)
            case .divide: return .double(a / b)
            default: return .double(a.truncatingRemainder(dividingBy: b))
            }
        default:
            throw EvaluationError("cannot apply '\(op.rawValue)' to \(describe(l)) and \(describe(r))")
        }
    }

    static func power(_ base: Value, _ exponent: Value) throws(EvaluationError) -> Value {
        switch (base, exponent) {
        case (.int(let x), .int(let y)):
            if y < 0 {
                throw EvaluationError(
                    "integer raised to a negative power: \(x) ** \(y) (use a float, as in \(x).0 ** \(y))")
            }
            guard y <= Int64(UInt32.max), let result = checkedPower(x, UInt32(y)) else {
                throw EvaluationError("integer overflow: \(x) ** \(y)")
            }
            return .int(result)
        case (.int, .double), (.double, .int), (.double, .double):
            return .double(FloatPower.pow(base.doubleValue ?? 0, exponent.doubleValue ?? 0))
        default:
            throw EvaluationError("cannot apply '**' to \(describe(base)) and \(describe(exponent))")
        }
    }

    /// Exponentiation by squaring, failing on overflow (as Rust's `checked_pow`).
    static func checkedPower(_ x: Int64, _ y: UInt32) -> Int64? {
        if y == 0 { return 1 }
        var exponent = y
        var base = x
        var acc: Int64 = 1
        while true {
            if exponent & 1 == 1 {
                let (product, overflow) = acc.multipliedReportingOverflow(by: base)
                if overflow { return nil }
                acc = product
                if exponent == 1 { return acc }
            }
            exponent /= 2
            let (square, overflow) = base.multipliedReportingOverflow(by: base)
            if overflow { return nil }
            base = square
        }
    }

    static func index(_ container: Value, _ index: Value) throws(EvaluationError) -> Value {
        switch container {
        case .array(let elements):
            guard case .int(let i) = index else {
                throw EvaluationError("an array index must be an integer, not \(describe(index))")
            }
            guard let position = position(i, count: elements.count) else {
                throw EvaluationError("array index \(i) is out of bounds: the array has \(elements.count) elements")
            }
            return elements[position]
        case .object(let object):
            guard case .string(let key) = index else {
                throw EvaluationError("an object key must be a string, not \(describe(index))")
            }
            return object[key] ?? .null
        case .string(let s):
            guard case .int(let i) = index else {
                throw EvaluationError("a string index must be an integer, not \(describe(index))")
            }
            let characters = Array(s.unicodeScalars)
            guard let position = position(i, count: characters.count) else {
                throw EvaluationError(
                    "string index \(i) is out of bounds: the string has \(characters.count) characters")
            }
            return .string(String(characters[position]))
        case .bytes(let bytes):
            guard case .int(let i) = index else {
                throw EvaluationError("a bytes index must be an integer, not \(describe(index))")
            }
            guard let position = position(i, count: bytes.count) else {
                throw EvaluationError("bytes index \(i) is out of bounds: there are \(bytes.count) bytes")
            }
            return .int(Int64(bytes[position]))
        case .null:
            throw EvaluationError("cannot index () (use '?[' where it may be missing)")
        default:
            throw EvaluationError("cannot index \(describe(container))")
        }
    }

    /// The position `i` refers to in a collection of `count`, negative counting from the end.
    static func position(_ i: Int64, count: Int) -> Int? {
        let n = Int64(count)
        let p = i < 0 ? n + i : i
        return p >= 0 && p < n ? Int(p) : nil
    }

    static func call(_ name: String, on receiver: Value, with arguments: [Value]) throws(EvaluationError) -> Value {
        guard let method = Method(rawValue: name) else {
            throw EvaluationError("unknown method '\(name)' (available: \(Method.list))")
        }
        let expected = method == .contains || method == .starts_with || method == .ends_with ? 1 : 0
        guard arguments.count == expected else {
            let takes = expected == 0 ? "no arguments" : "one argument"
            throw EvaluationError("'\(name)' takes \(takes), but was given \(arguments.count)")
        }
        var notDefined: EvaluationError { EvaluationError("'\(name)' is not defined for \(describe(receiver))") }
        switch method {
        case .len, .is_empty:
            let count: Int
            switch receiver {
            case .string(let s): count = s.unicodeScalars.count
            case .array(let a): count = a.count
            case .object(let o): count = o.count
            case .bytes(let b): count = b.count
            default: throw notDefined
            }
            return method == .len ? .int(Int64(count)) : .bool(count == 0)
        case .contains:
            switch receiver {
            case .string, .array, .object: return .bool(try contains(receiver, arguments[0], what: "'contains'"))
            default: throw notDefined
            }
        case .starts_with, .ends_with:
            guard case .string(let s) = receiver else { throw notDefined }
            guard case .string(let affix) = arguments[0] else {
                throw EvaluationError("'\(name)' needs a string argument, not \(describe(arguments[0]))")
            }
            let bytes = Array(s.utf8)
            let affixBytes = Array(affix.utf8)
            guard affixBytes.count <= bytes.count else { return .bool(false) }
            if method == .starts_with { return .bool(bytes.prefix(affixBytes.count).elementsEqual(affixBytes)) }
            return .bool(bytes.suffix(affixBytes.count).elementsEqual(affixBytes))
        case .to_lower, .to_upper:
            guard case .string(let s) = receiver else { throw notDefined }
            return .string(method == .to_lower ? s.lowercased() : s.uppercased())
        }
    }
}

/// Orders strings byte by byte (by code point), as Rust does.
private struct ByteOrder: Comparable {
    let bytes: String.UTF8View

    static func == (a: ByteOrder, b: ByteOrder) -> Bool { a.bytes.elementsEqual(b.bytes) }
    static func < (a: ByteOrder, b: ByteOrder) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }
}

/// Substring search in linear time (Knuth–Morris–Pratt), so large values cannot stall a condition.
private enum ByteSearch {
    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        if needle.isEmpty { return true }
        if needle.count > haystack.count { return false }
        var failure = [Int](repeating: 0, count: needle.count)
        var k = 0
        for i in 1..<max(needle.count, 1) {
            while k > 0 && needle[i] != needle[k] { k = failure[k - 1] }
            if needle[i] == needle[k] { k += 1 }
            failure[i] = k
        }
        var matched = 0
        for byte in haystack {
            while matched > 0 && byte != needle[matched] { matched = failure[matched - 1] }
            if byte == needle[matched] { matched += 1 }
            if matched == needle.count { return true }
        }
        return false
    }
}

// MARK: - Text of values, as Rhai writes them

private enum RhaiFormat {
    /// The text `+` appends to a string, or nil for values Rhai would write in a form of its own.
    static func concatenationText(_ value: Value) -> String? {
        switch value {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .double(let d): return float(d)
        case .bool(let b): return b ? "true" : "false"
        case .null: return ""
        case .bytes, .array, .object: return nil
        }
    }

    // Rhai switches to scientific notation outside these (f32 constants widened to f64).
    static let largestNatural = Double(Float(10_000_000_000_000.0))
    static let smallestNatural = Double(Float(0.000_000_000_000_1))

    /// A float as Rhai's `to_string` writes it: `1.0`, `0.25`, `1e20`, `1.5e-14`, `NaN`, `inf`.
    static func float(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d < 0 ? "-inf" : "inf" }
        if d == 0 { return "0.0" }
        let magnitude = abs(d)
        let (digits, point) = shortestDigits(magnitude)
        let sign = d < 0 ? "-" : ""
        if magnitude > largestNatural || magnitude < smallestNatural {
            var text = sign + String(digits.prefix(1))
            if digits.count > 1 { text += "." + digits.dropFirst() }
            return text + "e" + String(point - 1)
        }
        var text: String
        if point <= 0 {
            text = "0." + String(repeating: "0", count: -point) + digits
        } else if point >= digits.count {
            text = digits + String(repeating: "0", count: point - digits.count) + ".0"
        } else {
            text = String(digits.prefix(point)) + "." + String(digits.dropFirst(point))
        }
        return sign + text
    }

    /// The shortest digits that read back as `d` (positive, finite), without leading or trailing
    /// zeros, and the position of the decimal point: `d = 0.DIGITS × 10^point`.
    static func shortestDigits(_ d: Double) -> (digits: String, point: Int) {
        // Swift's description already holds the shortest round-tripping digits; take them apart.
        let text = d.description
        var mantissa = Substring(text)
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = text[..<e]
            exponent = Int(text[text.index(after: e)...]) ?? 0
        }
        var integerPart = mantissa
        var fractionPart = Substring("")
        if let dot = mantissa.firstIndex(of: ".") {
            integerPart = mantissa[..<dot]
            fractionPart = mantissa[mantissa.index(after: dot)...]
        }
        var digits = Array(integerPart + fractionPart)
        var point = integerPart.count + exponent
        while digits.first == "0" {
            digits.removeFirst()
            point -= 1
        }
        while digits.last == "0" { digits.removeLast() }
        return (digits.isEmpty ? "0" : String(digits), point)
    }
}

// MARK: - Float powers without a C math library

/// `pow` for doubles, following IEEE 754 / C99 for the special cases. Integer exponents are
/// computed by squaring in double-double arithmetic (exact whenever the result is representable);
/// others as exp(y·log x) with double-double intermediates: within an ulp of the C library.
private enum FloatPower {
    struct DD {
        var hi: Double
        var lo: Double

        init(_ hi: Double, _ lo: Double = 0) {
            self.hi = hi
            self.lo = lo
        }

        static func normalized(_ a: Double, _ b: Double) -> DD {
            let s = a + b
            return DD(s, b - (s - a))
        }

        static func sum(_ a: Double, _ b: Double) -> DD {
            let s = a + b
            let bb = s - a
            return DD(s, (a - (s - bb)) + (b - bb))
        }

        static func + (a: DD, b: DD) -> DD {
            let s = sum(a.hi, b.hi)
            return normalized(s.hi, s.lo + a.lo + b.lo)
        }

        static func * (a: DD, b: DD) -> DD {
            let p = a.hi * b.hi
            let e = (-p).addingProduct(a.hi, b.hi) + (a.hi * b.lo + a.lo * b.hi)
            return normalized(p, e)
        }

        static func * (a: DD, b: Double) -> DD {
            let p = a.hi * b
            let e = (-p).addingProduct(a.hi, b) + a.lo * b
            return normalized(p, e)
        }

        static func / (a: DD, b: DD) -> DD {
            let q1 = a.hi / b.hi
            let bq = b * q1
            let r = a + DD(-bq.hi, -bq.lo)
            let q2 = r.hi / b.hi
            return normalized(q1, q2)
        }
    }

    static let ln2 = DD(6.93147180559945286227e-01, 2.31904681384629955842e-17)

    static func pow(_ x: Double, _ y: Double) -> Double {
        if y == 0 || x == 1 { return 1 }
        if y == 1 { return x }
        if y == 0.5, x > 0, x.isFinite { return x.squareRoot() }
        if x.isNaN || y.isNaN { return .nan }
        if y.isInfinite {
            let ax = abs(x)
            if ax == 1 { return 1 }
            return (ax > 1) == (y > 0) ? .infinity : 0
        }
        let yIsInteger = y.rounded(.towardZero) == y
        let yIsOdd = yIsInteger && abs(y) < 9_007_199_254_740_992 && Int64(y) & 1 == 1
        if x == 0 {
            if y < 0 { return yIsOdd && x.sign == .minus ? -.infinity : .infinity }
            return yIsOdd ? x : 0
        }
        if x.isInfinite {
            if x > 0 { return y < 0 ? 0 : .infinity }
            if y < 0 { return yIsOdd ? -0.0 : 0 }
            return yIsOdd ? -.infinity : .infinity
        }
        if x < 0 && !yIsInteger { return .nan }
        let magnitude = abs(x)
        var result: Double?
        if yIsInteger && abs(y) <= 2_147_483_648 {
            result = integerPower(magnitude, Int64(y))
        }
        let r = result ?? expLog(magnitude, y)
        return x < 0 && yIsOdd ? -r : r
    }

    /// `x ** n` for x > 0 by squaring in double-double; nil when an intermediate leaves the
    /// normal range (the exp-log path handles overflow and underflow).
    static func integerPower(_ x: Double, _ n: Int64) -> Double? {
        var exponent = n.magnitude
        var base = DD(x)
        var acc = DD(1)
        while true {
            if exponent & 1 == 1 { acc = acc * base }
            exponent >>= 1
            if exponent == 0 { break }
            base = base * base
            guard base.hi.isNormal else { return nil }
        }
        guard acc.hi.isNormal else { return nil }
        if n >= 0 { return acc.hi }
        let inverse = DD(1) / acc
        return inverse.hi.isNormal ? inverse.hi : nil
    }

    /// exp(y · log x) for x > 0 finite.
    static func expLog(_ x: Double, _ y: Double) -> Double {
        let l = log(x)
        let estimate = l.hi * y  // may overflow, where the double-double product would give NaN
        if estimate.isNaN { return .nan }
        if estimate > 709.79 { return .infinity }
        if estimate < -745.2 { return 0 }
        let t = l * y
        guard t.hi.isFinite else { return estimate > 0 ? .infinity : 0 }
        return exp(t)
    }

    static func log(_ x: Double) -> DD {
        var m = x.significand  // [1, 2)
        var e = Int(x.exponent)
        if m > 1.4142135623730951 {
            m /= 2
            e += 1
        }
        // log(m) = 2·atanh(s) = 2s·(1 + s²/3 + s⁴/5 + ...), s = (m - 1) / (m + 1), |s| < 0.172.
        // All in double-double: `y` multiplies any error here, and can be large.
        let f = m - 1  // exact
        let s = DD(f) / DD.sum(2, f)
        let s2 = s * s
        var series = DD(0)
        for k in stride(from: 14, through: 1, by: -1) {
            series = s2 * (DD(1) / DD(Double(2 * k + 1)) + series)
        }
        let twoS = DD(2 * s.hi, 2 * s.lo)
        return ln2 * Double(e) + (twoS + twoS * series)
    }

    static func exp(_ t: DD) -> Double {
        let k = (t.hi / ln2.hi).rounded()
        // r = t - k·ln2, kept in double-double
        let p = ln2.hi * k
        let pe = (-p).addingProduct(ln2.hi, k)
        let d = DD.sum(t.hi, -p)
        let r = DD.normalized(d.hi, d.lo - pe + t.lo - ln2.lo * k)
        // e^r - 1 = r/1·(1 + r/2·(1 + r/3·(...))) for |r| <= 0.35, in double-double.
        var series = DD(0)
        for n in stride(from: 20, through: 1, by: -1) { series = r * (DD(1) + series) / DD(Double(n)) }
        let expR = DD(1) + series
        return Double(sign: .plus, exponent: Int(k), significand: expR.hi)
    }
}
