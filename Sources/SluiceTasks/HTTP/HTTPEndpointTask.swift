import Foundation
import SluiceCore
import SluiceEngine
import Synchronization

/// A webhook: each request to the endpoint starts a run. Served by `sluice serve`.
struct HTTPEndpointTask: TaskSource {
    static let spec = TaskSpec(
        name: "http_endpoint",
        aliases: [TaskAlias("http_webhook")],
        summary: "Webhook source: each request to `endpoint` starts a run; the response is the run's result (or 202 at once).",
        kind: .source,
        fields: [
            FieldSpec("endpoint", .string, required: true, aliases: ["path"], summary: "The path served, such as /hooks/orders."),
            FieldSpec("method", .oneOf(HTTPRequestTask.methods), default: "POST", summary: "The HTTP method accepted."),
            FieldSpec("headers", .array(of: .string), summary: "Request headers copied into event.meta.headers (names in lower case)."),
            FieldSpec("max_body_bytes", .integer, default: 1_048_576, aliases: ["max_body_size"],
                      summary: "Larger bodies are refused with 413."),
            FieldSpec("credentials_path", .string, summary: """
                JSON file with the credentials: {"bearer_token": …} (or "bearer_tokens": […]), {"username": …, "password": …} \
                for basic auth, or {"hmac_secret": …} for signed requests. Without it, requests are not authenticated.
                """),
            FieldSpec("signature", .object([
                FieldSpec("header", .string, default: "X-Sluice-Signature",
                          summary: "Header with hex HMAC-SHA256 of \"<timestamp>.<raw body>\" (a \"sha256=\" prefix is allowed)."),
                FieldSpec("timestamp_header", .string, default: "X-Sluice-Timestamp", summary: "Header with the Unix time of signing, in seconds."),
                FieldSpec("tolerance", .duration, default: "5m", summary: "How far the timestamp may be from now."),
            ]), summary: "Where an HMAC-signed request carries its signature and timestamp (with an hmac_secret credential)."),
            FieldSpec("respond", .oneOf(["result", "accepted"]), default: "result",
                      summary: "result: wait for the run and answer its leaf result (200) or error (500); accepted: answer 202 with the run id at once."),
            FieldSpec("response_timeout", .duration, default: "30s",
                      summary: "With respond: result, answer 504 (the run goes on) when the run takes longer."),
            FieldSpec("max_concurrent_requests", .integer, summary: "Requests handled at once; more are refused with 503 and Retry-After."),
            FieldSpec("idempotency_ttl", .duration, default: "24h",
                      summary: "How long a response is kept for replay to a request with the same Idempotency-Key header."),
        ],
        outputs: [],
        examples: [
            TaskExample("A webhook that answers with the run's result", yaml: """
                flow:
                  name: greet
                  tasks:
                    - http_endpoint:
                        name: hook
                        endpoint: /hooks/greet
                    - script:
                        name: reply
                        code: '#{greeting: "hello " + event.data.name}'
                """),
            TaskExample("Signed deliveries, answered at once", yaml: """
                flow:
                  name: deliveries
                  tasks:
                    - http_endpoint:
                        name: hook
                        endpoint: /hooks/deliveries
                        credentials_path: secrets/deliveries.json
                        headers: [x-delivery-id]
                        respond: accepted
                    - log:
                        name: show
                """),
        ]
    )

    static let registration = TaskRegistration.source(spec) { setup in
        try HTTPEndpointTask(setup)
    }

    let config: EndpointConfig
    let router: WebhookRouter?
    let idempotency: any KeyValueCache
    /// A relative `credentials_path` is read beside the flow file.
    let flowDirectory: String?

    init(_ setup: TaskSetup) throws {
        config = try EndpointConfig(setup.config, task: setup.definition.name)
        let file = setup.definition.location.file
        flowDirectory = file.isEmpty ? nil : (file as NSString).deletingLastPathComponent
        router = setup.webhooks
        // Kept in the store when there is one, so a retry that reaches another process (or
        // this one after a restart) is answered from the first response.
        idempotency = setup.state ?? HTTPEndpointTask.memoryKeys
    }

    static let memoryKeys = InMemoryCache(capacity: 100_000)

    func run(_ emitter: SourceEmitter, _ context: TaskContext) async throws {
        guard let router else {
            throw TaskError.permanent("http_endpoint needs a server: run the flow with `sluice serve`")
        }
        let credentials = try config.credentialsPath.map { try Credentials(path: $0, relativeTo: flowDirectory) }
        let inbox = config.respondAtOnce ? router.inbox : nil
        let handler = EndpointHandler(config: config, credentials: credentials, emitter: emitter, idempotency: idempotency,
                                      keyPrefix: "webhook/\(emitter.flowName)/\(config.method) \(config.path)/", clock: context.clock,
                                      inbox: inbox, task: context.taskName)
        let token = try router.register(method: config.method, path: config.path, flow: emitter.flowName, task: context.taskName, handler: handler)
        defer { router.unregister(token) }
        context.log("serving \(config.method) \(config.path)")
        guard let inbox else {
            while true { try await Task.sleep(for: .seconds(3600)) }
        }
        // Accepted requests are kept in the store until their runs end (the server renews
        // them): run those a stopped process left, at once, then every third of a claim.
        while true {
            let orphans = await inbox.adoptOrphans(flow: emitter.flowName, task: context.taskName)
            for orphan in orphans.givenUp {
                context.log("gave up an accepted request (event \(orphan.event.id)): \(AcceptedInbox.maxRuns) runs of it were begun "
                    + "and none ended; it is kept under inbox-failed/ in the store", level: "error")
            }
            for orphan in orphans.adopted {
                context.log("running an accepted request again (event \(orphan.event.id); its process stopped before its run ended)",
                            level: "warning")
                await handler.rerun(orphan.event, entry: orphan.id)
            }
            try await Task.sleep(for: .seconds(inbox.ttl / 3))
        }
    }
}

/// An endpoint's settings, read once.
struct EndpointConfig: Sendable {
    var path: String
    var method: String
    var headers: [String]
    var maxBodyBytes: Int
    var credentialsPath: String?
    var signatureHeader: String
    var timestampHeader: String
    var tolerance: Double
    var respondAtOnce: Bool
    var responseTimeout: Duration
    var maxConcurrent: Int?
    var idempotencyTTL: Double

    init(_ config: Value.Object, task: String) throws(TaskError) {
        guard let path = try config.string("endpoint"), !path.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw TaskError.invalidConfig("'endpoint' must name a path, such as /hooks/\(task)")
        }
        guard !path.contains("?"), !path.contains("#") else { throw TaskError.invalidConfig("'endpoint' is a path: no query (?) or fragment (#)") }
        self.path = WebhookRouter.normalize(path)
        if self.path == "/" || self.path.hasPrefix("/api/") || self.path == "/api" || self.path.hasPrefix("/health") || self.path == "/metrics" {
            throw TaskError.invalidConfig("'endpoint' \(self.path) is reserved for the server (/, /api, /health, /metrics)")
        }
        method = try config.string("method")?.uppercased() ?? "POST"
        headers = try config.strings("headers")?.map { $0.lowercased() } ?? []
        maxBodyBytes = try config.int("max_body_bytes") ?? 1_048_576
        guard maxBodyBytes >= 0 else { throw TaskError.invalidConfig("'max_body_bytes' must not be negative") }
        credentialsPath = try config.string("credentials_path")
        let signature = config["signature"]?.objectValue ?? [:]
        signatureHeader = try signature.string("header") ?? "X-Sluice-Signature"
        timestampHeader = try signature.string("timestamp_header") ?? "X-Sluice-Timestamp"
        tolerance = try signature.duration("tolerance")?.seconds ?? 300
        respondAtOnce = try config.string("respond") == "accepted"
        responseTimeout = try config.duration("response_timeout") ?? .seconds(30)
        maxConcurrent = try config.int("max_concurrent_requests")
        if let maxConcurrent, maxConcurrent < 1 { throw TaskError.invalidConfig("'max_concurrent_requests' must be at least 1") }
        idempotencyTTL = try config.duration("idempotency_ttl")?.seconds ?? 86_400
    }
}

/// What a request must prove, from a `credentials_path` file.
enum Credentials: Sendable {
    case bearer([[UInt8]])
    case basic(user: [UInt8], password: [UInt8])
    case hmac(secret: [UInt8])

    init(path: String, relativeTo base: String?) throws(TaskError) {
        let resolved = path.hasPrefix("/") || base?.isEmpty != false ? path : (base! as NSString).appendingPathComponent(path)
        guard let text = try? String(contentsOfFile: resolved, encoding: .utf8) else {
            throw TaskError.permanent("credentials_path: cannot read \(resolved)", code: .invalidConfig)
        }
        guard case .object(let o)? = try? Value.parseJSON(text) else {
            throw TaskError.permanent("credentials_path: \(resolved) is not a JSON object", code: .invalidConfig)
        }
        if let token = o["bearer_token"]?.stringValue ?? o["token"]?.stringValue {
            self = .bearer([Array(token.utf8)])
        } else if let tokens = o["bearer_tokens"]?.arrayValue?.compactMap(\.stringValue), !tokens.isEmpty {
            self = .bearer(tokens.map { Array($0.utf8) })
        } else if let basic = o["basic_auth"]?.objectValue ?? (o["username"] != nil ? o : nil),
                  let user = basic["username"]?.stringValue, let password = basic["password"]?.stringValue {
            self = .basic(user: Array(user.utf8), password: Array(password.utf8))
        } else if let secret = o["hmac_secret"]?.stringValue, !secret.isEmpty {
            self = .hmac(secret: Array(secret.utf8))
        } else {
            throw TaskError.permanent(
                "credentials_path: \(resolved) needs bearer_token, bearer_tokens, username and password, or hmac_secret", code: .invalidConfig)
        }
    }
}

/// Answers an endpoint's requests: checks them, starts their runs and waits for the results.
final class EndpointHandler: WebhookHandler {
    let config: EndpointConfig
    let credentials: Credentials?
    let emitter: SourceEmitter
    let idempotency: any KeyValueCache
    let keyPrefix: String
    let clock: any EngineClock
    private let inFlight = Atomic<Int>(0)
    private let requestCounter = Atomic<UInt64>(0)

    /// Where `respond: accepted` requests are kept until their runs end; nil without a store.
    let inbox: AcceptedInbox?

    /// The endpoint task's name: kept requests are filed under it.
    let task: String

    init(config: EndpointConfig, credentials: Credentials?, emitter: SourceEmitter, idempotency: any KeyValueCache, keyPrefix: String,
         clock: any EngineClock, inbox: AcceptedInbox? = nil, task: String = "") {
        self.inbox = inbox
        self.task = task
        self.config = config
        self.credentials = credentials
        self.emitter = emitter
        self.idempotency = idempotency
        self.keyPrefix = keyPrefix
        self.clock = clock
    }

    var maxBodyBytes: Int { config.maxBodyBytes }
    var keepsRequests: Bool { inbox != nil }

    func handle(_ request: WebhookRequest) async -> WebhookResponse {
        if let refusal = authenticate(request) { return refusal }
        if let limit = config.maxConcurrent {
            guard inFlight.add(1, ordering: .relaxed).newValue <= limit else {
                inFlight.subtract(1, ordering: .relaxed)
                return .error(503, code: "overloaded", "\(config.path) is handling \(limit) requests; retry shortly", headers: [("Retry-After", "1")])
            }
        }
        defer { if config.maxConcurrent != nil { inFlight.subtract(1, ordering: .relaxed) } }

        guard let key = request.header("Idempotency-Key"), !key.isEmpty else { return await start(request) }
        guard key.utf8.count <= 255 else {
            return .error(400, code: "invalid_idempotency_key", "the Idempotency-Key header is longer than 255 bytes")
        }
        let storeKey = keyPrefix + key
        let fingerprint = Value.string(Digest.sha256Hex(request.body))
        // "Pending" lasts as long as a request can take (its response timeout, and a minute):
        // if this process dies meanwhile, a retry runs after that instead of meeting 409s
        // for the whole idempotency window.
        let pendingTTL = min(config.idempotencyTTL, config.responseTimeout.seconds + 60)
        if !idempotency.create(storeKey, ["state": "pending", "fingerprint": fingerprint], ttl: pendingTTL) {
            guard let saved = idempotency.get(storeKey) else { return await start(request) }
            if saved["fingerprint"] != fingerprint {
                return .error(422, code: "idempotency_key_reused", "Idempotency-Key '\(key)' was used with a different body")
            }
            guard saved["state"] == "done", let status = saved["status"]?.intValue else {
                return .error(409, code: "idempotency_key_in_progress", "a request with Idempotency-Key '\(key)' is still being handled",
                              headers: [("Retry-After", "1")])
            }
            var headers: [(name: String, value: String)] = [("Idempotent-Replayed", "true")]
            if let type = saved["content_type"]?.stringValue { headers.append(("Content-Type", type)) }
            if let runID = saved["run_id"]?.stringValue { headers.append(("Sluice-Run-Id", runID)) }
            return WebhookResponse(status: Int(status), headers: headers, body: Array((saved["body"]?.stringValue ?? "").utf8))
        }
        let response = await start(request)
        // A refusal for capacity or a timeout is not the answer to this request: a retry with
        // the same key runs it (the 504's run goes on, so its retry would start a second one).
        if response.status == 503 || response.status == 504 && !response.isRunTimeout {
            _ = idempotency.delete(storeKey)
        } else {
            var saved: Value.Object = ["state": "done", "fingerprint": fingerprint, "status": .int(Int64(response.status)),
                                       "body": .string(String(decoding: response.body, as: UTF8.self))]
            if let type = response.headers.first(where: { $0.name == "Content-Type" })?.value { saved["content_type"] = .string(type) }
            if let runID = response.headers.first(where: { $0.name == "Sluice-Run-Id" })?.value { saved["run_id"] = .string(runID) }
            idempotency.put(storeKey, .object(saved), ttl: config.idempotencyTTL)
        }
        return response
    }

    /// Nil when the request may go on; else the 401 to answer.
    private func authenticate(_ request: WebhookRequest) -> WebhookResponse? {
        guard let credentials else { return nil }
        switch credentials {
        case .bearer(let tokens):
            if let value = request.header("Authorization"), value.count > 7, value.prefix(7).lowercased() == "bearer " {
                let given = Array(value.dropFirst(7).trimmingCharacters(in: .whitespaces).utf8)
                // Every token is compared, so the time taken does not say which one nearly matched.
                var ok = false
                for token in tokens where Digest.constantTimeEquals(given, token) { ok = true }
                if ok { return nil }
            }
            return .error(401, code: "unauthorized", "a valid bearer token is required", headers: [("WWW-Authenticate", "Bearer")])
        case .basic(let user, let password):
            if let value = request.header("Authorization"), value.count > 6, value.prefix(6).lowercased() == "basic ",
               let decoded = Data(base64Encoded: String(value.dropFirst(6)).trimmingCharacters(in: .whitespaces)) {
                let bytes = [UInt8](decoded)
                if let colon = bytes.firstIndex(of: UInt8(ascii: ":")) {
                    let userOK = Digest.constantTimeEquals(Array(bytes[..<colon]), user)
                    let passwordOK = Digest.constantTimeEquals(Array(bytes[(colon + 1)...]), password)
                    if userOK && passwordOK { return nil }
                }
            }
            return .error(401, code: "unauthorized", "valid basic credentials are required", headers: [("WWW-Authenticate", "Basic realm=\"sluice\"")])
        case .hmac(let secret):
            guard let stamp = request.header(config.timestampHeader), let seconds = Double(stamp.trimmingCharacters(in: .whitespaces)) else {
                return .error(401, code: "unauthorized", "the \(config.timestampHeader) header (Unix seconds) is missing or not a number")
            }
            let skew = abs(clock.now().timeIntervalSince1970 - seconds)
            guard skew <= config.tolerance else {
                return .error(401, code: "unauthorized", "the request timestamp is outside the allowed window of \(Int(config.tolerance)) s")
            }
            guard var signature = request.header(config.signatureHeader)?.trimmingCharacters(in: .whitespaces) else {
                return .error(401, code: "unauthorized", "the \(config.signatureHeader) header is missing")
            }
            if signature.lowercased().hasPrefix("sha256=") { signature = String(signature.dropFirst(7)) }
            let expected = Digest.hex(Digest.hmacSHA256(key: secret, message: Array(stamp.trimmingCharacters(in: .whitespaces).utf8) + [UInt8(ascii: ".")] + request.body))
            guard Digest.constantTimeEquals(Array(signature.lowercased().utf8), Array(expected.utf8)) else {
                return .error(401, code: "unauthorized", "the signature does not match the body")
            }
            return nil
        }
    }

    /// Starts the request's run and answers with its result, or at once with 202.
    private func start(_ request: WebhookRequest) async -> WebhookResponse {
        let data: Value
        switch Self.decodeBody(request) {
        case .success(let value): data = value
        case .failure(let error): return .error(400, code: "invalid_body", error.message)
        }
        var headers = Value.Object()
        for name in config.headers {
            if let value = request.header(name) { headers[name] = .string(value) }
        }
        let meta: Value.Object = ["method": .string(request.method), "path": .string(request.path),
                                  "query": .object(Self.parseQuery(request.query)), "headers": .object(headers)]
        if config.respondAtOnce, let inbox {
            // Recorded before the 202: a process that dies now does not lose it. Its id names
            // the event too (unless the request names one), the same after a rerun.
            let entry = AcceptedInbox.newID()
            let event = Event(id: request.header("X-Request-Id") ?? entry, data: data, meta: meta)
            do {
                try await inbox.accept(flow: emitter.flowName, task: task, id: entry, event: event)
            } catch {
                return .error(503, code: "store_unavailable", "the request could not be recorded; retry shortly", headers: [("Retry-After", "1")])
            }
            guard let runID = await startKept(event, entry: entry, inbox: inbox) else {
                await inbox.done(flow: emitter.flowName, task: task, id: entry)
                return .error(503, code: "overloaded", "the flow has no room for another run; retry shortly", headers: [("Retry-After", "1")])
            }
            return .json(202, ["run_id": .string(runID), "status": "accepted"], headers: [("Sluice-Run-Id", runID)])
        }
        let id = request.header("X-Request-Id") ?? String(requestCounter.add(1, ordering: .relaxed).newValue)
        let event = Event(id: id, data: data, meta: meta)
        let waiter = ReportWaiter()
        let started: String?
        do {
            // A request that waits for its run does the first tasks' work in its own task when
            // they only compute (scripts): no hand-over between threads for each of them.
            started = try await emitter.tryStart(event, inline: !config.respondAtOnce, onFinish: { waiter.finish($0) })
        } catch {
            started = nil
        }
        guard let runID = started else {
            return .error(503, code: "overloaded", "the flow has no room for another run; retry shortly", headers: [("Retry-After", "1")])
        }
        let runHeader = [(name: "Sluice-Run-Id", value: runID)]
        if config.respondAtOnce {
            return .json(202, ["run_id": .string(runID), "status": "accepted"], headers: runHeader)
        }
        guard let report = await waiter.wait(timeout: config.responseTimeout, clock: clock) else {
            return .error(504, code: "run_timeout", "the run did not finish within \(config.responseTimeout.shortDescription); it goes on",
                          details: ["run_id": .string(runID)], headers: runHeader)
        }
        switch report.status {
        case .completed:
            if report.results.isEmpty { return WebhookResponse(status: 204, headers: runHeader) }
            return .json(200, report.resultValue, headers: runHeader)
        case .failed:
            var details: Value.Object = ["run_id": .string(runID)]
            if let task = report.failedTask { details["task"] = .string(task) }
            return .error(500, code: "run_failed", report.error ?? "the run failed", details: details, headers: runHeader)
        case .cancelled:
            return .error(503, code: "run_cancelled", "the run was cancelled (the flow is stopping); retry shortly",
                          details: ["run_id": .string(runID)], headers: runHeader + [("Retry-After", "1")])
        default:
            return .json(202, ["run_id": .string(runID), "status": .string(report.status.rawValue)], headers: runHeader)
        }
    }

    struct BodyError: Error { var message: String }

    /// JSON (by content type, or by its first byte when none is given), a form, text, or bytes.
    static func decodeBody(_ request: WebhookRequest) -> Result<Value, BodyError> {
        let body = request.body
        if body.isEmpty { return .success(.emptyObject) }
        let type = request.header("Content-Type") ?? ""
        let firstByte = body.first { !($0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09) }
        if containsJSON(type) || (type.isEmpty && (firstByte == UInt8(ascii: "{") || firstByte == UInt8(ascii: "["))) {
            do {
                return .success(try Value.parseJSON(bytes: body))
            } catch {
                return .failure(BodyError(message: "the body is not valid JSON (line \(error.line), column \(error.column)): \(error.message)"))
            }
        }
        let form = type.lowercased().hasPrefix("application/x-www-form-urlencoded")
        // `curl -d '{...}'` sends JSON labelled as a form: a form does not start with { or [.
        if form, firstByte == UInt8(ascii: "{") || firstByte == UInt8(ascii: "["),
           let value = try? Value.parseJSON(bytes: body) {
            return .success(value)
        }
        if form {
            return .success(.object(parseQuery(String(decoding: body, as: UTF8.self))))
        }
        if let text = String(validating: body, as: UTF8.self) { return .success(.string(text)) }
        return .success(.bytes(body))
    }

    /// Starts the run of a kept request; its entry goes when the run ends, unless the run was
    /// cancelled (the process is stopping): then it stays, for a process to run it again.
    private func startKept(_ event: Event, entry: String, inbox: AcceptedInbox) async -> String? {
        let flow = emitter.flowName, task = self.task
        let started = try? await emitter.tryStart(event, onFinish: { report in
            if report.status == .cancelled {
                inbox.release(flow: flow, task: task, id: entry)
            } else {
                inbox.finish(flow: flow, task: task, id: entry)
            }
        })
        return started ?? nil
    }

    /// Runs a kept request again (its process stopped first). With no room now, its claim is
    /// let go, and it is tried again once the claim runs out.
    func rerun(_ event: Event, entry: String) async {
        guard let inbox else { return }
        if await startKept(event, entry: entry, inbox: inbox) == nil { inbox.release(flow: emitter.flowName, task: task, id: entry) }
    }

    /// Whether a Content-Type names JSON (`application/json`, `application/cloudevents+json`,
    /// any case), read byte by byte: this runs for every request.
    static func containsJSON(_ type: String) -> Bool {
        let u = Array(type.utf8)
        guard u.count >= 4 else { return false }
        for i in 0...(u.count - 4)
        where u[i] | 0x20 == UInt8(ascii: "j") && u[i + 1] | 0x20 == UInt8(ascii: "s") && u[i + 2] | 0x20 == UInt8(ascii: "o")
            && u[i + 3] | 0x20 == UInt8(ascii: "n") {
            return true
        }
        return false
    }

    /// A query string or form as an object; a repeated name keeps the last value.
    static func parseQuery(_ query: String) -> Value.Object {
        var out = Value.Object()
        for (name, value) in WebhookRequest.formPairs(query) { out[name] = .string(value) }
        return out
    }
}

extension WebhookResponse {
    var isRunTimeout: Bool { status == 504 }
}

/// One run's report, handed from the engine to the request waiting for it.
final class ReportWaiter: Sendable {
    private struct State {
        var report: RunReport?
        var continuation: CheckedContinuation<RunReport?, Never>?
        var done = false
        var deadline: UInt64?
    }

    private let state = Mutex(State())

    func finish(_ report: RunReport) {
        let (continuation, deadline) = state.withLock { s -> (CheckedContinuation<RunReport?, Never>?, UInt64?) in
            guard !s.done else { return (nil, nil) }
            s.report = report
            if let c = s.continuation { s.done = true; s.continuation = nil; return (c, s.deadline) }
            return (nil, nil)
        }
        if let deadline { Deadlines.shared.remove(deadline) }
        continuation?.resume(returning: report)
    }

    private func giveUp() {
        let continuation = state.withLock { s -> CheckedContinuation<RunReport?, Never>? in
            guard !s.done else { return nil }
            s.done = true
            defer { s.continuation = nil }
            return s.continuation
        }
        continuation?.resume(returning: nil)
    }

    /// The report, or nil after `timeout` (the clock's time; checked a few times a second by
    /// one shared sweeper rather than a timer per request).
    func wait(timeout: Duration, clock: any EngineClock) async -> RunReport? {
        // A run done inline is done already: no continuation, no suspension.
        let finished = state.withLock { s -> RunReport? in
            guard let r = s.report else { return nil }
            s.done = true
            return r
        }
        if let finished { return finished }
        let deadline = clock.now().addingTimeInterval(timeout.seconds)
        return await withCheckedContinuation { (continuation: CheckedContinuation<RunReport?, Never>) in
            let ready = state.withLock { s -> RunReport?? in
                if let r = s.report { s.done = true; return .some(r) }
                if s.done { return .some(nil) }
                s.continuation = continuation
                return nil
            }
            if let ready {
                continuation.resume(returning: ready)
            } else {
                let token = Deadlines.shared.add(deadline, clock: clock) { [weak self] in self?.giveUp() }
                // A report that arrived in between is handed over by `finish`, which also
                // takes the deadline back.
                let finished = state.withLock { s -> Bool in
                    s.deadline = token
                    return s.done
                }
                if finished { Deadlines.shared.remove(token) }
            }
        }
    }
}

/// Gives up on waits whose deadline passed: one task for all of them, sweeping while any are
/// pending, instead of a timer task per request.
final class Deadlines: Sendable {
    static let shared = Deadlines()

    private struct Entry {
        var deadline: Date
        var clock: any EngineClock
        var expire: @Sendable () -> Void
    }

    private struct State {
        var entries: [UInt64: Entry] = [:]
        var next: UInt64 = 0
        var sweeping = false
    }

    private let state = Mutex(State())

    /// Calls `expire` once `deadline` has passed, unless `remove` came first.
    func add(_ deadline: Date, clock: any EngineClock, expire: @escaping @Sendable () -> Void) -> UInt64 {
        let (token, start) = state.withLock { s -> (UInt64, Bool) in
            s.next += 1
            s.entries[s.next] = Entry(deadline: deadline, clock: clock, expire: expire)
            defer { s.sweeping = true }
            return (s.next, !s.sweeping)
        }
        if start { Task { await self.sweep() } }
        return token
    }

    func remove(_ token: UInt64) {
        _ = state.withLock { $0.entries.removeValue(forKey: token) }
    }

    private func sweep() async {
        while true {
            try? await Task.sleep(for: .milliseconds(100))
            let expired = state.withLock { s -> [Entry]? in
                if s.entries.isEmpty { s.sweeping = false; return nil }
                let due = s.entries.filter { $0.value.clock.now() >= $0.value.deadline }
                for key in due.keys { s.entries.removeValue(forKey: key) }
                return Array(due.values)
            }
            guard let expired else { return }
            for e in expired { e.expire() }
        }
    }
}
