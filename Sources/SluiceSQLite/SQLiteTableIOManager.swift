import Foundation
internal import GRDB
import SluiceCore
import SluiceEngine

/// An asset stored as rows of a SQLite table (see `TableMapping` for the layout). Writing a
/// partition deletes its rows and inserts the new ones (one prepared statement) in one IMMEDIATE
/// transaction, adding the columns of new fields first.
public struct SQLiteTableIOManager: IOManager {
    let tables: SQLiteTables
    public let table: String

    private static let dialect = TableMapping.Dialect.sqlite

    private static let partitions = TableMapping.partitionsTable
    /// The table's name as SQL: quoted, as it may be a keyword (`order`).
    private var sqlName: String { TableMapping.quoted(table) }

    public func write(_ value: Value, asset: String, partition: String) async throws -> Value {
        let table = table
        let name = sqlName
        let rows = try await run("write asset '\(asset)' to") { pool in
            try await pool.write { db in
                let columns = try Self.columns(db, table)
                if let columns {
                    try TableMapping.check(table: table, in: self.tables.path, columnNames: columns.map(\.name))
                } else {
                    try db.execute(sql: """
                        CREATE TABLE \(name) (partition TEXT NOT NULL, _row INTEGER NOT NULL, _extra \(Self.dialect.type(.json)),
                                               PRIMARY KEY (partition, _row))
                        """)
                }
                try db.execute(sql: """
                    CREATE TABLE IF NOT EXISTS \(Self.partitions) (
                        table_name TEXT NOT NULL, partition TEXT NOT NULL, shape TEXT NOT NULL, value TEXT, rows INTEGER NOT NULL,
                        PRIMARY KEY (table_name, partition))
                    """)
                let existing = try TableMapping.dataColumns(columns ?? [], table: table, dialect: Self.dialect)
                let layout = TableMapping.encode(value, partition: partition, existing: existing, dialect: Self.dialect)
                for c in layout.added {
                    try db.execute(sql: "ALTER TABLE \(name) ADD COLUMN \(TableMapping.quoted(c.name)) \(Self.dialect.type(c.kind))")
                }
                try db.execute(sql: "DELETE FROM \(name) WHERE partition = ?", arguments: [partition])
                if !layout.rows.isEmpty {
                    let names = layout.columns.map { TableMapping.quoted($0.name) }.joined(separator: ", ")
                    let marks = Array(repeating: "?", count: layout.columns.count).joined(separator: ", ")
                    let insert = try db.makeStatement(sql: "INSERT INTO \(name) (\(names)) VALUES (\(marks))")
                    for row in layout.rows {
                        try insert.execute(arguments: StatementArguments(row.map(Self.databaseValue)))
                    }
                }
                try db.execute(sql: """
                    INSERT INTO \(Self.partitions) (table_name, partition, shape, value, rows) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (table_name, partition) DO UPDATE SET shape = excluded.shape, value = excluded.value, rows = excluded.rows
                    """, arguments: [table, partition, layout.shape.rawValue, layout.value, layout.rows.count])
                return layout.rows.count
            }
        }
        return TableMapping.summary(value, table: table, database: tables.path, rows: rows)
    }

    public func read(asset: String, partition: String) async throws -> Value {
        let table = table
        let name = sqlName
        let path = tables.path
        return try await run("read asset '\(asset)' from") { pool in
            try await pool.read { db -> Value in
                // Asked of the file, not GRDB's schema cache: another process may have made the table.
                let recorded = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
                guard try Bool.fetchOne(db, sql: recorded, arguments: [Self.partitions]) != nil,
                      let record = try Row.fetchOne(db, sql: "SELECT shape, value FROM \(Self.partitions) WHERE table_name = ? AND partition = ?",
                                                    arguments: [table, partition]) else {
                    throw TableMapping.missing(asset: asset, partition: partition, table: table, database: path)
                }
                let shape: String = record["shape"]
                var columns: [TableMapping.Column] = []
                var rows: [[TableMapping.Cell]] = []
                if shape != TableMapping.Shape.value.rawValue {
                    columns = try TableMapping.dataColumns(try Self.columns(db, table) ?? [], table: table, dialect: Self.dialect)
                    let names = (columns.map(\.name) + [TableMapping.extraColumn]).map(TableMapping.quoted).joined(separator: ", ")
                    let cursor = try Row.fetchCursor(db, sql: "SELECT \(names) FROM \(name) WHERE partition = ? ORDER BY _row",
                                                     arguments: [partition])
                    while let row = try cursor.next() {
                        rows.append((0..<row.count).map { Self.cell(row[$0] as DatabaseValue) })
                    }
                }
                return try TableMapping.decode(shape: shape, value: record["value"], columns: columns, rows: rows)
            }
        }
    }

    /// Runs `body`, naming the table and file in its errors.
    private func run<T>(_ doing: String, _ body: (DatabasePool) async throws -> T) async throws -> T {
        do {
            return try await body(tables.pool)
        } catch let error as AssetError {
            throw error
        } catch let error as DatabaseError {
            throw AssetError("cannot \(doing) table \(table) in \(tables.path): \(error.message ?? "\(error.resultCode)")")
        } catch {
            throw AssetError("cannot \(doing) table \(table) in \(tables.path): \(error)")
        }
    }

    /// Every column of the table with its declared type, in table order; nil when there is no table.
    private static func columns(_ db: Database, _ table: String) throws -> [(name: String, type: String)]? {
        let rows = try Row.fetchAll(db, sql: "SELECT name, type FROM pragma_table_info(?)", arguments: [table])
        return rows.isEmpty ? nil : rows.map { (name: $0["name"], type: $0["type"]) }
    }

    private static func databaseValue(_ cell: TableMapping.Cell) -> DatabaseValue {
        switch cell {
        case .null: return .null
        case .int(let i): return i.databaseValue
        case .double(let d): return d.databaseValue
        case .text(let s): return s.databaseValue
        case .bool(let b): return b.databaseValue
        case .bytes(let b): return Data(b).databaseValue
        }
    }

    private static func cell(_ value: DatabaseValue) -> TableMapping.Cell {
        switch value.storage {
        case .null: return .null
        case .int64(let i): return .int(i)
        case .double(let d): return .double(d)
        case .string(let s): return .text(s)
        case .blob(let data): return .bytes([UInt8](data))
        }
    }
}
