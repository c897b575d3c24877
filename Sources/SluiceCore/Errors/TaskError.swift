/// A task attempt's failure. `retryable` tells the engine whether another attempt can help:
/// a timeout or a 503 can, a 404 or a bad config cannot.
public struct TaskError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let failed = Code("failed")
        public static let timeout = Code("timeout")
        public static let cancelled = Code("cancelled")
        public static let invalidConfig = Code("invalid-config")
        public static let invalidInput = Code("invalid-input")
    }

    public var code: Code
    public var message: String
    public var retryable: Bool

    public init(_ message: String, code: Code = .failed, retryable: Bool = true) {
        self.code = code
        self.message = message
        self.retryable = retryable
    }

    /// A failure that the same input would repeat: do not retry.
    public static func permanent(_ message: String, code: Code = .failed) -> TaskError {
        TaskError(message, code: code, retryable: false)
    }

    public static func invalidInput(_ message: String) -> TaskError {
        TaskError(message, code: .invalidInput, retryable: false)
    }

    public static func invalidConfig(_ message: String) -> TaskError {
        TaskError(message, code: .invalidConfig, retryable: false)
    }

    public var description: String { message }
}
