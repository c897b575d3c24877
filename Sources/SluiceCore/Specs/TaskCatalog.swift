/// The task types a loader knows, by name and by alias.
public struct TaskCatalog: Sendable {
    public private(set) var specs: [TaskSpec]
    private var byName: [String: (spec: Int, alias: Int?)] = [:]

    public init(_ specs: [TaskSpec] = []) {
        self.specs = []
        for spec in specs { add(spec) }
    }

    public mutating func add(_ spec: TaskSpec) {
        let index = specs.count
        specs.append(spec)
        byName[spec.name] = (index, nil)
        for (i, alias) in spec.aliases.enumerated() { byName[alias.name] = (index, i) }
    }

    /// The spec for a name or alias, and the alias used (if it was one).
    public func resolve(_ name: String) -> (spec: TaskSpec, alias: TaskAlias?)? {
        guard let entry = byName[name] else { return nil }
        let spec = specs[entry.spec]
        return (spec, entry.alias.map { spec.aliases[$0] })
    }

    /// Every name and alias, for suggestions.
    public var allNames: [String] { Array(byName.keys).sorted() }
}
