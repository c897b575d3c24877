/// Turns script text into tokens, following Rhai's lexical rules: nested block comments,
/// `_` in numbers, radix literals read as u64, a `-` glued to a number where a unary operator
/// may stand, three kinds of strings, chars, and reserved words and symbols.
public struct Lexer {
    private let bytes: [UInt8]
    private var index = 0
    private var line = 1
    private var column = 1
    /// Whether a `-` here would be unary (so `-5` is one literal).
    private var unaryAllowed = true

    public init(_ source: String) {
        bytes = Array(source.utf8)
    }

    /// Every token up to and including `.eof`.
    public static func tokenize(_ source: String) throws(ScriptError) -> [LocatedToken] {
        var lexer = Lexer(source)
        var tokens: [LocatedToken] = []
        while true {
            let t = try lexer.next()
            tokens.append(t)
            if t.token == .eof { return tokens }
        }
    }

    public mutating func next() throws(ScriptError) -> LocatedToken {
        try skipTrivia()
        let start = position
        guard let c = peek() else { return LocatedToken(token: .eof, position: start) }
        let token: Token
        if isDigit(c) || (c == UInt8(ascii: "-") && unaryAllowed && peek(1).map(isDigit) == true) {
            token = try number(start)
        } else if isIdentifierStart(c) {
            token = try word(start)
        } else if c == UInt8(ascii: "\"") {
            token = .string(try quotedString(start))
        } else if c == UInt8(ascii: "`") {
            token = try backtickString(start)
        } else if c == UInt8(ascii: "'") {
            token = .char(try charLiteral(start))
        } else if c == UInt8(ascii: "#"), let raw = try rawString(start) {
            token = .string(raw)
        } else {
            token = try symbol(start)
        }
        unaryAllowed = Lexer.allowsUnary(after: token)
        return LocatedToken(token: token, position: start)
    }

    // MARK: - Characters

    private var position: ScriptPosition { ScriptPosition(line: line, column: column) }

    private func peek(_ offset: Int = 0) -> UInt8? {
        let i = index + offset
        return i < bytes.count ? bytes[i] : nil
    }

    private mutating func advance() {
        let c = bytes[index]
        index += 1
        if c == UInt8(ascii: "\n") {
            line += 1
            column = 1
        } else if c & 0xC0 != 0x80 {
            column += 1  // count scalars, not continuation bytes
        }
    }

    private func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
    private func isLetter(_ c: UInt8) -> Bool { (c | 0x20) >= UInt8(ascii: "a") && (c | 0x20) <= UInt8(ascii: "z") }
    private func isIdentifierStart(_ c: UInt8) -> Bool { isLetter(c) || c == UInt8(ascii: "_") }
    private func isIdentifierPart(_ c: UInt8) -> Bool { isLetter(c) || isDigit(c) || c == UInt8(ascii: "_") }

    private static func allowsUnary(after token: Token) -> Bool {
        switch token {
        case .int, .float, .string, .char, .interpolated, .identifier, .eof: return false
        case .keyword(let k): return ![.true, .false, .this].contains(k)
        case .symbol(let s): return ![.rightParen, .rightBracket, .rightBrace].contains(s)
        case .reservedWord, .reservedSymbol: return true
        }
    }

    // MARK: - Whitespace and comments

    private mutating func skipTrivia() throws(ScriptError) {
        while let c = peek() {
            if c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") || c == UInt8(ascii: "\n") || c == UInt8(ascii: "\r") || c == 0x0B || c == 0x0C {
                advance()
            } else if c == UInt8(ascii: "/") && peek(1) == UInt8(ascii: "/") {
                while let d = peek(), d != UInt8(ascii: "\n") { advance() }
            } else if c == UInt8(ascii: "/") && peek(1) == UInt8(ascii: "*") {
                let start = position
                advance()
                advance()
                var depth = 1
                while depth > 0 {
                    guard let d = peek() else { throw .syntax("Open block comment is not terminated", at: start) }
                    if d == UInt8(ascii: "/") && peek(1) == UInt8(ascii: "*") {
                        depth += 1
                        advance()
                    } else if d == UInt8(ascii: "*") && peek(1) == UInt8(ascii: "/") {
                        depth -= 1
                        advance()
                    }
                    advance()
                }
            } else if c == 0xC2 && peek(1) == 0xA0 {
                advance()  // no-break space
                advance()
            } else {
                return
            }
        }
    }

    // MARK: - Numbers

    private mutating func number(_ start: ScriptPosition) throws(ScriptError) -> Token {
        var text = ""
        let negative = peek() == UInt8(ascii: "-")
        if negative { advance() }
        // Radix literals: read as u64, kept as the same 64 bits.
        if peek() == UInt8(ascii: "0"), let p = peek(1), let radix = [UInt8(ascii: "x"): 16, UInt8(ascii: "o"): 8, UInt8(ascii: "b"): 2][p | 0x20] {
            advance()
            advance()
            while let c = peek(), isIdentifierPart(c) {
                if c != UInt8(ascii: "_") { text.append(Character(Unicode.Scalar(c))) }
                advance()
            }
            guard !text.isEmpty, let magnitude = UInt64(text, radix: radix) else {
                throw .syntax("Invalid number: '\(negative ? "-" : "")0\(Character(Unicode.Scalar(p)))\(text)'", at: start)
            }
            let value = Int64(bitPattern: magnitude)
            return .int(negative ? 0 &- value : value)
        }
        var isFloat = false
        readDigits(into: &text)
        if peek() == UInt8(ascii: "."), let after = peek(1) {
            if isDigit(after) {
                isFloat = true
                advance()
                text.append(".")
                readDigits(into: &text)
            } else if after != UInt8(ascii: ".") && !isIdentifierStart(after) {
                // `1.` before a symbol or space is the float 1.0.
                isFloat = true
                advance()
            }
        } else if peek() == UInt8(ascii: "."), peek(1) == nil {
            isFloat = true
            advance()
        }
        if let e = peek(), e | 0x20 == UInt8(ascii: "e") {
            let signed = peek(1) == UInt8(ascii: "+") || peek(1) == UInt8(ascii: "-")
            if let d = peek(signed ? 2 : 1), isDigit(d) {
                isFloat = true
                advance()
                text.append("e")
                if signed {
                    text.append(Character(Unicode.Scalar(peek()!)))
                    advance()
                }
                readDigits(into: &text)
            }
        }
        if let c = peek(), isIdentifierPart(c) || (c == UInt8(ascii: ".") && peek(1).map(isDigit) == true) {
            while let d = peek(), isIdentifierPart(d) || d == UInt8(ascii: ".") {
                text.append(Character(Unicode.Scalar(d)))
                advance()
            }
            throw .syntax("Invalid number: '\(negative ? "-" : "")\(text)'", at: start)
        }
        let signedText = (negative ? "-" : "") + text
        if !isFloat, let value = Int64(signedText) { return .int(value) }
        if let value = Double(signedText) { return .float(value) }
        throw .syntax("Invalid number: '\(signedText)'", at: start)
    }

    /// Digits with `_` separators (which are dropped).
    private mutating func readDigits(into text: inout String) {
        while let c = peek(), isDigit(c) || (c == UInt8(ascii: "_") && !text.isEmpty && text.last != ".") {
            if c != UInt8(ascii: "_") { text.append(Character(Unicode.Scalar(c))) }
            advance()
        }
    }

    // MARK: - Words

    private mutating func word(_ start: ScriptPosition) throws(ScriptError) -> Token {
        let from = index
        while let c = peek(), isIdentifierPart(c) { advance() }
        let text = String(decoding: bytes[from..<index], as: UTF8.self)
        if let keyword = Keyword(rawValue: text) { return .keyword(keyword) }
        if Reserved.words.contains(text) { return .reservedWord(text) }
        if text == "_" { return .identifier(text) }
        // The first character other than `_` must be a letter: `_1` is not a name.
        if let firstNonUnderscore = text.utf8.first(where: { $0 != UInt8(ascii: "_") }), isDigit(firstNonUnderscore) {
            throw .syntax("Invalid identifier: '\(text)'", at: start)
        }
        return .identifier(text)
    }

    // MARK: - Strings and chars

    /// Reads one escape after a backslash; `quote` may also be escaped in char literals.
    private mutating func escape(at start: ScriptPosition, allowQuote: Bool) throws(ScriptError) -> Unicode.Scalar {
        guard let c = peek() else { throw .syntax("Open string is not terminated", at: start) }
        let escapeStart = position
        advance()
        switch c {
        case UInt8(ascii: "n"): return "\n"
        case UInt8(ascii: "r"): return "\r"
        case UInt8(ascii: "t"): return "\t"
        case UInt8(ascii: "\\"): return "\\"
        case UInt8(ascii: "\""): return "\""
        case UInt8(ascii: "'") where allowQuote: return "'"
        case UInt8(ascii: "x"), UInt8(ascii: "u"), UInt8(ascii: "U"):
            let count = c == UInt8(ascii: "x") ? 2 : (c == UInt8(ascii: "u") ? 4 : 8)
            var hex = ""
            for _ in 0..<count {
                guard let h = peek(), (h >= 48 && h <= 57) || ((h | 0x20) >= 97 && (h | 0x20) <= 102) else {
                    throw .syntax("Invalid escape sequence: '\\\(Character(Unicode.Scalar(c)))\(hex)'", at: escapeStart)
                }
                hex.append(Character(Unicode.Scalar(h)))
                advance()
            }
            guard let v = UInt32(hex, radix: 16), let scalar = Unicode.Scalar(v) else {
                throw .syntax("Invalid escape sequence: '\\\(Character(Unicode.Scalar(c)))\(hex)'", at: escapeStart)
            }
            return scalar
        default:
            throw .syntax("Invalid escape sequence: '\\\(Character(Unicode.Scalar(c)))'", at: escapeStart)
        }
    }

    private mutating func quotedString(_ start: ScriptPosition) throws(ScriptError) -> String {
        advance()  // "
        var out: [UInt8] = []
        let quoteColumn = start.column
        while true {
            guard let c = peek() else { throw .syntax("Open string is not terminated", at: start) }
            if c == UInt8(ascii: "\"") {
                advance()
                if peek() == UInt8(ascii: "\"") {  // "" stands for one quote
                    out.append(c)
                    advance()
                    continue
                }
                return String(decoding: out, as: UTF8.self)
            }
            if c == UInt8(ascii: "\n") { throw .syntax("Open string is not terminated", at: start) }
            if c == UInt8(ascii: "\\") {
                advance()
                if peek() == UInt8(ascii: "\n") || (peek() == UInt8(ascii: "\r") && peek(1) == UInt8(ascii: "\n")) {
                    // Line continuation: drop the newline and the next line's indentation,
                    // up to the column of the opening quote.
                    if peek() == UInt8(ascii: "\r") { advance() }
                    advance()
                    while let w = peek(), w == UInt8(ascii: " ") || w == UInt8(ascii: "\t"), column <= quoteColumn { advance() }
                    continue
                }
                out.append(contentsOf: Array(String(try escape(at: start, allowQuote: false)).utf8))
                continue
            }
            out.append(c)
            advance()
        }
    }

    private mutating func charLiteral(_ start: ScriptPosition) throws(ScriptError) -> Unicode.Scalar {
        advance()  // '
        var scalars: [Unicode.Scalar] = []
        while true {
            guard let c = peek(), c != UInt8(ascii: "\n") else { throw .syntax("Invalid character", at: start) }
            if c == UInt8(ascii: "'") {
                advance()
                break
            }
            if c == UInt8(ascii: "\\") {
                advance()
                scalars.append(try escape(at: start, allowQuote: true))
                continue
            }
            let from = index
            advance()
            while let d = peek(), d & 0xC0 == 0x80 { advance() }
            scalars.append(contentsOf: String(decoding: bytes[from..<index], as: UTF8.self).unicodeScalars)
        }
        guard scalars.count == 1 else { throw .syntax("Invalid character", at: start) }
        return scalars[0]
    }

    /// `#"…"#`, `##"…"##`: verbatim text. Returns nil when `#` does not start one.
    private mutating func rawString(_ start: ScriptPosition) throws(ScriptError) -> String? {
        var hashes = 0
        while peek(hashes) == UInt8(ascii: "#") { hashes += 1 }
        guard peek(hashes) == UInt8(ascii: "\"") else { return nil }
        for _ in 0...hashes { advance() }
        let from = index
        while true {
            guard let c = peek() else { throw .syntax("Open string is not terminated", at: start) }
            if c == UInt8(ascii: "\"") {
                var n = 0
                while n < hashes, peek(1 + n) == UInt8(ascii: "#") { n += 1 }
                if n == hashes {
                    let text = String(decoding: bytes[from..<index], as: UTF8.self)
                    for _ in 0...hashes { advance() }
                    return text
                }
            }
            advance()
        }
    }

    /// `` `…` ``: verbatim, with `${expr}` interpolation and `` `` `` for a backtick.
    private mutating func backtickString(_ start: ScriptPosition) throws(ScriptError) -> Token {
        advance()  // `
        if peek() == UInt8(ascii: "\n") {
            advance()
        } else if peek() == UInt8(ascii: "\r") && peek(1) == UInt8(ascii: "\n") {
            advance()
            advance()
        }
        var parts: [InterpolationPart] = []
        var text: [UInt8] = []
        while true {
            guard let c = peek() else { throw .syntax("Open string is not terminated", at: start) }
            if c == UInt8(ascii: "`") {
                advance()
                if peek() == UInt8(ascii: "`") {
                    text.append(c)
                    advance()
                    continue
                }
                break
            }
            if c == UInt8(ascii: "\\") && peek(1) == UInt8(ascii: "$") && peek(2) == UInt8(ascii: "{") {
                advance()
                text.append(contentsOf: Array("${".utf8))
                advance()
                advance()
                continue
            }
            if c == UInt8(ascii: "$") && peek(1) == UInt8(ascii: "{") {
                let codeStart = position
                advance()
                advance()
                let exprPosition = position
                let from = index
                try skipBalanced(until: UInt8(ascii: "}"), start: codeStart)
                if !text.isEmpty { parts.append(.text(String(decoding: text, as: UTF8.self))) }
                text = []
                parts.append(.code(String(decoding: bytes[from..<index], as: UTF8.self), at: exprPosition))
                advance()  // }
                continue
            }
            text.append(c)
            advance()
        }
        if parts.isEmpty { return .string(String(decoding: text, as: UTF8.self)) }
        if !text.isEmpty { parts.append(.text(String(decoding: text, as: UTF8.self))) }
        return .interpolated(parts)
    }

    /// Moves to the `close` that ends an interpolated expression, past nested braces and strings.
    private mutating func skipBalanced(until close: UInt8, start: ScriptPosition) throws(ScriptError) {
        var depth = 0
        while let c = peek() {
            if c == close && depth == 0 { return }
            switch c {
            case UInt8(ascii: "{"): depth += 1
            case UInt8(ascii: "}"): depth -= 1
            case UInt8(ascii: "\""):
                _ = try quotedString(position)
                continue
            case UInt8(ascii: "`"):
                _ = try backtickString(position)
                continue
            case UInt8(ascii: "'"):
                _ = try charLiteral(position)
                continue
            default: break
            }
            advance()
        }
        throw .syntax("Open string is not terminated", at: start)
    }

    // MARK: - Symbols

    private static let symbolTable: [(text: [UInt8], token: Token)] = {
        var all: [(text: [UInt8], token: Token)] = Symbol.allCases.filter { $0 != .notIn }.map { (Array($0.rawValue.utf8), .symbol($0)) }
        all += Reserved.symbols.map { (Array($0.utf8), .reservedSymbol($0)) }
        return all.sorted { $0.text.count > $1.text.count }
    }()

    private mutating func symbol(_ start: ScriptPosition) throws(ScriptError) -> Token {
        // `!in` is one operator unless a longer name follows (`!inside`).
        if peek() == UInt8(ascii: "!"), peek(1) == UInt8(ascii: "i"), peek(2) == UInt8(ascii: "n"), peek(3).map(isIdentifierPart) != true {
            advance()
            advance()
            advance()
            return .symbol(.notIn)
        }
        for (text, token) in Lexer.symbolTable where matches(text) {
            for _ in 0..<text.count { advance() }
            return token
        }
        let from = index
        advance()
        while let d = peek(), d & 0xC0 == 0x80 { advance() }
        throw .syntax("Unknown operator: '\(String(decoding: bytes[from..<index], as: UTF8.self))'", at: start)
    }

    private func matches(_ text: [UInt8]) -> Bool {
        guard index + text.count <= bytes.count else { return false }
        for (i, b) in text.enumerated() where bytes[index + i] != b { return false }
        return true
    }
}
