@testable import SluiceScript
import SluiceTesting
import Testing

@Suite("Rhai limits and robustness")
struct SafetyTests {
    @Test("Each limit stops a script with Rhai's error")
    func limits() {
        var ops = ScriptLimits()
        ops.maxOperations = 1000
        #expect(run("loop {}", limits: ops) == "error runtime ErrorTooManyOperations")
        #expect(run("try { loop {} } catch { 1 }", limits: ops) == "error runtime ErrorTooManyOperations")
        var calls = ScriptLimits()
        calls.maxCallLevels = 10
        #expect(run("fn f(n) { f(n + 1) } f(0)", limits: calls) == "error runtime ErrorStackOverflow")
        var strings = ScriptLimits()
        strings.maxStringSize = 100
        #expect(run("let s = \"x\"; loop { s += s; }", limits: strings) == "error runtime ErrorDataTooLarge")
        var arrays = ScriptLimits()
        arrays.maxArraySize = 50
        #expect(run("let a = []; loop { a.push(1); }", limits: arrays) == "error runtime ErrorDataTooLarge")
        var maps = ScriptLimits()
        maps.maxMapSize = 5
        #expect(run("let m = #{}; for i in 0..10 { m[`k${i}`] = i; } m", limits: maps) == "error runtime ErrorDataTooLarge")
        // A nested container that grows through an element counts against the whole variable;
        // rewriting elements of a full one does not.
        #expect(run("let a = [[], []]; for i in 0..60 { a[i % 2] += [i]; } a", limits: arrays) == "error runtime ErrorDataTooLarge")
        #expect(run("let m = #{x: #{}}; for i in 0..10 { m.x[`k${i}`] = i; } m", limits: maps) == "error runtime ErrorDataTooLarge")
        #expect(run("let a = []; a.pad(50, 0); for i in 0..500 { a[i % 50] = i; } a[7]", limits: arrays) == "457")
        var depth = ScriptLimits()
        depth.maxExpressionDepth = 10
        #expect(run(String(repeating: "(", count: 20) + "1" + String(repeating: ")", count: 20), limits: depth) == "error parse ExprTooDeep")
    }

    @Test("Deep recursion at the default call limit does not crash")
    func defaultRecursion() {
        #expect(run("fn f(n) { if n == 0 { 0 } else { 1 + f(n - 1) } } f(60)") == "60")
        #expect(run("fn f(n) { f(n + 1) } f(0)") == "error runtime ErrorStackOverflow")
    }

    static let seeds = [
        "let x = [1, 2, 3]; for i in x { if i > 1 { break i; } } x.map(|v| v * 2)",
        "fn f(a, b) { a + b * 2 } let m = #{a: 1, b: [1, 2]}; m.b[1] = f(3, 4); m",
        "let s = `v=${40 + 2}`; switch s.len() { 4 => s.to_upper(), _ => s }",
        "let t = 0; while t < 10 { t += 1; if t % 3 == 0 { continue; } } try { throw t } catch (e) { e }",
        "let a = \"hello\"; a.pad(8, '*'); a.sub_string(-3) + a[0] + 0x1F + 1.5e3",
    ]
    static let fragments = ["(", ")", "{", "}", "[", "]", "#{", "|", "||", ",", ";", ".", "?.", "?[", "..", "..=", "+", "-", "**",
                            "<<", "=", "==", "!", "&&", "??", "let", "fn", "if", "else", "loop", "break", "return", "throw",
                            "switch", "=>", "_", "x", "1", "-9223372036854775808", "1e308", "\"s\"", "'c'", "`${", "this",
                            "call", "Fn(\"x\")", "eval(\"1\")", "for", "in", "do", "while", "try", "catch", "\n", "/*", "//"]

    @Test("Random and mutated scripts never crash or hang the interpreter")
    func fuzz() {
        var g = SeededGenerator(seed: 0x5EED)
        var limits = ScriptLimits()
        limits.maxOperations = 20_000
        limits.maxStringSize = 10_000
        limits.maxArraySize = 10_000
        limits.maxMapSize = 1_000
        let engine = ScriptEngine(limits: limits)
        engine.onPrint = { _ in }
        engine.onDebug = { _ in }
        var outcomes = [0, 0]
        for round in 0..<3_000 {
            var script: String
            if round % 2 == 0 {
                // Mutate a valid script: delete, duplicate or insert pieces.
                var chars = Array(g.pick(Self.seeds))
                for _ in 0..<(1 + g.next() % 4) {
                    let i = Int(g.next() % UInt64(chars.count + 1))
                    switch g.next() % 3 {
                    case 0 where i < chars.count: chars.remove(at: i)
                    case 1: chars.insert(contentsOf: g.pick(Self.fragments), at: i)
                    default:
                        let j = min(chars.count, i + Int(g.next() % 6))
                        chars.insert(contentsOf: chars[i..<j], at: j)
                    }
                }
                script = String(chars)
            } else {
                script = (0..<(1 + g.next() % 30)).map { _ in g.pick(Self.fragments) }.joined(separator: g.next() % 2 == 0 ? " " : "")
            }
            do {
                _ = try engine.eval(script)
                outcomes[0] += 1
            } catch {
                #expect(!error.message.isEmpty, "\(script)")
                outcomes[1] += 1
            }
        }
        // Both kinds of outcome happen, so the generator is exercising the interpreter.
        #expect(outcomes[0] > 50)
        #expect(outcomes[1] > 50)
    }
}
