import Foundation
import PostgresNIO
import SluiceCore
import SluiceEngine
import Synchronization

/// The store for many processes on many machines: one PostgreSQL database, every table in one
/// schema. It keeps the SQLite store's rules row for row; where SQLite serialises writers with
/// one file lock, this store takes row locks (`FOR UPDATE`, `SKIP LOCKED` for the queue) and
/// advisory locks, so processes contend only where they touch the same run, lease or bucket.
/// Key-value watchers are woken by LISTEN/NOTIFY instead of waiting out their poll interval.
public final class PostgresStore: Store {
    /// Where the server is and which schema holds the tables. TLS is not used.
    public struct Configuration: Sendable, CustomStringConvertible {
        public var host: String
        public var port: Int
        public var user: String
        public var password: String?
        public var database: String
        /// The PostgreSQL schema of every table, created when missing: a plain lowercase
        /// identifier, so it never needs quoting.
        public var schema: String
        /// Seconds to wait for the server to answer and accept the login when connecting.
        public var connectTimeout: Double
        /// The most connections the store opens (LISTEN takes one more).
        public var maximumConnections: Int

        public init(host: String, port: Int = 5432, user: String, password: String?, database: String,
                    schema: String = "public", connectTimeout: Double = 10, maximumConnections: Int = 20) {
            self.host = host
            self.port = port
            self.user = user
            self.password = password
            self.database = database
            self.schema = schema
            self.connectTimeout = connectTimeout
            self.maximumConnections = maximumConnections
        }

        /// Reads `postgres://user:password@host:port/database` (or `postgresql://`), with the user
        /// and password percent-decoded. Query parameters: `sslmode` (only the values that allow
        /// a plain connection) and `schema` (the schema of the tables, over the argument).
        public init(url: String, schema: String = "public", connectTimeout: Double = 10) throws(StoreError) {
            var schema = schema
            // The URL holds the password, so no message repeats it.
            guard let parts = URLComponents(string: url), let scheme = parts.scheme?.lowercased(),
                  scheme == "postgres" || scheme == "postgresql" else {
                throw .unavailable("the PostgreSQL URL is not of the form postgres://user:password@host:port/database")
            }
            guard let host = parts.host, !host.isEmpty else { throw .unavailable("the PostgreSQL URL names no host") }
            guard let user = parts.percentEncodedUser?.removingPercentEncoding, !user.isEmpty else {
                throw .unavailable("the PostgreSQL URL for \(host) names no user")
            }
            for item in parts.queryItems ?? [] {
                switch (item.name, item.value ?? "") {
                case ("sslmode", "disable"), ("sslmode", "allow"), ("sslmode", "prefer"):
                    continue
                case ("sslmode", let mode):
                    throw .unavailable("sslmode=\(mode) in the PostgreSQL URL for \(host): this store connects without TLS")
                case ("schema", let name):
                    schema = name
                default:
                    throw .unavailable("unsupported parameter '\(item.name)' in the PostgreSQL URL for \(host) (sslmode and schema are read)")
                }
            }
            let path = String((parts.percentEncodedPath.removingPercentEncoding ?? parts.path).drop { $0 == "/" })
            self.init(host: host, port: parts.port ?? 5432, user: user,
                      password: parts.percentEncodedPassword.flatMap { $0.removingPercentEncoding },
                      database: path.isEmpty ? user : path, schema: schema, connectTimeout: connectTimeout)
        }

        /// Where and as whom, for messages: never the password.
        public var description: String { "\(host):\(port)/\(database) as \(user)" }

        var timeout: Duration { .milliseconds(Int64((connectTimeout * 1000).rounded())) }

        /// Every connection starts with the store's schema as its only search path, so the SQL
        /// names tables without a schema.
        private var startupParameters: [(String, String)] { [("search_path", "\"\(schema)\"")] }

        func connectionConfiguration() -> PostgresConnection.Configuration {
            var config = PostgresConnection.Configuration(host: host, port: port, username: user, password: password,
                                                          database: database, tls: .disable)
            config.options.connectTimeout = .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000
                                                         + timeout.components.attoseconds / 1_000_000_000)
            config.options.additionalStartupParameters = startupParameters
            return config
        }

        func clientConfiguration() -> PostgresClient.Configuration {
            var config = PostgresClient.Configuration(host: host, port: port, username: user, password: password,
                                                      database: database, tls: .disable)
            config.options.connectTimeout = timeout
            config.options.maximumConnections = maximumConnections
            config.options.additionalStartupParameters = startupParameters
            return config
        }
    }

    /// The pool every query goes through; it only lends connections while `runner` runs it.
    let client: PostgresClient
    private let runner: Task<Void, Never>
    private let signal: ChangeSignal
    let configuration: Configuration

    private init(configuration: Configuration, client: PostgresClient, runner: Task<Void, Never>) {
        self.configuration = configuration
        self.client = client
        self.runner = runner
        let listenerConfiguration = configuration.connectionConfiguration()
        signal = ChangeSignal {
            try await PostgresConnection.connect(configuration: listenerConfiguration, id: 1, logger: Self.logger)
        }
    }

    deinit {
        signal.stop()
        runner.cancel()
    }

    /// Connects to the database at `url` (see `Configuration.init(url:schema:connectTimeout:)`)
    /// and migrates `schema`.
    public static func connect(url: String, schema: String = "public", connectTimeout: Double = 10) async throws -> PostgresStore {
        try await connect(Configuration(url: url, schema: schema, connectTimeout: connectTimeout))
    }

    /// Connects and migrates the schema. A server that cannot be reached or refuses the login
    /// fails within `connectTimeout` with the server's reason (`StoreError.unavailable`), instead
    /// of leaving the pool to retry forever behind the first query.
    public static func connect(_ configuration: Configuration) async throws -> PostgresStore {
        try validate(schema: configuration.schema)
        let connection = try await probe(configuration)
        do {
            try await migrate(connection, schema: configuration.schema)
        } catch {
            try? await connection.close()
            throw StoreError.unavailable("cannot migrate schema \(configuration.schema) of PostgreSQL at \(configuration): \(reason(error))")
        }
        try? await connection.close()
        let client = PostgresClient(configuration: configuration.clientConfiguration())
        let runner = Task { await client.run() }
        return PostgresStore(configuration: configuration, client: client, runner: runner)
    }

    /// Stops the listener and the pool and waits until their connections are closed. The store
    /// cannot be used afterwards.
    public func close() async {
        await signal.close()
        runner.cancel()
        await runner.value
    }

    static let logger = Logger(label: "sluice.postgres")

    static func validate(schema: String) throws(StoreError) {
        let allowed = schema.utf8.enumerated().allSatisfy { i, c in
            c == UInt8(ascii: "_") || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c)
                || (i > 0 && (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c))
        }
        guard allowed, !schema.isEmpty, schema.utf8.count <= 63 else {
            throw .unavailable("'\(schema)' is not a usable PostgreSQL schema name: use lowercase letters, digits and "
                               + "underscores, starting with a letter or underscore, at most 63 characters")
        }
    }

    /// One connection made by hand, bounded by the timeout, so a wrong password or an unknown
    /// database is reported instead of retried.
    static func probe(_ configuration: Configuration) async throws -> PostgresConnection {
        let settings = configuration.connectionConfiguration()
        let failure = { (why: String) in
            StoreError.unavailable("cannot connect to PostgreSQL at \(configuration): \(why)")
        }
        let connection: PostgresConnection?
        do {
            connection = try await withThrowingTaskGroup(of: PostgresConnection?.self) { group in
                group.addTask { try await PostgresConnection.connect(configuration: settings, id: 0, logger: logger) }
                group.addTask {
                    try await Task.sleep(for: configuration.timeout)
                    return nil
                }
                let first = try await group.next() ?? nil
                group.cancelAll()
                // Timed out: a connection that still completes is closed, not leaked.
                while let late = try? await group.next() { try? await late?.close() }
                return first
            }
        } catch let error as CancellationError {
            throw error
        } catch {
            throw failure(reason(error))
        }
        guard let connection else { throw failure("no answer within \(seconds(configuration.timeout))") }
        return connection
    }

    // MARK: - Schema

    /// Each entry brings the schema from version i to i + 1, one statement per string (the
    /// extended protocol takes one at a time). The tables match the SQLite store's, with a `seq`
    /// where SQLite's rowid gave the order of insertion.
    static let migrations: [[String]] = [
        [
            "CREATE TABLE flows (hash text PRIMARY KEY, name text NOT NULL, source text NOT NULL, created double precision NOT NULL)",
            """
            CREATE TABLE runs (
                id text PRIMARY KEY, flow text NOT NULL, flow_hash text NOT NULL, status text NOT NULL,
                trigger text NOT NULL, input text NOT NULL, idempotency_key text, created double precision NOT NULL,
                started double precision, ended double precision, error text)
            """,
            "CREATE INDEX runs_by_time ON runs (created, id)",
            "CREATE INDEX runs_by_key ON runs (flow, idempotency_key, created) WHERE idempotency_key IS NOT NULL",
            """
            CREATE TABLE attempts (
                run_id text NOT NULL, task text NOT NULL, attempt bigint NOT NULL, status text NOT NULL,
                started double precision NOT NULL, ended double precision, error text, seq bigserial NOT NULL,
                PRIMARY KEY (run_id, task, attempt))
            """,
            "CREATE TABLE checkpoints (run_id text NOT NULL, task text NOT NULL, output text NOT NULL, PRIMARY KEY (run_id, task))",
            "CREATE TABLE run_events (seq bigserial PRIMARY KEY, run_id text NOT NULL, event text NOT NULL)",
            "CREATE INDEX run_events_by_run ON run_events (run_id, seq)",
            "CREATE TABLE results (key text PRIMARY KEY, value text NOT NULL, expires double precision NOT NULL)",
            """
            CREATE TABLE kv (
                bucket text NOT NULL, key text NOT NULL, value text NOT NULL, revision bigint NOT NULL,
                expires double precision, PRIMARY KEY (bucket, key))
            """,
            "CREATE INDEX kv_by_revision ON kv (bucket, revision)",
            "CREATE TABLE kv_revisions (bucket text PRIMARY KEY, revision bigint NOT NULL)",
            """
            CREATE TABLE leases (
                name text PRIMARY KEY, holder text NOT NULL, generation bigint NOT NULL, expires double precision NOT NULL)
            """,
            """
            CREATE TABLE queue (
                run_id text PRIMARY KEY, queued double precision NOT NULL, worker text,
                generation bigint NOT NULL DEFAULT 0, expires double precision, seq bigserial NOT NULL)
            """,
            "CREATE INDEX queue_by_time ON queue (queued, seq)",
        ],
        // Asset materializations with their lineage (the upstream materializations each one
        // read, in order), and the audit log.
        [
            """
            CREATE TABLE materializations (
                id text PRIMARY KEY, asset text NOT NULL, partition text NOT NULL, run_id text NOT NULL, status text NOT NULL,
                started double precision NOT NULL, ended double precision, version text NOT NULL, summary text NOT NULL, error text)
            """,
            "CREATE INDEX materializations_by_partition ON materializations (asset, partition, started)",
            "CREATE INDEX materializations_by_run ON materializations (run_id)",
            """
            CREATE TABLE materialization_inputs (
                materialization_id text NOT NULL, position bigint NOT NULL, asset text NOT NULL, partition text NOT NULL,
                input_id text NOT NULL, PRIMARY KEY (materialization_id, position))
            """,
            "CREATE INDEX materialization_inputs_by_asset ON materialization_inputs (asset, partition)",
            """
            CREATE TABLE audit_log (
                id bigserial PRIMARY KEY, time double precision NOT NULL, actor text NOT NULL, action text NOT NULL,
                target text NOT NULL, detail text NOT NULL)
            """,
            "CREATE INDEX audit_log_by_target ON audit_log (target, id)",
        ],
    ]

    /// Every process migrating a schema takes this transaction-scoped advisory lock first, so
    /// processes starting at once apply each migration exactly once.
    static let migrationLock: Int64 = 0x534C_5549_4345  // "SLUICE"

    /// Brings `schema` to the newest version in one transaction. Existence is checked before
    /// each CREATE because PostgreSQL checks the CREATE privilege even with IF NOT EXISTS: a
    /// user who may only use an existing schema can still open it.
    static func migrate(_ connection: PostgresConnection, schema: String) async throws {
        try await inTransaction(connection) { c in
            try await rows(c, "SELECT pg_advisory_xact_lock(\(migrationLock))")
            if try await rows(c, "SELECT 1 FROM pg_namespace WHERE nspname = \(schema)").isEmpty {
                try await rows(c, PostgresQuery(unsafeSQL: "CREATE SCHEMA \"\(schema)\""))
            }
            let qualified = "\"\(schema)\".sluice_schema"
            if try await rows(c, "SELECT to_regclass(\(qualified))::text").first?.decode(String?.self) == nil {
                try await rows(c, "CREATE TABLE sluice_schema (version integer PRIMARY KEY)")
            }
            let version = try await currentVersion(c)
            if version > migrations.count {
                throw StoreError.unavailable(
                    "it was written by a newer Sluice (schema version \(version), this one knows \(migrations.count))")
            }
            for v in version..<migrations.count {
                for statement in migrations[v] { try await rows(c, PostgresQuery(unsafeSQL: statement)) }
                try await rows(c, "INSERT INTO sluice_schema (version) VALUES (\(v + 1))")
            }
        }
    }

    private static func currentVersion(_ c: PostgresConnection) async throws -> Int {
        try await rows(c, "SELECT coalesce(max(version), 0) FROM sluice_schema").first?.decode(Int.self) ?? 0
    }

    /// The schema version of the tables in use.
    public func schemaVersion() async throws -> Int {
        try await Self.mapErrors { try await client.withConnection { c in try await Self.currentVersion(c) } }
    }

    // MARK: - Helpers

    /// Runs `body` between BEGIN and COMMIT; ROLLBACK when it throws. A connection that cannot
    /// even roll back is closed, so the pool does not lend it out mid-transaction.
    static func inTransaction<T>(_ c: PostgresConnection, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await rows(c, "BEGIN")
        do {
            let result = try await body(c)
            try await rows(c, "COMMIT")
            return result
        } catch {
            do {
                try await rows(c, "ROLLBACK")
            } catch {
                try? await c.close()
            }
            throw error
        }
    }

    /// Runs one statement and reads all of its rows, so its errors surface here.
    @discardableResult
    static func rows(_ c: PostgresConnection, _ query: PostgresQuery) async throws -> [PostgresRow] {
        try await c.query(query, logger: logger).collect()
    }

    /// Passes the store's own errors through and turns the driver's into `StoreError`s that
    /// carry the server's words.
    private static func mapErrors<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as PSQLError {
            throw StoreError.unavailable("PostgreSQL: \(reason(error))")
        } catch let error as PostgresDecodingError {
            throw StoreError.corrupt("PostgreSQL column \(error.columnName) does not hold a \(error.targetType): \(error.code)")
        }
    }

    /// What went wrong, in the server's words when it said something, else in plain ones.
    static func reason(_ error: any Error) -> String {
        switch error {
        case StoreError.unavailable(let why):
            return why
        case let error as PSQLError:
            if let message = error.serverInfo?[.message] { return message }
            if let underlying = error.underlying { return reason(underlying) }
            switch error.code {
            case .serverClosedConnection: return "the server closed the connection"
            case .clientClosedConnection, .poolClosed: return "the store is closed"
            case .authMechanismRequiresPassword: return "the server asks for a password and none was given"
            case .unsupportedAuthMechanism: return "the server asks for an authentication method this client does not support"
            case .sslUnsupported: return "the server does not support TLS"
            default: return "\(error.code)"
            }
        case let error as NIOConnectionError:
            if error.dnsAError != nil || error.dnsAAAAError != nil { return "cannot resolve host \(error.host)" }
            return error.connectionErrors.first.map { reason($0.error) } ?? "cannot connect to \(error.host):\(error.port)"
        case let error as IOError:
            return String(cString: strerror(error.errnoCode))
        case ChannelError.connectTimeout(let after):
            return "no answer within \(seconds(.nanoseconds(after.nanoseconds)))"
        default:
            return "\(error)"
        }
    }

    /// "5 seconds", "2.5 seconds".
    private static func seconds(_ d: Duration) -> String {
        let s = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        return "\(s.rounded() == s ? String(Int64(s)) : String(s)) seconds"
    }

    /// One transaction on a pooled connection.
    private func transaction<T: Sendable>(_ body: @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await Self.mapErrors { try await client.withConnection { c in try await Self.inTransaction(c, body) } }
    }

    /// One statement on its own (autocommit).
    @discardableResult
    private func query(_ query: PostgresQuery) async throws -> [PostgresRow] {
        try await Self.mapErrors { try await client.withConnection { c in try await Self.rows(c, query) } }
    }

    private static func json(_ v: Value) -> String { StoreCoding.json(v) }
    private static func value(_ text: String) throws -> Value { try StoreCoding.value(text) }
    private static func time(_ d: Date) -> Double { StoreCoding.time(d) }
    private static func date(_ t: Double) -> Date { StoreCoding.date(t) }
    private static func date(_ t: Double?) -> Date? { StoreCoding.date(t) }

    // MARK: - Flows

    public func saveFlow(_ flow: StoredFlow) async throws {
        try await query("""
            INSERT INTO flows (hash, name, source, created) VALUES (\(flow.hash), \(flow.name), \(flow.source), \(Self.time(flow.created)))
            ON CONFLICT (hash) DO NOTHING
            """)
    }

    public func flow(hash: String) async throws -> StoredFlow? {
        try await query("SELECT hash, name, source, created FROM flows WHERE hash = \(hash)").first.map { row in
            let (hash, name, source, created) = try row.decode((String, String, String, Double).self)
            return StoredFlow(hash: hash, name: name, source: source, created: Self.date(created))
        }
    }

    // MARK: - Runs

    private static let runColumns = "id, flow, flow_hash, status, trigger, input, idempotency_key, created, started, ended, error"

    private static func runRecord(_ row: PostgresRow) throws -> RunRecord {
        let (id, flow, flowHash, status, trigger, input, key, created, started, ended, error) =
            try row.decode((String, String, String, String, String, String, String?, Double, Double?, Double?, String?).self)
        guard let s = RunStatus(rawValue: status) else { throw StoreError.corrupt("run \(id) has status '\(status)'") }
        return RunRecord(id: id, flow: flow, flowHash: flowHash, status: s, trigger: trigger, input: try value(input),
                         idempotencyKey: key, created: date(created), started: date(started), ended: date(ended), error: error)
    }

    public func createRun(_ run: RunRecord, idempotencyWindow: Double) async throws -> RunRecord {
        try await transaction { c in
            if let key = run.idempotencyKey {
                // Concurrent creates with one key queue here; the first inserts, the rest find its run.
                try await Self.rows(c, "SELECT pg_advisory_xact_lock(hashtext(\(run.flow)), hashtext(\(key)))")
                let since = Self.time(run.created) - idempotencyWindow
                if let row = try await Self.rows(c, """
                    SELECT \(unescaped: Self.runColumns) FROM runs
                    WHERE flow = \(run.flow) AND idempotency_key = \(key) AND created >= \(since)
                    ORDER BY created, id COLLATE "C" LIMIT 1
                    """).first {
                    return try Self.runRecord(row)
                }
            }
            try await Self.rows(c, """
                INSERT INTO runs (\(unescaped: Self.runColumns))
                VALUES (\(run.id), \(run.flow), \(run.flowHash), \(run.status.rawValue), \(run.trigger), \(Self.json(run.input)),
                        \(run.idempotencyKey), \(Self.time(run.created)), \(run.started.map(Self.time)), \(run.ended.map(Self.time)),
                        \(run.error))
                """)
            return run
        }
    }

    public func run(id: String) async throws -> RunRecord? {
        try await query("SELECT \(unescaped: Self.runColumns) FROM runs WHERE id = \(id)").first.map(Self.runRecord)
    }

    public func runs(_ filter: RunFilter) async throws -> [RunRecord] {
        let statuses = filter.statuses.map { $0.map(\.rawValue) }
        return try await query("""
            SELECT \(unescaped: Self.runColumns) FROM runs
            WHERE (\(filter.flow)::text IS NULL OR flow = \(filter.flow))
                AND (\(statuses)::text[] IS NULL OR status = ANY(\(statuses)))
            ORDER BY created DESC, id COLLATE "C" DESC LIMIT \(filter.limit)
            """).map(Self.runRecord)
    }

    // MARK: - Task attempts and checkpoints

    public func commit(_ batch: StoreBatch) async throws {
        if batch.isEmpty && batch.fence == nil { return }
        try await transaction { c in
            if let fence = batch.fence {
                // The row lock holds off a claim of the run until this batch is in.
                let generation = try await Self.rows(c, "SELECT generation FROM queue WHERE run_id = \(fence.name) FOR UPDATE")
                    .first?.decode(Int64.self)
                if generation != fence.generation {
                    throw StoreError.leaseLost("run \(fence.name) is no longer claimed by \(fence.holder) (generation \(fence.generation))")
                }
            }
            for run in batch.runs {
                let updated = try await Self.rows(c, """
                    UPDATE runs SET flow = \(run.flow), flow_hash = \(run.flowHash), status = \(run.status.rawValue),
                        trigger = \(run.trigger), input = \(Self.json(run.input)), idempotency_key = \(run.idempotencyKey),
                        created = \(Self.time(run.created)), started = \(run.started.map(Self.time)),
                        ended = \(run.ended.map(Self.time)), error = \(run.error)
                    WHERE id = \(run.id) RETURNING id
                    """)
                if updated.isEmpty { throw StoreError.notFound("run \(run.id)") }
            }
            for a in batch.attempts {
                try await Self.rows(c, """
                    INSERT INTO attempts (run_id, task, attempt, status, started, ended, error)
                    VALUES (\(a.runID), \(a.task), \(Int64(a.attempt)), \(a.status.rawValue), \(Self.time(a.started)),
                            \(a.ended.map(Self.time)), \(a.error))
                    ON CONFLICT (run_id, task, attempt) DO UPDATE SET
                        status = excluded.status, started = excluded.started, ended = excluded.ended, error = excluded.error
                    """)
            }
            for checkpoint in batch.checkpoints {
                try await Self.rows(c, """
                    INSERT INTO checkpoints (run_id, task, output) VALUES (\(checkpoint.runID), \(checkpoint.key), \(Self.json(checkpoint.output)))
                    ON CONFLICT (run_id, task) DO UPDATE SET output = excluded.output
                    """)
            }
            for event in batch.events {
                try await Self.rows(c, "INSERT INTO run_events (run_id, event) VALUES (\(event.runID), \(Self.json(event.event)))")
            }
            for m in batch.materializations {
                try await Self.rows(c, """
                    INSERT INTO materializations (\(unescaped: Self.materializationColumns))
                    VALUES (\(m.id), \(m.asset), \(m.partition), \(m.runID), \(m.status.rawValue), \(Self.time(m.started)),
                            \(m.ended.map(Self.time)), \(m.version), \(Self.json(m.summary)), \(m.error))
                    ON CONFLICT (id) DO UPDATE SET
                        asset = excluded.asset, partition = excluded.partition, run_id = excluded.run_id, status = excluded.status,
                        started = excluded.started, ended = excluded.ended, version = excluded.version,
                        summary = excluded.summary, error = excluded.error
                    """)
                // A replaced materialization's lineage is replaced with it.
                try await Self.rows(c, "DELETE FROM materialization_inputs WHERE materialization_id = \(m.id)")
                if !m.inputs.isEmpty {
                    // Every input in one statement, numbered in order from 0.
                    try await Self.rows(c, """
                        INSERT INTO materialization_inputs (materialization_id, position, asset, partition, input_id)
                        SELECT \(m.id), n - 1, asset, partition, input_id
                        FROM unnest(\(m.inputs.map(\.asset))::text[], \(m.inputs.map(\.partition))::text[],
                                    \(m.inputs.map(\.materialization))::text[]) WITH ORDINALITY AS i (asset, partition, input_id, n)
                        """)
                }
            }
            for e in batch.audit {
                // The id is the sequence's: rising in the order of insertion.
                try await Self.rows(c, """
                    INSERT INTO audit_log (time, actor, action, target, detail)
                    VALUES (\(Self.time(e.time)), \(e.actor), \(e.action), \(e.target), \(Self.json(e.detail)))
                    """)
            }
            if let fence = batch.fence, batch.finishesClaim {
                try await Self.rows(c, "DELETE FROM queue WHERE run_id = \(fence.name)")
            }
        }
    }

    public func attempts(runID: String) async throws -> [TaskAttempt] {
        try await query("""
            SELECT task, attempt, status, started, ended, error FROM attempts WHERE run_id = \(runID) ORDER BY started, seq
            """).map { row in
            let (task, attempt, status, started, ended, error) = try row.decode((String, Int, String, Double, Double?, String?).self)
            guard let s = TaskAttempt.Status(rawValue: status) else { throw StoreError.corrupt("attempt status '\(status)'") }
            return TaskAttempt(runID: runID, task: task, attempt: attempt, status: s, started: Self.date(started),
                               ended: Self.date(ended), error: error)
        }
    }

    public func checkpoints(runID: String) async throws -> [String: Value] {
        var out: [String: Value] = [:]
        for row in try await query("SELECT task, output FROM checkpoints WHERE run_id = \(runID)") {
            let (task, output) = try row.decode((String, String).self)
            out[task] = try Self.value(output)
        }
        return out
    }

    // MARK: - Run event log

    public func events(runID: String) async throws -> [Value] {
        try await query("SELECT event FROM run_events WHERE run_id = \(runID) ORDER BY seq").map { row in
            try Self.value(row.decode(String.self))
        }
    }

    // MARK: - Assets and audit

    private static let materializationColumns = "id, asset, partition, run_id, status, started, ended, version, summary, error"

    /// Ends a query that selects materializations into a CTE `m` (`materializationColumns`,
    /// limited): adds each one's inputs as three arrays in input order, and orders the rows
    /// newest first. One statement, so the rows and their inputs come from one snapshot.
    private static let withInputs = """
        SELECT m.id, m.asset, m.partition, m.run_id, m.status, m.started, m.ended, m.version, m.summary, m.error,
            i.assets, i.partitions, i.ids
        FROM m LEFT JOIN LATERAL (
            SELECT array_agg(asset ORDER BY position) AS assets, array_agg(partition ORDER BY position) AS partitions,
                array_agg(input_id ORDER BY position) AS ids
            FROM materialization_inputs WHERE materialization_id = m.id) AS i ON true
        ORDER BY m.started DESC, m.id COLLATE "C" DESC
        """

    private static func materialization(_ row: PostgresRow) throws -> Materialization {
        let (id, asset, partition, runID, status, started, ended, version, summary, error, assets, partitions, ids) =
            try row.decode((String, String, String, String, String, Double, Double?, String, String, String?,
                            [String]?, [String]?, [String]?).self)
        guard let s = Materialization.Status(rawValue: status) else {
            throw StoreError.corrupt("materialization \(id) has status '\(status)'")
        }
        let assetList = assets ?? [], partitionList = partitions ?? [], idList = ids ?? []
        guard assetList.count == partitionList.count, assetList.count == idList.count else {
            throw StoreError.corrupt("materialization \(id) has inputs with missing fields")
        }
        let inputs = assetList.indices.map { i in
            Materialization.Input(asset: assetList[i], partition: partitionList[i], materialization: idList[i])
        }
        return Materialization(id: id, asset: asset, partition: partition, runID: runID, status: s, started: date(started),
                               ended: date(ended), version: version, summary: try value(summary), error: error, inputs: inputs)
    }

    public func materializations(_ filter: MaterializationFilter) async throws -> [Materialization] {
        let statuses = filter.statuses.map { $0.map(\.rawValue) }
        // With latestOnly, only the newest matching row of each (asset, partition) is numbered
        // 1; the limit applies after that.
        let newest = filter.latestOnly
            ? #"row_number() OVER (PARTITION BY asset, partition ORDER BY started DESC, id COLLATE "C" DESC)"#
            : "1"
        return try await query("""
            WITH m AS (
                SELECT \(unescaped: Self.materializationColumns) FROM (
                    SELECT \(unescaped: Self.materializationColumns), \(unescaped: newest) AS newest FROM materializations
                    WHERE (\(filter.asset)::text IS NULL OR asset = \(filter.asset))
                        AND (\(filter.partitions)::text[] IS NULL OR partition = ANY(\(filter.partitions)))
                        AND (\(filter.runID)::text IS NULL OR run_id = \(filter.runID))
                        AND (\(statuses)::text[] IS NULL OR status = ANY(\(statuses)))
                ) AS matching
                WHERE newest = 1 ORDER BY started DESC, id COLLATE "C" DESC LIMIT \(filter.limit))
            \(unescaped: Self.withInputs)
            """).map(Self.materialization)
    }

    public func readers(of asset: String, partition: String?, limit: Int) async throws -> [Materialization] {
        try await query("""
            WITH m AS (
                SELECT \(unescaped: Self.materializationColumns) FROM materializations
                WHERE id IN (SELECT materialization_id FROM materialization_inputs
                             WHERE asset = \(asset) AND (\(partition)::text IS NULL OR partition = \(partition)))
                ORDER BY started DESC, id COLLATE "C" DESC LIMIT \(limit))
            \(unescaped: Self.withInputs)
            """).map(Self.materialization)
    }

    public func audit(_ filter: AuditFilter) async throws -> [AuditEntry] {
        // `left` compares characters exactly, where LIKE would read % and _ in the prefix as wildcards.
        try await query("""
            SELECT id, time, actor, action, target, detail FROM audit_log
            WHERE (\(filter.target)::text IS NULL OR target = \(filter.target))
                AND (\(filter.actionPrefix)::text IS NULL
                     OR left(action, char_length(\(filter.actionPrefix))) = \(filter.actionPrefix))
            ORDER BY id DESC LIMIT \(filter.limit)
            """).map { row in
            let (id, time, actor, action, target, detail) = try row.decode((Int64, Double, String, String, String, String).self)
            return AuditEntry(id: id, time: Self.date(time), actor: actor, action: action, target: target, detail: try Self.value(detail))
        }
    }

    // MARK: - Result cache

    public func cachedResult(key: String, now: Date) async throws -> Value? {
        guard let row = try await query("SELECT value, expires FROM results WHERE key = \(key)").first else { return nil }
        let (text, expires) = try row.decode((String, Double).self)
        if expires <= Self.time(now) {
            // Expired entries are deleted, not only skipped.
            try await query("DELETE FROM results WHERE key = \(key) AND expires <= \(Self.time(now))")
            return nil
        }
        return try Self.value(text)
    }

    public func saveResult(key: String, value: Value, expires: Date) async throws {
        try await query("""
            INSERT INTO results (key, value, expires) VALUES (\(key), \(Self.json(value)), \(Self.time(expires)))
            ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires = excluded.expires
            """)
    }

    public func purgeExpiredResults(now: Date) async throws -> Int {
        try await query("""
            WITH gone AS (DELETE FROM results WHERE expires <= \(Self.time(now)) RETURNING 1) SELECT count(*) FROM gone
            """).first!.decode(Int.self)
    }

    // MARK: - Key-value cache

    private static func entry(_ row: PostgresRow) throws -> KVEntry {
        let (key, value, revision, expires) = try row.decode((String, String, Int64, Double?).self)
        return KVEntry(key: key, value: try Self.value(value), revision: revision, expires: date(expires))
    }

    private static func live(_ c: PostgresConnection, _ bucket: KVBucket, _ key: String, _ now: Date) async throws -> KVEntry? {
        try await rows(c, """
            SELECT key, value, revision, expires FROM kv
            WHERE bucket = \(bucket.rawValue) AND key = \(key) AND (expires IS NULL OR expires > \(time(now)))
            """).first.map(entry)
    }

    /// One key-value write transaction. It takes the bucket's next revision first: the row lock
    /// that takes makes the bucket's writers wait for one another, so the check `body` makes and
    /// the write that follows it are atomic, and revisions commit in order (a watcher that saw
    /// revision n has seen every revision below it). A revision taken by a write that then did
    /// not happen is skipped. Watchers are told when `body` answers that it changed something.
    private func kvWrite<T: Sendable>(_ bucket: KVBucket,
                                      _ body: @Sendable (PostgresConnection, Int64) async throws -> (result: T, changed: Bool)) async throws -> T {
        try await transaction { c in
            let revision = try await Self.rows(c, """
                INSERT INTO kv_revisions (bucket, revision) VALUES (\(bucket.rawValue), 1)
                ON CONFLICT (bucket) DO UPDATE SET revision = kv_revisions.revision + 1
                RETURNING revision
                """).first!.decode(Int64.self)
            let (result, changed) = try await body(c, revision)
            if changed {
                try await Self.rows(c, "SELECT pg_notify(\(ChangeSignal.channel), \(bucket.rawValue))")
            }
            return result
        }
    }

    private static func store(_ c: PostgresConnection, _ bucket: KVBucket, _ key: String, _ value: Value, revision: Int64,
                              ttl: Double?, _ now: Date) async throws -> KVEntry {
        let expires = ttl.map { now.addingTimeInterval($0) }
        try await rows(c, """
            INSERT INTO kv (bucket, key, value, revision, expires)
            VALUES (\(bucket.rawValue), \(key), \(json(value)), \(revision), \(expires.map(time)))
            ON CONFLICT (bucket, key) DO UPDATE SET value = excluded.value, revision = excluded.revision, expires = excluded.expires
            """)
        return KVEntry(key: key, value: value, revision: revision, expires: expires)
    }

    public func get(_ bucket: KVBucket, _ key: String, now: Date) async throws -> KVEntry? {
        try await Self.mapErrors { try await client.withConnection { c in try await Self.live(c, bucket, key, now) } }
    }

    @discardableResult
    public func put(_ bucket: KVBucket, _ key: String, _ value: Value, ttl: Double?, now: Date) async throws -> KVEntry {
        try await kvWrite(bucket) { c, revision in
            let entry = try await Self.store(c, bucket, key, value, revision: revision, ttl: ttl, now)
            return (entry, true)
        }
    }

    public func create(_ bucket: KVBucket, _ key: String, _ value: Value, ttl: Double?, now: Date) async throws -> KVEntry? {
        try await kvWrite(bucket) { c, revision in
            if try await Self.live(c, bucket, key, now) != nil { return (nil, false) }
            let entry = try await Self.store(c, bucket, key, value, revision: revision, ttl: ttl, now)
            return (entry, true)
        }
    }

    public func compareAndSet(_ bucket: KVBucket, _ key: String, _ value: Value, revision expected: Int64, ttl: Double?,
                              now: Date) async throws -> KVEntry? {
        try await kvWrite(bucket) { c, revision in
            guard let current = try await Self.live(c, bucket, key, now), current.revision == expected else { return (nil, false) }
            let entry = try await Self.store(c, bucket, key, value, revision: revision, ttl: ttl, now)
            return (entry, true)
        }
    }

    @discardableResult
    public func delete(_ bucket: KVBucket, _ key: String, now: Date) async throws -> Bool {
        try await kvWrite(bucket) { c, _ in
            let wasLive = try await Self.live(c, bucket, key, now) != nil
            let deleted = try await Self.rows(c, "DELETE FROM kv WHERE bucket = \(bucket.rawValue) AND key = \(key) RETURNING 1")
            return (wasLive, !deleted.isEmpty)
        }
    }

    public func purgeExpiredEntries(now: Date) async throws -> Int {
        try await query("""
            WITH gone AS (DELETE FROM kv WHERE expires IS NOT NULL AND expires <= \(Self.time(now)) RETURNING 1) SELECT count(*) FROM gone
            """).first!.decode(Int.self)
    }

    public func list(_ bucket: KVBucket, prefix: String, now: Date) async throws -> [KVEntry] {
        // `left` compares characters exactly, where LIKE would read % and _ in the prefix as wildcards.
        try await query("""
            SELECT key, value, revision, expires FROM kv
            WHERE bucket = \(bucket.rawValue) AND left(key, char_length(\(prefix))) = \(prefix)
                AND (expires IS NULL OR expires > \(Self.time(now)))
            ORDER BY key COLLATE "C"
            """).map(Self.entry)
    }

    public func changes(_ bucket: KVBucket, prefix: String, afterRevision: Int64, now: Date) async throws -> [KVEntry] {
        try await query("""
            SELECT key, value, revision, expires FROM kv
            WHERE bucket = \(bucket.rawValue) AND revision > \(afterRevision) AND left(key, char_length(\(prefix))) = \(prefix)
                AND (expires IS NULL OR expires > \(Self.time(now)))
            ORDER BY revision
            """).map(Self.entry)
    }

    /// Polls `changes` every `interval` seconds, and at once when a commit to the bucket
    /// NOTIFYs this store's listening connection (a lost notification only delays a change
    /// until the next poll).
    public func watch(_ bucket: KVBucket, prefix: String, afterRevision: Int64, interval: Double,
                      now: @escaping @Sendable () -> Date) -> AsyncThrowingStream<KVEntry, any Error> {
        pollChanges(bucket, prefix: prefix, afterRevision: afterRevision, interval: interval, now: now,
                    wait: signal.waiter(for: bucket.rawValue))
    }

    // MARK: - Leases

    private static let released = Date.distantPast.timeIntervalSince1970

    public func acquireLease(_ name: String, holder: String, ttl: Double, now: Date) async throws -> Lease? {
        try await transaction { c in
            // A row for a lease never held, shaped like a released one, so that two first
            // acquires lock the same row instead of racing to insert it.
            try await Self.rows(c, """
                INSERT INTO leases (name, holder, generation, expires) VALUES (\(name), '', 0, \(Self.released))
                ON CONFLICT (name) DO NOTHING
                """)
            let (currentHolder, currentGeneration, currentExpires) = try await Self.rows(c, """
                SELECT holder, generation, expires FROM leases WHERE name = \(name) FOR UPDATE
                """).first!.decode((String, Int64, Double).self)
            var generation = currentGeneration + 1
            if currentExpires > Self.time(now) {
                guard currentHolder == holder else { return nil }
                generation = currentGeneration
            }
            let expires = now.addingTimeInterval(ttl)
            try await Self.rows(c, """
                UPDATE leases SET holder = \(holder), generation = \(generation), expires = \(Self.time(expires)) WHERE name = \(name)
                """)
            return Lease(name: name, holder: holder, generation: generation, expires: expires)
        }
    }

    public func renewLease(_ lease: Lease, ttl: Double, now: Date) async throws -> Lease? {
        let expires = now.addingTimeInterval(ttl)
        let renewed = try await query("""
            UPDATE leases SET expires = \(Self.time(expires))
            WHERE name = \(lease.name) AND holder = \(lease.holder) AND generation = \(lease.generation) AND expires > \(Self.time(now))
            RETURNING 1
            """)
        return renewed.isEmpty ? nil : Lease(name: lease.name, holder: lease.holder, generation: lease.generation, expires: expires)
    }

    public func releaseLease(_ lease: Lease) async throws {
        // The generation stays, so the next holder's is higher.
        try await query("""
            UPDATE leases SET holder = '', expires = \(Self.released)
            WHERE name = \(lease.name) AND holder = \(lease.holder) AND generation = \(lease.generation)
            """)
    }

    public func lease(_ name: String, now: Date) async throws -> Lease? {
        try await query("SELECT holder, generation, expires FROM leases WHERE name = \(name) AND expires > \(Self.time(now))")
            .first.map { row in
                let (holder, generation, expires) = try row.decode((String, Int64, Double).self)
                return Lease(name: name, holder: holder, generation: generation, expires: Self.date(expires))
            }
    }

    // MARK: - Run queue

    public func enqueue(runID: String, now: Date) async throws {
        try await query("INSERT INTO queue (run_id, queued) VALUES (\(runID), \(Self.time(now))) ON CONFLICT (run_id) DO NOTHING")
    }

    public func claimRun(worker: String, ttl: Double, now: Date) async throws -> Lease? {
        try await transaction { c in
            // SKIP LOCKED: a run another worker is claiming right now is passed over, not waited for.
            guard let row = try await Self.rows(c, """
                SELECT run_id, generation FROM queue WHERE worker IS NULL OR expires <= \(Self.time(now))
                ORDER BY queued, seq LIMIT 1 FOR UPDATE SKIP LOCKED
                """).first else { return nil }
            let (runID, generation) = try row.decode((String, Int64).self)
            return try await Self.claim(c, runID: runID, generation: generation + 1, worker: worker, ttl: ttl, now: now)
        }
    }

    public func claim(runID: String, worker: String, ttl: Double, now: Date) async throws -> Lease? {
        try await transaction { c in
            // Without SKIP LOCKED: a concurrent claim is waited for, and the row checked again after it.
            guard let generation = try await Self.rows(c, """
                SELECT generation FROM queue WHERE run_id = \(runID) AND (worker IS NULL OR expires <= \(Self.time(now))) FOR UPDATE
                """).first?.decode(Int64.self) else { return nil }
            return try await Self.claim(c, runID: runID, generation: generation + 1, worker: worker, ttl: ttl, now: now)
        }
    }

    private static func claim(_ c: PostgresConnection, runID: String, generation: Int64, worker: String, ttl: Double,
                              now: Date) async throws -> Lease {
        let expires = now.addingTimeInterval(ttl)
        try await rows(c, """
            UPDATE queue SET worker = \(worker), generation = \(generation), expires = \(time(expires)) WHERE run_id = \(runID)
            """)
        return Lease(name: runID, holder: worker, generation: generation, expires: expires)
    }

    /// An expired claim nobody took is still the holder's; one that was taken has a new generation.
    public func heartbeat(_ claim: Lease, ttl: Double, now: Date) async throws -> Lease? {
        let expires = now.addingTimeInterval(ttl)
        let extended = try await query("""
            UPDATE queue SET expires = \(Self.time(expires)) WHERE run_id = \(claim.name) AND generation = \(claim.generation)
            RETURNING 1
            """)
        return extended.isEmpty ? nil : Lease(name: claim.name, holder: claim.holder, generation: claim.generation, expires: expires)
    }

    @discardableResult
    public func finish(_ claim: Lease) async throws -> Bool {
        let removed = try await query("DELETE FROM queue WHERE run_id = \(claim.name) AND generation = \(claim.generation) RETURNING 1")
        return !removed.isEmpty
    }
}

/// Wakes key-value watchers when a commit NOTIFYs a change to their bucket. One connection per
/// store LISTENs, started by the first watch; it reconnects after a failure, and every watcher
/// polls again each time it (re)connects, since notifications sent meanwhile are lost.
final class ChangeSignal: Sendable {
    static let channel = "sluice_kv"

    private struct Waiter {
        let bucket: String
        /// The bucket's mark when the watcher last polled: it wakes once the mark is past it.
        let seen: Int
        let continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var notifications: [String: Int] = [:]
        var connects = 0
        var waiters: [Int: Waiter] = [:]
        var nextWaiter = 0
        var listener: Task<Void, Never>?
        var closed = false

        /// Goes up whenever a watcher of `bucket` should poll again.
        func mark(_ bucket: String) -> Int { notifications[bucket, default: 0] + connects }
    }

    /// The mark a watcher last acted on; a box, because the watcher's wait closure escapes.
    private final class Seen: Sendable {
        let mark: Mutex<Int>
        init(_ mark: Int) { self.mark = Mutex(mark) }
    }

    private let state = Mutex(State())
    private let connect: @Sendable () async throws -> PostgresConnection

    init(connect: @escaping @Sendable () async throws -> PostgresConnection) {
        self.connect = connect
    }

    /// A `wait` for `pollChanges`: it returns after the interval, or as soon as the bucket has
    /// been notified since the previous return (so also for a change made during the poll).
    func waiter(for bucket: String) -> @Sendable (Double) async throws -> Void {
        startListening()
        let seen = Seen(state.withLock { $0.mark(bucket) })
        return { seconds in
            try await self.wait(for: bucket, beyond: seen.mark.withLock { $0 }, seconds: seconds)
            let mark = self.state.withLock { $0.mark(bucket) }
            seen.mark.withLock { $0 = mark }
        }
    }

    /// Stops listening, releases every waiter, and waits until the connection is closed.
    func close() async {
        await stop()?.value
    }

    /// Stops listening and releases every waiter; answers the listener to wait for.
    @discardableResult
    func stop() -> Task<Void, Never>? {
        let (listener, waiters) = state.withLock { s in
            s.closed = true
            defer { s.waiters = [:] }
            return (s.listener, Array(s.waiters.values))
        }
        listener?.cancel()
        for w in waiters { w.continuation.resume() }
        return listener
    }

    private func startListening() {
        state.withLock { s in
            guard s.listener == nil, !s.closed else { return }
            s.listener = Task { await self.listen() }
        }
    }

    private func listen() async {
        while !Task.isCancelled {
            if let connection = try? await connect() {
                try? await connection.listen(on: Self.channel) { notifications in
                    wake { $0.connects += 1 }
                    for try await notification in notifications {
                        wake { $0.notifications[notification.payload, default: 0] += 1 }
                    }
                }
                try? await connection.close()
            }
            // Watchers keep polling meanwhile; reconnecting at once would spin on a dead server.
            try? await Task.sleep(for: .seconds(1))
        }
    }

    /// Applies `change` and resumes the waiters whose bucket's mark it moved past what they saw.
    private func wake(_ change: (inout State) -> Void) {
        let ready = state.withLock { s in
            change(&s)
            let ready = s.waiters.filter { _, w in s.mark(w.bucket) > w.seen }
            for id in ready.keys { s.waiters[id] = nil }
            return ready.values.map(\.continuation)
        }
        for continuation in ready { continuation.resume() }
    }

    private func wait(for bucket: String, beyond seen: Int, seconds: Double) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await Task.sleep(for: .seconds(seconds)) }
            group.addTask { await self.notified(bucket, beyond: seen) }
            _ = try await group.next()
            group.cancelAll()
        }
    }

    /// Returns once the bucket's mark is above `seen`, the signal is stopped, or the task is cancelled.
    private func notified(_ bucket: String, beyond seen: Int) async {
        let id = state.withLock { s in
            s.nextWaiter += 1
            return s.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = self.state.withLock { s in
                    if s.closed || Task.isCancelled || s.mark(bucket) > seen { return true }
                    s.waiters[id] = Waiter(bucket: bucket, seen: seen, continuation: continuation)
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            self.state.withLock { $0.waiters.removeValue(forKey: id) }?.continuation.resume()
        }
    }
}
