import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import ServiceLifecycle
import SluiceConfig
import SluiceCore
import SluiceEngine
import Synchronization

/// `sluice serve`: flows with sources run continuously, webhooks start runs, the API and the
/// dashboard watch and steer them, and queued durable runs are executed here.
public final class SluiceServer: Sendable {
    public struct ConfigError: Error, CustomStringConvertible {
        public let description: String
    }

    let config: ServeConfig
    let store: any Store
    let storeName: String
    let registry: TaskRegistry
    let loader: FlowLoader
    let logger: Logger
    let webhooks: WebhookRouter
    let metrics = ServerMetrics()
    let live: LiveEvents
    let catalog: FlowCatalog
    let runner: DurableRunner
    let api: API
    private let phase = Mutex(Phase.starting)

    enum Phase: String, Sendable { case starting, ready, stopping }

    /// `environment` is what templates see as `env`; `tables` opens the I/O managers of
    /// `io: {table: ...}` assets (none without it). The store is the caller's to close.
    public init(config: ServeConfig, store: any Store, storeName: String, registry: TaskRegistry, loader: FlowLoader,
                environment: [String: String] = ProcessInfo.processInfo.environment, tables: AssetRuntime.TableManagers? = nil) throws {
        if !config.isLoopback && (config.apiToken ?? "").isEmpty {
            throw ConfigError(description: "serving on \(config.host) (beyond loopback) needs an API token: set server.api_token in sluice.yaml or SLUICE_SERVER_API_TOKEN")
        }
        self.config = config
        self.store = store
        self.storeName = storeName
        self.registry = registry
        self.loader = loader
        // Accepted webhook requests are kept in the store until their runs end (not in a
        // memory store: it dies with the process anyway).
        webhooks = WebhookRouter(inbox: store is MemoryStore ? nil : AcceptedInbox(store: store, ttl: config.claimTTL))
        let logger = Self.makeLogger(config)
        self.logger = logger
        live = LiveEvents(eventsPerRun: config.eventBuffer, maxRuns: config.recentRuns)
        let sourceErrors = SourceErrors()
        var engine = Engine(registry: registry, sinks: [live, sourceErrors, TaskLogForwarder(logger: logger)], environment: environment)
        engine.cache = StoreKeyValueCache(store: store, bucket: .runtime)
        engine.taskState = StoreKeyValueCache(store: store, bucket: .system)
        engine.limits = SharedLimits(store: store)
        engine.assets = AssetRuntime(store: store, claimTTL: config.claimTTL)
        if let tables { engine.assets.setTableManager(tables) }
        engine.webhooks = webhooks
        let root = config.resolve(config.flows)
        // Stored flows are named by their identity; workers load them the way the catalog does.
        let catalogBox = CatalogBox()
        let runner = DurableRunner(engine: engine, store: store, options: DurableRunner.Options(claimTTL: config.claimTTL)) { stored in
            let definition = try loader.load(text: stored.source, file: stored.name)
            return catalogBox.catalog?.normalize(definition, id: stored.name) ?? definition
        }
        let catalog = FlowCatalog(root: root, loader: loader, engine: engine, runner: runner, webhooks: webhooks, config: config,
                                  sourceErrors: sourceErrors, logger: logger)
        catalogBox.catalog = catalog
        self.runner = runner
        self.catalog = catalog
        api = API(config: config, store: store, registry: registry, loader: loader, catalog: catalog, runner: runner, live: live,
                  webhooks: webhooks, metrics: metrics, logger: logger)
        api.server = self
    }

    static func makeLogger(_ config: ServeConfig) -> Logger {
        var logger = Logger(label: "sluice") { label in
            config.logFormat == "json" ? JSONLogHandler(label: label) as any LogHandler : StreamLogHandler.standardError(label: label)
        }
        logger.logLevel = Logger.Level(rawValue: config.logLevel) ?? .info
        return logger
    }

    var isReady: Bool { phase.withLock { $0 == .ready } }

    /// Loads (or reloads) the flows under the flows path and starts their sources, as `run`
    /// does first; for embedding the server's responder without its HTTP listener.
    /// Returns the identities of the flows that changed.
    @discardableResult
    public func loadFlows() async -> [String] {
        await catalog.reload()
    }

    /// Answers one request the way the HTTP server does (API, dashboard, webhooks), without a
    /// connection: for embedding and for measuring the engine's share of a request.
    public func respond(to request: Request) async -> Response {
        await api.respond(request)
    }

    /// Stops the flows' sources and lets their runs finish (what a graceful shutdown does
    /// after the HTTP server stopped).
    public func stopFlows() async {
        await catalog.stopAll()
    }


    /// Serves until SIGTERM or SIGINT, then shuts down gracefully: stops accepting, lets
    /// requests and runs in flight finish within the grace period, and returns.
    /// `onListening` gets the address once the port is bound.
    public func run(onListening: @escaping @Sendable (String) -> Void = { _ in }) async throws {
        await catalog.reload()
        let root = catalog.root
        if !FileManager.default.fileExists(atPath: root) {
            logger.warning("the flows path \(root) does not exist; flows added there later are loaded")
        }
        let api = self.api
        let responder = CallbackResponder<BasicRequestContext> { request, context in
            await api.respond(request)
        }
        let live = self.live, config = self.config, logger = self.logger
        let app = Application(
            responder: responder,
            server: HTTPServerBuilder { responder in
                GuardedChildChannel(
                    inner: HTTP1WebSocketUpgradeChannel(responder: responder, configuration: .init()) { request, _, _ in
                        await api.webSocketUpgrade(request)
                    },
                    firstRequestTimeout: .nanoseconds(Int64(config.firstRequestTimeout / .nanoseconds(1))))
            },
            configuration: ApplicationConfiguration(address: .hostname(config.host, port: config.port), serverName: "sluice"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? config.port
                let address = "http://\(config.host.contains(":") ? "[\(config.host)]" : config.host):\(port)"
                logger.info("listening on \(address)", metadata: ["flows": .string(root), "store": .string(self.storeName)])
                self.phase.withLock { $0 = .ready }
                onListening(address)
            },
            logger: logger
        )
        let duties = Duties(server: self)
        let closer = StreamCloser(live: live, server: self)
        // Shut down in reverse: live streams end, the HTTP server stops accepting and finishes
        // its requests, then the flows drain and the worker stops.
        var groupConfig = ServiceGroupConfiguration(
            services: [.init(service: duties), .init(service: app), .init(service: closer)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        // A connection that never sent a request is not closed by the HTTP server's graceful
        // stop (hummingbird-websocket adds its shutdown handler at the first request), so the
        // whole shutdown is bounded: requests, then runs, each get the grace period.
        groupConfig.maximumGracefulShutdownDuration = config.gracePeriod * 2 + .seconds(5)
        groupConfig.maximumCancellationDuration = .seconds(5)
        let group = ServiceGroup(configuration: groupConfig)
        try await group.run()
    }

    func beginStopping() {
        phase.withLock { $0 = .stopping }
    }

    /// Worker duty and hot reload while serving; on shutdown, the flows' runs drain.
    struct Duties: Service {
        let server: SluiceServer

        func run() async throws {
            let catalog = server.catalog, runner = server.runner, config = server.config
            // The worker also wakes gates whose timeout passed, so their on_timeout applies.
            let drain = DurableRunner.Drain()
            let worker = Task { await runner.work(concurrency: max(1, config.workerConcurrency), drain: drain) }
            let watcher = Task { await catalog.watch(every: config.reloadInterval) }
            // Accepted webhook requests stay this process's while their runs go on, draining
            // included; the renewals stop once those are cleared.
            let renewer = Task { await server.webhooks.inbox?.keepRenewing() }
            let orphans = Task { await server.reportUnservedRequests() }
            try? await gracefulShutdown()
            watcher.cancel()
            // The flows' runs and the worker's durable runs finish side by side, within one
            // grace period; a durable run still going then is interrupted and stays resumable
            // (its claim is given up, so another process takes it over at once).
            drain.start()
            async let flowsStopped: Void = catalog.stopAll()
            let timer = Task {
                try await Task.sleep(for: config.gracePeriod)
                worker.cancel()
            }
            // Cancelled rather than shut down (another service failed): no grace period.
            await withTaskCancellationHandler { await worker.value } onCancel: { worker.cancel() }
            timer.cancel()
            await flowsStopped
            // Accepted requests whose runs just ended are cleared before exit, so a restart
            // does not run them again.
            await server.webhooks.inbox?.settle()
            renewer.cancel()
            orphans.cancel()
            server.logger.info("stopped")
        }
    }

    /// Warns, a little after start and then every ten minutes, about accepted webhook requests
    /// kept in the store that no endpoint served here will run (their flow was renamed or
    /// removed, or its endpoint no longer answers `accepted`).
    func reportUnservedRequests() async {
        guard let inbox = webhooks.inbox else { return }
        var wait = Duration.seconds(inbox.ttl * 2 + 1)
        while (try? await Task.sleep(for: wait)) != nil {
            wait = .seconds(600)
            guard let waiting = try? await inbox.waiting() else { continue }
            let served = Set(webhooks.keepingEndpoints.map { [$0.flow, $0.task] })
            for group in waiting where !served.contains([group.flow, group.task]) {
                let message = "\(group.count) accepted webhook request(s) of flow '\(group.flow)' (endpoint task '\(group.task)') wait in the "
                    + "store, and no endpoint served here runs them: serve that flow with that task again, or delete "
                    + "inbox/\(group.flow)/\(group.task)/ from the store"
                logger.warning("\(message)")
            }
        }
    }

    /// Ends live event streams first, so the HTTP server's graceful stop does not wait on them.
    struct StreamCloser: Service {
        let live: LiveEvents
        let server: SluiceServer

        func run() async throws {
            try? await gracefulShutdown()
            server.beginStopping()
            server.logger.info("shutting down: no new requests; waiting for those in flight")
            live.finishAll()
        }
    }
}

/// Lets the runner's loader reach the catalog built after it.
private final class CatalogBox: @unchecked Sendable {
    // Set once, before the server runs.
    var catalog: FlowCatalog?
}

/// Log lines as JSON objects on standard error.
struct JSONLogHandler: LogHandler {
    let label: String
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var o: Value.Object = ["time": .string(EngineEvent.iso8601(Date())), "level": .string(event.level.rawValue),
                               "message": .string(event.message.description)]
        for (k, v) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) { o[k] = .string(v.description) }
        FileHandle.standardError.write(Data((Value.object(o).jsonString() + "\n").utf8))
    }
}
