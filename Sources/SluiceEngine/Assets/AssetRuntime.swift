import Foundation
import SluiceCore
import Synchronization

/// What asset tasks need while they run: the I/O managers their values go through and the store
/// their materializations are recorded in. One per process is typical (`Engine.assets`).
public final class AssetRuntime: Sendable {
    /// Where materializations were recorded, for reading memory values back after a restart.
    public let store: (any Store)?
    public let memory = MemoryIOManager()
    private let tables = Mutex<TableManagers?>(nil)
    private let custom = Mutex<[String: any IOManager]>([:])

    /// How long a run's claim on an upstream partition it computes lasts without renewal.
    public let claimTTL: Double
    /// How long a run waits for another run to compute an upstream partition it reads.
    public let sharedWait: Duration

    public init(store: (any Store)? = nil, claimTTL: Double = 15, sharedWait: Duration = .seconds(3600)) {
        self.store = store
        self.claimTTL = claimTTL
        self.sharedWait = sharedWait
    }

    /// The claims that make runs on the store compute a shared upstream partition once.
    func claims(clock: any EngineClock) -> AssetClaims? {
        store.map { AssetClaims(store: $0, clock: clock, ttl: claimTTL, maxWait: sharedWait) }
    }

    /// Opens the I/O manager of `io: {table: {name, url?}}`: the table `name` in the store's
    /// database when `url` is nil, else in the database at `url`.
    public typealias TableManagers = @Sendable (_ name: String, _ url: String?) throws -> any IOManager

    /// Makes `io: {table: ...}` work (`sluice` registers the SQLite and PostgreSQL ones).
    public func setTableManager(_ make: @escaping TableManagers) {
        tables.withLock { $0 = make }
    }

    /// Registers an I/O manager for assets whose key is `asset`, overriding what the flow
    /// declares (a program's own storage).
    public func register(asset: String, _ manager: any IOManager) {
        custom.withLock { $0[asset] = manager }
    }

    public func manager(for spec: AssetSpec) throws -> any IOManager {
        if let registered = custom.withLock({ $0[spec.key] }) { return registered }
        switch spec.io {
        case .memory: return memory
        case .files(let path, let format): return FileIOManager(directory: path, format: format)
        case .table(let name, let url):
            guard let make = tables.withLock({ $0 }) else {
                throw AssetError("asset '\(spec.key)' uses io: table, which this process cannot write (no table I/O is registered); use memory or files")
            }
            return try make(name, url)
        }
    }

    /// The checkpoint key of one computed partition of an asset task.
    static func checkpointKey(task: String, partition: String) -> String { "\(task)[\(partition)]" }

    /// Reads a stored value. A memory value made by another process comes from the checkpoint
    /// of the run that made it, while the store keeps that run.
    public func read(task: String, asset spec: AssetSpec, partition: String) async throws -> Value {
        let manager = try manager(for: spec)
        do {
            return try await manager.read(asset: spec.key, partition: partition)
        } catch let error as AssetError {
            guard manager is MemoryIOManager, let store else { throw error }
            let latest = try await store.materializations(MaterializationFilter(asset: spec.key, partitions: [partition],
                                                                                statuses: [.materialized], latestOnly: true, limit: 1))
            guard let m = latest.first,
                  let saved = try await store.checkpoints(runID: m.runID)[Self.checkpointKey(task: task, partition: partition)],
                  let output = TaskOutput(checkpoint: saved), let value = output.assetValue else { throw error }
            _ = try await memory.write(value, asset: spec.key, partition: partition)
            return value
        }
    }
}

extension TaskOutput {
    /// The value an asset task produced: its event's data, or the array of its events' data.
    var assetValue: Value? {
        switch storage {
        case .none: return nil
        case .one(let e): return e.data
        case .many(let es): return .array(es.map(\.data))
        }
    }
}
