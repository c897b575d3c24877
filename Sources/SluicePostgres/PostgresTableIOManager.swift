import Foundation
import PostgresNIO
import SluiceCore
import SluiceEngine

/// An asset stored as rows of a PostgreSQL table (see `TableMapping` for the layout). Writing a
/// partition deletes its rows and inserts the new ones, in multi-row INSERTs of bound
/// parameters (under the protocol's 65535 per statement), in one transaction. The transaction
/// first takes an advisory lock on the table, so processes adding the same new columns at once
/// take turns; writes to one table are serialized, writes to different tables are not.
public struct PostgresTableIOManager: IOManager {
    let tables: PostgresTables
    public let table: String

    private static let dialect = TableMapping.Dialect.postgres

    private var qualified: String { TableMapping.quoted(tables.schema) + "." + TableMapping.quoted(table) }
    private var partitions: String { TableMapping.quoted(tables.schema) + "." + TableMapping.quoted(TableMapping.partitionsTable) }

    /// The most rows in one INSERT, however few its columns.
    static let maximumRowsPerInsert = 1000

    public func write(_ value: Value, asset: String, partition: String) async throws -> Value {
        let rows = try await run("write asset '\(asset)' to") { c in
            try await PostgresStore.inTransaction(c) { c in
                try await PostgresStore.rows(c, "SELECT pg_advisory_xact_lock(\(lockKey(table)))")
                let columns = try await Self.columns(c, tables.schema, table)
                if columns.isEmpty {
                    try await execute(c, """
                        CREATE TABLE \(qualified) (partition text NOT NULL, _row bigint NOT NULL, _extra json,
                                                   PRIMARY KEY (partition, _row))
                        """)
                } else {
                    try TableMapping.check(table: table, in: tables.location, columnNames: columns.map(\.name))
                }
                if try await PostgresStore.rows(c, "SELECT to_regclass(\(partitions))::text").first?.decode(String?.self) == nil {
                    // Tables created at once by several processes: one creates it, the others find it.
                    try await PostgresStore.rows(c, "SELECT pg_advisory_xact_lock(\(lockKey(TableMapping.partitionsTable)))")
                    try await execute(c, """
                        CREATE TABLE IF NOT EXISTS \(partitions) (
                            table_name text NOT NULL, partition text NOT NULL, shape text NOT NULL, value text, rows bigint NOT NULL,
                            PRIMARY KEY (table_name, partition))
                        """)
                }
                let existing = try TableMapping.dataColumns(columns, table: table, dialect: Self.dialect)
                let layout = TableMapping.encode(value, partition: partition, existing: existing, dialect: Self.dialect)
                for column in layout.added {
                    try await execute(c, "ALTER TABLE \(qualified) ADD COLUMN \(TableMapping.quoted(column.name)) \(Self.dialect.type(column.kind))")
                }
                try await PostgresStore.rows(c, PostgresQuery(unsafeSQL: "DELETE FROM \(qualified) WHERE partition = $1",
                                                              binds: Self.bindings([.text(partition)])))
                try await insert(c, layout)
                try await PostgresStore.rows(c, PostgresQuery(unsafeSQL: """
                    INSERT INTO \(partitions) (table_name, partition, shape, value, rows) VALUES ($1, $2, $3, $4, $5)
                    ON CONFLICT (table_name, partition) DO UPDATE SET shape = excluded.shape, value = excluded.value, rows = excluded.rows
                    """, binds: Self.bindings([.text(table), .text(partition), .text(layout.shape.rawValue),
                                               layout.value.map { .text($0) } ?? .null, .int(Int64(layout.rows.count))])))
                return layout.rows.count
            }
        }
        return TableMapping.summary(value, table: table, database: tables.location, rows: rows)
    }

    /// The rows in multi-row INSERTs, each under the 65535 parameters a statement may bind.
    private func insert(_ c: PostgresConnection, _ layout: TableMapping.Write) async throws {
        let width = layout.columns.count
        guard width > 0 else { return }
        let perStatement = max(1, min(Self.maximumRowsPerInsert, Int(UInt16.max) / width))
        let names = layout.columns.map { TableMapping.quoted($0.name) }.joined(separator: ", ")
        // Every parameter is cast to its column's type: a NULL or a string goes into any column.
        let casts = layout.columns.map { "::" + Self.dialect.type($0.kind) }
        for start in stride(from: 0, to: layout.rows.count, by: perStatement) {
            let batch = layout.rows[start..<min(start + perStatement, layout.rows.count)]
            var sql = "INSERT INTO \(qualified) (\(names)) VALUES "
            var n = 0
            for (i, _) in batch.enumerated() {
                sql += i == 0 ? "(" : ", ("
                for (j, cast) in casts.enumerated() {
                    n += 1
                    sql += (j == 0 ? "$" : ", $") + String(n) + cast
                }
                sql += ")"
            }
            try await PostgresStore.rows(c, PostgresQuery(unsafeSQL: sql, binds: Self.bindings(batch.joined())))
        }
    }

    public func read(asset: String, partition: String) async throws -> Value {
        try await run("read asset '\(asset)' from") { c in
            try await PostgresStore.inTransaction(c) { c in
                // Both queries see the same committed write.
                try await PostgresStore.rows(c, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                guard try await PostgresStore.rows(c, "SELECT to_regclass(\(partitions))::text").first?.decode(String?.self) != nil,
                      let record = try await PostgresStore.rows(c, PostgresQuery(
                        unsafeSQL: "SELECT shape, value FROM \(partitions) WHERE table_name = $1 AND partition = $2",
                        binds: Self.bindings([.text(table), .text(partition)]))).first else {
                    throw TableMapping.missing(asset: asset, partition: partition, table: table, database: tables.location)
                }
                let (shape, value) = try record.decode((String, String?).self)
                var columns: [TableMapping.Column] = []
                var rows: [[TableMapping.Cell]] = []
                if shape != TableMapping.Shape.value.rawValue {
                    columns = try TableMapping.dataColumns(try await Self.columns(c, tables.schema, table), table: table, dialect: Self.dialect)
                    let kinds = columns.map(\.kind) + [.json]
                    // json is read as its text.
                    let selected = zip(columns.map(\.name) + [TableMapping.extraColumn], kinds).map { name, kind in
                        TableMapping.quoted(name) + (kind == .json ? "::text" : "")
                    }
                    for row in try await PostgresStore.rows(c, PostgresQuery(
                        unsafeSQL: "SELECT \(selected.joined(separator: ", ")) FROM \(qualified) WHERE partition = $1 ORDER BY _row",
                        binds: Self.bindings([.text(partition)]))) {
                        let cells = row.makeRandomAccess()
                        rows.append(try kinds.enumerated().map { i, kind in try Self.cell(cells[i], kind) })
                    }
                }
                return try TableMapping.decode(shape: shape, value: value, columns: columns, rows: rows)
            }
        }
    }

    /// Runs `body` on a pooled connection, naming the table and database in its errors.
    private func run<T: Sendable>(_ doing: String, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        do {
            return try await tables.withConnection(body)
        } catch let error as AssetError {
            throw error
        } catch {
            throw AssetError("cannot \(doing) table \(table) in \(tables.location): \(PostgresStore.reason(error))")
        }
    }

    private func execute(_ c: PostgresConnection, _ sql: String) async throws {
        try await PostgresStore.rows(c, PostgresQuery(unsafeSQL: sql))
    }

    /// The advisory lock of one table of this schema.
    private func lockKey(_ name: String) -> Int64 {
        let digest = Digest.sha256.hash(Array("sluice.table:\(tables.schema).\(name)".utf8))
        return Int64(bitPattern: digest.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
    }

    /// Every column of the table with its type, in table order; empty when there is no table.
    private static func columns(_ c: PostgresConnection, _ schema: String, _ table: String) async throws -> [(name: String, type: String)] {
        try await PostgresStore.rows(c, """
            SELECT column_name::text, data_type::text FROM information_schema.columns
            WHERE table_schema = \(schema) AND table_name = \(table) ORDER BY ordinal_position
            """).map { row in
            let (name, type) = try row.decode((String, String).self)
            return (name: name, type: type)
        }
    }

    private static func bindings<C: Collection<TableMapping.Cell>>(_ cells: C) -> PostgresBindings {
        var bindings = PostgresBindings(capacity: cells.count)
        for cell in cells {
            switch cell {
            case .null: bindings.appendNull()
            case .int(let i): bindings.append(i)
            case .double(let d): bindings.append(d)
            case .text(let s): bindings.append(s)
            case .bool(let b): bindings.append(b)
            case .bytes(let b): bindings.append(ByteBuffer(bytes: b))
            }
        }
        return bindings
    }

    private static func cell(_ cell: PostgresCell, _ kind: TableMapping.ColumnKind) throws -> TableMapping.Cell {
        switch kind {
        case .integer: return try cell.decode(Int64?.self).map { .int($0) } ?? .null
        case .real: return try cell.decode(Double?.self).map { .double($0) } ?? .null
        case .text, .json: return try cell.decode(String?.self).map { .text($0) } ?? .null
        case .boolean: return try cell.decode(Bool?.self).map { .bool($0) } ?? .null
        case .bytes: return try cell.decode(ByteBuffer?.self).map { .bytes(Array($0.readableBytesView)) } ?? .null
        }
    }
}
