import SluiceCore
import Foundation
import Synchronization
import Testing
@testable import SluiceScript

@Suite("Flow helpers: uuid, digests, timestamps, regular expressions")
struct FlowHelpersTests {
    static func engine() -> ScriptEngine {
        let e = ScriptEngine()
        StandardLibrary.installFlowHelpers(e)
        return e
    }

    /// The result of a script, as `to_debug` shows it (strings quoted, `()` for unit).
    static func run(_ source: String) throws(ScriptError) -> String {
        try engine().eval(source).debugText
    }

    static func failure(_ source: String) -> ScriptError? {
        do {
            _ = try engine().eval(source)
            return nil
        } catch {
            return error
        }
    }

    // MARK: - uuid

    @Test("uuid(): lowercase version-4 UUIDs, different each call")
    func uuid() throws {
        let pattern = try NSRegularExpression(pattern: "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
        var seen = Set<String>()
        for _ in 0..<20 {
            let id = try Self.engine().eval("uuid()").displayText
            #expect(pattern.firstMatch(in: id, range: NSRange(id.startIndex..., in: id)) != nil, "\(id)")
            seen.insert(id)
        }
        #expect(seen.count == 20)
        #expect(try Self.run("type_of(uuid())") == "\"string\"")
        #expect(Self.failure("uuid(1)")?.kind == "ErrorFunctionNotFound")
    }

    // MARK: - Digests

    @Test("sha256: FIPS 180-4 vectors and lengths around the padding boundaries")
    func sha256() throws {
        #expect(try Self.run(#"sha256("")"#) == "\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"")
        #expect(try Self.run(#"sha256("abc")"#) == "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"")
        #expect(try Self.run(#"sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")"#)
            == "\"248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1\"")
        let hash = { (bytes: [UInt8]) in Digest.hex(Digest.sha256.hash(bytes)) }
        #expect(hash([UInt8](repeating: 0x61, count: 1_000_000))
            == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        let boundaries: [(Int, String)] = [
            (55, "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072"),
            (56, "04c26261370ee7541549d16dee320c723e3fd14671e66a099afe0a377c16888e"),
            (63, "75220b47218278e656f2013bb8f0c455a25eaf01e86c64924e9d48d89776d6f2"),
            (64, "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c"),
        ]
        for (n, digest) in boundaries {
            #expect(hash([UInt8](repeating: 0x78, count: n)) == digest, "\(n) bytes")
        }
    }

    @Test("sha512: FIPS 180-4 vectors and lengths around the padding boundaries")
    func sha512() throws {
        #expect(try Self.run(#"sha512("")"#) == "\"cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e\"")
        #expect(try Self.run(#"sha512("abc")"#) == "\"ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f\"")
        #expect(try Self.run(#"sha512("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu")"#)
            == "\"8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909\"")
        let hash = { (bytes: [UInt8]) in Digest.hex(Digest.sha512.hash(bytes)) }
        #expect(hash([UInt8](repeating: 0x61, count: 1_000_000))
            == "e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973ebde0ff244877ea60a4cb0432ce577c31beb009c5c2c49aa2e4eadb217ad8cc09b")
        let boundaries: [(Int, String)] = [
            (111, "9a2a120825c2319867758ec277924f6faa254968bf752046dacdd948d8ad299b10359fd04bfd7d3810b5fa1b16a294236138baff981cbb85248478053ac4d3dd"),
            (112, "a3722b515ef40c910f2419f6e0da8ca51d410114ce6272faae64045f9e9f630e7fa8dd5a3243c9860b899d148c3da4bc0f9e07454542604d030bb55531fe0d5b"),
            (127, "1d5a8893e7b7ed83d485d26f88cfb846f3760279916976fe538e539fc16f7cd19ba3e1c2cd5fda78749a74205755cdf694e8fa90b2bfed8815f406af76c1d7bf"),
            (128, "e2e22f8422b54b06e35c3ea30a383d1de7a8fbc27992923074103117020d8dd7024c3ecf7d6d1a15a6de5a75ff32fb486b9e8ced4c02ffe05822bf2cb734d0e0"),
        ]
        for (n, digest) in boundaries {
            #expect(hash([UInt8](repeating: 0x78, count: n)) == digest, "\(n) bytes")
        }
    }

    @Test("Digests hash a string's UTF-8 bytes, or a blob's bytes; other arguments are not a form")
    func digestArguments() throws {
        #expect(try Self.run(#"sha256("héllo 👋")"#) == "\"241bff4036211b66e25dc44c43c7305feb99e7a62b953f03c3597ad0593c508f\"")
        #expect(try Self.run(#"sha256(to_blob("héllo 👋")) == sha256("héllo 👋")"#) == "true")
        #expect(try Self.run(#"sha512(to_blob("abc")) == sha512("abc")"#) == "true")
        #expect(try Self.run(#""abc".sha256()"#) == "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"")
        #expect(Self.failure("sha256(42)")?.kind == "ErrorFunctionNotFound")
        #expect(Self.failure(#"sha512("a", "b")"#)?.kind == "ErrorFunctionNotFound")
    }

    // MARK: - Timestamps

    @Test("timestamp_now(): wall-clock milliseconds since the epoch")
    func timestampNow() throws {
        let before = Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
        guard case .int(let now) = try Self.engine().eval("timestamp_now()") else {
            Issue.record("timestamp_now() is not an i64")
            return
        }
        let after = Int64((Date().timeIntervalSince1970 * 1000).rounded(.up))
        #expect(before - 5 <= now && now <= after + 5)
        #expect(Self.failure("timestamp_now(1)")?.kind == "ErrorFunctionNotFound")
    }

    @Test("timestamp_format(ms): RFC 3339 in UTC with milliseconds, before the epoch and past year 9999 too")
    func formatRFC3339() throws {
        #expect(try Self.run("timestamp_format(0)") == "\"1970-01-01T00:00:00.000Z\"")
        #expect(try Self.run("timestamp_format(1795255200123)") == "\"2026-11-21T10:00:00.123Z\"")
        #expect(try Self.run("timestamp_format(1709251199999)") == "\"2024-02-29T23:59:59.999Z\"")
        #expect(try Self.run("timestamp_format(-1)") == "\"1969-12-31T23:59:59.999Z\"")
        #expect(try Self.run("timestamp_format(-62135596800000)") == "\"0001-01-01T00:00:00.000Z\"")
        #expect(try Self.run("timestamp_format(253402300800000)") == "\"+10000-01-01T00:00:00.000Z\"")
        // The extremes of i64 still format.
        #expect(try Self.run("timestamp_format(9223372036854775807)").hasPrefix("\"+292278994-08-17T07:12:55.807Z"))
        #expect(try Self.run("timestamp_format(-9223372036854775807 - 1)").hasPrefix("\"-292275055-05-16T16:47:04.192Z"))
        #expect(Self.failure(#"timestamp_format("0")"#)?.kind == "ErrorFunctionNotFound")
        #expect(Self.failure("timestamp_format(0, 1)")?.kind == "ErrorFunctionNotFound")
    }

    @Test("timestamp_format(ms, fmt): strftime directives in UTC; unknown ones stay as written")
    func formatDirectives() throws {
        let t = "1795255200123"  // 2026-11-21T10:00:00.123Z, a Saturday, day 325.
        #expect(try Self.run(#"timestamp_format(\#(t), "%Y-%m-%d %H:%M:%S.%3f")"#) == "\"2026-11-21 10:00:00.123\"")
        #expect(try Self.run(#"timestamp_format(\#(t), "%j %a %b %z %s %%")"#) == "\"325 Sat Nov +0000 1795255200 %\"")
        #expect(try Self.run(#"timestamp_format(\#(t), "%A %B %e %y %Z %:z")"#) == "\"Saturday November 21 26 UTC +00:00\"")
        #expect(try Self.run(#"timestamp_format(\#(t), "%F %T%.3f|%6f|%9f|%f")"#)
            == "\"2026-11-21 10:00:00.123|123000|123000000|123000000\"")
        #expect(try Self.run(#"timestamp_format(\#(t), "%Q %5f %.f 100%")"#) == "\"%Q %5f %.f 100%\"")
        #expect(try Self.run(#"timestamp_format(\#(t), "%%Y")"#) == "\"%Y\"")
        #expect(try Self.run(#"timestamp_format(0, "%j %a %e")"#) == "\"001 Thu  1\"")
        #expect(try Self.run(#"timestamp_format(-1, "%s %3f")"#) == "\"-1 999\"")
        #expect(try Self.run(#"timestamp_format(0, "")"#) == "\"\"")
        #expect(try Self.run(#"timestamp_format(-62198755200000, "%Y-%m-%d %y")"#) == "\"-0001-01-01 99\"")
    }

    @Test("parse_timestamp(text): RFC 3339 / ISO 8601 with offsets, fractions and plain dates")
    func parseISO() throws {
        #expect(try Self.run(#"parse_timestamp("2026-11-21T10:00:00.123Z")"#) == "1795255200123")
        #expect(try Self.run(#"parse_timestamp("2026-11-21T10:00:00Z")"#) == "1795255200000")
        #expect(try Self.run(#"parse_timestamp("2026-11-21t10:00:00z")"#) == "1795255200000")
        #expect(try Self.run(#"parse_timestamp("2026-11-21 10:00:00")"#) == "1795255200000")
        #expect(try Self.run(#"parse_timestamp("2026-11-21T10:00")"#) == "1795255200000")
        #expect(try Self.run(#"parse_timestamp("2026-11-21T10:00:00+01:00")"#) == "1795251600000")
        #expect(try Self.run(#"parse_timestamp("2026-11-21T10:00:00-05:30")"#) == "1795275000000")
        #expect(try Self.run(#"parse_timestamp("2026-11-21T10:00:00-0530")"#) == "1795275000000")
        // Finer fractions are cut to the millisecond; shorter ones are scaled.
        #expect(try Self.run(#"parse_timestamp("2026-11-21T10:00:00.1239999Z")"#) == "1795255200123")
        #expect(try Self.run(#"parse_timestamp("2026-11-21T10:00:00.5Z")"#) == "1795255200500")
        #expect(try Self.run(#"parse_timestamp("2026-11-21T10:00:00,25Z")"#) == "1795255200250")
        #expect(try Self.run(#"parse_timestamp("2026-11-21")"#) == "1795219200000")
        #expect(try Self.run(#"parse_timestamp("  2024-02-29\n")"#) == "1709164800000")
        #expect(try Self.run(#"parse_timestamp("1969-12-31T23:59:59.999Z")"#) == "-1")
        #expect(try Self.run(#"parse_timestamp(timestamp_format(1795255200123))"#) == "1795255200123")
    }

    @Test("parse_timestamp(text): invalid text is a runtime error that says what is wrong")
    func parseISOErrors() throws {
        let cases: [(String, String)] = [
            ("2026-13-01", "month 13 is out of range"),
            ("2026-02-29", "day 29 is out of range (2026-02 has 28 days)"),
            ("2026-11-21T24:00:00Z", "hour 24 is out of range"),
            ("2026-11-21T10:60:00Z", "minute 60 is out of range"),
            ("2026-11-21T10:00:00+25:00", "offset +25:00 is out of range"),
            ("yesterday", "expected a four-digit year at character 1 (found 'y')"),
            ("2026/11/21", "expected '-' at character 5 (found '/')"),
            ("2026-11-21T10:00:00Z tomorrow", "unexpected ' tomorrow' at character 21"),
            ("2026-11-21X10:00", "expected 'T' between date and time at character 11"),
            ("2026-11-21T10:00:00.Z", "expected fractional digits at character 21 (found 'Z')"),
            ("", "expected a four-digit year at character 1 (found the end)"),
        ]
        for (text, reason) in cases {
            let error = Self.failure(#"parse_timestamp("\#(text)")"#)
            #expect(error?.kind == "ErrorRuntime", "\(text)")
            #expect(error?.message == "Cannot parse timestamp '\(text)': \(reason)", "\(text)")
        }
        // Catchable in a script.
        #expect(try Self.run(#"let r = (); try { parse_timestamp("nope") } catch (e) { r = e } r"#).contains("Cannot parse timestamp 'nope'"))
        #expect(Self.failure("parse_timestamp(20261121)")?.kind == "ErrorFunctionNotFound")
    }

    @Test("parse_timestamp(text, fmt): the same directives as timestamp_format")
    func parseFormatted() throws {
        #expect(try Self.run(#"parse_timestamp("21/11/2026 10:00:00.123", "%d/%m/%Y %H:%M:%S.%3f")"#) == "1795255200123")
        #expect(try Self.run(#"parse_timestamp("2026-11-21T10:00:00.123Z", "%Y-%m-%dT%H:%M:%S%.3fZ")"#) == "1795255200123")
        #expect(try Self.run(#"parse_timestamp("20261121100000", "%Y%m%d%H%M%S")"#) == "1795255200000")
        #expect(try Self.run(#"parse_timestamp("2026-325 10:00", "%Y-%j %H:%M")"#) == "1795255200000")
        #expect(try Self.run(#"parse_timestamp("Sat, 21 Nov 2026 10:00:00 +0000", "%a, %d %b %Y %T %z")"#) == "1795255200000")
        #expect(try Self.run(#"parse_timestamp("saturday 21 NOVEMBER 2026 11:00 +01:00", "%A %d %B %Y %H:%M %:z")"#) == "1795255200000")
        #expect(try Self.run(#"parse_timestamp("2026-11-21 05:00 -0500", "%F %H:%M %z")"#) == "1795255200000")
        #expect(try Self.run(#"parse_timestamp("1795255200", "%s")"#) == "1795255200000")
        #expect(try Self.run(#"parse_timestamp("-1.500", "%s.%3f")"#) == "-500")
        #expect(try Self.run(#"parse_timestamp("26-11-21", "%y-%m-%d")"#) == "1795219200000")
        #expect(try Self.run(#"parse_timestamp("at 100%: 2026", "at 100%%: %Y")"#) == "1767225600000")
        #expect(try Self.run(#"parse_timestamp("10:00 UTC", "%H:%M %Z")"#) == "36000000")
        // A space in the format takes any run of white space, including none.
        #expect(try Self.run(#"parse_timestamp("2026-11-21    10:00", "%F %H:%M")"#) == "1795255200000")
        // Unknown directives are matched as written.
        #expect(try Self.run(#"parse_timestamp("%Q2026", "%Q%Y")"#) == "1767225600000")
        #expect(try Self.run(#"parse_timestamp("+1000000-01-01", "%F")"#) == "31494784780800000")
        #expect(try Self.run(#"timestamp_format(31494784780800000, "%F")"#) == "\"+1000000-01-01\"")
    }

    @Test("parse_timestamp(text, fmt): text that does not fit is a runtime error naming the format")
    func parseFormattedErrors() throws {
        let cases: [(String, String, String)] = [
            ("21-11-2026", "%d/%m/%Y", "expected '/' at character 3 (found '-')"),
            ("2026-11-21 10", "%Y-%m-%d", "unexpected ' 10' at character 11"),
            ("Fri 21 Nov 2026", "%a %d %b %Y", "the date is a Saturday, not a Friday"),
            ("2026-366", "%Y-%j", "day of the year 366 is out of range (2026 has 365 days)"),
            ("2026-11-31", "%Y-%m-%d", "day 31 is out of range (2026-11 has 30 days)"),
            ("2026 Nox", "%Y %b", "expected a month name at character 6 (found 'N')"),
            ("10:00:00.12", "%H:%M:%S.%3f", "expected 3 fractional digits at character 10 (found the end)"),
            ("99999999999999999", "%s", "99999999999999999 seconds is out of range"),
            ("9223372036854775.999", "%s.%3f", "9223372036854775 seconds is out of range"),
            ("+999999999-01-01", "%F", "year 999999999 is out of range"),
        ]
        for (text, format, reason) in cases {
            let error = Self.failure(#"parse_timestamp("\#(text)", "\#(format)")"#)
            #expect(error?.kind == "ErrorRuntime", "\(text)")
            #expect(error?.message == "Cannot parse timestamp '\(text)' with format '\(format)': \(reason)", "\(text)")
        }
        #expect(Self.failure(#"parse_timestamp("2026", 1)"#)?.kind == "ErrorFunctionNotFound")
    }

    @Test("Calendar arithmetic agrees with Foundation's Gregorian calendar, and formats parse back")
    func calendarAgreement() throws {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        var generator = SystemRandomNumberGenerator()
        // 1600 to 2400: Foundation switches to the Julian calendar before 1582.
        let range: ClosedRange<Int64> = -11_676_096_000_000...13_569_465_600_000
        let format = TimeFormat.pieces(UTCTime.rfc3339 + " %j %a")
        for _ in 0..<2000 {
            let ms = Int64.random(in: range, using: &generator)
            let t = UTCTime(milliseconds: ms)
            let date = Date(timeIntervalSince1970: Double(CivilCalendar.floorDiv(ms, 1000)))
            let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday, .nanosecond], from: date)
            #expect([t.year, t.month, t.day, t.hour, t.minute, t.second, t.weekday + 1]
                == [c.year, c.month, c.day, c.hour, c.minute, c.second, c.weekday].map { Int64($0!) }, "\(ms)")
            #expect(t.dayOfYear == Int64(calendar.ordinality(of: .day, in: .year, for: date)!))
            let text = t.format(format)
            #expect(try UTCTime.parseISO8601(String(text.prefix(24))) == ms, "\(text)")
            #expect(try TimeFormat.parse(text, format) == ms, "\(text)")
        }
    }

    // MARK: - Regular expressions

    @Test("regex_match: searches anywhere; anchors when asked")
    func regexMatch() throws {
        #expect(try Self.run(#"regex_match("order 42 shipped", "\\d+")"#) == "true")
        #expect(try Self.run(#"regex_match("order shipped", "\\d+")"#) == "false")
        #expect(try Self.run(#"regex_match("order 42", "^\\d+$")"#) == "false")
        #expect(try Self.run(#"regex_match("Hello", "(?i)^hello$")"#) == "true")
        #expect(try Self.run(#""abc".regex_match("b")"#) == "true")
        #expect(try Self.run(#"regex_match("", "")"#) == "true")
        #expect(try Self.run(#"regex_replace("ab", "", "-")"#) == "\"-a-b-\"")
        #expect(Self.failure(#"regex_match(1, "\\d")"#)?.kind == "ErrorFunctionNotFound")
        #expect(Self.failure(#"regex_match("a")"#)?.kind == "ErrorFunctionNotFound")
    }

    @Test("regex_find and regex_find_all: match text, () when nothing matches; non-ASCII text keeps its characters")
    func regexFind() throws {
        #expect(try Self.run(#"regex_find("id=17, id=23", "id=(\\d+)")"#) == "\"id=17\"")
        #expect(try Self.run(#"regex_find("no ids", "id=\\d+")"#) == "()")
        #expect(try Self.run(#"regex_find_all("id=17, id=23", "\\d+")"#) == "[\"17\", \"23\"]")
        #expect(try Self.run(#"regex_find_all("none", "\\d+")"#) == "[]")
        #expect(try Self.run(#"regex_find("héllo 👋 wörld", "w.rld")"#) == "\"wörld\"")
        #expect(try Self.run(#"regex_find_all("👋a👋bb", "[a-z]+")"#) == "[\"a\", \"bb\"]")
        #expect(try Self.run(#"regex_find_all("abc", "x*")"#) == "[\"\", \"\", \"\", \"\"]")
        #expect(try Self.run(#"regex_find_all("abc", "x*").len()"#) == "4")
    }

    @Test("regex_replace: every match, with $1, ${name}, $name, (?P<name>) and $$")
    func regexReplace() throws {
        #expect(try Self.run(##"regex_replace("a1b22c333", "\\d+", "#")"##) == "\"a#b#c#\"")
        #expect(try Self.run(#"regex_replace("2026-11-21", "(\\d+)-(\\d+)-(\\d+)", "$3/$2/$1")"#) == "\"21/11/2026\"")
        #expect(try Self.run(#"regex_replace("john smith", "(?<first>\\w+) (?<last>\\w+)", "${last}, $first")"#)
            == "\"smith, john\"")
        #expect(try Self.run(#"regex_replace("john smith", "(?P<first>\\w+) (?P<last>\\w+)", "$last ${first}")"#)
            == "\"smith john\"")
        #expect(try Self.run(#"regex_replace("cost 5", "(\\d)", "$$$1")"#) == "\"cost $5\"")
        #expect(try Self.run(#"regex_replace("ab", "(a)(b)", "$1x|${1}x|$0|$12|$9|$nope|$")"#) == "\"ax|ax|ab|a2|||$\"")
        // A group that took no part adds nothing.
        #expect(try Self.run(#"regex_replace("b", "(a)?b", "[$1]")"#) == "\"[]\"")
        #expect(try Self.run(#"regex_replace("héllo 👋 wörld", "[öé]", "o")"#) == "\"hollo 👋 world\"")
        #expect(try Self.run(#"regex_replace("unchanged", "\\d", "x")"#) == "\"unchanged\"")
        // Parentheses inside classes, escapes and quotes are not groups.
        #expect(try Self.run(#"regex_replace("(x)y", "[(]\\(?\\Q(\\E?x(?<tail>\\)y)", "${tail}")"#) == "\")y\"")
    }

    @Test("An invalid pattern is a runtime error that names it")
    func invalidPattern() throws {
        for call in [#"regex_match("a", "(")"#, #"regex_find("a", "[a-")"#, #"regex_find_all("a", "*")"#,
                     #"regex_replace("a", "(?<x", "")"#] {
            let error = Self.failure(call)
            #expect(error?.kind == "ErrorRuntime", "\(call)")
            #expect(error?.message.hasPrefix("Invalid regular expression '") == true, "\(call)")
        }
        #expect(Self.failure(#"regex_match("a", "(")"#)?.message == "Invalid regular expression '(': the pattern does not compile")
        #expect(try Self.run(#"let r = 0; try { regex_match("a", "(") } catch { r = 1 } r"#) == "1")
    }

    @Test("The pattern cache is bounded and safe to use from many threads")
    func regexCache() throws {
        let cache = RegexCache(capacity: 4)
        let pos = ScriptPosition(line: 1, column: 1)
        for i in 0..<10 { _ = try? cache.compiled("a{\(i)}", pos) }
        #expect(cache.count == 4)
        #expect(try cache.compiled("a{9}", pos).firstMatch("aaaaaaaaa") != nil)

        let script = try Self.engine().compile(#"regex_replace("k" + n, "k(\\d+)", "v$1") + regex_find("x" + n, "\\d+")"#,
                                               scope: ["n"])
        let failures = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 64) { i in
            var scope = ScriptScope()
            scope.push("n", .int(Int64(i % 300)))
            for _ in 0..<20 {
                let out = try? script.run(scope: scope).displayText
                if out != "v\(i % 300)\(i % 300)" { failures.withLock { $0 += 1 } }
            }
            // Many patterns at once push earlier ones out of the shared cache.
            _ = try? RegexCache.shared.compiled("p\(i)q{\(i % 7)}", pos)
        }
        #expect(failures.withLock { $0 } == 0)
        #expect(RegexCache.shared.count <= RegexCache.shared.capacity)
    }
}
