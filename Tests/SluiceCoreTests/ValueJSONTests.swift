import SluiceCore
import Testing

@Suite("Value and JSON")
struct ValueJSONTests {
    @Test("JSON round-trips keep types and key order")
    func roundTrip() throws {
        let text = #"{"b":1,"a":[true,null,2.5,"x\n\"y\"",{"z":-3}],"u":"é\u00e9"}"#
        let value = try Value.parseJSON(text)
        #expect(value["b"] == 1)
        #expect(value["a"]?[2] == 2.5)
        #expect(value["u"] == "éé")
        #expect(Array(value.objectValue!.keys) == ["b", "a", "u"])
        #expect(try Value.parseJSON(value.jsonString()) == value)
    }

    @Test("Syntax errors give line and column", arguments: [
        ("{\"a\": }", 1, 7), ("[1,\n 2,,]", 2, 4), ("{\"a\" 1}", 1, 6), ("01", 1, 2), ("\"abc", 1, 5),
    ])
    func syntaxErrors(_ input: String, _ line: Int, _ column: Int) {
        #expect(throws: JSONSyntaxError.self) { try Value.parseJSON(input) }
        do { _ = try Value.parseJSON(input) } catch {
            #expect(error.line == line && error.column == column, "\(error)")
        }
    }

    @Test("Objects compare equal regardless of key order; ints and floats differ")
    func equality() {
        #expect(Value(dictionaryLiteral: ("a", 1), ("b", 2)) == ["b": 2, "a": 1])
        #expect(Set([Value(dictionaryLiteral: ("a", 1), ("b", 2)), ["b": 2, "a": 1]]).count == 1)
        #expect(Value.int(1) != Value.double(1))
    }

    @Test("Durations parse in the forms flows use")
    func durations() {
        #expect(Duration(parsing: "1m30s") == .seconds(90))
        #expect(Duration(parsing: "500ms") == .milliseconds(500))
        #expect(Duration(parsing: "2") == .seconds(2))
        #expect(Duration(parsing: "soon") == nil)
    }
}
