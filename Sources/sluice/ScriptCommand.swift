import ArgumentParser
import Foundation
import SluiceCore
import SluiceScript

struct ScriptCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "script",
        abstract: "Work with Rhai scripts.",
        subcommands: [ScriptEvalCommand.self]
    )
}

struct ScriptEvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Run a Rhai script and print its value.",
        discussion: """
            With --jsonl, reads one JSON request per line on standard input and answers one JSON line each:
              {"id", "script", "mode": "eval|run|compile|expression|compile_expression", "limits": {...}, "scope": [...]}
              -> {"id", "ok": true, "value", "type"} or {"id", "ok": false, "phase", "error_type", "message"}
            """
    )

    @Argument(help: "A script file (.rhai).")
    var file: String?

    @Option(name: .shortAndLong, help: "Script text to run instead of a file.")
    var expression: String?

    @Flag(name: .long, help: "Answer JSON requests from standard input, one per line.")
    var jsonl = false

    @Option(name: .long, help: "Stop after this many operations (0: no limit).")
    var maxOperations = 0

    func run() throws {
        if jsonl {
            ScriptProtocol.serve()
            return
        }
        let source: String
        if let expression {
            source = expression
        } else if let file {
            if file == "-" {
                source = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            } else {
                guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                    Console.error("cannot read \(file)")
                    throw ExitCode(ExitStatus.invalidInput)
                }
                source = text
            }
        } else {
            Console.error("give a script file, '-' for standard input, or -e 'code'")
            throw ExitCode(ExitStatus.invalidInput)
        }
        var limits = ScriptLimits()
        limits.maxOperations = maxOperations
        let engine = ScriptEngine(limits: limits)
        do {
            let value = try engine.eval(source)
            if !value.isUnitValue { Console.output(value.displayText) }
        } catch {
            let place = file.map { "\($0):" } ?? ""
            let at = error.position.map { "\(place)\($0.line):\($0.column): " } ?? place
            Console.error("\(at)\(error.phase == .parse ? "syntax" : "runtime") error: \(error.message)")
            throw ExitCode(error.phase == .parse ? ExitStatus.invalidInput : ExitStatus.runFailed)
        }
    }
}

extension Dynamic {
    var isUnitValue: Bool {
        if case .unit = self { return true }
        return false
    }
}

/// The conformance protocol: JSON requests in, JSON answers out, one per line.
enum ScriptProtocol {
    /// JSON has no infinity or NaN; Python's reader accepts these spellings, written in place of the marks.
    static let infinityMark = "\u{1}Infinity"
    static let nanMark = "\u{1}NaN"

    static func serve() {
        while let line = readLine(strippingNewline: true) {
            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            let answer = respond(line)
            let text = answer.jsonString()
                .replacingOccurrences(of: "\"\(infinityMark)\"", with: "Infinity")
                .replacingOccurrences(of: "\"-\(infinityMark)\"", with: "-Infinity")
                .replacingOccurrences(of: "\"\(nanMark)\"", with: "NaN")
            FileHandle.standardOutput.write(Data((text + "\n").utf8))
        }
    }

    static func respond(_ line: String) -> Value {
        let request: Value
        do {
            request = try Value.parseJSON(line)
        } catch {
            return ["ok": false, "phase": "request", "error_type": "BadRequest", "message": .string("\(error)")]
        }
        let id = request["id"] ?? .null
        guard let script = request["script"]?.stringValue else {
            return ["id": id, "ok": false, "phase": "request", "error_type": "BadRequest", "message": "no script"]
        }
        let mode = request["mode"]?.stringValue ?? "eval"
        let engine = ScriptEngine(limits: limits(request["limits"]))
        engine.onPrint = { _ in }
        engine.onDebug = { _ in }
        var scope = ScriptScope()
        for v in request["scope"]?.arrayValue ?? [] {
            guard let name = v["name"]?.stringValue else { continue }
            scope.push(name, scopeValue(v["value"] ?? .null, type: v["type"]?.stringValue), constant: v["constant"]?.boolValue ?? false)
        }
        do {
            let expressionOnly = mode == "expression" || mode == "compile_expression"
            let compiled = try engine.compile(script, expression: expressionOnly, scope: scope.names, constants: scope.constants)
            if mode.hasPrefix("compile") { return ["id": id, "ok": true, "value": .null, "type": "()"] }
            let value = try compiled.run(scope: scope)
            return ["id": id, "ok": true, "value": json(value), "type": .string(value.typeName)]
        } catch {
            return ["id": id, "ok": false, "phase": .string(error.phase.rawValue), "error_type": .string(error.kind),
                    "message": .string(error.description)]
        }
    }

    static func limits(_ v: Value?) -> ScriptLimits {
        var l = ScriptLimits()
        guard let v else { return l }
        if v["debug_build_default_limits"]?.boolValue == true {
            l.maxCallLevels = 8
            l.maxExpressionDepth = 32
            l.maxFunctionExpressionDepth = 16
        }
        if let n = v["max_operations"]?.intValue { l.maxOperations = Int(n) }
        if let n = v["max_call_levels"]?.intValue { l.maxCallLevels = Int(n) }
        if let n = v["max_string_size"]?.intValue { l.maxStringSize = Int(n) }
        if let n = v["max_array_size"]?.intValue { l.maxArraySize = Int(n) }
        if let n = v["max_map_size"]?.intValue { l.maxMapSize = Int(n) }
        if let n = v["max_variables"]?.intValue { l.maxVariables = Int(n) }
        if let n = v["max_functions"]?.intValue { l.maxFunctions = Int(n) }
        if let d = v["max_expr_depths"]?.arrayValue, d.count == 2 {
            l.maxExpressionDepth = Int(d[0].intValue ?? 0)
            l.maxFunctionExpressionDepth = Int(d[1].intValue ?? 0)
        }
        return l
    }

    static func scopeValue(_ v: Value, type: String?) -> Dynamic {
        switch (type, v) {
        case ("char", .string(let s)): return s.unicodeScalars.first.map { .char($0) } ?? .unit
        case ("f64", .int(let i)): return .float(Double(i))
        case ("blob", .array(let a)): return .blob(a.map { UInt8(truncatingIfNeeded: $0.intValue ?? 0) })
        default: return Dynamic(v)
        }
    }

    /// Values in the protocol's form: blobs as byte arrays, non-finite floats as JSON's extensions.
    static func json(_ v: Dynamic) -> Value {
        switch v {
        case .float(let f) where !f.isFinite: return .string(f.isNaN ? nanMark : (f > 0 ? infinityMark : "-" + infinityMark))
        case .blob(let b): return .array(b.map { .int(Int64($0)) })
        case .array(let a): return .array(a.map(json))
        case .map(let m):
            var o = Value.Object()
            for k in m.keys.sorted() { o[k] = json(m[k]!) }
            return .object(o)
        default: return v.eventValue
        }
    }
}
