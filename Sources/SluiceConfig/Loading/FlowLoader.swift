import Foundation
import SluiceCore

/// Loads flow files: native YAML (a superset of Flowgen's), the same shape in JSON, and
/// FlowEngine workflow JSON. Validation is strict and reports every problem of a file at once.
public struct FlowLoader: Sendable {
    public let catalog: TaskCatalog

    public init(catalog: TaskCatalog) {
        self.catalog = catalog
    }

    /// Loads and validates the flow file at `path`.
    public func load(path: String) throws(FlowErrors) -> FlowDefinition {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw FlowErrors([FlowError(.io, "cannot read flow file: \(FlowLoader.describeIOError(error, path: path))", at: nil)])
        }
        return try load(text: text, file: path)
    }

    /// Loads and validates flow text; `file` names it in messages and decides the format
    /// together with the content (`.json`, or a document starting with `{`, is JSON).
    /// `deferringUnknownDependencies`: `depends_on` and asset `inputs` may name tasks defined
    /// elsewhere, such as code assets; `CodeAssets.adding(to:)` checks them in the combined graph.
    public func load(text: String, file: String, deferringUnknownDependencies: Bool = false) throws(FlowErrors) -> FlowDefinition {
        let trimmed = text.drop(while: { $0.isWhitespace })
        let root: SourceNode?
        if file.hasSuffix(".json") || trimmed.first == "{" {
            let bytes = Array(text.utf8)
            var parser = JSONParser(bytes: bytes, builder: SourceNodeBuilder(file: file, bytes: bytes))
            do {
                root = try parser.parseDocument()
            } catch {
                throw FlowErrors([FlowError(.syntax, "invalid JSON: \(error.message)", at: SourceLocation(file: file, line: error.line, column: error.column))])
            }
        } else {
            root = try YAMLReader.read(text, file: file)
        }
        guard let root, root.members != nil else {
            throw FlowErrors([FlowError(.syntax, "a flow file must be a mapping with a 'flow:' key (or FlowEngine workflow JSON with 'nodes')",
                                        at: root?.location ?? SourceLocation(file: file, line: 1, column: 1))])
        }
        var (flow, errors) = root["nodes"] != nil && root["flow"] == nil
            ? try FlowEngineReader(catalog: catalog, file: file).read(root)
            : try NativeFlowReader(catalog: catalog, file: file).read(root)
        errors += flow.graphErrors(deferringUnknownDependencies: deferringUnknownDependencies)
        if !errors.isEmpty {
            // File order, so the first error is the first one a reader meets.
            throw FlowErrors(errors.enumerated().sorted { a, b in
                let la = a.element.location, lb = b.element.location
                if let la, let lb, (la.line, la.column) != (lb.line, lb.column) { return (la.line, la.column) < (lb.line, lb.column) }
                return a.offset < b.offset
            }.map(\.element))
        }
        flow.file = file
        return flow
    }

    /// Every flow file under `path` (a file, or a folder searched recursively for .yaml, .yml and .json).
    public static func flowFiles(at path: String) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return [path] }
        guard isDirectory.boolValue else { return [path] }
        let enumerator = FileManager.default.enumerator(atPath: path)
        var files: [String] = []
        while let item = enumerator?.nextObject() as? String {
            if item.hasSuffix(".yaml") || item.hasSuffix(".yml") || item.hasSuffix(".json") {
                files.append((path as NSString).appendingPathComponent(item))
            }
        }
        return files.sorted()
    }

    static func describeIOError(_ error: Error, path: String) -> String {
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) { return "\(path): no such file" }
        if isDirectory.boolValue { return "\(path) is a directory" }
        return "\(path): \(error.localizedDescription)"
    }
}
