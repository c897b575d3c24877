/// One problem found in a flow definition, with where it is and, when one exists, a fix.
public struct FlowError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of problem this is; stable for tools and tests, open to new members.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let syntax = Code("syntax")
        public static let unknownField = Code("unknown-field")
        public static let missingField = Code("missing-field")
        public static let typeMismatch = Code("type-mismatch")
        public static let invalidValue = Code("invalid-value")
        public static let unknownTaskType = Code("unknown-task-type")
        public static let duplicateName = Code("duplicate-name")
        public static let missingDependency = Code("missing-dependency")
        public static let cycle = Code("cycle")
        public static let io = Code("io")
    }

    public var code: Code
    public var message: String
    public var location: SourceLocation?
    /// A replacement that probably fixes it (`did you mean 'depends_on'?`).
    public var suggestion: String?

    public init(_ code: Code, _ message: String, at location: SourceLocation?, suggestion: String? = nil) {
        self.code = code
        self.message = message
        self.location = location
        self.suggestion = suggestion
    }

    /// `file:line:column: message (did you mean 'x'?)`
    public var description: String {
        var text = location.map { "\($0): " } ?? ""
        text += message
        if let suggestion { text += " (did you mean '\(suggestion)'?)" }
        return text
    }
}

/// Every problem found in one or more flow files, reported together.
public struct FlowErrors: Error, Sendable, CustomStringConvertible {
    public var errors: [FlowError]

    public init(_ errors: [FlowError]) { self.errors = errors }

    public var description: String { errors.map(\.description).joined(separator: "\n") }
}
