import SluiceCore

/// Checks config values against their declared types, collecting every error with its position.
struct FieldChecker {
    var errors: [FlowError] = []
    /// Where the task is, for messages: "task 'fetch'".
    let owner: String

    /// Validates the fields of a mapping against `fields`; returns the normalized object with defaults applied.
    mutating func checkObject(_ node: SourceNode, fields: [FieldSpec], path: String, defaults: Value.Object = [:],
                              skip: Set<String> = [], extraSuggestions: [String] = []) -> Value.Object {
        guard let members = node.members else {
            errors.append(FlowError(.typeMismatch, "\(describe(path)) must be a mapping, found \(node.kindName)", at: node.location))
            return [:]
        }
        var out = Value.Object()
        var seen = Set<String>()
        for member in members where !skip.contains(member.key) {
            guard let field = fields.first(where: { $0.name == member.key || $0.aliases.contains(member.key) }) else {
                let candidates = fields.map(\.name) + extraSuggestions
                errors.append(FlowError(.unknownField, "unknown field '\(member.key)' in \(describe(path))",
                                        at: member.keyLocation, suggestion: Suggestion.closest(to: member.key, in: candidates)))
                continue
            }
            if seen.contains(field.name) {
                errors.append(FlowError(.invalidValue, "field '\(field.name)' is given twice in \(describe(path)) (once as '\(member.key)')", at: member.keyLocation))
                continue
            }
            seen.insert(field.name)
            let fieldPath = path.isEmpty ? field.name : "\(path).\(field.name)"
            out[field.name] = check(member.value, type: field.type.kind, path: fieldPath, templated: field.templated)
        }
        for field in fields where !seen.contains(field.name) {
            if let value = defaults[field.name] ?? field.defaultValue {
                out[field.name] = value
            } else if field.required {
                let fieldPath = path.isEmpty ? field.name : "\(path).\(field.name)"
                errors.append(FlowError(.missingField, "\(describe(fieldPath)) is required", at: node.location))
            }
        }
        return out
    }

    /// Checks one value; returns it normalized (names in their canonical spelling, scalars as strings where strings are wanted).
    mutating func check(_ node: SourceNode, type: FieldType.Kind, path: String, templated: Bool) -> Value {
        if templated, case .scalar(.string(let s)) = node.kind, Template.isTemplate(s) {
            do {
                _ = try Template(s)
            } catch {
                errors.append(FlowError(.invalidValue, "\(describe(path)): \(error.message)", at: node.location))
            }
            return .string(s)
        }
        if let value = convert(node, type: type, path: path, templated: templated, report: true) { return value }
        return node.value
    }

    private mutating func convert(_ node: SourceNode, type: FieldType.Kind, path: String, templated: Bool, report: Bool) -> Value? {
        func mismatch(_ expected: String) -> Value? {
            if report {
                errors.append(FlowError(.typeMismatch, "\(describe(path)) must be \(expected), found \(node.kindName)\(found(node))", at: node.location))
            }
            return nil
        }
        switch type {
        case .any:
            return node.value
        case .string:
            switch node.scalar {
            case .string(let s)?: return .string(s)
            case .int(let i)?: return .string(String(i))
            case .double(let d)?: return .string(String(d))
            case .bool(let b)?: return .string(String(b))
            default: return mismatch("a string")
            }
        case .integer:
            if let i = node.scalar?.intValue, !(node.scalar?.stringValue != nil) { return .int(i) }
            return mismatch("an integer")
        case .number:
            switch node.scalar {
            case .int(let i)?: return .int(i)
            case .double(let d)?: return .double(d)
            default: return mismatch("a number")
            }
        case .bool:
            if case .bool(let b)? = node.scalar { return .bool(b) }
            return mismatch("true or false")
        case .duration:
            switch node.scalar {
            case .string(let s)?:
                if Duration(parsing: s) != nil { return .string(s) }
                if report {
                    errors.append(FlowError(.invalidValue, "\(describe(path)) is not a duration: '\(s)' (write e.g. 500ms, 10s, 1m30s, 2h)", at: node.location))
                }
                return nil
            case .int(let i)? where i >= 0: return .int(i)
            case .double(let d)? where d >= 0: return .double(d)
            default: return mismatch("a duration such as 10s")
            }
        case .oneOf(let options):
            if case .string(let s)? = node.scalar {
                if options.contains(s) { return .string(s) }
                if let match = options.first(where: { $0.lowercased() == s.lowercased() }) { return .string(match) }
                if report {
                    errors.append(FlowError(.invalidValue, "\(describe(path)) must be one of \(options.joined(separator: ", ")), found '\(s)'",
                                            at: node.location, suggestion: Suggestion.closest(to: s, in: options)))
                }
                return nil
            }
            return mismatch("one of \(options.joined(separator: ", "))")
        case .array(let element):
            guard let elements = node.elements else { return mismatch("a list") }
            var out: [Value] = []
            for (i, e) in elements.enumerated() {
                guard let v = report ? check(e, type: element, path: "\(path)[\(i)]", templated: templated)
                                     : convert(e, type: element, path: path, templated: templated, report: false) else { return nil }
                out.append(v)
            }
            return .array(out)
        case .map(let valueType):
            guard let members = node.members else { return mismatch("a mapping") }
            var out = Value.Object()
            for m in members {
                guard let v = report ? check(m.value, type: valueType, path: "\(path).\(m.key)", templated: templated)
                                     : convert(m.value, type: valueType, path: path, templated: templated, report: false) else { return nil }
                out[m.key] = v
            }
            return .object(out)
        case .object(let fields):
            guard node.members != nil else { return mismatch("a mapping") }
            if !report {
                var probe = FieldChecker(owner: owner)
                let v = probe.checkObject(node, fields: fields, path: path)
                return probe.errors.isEmpty ? .object(v) : nil
            }
            return .object(checkObject(node, fields: fields, path: path))
        case .either(let a, let b):
            if let v = convert(node, type: a, path: path, templated: templated, report: false) { return v }
            if let v = convert(node, type: b, path: path, templated: templated, report: false) { return v }
            if report {
                return mismatch("\(FieldType.name(a)) or \(FieldType.name(b))")
            }
            return nil
        }
    }

    private func found(_ node: SourceNode) -> String {
        switch node.scalar {
        case .string(let s)? where s.count <= 40: return " '\(s)'"
        case .string?, .null?, nil: return ""
        case let v?: return " (\(v.jsonString()))"
        }
    }

    private func describe(_ path: String) -> String {
        path.isEmpty ? owner : "field '\(path)' of \(owner)"
    }
}
