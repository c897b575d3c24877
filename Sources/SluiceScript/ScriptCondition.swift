import SluiceCore

/// A `when:` condition: one Rhai expression over `event` and `env`, compiled once and
/// evaluated per event. It must give a bool; `()` (a missing field) counts as false.
public struct ScriptCondition: Sendable, Hashable, CustomStringConvertible {
    public let source: String
    private let script: CompiledScript
    /// The variables a condition sees, in scope order.
    public static let variables = ["event", "env"]

    private static let engine: ScriptEngine = {
        var limits = ScriptLimits.flowDefaults
        limits.maxOperations = 100_000
        let e = ScriptEngine(limits: limits)
        e.onPrint = { _ in }
        e.onDebug = { _ in }
        return e
    }()

    public init(_ source: String) throws(ScriptError) {
        self.source = source
        script = try Self.engine.compile(source, expression: true, scope: Self.variables)
    }

    /// True when the expression gives `true` for these variables (missing ones are `()`).
    public func isSatisfied(by variables: Value.Object) throws(ScriptError) -> Bool {
        var scope = ScriptScope()
        for name in Self.variables { scope.push(name, variables[name].map(Dynamic.init) ?? .unit) }
        switch try script.run(scope: scope) {
        case .bool(let b): return b
        case .unit: return false
        case let other:
            throw ScriptError(.runtime, "ErrorMismatchDataType", "the condition gave \(other.typeName) \(other.debugText), not a bool")
        }
    }

    public var description: String { source }
    public static func == (a: ScriptCondition, b: ScriptCondition) -> Bool { a.source == b.source }
    public func hash(into hasher: inout Hasher) { hasher.combine(source) }
}
