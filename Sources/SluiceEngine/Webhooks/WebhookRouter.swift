import Foundation
import SluiceCore
import Synchronization

/// An HTTP request as a webhook source sees it: no server types, so task types stay free of
/// the HTTP library the server uses.
public struct WebhookRequest: Sendable {
    public var method: String
    public var path: String
    /// The query string, without `?`.
    public var query: String
    /// Header fields in the order received; names as sent.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(method: String, path: String, query: String = "", headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.method = WebhookRouter.uppercasedMethod(method)
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
    }

    /// `a=1&b=x%20y` (a query string or a form body) as name–value pairs, decoded; `+` is a space.
    public static func formPairs(_ text: String) -> [(name: String, value: String)] {
        func decode(_ s: Substring) -> String { String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(s) }
        return text.split(separator: "&").filter { !$0.isEmpty }.map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (decode(parts[0]), parts.count > 1 ? decode(parts[1]) : "")
        }
    }

    /// The first header of that name, compared without case (header names are ASCII).
    public func header(_ name: String) -> String? {
        headers.first { Self.sameASCIIIgnoringCase($0.name, name) }?.value
    }

    static func sameASCIIIgnoringCase(_ a: String, _ b: String) -> Bool {
        guard a.utf8.count == b.utf8.count else { return false }
        for (x, y) in zip(a.utf8, b.utf8) where x != y {
            // ASCII letters differ by 0x20 between cases; anything else must match exactly.
            guard x | 0x20 == y | 0x20, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(x | 0x20) else { return false }
        }
        return true
    }
}

/// What a webhook answers.
public struct WebhookResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A JSON body.
    public static func json(_ status: Int, _ value: Value, headers: [(name: String, value: String)] = []) -> WebhookResponse {
        WebhookResponse(status: status, headers: [("Content-Type", "application/json")] + headers, body: Array(value.jsonString().utf8))
    }

    /// The error shape every Sluice HTTP error has: `{"error": {"code", "message", ...}}`.
    public static func error(_ status: Int, code: String, _ message: String, details: Value.Object = [:],
                             headers: [(name: String, value: String)] = []) -> WebhookResponse {
        var error: Value.Object = ["code": .string(code), "message": .string(message)]
        for (k, v) in details { error[k] = v }
        return json(status, ["error": .object(error)], headers: headers)
    }
}

/// Handles the requests of one endpoint.
public protocol WebhookHandler: Sendable {
    /// Bodies larger than this are refused (413) before the handler sees them.
    var maxBodyBytes: Int { get }
    func handle(_ request: WebhookRequest) async -> WebhookResponse
    /// Whether requests are kept in the router's inbox until their runs end (and this
    /// endpoint runs those a stopped process left).
    var keepsRequests: Bool { get }
}

extension WebhookHandler {
    public var keepsRequests: Bool { false }
}

/// The webhook endpoints that running flows serve, by method and path. A server asks it for
/// the handler of each request that is not one of its own routes.
public final class WebhookRouter: Sendable {
    public struct Endpoint: Sendable, Equatable {
        public var method: String
        public var path: String
        public var flow: String
        public var task: String
    }

    public enum Match: Sendable {
        case found(any WebhookHandler)
        /// The path is served, but not with this method.
        case methodNotAllowed(allowed: [String])
        case notFound
    }

    private struct Entry {
        var endpoint: Endpoint
        var handler: any WebhookHandler
        var token: UInt64
    }

    private struct State {
        var entries: [String: Entry] = [:]  // "METHOD path"
        var nextToken: UInt64 = 0
        /// Registrations made so far, by flow: how a caller sees a new version come up.
        var registered: [String: Int] = [:]
    }

    private let state = Mutex(State())

    /// Keeps the events of `respond: accepted` requests until their runs end (nil: in memory
    /// only, lost if the process dies).
    public let inbox: AcceptedInbox?

    public init(inbox: AcceptedInbox? = nil) {
        self.inbox = inbox
    }

    /// The method upper-cased; one that already is (the usual case) is returned as it is,
    /// checked without making a new string.
    static func uppercasedMethod(_ method: String) -> String {
        method.utf8.contains(where: { $0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z") }) ? method.uppercased() : method
    }

    /// The table key of an endpoint (`path` normalized).
    static func key(_ method: String, _ path: String) -> String {
        uppercasedMethod(method) + " " + path
    }

    /// Normalizes a configured path: one leading slash, no trailing one.
    public static func normalize(_ path: String) -> String {
        // Most paths already are: a leading slash, no trailing one, no surrounding spaces.
        let u = path.utf8
        if u.first == UInt8(ascii: "/"), let last = u.last,
           u.count == 1 || (last != UInt8(ascii: "/") && last != UInt8(ascii: " ") && last != UInt8(ascii: "\t")) { return path }
        var p = path.trimmingCharacters(in: .whitespaces)
        if !p.hasPrefix("/") { p = "/" + p }
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        return p
    }

    /// Serves `method path` with `handler` for `flow`. A newer version of the same flow takes
    /// the endpoint over (hot reload); another flow's endpoint is a conflict. Returns a token
    /// for `unregister`.
    public func register(method: String, path: String, flow: String, task: String, handler: any WebhookHandler) throws(TaskError) -> UInt64 {
        let endpoint = Endpoint(method: Self.uppercasedMethod(method), path: Self.normalize(path), flow: flow, task: task)
        let key = Self.key(endpoint.method, endpoint.path)
        return try state.withLock { s throws(TaskError) -> UInt64 in
            if let existing = s.entries[key], existing.endpoint.flow != flow {
                throw TaskError.invalidConfig("\(key) is already served by flow '\(existing.endpoint.flow)'")
            }
            s.nextToken += 1
            s.entries[key] = Entry(endpoint: endpoint, handler: handler, token: s.nextToken)
            s.registered[flow, default: 0] += 1
            return s.nextToken
        }
    }

    /// Removes the endpoint registered with `token`, unless a newer registration replaced it.
    public func unregister(_ token: UInt64) {
        state.withLock { s in
            if let key = s.entries.first(where: { $0.value.token == token })?.key { s.entries.removeValue(forKey: key) }
        }
    }

    /// How many endpoints `flow` has registered since this router was made (a count that only grows).
    public func registrations(flow: String) -> Int {
        state.withLock { $0.registered[flow] ?? 0 }
    }

    /// The method and path an `http_endpoint` task serves, read from its config as written;
    /// nil for other tasks.
    public static func endpoint(of task: TaskDefinition) -> (method: String, path: String)? {
        guard task.type == "http_endpoint" else { return nil }
        let path = task.config["endpoint"]?.stringValue ?? task.config["path"]?.stringValue ?? ""
        return ((task.config["method"]?.stringValue ?? "POST").uppercased(), normalize(path))
    }

    /// The flow that serves `method path` now, if any (for conflict checks before starting a flow).
    public func owner(method: String, path: String) -> String? {
        state.withLock { $0.entries[Self.key(method, Self.normalize(path))]?.endpoint.flow }
    }

    public func match(method: String, path: String) -> Match {
        let path = Self.normalize(path)
        return state.withLock { s in
            if let entry = s.entries[Self.key(method, path)] { return .found(entry.handler) }
            let allowed = s.entries.values.filter { $0.endpoint.path == path }.map(\.endpoint.method).sorted()
            return allowed.isEmpty ? .notFound : .methodNotAllowed(allowed: allowed)
        }
    }

    /// The endpoints served now that keep their requests in the inbox.
    public var keepingEndpoints: [Endpoint] {
        state.withLock { $0.entries.values.filter { $0.handler.keepsRequests }.map(\.endpoint) }
    }

    /// Every endpoint served now, by path.
    public var endpoints: [Endpoint] {
        state.withLock { $0.entries.values.map(\.endpoint) }.sorted { ($0.path, $0.method) < ($1.path, $1.method) }
    }
}
