import SluiceCore
import SluiceEngine
@testable import SluiceTasks
import Testing

@Suite("Webhook bodies")
struct WebhookBodyTests {
    func decode(_ type: String?, _ body: String) -> Value? {
        let request = WebhookRequest(method: "POST", path: "/hook", query: "", headers: type.map { [("content-type", $0)] } ?? [],
                                     body: Array(body.utf8))
        return try? EndpointHandler.decodeBody(request).get()
    }

    @Test("A body is JSON when the type names json in any case, or when untyped and it looks like JSON; forms and text otherwise")
    func types() {
        #expect(decode("application/json", #"{"a": 1}"#) == ["a": 1])
        #expect(decode("Application/JSON; charset=utf-8", "[1]") == [1])
        #expect(decode("application/cloudevents+json", #"{"id": "x"}"#) == ["id": "x"])
        #expect(decode(nil, #" {"a": 2}"#) == ["a": 2])
        #expect(decode("application/json", "{nope") == nil, "invalid JSON is an error")
        #expect(decode("text/plain", #"{"a": 1}"#) == .string(#"{"a": 1}"#))
        #expect(decode("application/x-www-form-urlencoded", "a=1&b=two") == ["a": "1", "b": "two"])
        #expect(decode("APPLICATION/X-WWW-FORM-URLENCODED", #"{"a": 1}"#) == ["a": 1], "curl -d sends JSON labelled as a form")
        #expect(decode("application/js", "{}") == .string("{}"))
        #expect(EndpointHandler.containsJSON("jSoN") && !EndpointHandler.containsJSON("jso") && !EndpointHandler.containsJSON(""))
    }
}
