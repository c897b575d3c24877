import Foundation
import SluiceCore
import SluiceEngine
import SluicePostgres
import SluiceSQLite
import Synchronization

/// The databases of `io: {table: {name, url?}}` assets: the store's own when there is no
/// `url`, else the SQLite file or PostgreSQL database the `url` names (read like `--store`),
/// each opened once, on its first table, and closed with the store.
final class TableConnections: Sendable {
    private enum Database: Sendable {
        case sqlite(SQLiteTables)
        case postgres(PostgresTables)
    }

    /// The store's database; nil for the memory store.
    private let own: Database?
    /// The other databases, by file path or URL.
    private let opened = Mutex<[String: Database]>([:])

    init(store: (any Store)?) {
        switch store {
        case let sqlite as SQLiteStore: own = .sqlite(SQLiteTables(store: sqlite))
        case let postgres as PostgresStore: own = .postgres(PostgresTables(store: postgres))
        default: own = nil
        }
    }

    /// The I/O manager of table `name` in the database at `url`, or in the store's.
    func manager(name: String, url: String?) throws -> any IOManager {
        let database: Database
        if let url {
            database = try open(url, table: name)
        } else if let own {
            database = own
        } else {
            throw AssetError("table \(name) has no url and the store keeps nothing (memory): give it a url "
                             + "(a SQLite path or a postgres:// URL) or use a SQLite or PostgreSQL store")
        }
        switch database {
        case .sqlite(let tables): return try tables.manager(table: name)
        case .postgres(let tables): return try tables.manager(table: name)
        }
    }

    private func open(_ url: String, table: String) throws -> Database {
        do {
            switch StoreLocation(url) {
            case .memory:
                throw AssetError("the url of table \(table) is 'memory': name a database (a SQLite path or a postgres:// URL)")
            case .sqlite(let path):
                let file = URL(fileURLWithPath: path).standardizedFileURL.path
                if case .sqlite(let tables)? = own, URL(fileURLWithPath: tables.path).standardizedFileURL.path == file { return own! }
                return try database(file) { .sqlite(try SQLiteTables(path: path)) }
            case .postgres(let url):
                return try database(url) { .postgres(try PostgresTables(url: url)) }
            }
        } catch let error as AssetError {
            throw error
        } catch {
            throw AssetError("table \(table): \(error)")
        }
    }

    /// The database opened under `key`, opening it on first use.
    private func database(_ key: String, open: () throws -> Database) throws -> Database {
        try opened.withLock { opened in
            if let known = opened[key] { return known }
            let database = try open()
            opened[key] = database
            return database
        }
    }

    /// Closes the databases opened for tables (not the store's).
    func close() async {
        let databases = opened.withLock { opened in
            defer { opened = [:] }
            return Array(opened.values)
        }
        for database in databases {
            switch database {
            case .sqlite(let tables): tables.close()
            case .postgres(let tables): await tables.close()
            }
        }
    }
}
