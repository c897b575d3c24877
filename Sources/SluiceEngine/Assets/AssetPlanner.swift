import Foundation
import SluiceCore

/// Where one partition of an asset stands.
public struct PartitionStatus: Sendable, Equatable {
    public enum State: String, Sendable, CaseIterable {
        /// Stored and up to date with its definition and its upstream values.
        case materialized
        /// Stored, but its definition changed or an upstream value changed (or is itself stale) since.
        case stale
        /// Never materialized.
        case missing
        /// The last attempt failed (an older value may still be stored).
        case failed
        /// Being materialized now.
        case running
    }

    public var state: State
    /// The newest successful materialization, if any.
    public var latest: Materialization?
    /// The newest attempt, whatever its status.
    public var lastAttempt: Materialization?
    /// Why it is stale, failed or missing.
    public var reason: String?
}

/// What one materialization run does: for each asset task, the partitions it computes and the
/// ones it loads for the computed assets downstream of it; which plain tasks run and which only
/// pass their event on. It travels in the run's input (`$assets`), so a resumed run does
/// exactly what was planned.
public struct AssetRunPlan: Sendable, Equatable {
    public enum Role: Sendable, Equatable {
        /// Not needed for the target: the event stops here.
        case skip
        /// A plain task nothing computed depends on: passes its event on without running.
        case forward
        /// A plain task a computed asset depends on: runs as usual.
        case run
        /// An asset: computes `compute` and loads `load`, then emits.
        case asset(compute: [String], load: [String])
    }

    /// The asset task materialized, and its partition (`""` when unpartitioned).
    public var target: String
    public var partition: String
    public var compute: [String: [String]]
    public var load: [String: [String]]
    public var run: Set<String>
    public var forward: Set<String>
    /// When the plan was made: an upstream partition it computes that another run materialized
    /// since then (same definition) is loaded instead, so runs sharing a store compute it once.
    public var planned: Date?

    public init(target: String, partition: String, compute: [String: [String]] = [:], load: [String: [String]] = [:],
                run: Set<String> = [], forward: Set<String> = [], planned: Date? = nil) {
        self.target = target
        self.partition = partition
        self.compute = compute
        self.load = load
        self.run = run
        self.forward = forward
        self.planned = planned
    }

    public func role(of task: String) -> Role {
        if compute[task] != nil || load[task] != nil { return .asset(compute: compute[task] ?? [], load: load[task] ?? []) }
        if run.contains(task) { return .run }
        if forward.contains(task) { return .forward }
        return .skip
    }

    /// How many asset partitions it computes.
    public var computeCount: Int { compute.values.reduce(0) { $0 + $1.count } }

    /// The key of the plan in a run's input.
    public static let inputKey = "$assets"

    public var value: Value {
        func map(_ d: [String: [String]]) -> Value {
            var o = Value.Object()
            for (k, v) in d.sorted(by: { $0.key < $1.key }) { o[k] = .array(v.map(Value.string)) }
            return .object(o)
        }
        var o: Value.Object = ["target": .string(target), "partition": .string(partition), "compute": map(compute), "load": map(load),
                               "run": .array(run.sorted().map(Value.string)), "forward": .array(forward.sorted().map(Value.string))]
        if let planned { o["planned"] = .double(planned.timeIntervalSince1970) }
        return .object(o)
    }

    public init?(value: Value) {
        guard case .string(let target)? = value["target"], case .string(let partition)? = value["partition"] else { return nil }
        func map(_ v: Value?) -> [String: [String]] {
            var d: [String: [String]] = [:]
            for (k, list) in v?.objectValue ?? [:] { d[k] = list.arrayValue?.compactMap(\.stringValue) ?? [] }
            return d
        }
        func set(_ v: Value?) -> Set<String> { Set(v?.arrayValue?.compactMap(\.stringValue) ?? []) }
        self.init(target: target, partition: partition, compute: map(value["compute"]), load: map(value["load"]), run: set(value["run"]),
                  forward: set(value["forward"]), planned: value["planned"]?.doubleValue.map(Date.init(timeIntervalSince1970:)))
    }
}

/// Works out partition statuses and materialization plans from the store's records.
public struct AssetPlanner {
    public let graph: AssetGraph
    public let store: any Store
    public let now: Date

    private struct Node: Hashable {
        let task: String
        let partition: String
    }

    private var records: [String: [String: (ok: Materialization?, last: Materialization?)]] = [:]
    private var statuses: [Node: PartitionStatus] = [:]

    public init(graph: AssetGraph, store: any Store, now: Date) {
        self.graph = graph
        self.store = store
        self.now = now
    }

    /// The newest successful and the newest of any status, per partition of `task`'s asset.
    private mutating func records(of task: String) async throws -> [String: (ok: Materialization?, last: Materialization?)] {
        if let cached = records[task] { return cached }
        guard let key = graph.assets[task]?.key else { return [:] }
        var found: [String: (ok: Materialization?, last: Materialization?)] = [:]
        for m in try await store.materializations(MaterializationFilter(asset: key, latestOnly: true, limit: .max)) {
            found[m.partition, default: (nil, nil)].last = m
        }
        for m in try await store.materializations(MaterializationFilter(asset: key, statuses: [.materialized], latestOnly: true, limit: .max)) {
            found[m.partition, default: (nil, nil)].ok = m
        }
        records[task] = found
        return found
    }

    /// The statuses of many partitions of one asset (every partition so far when `partitions` is nil).
    public mutating func statuses(of task: String, partitions: [String]? = nil) async throws -> [(String, PartitionStatus)] {
        let keys = partitions ?? graph.assets[task]?.partitions?.keys(now: now) ?? [""]
        var out: [(String, PartitionStatus)] = []
        for key in keys { out.append((key, try await status(of: task, partition: key))) }
        return out
    }

    public mutating func status(of task: String, partition: String) async throws -> PartitionStatus {
        let node = Node(task: task, partition: partition)
        if let known = statuses[node] { return known }
        let found = try await records(of: task)[partition]
        var status = PartitionStatus(state: .materialized, latest: found?.ok, lastAttempt: found?.last)
        if let last = found?.last, last.status == .running {
            status.state = .running
            status.reason = "run \(last.runID) is materializing it"
        } else if let last = found?.last, last.status == .failed {
            status.state = .failed
            status.reason = last.error ?? "failed in run \(last.runID)"
        } else if let ok = found?.ok {
            if ok.version != graph.versions[task] {
                status.state = .stale
                status.reason = "its definition changed since run \(ok.runID)"
            } else {
                status.reason = nil
                outer: for upstream in graph.upstream[task] ?? [] {
                    let upKey = graph.assets[upstream]?.key ?? upstream
                    for k in try graph.upstreamKeys(of: partition, task: task, upstream: upstream, now: now) {
                        let up = try await self.status(of: upstream, partition: k)
                        let label = k.isEmpty ? upKey : "\(upKey) [\(k)]"
                        if up.state != .materialized {
                            status.state = .stale
                            status.reason = "upstream \(label) is \(up.state.rawValue)"
                            break outer
                        }
                        if let read = up.latest, !ok.inputs.contains(where: { $0.asset == upKey && $0.partition == k && $0.materialization == read.id }) {
                            status.state = .stale
                            status.reason = "upstream \(label) was materialized again (run \(read.runID))"
                            break outer
                        }
                    }
                }
            }
        } else {
            status.state = .missing
            status.reason = "never materialized"
        }
        statuses[node] = status
        return status
    }

    /// What materializing `partition` of `target` takes: each upstream partition that is
    /// missing, failed or stale is computed first (once, however many assets read it); the
    /// others are loaded. `force` recomputes the target even when it is up to date;
    /// `withUpstream` recomputes every upstream asset too.
    public mutating func plan(target: String, partition: String, force: Bool = false, withUpstream: Bool = false) async throws -> AssetRunPlan {
        try graph.validate(partition, of: target)
        var decided: [Node: Bool] = [:]
        var order: [Node] = []
        func decide(_ task: String, _ partition: String, force: Bool, planner: inout AssetPlanner) async throws -> Bool {
            let node = Node(task: task, partition: partition)
            if let d = decided[node] { return d }
            var upstreamChanges = false
            for upstream in planner.graph.upstream[task] ?? [] {
                for k in try planner.graph.upstreamKeys(of: partition, task: task, upstream: upstream, now: planner.now) {
                    if try await decide(upstream, k, force: withUpstream, planner: &planner) { upstreamChanges = true }
                }
            }
            let status = try await planner.status(of: task, partition: partition)
            let compute = force || upstreamChanges || status.state != .materialized
            decided[node] = compute
            order.append(node)
            return compute
        }
        _ = try await decide(target, partition, force: force, planner: &self)

        var plan = AssetRunPlan(target: target, partition: partition, planned: now)
        for node in order where decided[node] == true { plan.compute[node.task, default: []].append(node.partition) }
        // Loaded: what a computed asset reads and is not computed itself.
        for (task, keys) in plan.compute {
            for upstream in graph.upstream[task] ?? [] {
                for key in keys {
                    for k in try graph.upstreamKeys(of: key, task: task, upstream: upstream, now: now) where decided[Node(task: upstream, partition: k)] == false {
                        if !(plan.load[upstream]?.contains(k) ?? false) { plan.load[upstream, default: []].append(k) }
                    }
                }
            }
        }
        // Plain tasks feeding a computed asset run; the other ancestors of the target only pass events on.
        for task in plan.compute.keys {
            var stack = graph.definition.task(named: task)?.dependencies ?? []
            while let next = stack.popLast() {
                guard graph.assets[next] == nil, plan.run.insert(next).inserted else { continue }
                stack.append(contentsOf: graph.definition.task(named: next)?.dependencies ?? [])
            }
        }
        for task in graph.ancestors(of: target).union([target]) where plan.role(of: task) == .skip {
            plan.forward.insert(task)
        }
        return plan
    }
}
