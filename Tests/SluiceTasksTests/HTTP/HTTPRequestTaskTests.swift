import Foundation
import SluiceCore
import SluiceEngine
import SluiceTasks
import SluiceTesting
import Testing

/// `http_request` against a real HTTP server on 127.0.0.1 that each test starts and stops.
@Suite("http_request")
struct HTTPRequestTaskTests {
    static let routes: [String: LocalHTTPServer.Route] = [
        "/user": { request, _ in
            .init(status: 200, headers: ["content-type": "application/json"],
                  body: #"{"id": \#(request.query.split(separator: "=").last ?? "0"), "name": "Ada"}"#)
        },
        "/echo": { request, _ in
            let echoed: Value = [
                "method": .string(request.method),
                "content_type": .string(request.headers["content-type"] ?? ""),
                "x_trace": .string(request.headers["x-trace"] ?? ""),
                "body": .string(request.body),
            ]
            return .init(status: 200, headers: ["content-type": "application/json"], body: echoed.jsonString())
        },
        "/missing": { _, _ in .init(status: 404, body: "no such thing") },
        "/flaky": { _, hit in hit < 3 ? .init(status: 503, body: "busy") : .init(status: 200, body: "finally") },
        "/limited": { _, hit in hit < 2 ? .init(status: 429, body: "slow down") : .init(status: 200, body: "ok") },
        "/slow": { _, _ in .init(status: 200, body: "late", delay: .seconds(3)) },
    ]

    /// Starts a server, runs `body` with it and a harness, stops the server.
    func withServer(_ body: (LocalHTTPServer, FlowHarness) async throws -> Void) async throws {
        let server = try await LocalHTTPServer(routes: Self.routes)
        do {
            try await body(server, FlowHarness(registry: BuiltinTasks.registry))
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    @Test("A JSON response becomes the event data; the URL is a template")
    func getJSON() async throws {
        try await withServer { server, h in
            let (summary, reports) = try await h.run("""
                flow:
                  tasks:
                    - http_request: {name: get, url: "\(server.url("/user"))?id={{event.data.id}}"}
                """, input: ["id": 7])
            #expect(summary.runsCompleted == 1)
            #expect(reports.first?.resultValue == ["id": 7, "name": "Ada"])
            #expect(server.requests.first?.query == "id=7")
        }
    }

    @Test("POST sends the body as JSON with headers; output: response gives status and headers")
    func postJSON() async throws {
        try await withServer { server, h in
            let (_, reports) = try await h.run("""
                flow:
                  tasks:
                    - http_request:
                        name: post
                        method: POST
                        url: "\(server.url("/echo"))"
                        headers: {X-Trace: "run-{{event.data.n}}"}
                        body: "{{event.data}}"
                        output: response
                """, input: ["n": 2])
            let response = try #require(reports.first?.resultValue)
            #expect(response["status"] == 200)
            #expect(response["headers"]?["content-type"] == "application/json")
            let echoed = try #require(response["body"])
            #expect(echoed["method"] == "POST")
            #expect(echoed["content_type"] == "application/json")
            #expect(echoed["x_trace"] == "run-2")
            #expect(try Value.parseJSON(echoed["body"]?.stringValue ?? "") == ["n": 2])
        }
    }

    @Test("404 fails the task at once: it is not retried")
    func notFoundIsNotRetried() async throws {
        try await withServer { server, h in
            let (summary, reports) = try await h.run("""
                flow:
                  tasks:
                    - http_request:
                        name: get
                        url: "\(server.url("/missing"))"
                        retry: {max_attempts: 4, initial_backoff: 1ms}
                """)
            #expect(summary.runsFailed == 1)
            #expect(server.hits("/missing") == 1)
            #expect(h.recorder.events(.taskRetrying).isEmpty)
            let error = try #require(reports.first?.error)
            #expect(error.contains("404"))
            #expect(error.contains("no such thing"))
        }
    }

    @Test("503 and 429 are retried under the task's retry policy until the server answers 200")
    func retryableStatuses() async throws {
        try await withServer { server, h in
            let (summary, reports) = try await h.run("""
                flow:
                  tasks:
                    - http_request:
                        name: flaky
                        url: "\(server.url("/flaky"))"
                        retry: {max_attempts: 5, initial_backoff: 1ms}
                    - http_request:
                        name: limited
                        url: "\(server.url("/limited"))"
                        retry: {max_attempts: 5, initial_backoff: 1ms}
                """)
            #expect(summary.runsCompleted == 1)
            #expect(reports.first?.resultValue == "ok")
            #expect(server.hits("/flaky") == 3)
            #expect(server.hits("/limited") == 2)
            #expect(h.recorder.events(.taskRetrying, task: "flaky").count == 2)
            #expect(h.recorder.events(.taskRetrying, task: "limited").count == 1)
        }
    }

    @Test("Retries stop at max_attempts and the last status is reported")
    func retriesRunOut() async throws {
        try await withServer { server, h in
            let (summary, reports) = try await h.run("""
                flow:
                  tasks:
                    - http_request:
                        name: flaky
                        url: "\(server.url("/flaky"))"
                        retry: {max_attempts: 2, initial_backoff: 1ms}
                """)
            #expect(summary.runsFailed == 1)
            #expect(server.hits("/flaky") == 2)
            #expect(reports.first?.error?.contains("503") == true)
        }
    }

    @Test("A response slower than the task's timeout fails the attempt as a timeout")
    func timeout() async throws {
        try await withServer { server, h in
            let (summary, reports) = try await h.run("""
                flow:
                  tasks:
                    - http_request: {name: slow, url: "\(server.url("/slow"))", timeout: 200ms}
                """)
            #expect(summary.runsFailed == 1)
            #expect(reports.first?.error?.contains("timed out after 200ms") == true)
        }
    }

    @Test("fail_on_status: false passes an error status on as data")
    func statusAsData() async throws {
        try await withServer { server, h in
            let (summary, reports) = try await h.run("""
                flow:
                  tasks:
                    - http_request: {name: get, url: "\(server.url("/missing"))", fail_on_status: false, output: response}
                """)
            #expect(summary.runsCompleted == 1)
            #expect(reports.first?.resultValue["status"] == 404)
            #expect(reports.first?.resultValue["body"] == "no such thing")
        }
    }

    @Test("A refused connection is a retryable failure that names the URL")
    func connectionRefused() async throws {
        // Start a server to learn a free port, then stop it so nothing listens there.
        let server = try await LocalHTTPServer(routes: [:])
        let url = server.url("/gone")
        await server.stop()
        let h = FlowHarness(registry: BuiltinTasks.registry)
        let (summary, reports) = try await h.run("""
            flow:
              tasks:
                - http_request: {name: get, url: "\(url)", connect_timeout: 300ms, retry: {max_attempts: 2, initial_backoff: 1ms}}
            """)
        #expect(summary.runsFailed == 1)
        #expect(h.recorder.events(.taskRetrying, task: "get").count == 1)
        #expect(reports.first?.error?.contains(url) == true)
    }

    @Test("A URL that is not http(s) is a clear, non-retried error")
    func badURL() async throws {
        let h = FlowHarness(registry: BuiltinTasks.registry)
        let (summary, reports) = try await h.run("""
            flow:
              tasks:
                - http_request: {name: get, url: "ftp://example/x", retry: {max_attempts: 3, initial_backoff: 1ms}}
            """)
        #expect(summary.runsFailed == 1)
        #expect(h.recorder.events(.taskRetrying).isEmpty)
        #expect(reports.first?.error?.contains("is not an http(s) URL") == true)
    }
}
