import ArgumentParser
import Foundation
import SluiceConfig
import SluiceCore
import SluiceEngine
import SluicePostgres
import SluiceSQLite
import SluiceTasks

/// Where runs are recorded: `--store`, else `SLUICE_STORE`, else `.sluice/sluice.db` beside the flows.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Where runs are recorded: a SQLite file path, a postgres:// URL, or 'memory' (nothing kept). Default: $SLUICE_STORE, else .sluice/sluice.db beside the flow.",
        valueName: "path|url"))
    var store: String?

    @Option(name: .long, help: ArgumentHelp(
        "Seconds a run's claim lasts without a heartbeat; a crashed process's runs are resumable after this. Default: $SLUICE_CLAIM_TTL, else 15.",
        valueName: "seconds"))
    var claimTTL: Double?

    /// The store's location, for messages.
    func location(besides flowPath: String?) -> String {
        if let store { return store }
        if let env = ProcessInfo.processInfo.environment["SLUICE_STORE"], !env.isEmpty { return env }
        let dir = flowPath.map { ($0 as NSString).deletingLastPathComponent } ?? ""
        return (dir.isEmpty ? "" : dir + "/") + ".sluice/sluice.db"
    }

    var isMemory: Bool { StoreLocation(location(besides: nil)) == .memory }

    /// Opens the store, runs `body` with it, and closes it however `body` ends.
    func using<T>(besides flowPath: String?, _ body: (OpenStore) async throws -> T) async throws -> T {
        let opened = try await open(besides: flowPath)
        do {
            let result = try await body(opened)
            await opened.close()
            return result
        } catch {
            await opened.close()
            throw error
        }
    }

    /// Opens the store; a problem is printed with the location and exits with status 2.
    func open(besides flowPath: String?) async throws -> OpenStore {
        try await Self.open(location: location(besides: flowPath))
    }

    /// Opens the store at `location` (a SQLite path, a postgres:// URL, or memory).
    static func open(location: String) async throws -> OpenStore {
        do {
            switch StoreLocation(location) {
            case .memory:
                return OpenStore(store: MemoryStore(), close: {})
            case .postgres(let url):
                let pg = try await PostgresStore.connect(url: url)
                return OpenStore(store: pg, close: { await pg.close() })
            case .sqlite(let path):
                return OpenStore(store: try SQLiteStore(path: path), close: {})
            }
        } catch {
            Console.error("error: \(error)")
            throw ExitCode(ExitStatus.invalidInput)
        }
    }

    func runnerOptions() throws -> DurableRunner.Options {
        var options = DurableRunner.Options()
        let env = ProcessInfo.processInfo.environment["SLUICE_CLAIM_TTL"]
        if let ttl = claimTTL ?? env.flatMap(Double.init) {
            guard ttl > 0 else { throw ValidationError("--claim-ttl must be above 0 seconds") }
            options.claimTTL = ttl
        }
        return options
    }

    /// Backs scripts' `ctx.cache` (runtime bucket), tasks' state (system bucket) and tasks' rate
    /// limits and concurrency slots with the store, so every process on it shares them; asset
    /// materializations are recorded in it, and `io: {table: ...}` assets kept in its database.
    func attachCaches(_ opened: OpenStore, to engine: inout Engine) {
        let store = opened.store
        engine.cache = StoreKeyValueCache(store: store, bucket: .runtime)
        engine.taskState = StoreKeyValueCache(store: store, bucket: .system)
        engine.limits = SharedLimits(store: store)
        engine.assets = AssetRuntime(store: store, claimTTL: (try? runnerOptions().claimTTL) ?? DurableRunner.Options().claimTTL)
        engine.assets.setTableManager(opened.tables.manager)
    }

    /// A runner on the store that loads stored definitions with the built-in tasks.
    func runner(_ opened: OpenStore, sinks: [any EngineEventSink]) throws -> DurableRunner {
        var engine = Engine(registry: BuiltinTasks.registry, sinks: sinks)
        attachCaches(opened, to: &engine)
        let loader = makeLoader()
        return DurableRunner(engine: engine, store: opened.store, options: try runnerOptions()) { flow in
            try loader.load(text: flow.source, file: flow.name)
        }
    }
}

struct OpenStore {
    let store: any Store
    /// The databases of the flows' table assets: the store's own, and those their urls name.
    let tables: TableConnections
    private let closeStore: @Sendable () async -> Void

    init(store: any Store, close: @escaping @Sendable () async -> Void) {
        self.store = store
        tables = TableConnections(store: store)
        closeStore = close
    }

    /// Closes the databases opened for tables, then the store.
    func close() async {
        await tables.close()
        await closeStore()
    }
}

/// What a store location (`--store`, `SLUICE_STORE`, sluice.yaml's `store`) or a table asset's
/// `url` names: `memory`, a `postgres://` (or `postgresql://`) URL, or a SQLite file, as a path
/// or a `sqlite:PATH` or `sqlite://PATH` URL (`sqlite:///tmp/a.db` is `/tmp/a.db`).
enum StoreLocation: Equatable {
    case memory
    case sqlite(path: String)
    case postgres(url: String)

    init(_ location: String) {
        if location == "memory" {
            self = .memory
        } else if location.hasPrefix("postgres://") || location.hasPrefix("postgresql://") {
            self = .postgres(url: location)
        } else if location.hasPrefix("sqlite:") {
            let rest = location.dropFirst("sqlite:".count)
            self = .sqlite(path: String(rest.hasPrefix("//") ? rest.dropFirst(2) : rest))
        } else {
            self = .sqlite(path: location)
        }
    }
}
