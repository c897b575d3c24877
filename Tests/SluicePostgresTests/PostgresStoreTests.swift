import Foundation
import PostgresNIO
import SluiceCore
import SluiceEngine
import SluicePostgres
import SluiceTesting
import Testing

/// The throwaway server `scripts/with-postgres` starts, as its SLUICE_PG_* variables describe it.
struct TestServer {
    let host: String
    let port: Int
    let user: String
    let password: String
    let database: String
    let url: String

    static let current: TestServer? = {
        let env = ProcessInfo.processInfo.environment
        guard let host = env["SLUICE_PG_HOST"], let port = env["SLUICE_PG_PORT"].flatMap({ Int($0) }),
              let user = env["SLUICE_PG_USER"], let password = env["SLUICE_PG_PASSWORD"],
              let database = env["SLUICE_PG_DATABASE"], let url = env["SLUICE_PG_URL"] else { return nil }
        return TestServer(host: host, port: port, user: user, password: password, database: database, url: url)
    }()

    /// The server, or nil once the test has said why it does nothing: without a server the
    /// tests are skipped, unless SLUICE_REQUIRE_POSTGRES=1 (CI) makes that a failure.
    static func required() -> TestServer? {
        if let current { return current }
        if ProcessInfo.processInfo.environment["SLUICE_REQUIRE_POSTGRES"] == "1" {
            Issue.record("SLUICE_REQUIRE_POSTGRES=1 but SLUICE_PG_* are not set: run the tests under scripts/with-postgres")
        } else {
            print("skipped: no PostgreSQL (run under scripts/with-postgres)")
        }
        return nil
    }

    /// A schema no other test uses, so each test starts from an empty store.
    static func freshSchema() -> String {
        "sluice_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
    }

    func configuration(schema: String, connectTimeout: Double = 10) -> PostgresStore.Configuration {
        PostgresStore.Configuration(host: host, port: port, user: user, password: password, database: database,
                                    schema: schema, connectTimeout: connectTimeout)
    }

    /// Runs `body` with a store on a fresh schema (opened through the URL), then closes the
    /// store and drops the schema, whether `body` failed or not.
    func withStore(_ body: (PostgresStore) async throws -> Void) async throws {
        let schema = Self.freshSchema()
        try await withSchema(schema) {
            let store = try await PostgresStore.connect(url: url, schema: schema)
            try await closing(store) { try await body(store) }
        }
    }

    /// Runs `body`, then drops `schema` and everything in it.
    func withSchema(_ schema: String, _ body: () async throws -> Void) async throws {
        var failure: (any Error)?
        do { try await body() } catch { failure = error }
        try await execute("DROP SCHEMA IF EXISTS \"\(schema)\" CASCADE")
        if let failure { throw failure }
    }

    /// SQL the store has no call for (dropping schemas, planting a newer version), on a
    /// connection of its own.
    func execute(_ sql: String) async throws {
        _ = try await query(PostgresQuery(unsafeSQL: sql))
    }

    /// The rows of `query`, run on a connection of its own, with `schema` as its search path
    /// when given.
    func query(_ query: PostgresQuery, schema: String? = nil) async throws -> [PostgresRow] {
        let logger = Logger(label: "sluice.postgres.tests")
        let connection = try await PostgresConnection.connect(
            configuration: .init(host: host, port: port, username: user, password: password, database: database, tls: .disable),
            id: 0, logger: logger)
        var result: Result<[PostgresRow], any Error>
        do {
            if let schema { _ = try await connection.query(PostgresQuery(unsafeSQL: "SET search_path TO \"\(schema)\""), logger: logger).collect() }
            result = .success(try await connection.query(query, logger: logger).collect())
        } catch {
            result = .failure(error)
        }
        try await connection.close()
        return try result.get()
    }
}

/// Runs `body`, then closes `store` whether `body` failed or not, so no pool outlives a test.
func closing(_ store: PostgresStore, _ body: () async throws -> Void) async throws {
    var failure: (any Error)?
    do { try await body() } catch { failure = error }
    await store.close()
    if let failure { throw failure }
}

/// The message of a `StoreError.unavailable`, or nil for any other error.
func unavailableMessage(_ error: any Error) -> String? {
    guard case StoreError.unavailable(let message) = error else { return nil }
    return message
}

@Suite("Store conformance: PostgreSQL", .timeLimit(.minutes(3)))
struct PostgresStoreTests {
    @Test(arguments: StoreConformance.cases)
    func conformance(_ c: StoreConformance.Case) async throws {
        guard let server = TestServer.required() else { return }
        try await server.withStore { try await c.run($0) }
    }

    @Test("Data written by one store is read by the next on the same schema")
    func reopen() async throws {
        guard let server = TestServer.required() else { return }
        let schema = TestServer.freshSchema()
        try await server.withSchema(schema) {
            let first = try await PostgresStore.connect(server.configuration(schema: schema))
            try await closing(first) {
                _ = try await first.createRun(RunRecord(id: "r1", flow: "f", flowHash: "h", trigger: "cli",
                                                        input: ["b": 1, "a": [true, "x"]], created: Date(timeIntervalSince1970: 1)),
                                              idempotencyWindow: 0)
                try await first.saveCheckpoint(runID: "r1", key: "a", output: ["z": 1, "y": 2])
                try await first.put(.system, "k", "v", ttl: nil, now: Date(timeIntervalSince1970: 1))
            }
            let again = try await PostgresStore.connect(server.configuration(schema: schema))
            try await closing(again) {
                let run = try await again.run(id: "r1")
                #expect(run?.flow == "f")
                #expect(run?.input.jsonString() == #"{"b":1,"a":[true,"x"]}"#, "key order survives the round trip")
                #expect(try await again.checkpoints(runID: "r1")["a"]?.jsonString() == #"{"z":1,"y":2}"#)
                #expect(try await again.get(.system, "k", now: Date(timeIntervalSince1970: 2))?.value == "v")
                #expect(try await again.schemaVersion() == 2)
            }
        }
    }

    @Test("Processes connecting to a new schema at once migrate it exactly once")
    func concurrentMigration() async throws {
        guard let server = TestServer.required() else { return }
        let schema = TestServer.freshSchema()
        try await server.withSchema(schema) {
            let versions = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<6 {
                    group.addTask {
                        let store = try await PostgresStore.connect(server.configuration(schema: schema))
                        var version = 0
                        try await closing(store) { version = try await store.schemaVersion() }
                        return version
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(versions == Array(repeating: 2, count: 6))
        }
    }

    @Test("A schema of version 1 gains the asset and audit tables, keeping its runs")
    func upgradeFromVersion1() async throws {
        guard let server = TestServer.required() else { return }
        let schema = TestServer.freshSchema()
        try await server.withSchema(schema) {
            let t0 = Date(timeIntervalSince1970: 1_800_000_000)
            let first = try await PostgresStore.connect(server.configuration(schema: schema))
            try await closing(first) {
                _ = try await first.createRun(RunRecord(id: "r1", flow: "f", flowHash: "h", trigger: "cli", created: t0),
                                              idempotencyWindow: 0)
            }
            // Back to what a Sluice of schema version 1 left.
            try await server.execute("""
                DROP TABLE "\(schema)".materializations, "\(schema)".materialization_inputs, "\(schema)".audit_log
                """)
            try await server.execute("DELETE FROM \"\(schema)\".sluice_schema WHERE version > 1")
            let again = try await PostgresStore.connect(server.configuration(schema: schema))
            try await closing(again) {
                #expect(try await again.schemaVersion() == 2)
                #expect(try await again.run(id: "r1")?.flow == "f")
                try await again.appendAudit(AuditEntry(time: t0, actor: "alice", action: "run.started", target: "r1"))
                #expect(try await again.audit(AuditFilter()).map(\.id) == [1])
            }
        }
    }

    @Test("A schema written by a newer Sluice is refused with both versions")
    func newerSchema() async throws {
        guard let server = TestServer.required() else { return }
        let schema = TestServer.freshSchema()
        try await server.withSchema(schema) {
            try await PostgresStore.connect(server.configuration(schema: schema)).close()
            try await server.execute("INSERT INTO \"\(schema)\".sluice_schema (version) VALUES (99)")
            await #expect {
                try await PostgresStore.connect(server.configuration(schema: schema)).close()
            } throws: { error in
                guard let message = unavailableMessage(error) else { return false }
                return message.contains("newer Sluice") && message.contains("schema version 99") && message.contains(schema)
            }
        }
    }

    @Test("A watcher is woken by NOTIFY long before its poll interval")
    func watchIsNotified() async throws {
        guard let server = TestServer.required() else { return }
        try await server.withStore { store in
            let t0 = Date(timeIntervalSince1970: 1_800_000_000)
            // An hour between polls: only a notification can deliver these in time.
            let stream = store.watch(.runtime, prefix: "n.", afterRevision: 0, interval: 3600, now: { t0 })
            let seen = Task {
                var keys: [String] = []
                var entries = stream.makeAsyncIterator()
                do {
                    try await store.put(.runtime, "n.one", 1, ttl: nil, now: t0)
                    if let first = try await entries.next() { keys.append(first.key) }
                    try await store.put(.runtime, "x.other", 2, ttl: nil, now: t0)
                    try await store.put(.runtime, "n.two", 3, ttl: nil, now: t0)
                    if let second = try await entries.next() { keys.append(second.key) }
                } catch is CancellationError {
                    // Stopped by the guard below: the expectation shows what arrived in time.
                }
                return keys
            }
            let guardTask = Task {
                try await Task.sleep(for: .seconds(20))
                seen.cancel()
            }
            let keys = try await seen.value
            guardTask.cancel()
            #expect(keys == ["n.one", "n.two"])
        }
    }

    @Test("Concurrent creates with one idempotency key make one run; concurrent first acquires of a lease have one winner")
    func racesOnNewRows() async throws {
        guard let server = TestServer.required() else { return }
        try await server.withStore { store in
            let t0 = Date(timeIntervalSince1970: 1_800_000_000)
            let ids = try await withThrowingTaskGroup(of: String.self) { group in
                for i in 0..<10 {
                    group.addTask {
                        let run = RunRecord(id: "r\(i)", flow: "f", flowHash: "h", trigger: "webhook", idempotencyKey: "k", created: t0)
                        return try await store.createRun(run, idempotencyWindow: 60).id
                    }
                }
                return try await group.reduce(into: Set<String>()) { $0.insert($1) }
            }
            #expect(ids.count == 1, "every create answers the same run")
            #expect(try await store.runs(RunFilter(flow: "f")).count == 1)
            let holders = try await withThrowingTaskGroup(of: Lease?.self) { group in
                for i in 0..<10 { group.addTask { try await store.acquireLease("fresh", holder: "h\(i)", ttl: 10, now: t0) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(holders.compactMap { $0 }.map(\.generation) == [1], "one winner, with the first generation")
        }
    }

    @Test("Prefixes match character for character: no LIKE wildcards, any script")
    func literalPrefixes() async throws {
        guard let server = TestServer.required() else { return }
        try await server.withStore { store in
            let t0 = Date(timeIntervalSince1970: 1_800_000_000)
            for key in ["a_1", "ab1", "a%2", "a%%", "a\\b", "ä1", "äb", "z"] {
                try await store.put(.runtime, key, .string(key), ttl: nil, now: t0)
            }
            #expect(try await store.list(.runtime, prefix: "a_", now: t0).map(\.key) == ["a_1"])
            #expect(try await store.list(.runtime, prefix: "a%", now: t0).map(\.key) == ["a%%", "a%2"])
            #expect(try await store.list(.runtime, prefix: "a\\", now: t0).map(\.key) == ["a\\b"])
            #expect(try await store.list(.runtime, prefix: "ä", now: t0).map(\.key) == ["ä1", "äb"])
            #expect(try await store.list(.runtime, prefix: "", now: t0).map(\.key) == ["a%%", "a%2", "a\\b", "a_1", "ab1", "z", "ä1", "äb"],
                    "sorted by code point, as the other stores do")
            #expect(try await store.changes(.runtime, prefix: "a_", afterRevision: 0, now: t0).map(\.key) == ["a_1"])
        }
    }

    @Test("A wrong password fails at once with the server's reason and without the password")
    func wrongPassword() async throws {
        guard let server = TestServer.required() else { return }
        var config = server.configuration(schema: "public", connectTimeout: 5)
        config.password = "not-the-password-\(UUID().uuidString)"
        let wrong = config.password!
        await #expect {
            try await PostgresStore.connect(config).close()
        } throws: { error in
            guard let message = unavailableMessage(error) else { return false }
            return message.contains("password authentication failed") && message.contains("\(server.host):\(server.port)")
                && !message.contains(wrong) && !message.contains(server.password) && !"\(error)".contains(wrong)
        }
    }

    @Test("An unknown database fails with the server's reason")
    func unknownDatabase() async throws {
        guard let server = TestServer.required() else { return }
        var config = server.configuration(schema: "public", connectTimeout: 5)
        config.database = "sluice_no_such_database"
        await #expect {
            try await PostgresStore.connect(config).close()
        } throws: { error in
            guard let message = unavailableMessage(error) else { return false }
            return message.contains("does not exist") && message.contains("sluice_no_such_database")
        }
    }

    @Test("A port nothing listens on fails as unavailable")
    func closedPort() async throws {
        // Needs no server: port 1 on the loopback refuses the connection.
        let config = PostgresStore.Configuration(host: "127.0.0.1", port: 1, user: "sluice", password: "secret",
                                                 database: "sluice", connectTimeout: 5)
        await #expect {
            try await PostgresStore.connect(config).close()
        } throws: { error in
            guard let message = unavailableMessage(error) else { return false }
            return message.contains("127.0.0.1:1/sluice") && !message.contains("secret")
        }
    }

    @Test("A schema name that is not a plain identifier is refused before connecting",
          arguments: ["", "Public", "1runs", "a-b", "x; DROP TABLE runs", "s\"q", String(repeating: "a", count: 64)])
    func invalidSchema(_ schema: String) async throws {
        let config = PostgresStore.Configuration(host: "127.0.0.1", port: 1, user: "sluice", password: nil, database: "sluice",
                                                 schema: schema, connectTimeout: 5)
        await #expect {
            try await PostgresStore.connect(config).close()
        } throws: { error in
            unavailableMessage(error)?.contains("not a usable PostgreSQL schema name") ?? false
        }
    }

    @Test("URLs: both schemes, percent-decoded credentials, default port and database")
    func urls() throws {
        let full = try PostgresStore.Configuration(url: "postgresql://us%40er:p%3Ass%2Fw%40rd@db.example:6543/orders?sslmode=disable",
                                                   schema: "flows")
        #expect(full.host == "db.example")
        #expect(full.port == 6543)
        #expect(full.user == "us@er")
        #expect(full.password == "p:ss/w@rd")
        #expect(full.database == "orders")
        #expect(full.schema == "flows")
        #expect(!full.description.contains("p:ss"))
        let short = try PostgresStore.Configuration(url: "postgres://sluice@localhost")
        #expect(short.port == 5432)
        #expect(short.database == "sluice", "the database defaults to the user's name")
        #expect(short.password == nil)
        for bad in ["mysql://u:p@h/d", "postgres:///d", "postgres://h/d", "postgres://u:p@h/d?sslmode=require",
                    "postgres://u:p@h/d?application_name=x"] {
            #expect(throws: StoreError.self, "\(bad)") { try PostgresStore.Configuration(url: bad) }
        }
    }
}
