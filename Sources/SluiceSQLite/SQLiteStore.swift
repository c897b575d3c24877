import Foundation
internal import GRDB
import SluiceCore
import SluiceEngine

/// The default store: one SQLite file (`.sluice/sluice.db` beside the flows), in WAL mode so
/// readers never wait for the writer. Several processes may share the file: every write is an
/// IMMEDIATE transaction, and the schema is migrated inside one, so two processes starting
/// at once apply each migration exactly once.
public final class SQLiteStore: Store {
    let pool: DatabasePool
    public let path: String

    /// Opens (creating if needed) the store at `path`, creating its directory, and migrates it.
    /// A path that cannot be written or a file that is not a Sluice database fails with the
    /// path and the reason.
    public init(path: String) throws(StoreError) {
        self.path = path
        pool = try Self.openPool(path: path, what: "the SQLite store", prepare: { db in try Self.migrate(db) })
    }

    /// Opens a pool on the file at `path` (creating it and its directory), in WAL mode, and
    /// runs `prepare` in its first write transaction. Processes opening a new file at once can
    /// find it locked while one of them switches it to WAL (SQLite does not wait on its busy
    /// timeout for that): they try again, for up to ten seconds. Failures name `what` and `path`.
    static func openPool(path: String, what: String, prepare: @escaping @Sendable (Database) throws -> Void) throws(StoreError) -> DatabasePool {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw .unavailable("cannot create the directory of \(what) \(path): \(error.localizedDescription)")
            }
        }
        var config = Configuration()
        config.busyMode = .timeout(10)
        // In WAL mode NORMAL keeps every committed transaction through a crash of the process
        // (kill -9 included); only a power loss may drop the last ones. FULL would fsync every commit.
        config.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
        do {
            var delay: UInt32 = 2_000
            let deadline = Date().addingTimeInterval(10)
            while true {
                do {
                    let pool = try DatabasePool(path: path, configuration: config)
                    try pool.write(prepare)
                    return pool
                } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED {
                    if Date() >= deadline { throw error }
                    usleep(delay)
                    delay = min(delay * 2, 100_000)
                }
            }
        } catch let error as DatabaseError {
            throw describe(error, path, what: what)
        } catch let error as StoreError {
            throw error
        } catch {
            throw .unavailable("cannot open \(what) \(path): \(error)")
        }
    }

    static func describe(_ error: DatabaseError, _ path: String, what: String = "the SQLite store") -> StoreError {
        switch error.resultCode {
        case .SQLITE_NOTADB, .SQLITE_CORRUPT:
            return .corrupt("\(path) is not a usable SQLite database (\(error.message ?? "\(error.resultCode)"))")
        default:
            return .unavailable("cannot open \(what) \(path): \(error.message ?? "\(error.resultCode)")")
        }
    }

    // MARK: - Schema

    /// Each entry brings the schema from version i to i + 1; the version is SQLite's user_version.
    static let migrations: [String] = [
        """
        CREATE TABLE flows (hash TEXT PRIMARY KEY, name TEXT NOT NULL, source TEXT NOT NULL, created REAL NOT NULL);
        CREATE TABLE runs (
            id TEXT PRIMARY KEY, flow TEXT NOT NULL, flow_hash TEXT NOT NULL, status TEXT NOT NULL,
            trigger TEXT NOT NULL, input TEXT NOT NULL, idempotency_key TEXT, created REAL NOT NULL,
            started REAL, ended REAL, error TEXT);
        CREATE INDEX runs_by_time ON runs (created, id);
        CREATE INDEX runs_by_key ON runs (flow, idempotency_key, created) WHERE idempotency_key IS NOT NULL;
        CREATE TABLE attempts (
            run_id TEXT NOT NULL, task TEXT NOT NULL, attempt INTEGER NOT NULL, status TEXT NOT NULL,
            started REAL NOT NULL, ended REAL, error TEXT, PRIMARY KEY (run_id, task, attempt));
        CREATE TABLE checkpoints (run_id TEXT NOT NULL, task TEXT NOT NULL, output TEXT NOT NULL, PRIMARY KEY (run_id, task));
        CREATE TABLE run_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, event TEXT NOT NULL);
        CREATE INDEX run_events_by_run ON run_events (run_id, seq);
        CREATE TABLE results (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires REAL NOT NULL);
        CREATE TABLE kv (
            bucket TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, revision INTEGER NOT NULL, expires REAL,
            PRIMARY KEY (bucket, key));
        CREATE INDEX kv_by_revision ON kv (bucket, revision);
        CREATE TABLE kv_revisions (bucket TEXT PRIMARY KEY, revision INTEGER NOT NULL);
        CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, generation INTEGER NOT NULL, expires REAL NOT NULL);
        CREATE TABLE queue (
            run_id TEXT PRIMARY KEY, queued REAL NOT NULL, worker TEXT, generation INTEGER NOT NULL DEFAULT 0, expires REAL);
        CREATE INDEX queue_by_time ON queue (queued);
        """,
        // Asset materializations with their lineage (the upstream materializations each one
        // read, in order), and the audit log.
        """
        CREATE TABLE materializations (
            id TEXT PRIMARY KEY, asset TEXT NOT NULL, partition TEXT NOT NULL, run_id TEXT NOT NULL, status TEXT NOT NULL,
            started REAL NOT NULL, ended REAL, version TEXT NOT NULL, summary TEXT NOT NULL, error TEXT);
        CREATE INDEX materializations_by_partition ON materializations (asset, partition, started);
        CREATE INDEX materializations_by_run ON materializations (run_id);
        CREATE TABLE materialization_inputs (
            materialization_id TEXT NOT NULL, position INTEGER NOT NULL, asset TEXT NOT NULL, partition TEXT NOT NULL,
            input_id TEXT NOT NULL, PRIMARY KEY (materialization_id, position));
        CREATE INDEX materialization_inputs_by_asset ON materialization_inputs (asset, partition);
        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
            target TEXT NOT NULL, detail TEXT NOT NULL);
        CREATE INDEX audit_log_by_target ON audit_log (target, id);
        """,
    ]

    static func migrate(_ db: Database) throws {
        let version = try Int.fetchOne(db, sql: "PRAGMA user_version") ?? 0
        if version > migrations.count {
            throw StoreError.unavailable("the SQLite store was written by a newer Sluice (schema \(version), this one knows \(migrations.count))")
        }
        for v in version..<migrations.count {
            try db.execute(sql: migrations[v])
            try db.execute(sql: "PRAGMA user_version = \(v + 1)")
        }
    }

    /// The schema version of the open file.
    public func schemaVersion() throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: "PRAGMA user_version") ?? 0 }
    }

    // MARK: - Helpers

    private func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await pool.write(body)
        } catch let error as DatabaseError {
            throw Self.describe(error, path)
        }
    }

    private func writeNow<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try pool.write(body)
        } catch let error as DatabaseError {
            throw Self.describe(error, path)
        }
    }

    private func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await pool.read(body)
        } catch let error as DatabaseError {
            throw Self.describe(error, path)
        }
    }

    private static func json(_ v: Value) -> String { StoreCoding.json(v) }
    private static func value(_ text: String) throws -> Value { try StoreCoding.value(text) }
    private static func time(_ d: Date) -> Double { StoreCoding.time(d) }
    private static func date(_ t: Double?) -> Date? { StoreCoding.date(t) }

    // MARK: - Flows

    public func saveFlow(_ flow: StoredFlow) async throws {
        try await write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO flows (hash, name, source, created) VALUES (?, ?, ?, ?)",
                           arguments: [flow.hash, flow.name, flow.source, Self.time(flow.created)])
        }
    }

    public func flow(hash: String) async throws -> StoredFlow? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM flows WHERE hash = ?", arguments: [hash]).map { row in
                StoredFlow(hash: row["hash"], name: row["name"], source: row["source"], created: Date(timeIntervalSince1970: row["created"]))
            }
        }
    }

    // MARK: - Runs

    private static func runRecord(_ row: Row) throws -> RunRecord {
        let status: String = row["status"]
        guard let s = RunStatus(rawValue: status) else { throw StoreError.corrupt("run \(row["id"] as String) has status '\(status)'") }
        return RunRecord(id: row["id"], flow: row["flow"], flowHash: row["flow_hash"], status: s, trigger: row["trigger"],
                         input: try value(row["input"]), idempotencyKey: row["idempotency_key"],
                         created: Date(timeIntervalSince1970: row["created"]), started: date(row["started"]),
                         ended: date(row["ended"]), error: row["error"])
    }

    private static func runArguments(_ run: RunRecord) -> StatementArguments {
        [run.id, run.flow, run.flowHash, run.status.rawValue, run.trigger, json(run.input), run.idempotencyKey,
         time(run.created), run.started.map(time), run.ended.map(time), run.error]
    }

    public func createRun(_ run: RunRecord, idempotencyWindow: Double) async throws -> RunRecord {
        try await write { db in
            if let key = run.idempotencyKey,
               let row = try Row.fetchOne(db, sql: """
                   SELECT * FROM runs WHERE flow = ? AND idempotency_key = ? AND created >= ? ORDER BY created, id LIMIT 1
                   """, arguments: [run.flow, key, Self.time(run.created) - idempotencyWindow]) {
                return try Self.runRecord(row)
            }
            try db.execute(sql: """
                INSERT INTO runs (id, flow, flow_hash, status, trigger, input, idempotency_key, created, started, ended, error)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: Self.runArguments(run))
            return run
        }
    }

    public func run(id: String) async throws -> RunRecord? {
        try await read { db in try Row.fetchOne(db, sql: "SELECT * FROM runs WHERE id = ?", arguments: [id]).map(Self.runRecord) }
    }

    public func runs(_ filter: RunFilter) async throws -> [RunRecord] {
        try await read { db in
            var sql = "SELECT * FROM runs WHERE 1"
            var arguments: StatementArguments = []
            if let flow = filter.flow {
                sql += " AND flow = ?"
                arguments += [flow]
            }
            if let statuses = filter.statuses {
                sql += " AND status IN (\(statuses.map { _ in "?" }.joined(separator: ",")))"
                for s in statuses { arguments += [s.rawValue] }
            }
            sql += " ORDER BY created DESC, id DESC LIMIT ?"
            arguments += [filter.limit]
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map(Self.runRecord)
        }
    }

    // MARK: - Task attempts and checkpoints

    public func commit(_ batch: StoreBatch) async throws {
        if batch.isEmpty && batch.fence == nil { return }
        // Written on the calling thread: a task's checkpoint is small and its caller waits for
        // it anyway, and the hop to GRDB's queue and back cost as much as the write.
        try writeNow { db in
            if let fence = batch.fence {
                let generation = try Int64.fetchOne(db.cachedStatement(sql: "SELECT generation FROM queue WHERE run_id = ?"),
                                                    arguments: [fence.name])
                if generation != fence.generation {
                    throw StoreError.leaseLost("run \(fence.name) is no longer claimed by \(fence.holder) (generation \(fence.generation))")
                }
            }
            if !batch.runs.isEmpty {
                let statement = try db.cachedStatement(sql: """
                    UPDATE runs SET flow = ?2, flow_hash = ?3, status = ?4, trigger = ?5, input = ?6, idempotency_key = ?7,
                        created = ?8, started = ?9, ended = ?10, error = ?11 WHERE id = ?1
                    """)
                for run in batch.runs {
                    try statement.execute(arguments: Self.runArguments(run))
                    if db.changesCount == 0 { throw StoreError.notFound("run \(run.id)") }
                }
            }
            if !batch.attempts.isEmpty {
                let statement = try db.cachedStatement(sql: """
                    INSERT INTO attempts (run_id, task, attempt, status, started, ended, error) VALUES (?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (run_id, task, attempt) DO UPDATE SET
                        status = excluded.status, started = excluded.started, ended = excluded.ended, error = excluded.error
                    """)
                for a in batch.attempts {
                    try statement.execute(arguments: [a.runID, a.task, a.attempt, a.status.rawValue, Self.time(a.started),
                                                      a.ended.map(Self.time), a.error])
                }
            }
            if !batch.checkpoints.isEmpty {
                let statement = try db.cachedStatement(sql: "INSERT OR REPLACE INTO checkpoints (run_id, task, output) VALUES (?, ?, ?)")
                for c in batch.checkpoints { try statement.execute(arguments: [c.runID, c.key, Self.json(c.output)]) }
            }
            if !batch.events.isEmpty {
                let statement = try db.cachedStatement(sql: "INSERT INTO run_events (run_id, event) VALUES (?, ?)")
                for e in batch.events { try statement.execute(arguments: [e.runID, Self.json(e.event)]) }
            }
            if !batch.materializations.isEmpty {
                let upsert = try db.cachedStatement(sql: """
                    INSERT INTO materializations (id, asset, partition, run_id, status, started, ended, version, summary, error)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (id) DO UPDATE SET
                        asset = excluded.asset, partition = excluded.partition, run_id = excluded.run_id, status = excluded.status,
                        started = excluded.started, ended = excluded.ended, version = excluded.version,
                        summary = excluded.summary, error = excluded.error
                    """)
                let clearInputs = try db.cachedStatement(sql: "DELETE FROM materialization_inputs WHERE materialization_id = ?")
                let addInput = try db.cachedStatement(sql: """
                    INSERT INTO materialization_inputs (materialization_id, position, asset, partition, input_id) VALUES (?, ?, ?, ?, ?)
                    """)
                for m in batch.materializations {
                    try upsert.execute(arguments: [m.id, m.asset, m.partition, m.runID, m.status.rawValue, Self.time(m.started),
                                                   m.ended.map(Self.time), m.version, Self.json(m.summary), m.error])
                    // A replaced materialization's lineage is replaced with it.
                    try clearInputs.execute(arguments: [m.id])
                    for (position, input) in m.inputs.enumerated() {
                        try addInput.execute(arguments: [m.id, position, input.asset, input.partition, input.materialization])
                    }
                }
            }
            if !batch.audit.isEmpty {
                // The id is AUTOINCREMENT's: rising in the order of insertion, never reused.
                let statement = try db.cachedStatement(sql: """
                    INSERT INTO audit_log (time, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)
                    """)
                for e in batch.audit {
                    try statement.execute(arguments: [Self.time(e.time), e.actor, e.action, e.target, Self.json(e.detail)])
                }
            }
            if let fence = batch.fence, batch.finishesClaim {
                try db.execute(sql: "DELETE FROM queue WHERE run_id = ?", arguments: [fence.name])
            }
        }
    }

    public func attempts(runID: String) async throws -> [TaskAttempt] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM attempts WHERE run_id = ? ORDER BY started, rowid", arguments: [runID]).map { row in
                let status: String = row["status"]
                guard let s = TaskAttempt.Status(rawValue: status) else { throw StoreError.corrupt("attempt status '\(status)'") }
                return TaskAttempt(runID: row["run_id"], task: row["task"], attempt: row["attempt"], status: s,
                                   started: Date(timeIntervalSince1970: row["started"]), ended: Self.date(row["ended"]), error: row["error"])
            }
        }
    }

    public func checkpoints(runID: String) async throws -> [String: Value] {
        try await read { db in
            var out: [String: Value] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT task, output FROM checkpoints WHERE run_id = ?", arguments: [runID]) {
                out[row["task"]] = try Self.value(row["output"])
            }
            return out
        }
    }

    // MARK: - Run event log

    public func events(runID: String) async throws -> [Value] {
        try await read { db in
            try String.fetchAll(db, sql: "SELECT event FROM run_events WHERE run_id = ? ORDER BY seq", arguments: [runID]).map(Self.value)
        }
    }

    // MARK: - Assets and audit

    private static let materializationColumns = "id, asset, partition, run_id, status, started, ended, version, summary, error"

    /// The materializations `sql` selects (`materializationColumns`, in the order wanted), each
    /// with its inputs. Both reads see the same snapshot: a pool read is one transaction.
    private static func materializations(_ db: Database, sql: String, arguments: StatementArguments) throws -> [Materialization] {
        let rows = try Row.fetchAll(db, sql: sql, arguments: arguments)
        if rows.isEmpty { return [] }
        let ids: [String] = rows.map { $0["id"] }
        var inputs: [String: [Materialization.Input]] = [:]
        // In slices, well below SQLite's limit on the number of parameters.
        for start in stride(from: 0, to: ids.count, by: 500) {
            let slice = ids[start..<min(start + 500, ids.count)]
            let found = try Row.fetchAll(db, sql: """
                SELECT materialization_id, asset, partition, input_id FROM materialization_inputs
                WHERE materialization_id IN (\(slice.map { _ in "?" }.joined(separator: ","))) ORDER BY materialization_id, position
                """, arguments: StatementArguments(Array(slice)))
            for row in found {
                inputs[row["materialization_id"], default: []].append(
                    Materialization.Input(asset: row["asset"], partition: row["partition"], materialization: row["input_id"]))
            }
        }
        return try rows.map { row in
            let id: String = row["id"]
            let status: String = row["status"]
            guard let s = Materialization.Status(rawValue: status) else {
                throw StoreError.corrupt("materialization \(id) has status '\(status)'")
            }
            return Materialization(id: id, asset: row["asset"], partition: row["partition"], runID: row["run_id"], status: s,
                                   started: Date(timeIntervalSince1970: row["started"]), ended: date(row["ended"]),
                                   version: row["version"], summary: try value(row["summary"]), error: row["error"],
                                   inputs: inputs[id] ?? [])
        }
    }

    public func materializations(_ filter: MaterializationFilter) async throws -> [Materialization] {
        try await read { db in
            var conditions = ["1"]
            var arguments: StatementArguments = []
            if let asset = filter.asset {
                conditions.append("asset = ?")
                arguments += [asset]
            }
            if let partitions = filter.partitions {
                conditions.append("partition IN (\(partitions.map { _ in "?" }.joined(separator: ",")))")
                arguments += StatementArguments(partitions)
            }
            if let runID = filter.runID {
                conditions.append("run_id = ?")
                arguments += [runID]
            }
            if let statuses = filter.statuses {
                conditions.append("status IN (\(statuses.map { _ in "?" }.joined(separator: ",")))")
                for s in statuses { arguments += [s.rawValue] }
            }
            // With latestOnly, only the newest matching row of each (asset, partition) is
            // numbered 1; the limit applies after that.
            let newest = filter.latestOnly ? "row_number() OVER (PARTITION BY asset, partition ORDER BY started DESC, id DESC)" : "1"
            arguments += [filter.limit]
            return try Self.materializations(db, sql: """
                SELECT \(Self.materializationColumns) FROM (
                    SELECT \(Self.materializationColumns), \(newest) AS newest FROM materializations
                    WHERE \(conditions.joined(separator: " AND ")))
                WHERE newest = 1 ORDER BY started DESC, id DESC LIMIT ?
                """, arguments: arguments)
        }
    }

    public func readers(of asset: String, partition: String?, limit: Int) async throws -> [Materialization] {
        try await read { db in
            var arguments: StatementArguments = [asset]
            if let partition { arguments += [partition] }
            arguments += [limit]
            return try Self.materializations(db, sql: """
                SELECT \(Self.materializationColumns) FROM materializations
                WHERE id IN (SELECT materialization_id FROM materialization_inputs
                             WHERE asset = ?\(partition == nil ? "" : " AND partition = ?"))
                ORDER BY started DESC, id DESC LIMIT ?
                """, arguments: arguments)
        }
    }

    public func audit(_ filter: AuditFilter) async throws -> [AuditEntry] {
        try await read { db in
            var sql = "SELECT id, time, actor, action, target, detail FROM audit_log WHERE 1"
            var arguments: StatementArguments = []
            if let target = filter.target {
                sql += " AND target = ?"
                arguments += [target]
            }
            if let prefix = filter.actionPrefix {
                // substr compares characters exactly, where LIKE would read % and _ as wildcards.
                sql += " AND substr(action, 1, ?) = ?"
                arguments += [prefix.unicodeScalars.count, prefix]
            }
            sql += " ORDER BY id DESC LIMIT ?"
            arguments += [filter.limit]
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
                AuditEntry(id: row["id"], time: Date(timeIntervalSince1970: row["time"]), actor: row["actor"], action: row["action"],
                           target: row["target"], detail: try Self.value(row["detail"]))
            }
        }
    }

    // MARK: - Result cache

    public func cachedResult(key: String, now: Date) async throws -> Value? {
        let found = try await read { db in
            try Row.fetchOne(db, sql: "SELECT value, expires FROM results WHERE key = ?", arguments: [key])
                .map { row -> (String, Double) in (row["value"], row["expires"]) }
        }
        guard let (text, expires) = found else { return nil }
        if expires <= Self.time(now) {
            // Expired entries are deleted, not only skipped.
            try await write { db in
                try db.execute(sql: "DELETE FROM results WHERE key = ? AND expires <= ?", arguments: [key, Self.time(now)])
            }
            return nil
        }
        return try Self.value(text)
    }

    public func saveResult(key: String, value: Value, expires: Date) async throws {
        try await write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO results (key, value, expires) VALUES (?, ?, ?)",
                           arguments: [key, Self.json(value), Self.time(expires)])
        }
    }

    public func purgeExpiredResults(now: Date) async throws -> Int {
        try await write { db in
            try db.execute(sql: "DELETE FROM results WHERE expires <= ?", arguments: [Self.time(now)])
            return db.changesCount
        }
    }

    // MARK: - Key-value cache

    private static func entry(_ row: Row) throws -> KVEntry {
        KVEntry(key: row["key"], value: try value(row["value"]), revision: row["revision"], expires: date(row["expires"]))
    }

    private static func live(_ db: Database, _ bucket: KVBucket, _ key: String, _ now: Date) throws -> KVEntry? {
        try Row.fetchOne(db, sql: "SELECT * FROM kv WHERE bucket = ? AND key = ? AND (expires IS NULL OR expires > ?)",
                         arguments: [bucket.rawValue, key, time(now)]).map(entry)
    }

    private static func store(_ db: Database, _ bucket: KVBucket, _ key: String, _ value: Value, ttl: Double?, _ now: Date) throws -> KVEntry {
        try db.execute(sql: """
            INSERT INTO kv_revisions (bucket, revision) VALUES (?, 1)
            ON CONFLICT (bucket) DO UPDATE SET revision = revision + 1
            """, arguments: [bucket.rawValue])
        let revision = try Int64.fetchOne(db, sql: "SELECT revision FROM kv_revisions WHERE bucket = ?", arguments: [bucket.rawValue])!
        let expires = ttl.map { now.addingTimeInterval($0) }
        try db.execute(sql: "INSERT OR REPLACE INTO kv (bucket, key, value, revision, expires) VALUES (?, ?, ?, ?, ?)",
                       arguments: [bucket.rawValue, key, json(value), revision, expires.map(time)])
        return KVEntry(key: key, value: value, revision: revision, expires: expires)
    }

    public func get(_ bucket: KVBucket, _ key: String, now: Date) async throws -> KVEntry? {
        try await read { db in try Self.live(db, bucket, key, now) }
    }

    public func put(_ bucket: KVBucket, _ key: String, _ value: Value, ttl: Double?, now: Date) async throws -> KVEntry {
        try await write { db in try Self.store(db, bucket, key, value, ttl: ttl, now) }
    }

    public func create(_ bucket: KVBucket, _ key: String, _ value: Value, ttl: Double?, now: Date) async throws -> KVEntry? {
        try await write { db in
            if try Self.live(db, bucket, key, now) != nil { return nil }
            return try Self.store(db, bucket, key, value, ttl: ttl, now)
        }
    }

    public func compareAndSet(_ bucket: KVBucket, _ key: String, _ value: Value, revision: Int64, ttl: Double?,
                              now: Date) async throws -> KVEntry? {
        try await write { db in
            guard let current = try Self.live(db, bucket, key, now), current.revision == revision else { return nil }
            return try Self.store(db, bucket, key, value, ttl: ttl, now)
        }
    }

    public func delete(_ bucket: KVBucket, _ key: String, now: Date) async throws -> Bool {
        try await write { db in
            let wasLive = try Self.live(db, bucket, key, now) != nil
            try db.execute(sql: "DELETE FROM kv WHERE bucket = ? AND key = ?", arguments: [bucket.rawValue, key])
            return wasLive
        }
    }

    public func purgeExpiredEntries(now: Date) async throws -> Int {
        try await write { db in
            try db.execute(sql: "DELETE FROM kv WHERE expires IS NOT NULL AND expires <= ?", arguments: [Self.time(now)])
            return db.changesCount
        }
    }

    public func list(_ bucket: KVBucket, prefix: String, now: Date) async throws -> [KVEntry] {
        try await read { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM kv WHERE bucket = ? AND substr(key, 1, ?) = ? AND (expires IS NULL OR expires > ?) ORDER BY key
                """, arguments: [bucket.rawValue, prefix.unicodeScalars.count, prefix, Self.time(now)]).map(Self.entry)
        }
    }

    public func changes(_ bucket: KVBucket, prefix: String, afterRevision: Int64, now: Date) async throws -> [KVEntry] {
        try await read { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM kv WHERE bucket = ? AND revision > ? AND substr(key, 1, ?) = ?
                    AND (expires IS NULL OR expires > ?) ORDER BY revision
                """, arguments: [bucket.rawValue, afterRevision, prefix.unicodeScalars.count, prefix, Self.time(now)]).map(Self.entry)
        }
    }

    // MARK: - Leases

    private static func lease(_ row: Row) -> Lease {
        Lease(name: row["name"], holder: row["holder"], generation: row["generation"], expires: Date(timeIntervalSince1970: row["expires"]))
    }

    public func acquireLease(_ name: String, holder: String, ttl: Double, now: Date) async throws -> Lease? {
        try await write { db in
            let expires = now.addingTimeInterval(ttl)
            let current = try Row.fetchOne(db, sql: "SELECT * FROM leases WHERE name = ?", arguments: [name]).map(Self.lease)
            var generation = (current?.generation ?? 0) + 1
            if let current, current.expires > now {
                guard current.holder == holder else { return nil }
                generation = current.generation
            }
            try db.execute(sql: "INSERT OR REPLACE INTO leases (name, holder, generation, expires) VALUES (?, ?, ?, ?)",
                           arguments: [name, holder, generation, Self.time(expires)])
            return Lease(name: name, holder: holder, generation: generation, expires: expires)
        }
    }

    public func renewLease(_ lease: Lease, ttl: Double, now: Date) async throws -> Lease? {
        try await write { db in
            let expires = now.addingTimeInterval(ttl)
            try db.execute(sql: "UPDATE leases SET expires = ? WHERE name = ? AND holder = ? AND generation = ? AND expires > ?",
                           arguments: [Self.time(expires), lease.name, lease.holder, lease.generation, Self.time(now)])
            return db.changesCount == 1 ? Lease(name: lease.name, holder: lease.holder, generation: lease.generation, expires: expires) : nil
        }
    }

    public func releaseLease(_ lease: Lease) async throws {
        try await write { db in
            // The generation stays, so the next holder's is higher.
            try db.execute(sql: "UPDATE leases SET holder = '', expires = ? WHERE name = ? AND holder = ? AND generation = ?",
                           arguments: [Self.time(.distantPast), lease.name, lease.holder, lease.generation])
        }
    }

    public func lease(_ name: String, now: Date) async throws -> Lease? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM leases WHERE name = ? AND expires > ?", arguments: [name, Self.time(now)]).map(Self.lease)
        }
    }

    // MARK: - Run queue

    public func enqueue(runID: String, now: Date) async throws {
        try await write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO queue (run_id, queued) VALUES (?, ?)", arguments: [runID, Self.time(now)])
        }
    }

    public func claimRun(worker: String, ttl: Double, now: Date) async throws -> Lease? {
        try await write { db in
            guard let row = try Row.fetchOne(db, sql: """
                SELECT run_id, generation FROM queue WHERE worker IS NULL OR expires <= ? ORDER BY queued, rowid LIMIT 1
                """, arguments: [Self.time(now)]) else { return nil }
            return try Self.claim(db, runID: row["run_id"], generation: row["generation"] + 1, worker: worker, ttl: ttl, now: now)
        }
    }

    public func claim(runID: String, worker: String, ttl: Double, now: Date) async throws -> Lease? {
        try await write { db in
            guard let generation = try Int64.fetchOne(db, sql: """
                SELECT generation FROM queue WHERE run_id = ? AND (worker IS NULL OR expires <= ?)
                """, arguments: [runID, Self.time(now)]) else { return nil }
            return try Self.claim(db, runID: runID, generation: generation + 1, worker: worker, ttl: ttl, now: now)
        }
    }

    private static func claim(_ db: Database, runID: String, generation: Int64, worker: String, ttl: Double, now: Date) throws -> Lease {
        let expires = now.addingTimeInterval(ttl)
        try db.execute(sql: "UPDATE queue SET worker = ?, generation = ?, expires = ? WHERE run_id = ?",
                       arguments: [worker, generation, time(expires), runID])
        return Lease(name: runID, holder: worker, generation: generation, expires: expires)
    }

    public func heartbeat(_ claim: Lease, ttl: Double, now: Date) async throws -> Lease? {
        try await write { db in
            let expires = now.addingTimeInterval(ttl)
            try db.execute(sql: "UPDATE queue SET expires = ? WHERE run_id = ? AND generation = ?",
                           arguments: [Self.time(expires), claim.name, claim.generation])
            return db.changesCount == 1 ? Lease(name: claim.name, holder: claim.holder, generation: claim.generation, expires: expires) : nil
        }
    }

    public func finish(_ claim: Lease) async throws -> Bool {
        try await write { db in
            try db.execute(sql: "DELETE FROM queue WHERE run_id = ? AND generation = ?", arguments: [claim.name, claim.generation])
            return db.changesCount == 1
        }
    }
}
