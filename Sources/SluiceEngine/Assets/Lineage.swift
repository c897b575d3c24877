import Foundation
import SluiceCore

/// Partition-level lineage from the store's materialization records: what a materialization
/// read (upstream), or which materializations read it (downstream, the newest per partition).
public struct Lineage: Sendable {
    public struct Node: Sendable, Equatable {
        public var materialization: Materialization
        public var children: [Node]

        /// `{asset, partition, materialization, run, status, materialized, children}`.
        public var value: Value {
            let m = materialization
            return ["asset": .string(m.asset), "partition": .string(m.partition), "materialization": .string(m.id), "run": .string(m.runID),
                    "status": .string(m.status.rawValue), "materialized": .string(EngineEvent.iso8601(m.ended ?? m.started)),
                    "children": .array(children.map(\.value))]
        }

        /// A tree drawing, one line per materialization.
        public func lines() -> [String] {
            var out: [String] = []
            func draw(_ node: Node, prefix: String, connector: String) {
                let m = node.materialization
                let label = m.partition.isEmpty ? m.asset : "\(m.asset) [\(m.partition)]"
                out.append(prefix + connector + "\(label)  \(m.status.rawValue) \(EngineEvent.iso8601(m.ended ?? m.started))  run \(m.runID)")
                let childPrefix = prefix + (connector == "├─ " ? "│  " : connector.isEmpty ? "" : "   ")
                for (i, child) in node.children.enumerated() {
                    draw(child, prefix: childPrefix, connector: i == node.children.count - 1 ? "└─ " : "├─ ")
                }
            }
            draw(self, prefix: "", connector: "")
            return out
        }

        /// Every (asset, partition) in the tree below the root.
        public var reached: [String] {
            children.flatMap { c in [c.materialization.partition.isEmpty ? c.materialization.asset : "\(c.materialization.asset)[\(c.materialization.partition)]"] + c.reached }
        }
    }

    public let store: any Store

    public init(store: any Store) { self.store = store }

    /// The lineage of `start`, `depth` levels up or down.
    public func tree(from start: Materialization, downstream: Bool, depth: Int) async throws -> Node {
        var node = Node(materialization: start, children: [])
        guard depth > 0 else { return node }
        let next = downstream ? try await readers(of: start) : try await inputs(of: start)
        for m in next { node.children.append(try await tree(from: m, downstream: downstream, depth: depth - 1)) }
        return node
    }

    /// The materializations `m` read, as recorded.
    func inputs(of m: Materialization) async throws -> [Materialization] {
        var found: [Materialization] = []
        for input in m.inputs {
            let candidates = try await store.materializations(MaterializationFilter(asset: input.asset, partitions: [input.partition], limit: .max))
            if let read = candidates.first(where: { $0.id == input.materialization }) { found.append(read) }
        }
        return found
    }

    /// The newest materialization of each downstream (asset, partition) that read `m` itself.
    func readers(of m: Materialization) async throws -> [Materialization] {
        var seen = Set<String>()
        var found: [Materialization] = []
        for reader in try await store.readers(of: m.asset, partition: m.partition, limit: .max)
        where reader.inputs.contains(where: { $0.materialization == m.id }) && reader.status == .materialized {
            if seen.insert(reader.asset + "\u{0}" + reader.partition).inserted { found.append(reader) }
        }
        return found.sorted { ($0.asset, $0.partition) < ($1.asset, $1.partition) }
    }
}
