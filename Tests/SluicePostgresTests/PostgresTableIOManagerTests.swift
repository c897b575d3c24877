import Foundation
import PostgresNIO
import SluiceCore
import SluiceEngine
import SluicePostgres
import SluiceTesting
import Testing

@Suite("Table I/O: PostgreSQL", .timeLimit(.minutes(3)))
struct PostgresTableIOManagerTests {
    /// The conformance cases' view of `schema`, inspected on connections of their own.
    static func backend(_ server: TestServer, schema: String, tables: PostgresTables) -> TableIOConformance.Backend {
        TableIOConformance.Backend(
            manager: { try tables.manager(table: $0) },
            columns: { table in try await columns(server, schema: schema, table: table).map(\.name) },
            count: { table, partition in
                try await server.query("SELECT count(*)::bigint FROM \(unescaped: "\"\(schema)\".\"\(table)\"") WHERE partition = \(partition)")
                    .first?.decode(Int.self) ?? 0
            },
            execute: { sql in
                // Before the first write the tables have not created their schema yet.
                try await server.execute("CREATE SCHEMA IF NOT EXISTS \"\(schema)\"")
                _ = try await server.query(PostgresQuery(unsafeSQL: sql), schema: schema)
            })
    }

    static func columns(_ server: TestServer, schema: String, table: String) async throws -> [(name: String, type: String)] {
        try await server.query("""
            SELECT column_name::text, data_type::text FROM information_schema.columns
            WHERE table_schema = \(schema) AND table_name = \(table) ORDER BY ordinal_position
            """).map { try $0.decode((String, String).self) }.map { (name: $0.0, type: $0.1) }
    }

    /// Runs `body` with tables of their own on a fresh schema (named by the URL's `?schema=`,
    /// which they create), then closes them and drops the schema.
    static func withTables(_ server: TestServer, _ body: (String, PostgresTables) async throws -> Void) async throws {
        let schema = TestServer.freshSchema()
        try await server.withSchema(schema) {
            let tables = try PostgresTables(url: server.url + "?schema=" + schema)
            var failure: (any Error)?
            do { try await body(schema, tables) } catch { failure = error }
            await tables.close()
            if let failure { throw failure }
        }
    }

    @Test(arguments: TableIOConformance.cases)
    func conformance(_ c: TableIOConformance.Case) async throws {
        guard let server = TestServer.required() else { return }
        try await Self.withTables(server) { schema, tables in
            try await c.run(Self.backend(server, schema: schema, tables: tables))
        }
    }

    @Test("Without a url the tables share the store's pool and schema, and the store's own tables are refused")
    func storeSchema() async throws {
        guard let server = TestServer.required() else { return }
        let schema = TestServer.freshSchema()
        try await server.withSchema(schema) {
            let store = try await PostgresStore.connect(url: server.url, schema: schema)
            try await closing(store) {
                let tables = PostgresTables(store: store)
                let value: Value = [["day": "2025-01-15", "total": 42]]
                let summary = try await tables.manager(table: "cleaned").write(value, asset: "cleaned", partition: "2025-01-15")
                #expect(summary["database"]?.stringValue?.hasSuffix("?schema=\(schema)") == true, "\(summary)")
                #expect(summary["database"]?.stringValue?.contains(server.password) == false)
                #expect(try await tables.manager(table: "cleaned").read(asset: "cleaned", partition: "2025-01-15") == value)
                #expect(try await Self.columns(server, schema: schema, table: "cleaned").map(\.name) == ["partition", "_row", "_extra", "day", "total"])
                await #expect(throws: AssetError.self) {
                    _ = try await tables.manager(table: "runs").write(value, asset: "x", partition: "p")
                }
                #expect(try await store.runs(RunFilter()).isEmpty, "the store still works")
                await tables.close()
                #expect(try await tables.manager(table: "cleaned").read(asset: "cleaned", partition: "2025-01-15") == value,
                        "closing the tables leaves the store's pool open")
            }
        }
    }

    @Test("Columns get PostgreSQL types: bigint, double precision, text, boolean, bytea, json")
    func columnTypes() async throws {
        guard let server = TestServer.required() else { return }
        try await Self.withTables(server) { schema, tables in
            let value: Value = [["i": 1, "r": 1.5, "t": "x", "b": true, "y": .bytes([1, 0, 2]), "j": ["k": [1.0]], "m": 1.0], ["m": "one"]]
            _ = try await tables.manager(table: "Typed").write(value, asset: "typed", partition: "p")
            let types = try await Self.columns(server, schema: schema, table: "Typed").map { "\($0.name) \($0.type)" }
            #expect(types == ["partition text", "_row bigint", "_extra json", "i bigint", "r double precision", "t text", "b boolean",
                              "y bytea", "j json", "m json"])
            let row = try await server.query("SELECT j -> 'k' ->> 0, m::text, encode(y, 'hex') FROM \"\(unescaped: schema)\".\"Typed\" WHERE _row = 0")
            let stored = try row.first.map { try $0.decode((String, String, String).self) }
            #expect(stored.map { [$0.0, $0.1, $0.2] } == ["1.0", "1.0", "010002"])
            #expect(try await tables.manager(table: "Typed").read(asset: "typed", partition: "p") == value)
        }
    }

    @Test("Processes writing one table at once each add the columns they need and keep their rows")
    func concurrentWriters() async throws {
        guard let server = TestServer.required() else { return }
        try await Self.withTables(server) { schema, tables in
            let other = try PostgresTables(url: server.url + "?schema=" + schema)
            func value(_ i: Int) -> Value { [["n": .int(Int64(i)), "f\(i % 5)": .string("v\(i)")], ["n": .int(Int64(-i))]] }
            do {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for i in 0..<20 {
                        let m = try (i % 2 == 0 ? tables : other).manager(table: "shared")
                        group.addTask { _ = try await m.write(value(i), asset: "shared", partition: "p\(i)") }
                    }
                    try await group.waitForAll()
                }
                let m = try tables.manager(table: "shared")
                for i in 0..<20 { #expect(try await m.read(asset: "shared", partition: "p\(i)") == value(i)) }
                #expect(try await Self.columns(server, schema: schema, table: "shared").count == 3 + 1 + 5)
            } catch {
                await other.close()
                throw error
            }
            await other.close()
        }
    }

    @Test("A database that refuses the login fails the write with the server's reason, never the password")
    func wrongPassword() async throws {
        guard let server = TestServer.required() else { return }
        let url = "postgres://\(server.user):not-\(server.password)@\(server.host):\(server.port)/\(server.database)"
        let tables = try PostgresTables(url: url, connectTimeout: 5)
        do {
            _ = try await tables.manager(table: "t").write([["a": 1]], asset: "a", partition: "p")
            Issue.record("the write should fail")
        } catch let error as AssetError {
            #expect(error.description.contains("password authentication failed"), "\(error)")
            #expect(!error.description.contains(server.password), "\(error)")
        }
        await tables.close()
        await #expect(throws: AssetError.self) { _ = try await tables.manager(table: "t").read(asset: "a", partition: "p") }
    }

    @Test("A url that is not a PostgreSQL URL, and a table name PostgreSQL would cut short, are refused at once")
    func refusedAtOnce() throws {
        #expect(throws: StoreError.self) { _ = try PostgresTables(url: "postgres://") }
        #expect(throws: StoreError.self) { _ = try PostgresTables(url: "postgres://u@h/db?schema=Not-Plain") }
        let tables = try PostgresTables(url: "postgres://u@h/db")
        #expect(throws: AssetError.self) { _ = try tables.manager(table: String(repeating: "t", count: 64)) }
        #expect(tables.location == "postgres://h:5432/db?schema=public")
    }
}
