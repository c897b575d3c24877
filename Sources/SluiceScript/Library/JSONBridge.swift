import SluiceCore

/// JSON text to script values and back, the way Rhai's `parse_json` and `to_json` do it, and
/// conversion between script values and the engine's event values.
enum JSONBridge {
    static func parse(_ text: String, _ pos: ScriptPosition) throws(Signal) -> Dynamic {
        do {
            return Dynamic(try Value.parseJSON(text))
        } catch {
            throw .runtime("ErrorParsing", "Invalid JSON: \(error)", pos)
        }
    }

    static func render(_ v: Dynamic) -> String {
        var out = ""
        write(v, &out)
        return out
    }

    private static func write(_ v: Dynamic, _ out: inout String) {
        switch v {
        case .unit: out += "null"
        case .map(let m):
            out += "{"
            for (i, k) in m.keys.sorted().enumerated() {
                if i > 0 { out += "," }
                out += Dynamic.string(k).debugText
                out += ":"
                write(m[k]!, &out)
            }
            out += "}"
        case .array(let a):
            out += "["
            for (i, e) in a.enumerated() {
                if i > 0 { out += "," }
                write(e, &out)
            }
            out += "]"
        case .fnPtr(let f):
            if f.curried.isEmpty {
                out += Dynamic.string(f.name).debugText
            } else {
                write(.array([.string(f.name)] + f.curried), &out)
            }
        case .shared(let box): write(box.value, &out)
        default: out += v.debugText
        }
    }
}

extension Dynamic {
    /// A script value for an event value: objects become maps, null becomes `()`.
    public init(_ value: Value) {
        switch value {
        case .null: self = .unit
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .double(let d): self = .float(d)
        case .string(let s): self = .string(s)
        case .bytes(let b): self = .blob(b)
        case .array(let a): self = .array(a.map(Dynamic.init))
        case .object(let o):
            var m: [String: Dynamic] = [:]
            m.reserveCapacity(o.count)
            for (k, v) in o { m[k] = Dynamic(v) }
            self = .map(m)
        }
    }

    /// The `event` a script sees: data, subject, id, timestamp, meta and, after a failure, error.
    /// `meta`, when given, is the event's meta already converted (shared, not converted twice).
    public init(event: Event, meta: Dynamic? = nil) {
        self.init(event: event, meta: meta, only: Self.eventFields)
    }

    /// The members of the `event` a script sees, in the order they are built.
    public static let eventFields = ["data", "subject", "id", "timestamp", "meta", "error"]

    /// The `event` for a script that reads only `properties` of it (see
    /// `CompiledScript.propertiesRead(of:)`): the others are left out, not converted.
    public init(event: Event, meta: Dynamic?, only properties: some Collection<String>) {
        var m: [String: Dynamic] = Dictionary(minimumCapacity: properties.count)
        for p in properties {
            switch p {
            case "data": m[p] = Dynamic(event.data)
            case "subject": m[p] = .string(event.subject)
            case "id": m[p] = .string(event.id)
            case "timestamp": m[p] = .int(event.timestamp)
            case "meta": m[p] = meta ?? Dynamic(Value.object(event.meta))
            case "error": if let e = event.error { m[p] = .map(["message": .string(e.message), "task": .string(e.task)]) }
            default: break
            }
        }
        self = .map(m)
    }

    /// The event value for a script value. Maps come out with sorted keys; chars become strings;
    /// values with no data form (functions, host objects) become their text.
    public var eventValue: Value {
        switch self {
        case .unit: return .null
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .float(let f): return .double(f)
        case .char(let c): return .string(String(Character(c)))
        case .string(let s): return .string(s)
        case .blob(let b): return .bytes(b)
        case .array(let a): return .array(a.map(\.eventValue))
        case .map(let m):
            var o = Value.Object(minimumCapacity: m.count)
            for (k, v) in m.sorted(by: { $0.key < $1.key }) { o[k] = v.eventValue }
            return .object(o)
        case .timestamp(let t): return .double(t)
        case .shared(let box): return box.value.eventValue
        case .sequence(let s): return .array(s.collect(limit: 1 << 20).map(\.eventValue))
        case .range, .fnPtr, .host: return .string(displayText)
        }
    }
}

extension Dynamic {
    /// True when both are maps held in the same storage: one was copied from the other and
    /// neither has been changed since (a change copies the storage first). False says nothing.
    public func isUnchangedCopy(of other: Dynamic) -> Bool {
        guard case .map(let a) = self, case .map(let b) = other else { return false }
        // A native dictionary is one reference to its storage.
        return unsafeBitCast(a, to: UnsafeRawPointer.self) == unsafeBitCast(b, to: UnsafeRawPointer.self)
    }
}
