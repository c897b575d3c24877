import SluiceScript
import Testing

func tokens(_ source: String) throws -> [Token] {
    try Lexer.tokenize(source).map(\.token).dropLast()
}

func lexError(_ source: String) -> ScriptError? {
    do {
        _ = try Lexer.tokenize(source)
        return nil
    } catch {
        return error
    }
}

@Suite("Rhai lexer")
struct LexerTests {
    @Test("Integers: separators, radix literals as u64 bits, a glued minus where unary")
    func integers() throws {
        #expect(try tokens("1_000_000") == [.int(1_000_000)])
        #expect(try tokens("0xFF 0o17 0b1010") == [.int(255), .int(15), .int(10)])
        #expect(try tokens("0xFFFF_FFFF_FFFF_FFFF") == [.int(-1)])
        #expect(try tokens("-9223372036854775808") == [.int(.min)])
        #expect(try tokens("x = -5") == [.identifier("x"), .symbol(.assign), .int(-5)])
        #expect(try tokens("x -5") == [.identifier("x"), .symbol(.minus), .int(5)])
        #expect(try tokens("(1)-2") == [.symbol(.leftParen), .int(1), .symbol(.rightParen), .symbol(.minus), .int(2)])
        // A decimal too large for i64 is read as a float.
        #expect(try tokens("9223372036854775808") == [.float(9223372036854775808.0)])
    }

    @Test("Floats: exponents, a trailing dot before a symbol, ranges and method calls stay apart")
    func floats() throws {
        #expect(try tokens("123.456 1.5e-3 1e10 1E+2 123456e-3") == [.float(123.456), .float(0.0015), .float(1e10), .float(100), .float(123.456)])
        #expect(try tokens("1.)") == [.float(1), .symbol(.rightParen)])
        #expect(try tokens("1..2") == [.int(1), .symbol(.range), .int(2)])
        #expect(try tokens("1..=2") == [.int(1), .symbol(.inclusiveRange), .int(2)])
        #expect(try tokens("1.abs()") == [.int(1), .symbol(.dot), .identifier("abs"), .symbol(.leftParen), .symbol(.rightParen)])
        #expect(lexError("123.456e1.23")?.message.contains("Invalid number") == true)
        #expect(lexError("3abc")?.message == "Invalid number: '3abc'")
    }

    @Test("Strings: escapes, doubled quotes, line continuation, unterminated")
    func strings() throws {
        #expect(try tokens(#""a\tb\n\x41\u00e9\U0001F600""#) == [.string("a\tb\nAé😀")])
        #expect(try tokens(#""a""b""#) == [.string("a\"b")])
        // The next line's indentation goes up to and including the opening quote's column.
        #expect(try tokens("   \"abc\\\n     def\"") == [.string("abc def")])
        #expect(try tokens("\"abc\\\ndef\"") == [.string("abcdef")])
        #expect(lexError(#""bad \q""#)?.message.contains("Invalid escape sequence") == true)
        #expect(lexError(#""bad \'""#)?.message.contains("Invalid escape sequence") == true)
        #expect(lexError("\"open\nstring\"")?.message == "Open string is not terminated")
    }

    @Test("Backtick strings: verbatim, first newline dropped, interpolation, doubled backtick")
    func backticks() throws {
        #expect(try tokens("`a\\nb`") == [.string("a\\nb")])
        #expect(try tokens("`\nline`") == [.string("line")])
        #expect(try tokens("`a``b`") == [.string("a`b")])
        let parts = try tokens("`x = ${x + 1}!`")
        guard case .interpolated(let p)? = parts.first else {
            Issue.record("not interpolated: \(parts)")
            return
        }
        #expect(p.count == 3)
        #expect(p[0] == .text("x = "))
        if case .code(let code, _) = p[1] { #expect(code == "x + 1") } else { Issue.record("no code part") }
        #expect(p[2] == .text("!"))
        #expect(try tokens("`\\${x}`") == [.string("${x}")])
        let nested = try tokens("`${ #{a: \"}\"}.a }`")
        if case .interpolated(let q)? = nested.first, case .code(let code, _) = q[0] {
            #expect(code == " #{a: \"}\"}.a ")
        } else {
            Issue.record("nested braces and strings inside ${} were not skipped: \(nested)")
        }
    }

    @Test("Raw strings and chars")
    func rawAndChars() throws {
        #expect(try tokens(##"#"Test"#"##) == [.string("Test")])
        #expect(try tokens(###"##"a "# b"##"###) == [.string("a \"# b")])
        #expect(try tokens(#"'x' '\n' '\'' 'é'"#) == [.char("x"), .char("\n"), .char("'"), .char("é")])
        #expect(lexError("''")?.message == "Invalid character")
        #expect(lexError("'ab'")?.message == "Invalid character")
    }

    @Test("Comments nest; doc comments are comments")
    func comments() throws {
        #expect(try tokens("1 // two\n3") == [.int(1), .int(3)])
        #expect(try tokens("1 /* a /* b */ c */ 2") == [.int(1), .int(2)])
        #expect(try tokens("/// doc\n/** doc */ x") == [.identifier("x")])
        #expect(lexError("/* open /* */")?.message == "Open block comment is not terminated")
    }

    @Test("Keywords, reserved words, identifiers")
    func words() throws {
        #expect(try tokens("let x = true") == [.keyword(.let), .identifier("x"), .symbol(.assign), .keyword(.true)])
        #expect(try tokens("var") == [.reservedWord("var")])
        #expect(try tokens("_r2d2_ c3po _") == [.identifier("_r2d2_"), .identifier("c3po"), .identifier("_")])
        #expect(lexError("_42foo")?.message == "Invalid identifier: '_42foo'")
    }

    @Test("Operators take the longest spelling; reserved symbols are marked")
    func operators() throws {
        #expect(try tokens("a **= 2 ?? b ?. c ?[0]").map { if case .symbol(let s) = $0 { return s.rawValue } else { return "·" } }
                == ["·", "**=", "·", "??", "·", "?.", "·", "?[", "·", "]"])
        #expect(try tokens("x !in y") == [.identifier("x"), .symbol(.notIn), .identifier("y")])
        #expect(try tokens("!inside") == [.symbol(.bang), .identifier("inside")])
        #expect(try tokens("#{a: 1}").first == .symbol(.mapStart))
        #expect(try tokens("x++") == [.identifier("x"), .reservedSymbol("++")])
        #expect(try tokens("a === b")[1] == .reservedSymbol("==="))
        #expect(lexError("a § b")?.message == "Unknown operator: '§'")
    }

    @Test("Positions are 1-based lines and columns")
    func positions() throws {
        let located = try Lexer.tokenize("let x =\n  `é${y}`")
        #expect(located[0].position == ScriptPosition(line: 1, column: 1))
        #expect(located[2].position == ScriptPosition(line: 1, column: 7))
        #expect(located[3].position == ScriptPosition(line: 2, column: 3))
        guard case .interpolated(let parts) = located[3].token, case .code(_, let at) = parts[1] else {
            Issue.record("expected interpolation")
            return
        }
        #expect(at == ScriptPosition(line: 2, column: 7))
        #expect(lexError("1 +\n  \"open")?.position == ScriptPosition(line: 2, column: 3))
    }
}
