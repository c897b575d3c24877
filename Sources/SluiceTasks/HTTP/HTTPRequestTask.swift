import AsyncHTTPClient
import Foundation
import NIOCore
import NIOPosix
import Synchronization
import NIOHTTP1
import SluiceCore
import SluiceEngine

/// Sends an HTTP request per event.
struct HTTPRequestTask: TaskProcessor {
    static let methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

    static let spec = TaskSpec(
        name: "http_request",
        aliases: [TaskAlias("http.request", defaults: ["output": "response", "response_type": "text", "fail_on_status": false])],
        summary: "Sends an HTTP request per event; outputs the response body (or {status, headers, body}). 4xx other than 429 is not retried.",
        fields: [
            FieldSpec("url", .string, templated: true, aliases: ["endpoint"], summary: "Where to send it; a template such as https://api/x/{{event.data.id}}."),
            FieldSpec("method", .oneOf(methods), default: "GET", summary: "HTTP method."),
            FieldSpec("headers", .map(of: .string), templated: true, summary: "Request headers."),
            FieldSpec("body", .any, templated: true, summary: "Request body: a string is sent as is, anything else as JSON."),
            FieldSpec("payload", .object([
                FieldSpec("object", .any, templated: true, summary: "Body to send."),
                FieldSpec("input", .any, templated: true, summary: "Body to send (Flowgen)."),
                FieldSpec("from_event", .bool, summary: "Send the event data as the body."),
                FieldSpec("send_as", .oneOf(["json", "urlencoded", "queryparams"]), summary: "How to encode the body."),
            ]), summary: "Flowgen's body settings: {object | input | from_event, send_as}."),
            FieldSpec("response_type", .oneOf(["auto", "json", "text", "bytes"]), default: "auto",
                      summary: "How to read the response body; auto parses JSON responses."),
            FieldSpec("output", .oneOf(["body", "response"]), default: "body", summary: "Emit the body, or {status, headers, body}."),
            FieldSpec("fail_on_status", .bool, default: true, summary: "A non-2xx status fails the task (5xx and 429 are retryable)."),
            FieldSpec("connect_timeout", .duration, default: "10s", summary: "Connection timeout."),
            FieldSpec("max_response_bytes", .integer, default: 16_777_216, summary: "Larger responses fail the task."),
            FieldSpec("credentials_path", .string, inert: true, summary: "Flowgen: file with bearer/basic credentials. Accepted; not used yet."),
        ],
        inputs: [PortSpec("url", "Where to send it (FlowEngine)."), PortSpec("body", "Request body (FlowEngine).")],
        outputs: [PortSpec("status", "HTTP status code"), PortSpec("headers", "response headers"), PortSpec("body", "response body")],
        examples: [
            TaskExample("Fetch a resource per event", yaml: """
                flow:
                  name: fetch
                  tasks:
                    - http_request:
                        name: get_user
                        url: "http://127.0.0.1:8080/users/{{event.data.id}}"
                        headers: {Accept: application/json}
                        timeout: 5s
                        retry: {max_attempts: 3, initial_backoff: 500ms}
                """),
            TaskExample("Post the event as JSON", yaml: """
                flow:
                  name: forward
                  tasks:
                    - http_request:
                        name: post
                        method: POST
                        url: "http://127.0.0.1:8080/ingest"
                        body: "{{event.data}}"
                """),
        ]
    )

    static let registration = TaskRegistration.processor(spec) { _ in HTTPRequestTask() }

    func process(_ event: Event, _ context: TaskContext) async throws -> TaskOutput {
        let config = context.config
        guard let urlText = context.value("url", in: event)?.textValue, !urlText.isEmpty else {
            throw TaskError.invalidConfig("'url' is not set")
        }
        guard let url = URL(string: urlText), let scheme = url.scheme, ["http", "https"].contains(scheme.lowercased()), url.host != nil else {
            throw TaskError.invalidInput("'\(urlText)' is not an http(s) URL")
        }
        let method = (try config.string("method") ?? "GET").uppercased()
        var request = HTTPClientRequest(url: urlText)
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in try config.stringMap("headers") ?? [] { request.headers.add(name: name, value: value) }

        var body: Value? = context.value("body", in: event)
        var sendAs = "json"
        if case .object(let payload)? = config["payload"] {
            if payload["from_event"] == .bool(true) { body = event.data }
            if let v = payload["object"] ?? payload["input"], !v.isNull { body = v }
            if case .string(let s)? = payload["send_as"] { sendAs = s }
        }
        if let body {
            switch (sendAs, body) {
            case ("queryparams", .object(let o)):
                var components = URLComponents(string: urlText)
                let existing = components?.queryItems ?? []
                components?.queryItems = existing + o.map { URLQueryItem(name: $0.key, value: $0.value.textValue) }
                request.url = components?.string ?? urlText
            case ("urlencoded", .object(let o)):
                var components = URLComponents()
                components.queryItems = o.map { URLQueryItem(name: $0.key, value: $0.value.textValue) }
                request.body = .bytes(ByteBuffer(string: components.percentEncodedQuery ?? ""))
                if !request.headers.contains(name: "content-type") { request.headers.add(name: "content-type", value: "application/x-www-form-urlencoded") }
            case (_, .string(let s)):
                request.body = .bytes(ByteBuffer(string: s))
            case (_, .bytes(let b)):
                request.body = .bytes(ByteBuffer(bytes: b))
            default:
                request.body = .bytes(ByteBuffer(string: body.jsonString()))
                if !request.headers.contains(name: "content-type") { request.headers.add(name: "content-type", value: "application/json") }
            }
        }

        let limit = try config.int("max_response_bytes") ?? 16_777_216
        let response: HTTPClientResponse
        let bytes: ByteBuffer
        do {
            // The engine's per-attempt `timeout` cancels this task; this bound only keeps a
            // request without one from hanging forever.
            let connectTimeout = try config.duration("connect_timeout") ?? .seconds(10)
            response = try await HTTPClients.client(connectTimeout: connectTimeout).execute(request, timeout: .seconds(300))
            bytes = try await response.body.collect(upTo: limit)
        } catch let error as HTTPClientError where error == .readTimeout || error == .deadlineExceeded {
            throw TaskError("\(method) \(urlText): \(error)", code: .timeout, retryable: true)
        } catch is CancellationError {
            throw CancellationError()
        } catch let error as NIOTooManyBytesError {
            throw TaskError.permanent("\(method) \(urlText): response larger than max_response_bytes (\(limit)): \(error)")
        } catch {
            throw TaskError("\(method) \(urlText): \(error)", retryable: true)
        }

        let status = Int(response.status.code)
        let bodyValue = try HTTPRequestTask.decode(bytes, headers: response.headers, as: try config.string("response_type") ?? "auto")
        if try config.bool("fail_on_status") ?? true, !(200..<300).contains(status) {
            let snippet = String(bodyValue.textValue.prefix(200))
            let retryable = status >= 500 || status == 429 || status == 408
            throw TaskError("\(method) \(urlText) returned \(status)\(snippet.isEmpty ? "" : ": \(snippet)")", retryable: retryable)
        }
        if try config.string("output") == "response" {
            var headers = Value.Object()
            for (name, value) in response.headers { headers[name.lowercased()] = .string(value) }
            return .event(event.with(data: ["status": .int(Int64(status)), "headers": .object(headers), "body": bodyValue]))
        }
        var out = event.with(data: bodyValue)
        out.meta["http_status"] = .int(Int64(status))
        return .event(out)
    }

    static func decode(_ buffer: ByteBuffer, headers: HTTPHeaders, as type: String) throws -> Value {
        let bytes = Array(buffer.readableBytesView)
        switch type {
        case "bytes": return .bytes(bytes)
        case "text": return .string(String(decoding: bytes, as: UTF8.self))
        case "json":
            do { return try Value.parseJSON(bytes: bytes) } catch {
                throw TaskError.permanent("response is not valid JSON: \(error)")
            }
        default:
            let contentType = headers.first(name: "content-type")?.lowercased() ?? ""
            if contentType.contains("json"), let v = try? Value.parseJSON(bytes: bytes) { return v }
            return .string(String(decoding: bytes, as: UTF8.self))
        }
    }
}

/// HTTP clients shared by every `http_request` task, one per connect timeout. A client's pool
/// keeps trying to connect until its connect timeout passes, so a refused connection fails after
/// `connect_timeout`, not after the request's whole deadline. They live as long as the process.
enum HTTPClients {
    private static let clients = Mutex<[Duration: HTTPClient]>([:])

    static func client(connectTimeout: Duration) -> HTTPClient {
        clients.withLock { clients in
            if let existing = clients[connectTimeout] { return existing }
            var configuration = HTTPClient.Configuration()
            let ms = connectTimeout.components.seconds * 1000 + connectTimeout.components.attoseconds / 1_000_000_000_000_000
            configuration.timeout.connect = .milliseconds(max(1, ms))
            let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
            clients[connectTimeout] = client
            return client
        }
    }
}
