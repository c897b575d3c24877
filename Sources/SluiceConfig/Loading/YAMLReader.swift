import SluiceCore
import Yams

/// Reads YAML into a located tree, resolving plain scalars by the YAML 1.2 core schema
/// (so `yes` stays a string, as it does in Flowgen's serde_yaml).
public enum YAMLReader {
    public static func read(_ text: String, file: String) throws(FlowErrors) -> SourceNode? {
        let node: Node?
        do {
            // Plain scalars are resolved below; Yams' default resolver would also compile a
            // set of regular expressions on every start, a large share of `sluice run`'s time.
            node = try Yams.compose(yaml: text, .basic)
        } catch let error as YamlError {
            throw FlowErrors([describe(error, file: file)])
        } catch {
            throw FlowErrors([FlowError(.syntax, "invalid YAML: \(error)", at: SourceLocation(file: file, line: 1, column: 1))])
        }
        guard let node else { return nil }
        var budget = Limits(nodes: max(Limits.minimumNodes, text.utf8.count * Limits.nodesPerByte))
        return try convert(node, file: file, depth: 0, budget: &budget)
    }

    /// Bounds on the tree a document may expand to. Aliases share a node, so a few lines can
    /// name billions of nodes ("billion laughs"); deep nesting could exhaust the stack.
    struct Limits {
        /// A document may expand to this many nodes per byte of its text, or `minimumNodes`.
        static let nodesPerByte = 16
        static let minimumNodes = 100_000
        static let maxDepth = 256
        var nodes: Int
    }

    private static func location(_ mark: Mark?, _ file: String) -> SourceLocation {
        SourceLocation(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1)
    }

    private static func convert(_ node: Node, file: String, depth: Int, budget: inout Limits) throws(FlowErrors) -> SourceNode {
        budget.nodes -= 1
        if budget.nodes < 0 {
            throw FlowErrors([FlowError(.syntax, "YAML expands to too many values (more than \(Limits.nodesPerByte) per byte of the file, or \(Limits.minimumNodes)); are aliases (*name) repeating a large anchor?", at: location(node.mark, file))])
        }
        if depth > Limits.maxDepth {
            throw FlowErrors([FlowError(.syntax, "YAML nests deeper than \(Limits.maxDepth) levels", at: location(node.mark, file))])
        }
        switch node {
        case .scalar(let scalar):
            let quoted = scalar.style != .plain
            let value = quoted ? Value.string(scalar.string) : resolvePlain(scalar.string)
            return SourceNode(.scalar(value), at: location(scalar.mark, file), isQuotedString: quoted)
        case .sequence(let sequence):
            var elements: [SourceNode] = []
            for element in sequence { elements.append(try convert(element, file: file, depth: depth + 1, budget: &budget)) }
            return SourceNode(.sequence(elements), at: location(sequence.mark, file))
        case .mapping(let mapping):
            var members: [SourceNode.Member] = []
            var seen: [String: SourceLocation] = [:]
            var errors: [FlowError] = []
            for (key, value) in mapping {
                let keyLocation = location(key.mark, file)
                guard case .scalar(let keyScalar) = key else {
                    errors.append(FlowError(.syntax, "mapping keys must be plain strings", at: keyLocation))
                    continue
                }
                if let first = seen[keyScalar.string] {
                    errors.append(FlowError(.syntax, "duplicate key '\(keyScalar.string)' (first written at line \(first.line))", at: keyLocation))
                    continue
                }
                seen[keyScalar.string] = keyLocation
                members.append(.init(key: keyScalar.string, keyLocation: keyLocation, value: try convert(value, file: file, depth: depth + 1, budget: &budget)))
            }
            if !errors.isEmpty { throw FlowErrors(errors) }
            return SourceNode(.mapping(members), at: location(mapping.mark, file))
        case .alias(let alias):
            throw FlowErrors([FlowError(.syntax, "unresolved YAML alias", at: location(alias.mark, file))])
        }
    }

    /// YAML 1.2 core schema resolution of an unquoted scalar.
    static func resolvePlain(_ s: String) -> Value {
        switch s {
        case "", "~", "null", "Null", "NULL": return .null
        case "true", "True", "TRUE": return .bool(true)
        case "false", "False", "FALSE": return .bool(false)
        case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": return .double(.infinity)
        case "-.inf", "-.Inf", "-.INF": return .double(-.infinity)
        case ".nan", ".NaN", ".NAN": return .double(.nan)
        default: break
        }
        let first = s.utf8.first!
        guard first == UInt8(ascii: "-") || first == UInt8(ascii: "+") || first == UInt8(ascii: ".") || (first >= 48 && first <= 57) else {
            return .string(s)
        }
        if let i = Int64(s) { return .int(i) }
        if s.hasPrefix("0x"), let i = Int64(s.dropFirst(2), radix: 16) { return .int(i) }
        if s.hasPrefix("0o"), let i = Int64(s.dropFirst(2), radix: 8) { return .int(i) }
        let isFloatSyntax = s.allSatisfy { $0.isNumber || $0 == "." || $0 == "e" || $0 == "E" || $0 == "-" || $0 == "+" }
        if isFloatSyntax, s.contains(where: \.isNumber), let d = Double(s) { return .double(d) }
        return .string(s)
    }

    private static func describe(_ error: YamlError, file: String) -> FlowError {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            var message = "invalid YAML: \(problem)"
            if let context { message += " (\(context.text) at line \(context.mark.line))" }
            return FlowError(.syntax, message, at: location(mark, file))
        case .duplicatedKeysInMapping(let duplicates, let context):
            return FlowError(.syntax, "duplicate keys \(duplicates.joined(separator: ", ")) in a mapping", at: location(context.mark, file))
        case .reader(let problem, _, _, _):
            return FlowError(.syntax, "cannot read YAML: \(problem)", at: location(nil, file))
        default:
            return FlowError(.syntax, "invalid YAML: \(error)", at: location(nil, file))
        }
    }
}
