import Foundation
import SluiceCore
import SluiceEngine

/// The contract of the table I/O managers (`io: {table: ...}`), written once and run against
/// each database (SQLite, PostgreSQL). A backend's suite runs every case on an empty database:
///
///     @Test(arguments: TableIOConformance.cases)
///     func tables(_ c: TableIOConformance.Case) async throws { try await c.run(makeBackend()) }
public enum TableIOConformance {
    /// One database, as the cases see it.
    public struct Backend: Sendable {
        /// The I/O manager of a table.
        public var manager: @Sendable (_ table: String) throws -> any IOManager
        /// The table's column names, in table order.
        public var columns: @Sendable (_ table: String) async throws -> [String]
        /// How many rows of the table belong to a partition.
        public var count: @Sendable (_ table: String, _ partition: String) async throws -> Int
        /// Runs a statement of the database's SQL.
        public var execute: @Sendable (_ sql: String) async throws -> Void

        public init(manager: @escaping @Sendable (String) throws -> any IOManager,
                    columns: @escaping @Sendable (String) async throws -> [String],
                    count: @escaping @Sendable (String, String) async throws -> Int,
                    execute: @escaping @Sendable (String) async throws -> Void) {
            self.manager = manager
            self.columns = columns
            self.count = count
            self.execute = execute
        }
    }

    public struct Case: Sendable, CustomStringConvertible {
        public let name: String
        public let run: @Sendable (Backend) async throws -> Void
        public var description: String { name }
    }

    static func expect(_ condition: Bool, _ message: @autoclosure () -> String, line: Int = #line) throws {
        try StoreConformance.expect(condition, message(), line: line)
    }

    static func expectEqual<T: Equatable>(_ actual: T, _ expected: T, _ what: String, line: Int = #line) throws {
        try StoreConformance.expectEqual(actual, expected, what, line: line)
    }

    /// Writes `value` and reads it back: equal, with every object's keys in the same order.
    static func roundTrip(_ m: any IOManager, _ value: Value, partition: String = "p", line: Int = #line) async throws {
        _ = try await m.write(value, asset: "a", partition: partition)
        let back = try await m.read(asset: "a", partition: partition)
        try expectEqual(back, value, "read back", line: line)
        try expectEqual(back.jsonString(), value.jsonString(), "read back, in key order", line: line)
    }

    /// What reading a partition nobody wrote throws.
    static func missing(_ m: any IOManager, partition: String) async throws -> String {
        do {
            let v = try await m.read(asset: "orders", partition: partition)
            throw StoreConformance.Failure(message: "reading \(partition) gave \(v) instead of an error", line: #line)
        } catch let error as AssetError {
            return error.description
        }
    }

    public static let cases: [Case] = [
        Case(name: "rows of every kind round-trip, with null and missing fields told apart") { db in
            let m = try db.manager("orders")
            let rows: Value = [
                ["id": 1, "price": 9.5, "name": "tea", "paid": true, "tags": ["a", "b"], "meta": ["x": 1, "y": [true, nil]], "note": nil],
                ["id": 2, "price": 3.25, "name": "cake", "paid": false, "tags": [], "meta": ["x": 2]],
                ["id": 3, "name": "ünïcode ✓ 'quoted' \"double\"", "price": nil, "mixed": 1],
                ["mixed": "one", "id": 4, "big": .int(.max), "small": .int(.min), "ratio": 2, "when": "2025-01-15T00:00:00Z"],
                ["ratio": 0.5, "mixed": ["nested": true], "empty": "", "zero": 0.0],
                [:],
            ]
            try await roundTrip(m, rows)
            let summary = try await m.write(rows, asset: "orders", partition: "p")
            try expectEqual(summary["io"], "table", "summary io")
            try expectEqual(summary["table"], "orders", "summary table")
            try expectEqual(summary["rows"], 6, "summary rows")
            try expectEqual(try await db.count("orders", "p"), 6, "table rows")
            let columns = try await db.columns("orders")
            try expectEqual(Array(columns.prefix(3)), ["partition", "_row", "_extra"], "system columns")
            try expectEqual(Array(columns.dropFirst(3)),
                            ["id", "price", "name", "paid", "tags", "meta", "note", "mixed", "big", "small", "ratio", "when", "empty", "zero"],
                            "a column per field, in first-seen order")
        },
        Case(name: "a later write with new fields adds their columns; earlier partitions read back unchanged") { db in
            let m = try db.manager("events")
            let first: Value = [["kind": "click", "n": 1]]
            _ = try await m.write(first, asset: "events", partition: "2025-01-01")
            try expectEqual(try await db.columns("events").count, 5, "columns after the first write")
            let second: Value = [["kind": "view", "n": 2, "page": "/home", "ms": 12.5], ["kind": "view", "referrer": ["host": "x"]]]
            _ = try await m.write(second, asset: "events", partition: "2025-01-02")
            try expectEqual(Array(try await db.columns("events").dropFirst(3)), ["kind", "n", "page", "ms", "referrer"], "added columns")
            try expectEqual(try await m.read(asset: "events", partition: "2025-01-01"), first, "first partition")
            try expectEqual(try await m.read(asset: "events", partition: "2025-01-02"), second, "second partition")
            // A value of another kind in an existing column still reads back as written.
            try await roundTrip(m, [["kind": 7, "n": "seven", "page": 1.5, "ms": 3]], partition: "2025-01-03")
        },
        Case(name: "writing a partition again replaces its rows and leaves the others") { db in
            let m = try db.manager("daily")
            _ = try await m.write([["v": 1], ["v": 2], ["v": 3]], asset: "daily", partition: "a")
            _ = try await m.write([["v": 10]], asset: "daily", partition: "b")
            _ = try await m.write([["v": 4], ["w": "x"]], asset: "daily", partition: "a")
            try expectEqual(try await db.count("daily", "a"), 2, "rows of a")
            try expectEqual(try await m.read(asset: "daily", partition: "a"), [["v": 4], ["w": "x"]], "a rewritten")
            try expectEqual(try await m.read(asset: "daily", partition: "b"), [["v": 10]], "b untouched")
            _ = try await m.write([], asset: "daily", partition: "a")
            try expectEqual(try await db.count("daily", "a"), 0, "rows of a emptied")
            try expectEqual(try await m.read(asset: "daily", partition: "a"), [], "an empty array")
            _ = try await m.write("done", asset: "daily", partition: "b")
            try expectEqual(try await db.count("daily", "b"), 0, "a scalar has no rows")
            try expectEqual(try await m.read(asset: "daily", partition: "b"), "done", "b holds a scalar now")
        },
        Case(name: "a partition never written is an error naming the asset, partition and table") { db in
            let m = try db.manager("sales")
            let before = try await missing(m, partition: "2025-01-01")
            try expect(before.contains("'orders'") && before.contains("[2025-01-01]") && before.contains("table sales"), before)
            _ = try await m.write([["x": 1]], asset: "orders", partition: "2025-01-02")
            let after = try await missing(m, partition: "2025-01-01")
            try expect(after.contains("'orders'") && after.contains("[2025-01-01]") && after.contains("table sales")
                       && after.contains("never written"), after)
            // Partitions of one table are kept apart from another table's.
            _ = try await db.manager("other").write([["x": 2]], asset: "other", partition: "2025-01-01")
            try expect(try await missing(m, partition: "2025-01-01").contains("never written"), "another table's partition")
        },
        Case(name: "scalars, objects, arrays of scalars and unpartitioned values round-trip") { db in
            let m = try db.manager("values")
            let values: [Value] = [42, -1.5, "text", true, nil, [1, 2, 3], [], ["only": "object", "n": 1], [["a": 1], 2, "mixed"],
                                   [[1, 2], [3]], ["$": "a dollar key", "nested": ["$": ["$": 1]]], ["": "empty key"], .int(.max)]
            for (i, v) in values.enumerated() { try await roundTrip(m, v, partition: "p\(i)") }
            try await roundTrip(m, ["total": 42, "day": "2025-01-15"], partition: "")
            try expectEqual(try await db.count("values", ""), 1, "an object is one row")
        },
        Case(name: "field names are quoted: any name is a column or kept in _extra") { db in
            let m = try db.manager("select")  // a keyword as the table name
            let long = String(repeating: "l", count: 70)
            let row: Value = ["a\"b c": 1, "partition": "mine", "_row": 5, "_extra": "x", "select": "kw", "Case": 1, "case": 2,
                              long: "long", "semi;colon --": true, "ünï": 0.5, "'; DROP TABLE x; --": "y"]
            try await roundTrip(m, [row, ["a\"b c": 2]])
            let columns = try await db.columns("select")
            try expect(columns.contains("a\"b c") && columns.contains("select") && columns.contains("semi;colon --")
                       && columns.contains("'; DROP TABLE x; --"), "\(columns)")
            try expectEqual(columns.filter { $0 == "partition" }.count, 1, "one partition column")
        },
        Case(name: "values no column holds exactly come back exactly") { db in
            let m = try db.manager("exact")
            // f and n are real columns, b bytes, t text, s and j json.
            let rows: Value = [
                ["f": 1.5, "b": .bytes([0, 1, 255]), "t": "nul\u{0}inside", "s": "nul\u{0}in json", "n": 1],
                ["f": 2, "b": .bytes([]), "t": "plain", "s": "plain", "n": .int(1 << 60)],
                ["f": .double(.infinity), "s": 3, "n": 2.5, "t": nil],
                ["f": .int(1 << 60), "b": .bytes([9]), "j": ["bytes": .bytes([7]), "inf": .double(-.infinity), "ok": 1]],
                ["j": ["plain": [1.0, 2]], "b": "not bytes"],
            ]
            try await roundTrip(m, rows)
            _ = try await m.write([["f": .double(.nan)]], asset: "a", partition: "nan")
            let nan = try await m.read(asset: "a", partition: "nan")
            try expect(nan[0]?["f"]?.doubleValue?.isNaN == true, "NaN read back as \(nan)")
        },
        Case(name: "many rows and wide rows are written in batches") { db in
            let m = try db.manager("wide")
            // 83 parameters a row: PostgreSQL takes them 789 rows to a statement.
            let fields = (0..<80).map { "c\($0)" }
            var rows: [Value] = []
            for i in 0..<1500 {
                var o = Value.Object()
                for (j, f) in fields.enumerated() { o[f] = j % 3 == 0 ? .int(Int64(i * j)) : j % 3 == 1 ? .string("r\(i)") : .double(Double(i) / 4) }
                rows.append(.object(o))
            }
            try await roundTrip(m, .array(rows))
            try expectEqual(try await db.count("wide", "p"), 1500, "rows")
        },
        Case(name: "a table that Sluice did not make is refused, and so is Sluice's own") { db in
            try await db.execute("CREATE TABLE theirs (id integer)")
            do {
                _ = try await db.manager("theirs").write([["id": 1]], asset: "a", partition: "p")
                throw StoreConformance.Failure(message: "writing into a foreign table should fail", line: #line)
            } catch let error as AssetError {
                try expect(error.description.contains("theirs") && error.description.contains("not made by Sluice"), error.description)
            }
            do {
                _ = try db.manager("sluice_table_partitions")
                throw StoreConformance.Failure(message: "the partitions table should be refused as an asset table", line: #line)
            } catch let error as AssetError {
                try expect(error.description.contains("another table name"), error.description)
            }
        },
    ]
}
