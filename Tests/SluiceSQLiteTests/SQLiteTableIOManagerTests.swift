import Foundation
import GRDB
import SluiceCore
import SluiceEngine
import SluiceSQLite
import SluiceTesting
import Testing

@Suite("Table I/O: SQLite")
struct SQLiteTableIOManagerTests {
    /// The conformance cases' view of the file at `path`, inspected on a connection of its own.
    static func backend(_ path: String, _ tables: SQLiteTables) throws -> TableIOConformance.Backend {
        let inspector = try DatabaseQueue(path: path)
        return TableIOConformance.Backend(
            manager: { try tables.manager(table: $0) },
            columns: { table in try await inspector.read { db in try String.fetchAll(db, sql: "SELECT name FROM pragma_table_info(?)", arguments: [table]) } },
            count: { table, partition in
                try await inspector.read { db in
                    try Int.fetchOne(db, sql: "SELECT count(*) FROM \"\(table)\" WHERE partition = ?", arguments: [partition]) ?? 0
                }
            },
            execute: { sql in try await inspector.write { db in try db.execute(sql: sql) } })
    }

    @Test(arguments: TableIOConformance.cases)
    func conformance(_ c: TableIOConformance.Case) async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/data/tables.db"
        let tables = try SQLiteTables(path: path)
        defer { tables.close() }
        try await c.run(try Self.backend(path, tables))
    }

    @Test("Without a url the tables share the store's file, and the store's own tables are refused")
    func storeFile() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteStore(path: dir + "/.sluice/sluice.db")
        let tables = SQLiteTables(store: store)
        let value: Value = [["day": "2025-01-15", "total": 42]]
        let summary = try await tables.manager(table: "cleaned").write(value, asset: "cleaned", partition: "2025-01-15")
        #expect(summary["database"] == .string(dir + "/.sluice/sluice.db") && summary["table_rows"] == 1, "\(summary)")
        #expect(try await tables.manager(table: "cleaned").read(asset: "cleaned", partition: "2025-01-15") == value)
        let names = try await DatabaseQueue(path: store.path).read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        }
        #expect(names.contains("cleaned") && names.contains("runs") && names.contains("sluice_table_partitions"), "\(names)")
        await #expect(throws: AssetError.self) {
            _ = try await tables.manager(table: "runs").write(value, asset: "x", partition: "p")
        }
        #expect(try await store.runs(RunFilter()).isEmpty, "the store still works")
    }

    @Test("Columns get SQLite types a reader understands, and JSON text is kept as written")
    func columnTypes() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/t.db"
        let tables = try SQLiteTables(path: path)
        defer { tables.close() }
        let value: Value = [["i": 1, "r": 1.5, "t": "x", "b": true, "y": .bytes([1]), "j": [1.0], "m": 1.0], ["m": "one"]]
        _ = try await tables.manager(table: "typed").write(value, asset: "typed", partition: "p")
        let queue = try DatabaseQueue(path: path)
        let types = try await queue.read { db in
            try Row.fetchAll(db, sql: "SELECT name, type FROM pragma_table_info('typed')").map { "\($0["name"] as String) \($0["type"] as String)" }
        }
        #expect(types == ["partition TEXT", "_row INTEGER", "_extra JSON TEXT", "i INTEGER", "r REAL", "t TEXT", "b BOOLEAN", "y BLOB",
                          "j JSON TEXT", "m JSON TEXT"])
        // A json column keeps `1.0` as text (no numeric affinity turns it into 1); booleans are 0 and 1.
        let stored = try await queue.read { db -> [String] in
            guard let row = try Row.fetchOne(db, sql: "SELECT typeof(m), m, b, json_extract(j, '$[0]') FROM typed WHERE _row = 0") else { return [] }
            return [row[0] as String, row[1] as String, String(row[2] as Int64), String(row[3] as Double)]
        }
        #expect(stored == ["text", "1.0", "1", "1.0"])
        #expect(try await tables.manager(table: "typed").read(asset: "typed", partition: "p") == value)
    }
}
