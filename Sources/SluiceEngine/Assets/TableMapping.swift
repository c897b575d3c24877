import Foundation
import SluiceCore

/// How an asset's value is laid out in a SQL table, shared by the SQLite and PostgreSQL table
/// I/O managers so both keep the same shape and only the SQL differs.
///
/// - One table per asset with the columns `partition` (text), `_row` (the row's position, from
///   0), `_extra` (JSON, NULL on most rows), then one column per field, in the order the fields
///   were first written; the key is `(partition, _row)`.
/// - An array of objects is one row per object; an object is one row. Anything else (a scalar,
///   an array holding a non-object) is kept whole in `sluice_table_partitions.value`, which
///   also records each written partition (table, partition, shape, rows), so an empty array
///   reads back as `[]` and a partition never written is told apart.
/// - A new field's column kind comes from the values of the write that brings it: all integers
///   `integer`, all floats (or floats and integers) `real`, all strings `text`, all booleans
///   `boolean`, all bytes `bytes`, anything else (arrays, objects, mixed kinds, only nulls)
///   `json`. Kinds never change afterwards.
/// - `_extra` holds what the columns cannot say exactly, so every value reads back equal:
///   explicit nulls (a NULL column is a missing field), values that do not fit their column (a
///   string in an integer column, an integer in a real one, a NaN, a string with a NUL),
///   fields that cannot be columns (named like a system column, empty, too long, or equal to
///   another column but for case in SQLite), and the row's key order when it is not column
///   order.
package enum TableMapping {
    package enum ColumnKind: String, Sendable, CaseIterable {
        case integer, real, text, boolean, bytes, json
    }

    package struct Column: Sendable, Equatable {
        package var name: String
        package var kind: ColumnKind
        package init(_ name: String, _ kind: ColumnKind) {
            self.name = name
            self.kind = kind
        }
    }

    /// One SQL value, as bound or as read. A `json` column's cell is its JSON text.
    package enum Cell: Sendable, Equatable {
        case null, int(Int64), double(Double), text(String), bool(Bool), bytes([UInt8])
    }

    /// What a database allows in column names and counts, and its column types.
    package struct Dialect: Sendable {
        /// The longest column name in UTF-8 bytes (PostgreSQL cuts longer names short).
        package var maxNameBytes: Int
        /// The most columns a table may have.
        package var maxColumns: Int
        /// SQLite's column names are the same column whatever their ASCII case.
        package var caseInsensitiveNames: Bool
        /// The SQL type of a column of each kind.
        package var types: [ColumnKind: String]

        /// `JSON TEXT` has SQLite's TEXT affinity, so JSON such as `1.0` is kept as written (a
        /// numeric affinity would make it 1), and its first word says what the text is.
        package static let sqlite = Dialect(maxNameBytes: .max, maxColumns: 2000, caseInsensitiveNames: true, types: [
            .integer: "INTEGER", .real: "REAL", .text: "TEXT", .boolean: "BOOLEAN", .bytes: "BLOB", .json: "JSON TEXT",
        ])
        /// `json` rather than `jsonb` keeps the text as written: key order, `1.0`.
        package static let postgres = Dialect(maxNameBytes: 63, maxColumns: 1600, caseInsensitiveNames: false, types: [
            .integer: "bigint", .real: "double precision", .text: "text", .boolean: "boolean", .bytes: "bytea", .json: "json",
        ])

        func key(_ name: String) -> String { caseInsensitiveNames ? name.lowercased() : name }

        package func type(_ kind: ColumnKind) -> String { types[kind]! }
    }

    /// The data columns (system columns left out) of a table whose columns and SQL types are
    /// `columns`, in table order. A type Sluice does not write (added by hand) is refused.
    package static func dataColumns(_ columns: [(name: String, type: String)], table: String, dialect: Dialect) throws -> [Column] {
        let system = Set(systemColumns.map(dialect.key))
        return try columns.filter { !system.contains(dialect.key($0.name)) }.map { c in
            guard let kind = dialect.types.first(where: { $0.value.caseInsensitiveCompare(c.type) == .orderedSame })?.key else {
                throw AssetError("column \(c.name) of table \(table) has type \(c.type), which Sluice's table I/O does not write")
            }
            return Column(c.name, kind)
        }
    }

    package enum Shape: String, Sendable {
        /// An array of objects: one row each.
        case rows
        /// One object: one row.
        case object
        /// Anything else, whole in the partitions table.
        case value
    }

    package static let partitionColumn = "partition"
    package static let rowColumn = "_row"
    package static let extraColumn = "_extra"
    package static let systemColumns = [partitionColumn, rowColumn, extraColumn]
    /// The table that records every written partition of every asset table of a database.
    package static let partitionsTable = "sluice_table_partitions"

    /// `"name"`, with any `"` doubled: safe for any column name.
    package static func quoted(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    // MARK: - Writing

    /// What one write stores.
    package struct Write: Sendable {
        package var shape: Shape
        /// The whole value (tagged JSON) when `shape` is `.value`.
        package var value: String?
        /// Columns to add to the table first, in order.
        package var added: [Column]
        /// The columns the INSERT names: `partition`, `_row`, the data columns some row fills
        /// (in table order), `_extra`.
        package var columns: [Column]
        /// One cell per column of `columns`, per row.
        package var rows: [[Cell]]
    }

    /// Lays `value` out as rows of the table whose data columns (system columns left out) are
    /// `existing`, in table order.
    package static func encode(_ value: Value, partition: String, existing: [Column], dialect: Dialect) -> Write {
        let objects: [Value.Object]
        let shape: Shape
        switch value {
        case .object(let o):
            (objects, shape) = ([o], .object)
        case .array(let a) where a.allSatisfy({ $0.objectValue != nil }):
            (objects, shape) = (a.map { $0.objectValue! }, .rows)
        default:
            return Write(shape: .value, value: tagged(value).jsonString(), added: [], columns: [], rows: [])
        }

        var columns = existing
        var taken = Set(systemColumns.map(dialect.key))
        for c in existing { taken.insert(dialect.key(c.name)) }
        // New fields, in first-seen order, with the kinds of their values.
        var fresh: [String: Set<ColumnKind?>] = [:]
        var freshOrder: [String] = []
        for o in objects {
            for (name, v) in o where fresh[name] != nil || canBeColumn(name, dialect) && !taken.contains(dialect.key(name)) {
                if fresh[name] == nil {
                    freshOrder.append(name)
                    taken.insert(dialect.key(name))
                }
                fresh[name, default: []].insert(kindOf(v))
            }
        }
        var added: [Column] = []
        for name in freshOrder where columns.count + systemColumns.count < dialect.maxColumns {
            let column = Column(name, inferred(fresh[name]!))
            columns.append(column)
            added.append(column)
        }

        var index: [String: Int] = [:]
        for (i, c) in columns.enumerated() { index[c.name] = i }
        var filled = [Bool](repeating: false, count: columns.count)
        var laid: [(cells: [Int: Cell], extra: Cell)] = []
        laid.reserveCapacity(objects.count)
        for o in objects {
            var cells: [Int: Cell] = [:]
            var fields = Value.Object()
            for (name, v) in o {
                guard let i = index[name] else {
                    fields[name] = tagged(v)
                    continue
                }
                let (cell, exact) = fit(v, columns[i].kind)
                if let cell {
                    cells[i] = cell
                    filled[i] = true
                }
                if !exact { fields[name] = tagged(v) }
            }
            // The order a reader rebuilds: columns in table order, then the fields `_extra` adds.
            var rebuilt = cells.keys.sorted().map { columns[$0].name }
            let inColumns = Set(rebuilt)
            rebuilt += fields.keys.filter { !inColumns.contains($0) }
            var extra = Value.Object()
            if !fields.isEmpty { extra["fields"] = .object(fields) }
            if rebuilt != Array(o.keys) { extra["order"] = .array(o.keys.map { .string($0) }) }
            laid.append((cells, extra.isEmpty ? .null : .text(Value.object(extra).jsonString())))
        }

        let used = columns.indices.filter { filled[$0] }
        let rows = laid.enumerated().map { n, row in
            [.text(partition), .int(Int64(n))] + used.map { row.cells[$0] ?? .null } + [row.extra]
        }
        return Write(shape: shape, value: nil, added: added,
                     columns: [Column(partitionColumn, .text), Column(rowColumn, .integer)] + used.map { columns[$0] } + [Column(extraColumn, .json)],
                     rows: rows)
    }

    private static func canBeColumn(_ name: String, _ dialect: Dialect) -> Bool {
        !name.isEmpty && name.utf8.count <= dialect.maxNameBytes && !name.utf8.contains(0)
    }

    /// The column kind a value asks for; nil for null, which asks for none.
    private static func kindOf(_ v: Value) -> ColumnKind? {
        switch v {
        case .null: return nil
        case .bool: return .boolean
        case .int: return .integer
        case .double: return .real
        case .string: return .text
        case .bytes: return .bytes
        case .array, .object: return .json
        }
    }

    private static func inferred(_ kinds: Set<ColumnKind?>) -> ColumnKind {
        let seen = Set(kinds.compactMap { $0 })
        if seen == [.integer, .real] { return .real }
        return seen.count == 1 ? seen.first! : .json
    }

    /// The cell `v` takes in a column of `kind` (nil: none, the column stays NULL), and whether
    /// that cell gives `v` back exactly.
    private static func fit(_ v: Value, _ kind: ColumnKind) -> (Cell?, exact: Bool) {
        switch (kind, v) {
        case (_, .null): return (nil, false)
        case (.integer, .int(let i)): return (.int(i), true)
        case (.real, .double(let d)) where d.isFinite: return (.double(d), true)
        // Keeps the number queryable; `_extra` says it was an integer.
        case (.real, .int(let i)) where i.magnitude <= 1 << 53: return (.double(Double(i)), false)
        case (.text, .string(let s)) where !s.utf8.contains(0): return (.text(s), true)
        case (.boolean, .bool(let b)): return (.bool(b), true)
        case (.bytes, .bytes(let b)): return (.bytes(b), true)
        case (.json, _) where isPlainJSON(v): return (.text(v.jsonString()), true)
        default: return (nil, false)
        }
    }

    /// Whether JSON text gives `v` back: no bytes and no NaN or infinity anywhere in it.
    private static func isPlainJSON(_ v: Value) -> Bool {
        switch v {
        case .bytes: return false
        case .double(let d): return d.isFinite
        case .array(let a): return a.allSatisfy(isPlainJSON)
        case .object(let o): return o.values.allSatisfy(isPlainJSON)
        default: return true
        }
    }

    // MARK: - Reading

    /// The value of a partition from its record in the partitions table and, for rows, the
    /// table's data columns (in table order) and its rows: one cell per data column, then `_extra`.
    package static func decode(shape: String, value: String?, columns: [Column], rows: [[Cell]]) throws -> Value {
        switch Shape(rawValue: shape) {
        case .value?:
            return try untagged(parse(value ?? "null", what: "the stored value"))
        case .rows?:
            return .array(try rows.map { .object(try object(columns, $0)) })
        case .object?:
            guard rows.count == 1 else { throw AssetError("an object partition has \(rows.count) rows instead of 1") }
            return .object(try object(columns, rows[0]))
        case nil:
            throw AssetError("unknown shape '\(shape)' in \(partitionsTable)")
        }
    }

    private static func object(_ columns: [Column], _ cells: [Cell]) throws -> Value.Object {
        var o = Value.Object()
        for (c, cell) in zip(columns, cells) {
            if let v = try value(cell, c) { o[c.name] = v }
        }
        guard case .text(let text)? = cells.last, cells.count == columns.count + 1 else { return o }
        let extra = try parse(text, what: "column \(extraColumn)")
        for (name, v) in extra["fields"]?.objectValue ?? [:] { o[name] = try untagged(v) }
        if let order = extra["order"]?.arrayValue {
            var ordered = Value.Object()
            for case .string(let name) in order { if let v = o[name] { ordered[name] = v } }
            for (name, v) in o where ordered[name] == nil { ordered[name] = v }
            o = ordered
        }
        return o
    }

    private static func value(_ cell: Cell, _ column: Column) throws -> Value? {
        switch (column.kind, cell) {
        case (_, .null): return nil
        case (.integer, .int(let i)): return .int(i)
        case (.real, .double(let d)): return .double(d)
        case (.real, .int(let i)): return .double(Double(i))
        case (.text, .text(let s)): return .string(s)
        case (.boolean, .bool(let b)): return .bool(b)
        case (.boolean, .int(let i)): return .bool(i != 0)
        case (.bytes, .bytes(let b)): return .bytes(b)
        case (.json, .text(let s)): return try parse(s, what: "column \(column.name)")
        default: throw AssetError("column \(column.name) (\(column.kind.rawValue)) holds \(cell)")
        }
    }

    private static func parse(_ text: String, what: String) throws -> Value {
        do {
            return try Value.parseJSON(text)
        } catch {
            throw AssetError("\(what) is not JSON: \(error)")
        }
    }

    // MARK: - Tagged JSON

    /// `v` as JSON that gives it back exactly: bytes, NaN and infinities become `{"$": ...}`
    /// objects, and an object that has a `$` key of its own is wrapped in one.
    package static func tagged(_ v: Value) -> Value {
        switch v {
        case .double(let d) where !d.isFinite:
            return ["$": "double", "value": .string(d.isNaN ? "nan" : d > 0 ? "inf" : "-inf")]
        case .bytes(let b):
            return ["$": "bytes", "base64": .string(Base64.encode(b))]
        case .array(let a):
            return .array(a.map(tagged))
        case .object(let o):
            var members = Value.Object()
            for (k, x) in o { members[k] = tagged(x) }
            return o["$"] == nil ? .object(members) : ["$": "object", "value": .object(members)]
        default:
            return v
        }
    }

    package static func untagged(_ v: Value) throws -> Value {
        switch v {
        case .array(let a):
            return .array(try a.map(untagged))
        case .object(let o):
            let members: Value.Object
            switch (o["$"], o["value"], o["base64"]) {
            case (nil, _, _): members = o
            case (.string("object")?, .object(let wrapped)?, _): members = wrapped
            case (.string("double")?, .string(let s)?, _):
                switch s {
                case "nan": return .double(.nan)
                case "inf": return .double(.infinity)
                case "-inf": return .double(-.infinity)
                default: throw AssetError("a tagged double holds '\(s)'")
                }
            case (.string("bytes")?, _, .string(let s)?):
                guard let data = Data(base64Encoded: s) else { throw AssetError("tagged bytes are not base64") }
                return .bytes([UInt8](data))
            default:
                throw AssetError("an unknown tagged value: \(v.jsonString())")
            }
            var out = Value.Object()
            for (k, x) in members { out[k] = try untagged(x) }
            return .object(out)
        default:
            return v
        }
    }

    // MARK: - Checks and messages

    /// Refuses a table that exists without Sluice's columns: a store table, or the user's own.
    package static func check(table: String, in database: String, columnNames: [String]) throws {
        let names = Set(columnNames.map { $0.lowercased() })
        let missing = systemColumns.filter { !names.contains($0) }
        guard missing.isEmpty else {
            throw AssetError("table \(table) in \(database) exists but was not made by Sluice's table I/O (it has no "
                             + "\(missing.joined(separator: ", ")) column): give the asset another table name")
        }
    }

    /// Refuses a name Sluice uses for its own bookkeeping.
    package static func checkName(_ table: String) throws {
        if table.lowercased() == partitionsTable {
            throw AssetError("table name \(table) is Sluice's own record of table partitions: give the asset another table name")
        }
    }

    package static func missing(asset: String, partition: String, table: String, database: String) -> AssetError {
        AssetError.missing(asset, partition, "table \(table) in \(database) holds no "
                           + (partition.isEmpty ? "value" : "partition '\(partition)'") + " (it was never written)")
    }

    /// What a write returns for the materialization record.
    package static func summary(_ value: Value, table: String, database: String, rows: Int) -> Value {
        var summary = ValueSummary.of(value)
        summary["io"] = "table"
        summary["table"] = .string(table)
        summary["database"] = .string(database)
        summary["table_rows"] = .int(Int64(rows))
        return summary
    }
}
