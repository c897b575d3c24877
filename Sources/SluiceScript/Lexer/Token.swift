/// A place in a script: 1-based line and column (columns count Unicode scalars).
public struct ScriptPosition: Sendable, Hashable, CustomStringConvertible {
    public var line: Int
    public var column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    public var description: String { "line \(line), position \(column)" }
}

/// Words with a meaning in the grammar.
public enum Keyword: String, Sendable, CaseIterable {
    case `true`, `false`, `let`, `const`, `if`, `else`, `switch`, `do`, `while`, `until`, `loop`, `for`, `in`
    case `break`, `continue`, `return`, `throw`, `try`, `catch`, `fn`, `private`, `import`, `export`, `as`
    case `global`, `this`
}

/// Operators and punctuation, longest spellings first where they share a prefix.
public enum Symbol: String, Sendable, CaseIterable {
    // Three characters.
    case powerAssign = "**=", shiftLeftAssign = "<<=", shiftRightAssign = ">>=", inclusiveRange = "..="
    case coalesceAssign = "??="
    // Two characters.
    case power = "**", shiftLeft = "<<", shiftRight = ">>", and = "&&", or = "||", equal = "==", notEqual = "!="
    case lessOrEqual = "<=", greaterOrEqual = ">=", plusAssign = "+=", minusAssign = "-=", multiplyAssign = "*="
    case divideAssign = "/=", moduloAssign = "%=", bitAndAssign = "&=", bitOrAssign = "|=", xorAssign = "^="
    case coalesce = "??", elvis = "?.", elvisIndex = "?[", range = "..", doubleColon = "::", arrow = "=>"
    case mapStart = "#{", notIn = "!in"
    // One character.
    case plus = "+", minus = "-", multiply = "*", divide = "/", modulo = "%", bitAnd = "&", pipe = "|", xor = "^"
    case bang = "!", assign = "=", less = "<", greater = ">", leftParen = "(", rightParen = ")"
    case leftBracket = "[", rightBracket = "]", leftBrace = "{", rightBrace = "}", comma = ",", semicolon = ";"
    case colon = ":", dot = "."
}

/// A piece of a backtick string: text as written, or the source of a `${...}` expression.
public enum InterpolationPart: Sendable, Equatable {
    case text(String)
    case code(String, at: ScriptPosition)
}

public enum Token: Sendable, Equatable {
    case int(Int64)
    case float(Double)
    case string(String)
    case char(Unicode.Scalar)
    /// A backtick string with at least one `${...}`.
    case interpolated([InterpolationPart])
    case identifier(String)
    case keyword(Keyword)
    case symbol(Symbol)
    /// A word Rhai keeps for the future (`var`, `null`, …): an error wherever it is used.
    case reservedWord(String)
    /// A symbol Rhai keeps for the future (`++`, `===`, `->`, …).
    case reservedSymbol(String)
    case eof
}

public struct LocatedToken: Sendable, Equatable {
    public var token: Token
    public var position: ScriptPosition
}

/// Spellings that are errors wherever they appear.
enum Reserved {
    static let words: Set<String> = [
        "var", "static", "shared", "with", "is", "goto", "match", "case", "default", "void", "null", "nil",
        "public", "protected", "super", "new", "use", "module", "package", "spawn", "thread", "go", "sync",
        "async", "await", "yield",
    ]
    /// Longest first, so the lexer takes the longest match.
    static let symbols: [String] = ["::<", "===", "!==", "...", "->", "<-", ":=", ":;", "++", "--", "(*", "*)", "#!", "<|", "|>", "!.",
                                    "@", "$", "~", "?", "#"]
}
