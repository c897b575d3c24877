import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import SluiceConfig
import SluiceCore
import SluiceEngine

/// An API failure: the status and a stable code, answered as `{"error": {"code", "message"}}`.
struct APIError: Error {
    var status: Int
    var code: String
    var message: String
    var headers: [(name: String, value: String)] = []

    static func notFound(_ what: String) -> APIError { APIError(status: 404, code: "not_found", message: what) }
    static func badRequest(_ message: String, code: String = "invalid_request") -> APIError { APIError(status: 400, code: code, message: message) }
    static func conflict(_ message: String, code: String = "conflict") -> APIError { APIError(status: 409, code: code, message: message) }
}

/// The HTTP side of the server: the JSON API under /api/v1, health, metrics, the dashboard,
/// live event streams, and webhooks for every other path.
final class API: Sendable {
    let config: ServeConfig
    let store: any Store
    let registry: TaskRegistry
    let loader: FlowLoader
    let catalog: FlowCatalog
    let runner: DurableRunner
    let live: LiveEvents
    let webhooks: WebhookRouter
    let metrics: ServerMetrics
    let logger: Logger
    let tokenBytes: [UInt8]?

    init(config: ServeConfig, store: any Store, registry: TaskRegistry, loader: FlowLoader, catalog: FlowCatalog, runner: DurableRunner,
         live: LiveEvents, webhooks: WebhookRouter, metrics: ServerMetrics, logger: Logger) {
        self.config = config
        self.store = store
        self.registry = registry
        self.loader = loader
        self.catalog = catalog
        self.runner = runner
        self.live = live
        self.webhooks = webhooks
        self.metrics = metrics
        self.logger = logger
        self.tokenBytes = config.apiToken.flatMap { $0.isEmpty ? nil : Array($0.utf8) }
        // A document that does not parse stops the server here rather than at the first request.
        _ = OpenAPIDocument.document
    }

    // MARK: - Dispatch

    func respond(_ request: Request) async -> Response {
        let path = request.uri.path
        let method = request.method.rawValue
        if path == "/api" || path.hasPrefix("/api/") || path.hasPrefix("/health/") || path == "/metrics" || path == "/" {
            let (route, response) = await routeOwn(request, path: path, method: method)
            metrics.recordRequest(route: route, status: response.status.code)
            return response
        }
        return await webhook(request, path: path, method: method)
    }

    private func routeOwn(_ request: Request, path: String, method: String) async -> (String, Response) {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).map { String($0).removingPercentEncoding ?? String($0) }
        // Metrics are labelled by route: a closed set, so that requests for made-up paths do not
        // add a series each.
        var route = "unmatched"
        do {
            switch (method, parts.first) {
            case ("GET", nil), ("HEAD", nil):
                route = "/"
                return (route, Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-cache"],
                                        body: .init(byteBuffer: ByteBuffer(string: Dashboard.page))))
            case (_, nil):
                route = "/"
                throw methodNotAllowed(["GET", "HEAD"])
            case (_, "health"):
                if parts.count == 2, ["live", "ready"].contains(parts[1]) { route = "/health/" + parts[1] }
                return (route, try await health(method, parts))
            case (_, "metrics"):
                route = "/metrics"
                guard method == "GET" else { throw methodNotAllowed(["GET"]) }
                return (route, text(200, await renderMetrics(), type: "text/plain; version=0.0.4; charset=utf-8"))
            default:
                guard parts.count >= 2, parts[0] == "api", parts[1] == "v1" else { throw APIError.notFound("no such endpoint: \(path) (the API is under /api/v1)") }
                let rest = Array(parts.dropFirst(2))
                route = Self.routeName(rest).map { "/api/v1/" + $0 } ?? "unmatched"
                if rest == ["openapi.json"] {
                    guard method == "GET" else { throw methodNotAllowed(["GET"]) }
                    return (route, json(200, OpenAPIDocument.document))
                }
                try authorize(request)
                return (route, try await api(request, method: method, rest))
            }
        } catch let error as APIError {
            return (route, self.error(error))
        } catch let error as StoreError {
            if case .notFound(let what) = error { return (route, self.error(.notFound("no \(what)"))) }
            logger.error("store error: \(error)")
            return (route, self.error(APIError(status: 503, code: "store_unavailable", message: "the store failed: \(error)", headers: [("Retry-After", "1")])))
        } catch let error as DurableError {
            return (route, self.error(.conflict(error.description)))
        } catch let error as GateError {
            return (route, self.error(.conflict(error.description, code: "gate_refused")))
        } catch {
            logger.error("request failed: \(error)")
            return (route, self.error(APIError(status: 503, code: "unavailable", message: "the request could not be completed; retry later",
                                               headers: [("Retry-After", "1")])))
        }
    }

    /// A route's name for metrics (the path under /api/v1 with ids replaced by placeholders);
    /// nil for a path that is no route, so labels stay few whatever clients ask for.
    static func routeName(_ rest: [String]) -> String? {
        switch (rest.first ?? "", rest.count) {
        case ("runs", 1): return "runs"
        case ("runs", 2): return "runs/{id}"
        case ("runs", 3) where ["events", "cancel", "resume", "retry", "approve", "reject"].contains(rest[2]): return "runs/{id}/" + rest[2]
        case ("flows", 1): return "flows"
        case ("flows", 2) where rest[1] == "validate": return "flows/validate"
        case ("flows", 2...): return "flows/{id}"
        case ("tasks", 1): return "tasks"
        case ("tasks", 2): return "tasks/{type}"
        case ("assets", 1): return "assets"
        case ("assets", 2): return "assets/{key}"
        case ("signals", 2): return "signals/{token}"
        case ("events", 2) where ["stream", "ws"].contains(rest[1]): return "events/" + rest[1]
        case ("webhooks", 1), ("openapi.json", 1): return rest[0]
        default: return nil
        }
    }

    private func api(_ request: Request, method: String, _ rest: [String]) async throws -> Response {
        let query = Self.query(request)
        switch rest.first {
        case "flows":
            // POST flows/validate validates; GET there is the flow named 'validate', like any other.
            let isValidate = rest.count == 2 && rest[1] == "validate"
            if isValidate && method == "POST" { return json(200, validate(try await body(request), file: query["file"])) }
            guard method == "GET" else { throw methodNotAllowed(isValidate ? ["GET", "POST"] : ["GET"]) }
            if rest.count == 1 { return json(200, ["flows": .array(catalog.entries.map { flowSummary($0) })]) }
            let id = rest.dropFirst().joined(separator: "/")
            guard let entry = catalog.entry(id) else { throw APIError.notFound("no flow '\(id)'") }
            return json(200, flowDetail(entry))
        case "runs":
            return try await runs(request, method: method, Array(rest.dropFirst()), query: query)
        case "events" where rest.count == 2 && rest[1] == "stream":
            guard method == "GET" else { throw methodNotAllowed(["GET"]) }
            return eventStream(flow: query["flow"], run: query["run"])
        case "events" where rest.count == 2 && rest[1] == "ws":
            // A WebSocket upgrade is a GET; the upgrade itself never reaches here.
            guard method == "GET" else { throw methodNotAllowed(["GET"]) }
            throw APIError(status: 426, code: "upgrade_required", message: "connect with a WebSocket client (Upgrade: websocket)",
                           headers: [("Upgrade", "websocket")])
        case "tasks":
            guard method == "GET" else { throw methodNotAllowed(["GET"]) }
            if rest.count == 1 { return json(200, ["tasks": .array(registry.specs.map(\.json))]) }
            guard rest.count == 2, let spec = registry.registration(for: rest[1])?.spec else {
                throw APIError.notFound("no task type '\(rest.dropFirst().joined(separator: "/"))' (GET /api/v1/tasks lists them)")
            }
            return json(200, spec.json)
        case "webhooks" where rest.count == 1:
            guard method == "GET" else { throw methodNotAllowed(["GET"]) }
            return json(200, ["webhooks": .array(webhooks.endpoints.map { ["method": .string($0.method), "path": .string($0.path),
                                                                           "flow": .string($0.flow), "task": .string($0.task)] })])
        case "signals" where rest.count == 2:
            guard method == "POST" else { throw methodNotAllowed(["POST"]) }
            let payload = try await jsonBody(request, default: .null)
            let gate = try await Gates(store: store).signal(token: rest[1], payload: payload, actor: actor(request))
            return json(200, ["gate": gate])
        case "assets":
            guard method == "GET" else { throw methodNotAllowed(["GET"]) }
            return try await assets(Array(rest.dropFirst()), query: query)
        default:
            throw APIError.notFound("no such endpoint: /api/v1/\(rest.joined(separator: "/")) (see /api/v1/openapi.json)")
        }
    }

    // MARK: - Runs

    private func runs(_ request: Request, method: String, _ rest: [String], query: [String: String]) async throws -> Response {
        if rest.isEmpty {
            switch method {
            case "GET": return json(200, try await listRuns(query))
            case "POST": return try await startRun(request)
            default: throw methodNotAllowed(["GET", "POST"])
            }
        }
        let id = rest[0]
        if rest.count == 1 {
            guard method == "GET" else { throw methodNotAllowed(["GET"]) }
            return json(200, try await runDetail(id))
        }
        guard rest.count == 2 else { throw APIError.notFound("no such endpoint under /api/v1/runs/\(id)") }
        switch rest[1] {
        case "events":
            guard method == "GET" else { throw methodNotAllowed(["GET"]) }
            if try await store.run(id: id) != nil { return json(200, ["run": .string(id), "events": .array(try await store.events(runID: id))]) }
            guard let recent = live.run(id) else { throw APIError.notFound("no run '\(id)'") }
            return json(200, ["run": .string(id), "events": .array(recent.events.map(\.json)), "dropped": .int(Int64(recent.droppedEvents))])
        case "cancel":
            guard method == "POST" else { throw methodNotAllowed(["POST"]) }
            try await requireStored(id)
            let reason = try Self.optionalString(try await objectBody(request, shape: "{\"reason\": ...}"), "reason") ?? "cancelled through the API"
            return json(200, ["run": runJSON(try await runner.cancel(runID: id, reason: reason))])
        case "resume":
            guard method == "POST" else { throw methodNotAllowed(["POST"]) }
            try await requireStored(id)
            return json(202, ["run": runJSON(try await runner.queueResume(runID: id))])
        case "retry":
            guard method == "POST" else { throw methodNotAllowed(["POST"]) }
            try await requireStored(id)
            let from = try Self.optionalString(try await objectBody(request, shape: "{\"from\": \"task\"}"), "from")
            return json(202, ["run": runJSON(try await runner.queueRetry(runID: id, from: from))])
        case "approve", "reject":
            guard method == "POST" else { throw methodNotAllowed(["POST"]) }
            try await requireStored(id)
            let approve = rest[1] == "approve"
            let body = try await objectBody(request, shape: approve ? "{\"task\": ..., \"comment\": ...}" : "{\"task\": ..., \"reason\": ...}")
            let note = try Self.optionalString(body, approve ? "comment" : "reason")
            if !approve && (note ?? "").isEmpty { throw APIError.badRequest("a rejection needs a reason: {\"reason\": \"...\"}") }
            let task = try Self.optionalString(body, "task")
            let gate = try await Gates(store: store).decide(run: id, task: task, approve: approve,
                                                            actor: actor(request), comment: note)
            return json(200, ["gate": gate])
        default:
            throw APIError.notFound("no such endpoint: /api/v1/runs/\(id)/\(rest[1])")
        }
    }

    private func requireStored(_ id: String) async throws {
        if try await store.run(id: id) != nil { return }
        if live.run(id) != nil {
            throw APIError.conflict("run \(id) is an in-memory run of a stream: it is not recorded, so it cannot be cancelled, resumed or retried",
                                    code: "not_durable")
        }
        throw APIError.notFound("no run '\(id)'")
    }

    private func listRuns(_ query: [String: String]) async throws -> Value {
        let limit = try Self.intParameter(query["limit"], name: "limit", default: 50, range: 1...1000)
        var statuses: Set<RunStatus>?
        // An empty status (a form's "any") is no filter.
        if let status = query["status"], !status.isEmpty {
            statuses = []
            for name in status.split(separator: ",") {
                guard let s = RunStatus(rawValue: String(name)) else {
                    throw APIError.badRequest("unknown status '\(name)' (one of \(RunStatus.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                statuses?.insert(s)
            }
        }
        let durableOnly: Bool
        switch query["durable"] {
        case nil, "false": durableOnly = false
        case "true": durableOnly = true
        default: throw APIError.badRequest("'durable' must be true or false")
        }
        let stored = try await store.runs(RunFilter(flow: query["flow"], statuses: statuses, limit: limit))
        var out = stored.map { runJSON($0) }
        if !durableOnly && out.count < limit {
            // Runs of streams live only in memory; they are listed after the stored ones.
            let storedIDs = Set(stored.map(\.id))
            let wanted = statuses.map { Set($0.map(\.rawValue)) }
            // One status is filtered by the live list itself; several (or none), here.
            let single = wanted.flatMap { $0.count == 1 ? $0.first : nil }
            for run in live.recentRuns(flow: query["flow"], status: single, limit: wanted == nil || single != nil ? limit : Int.max)
            where !storedIDs.contains(run.id) && (wanted?.contains(run.status) ?? true) {
                if try await store.run(id: run.id) != nil { continue }
                out.append(recentJSON(run))
                if out.count >= limit { break }
            }
        }
        return ["runs": .array(Array(out.prefix(limit)))]
    }

    private func startRun(_ request: Request) async throws -> Response {
        let body = try await objectBody(request, shape: "{\"flow\": ..., \"input\": ...}")
        guard let flow = body["flow"]?.stringValue else { throw APIError.badRequest("'flow' (a flow id from GET /api/v1/flows) is required") }
        let input = body["input"] ?? .emptyObject
        let key = try idempotencyKey(request, body)
        let wait = try Self.optionalBool(body, "wait") ?? false
        guard let version = catalog.active(flow) else {
            if let entry = catalog.entry(flow), !entry.errors.isEmpty {
                throw APIError(status: 422, code: "flow_invalid", message: "flow '\(flow)' does not load: \(entry.errors.joined(separator: "; "))")
            }
            throw APIError.notFound("no flow '\(flow)'")
        }
        guard version.kind != .stream else {
            throw APIError.conflict("flow '\(flow)' is a stream: its source starts its runs (for a webhook, send the request to its endpoint)",
                                    code: "flow_is_stream")
        }
        if !wait {
            let record = try await runner.enqueue(version.plan, source: version.source, input: input, trigger: "api", idempotencyKey: key)
            return json(202, ["run": runJSON(record)])
        }
        let outcome = try await runner.start(version.plan, source: version.source, input: input, trigger: "api", idempotencyKey: key)
        var out: Value.Object = ["run": runJSON(outcome.record)]
        if let result = outcome.result { out["result"] = result }
        return json(200, .object(out))
    }

    private func runDetail(_ id: String) async throws -> Value {
        guard let record = try await store.run(id: id) else {
            guard let recent = live.run(id) else { throw APIError.notFound("no run '\(id)'") }
            var o = recentJSON(recent).objectValue ?? [:]
            o["tasks"] = .array(Self.tasksFromEvents(recent.events))
            o["events"] = .array(recent.events.map(\.json))
            return .object(o)
        }
        var o = runJSON(record).objectValue ?? [:]
        let attempts = try await store.attempts(runID: id)
        let gates = try await Gates(store: store).gates(run: id)
        let waiting = Gates.waiting(gates)
        var order: [String] = []
        var byTask: [String: [TaskAttempt]] = [:]
        for a in attempts {
            if byTask[a.task] == nil { order.append(a.task) }
            byTask[a.task, default: []].append(a)
        }
        o["tasks"] = .array(order.map { name in
            let list = byTask[name]!.sorted { $0.attempt < $1.attempt }
            let last = list.last!
            let status = last.status == .running && waiting.contains(name) ? "waiting" : Self.taskStatus(last.status)
            var t: Value.Object = ["name": .string(name), "status": .string(status), "attempts": .int(Int64(list.count)),
                                   "started": .string(EngineEvent.iso8601(list.first!.started))]
            if let ended = last.ended { t["ended"] = .string(EngineEvent.iso8601(ended)); t["duration_ms"] = .double((ended.timeIntervalSince(list.first!.started) * 1000).rounded()) }
            if let error = last.error { t["error"] = .string(error) }
            t["history"] = .array(list.map { a in
                var h: Value.Object = ["attempt": .int(Int64(a.attempt)), "status": .string(Self.taskStatus(a.status)),
                                       "started": .string(EngineEvent.iso8601(a.started))]
                if let ended = a.ended { h["ended"] = .string(EngineEvent.iso8601(ended)) }
                if let error = a.error { h["error"] = .string(error) }
                return .object(h)
            })
            return .object(t)
        })
        if record.status == .completed, let result = try await runner.result(of: record) { o["result"] = result }
        if !gates.isEmpty { o["gates"] = .array(gates) }
        return .object(o)
    }

    /// A stored attempt's status in the words events and in-memory runs use.
    static func taskStatus(_ status: TaskAttempt.Status) -> String {
        status == .succeeded ? "completed" : status.rawValue
    }

    /// A task list for an in-memory run, from its events.
    static func tasksFromEvents(_ events: [EngineEvent]) -> [Value] {
        var order: [String] = []
        var tasks: [String: Value.Object] = [:]
        for e in events {
            guard let name = e.task, e.kind.isTask else { continue }
            if tasks[name] == nil { order.append(name); tasks[name] = ["name": .string(name), "attempts": 0] }
            switch e.kind {
            case .taskStarted:
                tasks[name]!["status"] = "running"
                tasks[name]!["attempts"] = .int(Int64(e.attempt ?? 1))
                if tasks[name]!["started"] == nil { tasks[name]!["started"] = .string(EngineEvent.iso8601(e.timestamp)) }
            case .taskCompleted:
                tasks[name]!["status"] = "completed"
                tasks[name]!["ended"] = .string(EngineEvent.iso8601(e.timestamp))
                if let d = e.duration { tasks[name]!["duration_ms"] = .double((d.seconds * 1e6).rounded() / 1e3) }
            case .taskFailed:
                tasks[name]!["status"] = "failed"
                tasks[name]!["error"] = e.message.map(Value.string) ?? .null
            case .taskSkipped: tasks[name]!["status"] = "skipped"
            case .taskCancelled: tasks[name]!["status"] = "cancelled"
            case .taskRetrying: tasks[name]!["status"] = "retrying"
            default: break
            }
        }
        return order.map { .object(tasks[$0]!) }
    }

    func runJSON(_ r: RunRecord) -> Value {
        var o: Value.Object = ["id": .string(r.id), "flow": .string(r.flow), "status": .string(r.status.rawValue), "trigger": .string(r.trigger),
                               "durable": true, "input": r.input, "created": .string(EngineEvent.iso8601(r.created))]
        if let s = r.started { o["started"] = .string(EngineEvent.iso8601(s)) }
        if let e = r.ended { o["ended"] = .string(EngineEvent.iso8601(e)) }
        if let e = r.error { o["error"] = .string(e) }
        if let k = r.idempotencyKey { o["idempotency_key"] = .string(k) }
        return .object(o)
    }

    func recentJSON(_ r: LiveEvents.RecentRun) -> Value {
        var o: Value.Object = ["id": .string(r.id), "flow": .string(r.flow), "status": .string(r.status), "trigger": "source",
                               "durable": false, "created": .string(EngineEvent.iso8601(r.started)), "started": .string(EngineEvent.iso8601(r.started))]
        if let e = r.ended { o["ended"] = .string(EngineEvent.iso8601(e)) }
        if let e = r.error { o["error"] = .string(e) }
        if let t = r.failedTask { o["failed_task"] = .string(t) }
        return .object(o)
    }

    // MARK: - Flows

    func flowSummary(_ e: FlowCatalog.Entry) -> Value {
        var o: Value.Object = ["id": .string(e.id), "file": .string(e.file), "status": .string(e.active == nil ? "invalid" : e.errors.isEmpty ? "active" : "stale")]
        if let v = e.active {
            o["kind"] = .string(v.kind.rawValue)
            o["version"] = .string(String(v.digest.prefix(12)))
            o["loaded"] = .string(EngineEvent.iso8601(v.loaded))
            o["tasks"] = .int(Int64(v.plan.definition.tasks.count))
            // Labels can be any value; these two are always answered as text.
            if let name = v.plan.definition.labels["display_name"], !name.isNull { o["display_name"] = .string(name.textValue) }
            if let d = v.plan.definition.labels["description"], !d.isNull { o["description"] = .string(d.textValue) }
            o["assets"] = .int(Int64(v.plan.assetGraph.assets.count))
        }
        if !e.errors.isEmpty { o["errors"] = .array(e.errors.map(Value.string)) }
        return .object(o)
    }

    func flowDetail(_ e: FlowCatalog.Entry) -> Value {
        var o = flowSummary(e).objectValue ?? [:]
        if let v = e.active {
            let d = v.plan.definition
            o["labels"] = .object(d.labels)
            o["graph"] = ["tasks": .array(d.tasks.map { t in
                var task: Value.Object = ["name": .string(t.name), "type": .string(t.type), "depends_on": .array(t.dependencies.map(Value.string)),
                                          "kind": .string(registry.registration(for: t.type)?.spec.kind.rawValue ?? "processor")]
                if let a = t.asset { task["asset"] = .string(a.key) }
                if let endpoint = WebhookRouter.endpoint(of: t) {
                    task["endpoint"] = .string(endpoint.path)
                    task["method"] = .string(endpoint.method)
                }
                return .object(task)
            })]
            if let s = d.settings.schedule { o["schedule"] = .string(String(describing: s.trigger)) }
            o["source"] = .string(v.source)
        }
        return .object(o)
    }

    func validate(_ body: [UInt8], file: String?) -> Value {
        guard let text = String(validating: body, as: UTF8.self) else {
            return ["valid": false, "errors": [["message": "the body is not UTF-8 text"]]]
        }
        let name = file ?? "posted.yaml"
        do {
            let definition = try loader.load(text: text, file: name)
            do {
                _ = try Engine(registry: registry).prepare(definition)
            } catch {
                return ["valid": false, "errors": .array(error.errors.map(errorJSON))]
            }
            return ["valid": true, "flow": ["name": .string(definition.name), "tasks": .array(definition.tasks.map { .string($0.name) })],
                    "warnings": .array(definition.warnings.map(errorJSON))]
        } catch {
            return ["valid": false, "errors": .array(error.errors.map(errorJSON))]
        }
    }

    func errorJSON(_ e: FlowError) -> Value {
        var o: Value.Object = ["message": .string(e.message), "code": .string(e.code.rawValue)]
        if let l = e.location { o["line"] = .int(Int64(l.line)); o["column"] = .int(Int64(l.column)) }
        return .object(o)
    }

    // MARK: - Assets

    private func assets(_ rest: [String], query: [String: String]) async throws -> Response {
        var out: [Value] = []
        for entry in catalog.entries {
            guard let version = entry.active else { continue }
            let graph = version.plan.assetGraph
            for (task, spec) in graph.assets.sorted(by: { $0.key < $1.key }) {
                let key = spec.key
                if rest.count == 1 && rest[0] != key { continue }
                var planner = AssetPlanner(graph: graph, store: store, now: Date())
                let statuses = try await planner.statuses(of: task)
                var counts: [String: Int64] = [:]
                for (_, s) in statuses { counts[s.state.rawValue, default: 0] += 1 }
                var o: Value.Object = ["key": .string(key), "flow": .string(entry.id), "task": .string(task),
                                       "depends_on": .array((graph.upstream[task] ?? []).map { .string(graph.assets[$0]?.key ?? $0) }),
                                       "partitions": .object(Value.Object(uniqueKeysWithValues: counts.sorted { $0.key < $1.key }.map { ($0.key, Value.int($0.value)) }))]
                if rest.count == 1 {
                    o["partition_status"] = .array(statuses.suffix(1000).map { key, s in
                        var p: Value.Object = ["partition": .string(key), "status": .string(s.state.rawValue)]
                        if let reason = s.reason { p["reason"] = .string(reason) }
                        return .object(p)
                    })
                }
                out.append(.object(o))
            }
        }
        if rest.count == 1 {
            guard let first = out.first else { throw APIError.notFound("no asset '\(rest[0])'") }
            return json(200, first)
        }
        guard rest.isEmpty else { throw APIError.notFound("no such endpoint under /api/v1/assets") }
        return json(200, ["assets": .array(out)])
    }

    // MARK: - Health, metrics

    private func health(_ method: String, _ parts: [String]) async throws -> Response {
        guard method == "GET" || method == "HEAD" else { throw methodNotAllowed(["GET", "HEAD"]) }
        guard parts.count == 2 else { throw APIError.notFound("no such endpoint (/health/live or /health/ready)") }
        switch parts[1] {
        case "live":
            return json(200, ["status": "live"])
        case "ready":
            let problems = catalog.problems
            var o: Value.Object = ["flows": .int(Int64(catalog.entries.count))]
            if !problems.isEmpty {
                o["flow_errors"] = .object(Value.Object(uniqueKeysWithValues: problems.sorted { $0.key < $1.key }.map { ($0.key, Value.array($0.value.map(Value.string))) }))
            }
            guard server?.isReady ?? true else {
                o["status"] = "not_ready"
                return json(503, .object(o), headers: [("Retry-After", "1")])
            }
            do {
                _ = try await store.runs(RunFilter(limit: 1))
            } catch {
                o["status"] = "store_unavailable"
                o["error"] = .string("\(error)")
                return json(503, .object(o), headers: [("Retry-After", "5")])
            }
            o["status"] = "ready"
            return json(200, .object(o))
        default:
            throw APIError.notFound("no such endpoint (/health/live or /health/ready)")
        }
    }

    /// Set once the server is built, for readiness.
    nonisolated(unsafe) weak var server: SluiceServer?

    private func renderMetrics() async -> String {
        var gauges: [(name: String, help: String, samples: [(labels: String, value: Double)])] = []
        let queued = (try? await store.runs(RunFilter(statuses: [.queued], limit: 10_000)).count) ?? -1
        gauges.append(("sluice_queue_depth", "Durable runs waiting in the queue (-1: the store did not answer).", [("", Double(queued))]))
        let entries = catalog.entries
        gauges.append(("sluice_flows", "Flows by state.", [
            ("{state=\"active\"}", Double(entries.filter { $0.active != nil && $0.errors.isEmpty }.count)),
            ("{state=\"invalid\"}", Double(entries.filter { !$0.errors.isEmpty }.count)),
        ]))
        gauges.append(("sluice_webhook_endpoints", "Webhook endpoints served.", [("", Double(webhooks.endpoints.count))]))
        return metrics.render(engine: live.engineMetrics, gauges: gauges)
    }

    // MARK: - Webhooks

    private func webhook(_ request: Request, path: String, method: String) async -> Response {
        let started = ContinuousClock.now
        switch webhooks.match(method: method, path: path) {
        case .notFound:
            metrics.recordRequest(route: "unmatched", status: 404)
            return error(.notFound("no endpoint at \(path)"))
        case .methodNotAllowed(let allowed):
            metrics.recordRequest(route: "unmatched", status: 405)
            return error(methodNotAllowed(allowed))
        case .found(let handler):
            let response: WebhookResponse
            // The headers are copied for the task; the declared length is noted on the way.
            var headers: [(name: String, value: String)] = []
            headers.reserveCapacity(request.headers.count)
            var declaredLength = 0
            for field in request.headers {
                headers.append((field.name.rawName, field.value))
                if field.name == .contentLength { declaredLength = Int(field.value) ?? 0 }
            }
            if declaredLength > handler.maxBodyBytes {
                response = .error(413, code: "body_too_large", "the body is larger than this endpoint's limit of \(handler.maxBodyBytes) bytes")
            } else {
                do {
                    let buffer = try await request.body.collect(upTo: handler.maxBodyBytes)
                    let hook = WebhookRequest(method: method, path: path, query: request.uri.query ?? "", headers: headers,
                                              body: Array(buffer.readableBytesView))
                    response = await handler.handle(hook)
                } catch {
                    response = .error(413, code: "body_too_large", "the body is larger than this endpoint's limit of \(handler.maxBodyBytes) bytes")
                }
            }
            let elapsed = ContinuousClock.now - started
            metrics.recordWebhook(path: WebhookRouter.normalize(path), status: response.status, seconds: elapsed.seconds)
            return self.response(response)
        }
    }

    // MARK: - Live events

    /// Server-sent events: one `data:` line of JSON per engine event, until the client leaves
    /// or the server stops.
    private func eventStream(flow: String?, run: String?) -> Response {
        let stream = live.subscribe(flow: flow, run: run, buffer: config.eventBuffer)
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                        body: ResponseBody { writer in
                            try await writer.write(ByteBuffer(string: ": sluice live events\n\n"))
                            for await event in stream {
                                try await writer.write(ByteBuffer(string: "event: \(event.kind.rawValue)\ndata: \(event.json.jsonString())\n\n"))
                            }
                            try await writer.finish(nil)
                        })
    }

    /// WebSocket at /api/v1/events/ws: the same events as SSE, one JSON text message each.
    func webSocketUpgrade(_ request: HTTPRequest) async -> ShouldUpgradeResult<WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>> {
        let path = request.path ?? ""
        let (route, queryString) = path.split(separator: "?", maxSplits: 1).map(String.init).splitFirst()
        guard route == "/api/v1/events/ws" else { return .dontUpgrade }
        let query = Self.parseQuery(queryString ?? "")
        if let tokenBytes {
            let given = request.headerFields[.authorization].map { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : $0 } ?? query["token"] ?? ""
            guard Digest.constantTimeEquals(Array(given.utf8), tokenBytes) else { return .dontUpgrade }
        }
        let stream = live.subscribe(flow: query["flow"], run: query["run"], buffer: config.eventBuffer)
        return .upgrade([:]) { inbound, outbound, _ in
            // The inbound side is read only to notice the client leaving.
            let reader = Task {
                for try await _ in inbound.messages(maxSize: 1 << 16) {}
            }
            defer { reader.cancel() }
            for await event in stream {
                if reader.isCancelled { break }
                try await outbound.write(.text(event.json.jsonString()))
            }
        }
    }

    // MARK: - Helpers

    private func authorize(_ request: Request) throws {
        guard let tokenBytes else { return }
        let header = request.headers[.authorization] ?? ""
        let given = header.lowercased().hasPrefix("bearer ") ? String(header.dropFirst(7)) : Self.query(request)["token"] ?? ""
        guard Digest.constantTimeEquals(Array(given.trimmingCharacters(in: .whitespaces).utf8), tokenBytes) else {
            throw APIError(status: 401, code: "unauthorized", message: "this server requires its API token: Authorization: Bearer <token>",
                           headers: [("WWW-Authenticate", "Bearer")])
        }
    }

    private func actor(_ request: Request) -> String {
        request.headers[HTTPField.Name("X-Sluice-Actor")!] ?? "api"
    }

    private func body(_ request: Request) async throws -> [UInt8] {
        do {
            let buffer = try await request.body.collect(upTo: config.maxBodyBytes)
            return Array(buffer.readableBytesView)
        } catch {
            throw APIError(status: 413, code: "body_too_large", message: "the body is larger than \(config.maxBodyBytes) bytes")
        }
    }

    private func jsonBody(_ request: Request, default empty: Value) async throws -> Value {
        let bytes = try await body(request)
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }) { return empty }
        do {
            return try Value.parseJSON(bytes: bytes)
        } catch {
            throw APIError.badRequest("the body is not valid JSON (line \(error.line), column \(error.column)): \(error.message)", code: "invalid_json")
        }
    }

    /// A JSON body that must be an object (an empty body is `{}`).
    private func objectBody(_ request: Request, shape: String) async throws -> Value {
        let body = try await jsonBody(request, default: .emptyObject)
        guard case .object = body else { throw APIError.badRequest("the body must be a JSON object: \(shape)") }
        return body
    }

    /// An optional text field of a body: absent or null is nil, another type is refused.
    static func optionalString(_ body: Value, _ name: String) throws -> String? {
        guard let value = body[name], !value.isNull else { return nil }
        guard let text = value.stringValue else { throw APIError.badRequest("'\(name)' must be a string") }
        return text
    }

    /// An optional true/false field of a body: absent or null is nil, another type is refused.
    static func optionalBool(_ body: Value, _ name: String) throws -> Bool? {
        guard let value = body[name], !value.isNull else { return nil }
        guard let flag = value.boolValue else { throw APIError.badRequest("'\(name)' must be true or false") }
        return flag
    }

    /// The Idempotency-Key header, or the body's idempotency_key. An empty key is no key (as for
    /// webhooks): otherwise every start that sends one empty would answer the first such run.
    private func idempotencyKey(_ request: Request, _ body: Value) throws -> String? {
        let header = request.headers[HTTPField.Name("Idempotency-Key")!]?.trimmingCharacters(in: .whitespaces)
        let given = try header.flatMap { $0.isEmpty ? nil : $0 } ?? Self.optionalString(body, "idempotency_key")
        guard let key = given, !key.isEmpty else { return nil }
        guard key.utf8.count <= 255 else {
            throw APIError.badRequest("the idempotency key is longer than 255 bytes", code: "invalid_idempotency_key")
        }
        return key
    }

    static func query(_ request: Request) -> [String: String] { parseQuery(request.uri.query ?? "") }

    static func parseQuery(_ query: String) -> [String: String] {
        Dictionary(WebhookRequest.formPairs(query), uniquingKeysWith: { $1 })
    }

    static func intParameter(_ raw: String?, name: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
        guard let raw else { return value }
        guard let n = Int(raw), range.contains(n) else {
            throw APIError.badRequest("'\(name)' must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return n
    }

    private func methodNotAllowed(_ allowed: [String]) -> APIError {
        APIError(status: 405, code: "method_not_allowed", message: "use \(allowed.joined(separator: " or "))",
                 headers: [("Allow", allowed.joined(separator: ", "))])
    }

    func json(_ status: Int, _ value: Value, headers: [(name: String, value: String)] = []) -> Response {
        response(.json(status, value, headers: headers))
    }

    /// The server's answer for a webhook's (or the API's) response.
    func response(_ r: WebhookResponse) -> Response {
        var fields = HTTPFields()
        for h in r.headers {
            if let name = HTTPField.Name(h.name) { fields.append(HTTPField(name: name, value: h.value)) }
        }
        return Response(status: HTTPResponse.Status(code: r.status), headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: r.body)))
    }

    func text(_ status: Int, _ body: String, type: String) -> Response {
        Response(status: HTTPResponse.Status(code: status), headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    func error(_ e: APIError) -> Response {
        response(.error(e.status, code: e.code, e.message, headers: e.headers))
    }
}

extension Array where Element == String {
    /// The first element and the second, if any.
    func splitFirst() -> (String, String?) { (first ?? "", count > 1 ? self[1] : nil) }
}
