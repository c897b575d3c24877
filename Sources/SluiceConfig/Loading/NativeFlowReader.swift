import Foundation
import SluiceCore
import SluiceScript

/// Reads the native flow shape: `flow: {name, labels, tasks: [- <type>: {...}]}`.
struct NativeFlowReader {
    let catalog: TaskCatalog
    let file: String

    /// Fields every task accepts besides its type's own.
    static let commonFields = ["name", "depends_on", "retry", "timeout", "on_error", "concurrency", "max_concurrent", "when", "join", "cache",
                               "asset", "rate_limit", "concurrency_key", "concurrency_limit"]
    static let flowFields = ["name", "description", "labels", "tasks", "retry", "timeout", "max_parallel", "buffer_size",
                             "max_runs_in_flight", "require_leader_election", "parallel_instances", "schedule"]

    func read(_ root: SourceNode) throws(FlowErrors) -> (FlowDefinition, [FlowError]) {
        var errors: [FlowError] = []
        var warnings: [FlowError] = []
        let body: SourceNode
        if let flowNode = root["flow"] {
            for member in root.members! where member.key != "flow" {
                errors.append(FlowError(.unknownField, "unknown top-level key '\(member.key)'; a flow file holds one 'flow:' mapping",
                                        at: member.keyLocation, suggestion: Suggestion.closest(to: member.key, in: ["flow"])))
            }
            body = flowNode
        } else if root["tasks"] != nil {
            body = root
        } else {
            throw FlowErrors([FlowError(.missingField, "a flow file needs a 'flow:' mapping with a 'tasks:' list", at: root.location)])
        }
        guard let members = body.members else {
            throw FlowErrors([FlowError(.typeMismatch, "'flow' must be a mapping, found \(body.kindName)", at: body.location)])
        }

        var name = FlowNaming.defaultName(forFile: file)
        var labels = Value.Object()
        var settings = FlowSettings()
        var taskNodes: [SourceNode] = []
        var checker = FieldChecker(owner: "the flow")
        for member in members {
            let node = member.value
            switch member.key {
            case "name":
                if let s = node.scalar?.stringValue { name = s } else {
                    errors.append(FlowError(.typeMismatch, "flow 'name' must be a string, found \(node.kindName)", at: node.location))
                }
            case "description":
                if let s = node.scalar?.stringValue { labels["description"] = .string(s) }
            case "labels":
                if case .object(let o) = checker.check(node, type: FieldType.map(of: .any).kind, path: "labels", templated: false) { labels = o }
            case "tasks":
                if let elements = node.elements { taskNodes = elements } else {
                    errors.append(FlowError(.typeMismatch, "'tasks' must be a list of tasks, found \(node.kindName)", at: node.location))
                }
            case "retry":
                settings.retry = RetryReader.read(node, owner: "the flow", errors: &errors)
            case "timeout":
                settings.runTimeout = readDuration(node, what: "flow 'timeout'", errors: &errors)
            case "max_parallel":
                settings.maxParallelTasks = readPositiveInt(node, what: "flow 'max_parallel'", errors: &errors)
            case "buffer_size":
                settings.bufferSize = readPositiveInt(node, what: "flow 'buffer_size'", errors: &errors) ?? settings.bufferSize
            case "max_runs_in_flight":
                settings.maxRunsInFlight = readPositiveInt(node, what: "flow 'max_runs_in_flight'", errors: &errors) ?? settings.maxRunsInFlight
            case "require_leader_election":
                if case .bool(let b)? = node.scalar {
                    settings.requireLeaderElection = b
                } else {
                    errors.append(FlowError(.typeMismatch, "flow 'require_leader_election' must be true or false, found \(node.kindName)", at: node.location))
                }
            case "schedule":
                settings.schedule = ScheduleReader.read(node, errors: &errors)
            case "parallel_instances":
                // Flowgen's multi-node knob: accepted so Flowgen flows load.
                settings.inertFields.append(member.key)
                warnings.append(FlowError(.invalidValue, "'\(member.key)' is accepted but has no effect when a flow runs in one process", at: member.keyLocation))
            default:
                errors.append(FlowError(.unknownField, "unknown field '\(member.key)' in flow", at: member.keyLocation,
                                        suggestion: Suggestion.closest(to: member.key, in: NativeFlowReader.flowFields)))
            }
        }
        errors += checker.errors
        if body["tasks"] == nil {
            errors.append(FlowError(.missingField, "flow has no 'tasks:' list", at: body.location))
        } else if taskNodes.isEmpty && body["tasks"]?.elements != nil {
            errors.append(FlowError(.missingField, "flow has no tasks", at: body["tasks"]!.location))
        }

        var tasks: [TaskDefinition] = []
        for node in taskNodes {
            if let task = readTask(node, previous: tasks.last, errors: &errors) { tasks.append(task) }
        }
        // A dead-letter target without its own depends_on only receives failed events.
        let routeTargets = Set(tasks.compactMap { task -> String? in
            if case .route(let t) = task.onError.kind { return t } else { return nil }
        })
        for i in tasks.indices where routeTargets.contains(tasks[i].name) && !tasks[i].explicitDependencies {
            tasks[i].inputs = []
        }
        var flow = FlowDefinition(name: name, labels: labels, tasks: tasks, settings: settings, location: body.location)
        flow.warnings = warnings
        return (flow, errors)
    }

    private func readTask(_ node: SourceNode, previous: TaskDefinition?, errors: inout [FlowError]) -> TaskDefinition? {
        guard let members = node.members, members.count == 1, let typeMember = members.first else {
            if let members = node.members, members.count > 1 {
                let keys = members.map(\.key)
                let typeKeys = keys.filter { catalog.resolve($0) != nil }
                var message = "a task is written as one key, its type, holding its fields (`- log: {name: x}`); found keys \(keys.joined(separator: ", "))"
                if typeKeys.count == 1 { message += ": indent the other keys under '\(typeKeys[0]):'" }
                errors.append(FlowError(.syntax, message, at: node.location))
            } else {
                errors.append(FlowError(.syntax, "a task is written as `- <type>: {name: ..., ...}`, found \(node.kindName)", at: node.location))
            }
            return nil
        }
        let typeName = typeMember.key
        let body = typeMember.value
        let resolved = catalog.resolve(typeName)
        if resolved == nil {
            errors.append(FlowError(.unknownTaskType, "unknown task type '\(typeName)'", at: typeMember.keyLocation,
                                    suggestion: Suggestion.closest(to: typeName, in: catalog.allNames)))
        }
        // `- log:` with nothing under it is a task with every field defaulted.
        let fieldsNode: SourceNode
        if case .scalar(.null) = body.kind {
            fieldsNode = SourceNode(.mapping([]), at: body.location)
        } else if body.members != nil {
            fieldsNode = body
        } else {
            errors.append(FlowError(.typeMismatch, "the fields of task type '\(typeName)' must be a mapping, found \(body.kindName)", at: body.location))
            return nil
        }

        var name = typeName
        if let nameNode = fieldsNode["name"] {
            if let s = nameNode.scalar?.stringValue, !s.isEmpty {
                name = s
            } else {
                errors.append(FlowError(.typeMismatch, "task 'name' must be a non-empty string, found \(nameNode.kindName)", at: nameNode.location))
            }
        }
        let owner = "task '\(name)'"
        var task = TaskDefinition(name: name, type: resolved?.spec.name ?? typeName, typeAsWritten: typeName, location: typeMember.keyLocation)
        let common = CommonFieldReader(owner: owner)
        common.read(fieldsNode, into: &task, errors: &errors)

        if !task.explicitDependencies, let previous, resolved?.spec.kind != .source {
            task.inputs = [Edge(from: previous.name)]
        }
        if resolved?.spec.kind == .source, !task.inputs.isEmpty {
            errors.append(FlowError(.invalidValue, "\(owner) is a source (\(typeName)) and cannot depend on other tasks", at: fieldsNode["depends_on"]?.location ?? task.location))
        }

        if let (spec, alias) = resolved {
            var checker = FieldChecker(owner: owner)
            task.config = checker.checkObject(fieldsNode, fields: spec.fields, path: "", defaults: alias?.defaults ?? [:],
                                              skip: Set(NativeFlowReader.commonFields), extraSuggestions: NativeFlowReader.commonFields)
            for member in fieldsNode.members ?? [] { task.configLocations[member.key] = member.value.location }
            errors += checker.errors
        }
        return task
    }

    private func readDuration(_ node: SourceNode, what: String, errors: inout [FlowError]) -> Duration? {
        CommonFieldReader.duration(node, what: what, errors: &errors)
    }

    private func readPositiveInt(_ node: SourceNode, what: String, errors: inout [FlowError]) -> Int? {
        CommonFieldReader.positiveInt(node, what: what, errors: &errors)
    }
}

/// Reads the fields every task has: name, depends_on, retry, timeout, on_error, concurrency, when,
/// join, cache, asset and the shared limits (rate_limit, concurrency_key, concurrency_limit).
struct CommonFieldReader {
    let owner: String

    func read(_ node: SourceNode, into task: inout TaskDefinition, errors: inout [FlowError]) {
        for member in node.members ?? [] {
            let value = member.value
            switch member.key {
            case "depends_on":
                task.explicitDependencies = true
                if case .scalar(.string(let s)) = value.kind {
                    task.inputs = [Edge(from: s, location: value.location)]
                } else if let elements = value.elements {
                    task.inputs = []
                    for element in elements {
                        if case .scalar(.string(let s)) = element.kind {
                            task.inputs.append(Edge(from: s, location: element.location))
                        } else {
                            errors.append(FlowError(.typeMismatch, "'depends_on' of \(owner) must list task names, found \(element.kindName)", at: element.location))
                        }
                    }
                } else if case .scalar(.null) = value.kind {
                    task.inputs = []
                } else {
                    errors.append(FlowError(.typeMismatch, "'depends_on' of \(owner) must be a task name or a list of them, found \(value.kindName)", at: value.location))
                }
            case "retry":
                task.retry = RetryReader.read(value, owner: owner, errors: &errors)
            case "timeout":
                task.timeout = CommonFieldReader.duration(value, what: "'timeout' of \(owner)", errors: &errors)
            case "on_error":
                if let s = value.scalar?.stringValue {
                    switch s {
                    case "fail": task.onError = .fail
                    case "continue": task.onError = .continue
                    default: task.onError = .route(to: s)
                    }
                } else {
                    errors.append(FlowError(.typeMismatch, "'on_error' of \(owner) must be fail, continue or a task name, found \(value.kindName)", at: value.location))
                }
            case "asset":
                task.asset = CommonFieldReader.asset(value, task: task.name, owner: owner, errors: &errors)
            case "cache":
                // cache: {ttl: 1h}: an identical attempt (type, config, input) within the ttl reuses the stored output.
                let ttlNode = value.members?.first(where: { $0.key == "ttl" })?.value
                if let unknown = value.members?.first(where: { $0.key != "ttl" }) {
                    errors.append(FlowError(.unknownField, "unknown field '\(unknown.key)' in 'cache' of \(owner) (it has only ttl)",
                                            at: unknown.keyLocation))
                } else if let ttlNode, let ttl = CommonFieldReader.duration(ttlNode, what: "'cache.ttl' of \(owner)", errors: &errors) {
                    if ttl > .zero { task.cacheTTL = ttl } else {
                        errors.append(FlowError(.invalidValue, "'cache.ttl' of \(owner) must be above zero", at: ttlNode.location))
                    }
                } else if ttlNode == nil {
                    errors.append(FlowError(.invalidValue, "'cache' of \(owner) needs a ttl, e.g. cache: {ttl: 1h}", at: value.location))
                }
            case "concurrency", "max_concurrent":
                // max_concurrent is FlowStone's name for it.
                if member.key == "max_concurrent", node["concurrency"] != nil {
                    errors.append(FlowError(.invalidValue, "\(owner) has both 'concurrency' and 'max_concurrent', which mean the same: keep one",
                                            at: member.keyLocation))
                } else {
                    task.concurrency = CommonFieldReader.positiveInt(value, what: "'\(member.key)' of \(owner)", errors: &errors)
                }
            case "rate_limit":
                task.rateLimit = CommonFieldReader.rateLimit(value, owner: owner, errors: &errors)
            case "concurrency_key":
                if let s = value.scalar?.stringValue, !s.isEmpty { task.concurrencyKey = s } else {
                    errors.append(FlowError(.typeMismatch, "'concurrency_key' of \(owner) must be a non-empty string, found \(value.kindName)",
                                            at: value.location))
                }
            case "concurrency_limit":
                task.concurrencyLimit = CommonFieldReader.positiveInt(value, what: "'concurrency_limit' of \(owner)", errors: &errors)
            case "when":
                if let s = value.scalar?.stringValue {
                    do {
                        _ = try ScriptCondition(s)
                        task.when = s
                    } catch {
                        // Point into the expression when it sits on the key's line.
                        var at = value.location
                        if let p = error.position, p.line == 1, !value.isQuotedString { at.column += p.column - 1 }
                        errors.append(FlowError(.invalidValue, "'when' of \(owner) is not a valid condition: \(error.message)", at: at))
                    }
                } else if case .bool(let b)? = value.scalar {
                    task.when = b ? "true" : "false"
                } else {
                    errors.append(FlowError(.typeMismatch, "'when' of \(owner) must be a condition such as event.data.ok == true, found \(value.kindName)", at: value.location))
                }
            case "join":
                switch value.scalar?.stringValue {
                case "all": task.join = .all
                case "any": task.join = .any
                default:
                    errors.append(FlowError(.invalidValue, "'join' of \(owner) must be all or any", at: value.location))
                }
            default:
                break
            }
        }
        // A key without a limit (or the reverse) says nothing on its own.
        if let key = node.members?.first(where: { $0.key == "concurrency_key" }), node["concurrency_limit"] == nil {
            errors.append(FlowError(.missingField, "'concurrency_key' of \(owner) needs 'concurrency_limit': how many attempts may hold '\(key.value.scalar?.stringValue ?? "")' at once",
                                    at: key.keyLocation))
        }
        if let limit = node.members?.first(where: { $0.key == "concurrency_limit" }), node["concurrency_key"] == nil {
            errors.append(FlowError(.missingField, "'concurrency_limit' of \(owner) needs 'concurrency_key': the name of the slots it limits (for this task alone, use 'concurrency')",
                                    at: limit.keyLocation))
        }
    }

    /// `rate_limit: 10/s`, or `rate_limit: {rate: 10/s, key: api, burst: 20}`.
    static func rateLimit(_ node: SourceNode, owner: String, errors: inout [FlowError]) -> RateLimit? {
        func parse(_ node: SourceNode) -> RateLimit? {
            guard let text = node.scalar?.stringValue else {
                errors.append(FlowError(.typeMismatch, "'rate_limit' of \(owner) must be a rate such as 10/s, 600/min or 5000/h, found \(node.kindName)",
                                        at: node.location))
                return nil
            }
            do {
                return try RateLimit(parsing: text)
            } catch {
                errors.append(FlowError(.invalidValue, "\(owner): rate_limit '\(text)': \(error.message)", at: node.location))
                return nil
            }
        }
        guard let members = node.members else { return parse(node) }
        let fields = ["rate", "key", "burst"]
        var limit: RateLimit?
        var key: String?
        var burst: Int?
        for member in members {
            let value = member.value
            switch member.key {
            case "rate":
                limit = parse(value)
            case "key":
                if let s = value.scalar?.stringValue, !s.isEmpty { key = s } else {
                    errors.append(FlowError(.typeMismatch, "'rate_limit.key' of \(owner) must be a non-empty string, found \(value.kindName)", at: value.location))
                }
            case "burst":
                burst = positiveInt(value, what: "'rate_limit.burst' of \(owner)", errors: &errors)
            default:
                errors.append(FlowError(.unknownField, "unknown field '\(member.key)' in 'rate_limit' of \(owner) (rate, key, burst)",
                                        at: member.keyLocation, suggestion: Suggestion.closest(to: member.key, in: fields)))
            }
        }
        if node["rate"] == nil {
            errors.append(FlowError(.missingField, "'rate_limit' of \(owner) needs a rate, e.g. rate_limit: {rate: 10/s, key: api}", at: node.location))
        }
        guard var limit else { return nil }
        limit.key = key
        if let burst { limit.burst = burst }
        return limit
    }

    /// `asset: true`, or `asset: {key, partitions, io, inputs: {upstream: mapping}, version, schedule}`.
    static func asset(_ node: SourceNode, task: String, owner: String, errors: inout [FlowError]) -> AssetSpec? {
        if case .bool(let b)? = node.scalar { return b ? AssetSpec(key: task) : nil }
        guard let members = node.members else {
            errors.append(FlowError(.typeMismatch, "'asset' of \(owner) must be true or a map (key, partitions, io, inputs), found \(node.kindName)",
                                    at: node.location))
            return nil
        }
        var spec = AssetSpec(key: task)
        for member in members {
            let value = member.value
            do throws(PartitionError) {
                switch member.key {
                case "key":
                    guard let key = value.scalar?.stringValue, !key.isEmpty else { throw PartitionError("the asset key must be a non-empty string") }
                    spec.key = key
                case "partitions": spec.partitions = try Partitions(config: value.value)
                case "io": spec.io = try IOManagerSpec(config: value.value)
                case "schedule":
                    spec.schedule = ScheduleReader.read(value, owner: "'asset.schedule' of \(owner)", errors: &errors)
                case "version":
                    guard let version = value.scalar?.textValue, !version.isEmpty else {
                        throw PartitionError("version must be a non-empty string or number")
                    }
                    spec.version = version
                case "inputs":
                    guard let inputs = value.members else { throw PartitionError("inputs maps upstream task names to partition mappings") }
                    for input in inputs {
                        do throws(PartitionError) {
                            spec.mappings[input.key] = try PartitionMapping(config: input.value.value)
                            spec.mappingLocations[input.key] = input.keyLocation
                        } catch {
                            errors.append(FlowError(.invalidValue, "asset of \(owner), input '\(input.key)': \(error.message)", at: input.value.location))
                        }
                    }
                default:
                    errors.append(FlowError(.unknownField, "unknown field '\(member.key)' in 'asset' of \(owner) (key, partitions, io, inputs, version, schedule)",
                                            at: member.keyLocation,
                                            suggestion: Suggestion.closest(to: member.key, in: ["key", "partitions", "io", "inputs", "version", "schedule"])))
                }
            } catch {
                errors.append(FlowError(.invalidValue, "asset of \(owner), \(member.key): \(error.message)", at: value.location))
            }
        }
        return spec
    }

    static func duration(_ node: SourceNode, what: String, errors: inout [FlowError]) -> Duration? {
        switch node.scalar {
        case .string(let s)?:
            if let d = Duration(parsing: s) { return d }
            errors.append(FlowError(.invalidValue, "\(what) is not a duration: '\(s)' (write e.g. 500ms, 10s, 1m30s, 2h)", at: node.location))
        case .int(let i)? where i >= 0: return .seconds(i)
        case .double(let d)? where d >= 0 && d.isFinite: return .milliseconds(Int64(d * 1000))
        case .null?: return nil
        default:
            errors.append(FlowError(.typeMismatch, "\(what) must be a duration such as 10s, found \(node.kindName)", at: node.location))
        }
        return nil
    }

    static func positiveInt(_ node: SourceNode, what: String, errors: inout [FlowError]) -> Int? {
        if let v = node.scalar, v.stringValue == nil, let i = v.intValue {
            if i >= 1 && i <= 1_000_000_000 { return Int(i) }
            errors.append(FlowError(.invalidValue, "\(what) must be at least 1, found \(i)", at: node.location))
            return nil
        }
        errors.append(FlowError(.typeMismatch, "\(what) must be a positive integer, found \(node.kindName)", at: node.location))
        return nil
    }
}

/// Reads `retry:` in Flowgen's form `{max_attempts, initial_backoff}` or the fuller one.
enum RetryReader {
    static let fields = ["max_attempts", "initial_backoff", "max_backoff", "max_delay", "multiplier", "jitter", "retry_on_timeout"]

    static func read(_ node: SourceNode, owner: String, errors: inout [FlowError]) -> RetryPolicy? {
        switch node.kind {
        case .scalar(.int(let n)):
            guard n >= 1 else {
                errors.append(FlowError(.invalidValue, "'retry' of \(owner) must be at least 1 attempt", at: node.location))
                return nil
            }
            return RetryPolicy(maxAttempts: Int(n))
        case .scalar(.bool(false)), .scalar(.null):
            return RetryPolicy.none
        case .mapping(let members):
            var policy = RetryPolicy()
            for member in members {
                let v = member.value
                let what = "'retry.\(member.key)' of \(owner)"
                switch member.key {
                case "max_attempts":
                    if case .scalar(.null) = v.kind { policy.maxAttempts = Int.max } else if let n = CommonFieldReader.positiveInt(v, what: what, errors: &errors) { policy.maxAttempts = n }
                case "initial_backoff":
                    if let d = CommonFieldReader.duration(v, what: what, errors: &errors) { policy.initialBackoff = d }
                case "max_backoff", "max_delay":
                    if let d = CommonFieldReader.duration(v, what: what, errors: &errors) { policy.maxBackoff = d }
                case "multiplier":
                    if let d = v.scalar?.doubleValue, v.scalar?.stringValue == nil, d >= 1 { policy.multiplier = d } else {
                        errors.append(FlowError(.invalidValue, "\(what) must be a number of at least 1", at: v.location))
                    }
                case "jitter":
                    switch v.scalar {
                    case .bool(let b)?: policy.jitter = b ? .full : .none
                    case .string(let s)? where RetryPolicy.Jitter.all.contains(where: { $0.rawValue == s }):
                        policy.jitter = RetryPolicy.Jitter.all.first(where: { $0.rawValue == s })!
                    default:
                        errors.append(FlowError(.invalidValue, "\(what) must be full, equal, none, true or false", at: v.location))
                    }
                case "retry_on_timeout":
                    if case .bool(let b)? = v.scalar { policy.retryOnTimeout = b } else {
                        errors.append(FlowError(.typeMismatch, "\(what) must be true or false", at: v.location))
                    }
                default:
                    errors.append(FlowError(.unknownField, "unknown field '\(member.key)' in 'retry' of \(owner)", at: member.keyLocation,
                                            suggestion: Suggestion.closest(to: member.key, in: fields)))
                }
            }
            if policy.maxBackoff < policy.initialBackoff { policy.maxBackoff = policy.initialBackoff }
            return policy
        default:
            errors.append(FlowError(.typeMismatch, "'retry' of \(owner) must be a mapping such as {max_attempts: 3, initial_backoff: 1s}, found \(node.kindName)", at: node.location))
            return nil
        }
    }
}

/// Reads a flow's `schedule:` mapping: `cron` or `interval`, then `timezone`, `catch_up`,
/// `max_catch_up`, `input` and `partition`. A cron expression's own syntax is checked when the
/// flow is prepared, where the cron parser lives.
enum ScheduleReader {
    static let fields = ["cron", "interval", "timezone", "catch_up", "max_catch_up", "input", "partition"]

    /// `owner` names the mapping in messages: `flow 'schedule'`, or an asset's.
    static func read(_ node: SourceNode, owner: String = "flow 'schedule'", errors: inout [FlowError]) -> ScheduleSpec? {
        guard let members = node.members else {
            errors.append(FlowError(.typeMismatch, "\(owner) must be a mapping such as {cron: \"0 6 * * *\"} or {interval: 15m}, "
                                    + "found \(node.kindName)", at: node.location))
            return nil
        }
        let before = errors.count
        var trigger: ScheduleSpec.Trigger?
        var triggerLocation: SourceLocation?
        var spec = ScheduleSpec(.interval(.seconds(1)))
        for member in members {
            let value = member.value
            let what = "'schedule.\(member.key)'"
            switch member.key {
            case "cron":
                if let expression = value.scalar?.stringValue, !expression.isEmpty {
                    trigger = .cron(expression)
                    triggerLocation = value.location
                } else {
                    errors.append(FlowError(.typeMismatch, "\(what) must be a cron expression such as \"0 6 * * *\", found \(value.kindName)",
                                            at: value.location))
                }
            case "interval":
                guard let interval = CommonFieldReader.duration(value, what: what, errors: &errors) else { continue }
                let (seconds, fraction) = interval.components
                if seconds >= 1 && fraction == 0 {
                    trigger = .interval(interval)
                    triggerLocation = value.location
                } else {
                    errors.append(FlowError(.invalidValue, "\(what) must be a whole number of seconds, at least 1s (ticks are kept "
                                            + "per second), found \(interval.shortDescription)", at: value.location))
                }
            case "timezone":
                if let name = value.scalar?.stringValue, TimeZone(identifier: name) != nil {
                    spec.timeZone = name
                } else {
                    errors.append(FlowError(.invalidValue, "\(what) must be an IANA time zone such as Europe/Berlin, found "
                                            + (value.scalar?.stringValue.map { "'\($0)'" } ?? value.kindName), at: value.location))
                }
            case "catch_up":
                if let name = value.scalar?.stringValue, let policy = ScheduleSpec.CatchUp(rawValue: name) {
                    spec.catchUp = policy
                } else {
                    errors.append(FlowError(.invalidValue, "\(what) must be skip, latest or all", at: value.location,
                                            suggestion: value.scalar?.stringValue.flatMap {
                                                Suggestion.closest(to: $0, in: ScheduleSpec.CatchUp.allValues.map(\.rawValue))
                                            }))
                }
            case "max_catch_up":
                if let n = CommonFieldReader.positiveInt(value, what: what, errors: &errors) { spec.maxCatchUp = n }
            case "input":
                guard case .object(let input) = value.value else {
                    errors.append(FlowError(.typeMismatch, "\(what) must be a mapping merged into each run's input, found \(value.kindName)",
                                            at: value.location))
                    continue
                }
                for key in ScheduleSpec.reservedInputKeys where input[key] != nil {
                    let at = value.members?.first(where: { $0.key == key })?.keyLocation ?? value.location
                    errors.append(FlowError(.invalidValue, "\(what) cannot set '\(key)': every scheduled run gets it from the tick", at: at))
                }
                spec.input = input
            case "partition":
                if let name = value.scalar?.stringValue, ScheduleSpec.partitionExpressions[name] != nil {
                    spec.partition = name
                } else {
                    let known = ScheduleSpec.partitionExpressions.keys.sorted()
                    errors.append(FlowError(.invalidValue, "\(what) must be one of \(known.joined(separator: ", "))", at: value.location,
                                            suggestion: value.scalar?.stringValue.flatMap { Suggestion.closest(to: $0, in: known) }))
                }
            default:
                errors.append(FlowError(.unknownField, "unknown field '\(member.key)' in \(owner) (\(fields.joined(separator: ", ")))",
                                        at: member.keyLocation, suggestion: Suggestion.closest(to: member.key, in: fields)))
            }
        }
        let cron = node["cron"], interval = node["interval"]
        if cron != nil && interval != nil {
            errors.append(FlowError(.invalidValue, "\(owner) has both cron and interval; keep one", at: node.location))
        } else if cron == nil && interval == nil {
            errors.append(FlowError(.missingField, "\(owner) needs cron (e.g. \"0 6 * * *\") or interval (e.g. 15m)", at: node.location))
        }
        if interval != nil, let zone = node["timezone"], spec.partition == nil {
            errors.append(FlowError(.invalidValue, "'schedule.timezone' has no effect on an interval schedule (it applies to cron "
                                    + "and partition)", at: zone.location))
        }
        if let max = node["max_catch_up"], spec.catchUp != .all {
            errors.append(FlowError(.invalidValue, "'schedule.max_catch_up' applies only with catch_up: all", at: max.location))
        }
        guard let trigger else {
            if errors.count == before {  // `interval: ~`
                errors.append(FlowError(.missingField, "\(owner) needs cron or interval", at: node.location))
            }
            return nil
        }
        guard errors.count == before else { return nil }
        spec.trigger = trigger
        spec.location = triggerLocation
        return spec
    }
}

enum FlowNaming {
    /// `flows/orders/ingest.yaml` -> `ingest`.
    static func defaultName(forFile file: String) -> String {
        let base = file.split(separator: "/").last.map(String.init) ?? file
        if let dot = base.lastIndex(of: ".") { return String(base[..<dot]) }
        return base
    }
}
