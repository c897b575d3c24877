import Foundation
import PostgresNIO
import SluiceCore
import SluiceEngine
import Synchronization

/// A PostgreSQL database and schema that hold asset tables (`io: {table: ...}`): the store's
/// own, through the store's pool, or another one named by a `postgres://` URL, with a small
/// pool of its own that connects on first use and is closed by `close()`.
public final class PostgresTables: Sendable {
    /// Where, for summaries and messages: never the password.
    public let location: String
    let schema: String
    private let store: PostgresStore?
    private let configuration: PostgresStore.Configuration
    private let state = Mutex<State>(.idle)

    private enum State {
        case idle
        case connecting(Task<Pool, any Error>)
        case closed
    }

    private struct Pool: Sendable {
        let client: PostgresClient
        let runner: Task<Void, Never>
    }

    /// The tables in the store's database and schema.
    public init(store: PostgresStore) {
        self.store = store
        configuration = store.configuration
        schema = store.configuration.schema
        location = Self.location(configuration)
    }

    /// The tables in the database at `url` (`postgres://user:password@host:port/database`, with
    /// `?schema=NAME` for a schema other than `public`, created when missing), through at most
    /// `maximumConnections` connections.
    public init(url: String, maximumConnections: Int = 4, connectTimeout: Double = 10) throws {
        var configuration = try PostgresStore.Configuration(url: url, connectTimeout: connectTimeout)
        try PostgresStore.validate(schema: configuration.schema)
        configuration.maximumConnections = maximumConnections
        self.configuration = configuration
        store = nil
        schema = configuration.schema
        location = Self.location(configuration)
    }

    private static func location(_ c: PostgresStore.Configuration) -> String {
        "postgres://\(c.host):\(c.port)/\(c.database)?schema=\(c.schema)"
    }

    /// The I/O manager of the table `table` (a name of letters, digits and `_`).
    public func manager(table: String) throws -> PostgresTableIOManager {
        try TableMapping.checkName(table)
        guard table.utf8.count <= 63 else {
            throw AssetError("table name \(table) is longer than the 63 bytes PostgreSQL keeps of a name")
        }
        return PostgresTableIOManager(tables: self, table: table)
    }

    /// Lends a pooled connection to `body`.
    func withConnection<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await client().withConnection(body)
    }

    private func client() async throws -> PostgresClient {
        if let store { return store.client }
        let task = try state.withLock { state -> Task<Pool, any Error> in
            switch state {
            case .connecting(let task):
                return task
            case .closed:
                throw AssetError("the tables at \(location) are closed")
            case .idle:
                let configuration = configuration
                let task = Task { try await Self.connect(configuration) }
                state = .connecting(task)
                return task
            }
        }
        do {
            return try await task.value.client
        } catch {
            // The next use tries again.
            state.withLock { state in
                if case .connecting(let failed) = state, failed == task { state = .idle }
            }
            throw error
        }
    }

    /// Checks that the server answers and accepts the login (within the connect timeout),
    /// creates the schema when missing, and starts the pool.
    private static func connect(_ configuration: PostgresStore.Configuration) async throws -> Pool {
        let connection = try await PostgresStore.probe(configuration)
        do {
            if try await PostgresStore.rows(connection, "SELECT 1 FROM pg_namespace WHERE nspname = \(configuration.schema)").isEmpty {
                // IF NOT EXISTS does not stop two sessions creating it at once (one fails on
                // pg_namespace's unique index): processes take the migration lock first.
                try await PostgresStore.inTransaction(connection) { c in
                    try await PostgresStore.rows(c, "SELECT pg_advisory_xact_lock(\(PostgresStore.migrationLock))")
                    try await PostgresStore.rows(c, PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \"\(configuration.schema)\""))
                }
            }
        } catch {
            try? await connection.close()
            throw StoreError.unavailable("cannot create schema \(configuration.schema) of PostgreSQL at \(configuration): "
                                         + PostgresStore.reason(error))
        }
        try? await connection.close()
        let client = PostgresClient(configuration: configuration.clientConfiguration())
        return Pool(client: client, runner: Task { await client.run() })
    }

    /// Closes the pool opened for these tables (waiting for a connection under way); the
    /// store's pool is the store's to close.
    public func close() async {
        let task = state.withLock { state -> Task<Pool, any Error>? in
            defer { state = .closed }
            if case .connecting(let task) = state { return task }
            return nil
        }
        guard let pool = try? await task?.value else { return }
        pool.runner.cancel()
        await pool.runner.value
    }
}
