import Foundation
internal import GRDB
import SluiceCore
import SluiceEngine

/// A SQLite file that holds asset tables (`io: {table: ...}`): the store's own file, through
/// the store's pool, or another file opened for them.
public final class SQLiteTables: Sendable {
    let pool: DatabasePool
    /// The file, for summaries and messages.
    public let path: String
    /// Whether `close()` closes the pool (not the store's).
    private let owned: Bool

    /// The tables in the store's own file.
    public init(store: SQLiteStore) {
        pool = store.pool
        path = store.path
        owned = false
    }

    /// The tables in the file at `path`, created if missing (with its directory), in WAL mode.
    public init(path: String) throws(StoreError) {
        pool = try SQLiteStore.openPool(path: path, what: "the SQLite database", prepare: { _ in })
        self.path = path
        owned = true
    }

    /// The I/O manager of the table `table` (a name of letters, digits and `_`).
    public func manager(table: String) throws -> SQLiteTableIOManager {
        try TableMapping.checkName(table)
        return SQLiteTableIOManager(tables: self, table: table)
    }

    /// Closes a file opened for tables; the store's file stays open.
    public func close() {
        if owned { try? pool.close() }
    }
}
