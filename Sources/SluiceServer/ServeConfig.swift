import Foundation
import SluiceConfig
import SluiceCore

/// `sluice.yaml`: what `sluice serve` runs and how. Every key can be overridden by an
/// environment variable named after its path (`server.port` by `SLUICE_SERVER_PORT`).
public struct ServeConfig: Sendable {
    /// Where flow files are (a folder searched recursively, or one file).
    public var flows = "flows"
    /// The store: a SQLite path, a postgres:// URL, or `memory`.
    public var store = ".sluice/sluice.db"
    public var host = "127.0.0.1"
    public var port = 8080
    /// Required on API calls that change something, when set. Required to serve beyond loopback.
    public var apiToken: String?
    /// The largest request body the API reads.
    public var maxBodyBytes = 10 * 1_048_576
    /// Retry policy for tasks that set none (nil: a task is tried once).
    public var retryAttempts: Int?
    public var retryInitialBackoff: Duration = .seconds(1)
    public var retryMaxBackoff: Duration = .seconds(30)
    /// Live events each stream subscriber may fall behind by before older ones are dropped;
    /// also how many recent events the server keeps for each in-memory run.
    public var eventBuffer = 1024
    /// In-memory runs (webhook and stream runs) the API and dashboard keep, newest first; older
    /// ended ones are dropped.
    public var recentRuns = 1000
    public var logFormat = "text"
    public var logLevel = "info"
    /// Durable runs this process executes at once.
    public var workerConcurrency = 4
    /// Seconds a run's claim lasts without a heartbeat.
    public var claimTTL: Double = 15
    /// How long a new connection may take to send its first request head before it is closed.
    public var firstRequestTimeout: Duration = .seconds(30)
    /// How long a shutdown waits for runs in flight.
    public var gracePeriod: Duration = .seconds(30)
    /// How often flow files are checked for changes; zero turns hot reload off.
    public var reloadInterval: Duration = .seconds(1)
    /// The config file, when one was read (relative paths in it are relative to its folder).
    public var file: String?

    public init() {}

    /// One key of the file: its path, its type, and where it goes.
    struct Key: Sendable {
        enum Kind: Sendable { case string, int, duration, seconds, oneOf([String]) }
        let path: String
        let kind: Kind
        let summary: String
        let apply: @Sendable (inout ServeConfig, Value) -> Void
    }

    static let keys: [Key] = [
        Key(path: "flows", kind: .string, summary: "folder (or file) of flows") { $0.flows = $1.stringValue! },
        Key(path: "store", kind: .string, summary: "SQLite path, postgres:// URL, or memory") { $0.store = $1.stringValue! },
        Key(path: "server.host", kind: .string, summary: "address to listen on") { $0.host = $1.stringValue! },
        Key(path: "server.port", kind: .int, summary: "port to listen on (0: any free port)") { $0.port = Int($1.intValue!) },
        Key(path: "server.api_token", kind: .string, summary: "token the API requires") { $0.apiToken = $1.stringValue! },
        Key(path: "server.max_body_bytes", kind: .int, summary: "largest API request body") { $0.maxBodyBytes = Int($1.intValue!) },
        Key(path: "server.first_request_timeout", kind: .duration, summary: "time a new connection has to send a request") {
            $0.firstRequestTimeout = Duration(parsing: $1.stringValue!)!
        },
        Key(path: "retry.max_attempts", kind: .int, summary: "attempts for tasks without retry") { $0.retryAttempts = Int($1.intValue!) },
        Key(path: "retry.initial_backoff", kind: .duration, summary: "first retry delay") { $0.retryInitialBackoff = Duration(parsing: $1.stringValue!)! },
        Key(path: "retry.max_backoff", kind: .duration, summary: "longest retry delay") { $0.retryMaxBackoff = Duration(parsing: $1.stringValue!)! },
        Key(path: "events.buffer", kind: .int, summary: "events a live subscriber may lag by") { $0.eventBuffer = Int($1.intValue!) },
        Key(path: "events.recent_runs", kind: .int, summary: "in-memory runs kept for the API") { $0.recentRuns = max(1, Int($1.intValue!)) },
        Key(path: "log.format", kind: .oneOf(["text", "json"]), summary: "log line format") { $0.logFormat = $1.stringValue! },
        Key(path: "log.level", kind: .oneOf(["trace", "debug", "info", "notice", "warning", "error", "critical"]), summary: "lowest level logged") {
            $0.logLevel = $1.stringValue!
        },
        Key(path: "workers.concurrency", kind: .int, summary: "durable runs executed at once") { $0.workerConcurrency = Int($1.intValue!) },
        Key(path: "workers.claim_ttl", kind: .seconds, summary: "seconds a run's claim lasts") { $0.claimTTL = $1.doubleValue! },
        Key(path: "shutdown.grace_period", kind: .duration, summary: "how long shutdown waits for runs") { $0.gracePeriod = Duration(parsing: $1.stringValue!)! },
        Key(path: "reload.interval", kind: .duration, summary: "how often flows are checked (0: never)") { $0.reloadInterval = Duration(parsing: $1.stringValue!)! },
    ]

    /// The environment variable that overrides a key.
    static func environmentName(_ path: String) -> String {
        "SLUICE_" + path.uppercased().replacingOccurrences(of: ".", with: "_")
    }

    /// Reads `file` (when given), then the environment over it. Errors name the file, line and
    /// column, or the variable.
    public static func load(file: String?, environment: [String: String]) throws(FlowErrors) -> ServeConfig {
        var config = ServeConfig()
        var errors: [FlowError] = []
        if let file {
            config.file = file
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw FlowErrors([FlowError(.io, "cannot read config file \(file)", at: nil)])
            }
            if let root = try YAMLReader.read(text, file: file) {
                read(root, prefix: "", into: &config, errors: &errors)
            }
        }
        for key in keys {
            let name = environmentName(key.path)
            guard let raw = environment[name] ?? (key.path == "workers.claim_ttl" ? environment["SLUICE_CLAIM_TTL"] : nil) else { continue }
            switch convert(.string(raw), key, fromEnvironment: true) {
            case .success(let value): key.apply(&config, value)
            case .failure(let message): errors.append(FlowError(.invalidValue, "\(name): \(message)", at: nil))
            }
        }
        if !errors.isEmpty { throw FlowErrors(errors) }
        return config
    }

    private static func read(_ node: SourceNode, prefix: String, into config: inout ServeConfig, errors: inout [FlowError]) {
        guard let members = node.members else {
            if case .scalar(.null) = node.kind { return }  // an empty file or section
            errors.append(FlowError(.invalidValue, prefix.isEmpty ? "the config file must be a mapping of keys"
                                                                    : "'\(prefix)' must be a mapping", at: node.location))
            return
        }
        let sections = Set(keys.compactMap { $0.path.split(separator: ".").count > 1 ? String($0.path.split(separator: ".")[0]) : nil })
        for member in members {
            let path = prefix.isEmpty ? member.key : prefix + "." + member.key
            if let key = keys.first(where: { $0.path == path }) {
                if case .scalar(.null) = member.value.kind { continue }
                switch convert(member.value.value, key, fromEnvironment: false) {
                case .success(let value): key.apply(&config, value)
                case .failure(let message): errors.append(FlowError(.invalidValue, "'\(path)': \(message)", at: member.value.location))
                }
            } else if prefix.isEmpty && sections.contains(member.key) {
                read(member.value, prefix: member.key, into: &config, errors: &errors)
            } else {
                let known = prefix.isEmpty
                    ? keys.filter { !$0.path.contains(".") }.map(\.path) + sections.sorted()
                    : keys.filter { $0.path.hasPrefix(prefix + ".") }.map { String($0.path.dropFirst(prefix.count + 1)) }
                let suggestion = Suggestion.closest(to: member.key, in: known).map { "; did you mean '\($0)'?" } ?? ""
                errors.append(FlowError(.unknownField, "unknown key '\(path)'\(suggestion) (known here: \(known.joined(separator: ", ")))",
                                        at: member.keyLocation))
            }
        }
    }

    private static func convert(_ value: Value, _ key: Key, fromEnvironment: Bool) -> Result<Value, ConfigMessage> {
        switch key.kind {
        case .string:
            if let s = value.stringValue { return .success(.string(s)) }
            if let i = value.intValue { return .success(.string(String(i))) }
            return .failure(ConfigMessage("expected a string (\(key.summary))"))
        case .int:
            let number = value.intValue ?? value.stringValue.flatMap { Int64($0.trimmingCharacters(in: .whitespaces)) }
            guard let number, number >= 0 else { return .failure(ConfigMessage("expected a whole number, at least 0 (\(key.summary))")) }
            return .success(.int(number))
        case .seconds:
            let number = value.doubleValue ?? value.stringValue.flatMap { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard let number, number > 0 else { return .failure(ConfigMessage("expected a number of seconds above 0 (\(key.summary))")) }
            return .success(.double(number))
        case .duration:
            let text = value.stringValue ?? value.doubleValue.map { String($0) }
            guard let text, Duration(parsing: text) != nil else {
                return .failure(ConfigMessage("expected a duration such as 500ms, 10s or 1m (\(key.summary))"))
            }
            return .success(.string(text))
        case .oneOf(let options):
            guard let s = value.stringValue, options.contains(s) else {
                return .failure(ConfigMessage("expected one of \(options.joined(separator: ", "))"))
            }
            return .success(.string(s))
        }
    }

    struct ConfigMessage: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// A path from the config file, relative to the file's folder.
    public func resolve(_ path: String) -> String {
        guard let file, !path.hasPrefix("/"), !path.contains("://"), path != "memory" else { return path }
        let dir = (file as NSString).deletingLastPathComponent
        return dir.isEmpty ? path : (dir as NSString).appendingPathComponent(path)
    }

    /// Whether `host` is a loopback address (serving beyond it needs an API token).
    public var isLoopback: Bool {
        host == "127.0.0.1" || host == "::1" || host == "localhost" || host.hasPrefix("127.")
    }
}
