@testable import SluiceScript
import Testing

/// Evaluates and gives the result's debug text (strings quoted), or the error.
func run(_ source: String, limits: ScriptLimits = ScriptLimits()) -> String {
    let engine = ScriptEngine(limits: limits)
    engine.onPrint = { _ in }
    do {
        return try engine.eval(source).debugText
    } catch {
        return "error \(error.phase.rawValue) \(error.kind)"
    }
}

@Suite("Rhai language")
struct InterpreterTests {
    @Test("mayRead: false only when no code names the host variable and nothing reaches variables by name")
    func mayRead() throws {
        let engine = ScriptEngine()
        func reads(_ source: String) throws -> Bool { try engine.compile(source, scope: ["event", "ctx"]).mayRead("ctx") }
        #expect(try !reads("event.data + 1"))
        #expect(try !reads(#"let x = #{ctx: 1}; x.ctx + "ctx".len()"#), "a map key, a property and a string are not the variable")
        #expect(try reads("ctx.meta"))
        #expect(try reads("let f = || ctx.flow; f.call()"), "a closure's capture")
        #expect(try reads("`run ${ctx.run_id}`"), "inside an interpolation")
        #expect(try reads(#"eval("1")"#), "eval may name any variable")
        #expect(try reads("fn peek() { 1 } peek!()"), "a function called in the caller's scope")
        #expect(try engine.compile("event.data", scope: ["event", "ctx"]).mayRead("event"))
        func readsMeta(_ source: String) throws -> Bool { try engine.compile(source, scope: ["event", "ctx"]).mayRead("event", property: "meta") }
        #expect(try !readsMeta("event.data.x + event.id.len(); event.data.push(1)"))
        #expect(try readsMeta("event.meta.path"))
        #expect(try readsMeta("event"), "returned whole")
        #expect(try readsMeta(#"event["meta"]"#), "indexed")
        #expect(try readsMeta("event.keys()"), "a method of the whole map")
        #expect(try readsMeta("for k in event.data { }; let e = event; e.meta"), "copied whole")
        #expect(try readsMeta(#""meta" in event"#))
        #expect(try readsMeta("let f = |x| x; f.call(event)"), "passed on")
    }

    @Test("Precedence, overflow and mixed arithmetic follow Rhai")
    func arithmetic() {
        #expect(run("2 ** 3 ** 2") == "512")
        #expect(run("1 + 2 << 3") == "17")
        #expect(run("-2 ** 2") == "4")
        #expect(run("7 / 2 + 7 % 3 * 1.5") == "4.5")
        #expect(run("9223372036854775807 + 1") == "error runtime ErrorArithmetic")
        #expect(run("1 / 0") == "error runtime ErrorArithmetic")
        #expect(run("10 << -1") == "5")
        #expect(run("0.1 + 0.2 == 0.3") == "true")
        #expect(run("\"42\" == 42") == "false")
        #expect(run("1e20") == "1e20")
    }

    @Test("Strings: interpolation, escapes, methods in place and by value")
    func strings() {
        #expect(run("let n = 3; `n=${n * 2}!`") == "\"n=6!\"")
        #expect(run("let s = \"  hi  \"; s.trim(); s + \"|\"") == "\"hi|\"")
        #expect(run("\"a,b,,c\".split(\",\")") == "[\"a\", \"b\", \"\", \"c\"]")
        #expect(run("let s = \"hello\"; s[1] = 'a'; s[-1] + s.sub_string(1, 3)") == "\"oall\"")
        #expect(run("\"héllo\".len") == "5")
        #expect(run("\"x\" + () + 1 + 'c'") == "\"x1c\"")
    }

    @Test("Arrays and maps: nested mutation, callbacks, sorted keys")
    func collections() {
        #expect(run("let a = [3, 1, 2]; a.sort(); a.push(4); a") == "[1, 2, 3, 4]")
        #expect(run("let m = #{b: 1, a: #{list: [1]}}; m.a.list.push(2); m.a.list[-1] += 5; m") == "#{\"a\": #{\"list\": [1, 7]}, \"b\": 1}")
        #expect(run("[1, 2, 3, 4].filter(|x| x % 2 == 0).map(|x, i| x * i).reduce(|s, x| s + x, 0)") == "4")
        #expect(run("let m = #{}; m.missing") == "()")
        #expect(run("[1, 2][5]") == "error runtime ErrorArrayBounds")
        #expect(run("\"c\" in #{c: 1} && 2 in [1, 2] && 'e' in \"hello\"") == "true")
        #expect(run("#{a: [1, \"x\"], b: ()}.to_json()") == "\"{\\\"a\\\":[1,\\\"x\\\"],\\\"b\\\":null}\"")
        #expect(run("parse_json(\"{\\\"k\\\": [1, 2.5, null]}\").k") == "[1, 2.5, ()]")
    }

    @Test("Control flow: loops are expressions, switch, try/catch")
    func controlFlow() {
        #expect(run("let i = 0; let r = loop { i += 1; if i == 5 { break i * 10; } }; r") == "50")
        #expect(run("let s = 0; for (x, i) in [10, 20] { s += x * i; } s") == "20")
        #expect(run("switch 7 { 1 | 2 => \"low\", 3..10 if false => \"no\", 3..10 => \"mid\", _ => \"high\" }") == "\"mid\"")
        #expect(run("let r = try { throw 42; } catch (e) { e + 1 }; r") == "()")
        #expect(run("let v = 0; try { 1 / 0 } catch (e) { v = e.error }; v") == "\"ErrorArithmetic\"")
        #expect(run("let x = 0; do { x += 1 } until x >= 3; x") == "3")
    }

    @Test("Functions: recursion, closures sharing captures, curry, this")
    func functions() {
        #expect(run("fn fib(n) { if n < 2 { n } else { fib(n - 1) + fib(n - 2) } } fib(15)") == "610")
        #expect(run("let x = 1; let f = |y| x + y; x = 10; f.call(5)") == "15")
        #expect(run("let add = |a, b| a + b; let inc = add.curry(1); inc.call(41)") == "42")
        #expect(run("fn grow(n) { this += n } let v = 40; v.grow(2); v") == "42")
        #expect(run("fn f() { x } let x = 1; f()") == "error runtime ErrorInFunctionCall")
        #expect(run("const c = [1]; c.push(2)") == "error runtime ErrorNonPureMethodCallOnConstant")
        #expect(run("let f = Fn(\"to_upper\"); f.call(\"a\")") == "\"A\"")
    }

    @Test("Mutating methods change the variable in place and leave copies alone")
    func mutatorsKeepValueSemantics() {
        let cases: [(String, String)] = [
            ("a.pop()", "[[1, 2], [1, 2, 3]]"),
            ("a.shift()", "[[2, 3], [1, 2, 3]]"),
            ("a.remove(-2)", "[[1, 3], [1, 2, 3]]"),
            ("a.set(0, 9)", "[[9, 2, 3], [1, 2, 3]]"),
            ("a.insert(-1, 0)", "[[1, 2, 0, 3], [1, 2, 3]]"),
            ("a.splice(1, 1, [7, 8])", "[[1, 7, 8, 3], [1, 2, 3]]"),
            ("a.append([4])", "[[1, 2, 3, 4], [1, 2, 3]]"),
            ("a.pad(4, 0)", "[[1, 2, 3, 0], [1, 2, 3]]"),
            ("a += 4", "[[1, 2, 3, 4], [1, 2, 3]]"),
            ("a[-1] = 9", "[[1, 2, 9], [1, 2, 3]]"),
            ("a[0] = [0]", "[[[0], 2, 3], [1, 2, 3]]"),
        ]
        for (op, expected) in cases {
            #expect(run("let a = [1, 2, 3]; let b = a; \(op); [a, b]") == expected, "\(op)")
        }
        #expect(run("let m = #{x: 1}; let n = m; m.set(\"y\", 2); m.remove(\"x\"); [m, n]") == "[#{\"y\": 2}, #{\"x\": 1}]")
        #expect(run("let b = blob(2, 7); let c = b; b.pop(); b.push(1); b.append(\"A\"); [b, c]") == "[[070141], [0707]]")
        #expect(run("let b = blob(); [b.pop(), b.shift()]") == "[0, 0]")
        #expect(run("let a = [1]; a[1] = 2") == "error runtime ErrorArrayBounds")
        #expect(run("let a = [1]; a[-2] = 2") == "error runtime ErrorArrayBounds")
    }

    @Test("name!() runs a function in the caller's scope; its own lets and parameters stay its own")
    func scopedCalls() {
        #expect(run("fn f() { a = a * 2; let b = 1; a + b } let a = 20; let b = 100; f!() + a + b") == "181")
        #expect(run("fn f(a) { a += 1; a } let a = 5; f!(10) + a") == "16")
        #expect(run("fn f(n) { total += n } let total = 1; let p = Fn(\"f\"); call!(p, 41); total") == "42")
        #expect(run("fn g() { a } fn f() { g() } let a = 1; f!()") == "error runtime ErrorInFunctionCall")
        #expect(run("fn f() { nope = 1 } f!()") == "error runtime ErrorInFunctionCall")
        #expect(run("undefined = 1") == "error runtime ErrorVariableNotFound")
    }

    @Test("eval: variables it defines stay in scope, constants at the top level are global")
    func evalScope() {
        #expect(run("let x = 2; eval(\"let y = x * 20\"); y + x") == "42")
        #expect(run("const K = 1; fn k() { global::K } eval(\"const K = 2;\"); k()") == "2")
        #expect(run("const K = 1; fn k() { global::K } { eval(\"const K = 2;\"); } k()") == "1")
    }

    @Test("Parse errors say what and where")
    func parseErrors() {
        #expect(run("let x = ;") == "error parse ErrorParsing" || run("let x = ;").hasPrefix("error parse"))
        #expect(run("x++").hasPrefix("error parse"))
        #expect(run("fn a() {} fn a() {}").hasPrefix("error parse"))
        #expect(run("break;").hasPrefix("error parse"))
        do {
            _ = try ScriptEngine().compile("let a = 1;\nlet b = a +* 2;")
            Issue.record("expected a syntax error")
        } catch {
            #expect(error.position == ScriptPosition(line: 2, column: 12))
        }
    }
}
