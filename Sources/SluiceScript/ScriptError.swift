/// An error from compiling or running a script, named as Rhai names it.
public struct ScriptError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Phase: String, Sendable {
        case parse, runtime
    }

    public var phase: Phase
    /// Rhai's error variant (`ErrorParsing`, `ErrorArithmetic`, …).
    public var kind: String
    public var message: String
    public var position: ScriptPosition?

    public init(_ phase: Phase, _ kind: String, _ message: String, at position: ScriptPosition? = nil) {
        self.phase = phase
        self.kind = kind
        self.message = message
        self.position = position
    }

    /// A lexical or syntax error.
    static func syntax(_ message: String, at position: ScriptPosition) -> ScriptError {
        ScriptError(.parse, "ErrorParsing", message, at: position)
    }

    public var description: String {
        guard let position else { return message }
        return "\(message) (\(position))"
    }
}
