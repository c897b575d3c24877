import Testing

@testable import SluiceCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

private let event: Value = [
    "id": "evt-1",
    "data": [
        "status": "active",
        "amount": 150,
        "price": 9.5,
        "tags": ["red", "green"],
        "items": [["id": 1, "qty": 2], ["id": 2, "qty": 0]],
        "nested": ["deep": ["x": 1]],
        "nothing": nil,
        "name": "Ada Lovelace",
        "empty": "",
        "list": [],
        "map": [:],
    ],
]

private let variables: Value.Object = [
    "event": event,
    "n": 5,
    "f": 2.5,
    "s": "hello",
    "t": true,
    "u": nil,
    "big": .int(Int64.max),
    "small": .int(Int64.min),
    "blob": .bytes([1, 2, 255]),
]

private func evaluate(_ source: String, _ vars: Value.Object = variables) throws -> Value {
    try ConditionExpression(source).evaluate(vars)
}

/// The message of the evaluation error `source` raises, or nil when it evaluates.
private func evaluationError(_ source: String, _ vars: Value.Object = variables) throws -> String? {
    let expression = try ConditionExpression(source)
    do {
        _ = try expression.evaluate(vars)
        return nil
    } catch {
        return error.message
    }
}

private func parseError(_ source: String) -> ConditionExpression.ParseError? {
    do {
        _ = try ConditionExpression(source)
        return nil
    } catch {
        return error
    }
}

@Suite("ConditionExpression")
struct ConditionExpressionTests {
    // MARK: Literals

    @Test(arguments: [
        ("42", Value.int(42)),
        ("1_000_000", .int(1_000_000)),
        ("0xff", .int(255)),
        ("0xFF_FF", .int(65535)),
        ("0o17", .int(15)),
        ("0b101", .int(5)),
        ("9223372036854775807", .int(Int64.max)),
        ("1.5", .double(1.5)),
        ("1e3", .double(1000)),
        ("2.5e-3", .double(0.0025)),
        ("1_000.25", .double(1000.25)),
        ("1.", .double(1)),
        ("\"hi\"", .string("hi")),
        ("\"a\\nb\\tc\\rd\"", .string("a\nb\tc\rd")),
        ("\"q\\\"\\\\\\'\"", .string("q\"\\'")),
        ("\"\\u00e9\\u20AC\"", .string("é€")),
        ("\"héllo 😀\"", .string("héllo 😀")),
        ("'a'", .string("a")),
        ("'\\n'", .string("\n")),
        ("'é'", .string("é")),
        ("true", .bool(true)),
        ("false", .bool(false)),
        ("()", .null),
        ("( )", .null),
        ("[]", .array([])),
        ("[1, \"a\", [true],]", .array([1, "a", [true]])),
        ("#{}", .object([:])),
        ("#{a: 1, \"b c\": [2], d: #{e: ()},}", .object(["a": 1, "b c": [2], "d": ["e": nil]])),
        ("  42 // a comment", .int(42)),
        ("/* a /* nested */ comment */ 7", .int(7)),
        ("1 +\n 2", .int(3)),
    ])
    func literals(source: String, expected: Value) throws {
        #expect(try evaluate(source) == expected)
    }

    // MARK: Precedence (Rhai's table: || && ==,!= in <,<=,>,>= ?? +,- *,/,% ** unary postfix)

    @Test(arguments: [
        ("1 + 2 * 3", Value.int(7)),
        ("(1 + 2) * 3", .int(9)),
        ("10 - 4 - 3", .int(3)),
        ("100 / 10 / 5", .int(2)),
        ("7 % 4 * 3", .int(9)),
        ("2 * 3 % 4", .int(2)),
        ("2 ** 3 ** 2", .int(512)),
        ("(2 ** 3) ** 2", .int(64)),
        ("-2 ** 2", .int(4)),
        ("2 ** -1.0", .double(0.5)),
        ("-n", .int(-5)),
        ("-n * 2", .int(-10)),
        ("- -n", .int(5)),
        ("+n", .int(5)),
        ("!true || true", .bool(true)),
        ("!(true || true)", .bool(false)),
        ("true || false && false", .bool(true)),
        ("(true || false) && false", .bool(false)),
        ("1 < 2 == 3 < 4", .bool(true)),
        ("1 + 1 == 2", .bool(true)),
        ("1 == 1 && 2 == 2", .bool(true)),
        // `??` binds tighter than comparisons and looser than `+`.
        ("2 ?? 1 == 1", .bool(false)),
        ("() ?? 1 + 2", .int(3)),
        ("u ?? 0 > 5", .bool(false)),
        ("u ?? 10 > 5", .bool(true)),
        // `in` binds looser than `<` and tighter than `==`.
        ("1 < 2 in [true]", .bool(true)),
        ("1 in [1] == true", .bool(true)),
        ("\"a\" + \"b\" in [\"ab\"]", .bool(true)),
        ("-event.data.amount", .int(-150)),
        ("!event.data.tags.is_empty()", .bool(true)),
        ("event.data.amount > 100 && event.data.status == \"active\"", .bool(true)),
        ("event.data.amount > 200 || event.data.status != \"active\"", .bool(false)),
    ])
    func precedence(source: String, expected: Value) throws {
        #expect(try evaluate(source) == expected)
    }

    // MARK: Arithmetic

    @Test(arguments: [
        ("7 + 3", Value.int(10)),
        ("7 - 10", .int(-3)),
        ("7 * -3", .int(-21)),
        ("7 / 2", .int(3)),
        ("-7 / 2", .int(-3)),
        ("7 % 3", .int(1)),
        ("-7 % 3", .int(-1)),
        ("2 ** 10", .int(1024)),
        ("(-2) ** 63", .int(Int64.min)),
        ("0 ** 0", .int(1)),
        ("1 + 0.5", .double(1.5)),
        ("0.5 + 1", .double(1.5)),
        ("f * 2", .double(5)),
        ("7 / 2.0", .double(3.5)),
        ("7.5 % 2", .double(1.5)),
        ("-7.5 % 2", .double(-1.5)),
        ("1.0 / 0.0", .double(.infinity)),
        ("-1 / 0.0", .double(-.infinity)),
        ("4.0 ** 0.5", .double(2)),
        ("2 ** 0.5 * 2 ** 0.5 > 1.9999", .bool(true)),
        ("\"a\" + \"b\"", .string("ab")),
        ("\"n=\" + n", .string("n=5")),
        ("n + \"!\"", .string("5!")),
        ("\"x\" + 1.0", .string("x1.0")),
        ("\"x\" + 0.1", .string("x0.1")),
        ("\"x\" + 2.5e-3", .string("x0.0025")),
        ("\"x\" + 1e20", .string("x1e20")),
        ("\"x\" + -1.5e-14", .string("x-1.5e-14")),
        ("\"x\" + 1e12", .string("x1000000000000.0")),
        ("\"x\" + true", .string("xtrue")),
        ("false + \"x\"", .string("falsex")),
        ("\"x\" + ()", .string("x")),
        ("() + \"x\"", .string("x")),
        ("\"x\" + 'y'", .string("xy")),
        ("[1] + [2, 3]", .array([1, 2, 3])),
        ("#{a: 1, b: 1} + #{b: 2}", .object(["a": 1, "b": 2])),
    ])
    func arithmetic(source: String, expected: Value) throws {
        #expect(try evaluate(source) == expected)
    }

    @Test func nanIsNotEqualToItself() throws {
        #expect(try evaluate("0.0 / 0.0 == 0.0 / 0.0") == false)
        #expect(try evaluate("0.0 / 0.0 != 0.0 / 0.0") == true)
        #expect(try evaluate("\"\" + 0.0 / 0.0") == "NaN")
    }

    // MARK: Comparison and equality

    @Test(arguments: [
        ("1 == 1.0", Value.bool(true)),
        ("1.0 == 1", .bool(true)),
        ("1 != 1.0", .bool(false)),
        ("2 > 1.5", .bool(true)),
        ("1.5 <= 1", .bool(false)),
        ("3 >= 3", .bool(true)),
        ("\"abc\" < \"abd\"", .bool(true)),
        ("\"Z\" < \"a\"", .bool(true)),
        ("\"b\" >= \"abc\"", .bool(true)),
        ("\"é\" > \"z\"", .bool(true)),
        ("false < true", .bool(true)),
        ("'a' == \"a\"", .bool(true)),
        // Different types: == is false, != is true, ordering is false.
        ("1 == \"1\"", .bool(false)),
        ("1 != \"1\"", .bool(true)),
        ("1 < \"2\"", .bool(false)),
        ("1 >= \"0\"", .bool(false)),
        ("true == 1", .bool(false)),
        ("() == false", .bool(false)),
        ("u == ()", .bool(true)),
        ("u != ()", .bool(false)),
        ("() < ()", .bool(false)),
        ("() <= ()", .bool(false)),
        ("event.data.missing == ()", .bool(true)),
        ("event.data.missing > 10", .bool(false)),
        // Deep equality.
        ("[1, [2, \"x\"]] == [1, [2, \"x\"]]", .bool(true)),
        ("[1, 2] == [1.0, 2.0]", .bool(true)),
        ("[1, 2] == [2, 1]", .bool(false)),
        ("[1, 2] != [1]", .bool(true)),
        ("#{a: 1, b: [2]} == #{b: [2], a: 1}", .bool(true)),
        ("#{a: 1} == #{a: 2}", .bool(false)),
        ("#{a: 1} == #{b: 1}", .bool(false)),
        ("event.data.tags == [\"red\", \"green\"]", .bool(true)),
        ("event.data.nested == #{deep: #{x: 1.0}}", .bool(true)),
        ("blob == blob", .bool(true)),
        ("[1] == #{}", .bool(false)),
    ])
    func comparison(source: String, expected: Value) throws {
        #expect(try evaluate(source) == expected)
    }

    @Test func deeplyNestedValuesCompare() throws {
        var a: Value = 1
        var b: Value = 1.0
        for i in 0..<5000 {
            a = i % 2 == 0 ? [a] : ["k": a]
            b = i % 2 == 0 ? [b] : ["k": b]
        }
        let vars: Value.Object = ["a": a, "b": b, "c": [a, 2]]
        #expect(try evaluate("a == b", vars) == true)
        #expect(try evaluate("a != b", vars) == false)
        #expect(try evaluate("b in c", vars) == true)
        #expect(try evaluate("a == c", vars) == false)
    }

    // MARK: Logic

    @Test func logicShortCircuits() throws {
        #expect(try evaluate("false && undefined_variable") == false)
        #expect(try evaluate("true || 1 / 0 == 0") == true)
        #expect(try evaluate("false && 1 || true") == true)
        #expect(try evaluate("1 ?? undefined_variable") == 1)
        #expect(try evaluate("() ?? () ?? 3") == 3)
        #expect(try evaluate("u ?? event.data.nothing ?? \"fallback\"") == "fallback")
        #expect(try evaluate("event.data.amount ?? 0") == 150)
        #expect(try evaluate("false ?? true") == false)
        // Short-circuits across precedence levels.
        #expect(try evaluate("false && missing || true") == true)
        #expect(try evaluate("true || missing && missing") == true)
        #expect(try evaluate("false && missing && missing || false || true") == true)
        #expect(try evaluate("t && (false || t) && !(true && false)") == true)
        #expect(try evaluate("1 ?? missing ?? missing") == 1)
        #expect(try evaluate("1 < u ?? 5 && 2 ?? missing > 1") == true)
        #expect(try evaluate("(u ?? false) || n ?? 0 > 3") == true)
    }

    @Test(arguments: [
        ("1 && true", "'&&' needs bools, but its left side is an integer (1)"),
        ("true && 1", "'&&' needs bools, but its right side is an integer (1)"),
        ("false || \"yes\"", "'||' needs bools, but its right side is a string (\"yes\")"),
        ("!1", "'!' needs a bool, but got an integer (1)"),
        ("!u", "'!' needs a bool, but got () (nothing)"),
        ("-\"x\"", "'-' needs a number, but got a string (\"x\")"),
    ])
    func logicNeedsBools(source: String, message: String) throws {
        #expect(try evaluationError(source) == message)
    }

    // MARK: Access

    @Test(arguments: [
        ("event.id", Value.string("evt-1")),
        ("event.data.status", .string("active")),
        ("event.data.nested.deep.x", .int(1)),
        ("event[\"data\"][\"status\"]", .string("active")),
        ("event.data[\"sta\" + \"tus\"]", .string("active")),
        ("event.data.tags[0]", .string("red")),
        ("event.data.tags[1]", .string("green")),
        ("event.data.tags[-1]", .string("green")),
        ("event.data.tags[-2]", .string("red")),
        ("event.data.items[1].id", .int(2)),
        ("event.data.items[-1][\"qty\"]", .int(0)),
        ("event.data.missing", .null),
        ("event[\"missing\"]", .null),
        ("event.data.nothing", .null),
        ("s[0]", .string("h")),
        ("s[-1]", .string("o")),
        ("blob[2]", .int(255)),
        ("[10, 20, 30][1]", .int(20)),
        ("#{a: #{b: 7}}.a.b", .int(7)),
        // Optional chaining short-circuits the rest of the chain.
        ("u?.a", .null),
        ("u?.a.b.c", .null),
        ("u?[0]", .null),
        ("u?[0][1].x", .null),
        ("u?.len()", .null),
        ("event.data.missing?.x", .null),
        ("event.data.missing?.x.y[3]", .null),
        ("event.data?.status", .string("active")),
        ("event.data.tags?[0]", .string("red")),
        ("event.data.nested?.deep?.x", .int(1)),
        ("event.data.missing?.x ?? \"default\"", .string("default")),
    ])
    func access(source: String, expected: Value) throws {
        #expect(try evaluate(source) == expected)
    }

    @Test(arguments: [
        ("event.data.tags[2]", "array index 2 is out of bounds: the array has 2 elements"),
        ("event.data.tags[-3]", "array index -3 is out of bounds: the array has 2 elements"),
        ("event.data.list[0]", "array index 0 is out of bounds: the array has 0 elements"),
        ("event.data.tags[\"x\"]", "an array index must be an integer, not a string (\"x\")"),
        ("event.data.tags[1.0]", "an array index must be an integer, not a float (1.0)"),
        ("event[0]", "an object key must be a string, not an integer (0)"),
        ("s[5]", "string index 5 is out of bounds: the string has 5 characters"),
        ("n[0]", "cannot index an integer (5)"),
        ("u[0]", "cannot index () (use '?[' where it may be missing)"),
        ("event.data.missing.x", "cannot read property 'x' of () (use '?.' where it may be missing)"),
        ("event.data.missing[0]", "cannot index () (use '?[' where it may be missing)"),
        ("s.len", "cannot read property 'len' of a string (\"hello\"); only objects have properties"),
        ("event.data.tags.first", "cannot read property 'first' of an array; only objects have properties"),
        ("missing", "variable 'missing' is not defined"),
        ("event.data.status == \"x\" || nope.a", "variable 'nope' is not defined"),
    ])
    func accessErrors(source: String, message: String) throws {
        #expect(try evaluationError(source) == message)
    }

    // MARK: in

    @Test(arguments: [
        ("\"ell\" in s", Value.bool(true)),
        ("\"\" in s", .bool(true)),
        ("'h' in s", .bool(true)),
        ("\"xyz\" in s", .bool(false)),
        ("\"hello!\" in s", .bool(false)),
        ("\"aab\" in \"aaab\"", .bool(true)),
        ("\"abab\" in \"abaabab\"", .bool(true)),
        ("\"red\" in event.data.tags", .bool(true)),
        ("\"blue\" in event.data.tags", .bool(false)),
        ("\"blue\" !in event.data.tags", .bool(true)),
        ("1.0 in [1, 2]", .bool(true)),
        ("[2] in [[1], [2]]", .bool(true)),
        ("\"1\" in [1, 2]", .bool(false)),
        ("() in [1, ()]", .bool(true)),
        ("\"status\" in event.data", .bool(true)),
        ("\"nothing\" in event.data", .bool(true)),
        ("\"missing\" in event.data", .bool(false)),
        ("\"missing\" !in event.data", .bool(true)),
        ("event.data.status in [\"active\", \"pending\"]", .bool(true)),
        ("!(\"x\" in s)", .bool(true)),
    ])
    func containment(source: String, expected: Value) throws {
        #expect(try evaluate(source) == expected)
    }

    @Test(arguments: [
        ("1 in s", "'in' can only look for a string in a string, not an integer (1)"),
        ("1 in event.data", "'in' can only look for a string key in an object, not an integer (1)"),
        ("1 in 5", "'in' needs a string, array or object to look in, but got an integer (5)"),
        ("1 !in u", "'!in' needs a string, array or object to look in, but got () (nothing)"),
    ])
    func containmentErrors(source: String, message: String) throws {
        #expect(try evaluationError(source) == message)
    }

    // MARK: Methods

    @Test(arguments: [
        ("s.len()", Value.int(5)),
        ("\"h\\u00e9llo😀\".len()", .int(6)),
        ("event.data.tags.len()", .int(2)),
        ("event.data.len()", .int(11)),
        ("blob.len()", .int(3)),
        ("len(s)", .int(5)),
        ("s.is_empty()", .bool(false)),
        ("event.data.empty.is_empty()", .bool(true)),
        ("event.data.list.is_empty()", .bool(true)),
        ("event.data.map.is_empty()", .bool(true)),
        ("is_empty(event.data.tags)", .bool(false)),
        ("s.contains(\"ell\")", .bool(true)),
        ("s.contains('z')", .bool(false)),
        ("event.data.tags.contains(\"green\")", .bool(true)),
        ("event.data.contains(\"amount\")", .bool(true)),
        ("contains(event.data.tags, \"blue\")", .bool(false)),
        ("event.data.name.starts_with(\"Ada\")", .bool(true)),
        ("event.data.name.starts_with(\"Lovelace\")", .bool(false)),
        ("event.data.name.ends_with(\"Lovelace\")", .bool(true)),
        ("s.starts_with(\"\")", .bool(true)),
        ("s.ends_with(\"hello world\")", .bool(false)),
        ("event.data.name.to_lower()", .string("ada lovelace")),
        ("event.data.name.to_upper()", .string("ADA LOVELACE")),
        ("to_upper(\"é\")", .string("É")),
        ("event.data.status.to_upper() == \"ACTIVE\"", .bool(true)),
        ("event.data.items.len() > 1 && event.data.items[0].qty > 0", .bool(true)),
    ])
    func methods(source: String, expected: Value) throws {
        #expect(try evaluate(source) == expected)
    }

    @Test(arguments: [
        ("s.reverse()", "unknown method 'reverse' (available: len, is_empty, contains, starts_with, ends_with, to_lower, to_upper)"),
        ("reverse(s)", "unknown function 'reverse' (available: len, is_empty, contains, starts_with, ends_with, to_lower, to_upper)"),
        ("type_of(s)", "unknown function 'type_of' (available: len, is_empty, contains, starts_with, ends_with, to_lower, to_upper)"),
        ("len()", "'len' needs a value to work on, as in 'len(x)' or 'x.len()'"),
        ("s.len(1)", "'len' takes no arguments, but was given 1"),
        ("s.contains()", "'contains' takes one argument, but was given 0"),
        ("n.len()", "'len' is not defined for an integer (5)"),
        ("u.len()", "'len' is not defined for () (nothing)"),
        ("event.data.tags.starts_with(\"r\")", "'starts_with' is not defined for an array"),
        ("s.ends_with(1)", "'ends_with' needs a string argument, not an integer (1)"),
        ("n.to_lower()", "'to_lower' is not defined for an integer (5)"),
        ("f.contains(1)", "'contains' is not defined for a float (2.5)"),
    ])
    func methodErrors(source: String, message: String) throws {
        #expect(try evaluationError(source) == message)
    }

    // MARK: Arithmetic errors

    @Test(arguments: [
        ("big + 1", "integer overflow: 9223372036854775807 + 1"),
        ("small - 1", "integer overflow: -9223372036854775808 - 1"),
        ("big * 2", "integer overflow: 9223372036854775807 * 2"),
        ("small / -1", "integer overflow: -9223372036854775808 / -1"),
        ("small % -1", "integer overflow: -9223372036854775808 % -1"),
        ("-small", "integer overflow: -(-9223372036854775808)"),
        ("2 ** 63", "integer overflow: 2 ** 63"),
        ("10 ** 4294967296", "integer overflow: 10 ** 4294967296"),
        ("2 ** -1", "integer raised to a negative power: 2 ** -1 (use a float, as in 2.0 ** -1)"),
        ("n / 0", "division by zero: 5 / 0"),
        ("n % 0", "division by zero: 5 % 0"),
        ("n / (n - 5)", "division by zero: 5 / 0"),
        ("\"a\" - \"b\"", "cannot apply '-' to a string (\"a\") and a string (\"b\")"),
        ("n * \"3\"", "cannot apply '*' to an integer (5) and a string (\"3\")"),
        ("true + 1", "cannot apply '+' to a bool (true) and an integer (1)"),
        ("u + 1", "cannot apply '+' to () (nothing) and an integer (1)"),
        ("\"a\" + [1]", "cannot apply '+' to a string (\"a\") and an array"),
        ("[1] ** 2", "cannot apply '**' to an array and an integer (2)"),
        ("[1] < [2]", "cannot compare two values of type array with '<'"),
        ("#{} >= #{}", "cannot compare two values of type object with '>='"),
    ])
    func arithmeticErrors(source: String, message: String) throws {
        #expect(try evaluationError(source) == message)
    }

    @Test func bigIntegerArithmeticStaysExact() throws {
        #expect(try evaluate("big - 1 + 1") == .int(Int64.max))
        #expect(try evaluate("small + big") == -1)
        #expect(try evaluate("3037000499 ** 2") == .int(9_223_372_030_926_249_001))
        #expect(try evaluate("1 ** 4294967295") == 1)
    }

    // MARK: isSatisfied

    @Test func isSatisfiedNeedsABool() throws {
        let vars: Value.Object = ["event": event]
        #expect(try ConditionExpression("event.data.status == \"active\" && event.data.amount > 100").isSatisfied(by: vars))
        #expect(try !ConditionExpression("event.data.amount > 1000").isSatisfied(by: vars))
        #expect(try !ConditionExpression("false").isSatisfied(by: vars))

        let cases: [(String, String)] = [
            ("event.data.amount", "an integer (150)"),
            ("event.data.status", "a string (\"active\")"),
            ("event.data.missing", "() (nothing)"),
            ("event.data.tags", "an array"),
            ("event.data.price", "a float (9.5)"),
        ]
        for (source, produced) in cases {
            let expression = try ConditionExpression(source)
            #expect(throws: ConditionExpression.EvaluationError(
                "the condition must produce a bool (true or false), but it produced \(produced)")) {
                try expression.isSatisfied(by: vars)
            }
        }
    }

    @Test func compiledOnceEvaluatedManyTimes() throws {
        let expression = try ConditionExpression("event.data.amount > limit")
        #expect(expression.source == "event.data.amount > limit")
        #expect(expression.description == "event.data.amount > limit")
        for limit in 0..<300 {
            let satisfied = try expression.isSatisfied(by: ["event": event, "limit": .int(Int64(limit))])
            #expect(satisfied == (limit < 150))
        }
        #expect(try ConditionExpression("a == 1") == ConditionExpression("a == 1"))
        #expect(try ConditionExpression("a == 1") != ConditionExpression("a==1"))
        #expect(try Set([ConditionExpression("x"), ConditionExpression("x")]).count == 1)
    }

    // MARK: Parse errors

    @Test(arguments: [
        ("a & b", 1, 3, "unexpected token '&' at column 3 (did you mean '&&'?)"),
        ("a | b", 1, 3, "unexpected token '|' at column 3 (did you mean '||'?)"),
        ("a = 1", 1, 3, "unexpected token '=' at column 3 (did you mean '=='? a condition cannot assign)"),
        ("a === 1", 1, 3, "unexpected token '===' at column 3 (did you mean '=='?)"),
        ("a !== 1", 1, 3, "unexpected token '!==' at column 3 (did you mean '!='?)"),
        ("(a == b && c", 1, 13, "expected ')' at column 13 (to close the '(' at column 1)"),
        ("(a == b c)", 1, 9, "expected ')' but found 'c' at column 9 (to close the '(' at column 1)"),
        ("a[1", 1, 4, "expected ']' at column 4 (to close the '[' at column 2)"),
        ("[1 2]", 1, 4, "expected ']' but found '2' at column 4 (to close the '[' at column 1)"),
        ("f(1, 2", 1, 7, "expected ')' at column 7 (to close the '(' at column 2)"),
        ("a b", 1, 3, "unexpected 'b' at column 3 (expected an operator or the end of the condition)"),
        ("a and b", 1, 3, "unexpected 'and' at column 3 (did you mean '&&'?)"),
        ("a or b", 1, 3, "unexpected 'or' at column 3 (did you mean '||'?)"),
        ("a)", 1, 2, "unexpected ')' at column 2 (it closes nothing)"),
        ("", 1, 1, "the condition is empty at column 1"),
        ("   ", 1, 4, "the condition is empty at column 4"),
        ("a &&", 1, 5, "expected a value at column 5 (the condition ends too early)"),
        ("a && )", 1, 6, "expected a value but found ')' at column 6"),
        ("* 2", 1, 1, "expected a value but found '*' at column 1"),
        ("\"abc", 1, 1, "unterminated string starting at column 1"),
        ("x == \"a\nb\"", 1, 6, "unterminated string starting at column 6 (a string cannot span lines; write \\n)"),
        ("'ab'", 1, 1, "a character literal must hold exactly one character at column 1 (use \"...\" for strings)"),
        ("''", 1, 1, "a character literal must hold exactly one character at column 1 (use \"...\" for strings)"),
        ("\"a\\qb\"", 1, 3, "unknown escape sequence '\\q' at column 3 (supported: \\n \\t \\r \\\\ \\\" \\' \\uXXXX)"),
        ("\"\\u12\"", 1, 2, "malformed escape sequence at column 2 ('\\u' takes exactly four hex digits)"),
        ("\"\\uD800\"", 1, 2, "invalid unicode escape at column 2 (U+D800 is not a character)"),
        ("9223372036854775808", 1, 1, "integer literal is too large at column 1 (the largest integer is 9223372036854775807)"),
        ("0x", 1, 1, "malformed number at column 1"),
        ("1e+x", 1, 1, "malformed number at column 1"),
        ("1e999", 1, 1, "float literal is out of range at column 1"),
        ("a ? b : c", 1, 3, "unexpected token '?' at column 3 (did you mean '??', '?.' or '?['? 'a ? b : c' is not Rhai)"),
        ("a.1", 1, 3, "expected a property or method name but found '1' at column 3"),
        ("x == null", 1, 6, "'null' is reserved in Rhai at column 6 (write () for a missing value, as in 'x == ()')"),
        ("if x", 1, 1, "'if' is a reserved word in Rhai at column 1 (a condition is a single expression)"),
        ("a.default", 1, 3, "'default' is a reserved word in Rhai at column 3 (write [\"default\"] to read a property of that name)"),
        ("print", 1, 1, "'print' is a reserved word in Rhai at column 1 (it can only be called, as in 'print(x)')"),
        ("in", 1, 1, "expected a value but found 'in' at column 1"),
        ("1..5", 1, 2, "unexpected token '..' at column 2 (ranges are not supported in conditions)"),
        ("a << 1", 1, 3, "unexpected token '<<' at column 3 (bit shifts are not supported in conditions)"),
        ("a<-1", 1, 2, "unexpected token '<-' at column 2 ('<-' is reserved in Rhai; write '< -' to compare with a negative)"),
        ("a ^ b", 1, 3, "unexpected token '^' at column 3 ('^' is not supported in conditions; use '**' for powers)"),
        ("a; b", 1, 2, "unexpected token ';' at column 2 (a condition is a single expression)"),
        ("`x`", 1, 1, "unexpected token '`' at column 1 (back-quoted strings are not supported; use \"...\")"),
        ("{ a }", 1, 1, "unexpected '{' at column 1 (object maps are written '#{ key: value }'; blocks are not supported)"),
        ("#{a: 1, a: 2}", 1, 9, "duplicate property 'a' in an object map literal at column 9"),
        ("#{1: 2}", 1, 3, "expected a property name but found '1' at column 3"),
        ("a @ b", 1, 3, "unexpected character '@' at column 3"),
        ("café", 1, 4, "unexpected character 'é' at column 4"),
        ("\"é😀\" == x y", 1, 11, "unexpected 'y' at column 11 (expected an operator or the end of the condition)"),
        ("/* never closed", 1, 1, "unterminated comment starting at column 1"),
        ("a &&\n  (b ||\n   c", 3, 5, "expected ')' at line 3, column 5 (to close the '(' at line 2, column 3)"),
        ("a ==\n  = b", 2, 3, "unexpected token '=' at line 2, column 3 (did you mean '=='? a condition cannot assign)"),
    ])
    func parseErrors(source: String, line: Int, column: Int, message: String) throws {
        let error = try #require(parseError(source))
        #expect(error.message == message)
        #expect(error.description == message)
        #expect(error.line == line)
        #expect(error.column == column)
    }

    // MARK: Limits

    @Test func nestingDepthIsLimited() throws {
        let ok = String(repeating: "(", count: 64) + "1" + String(repeating: ")", count: 64)
        #expect(try evaluate(ok) == 1)
        let deep = String(repeating: "(", count: 65) + "1" + String(repeating: ")", count: 65)
        let error = try #require(parseError(deep))
        #expect(error.message == "the condition nests more than 64 levels deep at column 65")

        #expect(try evaluate(String(repeating: "!", count: 64) + "true") == true)
        #expect(parseError(String(repeating: "!", count: 65) + "true") != nil)
        #expect(try evaluate(String(repeating: "- ", count: 63) + "1") == -1)
        #expect(parseError("a" + String(repeating: "[0", count: 65) + String(repeating: "]", count: 65)) != nil)
        #expect(parseError(String(repeating: "[", count: 65) + String(repeating: "]", count: 65)) != nil)
        #expect(parseError(String(repeating: "len(", count: 65) + "s" + String(repeating: ")", count: 65)) != nil)
        #expect(parseError(String(repeating: "#{a:", count: 65) + "1" + String(repeating: "}", count: 65)) != nil)
    }

    @Test func longFlatChainsDoNotNest() throws {
        // Runs of one precedence level are evaluated iteratively, whatever their length.
        let sum = Array(repeating: "1", count: 3000).joined(separator: "+")
        #expect(try evaluate(sum) == 3000)
        let ands = Array(repeating: "t", count: 2000).joined(separator: " && ")
        #expect(try evaluate(ands) == true)
        let powers = Array(repeating: "1", count: 3000).joined(separator: "**")
        #expect(try evaluate(powers) == 1)
        let chain = "event" + String(repeating: "?.a", count: 3000)
        #expect(try evaluate(chain) == .null)
        let mixed = Array(repeating: "(1 + 2 * 3 - 4 % 3 ?? 0) > 1 == true", count: 200).joined(separator: " || ")
        #expect(try evaluate(mixed) == true)
    }

    @Test func deepestNestingAcrossAllLevelsEvaluates() throws {
        // Each level nests twice (a paren and a bracket) and passes through every precedence level
        // on the way to the next, which is evaluated first: the deepest tree the parser allows.
        var source = "n"
        for _ in 0..<32 {
            source = "(false || true && 1 == 1 in [1 < u ?? 3 + 4 * 5 ** " + source + "])"
        }
        let expression = try ConditionExpression(source)
        #expect(throws: ConditionExpression.EvaluationError("cannot apply '**' to an integer (5) and a bool (false)")) {
            try expression.evaluate(variables)
        }
        #expect(parseError("(" + source + ")") != nil)
        let innermost = "(false || true && 1 == 1 in [1 < u ?? 3 + 4 * 5 ** n])"
        #expect(try evaluate(innermost) == false)
        #expect(try evaluate("1 < u ?? 3 + 4 * 5 ** n") == true)
    }

    #if os(Linux)
    @Test func worstCasesFitInASmallStack() throws {
        // The nesting limit bounds recursion in parsing and evaluating: the worst cases run in a
        // 1 MiB stack even in a debug build (they need under 100 KiB when optimized).
        func nest(_ open: String, _ inner: String, _ close: String, _ count: Int) -> String {
            String(repeating: open, count: count) + inner + String(repeating: close, count: count)
        }
        var allLevels = "n"
        for _ in 0..<32 { allLevels = "(false || true && 1 == 1 in [1 < u ?? 3 + 4 * 5 ** " + allLevels + "])" }
        let sources = [
            allLevels,
            nest("(1 + ", "1", ")", 64),
            nest("-(", "n", ")", 32),
            nest("(!", "t", ")", 32),
            nest("event.data.items[", "0", "]", 64),
            nest("u?[", "0", "]", 64),
            nest("#{a: ", "1", "}", 64),
            nest("[", "1", "]", 64),
            nest("len(", "s", ")", 64),
            nest("s.contains(", "s", ")", 64),
            nest("(u ?? ", "1", ")", 64),
            Array(repeating: "1", count: 3000).joined(separator: "+"),
        ]
        let outcomes = runOnThread(stackSize: 1 << 20) {
            sources.map { source -> String in
                guard let expression = try? ConditionExpression(source) else { return "parse error" }
                do {
                    _ = try expression.evaluate(variables)
                    return "ok"
                } catch {
                    return "evaluation error"
                }
            }
        }
        #expect(outcomes.count == sources.count)
        #expect(!outcomes.contains("parse error"))
    }
    #endif

    @Test func sourceLengthIsLimited() throws {
        let longest = "1" + String(repeating: " ", count: ConditionExpression.maxSourceLength - 1)
        #expect(try evaluate(longest) == 1)
        let tooLong = longest + " "
        let error = try #require(parseError(tooLong))
        #expect(error.message == "the condition is too long at column 10001 (at most 10000 characters)")
        #expect(parseError(String(repeating: "x", count: 1_000_000)) != nil)
    }

    // MARK: Float powers

    @Test func floatPowerSpecialCases() throws {
        func pow(_ x: Double, _ y: Double) throws -> Double {
            let value = try evaluate("x ** y", ["x": .double(x), "y": .double(y)])
            return try #require(value.doubleValue)
        }
        #expect(try pow(2, 10) == 1024)
        #expect(try pow(3, 2) == 9)
        #expect(try pow(10, 15) == 1e15)
        #expect(try pow(10, -2) == 0.01)
        #expect(try pow(2, -1074) == .leastNonzeroMagnitude)
        #expect(try pow(2, 1024) == .infinity)
        #expect(try pow(2, -1080) == 0)
        #expect(try pow(-2, 3) == -8)
        #expect(try pow(-2, 2) == 4)
        #expect(try pow(-8, 1.0 / 3).isNaN)
        #expect(try pow(.nan, 0) == 1)
        #expect(try pow(1, .nan) == 1)
        #expect(try pow(.nan, 1).isNaN)
        #expect(try pow(0, -1) == .infinity)
        #expect(try pow(-0.0, -1) == -.infinity)
        #expect(try pow(-0.0, -2) == .infinity)
        #expect(try pow(-0.0, 3).sign == .minus)
        #expect(try pow(0, 0.5) == 0)
        #expect(try pow(.infinity, -1) == 0)
        #expect(try pow(-.infinity, 3) == -.infinity)
        #expect(try pow(-.infinity, -3).sign == .minus)
        #expect(try pow(0.5, .infinity) == 0)
        #expect(try pow(0.5, -.infinity) == .infinity)
        #expect(try pow(-1, .infinity) == 1)
        #expect(try pow(1e308, 2) == .infinity)
        #expect(try pow(1e-308, -2) == .infinity)
        #expect(try pow(2.5, 1e308) == .infinity)
        #expect(try pow(1e300, 1e308) == .infinity)
        #expect(try pow(1e300, -1e308) == 0)
        #expect(try pow(0.5, 1e308) == 0)
        #expect(try pow(1 + 0x1p-52, 1e300) == .infinity)
        #expect(try pow(-2, 1e300) == .infinity)
        #expect(try pow(.greatestFiniteMagnitude, 0.5) == Double.greatestFiniteMagnitude.squareRoot())
        #expect(try pow(.leastNonzeroMagnitude, 0.25) > 0)
        #expect(try evaluate("2 ** 0.5") == .double(2.0.squareRoot()))
        #expect(try evaluate("4 ** 0.5") == 2.0)
        #expect(try evaluate("2.0 ** 3") == 8.0)
    }

    @Test func floatPowerMatchesTheCLibrary() throws {
        var random = SplitMix64(seed: 7)
        let expression = try ConditionExpression("x ** y")
        var worst = 0.0
        for i in 0..<4000 {
            let x: Double
            let y: Double
            switch i % 4 {
            case 0:
                x = Double.random(in: 0.001...1000, using: &random)
                y = Double.random(in: -50...50, using: &random)
            case 1:
                x = Double.random(in: 0.5...2, using: &random)
                y = Double.random(in: -700...700, using: &random)
            case 2:
                x = Double.random(in: -100...100, using: &random)
                y = Double(Int.random(in: -40...40, using: &random))
            default:
                x = Double.random(in: 1e-300...1e300, using: &random)
                y = Double.random(in: -1.5...1.5, using: &random)
            }
            let ours = try #require(try expression.evaluate(["x": .double(x), "y": .double(y)]).doubleValue)
            let reference = referencePow(x, y)
            if reference.isNaN || reference.isInfinite || reference == 0 || !reference.isNormal {
                #expect(ours == reference || (ours.isNaN && reference.isNaN) || abs(ours - reference) <= reference.ulp * 4,
                        "\(x) ** \(y): \(ours) vs \(reference)")
                continue
            }
            let ulps = abs(ours - reference) / reference.ulp
            worst = max(worst, ulps)
            let allowed = 1.0
            #expect(ulps <= allowed, "\(x) ** \(y): \(ours) vs \(reference) (\(ulps) ulps)")
        }
        #expect(worst <= 1)
    }

    // MARK: Fuzzing

    @Test func randomAndMutatedInputsNeverCrash() throws {
        var random = SplitMix64(seed: 0x5eed)
        let fragments = [
            "a", "event", "data", "status", ".", "?.", "[", "]", "?[", "(", ")", "()", "0", "1", "-1", "42",
            "0x", "0x1F", "0b", "1e", "1e+", "1.5", "1.", ".5", "_", "1_0", "9223372036854775807",
            "9223372036854775808", "\"", "\"str\"", "'", "'c'", "\\", "\\u", "\\u00", "+", "-", "*", "/", "%",
            "**", "==", "!=", "<", "<=", ">", ">=", "&&", "||", "&", "|", "!", "??", "?", "in", "!in", ",", "#{",
            "{", "}", ":", " ", "\n", "\t", "é", "😀", "\u{0}", "len()", ".len()", ".contains(", "starts_with",
            "//", "/*", "*/", "true", "false", "null", "if", "=", "===", "..", "<-", "^", ";", "`", "@",
            "n", "s", "u", "big", "small", "blob", "t", "f",
        ]
        let seeds = [
            "event.data.status == \"active\" && event.data.amount > 100",
            "event.data.tags[0] in [\"red\", \"blue\"] || !(n < 3)",
            "event?.data?.nested?.deep?.x ?? 0 >= 1",
            "(big + small) * 2 ** 3 % 7 - -n / 2.5",
            "s.starts_with(\"he\") && len(event.data.items) > 1",
            "#{a: [1, 2.0, 'c', \"d\\n\\u00e9\"], b: ()}.a[-1] != u",
            "0xff + 0b1010 - 0o17 * 1_000 / 1e3",
        ]
        var parsed = 0
        var evaluated = 0
        func exercise(_ source: String) {
            guard let expression = try? ConditionExpression(source) else { return }
            parsed += 1
            if (try? expression.evaluate(variables)) != nil { evaluated += 1 }
            _ = try? expression.isSatisfied(by: variables)
        }

        for _ in 0..<2000 {
            var source = ""
            for _ in 0..<Int.random(in: 1...25, using: &random) {
                source += fragments.randomElement(using: &random)!
                if Bool.random(using: &random) { source += " " }
            }
            exercise(source)
        }
        for _ in 0..<2000 {
            var scalars = Array(seeds.randomElement(using: &random)!.unicodeScalars)
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                let at = Int.random(in: 0...scalars.count, using: &random)
                switch Int.random(in: 0..<5, using: &random) {
                case 0 where !scalars.isEmpty:
                    let end = min(scalars.count, at + Int.random(in: 1...5, using: &random))
                    scalars.removeSubrange(min(at, end)..<end)
                case 1:
                    scalars.insert(contentsOf: fragments.randomElement(using: &random)!.unicodeScalars, at: at)
                case 2 where at < scalars.count:
                    let end = min(scalars.count, at + Int.random(in: 1...10, using: &random))
                    scalars.insert(contentsOf: scalars[at..<end], at: at)
                case 3 where at < scalars.count:
                    scalars[at] = Unicode.Scalar(UInt8.random(in: 32...126, using: &random))
                default:
                    scalars.insert(Unicode.Scalar(UInt32.random(in: 0...0x7f, using: &random))!, at: at)
                }
            }
            exercise(String(String.UnicodeScalarView(scalars)))
        }
        for _ in 0..<300 {
            var scalars = String.UnicodeScalarView()
            for _ in 0..<Int.random(in: 0...40, using: &random) {
                var value = UInt32.random(in: 0...0x1F_FFF, using: &random)
                if (0xD800...0xDFFF).contains(value) { value = 0x41 }
                scalars.append(Unicode.Scalar(value)!)
            }
            exercise(String(scalars))
        }
        for depth in stride(from: 1, through: 130, by: 3) {
            exercise(String(repeating: "(", count: depth) + "1" + String(repeating: ")", count: depth))
            exercise(String(repeating: "(", count: depth))
            exercise(String(repeating: "!", count: depth) + "t")
            exercise(String(repeating: "-", count: depth) + "n")
            exercise(String(repeating: "[", count: depth) + String(repeating: "]", count: depth))
            exercise("event" + String(repeating: ".data", count: depth))
            exercise(String(repeating: "2 ** ", count: depth) + "2")
            exercise(String(repeating: "/*", count: depth) + String(repeating: "*/", count: depth) + "1")
        }
        #expect(parsed > 500)
        #expect(evaluated > 100)
    }
}

#if os(Linux)
private final class ThreadContext: @unchecked Sendable {
    let body: @Sendable () -> [String]
    var result: [String] = []
    init(_ body: @escaping @Sendable () -> [String]) { self.body = body }
}

/// Runs `body` on a new thread with a stack of `stackSize` bytes and returns its result.
private func runOnThread(stackSize: Int, _ body: @escaping @Sendable () -> [String]) -> [String] {
    let context = ThreadContext(body)
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    defer { pthread_attr_destroy(&attributes) }
    pthread_attr_setstacksize(&attributes, stackSize)
    var thread = pthread_t()
    let status = pthread_create(&thread, &attributes, { raw in
        guard let raw else { return nil }
        let context = Unmanaged<ThreadContext>.fromOpaque(raw).takeUnretainedValue()
        context.result = context.body()
        return nil
    }, Unmanaged.passUnretained(context).toOpaque())
    guard status == 0 else { return ["pthread_create failed: \(status)"] }
    pthread_join(thread, nil)
    return withExtendedLifetime(context) { context.result }
}
#endif

/// A small deterministic generator, so failures reproduce.
private struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The C library's `pow`, the reference for `**` on floats.
private func referencePow(_ x: Double, _ y: Double) -> Double { pow(x, y) }
