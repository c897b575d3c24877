import Foundation
import SluiceCore
import Synchronization

/// Writes an asset's value for one partition and reads it back for the assets downstream.
/// Sluice has memory, files and table managers; a program embedding Sluice registers its own
/// (an object store, Parquet, a warehouse) with `AssetRuntime.register(kind:_:)`.
public protocol IOManager: Sendable {
    /// Stores `value` as the asset's partition (`""` when unpartitioned), replacing what was
    /// there. Answers a short description of what was written (rows, bytes, where).
    func write(_ value: Value, asset: String, partition: String) async throws -> Value
    /// The stored value; `AssetError.missing` when there is none.
    func read(asset: String, partition: String) async throws -> Value
}

/// A value that cannot be written or read, or a materialization that cannot be planned.
public struct AssetError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }

    package static func missing(_ asset: String, _ partition: String, _ why: String) -> AssetError {
        AssetError("asset '\(asset)'\(partition.isEmpty ? "" : " [\(partition)]") has no stored value: \(why)")
    }
}

/// What a value is, in a few words, for materialization records: its type and size.
public enum ValueSummary {
    public static func of(_ value: Value) -> Value {
        var o: Value.Object = ["type": .string(value.typeName)]
        switch value {
        case .array(let a): o["rows"] = .int(Int64(a.count))
        case .object(let d): o["keys"] = .int(Int64(d.count))
        case .string(let s): o["length"] = .int(Int64(s.count))
        default: break
        }
        o["bytes"] = .int(Int64(value.jsonString().utf8.count))
        return .object(o)
    }
}

// MARK: - Memory

/// Values in this process's memory, shared by every flow of the process. A value whose process
/// has ended is read from the checkpoint of the run that made it (see `AssetRuntime`).
public final class MemoryIOManager: IOManager {
    private let values = Mutex<[String: Value]>([:])

    public init() {}

    private static func slot(_ asset: String, _ partition: String) -> String { asset + "\u{0}" + partition }

    public func write(_ value: Value, asset: String, partition: String) async throws -> Value {
        values.withLock { $0[Self.slot(asset, partition)] = value }
        var summary = ValueSummary.of(value)
        summary["io"] = "memory"
        return summary
    }

    public func read(asset: String, partition: String) async throws -> Value {
        guard let v = values.withLock({ $0[Self.slot(asset, partition)] }) else {
            throw AssetError.missing(asset, partition, "not in this process's memory")
        }
        return v
    }
}

// MARK: - Files

/// One file per partition under a directory: `<dir>/<partition>.<ext>` (`value.<ext>` when
/// unpartitioned), written to a temporary file and renamed into place, so a reader never sees
/// half a file. JSON holds any value; JSON lines and CSV hold an array of rows (CSV rows are
/// objects; the header is the union of their keys in first-seen order).
public struct FileIOManager: IOManager {
    public let directory: String
    public let format: IOManagerSpec.FileFormat

    public init(directory: String, format: IOManagerSpec.FileFormat) {
        self.directory = directory
        self.format = format
    }

    public func path(partition: String) -> String {
        // `|` joins multi-partition keys and `:` is in hourly ones; both are awkward in file names.
        let name = partition.isEmpty ? "value" : partition.replacingOccurrences(of: "|", with: "__").replacingOccurrences(of: ":", with: "-")
        return (directory as NSString).appendingPathComponent(name + "." + format.rawValue)
    }

    public func write(_ value: Value, asset: String, partition: String) async throws -> Value {
        let text: String
        switch format {
        case .json:
            text = value.jsonString() + "\n"
        case .jsonl:
            guard case .array(let rows) = value else {
                throw AssetError("asset '\(asset)' wrote \(value.typeName) to a jsonl file: jsonl holds an array of rows")
            }
            text = rows.map { $0.jsonString() + "\n" }.joined()
        case .csv:
            text = try CSV.encode(value, asset: asset)
        }
        let target = path(partition: partition)
        let fm = FileManager.default
        do {
            try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let temporary = target + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            try Data(text.utf8).write(to: URL(fileURLWithPath: temporary))
            if rename(temporary, target) != 0 {
                let reason = String(cString: strerror(errno))
                try? fm.removeItem(atPath: temporary)
                throw AssetError("cannot move the new value of asset '\(asset)' into \(target): \(reason)")
            }
        } catch let error as AssetError {
            throw error
        } catch {
            throw AssetError("cannot write asset '\(asset)' to \(target): \(error.localizedDescription)")
        }
        var summary = ValueSummary.of(value)
        summary["io"] = "files"
        summary["path"] = .string(target)
        summary["bytes"] = .int(Int64(text.utf8.count))
        return summary
    }

    public func read(asset: String, partition: String) async throws -> Value {
        let file = path(partition: partition)
        guard let data = FileManager.default.contents(atPath: file) else {
            throw AssetError.missing(asset, partition, "\(file) does not exist")
        }
        let text = String(decoding: data, as: UTF8.self)
        do {
            switch format {
            case .json:
                return try Value.parseJSON(text)
            case .jsonl:
                var rows: [Value] = []
                for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
                where !line.trimmingCharacters(in: .whitespaces).isEmpty {
                    do {
                        rows.append(try Value.parseJSON(String(line)))
                    } catch {
                        throw AssetError("\(file):\(n + 1): not JSON: \(error)")
                    }
                }
                return .array(rows)
            case .csv:
                return try CSV.decode(text, file: file)
            }
        } catch let error as AssetError {
            throw error
        } catch {
            throw AssetError("\(file): not JSON: \(error)")
        }
    }
}

/// RFC 4180 CSV for arrays of flat objects: fields with commas, quotes or line breaks are
/// quoted, quotes doubled. Read back, a field that is a JSON number, true, false or empty
/// comes back as that value; everything else is a string.
enum CSV {
    static func encode(_ value: Value, asset: String) throws -> String {
        guard case .array(let rows) = value else {
            throw AssetError("asset '\(asset)' wrote \(value.typeName) to a csv file: csv holds an array of objects")
        }
        var header: [String] = []
        var seen = Set<String>()
        for (i, row) in rows.enumerated() {
            guard case .object(let o) = row else {
                throw AssetError("asset '\(asset)': row \(i + 1) is \(row.typeName); csv rows must be objects")
            }
            for key in o.keys where seen.insert(key).inserted { header.append(key) }
        }
        var out = header.map(field).joined(separator: ",") + "\n"
        for row in rows {
            out += header.map { key -> String in
                switch row[key] {
                case nil, .null?: return ""
                case .string(let s)?: return field(s)
                case let v?: return field(v.textValue)
                }
            }.joined(separator: ",") + "\n"
        }
        return out
    }

    private static func field(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    static func decode(_ text: String, file: String) throws -> Value {
        var records: [[String]] = []
        var record: [String] = []
        var field = ""
        var quoted = false
        var line = 1
        var chars = text.makeIterator()
        var pending: Character? = nil
        func next() -> Character? {
            if let p = pending { pending = nil; return p }
            return chars.next()
        }
        while let c = next() {
            if quoted {
                if c == "\"" {
                    if let n = next() {
                        if n == "\"" { field.append("\"") } else { quoted = false; pending = n }
                    } else {
                        quoted = false
                    }
                } else {
                    if c == "\n" { line += 1 }
                    field.append(c)
                }
                continue
            }
            switch c {
            case "\"" where field.isEmpty: quoted = true
            case ",":
                record.append(field)
                field = ""
            case "\n", "\r\n":
                record.append(field)
                records.append(record)
                record = []
                field = ""
                line += 1
            case "\r": break
            default: field.append(c)
            }
        }
        if quoted { throw AssetError("\(file):\(line): a quoted field is not closed") }
        if !field.isEmpty || !record.isEmpty {
            record.append(field)
            records.append(record)
        }
        guard let header = records.first else { return [] }
        var rows: [Value] = []
        for (i, r) in records.dropFirst().enumerated() {
            guard r.count == header.count else {
                throw AssetError("\(file):\(i + 2): \(r.count) fields, the header has \(header.count)")
            }
            var o = Value.Object()
            for (k, v) in zip(header, r) { o[k] = scalar(v) }
            rows.append(.object(o))
        }
        return .array(rows)
    }

    private static func scalar(_ s: String) -> Value {
        if s.isEmpty { return .null }
        if s == "true" { return true }
        if s == "false" { return false }
        if let first = s.first, first == "-" || first.isNumber, let v = try? Value.parseJSON(s), v.doubleValue != nil { return v }
        return .string(s)
    }
}
