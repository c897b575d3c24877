import Foundation
import SluiceCore

/// An asset defined in Swift:
///
///     let assets = CodeAssets {
///         Asset("raw", partitions: daily) { context, _ in try await fetch(day: context.partition) }
///         Asset("cleaned", dependsOn: "raw") { context, inputs in clean(inputs["raw"]) }
///     }
///
/// Its body gets the partition being computed and the upstream values by name (loaded through
/// their I/O managers) and returns the value to store.
public struct Asset: Sendable {
    public var key: String
    public var dependencies: [String]
    public var partitions: Partitions?
    public var io: IOManagerSpec
    /// Change it when the body changes: Sluice cannot hash a closure, so this is how code
    /// assets become stale.
    public var version: String
    public var mappings: [String: PartitionMapping]
    let body: @Sendable (AssetContext, Value.Object) async throws -> Value

    public init(_ key: String, dependsOn dependencies: String..., partitions: Partitions? = nil, io: IOManagerSpec = .memory,
                version: String = "1", inputs mappings: [String: PartitionMapping] = [:],
                _ body: @escaping @Sendable (AssetContext, Value.Object) async throws -> Value) {
        self.key = key
        self.dependencies = dependencies
        self.partitions = partitions
        self.io = io
        self.version = version
        self.mappings = mappings
        self.body = body
    }

    /// The task type a code asset runs as.
    var taskType: String { "code:" + key }
}

/// What a code asset's body knows about the computation.
public struct AssetContext: Sendable {
    public let asset: String
    /// The partition being computed (`""` when unpartitioned).
    public let partition: String
    public let runID: String
    public let attempt: Int
    let task: TaskContext

    public func log(_ message: String, level: String = "info") { task.log(message, level: level) }
}

@resultBuilder
public enum AssetBuilder {
    public static func buildExpression(_ asset: Asset) -> [Asset] { [asset] }
    public static func buildExpression(_ assets: [Asset]) -> [Asset] { assets }
    public static func buildBlock(_ parts: [Asset]...) -> [Asset] { parts.flatMap { $0 } }
    public static func buildOptional(_ part: [Asset]?) -> [Asset] { part ?? [] }
    public static func buildEither(first: [Asset]) -> [Asset] { first }
    public static func buildEither(second: [Asset]) -> [Asset] { second }
    public static func buildArray(_ parts: [[Asset]]) -> [Asset] { parts.flatMap { $0 } }
}

/// Assets defined in code, ready to join a flow: register their task types in the engine's
/// registry, then run them as a flow of their own or added to a flow loaded from YAML (one
/// graph, read both ways: code assets may read YAML assets, and a YAML file loaded with
/// `deferringUnknownDependencies` may name code assets in `depends_on` and asset `inputs`).
/// A process resuming such a run must define the same code assets and load the YAML the same
/// way: the stored definition is the YAML and the assets' versions.
public struct CodeAssets: Sendable {
    public let assets: [Asset]

    public init(@AssetBuilder _ build: () -> [Asset]) {
        self.assets = build()
    }

    private struct Body: TaskProcessor {
        let asset: Asset
        func process(_ event: Event, _ context: TaskContext) async throws -> TaskOutput {
            guard case .object(let inputs) = event.data else { throw TaskError.permanent("asset '\(asset.key)' got no inputs") }
            let ctx = AssetContext(asset: asset.key, partition: event.meta["partition"]?.stringValue ?? "", runID: context.runID,
                                   attempt: context.attempt, task: context)
            return .event(event.with(data: try await asset.body(ctx, inputs)))
        }
    }

    /// Adds a task type per asset (`code:<key>`) to `registry`.
    public func register(in registry: inout TaskRegistry) {
        for asset in assets {
            registry.register(.processor(TaskSpec(name: asset.taskType, summary: "the code asset '\(asset.key)'")) { _ in Body(asset: asset) })
        }
    }

    /// The assets as tasks.
    public var tasks: [TaskDefinition] {
        assets.map { asset in
            var task = TaskDefinition(name: asset.key, type: asset.taskType, inputs: asset.dependencies.map { Edge(from: $0) },
                                      explicitDependencies: true, location: SourceLocation(file: "code asset \(asset.key)", line: 0, column: 0))
            task.asset = AssetSpec(key: asset.key, partitions: asset.partitions, io: asset.io, mappings: asset.mappings)
            task.asset?.version = asset.version
            return task
        }
    }

    /// A flow of these assets alone.
    public func flow(named name: String) -> FlowDefinition { FlowDefinition(name: name, tasks: tasks) }

    /// `flow` with these assets added: one graph. Names must not clash with the flow's tasks
    /// (`AssetError`); the combined graph is checked as a loaded flow is (`FlowErrors`, with
    /// where each problem was written), so a name the YAML deferred must be known by now.
    public func adding(to flow: FlowDefinition) throws -> FlowDefinition {
        var flow = flow
        for task in tasks {
            if flow.task(named: task.name) != nil {
                throw AssetError("code asset '\(task.name)' has the name of a task of flow '\(flow.name)'")
            }
            flow.tasks.append(task)
        }
        let errors = flow.graphErrors()
        if !errors.isEmpty { throw FlowErrors(errors) }
        return flow
    }
}
