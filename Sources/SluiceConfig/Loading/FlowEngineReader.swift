import SluiceCore

/// Reads FlowEngine workflow JSON: `{id, name, nodes, connections, triggers, settings}`.
///
/// Config values may be tagged (`{"type": "String", "value": "GET"}`) or plain JSON; ids may be
/// UUIDs or free-form. Node names become task names (the id when a name is missing or repeated).
struct FlowEngineReader {
    let catalog: TaskCatalog
    let file: String

    static let workflowFields = ["id", "name", "description", "nodes", "connections", "triggers", "settings"]
    static let nodeFields = ["id", "node_type", "name", "config", "position", "retry_policy", "description"]
    static let connectionFields = ["from_node", "from_port", "to_node", "to_port"]
    static let settingsFields = ["max_execution_time_ms", "max_parallel_nodes", "on_error"]
    static let retryFields = ["max_attempts", "delay_ms", "backoff_multiplier", "max_delay_ms", "retry_on_timeout"]

    func read(_ root: SourceNode) throws(FlowErrors) -> (FlowDefinition, [FlowError]) {
        var errors: [FlowError] = []
        unknownKeys(root, allowed: FlowEngineReader.workflowFields, what: "workflow", errors: &errors)
        let name = root["name"]?.scalar?.stringValue ?? FlowNaming.defaultName(forFile: file)
        var labels = Value.Object()
        if let id = root["id"]?.scalar?.stringValue { labels["id"] = .string(id) }
        if let d = root["description"]?.scalar?.stringValue { labels["description"] = .string(d) }

        var settings = FlowSettings()
        settings.usesPorts = true
        var onError = ErrorAction.fail
        if let s = root["settings"] {
            unknownKeys(s, allowed: FlowEngineReader.settingsFields, what: "settings", errors: &errors)
            if let node = s["max_parallel_nodes"], node.scalar != .null {
                settings.maxParallelTasks = CommonFieldReader.positiveInt(node, what: "'settings.max_parallel_nodes'", errors: &errors)
            }
            if let node = s["max_execution_time_ms"], node.scalar != .null {
                if let ms = node.scalar?.intValue, ms > 0 { settings.runTimeout = .milliseconds(ms) } else {
                    errors.append(FlowError(.invalidValue, "'settings.max_execution_time_ms' must be a positive number of milliseconds or null", at: node.location))
                }
            }
            if let node = s["on_error"] {
                switch node.kind {
                case .scalar(.string("StopWorkflow")): onError = .fail
                case .scalar(.string("ContinueOnError")): onError = .continue
                case .scalar(.string("RetryWorkflow")): onError = .fail
                case .mapping(let m) where m.count == 1 && m[0].key == "RetryWorkflow": onError = .fail
                default:
                    errors.append(FlowError(.invalidValue, "'settings.on_error' must be StopWorkflow, ContinueOnError or RetryWorkflow", at: node.location,
                                            suggestion: node.scalar?.stringValue.flatMap { Suggestion.closest(to: $0, in: ["StopWorkflow", "ContinueOnError", "RetryWorkflow"]) }))
                }
            }
        }

        var tasks: [TaskDefinition] = []
        var nameOfId: [String: String] = [:]
        var indexOfId: [String: Int] = [:]
        guard let nodes = root["nodes"]?.elements else {
            throw FlowErrors([FlowError(.typeMismatch, "'nodes' must be a list", at: root["nodes"]?.location ?? root.location)])
        }
        // Names first, so a repeated name falls back to the id for every node that has it.
        var nameCount: [String: Int] = [:]
        for node in nodes { if let n = node["name"]?.scalar?.stringValue { nameCount[n, default: 0] += 1 } }

        for node in nodes {
            guard node.members != nil else {
                errors.append(FlowError(.typeMismatch, "each node must be an object, found \(node.kindName)", at: node.location))
                continue
            }
            unknownKeys(node, allowed: FlowEngineReader.nodeFields, what: "node", errors: &errors)
            guard let id = node["id"]?.scalar?.stringValue ?? node["id"]?.scalar.map({ $0.jsonString() }) else {
                errors.append(FlowError(.missingField, "node has no 'id'", at: node.location))
                continue
            }
            guard let typeNode = node["node_type"], let typeName = typeNode.scalar?.stringValue else {
                errors.append(FlowError(.missingField, "node '\(id)' has no 'node_type'", at: node.location))
                continue
            }
            if indexOfId[id] != nil {
                errors.append(FlowError(.duplicateName, "node id '\(id)' is used twice", at: node["id"]!.location))
                continue
            }
            var name = id
            if let n = node["name"]?.scalar?.stringValue, !n.isEmpty, nameCount[n] == 1, indexOfId[n] == nil { name = n }
            nameOfId[id] = name
            indexOfId[id] = tasks.count

            let resolved = catalog.resolve(typeName)
            if resolved == nil {
                errors.append(FlowError(.unknownTaskType, "unknown task type '\(typeName)' (node '\(name)')", at: typeNode.location,
                                        suggestion: Suggestion.closest(to: typeName, in: catalog.allNames)))
            }
            var task = TaskDefinition(name: name, type: resolved?.spec.name ?? typeName, typeAsWritten: typeName,
                                      explicitDependencies: true, onError: onError, location: node.location)
            // A node's `timeout` config is its per-attempt deadline, in seconds.
            var configNode = node["config"].map(untag) ?? SourceNode(.mapping([]), at: node.location)
            if let members = configNode.members, let t = members.first(where: { $0.key == "timeout" }) {
                task.timeout = CommonFieldReader.duration(t.value, what: "config 'timeout' of node '\(name)'", errors: &errors)
                configNode.kind = .mapping(members.filter { $0.key != "timeout" })
            }
            if let (spec, alias) = resolved {
                var checker = FieldChecker(owner: "node '\(name)'")
                task.config = checker.checkObject(configNode, fields: spec.fields, path: "", defaults: alias?.defaults ?? [:])
                errors += checker.errors
            }
            if let retry = node["retry_policy"], retry.scalar != .null {
                task.retry = readRetry(retry, owner: "node '\(name)'", errors: &errors)
            }
            tasks.append(task)
        }

        for connection in root["connections"]?.elements ?? [] {
            unknownKeys(connection, allowed: FlowEngineReader.connectionFields, what: "connection", errors: &errors)
            guard let from = connection["from_node"]?.scalar?.stringValue, let to = connection["to_node"]?.scalar?.stringValue else {
                errors.append(FlowError(.missingField, "a connection needs 'from_node' and 'to_node'", at: connection.location))
                continue
            }
            guard let fromName = nameOfId[from] else {
                errors.append(FlowError(.missingDependency, "connection from unknown node '\(from)'", at: connection["from_node"]!.location,
                                        suggestion: Suggestion.closest(to: from, in: Array(nameOfId.keys))))
                continue
            }
            guard let target = indexOfId[to] else {
                errors.append(FlowError(.missingDependency, "connection to unknown node '\(to)'", at: connection["to_node"]!.location,
                                        suggestion: Suggestion.closest(to: to, in: Array(nameOfId.keys))))
                continue
            }
            let fromPort = connection["from_port"]?.scalar?.stringValue ?? "output"
            let toPort = connection["to_port"]?.scalar?.stringValue ?? "input"
            tasks[target].inputs.append(Edge(from: fromName, fromPort: fromPort, toPort: toPort, location: connection.location))
        }
        if root["connections"] != nil && root["connections"]?.elements == nil {
            errors.append(FlowError(.typeMismatch, "'connections' must be a list", at: root["connections"]!.location))
        }
        return (FlowDefinition(name: name, labels: labels, tasks: tasks, settings: settings, location: root.location), errors)
    }

    private func readRetry(_ node: SourceNode, owner: String, errors: inout [FlowError]) -> RetryPolicy? {
        guard node.members != nil else {
            errors.append(FlowError(.typeMismatch, "'retry_policy' of \(owner) must be an object or null", at: node.location))
            return nil
        }
        unknownKeys(node, allowed: FlowEngineReader.retryFields, what: "retry_policy", errors: &errors)
        // FlowEngine waits exactly the computed delay: no jitter.
        var policy = RetryPolicy(maxAttempts: 3, initialBackoff: .seconds(1), maxBackoff: .seconds(60), multiplier: 2, jitter: .none, retryOnTimeout: true)
        if let n = node["max_attempts"] {
            if let i = n.scalar?.intValue, i >= 1 { policy.maxAttempts = Int(i) } else {
                errors.append(FlowError(.invalidValue, "'retry_policy.max_attempts' of \(owner) must be at least 1", at: n.location))
            }
        }
        if let n = node["delay_ms"] {
            if let ms = n.scalar?.intValue, ms >= 0 { policy.initialBackoff = .milliseconds(ms) } else {
                errors.append(FlowError(.invalidValue, "'retry_policy.delay_ms' of \(owner) must be a number of milliseconds", at: n.location))
            }
        }
        if let n = node["backoff_multiplier"] {
            if let m = n.scalar?.doubleValue, m >= 1 { policy.multiplier = m } else {
                errors.append(FlowError(.invalidValue, "'retry_policy.backoff_multiplier' of \(owner) must be at least 1", at: n.location))
            }
        }
        if let n = node["max_delay_ms"], n.scalar != .null {
            if let ms = n.scalar?.intValue, ms >= 0 { policy.maxBackoff = .milliseconds(ms) } else {
                errors.append(FlowError(.invalidValue, "'retry_policy.max_delay_ms' of \(owner) must be a number of milliseconds", at: n.location))
            }
        }
        if let n = node["retry_on_timeout"] {
            if case .bool(let b)? = n.scalar { policy.retryOnTimeout = b } else {
                errors.append(FlowError(.typeMismatch, "'retry_policy.retry_on_timeout' of \(owner) must be true or false", at: n.location))
            }
        }
        if policy.maxBackoff < policy.initialBackoff { policy.maxBackoff = policy.initialBackoff }
        return policy
    }

    private func unknownKeys(_ node: SourceNode, allowed: [String], what: String, errors: inout [FlowError]) {
        for member in node.members ?? [] where !allowed.contains(member.key) {
            errors.append(FlowError(.unknownField, "unknown field '\(member.key)' in \(what)", at: member.keyLocation,
                                    suggestion: Suggestion.closest(to: member.key, in: allowed)))
        }
    }

    /// Turns FlowEngine's tagged values into plain ones, keeping positions; plain values pass through.
    func untag(_ node: SourceNode) -> SourceNode {
        switch node.kind {
        case .scalar:
            return node
        case .sequence(let elements):
            return SourceNode(.sequence(elements.map(untag)), at: node.location)
        case .mapping(let members):
            if let tag = members.first(where: { $0.key == "type" })?.value.scalar?.stringValue,
               members.allSatisfy({ $0.key == "type" || $0.key == "value" }), members.count <= 2,
               ["Null", "Bool", "Number", "String", "Bytes", "Json", "Array", "Object"].contains(tag)
            {
                let inner = members.first(where: { $0.key == "value" })?.value
                switch tag {
                case "Null": return SourceNode(.scalar(.null), at: node.location)
                case "Bytes":
                    if let bytes = inner?.elements?.compactMap({ $0.scalar?.intValue }).map({ UInt8(clamping: $0) }) {
                        return SourceNode(.scalar(.bytes(bytes)), at: node.location)
                    }
                    return inner ?? node
                case "Json":
                    return inner ?? SourceNode(.scalar(.null), at: node.location)
                default:
                    guard let inner else { return SourceNode(.scalar(.null), at: node.location) }
                    return untag(inner)
                }
            }
            return SourceNode(.mapping(members.map { .init(key: $0.key, keyLocation: $0.keyLocation, value: untag($0.value)) }), at: node.location)
        }
    }
}
