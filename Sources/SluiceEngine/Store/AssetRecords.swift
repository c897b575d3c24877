import Foundation
import SluiceCore

/// One attempt to compute one partition of an asset: which run did it, when, with which version
/// of the asset's definition, what came out, and which upstream materializations it read
/// (its lineage edges).
public struct Materialization: Sendable, Equatable {
    public enum Status: String, Sendable, CaseIterable {
        case running, materialized, failed
    }

    /// One upstream materialization this one read.
    public struct Input: Sendable, Hashable {
        public var asset: String
        public var partition: String
        public var materialization: String

        public init(asset: String, partition: String, materialization: String) {
            self.asset = asset
            self.partition = partition
            self.materialization = materialization
        }
    }

    /// Unique: `Materialization.id(run:asset:partition:)`, `<run>/<asset>[<partition>]`.
    public var id: String
    public var asset: String
    /// The partition key; empty for an unpartitioned asset.
    public var partition: String
    public var runID: String
    public var status: Status
    public var started: Date
    public var ended: Date?
    /// SHA-256 of what defines the asset (task type, config, asset settings): when the
    /// definition changes, earlier materializations are stale.
    public var version: String
    /// A short description of the value written (its type, rows, bytes, where it went).
    public var summary: Value
    public var error: String?
    public var inputs: [Input]

    public init(id: String, asset: String, partition: String, runID: String, status: Status, started: Date, ended: Date? = nil,
                version: String, summary: Value = .null, error: String? = nil, inputs: [Input] = []) {
        self.id = id
        self.asset = asset
        self.partition = partition
        self.runID = runID
        self.status = status
        self.started = started
        self.ended = ended
        self.version = version
        self.summary = summary
        self.error = error
        self.inputs = inputs
    }

    public static func id(run: String, asset: String, partition: String) -> String {
        "\(run)/\(asset)[\(partition)]"
    }
}

public struct MaterializationFilter: Sendable, Equatable {
    public var asset: String?
    /// Only these partitions (nil: any).
    public var partitions: [String]?
    public var runID: String?
    public var statuses: Set<Materialization.Status>?
    /// Only the newest matching materialization of each (asset, partition).
    public var latestOnly: Bool
    public var limit: Int

    public init(asset: String? = nil, partitions: [String]? = nil, runID: String? = nil, statuses: Set<Materialization.Status>? = nil,
                latestOnly: Bool = false, limit: Int = 1000) {
        self.asset = asset
        self.partitions = partitions
        self.runID = runID
        self.statuses = statuses
        self.latestOnly = latestOnly
        self.limit = limit
    }

    /// Whether `m` passes every condition but `latestOnly` and `limit`.
    public func matches(_ m: Materialization) -> Bool {
        (asset.map { $0 == m.asset } ?? true) && (partitions.map { $0.contains(m.partition) } ?? true)
            && (runID.map { $0 == m.runID } ?? true) && (statuses.map { $0.contains(m.status) } ?? true)
    }

    /// Newest first (by start, then id); with `latestOnly`, one per (asset, partition). Backends
    /// that filter in memory share this ordering.
    public func select(_ all: some Sequence<Materialization>) -> [Materialization] {
        var list = all.filter(matches).sorted { ($0.started, $0.id) > ($1.started, $1.id) }
        if latestOnly {
            var seen = Set<String>()
            list = list.filter { seen.insert($0.asset + "\u{0}" + $0.partition).inserted }
        }
        return Array(list.prefix(limit))
    }
}

/// Who or what did something to a run, a gate, a backfill or an asset, and when. The audit log
/// is append-only.
public struct AuditEntry: Sendable, Equatable {
    /// Assigned by the store, rising in the order entries were appended (0 before that).
    public var id: Int64
    public var time: Date
    /// A person (`alice`), or a process (`worker host:123`, `schedule nightly`).
    public var actor: String
    /// `run.started`, `run.cancelled`, `gate.approved`, `gate.rejected`, `gate.signalled`, `backfill.started`, …
    public var action: String
    /// What it was done to: a run id, a backfill id, an asset key.
    public var target: String
    public var detail: Value

    public init(id: Int64 = 0, time: Date, actor: String, action: String, target: String, detail: Value = .emptyObject) {
        self.id = id
        self.time = time
        self.actor = actor
        self.action = action
        self.target = target
        self.detail = detail
    }
}

public struct AuditFilter: Sendable, Equatable {
    public var target: String?
    /// Actions starting with this (`gate.` for every gate decision).
    public var actionPrefix: String?
    public var limit: Int

    public init(target: String? = nil, actionPrefix: String? = nil, limit: Int = 100) {
        self.target = target
        self.actionPrefix = actionPrefix
        self.limit = limit
    }

    public func matches(_ e: AuditEntry) -> Bool {
        (target.map { $0 == e.target } ?? true) && (actionPrefix.map { e.action.hasPrefix($0) } ?? true)
    }
}
