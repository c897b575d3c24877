import Foundation
import SluiceConfig
import SluiceCore
import SluiceEngine
import SluiceScript

/// Runs a Rhai script on each event (Flowgen's `script` task).
///
/// The script sees `event` (`data`, `subject`, `id`, `timestamp`, `meta`, `error`) and `ctx`
/// (`ctx.meta`, carried forward; `ctx.cache`; `ctx.resource`). What it returns decides what
/// goes on: `()` drops the event, an array makes one event per element, a map with a `data`
/// key and only the event's own keys (`data`, `subject`, `id`, `meta`, `timestamp`, `error`)
/// is a whole envelope, anything else is the new data.
struct ScriptTask: TaskProcessor {
    static let spec = TaskSpec(
        name: "script",
        aliases: [TaskAlias("transform.script")],
        summary: "Transforms each event with a Rhai script: returns new data, an envelope, an array (fan-out) or () (drop).",
        fields: [
            FieldSpec("code", .either(.string, .object([FieldSpec("resource", .string, required: true,
                                                                  summary: "A file under the flow's resources/ folder.")])),
                      required: true, summary: "The script, or `{resource: path}` to load it from a file."),
            FieldSpec("limits", .map(of: .integer),
                      summary: "max_operations (default 1,000,000), max_call_levels, max_string_size, max_array_size, max_map_size."),
        ],
        examples: [
            TaskExample("Enrich, filter and fan out", yaml: """
                flow:
                  name: scripted
                  tasks:
                    - generate:
                        name: orders
                        payload: {id: 7, items: [{sku: a, qty: 2}, {sku: b, qty: 0}]}
                    - script:
                        name: lines
                        code: |
                          let lines = [];
                          for item in event.data.items {
                            if item.qty > 0 { lines.push(#{ order: event.data.id, sku: item.sku.to_upper() }); }
                          }
                          lines
                """),
        ],
        // Bounded by its operation limit, and waits on nothing.
        computesOnly: true
    )

    static let registration = TaskRegistration.processor(spec) { setup in try ScriptTask(setup) }

    /// Nil when the script's resource file is missing: the flow is valid, and each event fails
    /// with `missing` until the file exists at load time.
    let script: CompiledScript?
    /// Whether the script may read `ctx` (it names it, or uses `eval`).
    let readsContext: Bool
    /// Whether it may read the event's meta (`event.meta`, `event` whole, or `ctx`).
    let readsMeta: Bool
    /// The properties of `event` it reads, when it only reads `event.property`: the event it
    /// sees has only those.
    let eventProperties: Set<String>?
    let missing: String?
    let resources: ResourceFolder
    let cache: any KeyValueCache

    init(_ setup: TaskSetup) throws {
        let file = setup.definition.location.file
        resources = ResourceFolder(flowFile: file)
        cache = setup.cache
        var limits = ScriptLimits.flowDefaults
        if case .object(let l)? = setup.config["limits"] {
            for (key, value) in l {
                guard let n = value.intValue, n >= 0 else { continue }
                switch key {
                case "max_operations": limits.maxOperations = Int(n)
                case "max_call_levels": limits.maxCallLevels = Int(min(n, 256))
                case "max_string_size": limits.maxStringSize = Int(n)
                case "max_array_size": limits.maxArraySize = Int(n)
                case "max_map_size": limits.maxMapSize = Int(n)
                default:
                    throw FlowError(.invalidValue, "unknown script limit '\(key)' in task '\(setup.definition.name)'",
                                    at: setup.definition.configLocations["limits"] ?? setup.definition.location)
                }
            }
        }
        let engine = ScriptEngine(limits: limits)
        engine.nullIsUnit = true
        engine.installFlowHelpers()
        ScriptTask.installTaskHelpers(engine)

        let source: String
        var location = setup.definition.configLocations["code"] ?? setup.definition.location
        var inline = true
        switch setup.config["code"] {
        case .string(let s)?: source = s
        case .object(let o)?:
            guard let key = o["resource"]?.stringValue else {
                throw FlowError(.invalidValue, "'code' of task '\(setup.definition.name)' needs 'resource'", at: location)
            }
            do {
                source = try resources.read(key)
            } catch {
                script = nil
                readsContext = false
                readsMeta = false
                eventProperties = nil
                missing = "task '\(setup.definition.name)': \(error)"
                return
            }
            location = SourceLocation(file: resources.path(key), line: 1, column: 1)
            inline = false
        default:
            throw FlowError(.invalidValue, "'code' of task '\(setup.definition.name)' must be a script or {resource: path}", at: location)
        }
        missing = nil
        do {
            let compiled = try engine.compile(source, scope: ["event", "ctx"])
            script = compiled
            readsContext = compiled.mayRead("ctx")
            readsMeta = readsContext || compiled.mayRead("event", property: "meta")
            eventProperties = compiled.propertiesRead(of: "event")
        } catch {
            let at = inline ? ScriptTask.fileLocation(of: error.position, inScalarAt: location) : ScriptTask.offset(location, error.position)
            throw FlowError(.invalidValue, "script of task '\(setup.definition.name)': \(error.message)", at: at)
        }
    }

    func process(_ event: Event, _ context: TaskContext) async throws -> TaskOutput {
        guard let script else { throw TaskError.permanent(missing ?? "no script", code: .invalidConfig) }
        var scope = ScriptScope()
        // One conversion of the meta serves `event.meta` and `ctx.meta`; if the script leaves
        // `ctx.meta` alone it is not converted back. A script that never names `ctx` gets
        // `()` there, and nothing is built for it; one that reads neither `ctx` nor `event.meta`
        // (nor `event` whole) gets no meta converted.
        let meta = readsMeta ? Dynamic(Value.object(event.meta)) : .unit
        if let eventProperties {
            scope.push("event", Dynamic(event: event, meta: meta, only: eventProperties))
        } else {
            scope.push("event", Dynamic(event: event, meta: meta))
        }
        if readsContext {
            let namespace = context.flowName.isEmpty ? "" : context.flowName + "."
            scope.push("ctx", .map([
                "meta": meta,
                "cache": .host(CacheObject(cache, namespace: namespace)),
                "resource": .host(ResourceObject(resources)),
                "flow": .string(context.flowName),
                "task": .string(context.taskName),
                "run_id": .string(context.runID),
            ]))
        } else {
            scope.push("ctx", .unit)
        }
        let result: Dynamic
        do {
            result = try script.run(scope: &scope) { line in context.log(line) }
        } catch {
            // The same event would fail the same way: no retry.
            throw TaskError.permanent("script error: \(error)", code: .invalidInput)
        }
        var base = event
        if readsContext, case .map(let ctx) = scope.variables[1].value, let after = ctx["meta"], !after.isUnchangedCopy(of: meta),
           case .object(let changed) = after.eventValue {
            base.meta = changed
        }
        switch result {
        case .unit: return .drop
        case .array(let items): return .events(items.map { ScriptTask.event(from: $0, base: base) })
        default: return .event(ScriptTask.event(from: result, base: base))
        }
    }

    /// An outgoing event: an envelope map sets data, subject and id; anything else is the data.
    /// An envelope has a `data` key and no keys but the event's own (`data`, `subject`, `id`,
    /// `meta`, `timestamp`, `error`), so a record such as `#{id: 7, name: "x"}` stays data.
    static func event(from value: Dynamic, base: Event) -> Event {
        var out = base
        if case .map(let m) = value, let data = m["data"], m.keys.allSatisfy(envelopeKeys.contains) {
            out.data = data.eventValue
            if case .string(let s)? = m["subject"] { out.subject = s }
            if case .string(let s)? = m["id"] { out.id = s }
            if case .object(let meta)? = m["meta"]?.eventValue { out.meta.merge(meta) { _, new in new } }
        } else {
            out.data = value.eventValue
        }
        return out
    }

    /// The members of the `event` a script sees: `timestamp` and `error` are allowed (and
    /// ignored) so that a script may return `event` itself, changed or not.
    static let envelopeKeys = Set(Dynamic.eventFields)

    /// Where a script position lands in the flow file, for a script written inline.
    static func fileLocation(of position: ScriptPosition?, inScalarAt location: SourceLocation) -> SourceLocation {
        guard let position else { return location }
        let lines = (try? String(contentsOfFile: location.file, encoding: .utf8))?.split(separator: "\n", omittingEmptySubsequences: false)
        if let lines, location.line - 1 < lines.count {
            let line = lines[location.line - 1]
            let rest = line.dropFirst(max(0, location.column - 1)).trimmingCharacters(in: .whitespaces)
            if rest.hasPrefix("|") || rest.hasPrefix(">"), location.line < lines.count {
                // A block scalar: the script starts on the next line, indented.
                let first = lines[location.line]
                let indent = first.prefix { $0 == " " }.count
                return SourceLocation(file: location.file, line: location.line + position.line, column: indent + position.column)
            }
            let quoted = rest.hasPrefix("\"") || rest.hasPrefix("'")
            if position.line == 1 {
                return SourceLocation(file: location.file, line: location.line, column: location.column + position.column - (quoted ? 0 : 1))
            }
        }
        return offset(location, position)
    }

    static func offset(_ location: SourceLocation, _ position: ScriptPosition?) -> SourceLocation {
        guard let position else { return location }
        return SourceLocation(file: location.file, line: location.line + position.line - 1,
                              column: position.line == 1 ? location.column + position.column - 1 : position.column)
    }

    /// Helpers that need the engine's other parts: `render(template, data)`.
    static func installTaskHelpers(_ engine: ScriptEngine) {
        engine.register("render") { (args: [Dynamic]) throws(ScriptError) -> Dynamic? in
            guard args.count == 1 || args.count == 2, case .string(let text) = args[0] else { return nil }
            let template: Template
            do {
                template = try Template(text)
            } catch {
                throw ScriptError(.runtime, "ErrorRuntime", "render: \(error)")
            }
            var context = Value.Object()
            if args.count == 2 {
                if case .object(let o) = args[1].eventValue {
                    for (k, v) in o { context[k] = v }
                    if context["event"] == nil { context["event"] = ["data": .object(o)] }
                } else {
                    context["event"] = ["data": args[1].eventValue]
                }
            }
            let rendered: Value = template.render(context)
            if case .string(let s) = rendered { return .string(s) }
            return .string(rendered.jsonString())
        }
    }
}

/// Files a flow reads by key: `<flow folder>/resources/<key>`, then `<flow folder>/<key>`.
final class ResourceFolder: Sendable {
    let directory: String
    private let cached = Mutex<[String: String]>([:])

    init(flowFile: String) {
        directory = (flowFile as NSString).deletingLastPathComponent
    }

    func path(_ key: String) -> String {
        let underResources = (directory as NSString).appendingPathComponent("resources/" + key)
        if FileManager.default.fileExists(atPath: underResources) { return underResources }
        return (directory as NSString).appendingPathComponent(key)
    }

    struct Missing: Error, CustomStringConvertible {
        var key: String
        var tried: String
        var description: String { "resource '\(key)' not found (looked for \(tried))" }
    }

    func read(_ key: String) throws -> String {
        if let text = cached.withLock({ $0[key] }) { return text }
        guard !key.split(separator: "/").contains(".."), !key.hasPrefix("/") else {
            throw Missing(key: key, tried: "a path inside the flow's folder; '..' and absolute paths are refused")
        }
        let p = path(key)
        guard let text = try? String(contentsOfFile: p, encoding: .utf8) else { throw Missing(key: key, tried: p) }
        cached.withLock { $0[key] = text }
        return text
    }
}

import Synchronization

/// `ctx.cache` inside a script: keys are namespaced by flow.
final class CacheObject: HostObject {
    let cache: any KeyValueCache
    let namespace: String
    init(_ cache: any KeyValueCache, namespace: String) {
        self.cache = cache
        self.namespace = namespace
    }

    var typeName: String { "Cache" }

    func call(_ name: String, _ a: [Dynamic]) throws(ScriptError) -> Dynamic? {
        func key(_ v: Dynamic) throws(ScriptError) -> String {
            guard case .string(let s) = v else {
                throw ScriptError(.runtime, "ErrorMismatchDataType", "ctx.cache.\(name): the key must be a string, not \(v.typeName)")
            }
            return namespace + s
        }
        func ttl(_ i: Int) throws(ScriptError) -> Double? {
            guard a.count > i else { return nil }
            switch a[i] {
            case .int(let n): return Double(n)
            case .float(let f): return f
            case .unit: return nil
            default: throw ScriptError(.runtime, "ErrorMismatchDataType", "ctx.cache.\(name): the ttl must be seconds, not \(a[i].typeName)")
            }
        }
        switch (name, a.count) {
        case ("get", 1): return try cache.get(key(a[0])).map(Dynamic.init) ?? .unit
        case ("put", 2), ("put", 3):
            cache.put(try key(a[0]), a[1].eventValue, ttl: try ttl(2))
            return .bool(true)
        case ("create", 2), ("create", 3): return .bool(cache.create(try key(a[0]), a[1].eventValue, ttl: try ttl(2)))
        case ("delete", 1): return .bool(cache.delete(try key(a[0])))
        case ("list_keys", 0), ("list_keys", 1):
            let prefix = a.isEmpty ? namespace : try key(a[0])
            return .array(cache.keys(prefix: prefix).map { .string(String($0.dropFirst(namespace.count))) })
        default: return nil
        }
    }
}

/// `ctx.resource.get(key)`: the text of a resource file, or `()` when there is none.
final class ResourceObject: HostObject {
    let folder: ResourceFolder
    init(_ folder: ResourceFolder) { self.folder = folder }
    var typeName: String { "Resources" }

    func call(_ name: String, _ a: [Dynamic]) throws(ScriptError) -> Dynamic? {
        guard name == "get", a.count == 1, case .string(let key) = a[0] else { return nil }
        return (try? folder.read(key)).map { .string($0) } ?? .unit
    }
}
