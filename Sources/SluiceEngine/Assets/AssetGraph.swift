import Foundation
import SluiceCore

/// The assets of a flow and how they depend on each other: each asset's nearest upstream
/// assets (looking through plain tasks between them), and the version of each definition.
public struct AssetGraph: Sendable {
    public let definition: FlowDefinition
    /// Asset tasks by task name.
    public let assets: [String: AssetSpec]
    /// Task name by asset key.
    public let taskOfKey: [String: String]
    /// For each asset task, the asset tasks it reads, through any plain tasks in between.
    public let upstream: [String: [String]]
    /// For each asset task, SHA-256 of its type, config and asset declaration.
    public let versions: [String: String]

    public init(_ definition: FlowDefinition) {
        self.definition = definition
        var assets: [String: AssetSpec] = [:]
        var taskOfKey: [String: String] = [:]
        for task in definition.tasks {
            if let asset = task.asset {
                assets[task.name] = asset
                taskOfKey[asset.key] = task.name
            }
        }
        var upstream: [String: [String]] = [:]
        var versions: [String: String] = [:]
        for (name, asset) in assets {
            guard let task = definition.task(named: name) else { continue }
            var found: [String] = []
            var seen: Set<String> = []
            var stack = task.dependencies.reversed() as [String]
            while let next = stack.popLast() {
                guard seen.insert(next).inserted, let t = definition.task(named: next) else { continue }
                if t.asset != nil { found.append(next) } else { stack.append(contentsOf: t.dependencies.reversed()) }
            }
            upstream[name] = found
            let text = [task.type, Value.object(task.config).jsonString(.canonical), asset.fingerprint,
                        task.dependencies.joined(separator: ",")].joined(separator: "\u{0}")
            versions[name] = asset.version ?? Digest.sha256Hex(Array(text.utf8))
        }
        self.assets = assets
        self.taskOfKey = taskOfKey
        self.upstream = upstream
        self.versions = versions
    }

    public var isEmpty: Bool { assets.isEmpty }

    /// The asset task named by `name`, which may be the task's name or the asset's key.
    public func task(for name: String) -> String? {
        if assets[name] != nil { return name }
        return taskOfKey[name]
    }

    /// Every task `task` depends on, directly or not.
    public func ancestors(of task: String) -> Set<String> {
        var found: Set<String> = []
        var stack = definition.task(named: task)?.dependencies ?? []
        while let next = stack.popLast() {
            guard found.insert(next).inserted else { continue }
            stack.append(contentsOf: definition.task(named: next)?.dependencies ?? [])
        }
        return found
    }

    /// The partitions of `upstream` that partition `key` of `task` reads.
    public func upstreamKeys(of key: String, task: String, upstream: String, now: Date) throws -> [String] {
        guard let down = assets[task], let up = assets[upstream] else { return [] }
        // An upstream reached through plain tasks maps by identity, like a direct one without a mapping.
        let mapping = down.mapping(from: upstream)
        if up.partitions == nil { return [""] }
        do {
            return try mapping.upstreamKeys(of: key, downstream: down.partitions, upstream: up.partitions, now: now)
        } catch {
            throw AssetError("asset '\(down.key)' [\(key)] reading '\(up.key)': \(error.message)")
        }
    }

    /// Checks a partition key against an asset's partitions (`""` for an unpartitioned asset).
    public func validate(_ key: String, of task: String) throws {
        guard let asset = assets[task] else { throw AssetError("'\(task)' is not an asset") }
        guard let partitions = asset.partitions else {
            if !key.isEmpty { throw AssetError("asset '\(asset.key)' is not partitioned; leave out --partition") }
            return
        }
        if key.isEmpty {
            throw AssetError("asset '\(asset.key)' is partitioned (\(partitions.summary)): name a partition, e.g. --partition "
                             + (partitions.keys(now: Date()).last ?? "KEY"))
        }
        do {
            try partitions.validate(key)
        } catch {
            throw AssetError("asset '\(asset.key)': \(error.message)")
        }
    }
}

extension Partitions {
    /// A few words for messages: `daily from 2025-01-01`, `static: a, b`.
    public var summary: String {
        switch self {
        case .time(let t):
            let start = t.key(ofWindowStarting: t.start)
            return "\(t.unit.rawValue) from \(start)" + (t.end.map { " to \(t.key(ofWindowStarting: t.floor($0.addingTimeInterval(-1))))" } ?? "")
        case .list(let keys): return "static: " + keys.joined(separator: ", ")
        case .multi(let dims): return "multi: " + dims.map { "\($0.name) (\($0.partitions.summary))" }.joined(separator: " × ")
        }
    }
}
