import Foundation

/// What makes a task an asset: the key its value is stored under, how it is partitioned, the
/// I/O manager that writes and reads its value, and how each upstream asset's partitions map
/// onto its own.
public struct AssetSpec: Sendable, Equatable {
    public var key: String
    public var partitions: Partitions?
    public var io: IOManagerSpec
    /// Per upstream task: which of its partitions one partition of this asset reads (identity when absent).
    public var mappings: [String: PartitionMapping]
    /// Where each mapping was written, for errors found when the graph is checked.
    public var mappingLocations: [String: SourceLocation]
    /// Written by the author to say when the code changed (code assets, whose closure Sluice
    /// cannot hash); otherwise the definition's fingerprint is the version.
    public var version: String?
    /// When the asset materializes by itself (`sluice serve`): each tick materializes the
    /// partition its `partition` expression names. Not part of the version: a new schedule
    /// does not make stored values stale.
    public var schedule: ScheduleSpec?

    public init(key: String, partitions: Partitions? = nil, io: IOManagerSpec = .memory, mappings: [String: PartitionMapping] = [:],
                mappingLocations: [String: SourceLocation] = [:]) {
        self.key = key
        self.partitions = partitions
        self.io = io
        self.mappings = mappings
        self.mappingLocations = mappingLocations
    }

    public func mapping(from upstream: String) -> PartitionMapping { mappings[upstream] ?? .identity }

    /// What identifies this declaration, for version hashes: everything but source locations.
    public var fingerprint: String {
        let inputs = mappings.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        return "key=\(key);partitions=\(partitions.map { String(describing: $0) } ?? "none");io=\(io);inputs=\(inputs);version=\(version ?? "")"
    }
}

/// Where an asset's values live.
public enum IOManagerSpec: Sendable, Equatable {
    /// In this process's memory.
    case memory
    /// One file per partition under `path`.
    case files(path: String, format: FileFormat)
    /// A table in the store's database (or the one at `url`).
    case table(name: String, url: String?)

    public enum FileFormat: String, Sendable, CaseIterable { case json, jsonl, csv }

    /// `memory`, `{files: {path: data/cleaned, format: jsonl}}` or `{table: {name: cleaned, url?: ...}}`.
    public init(config: Value) throws(PartitionError) {
        if config == "memory" {
            self = .memory
            return
        }
        guard case .object(let o) = config, o.count == 1, let kind = o.keys.first, case .object(let body)? = o[kind] else {
            throw PartitionError("io must be memory, {files: {path: ..., format: json|jsonl|csv}} or {table: {name: ...}}")
        }
        switch kind {
        case "files":
            for field in body.keys where !["path", "format"].contains(field) {
                throw PartitionError("unknown field '\(field)' in files io (path, format)")
            }
            guard let path = body["path"]?.stringValue, !path.isEmpty else { throw PartitionError("files io needs a path") }
            let formatName = body["format"]?.stringValue ?? "json"
            guard let format = FileFormat(rawValue: formatName) else {
                throw PartitionError("unknown file format '\(formatName)' (json, jsonl, csv)")
            }
            self = .files(path: path, format: format)
        case "table":
            for field in body.keys where !["name", "url"].contains(field) {
                throw PartitionError("unknown field '\(field)' in table io (name, url)")
            }
            guard let name = body["name"]?.stringValue, name.range(of: "^[A-Za-z_][A-Za-z0-9_]*$", options: .regularExpression) != nil else {
                throw PartitionError("table io needs a name made of letters, digits and _ (not starting with a digit)")
            }
            self = .table(name: name, url: body["url"]?.stringValue)
        default:
            throw PartitionError("unknown io '\(kind)' (memory, files, table)")
        }
    }
}

extension FlowDefinition {
    /// Problems in how assets fit together: mappings naming tasks that are not upstream
    /// assets, and mappings the two assets' partitions cannot follow. With
    /// `deferringUnknownDependencies`, a mapping of a task defined elsewhere waits for the
    /// combined graph.
    public func assetErrors(deferringUnknownDependencies: Bool = false) -> [FlowError] {
        var errors: [FlowError] = []
        var keys: [String: TaskDefinition] = [:]
        for task in tasks {
            guard let asset = task.asset else { continue }
            if let other = keys[asset.key] {
                errors.append(FlowError(.duplicateName, "asset key '\(asset.key)' is already used by task '\(other.name)'", at: task.location))
            }
            keys[asset.key] = task
            for (upstream, mapping) in asset.mappings {
                let at = asset.mappingLocations[upstream] ?? task.location
                guard task.dependencies.contains(upstream) else {
                    errors.append(FlowError(.missingDependency, "asset '\(asset.key)' maps partitions of '\(upstream)', which it does not depend on",
                                            at: at, suggestion: Suggestion.closest(to: upstream, in: task.dependencies)))
                    continue
                }
                guard let up = self.task(named: upstream)?.asset else {
                    if deferringUnknownDependencies && self.task(named: upstream) == nil { continue }
                    errors.append(FlowError(.invalidValue, "'\(upstream)' is not an asset, so its partitions cannot be mapped", at: at))
                    continue
                }
                switch mapping {
                case .previous, .allOfWindow:
                    if asset.partitions?.timeWindows == nil || up.partitions?.timeWindows == nil {
                        errors.append(FlowError(.invalidValue, "mapping '\(upstream)' by time windows needs time partitions on both assets", at: at))
                    }
                case .identity where asset.partitions != nil && up.partitions != nil && asset.partitions != up.partitions:
                    errors.append(FlowError(.invalidValue, "assets '\(asset.key)' and '\(up.key)' are partitioned differently: "
                                            + "map '\(upstream)' with previous, all_of_window or all", at: at))
                default:
                    break
                }
            }
            if let schedule = asset.schedule { errors += scheduleErrors(schedule, of: asset, task: task) }
            // Identity is also the default for upstream assets without a written mapping.
            for upstream in task.dependencies where asset.mappings[upstream] == nil {
                if let up = self.task(named: upstream)?.asset, let mine = asset.partitions, let theirs = up.partitions, mine != theirs {
                    errors.append(FlowError(.invalidValue, "assets '\(asset.key)' and '\(up.key)' are partitioned differently: say how "
                                            + "with asset.inputs: {\(upstream): previous | all_of_window | all}", at: task.location))
                }
            }
        }
        return errors
    }

    /// A schedule must name one partition per tick: a window of the asset's time unit for a
    /// time-partitioned asset, none for an unpartitioned one.
    private func scheduleErrors(_ schedule: ScheduleSpec, of asset: AssetSpec, task: TaskDefinition) -> [FlowError] {
        let at = schedule.location ?? task.location
        guard let partitions = asset.partitions else {
            if let partition = schedule.partition {
                return [FlowError(.invalidValue, "asset '\(asset.key)' is not partitioned, so its schedule cannot name partition '\(partition)'", at: at)]
            }
            return []
        }
        guard case .time(let windows) = partitions else {
            return [FlowError(.invalidValue, "a schedule on asset '\(asset.key)' (\(partitions.summaryKind) partitions) cannot choose a partition "
                              + "per tick; schedule a time-partitioned or unpartitioned asset", at: at)]
        }
        let fitting = ScheduleSpec.partitionExpressions.filter { $0.value.unit == windows.unit }.map(\.key).sorted()
        guard let partition = schedule.partition else {
            return [FlowError(.missingField, "the schedule of \(windows.unit.rawValue) asset '\(asset.key)' needs 'partition' "
                              + "(\(fitting.joined(separator: " or "))): the partition each tick materializes", at: at)]
        }
        if !fitting.contains(partition) {
            return [FlowError(.invalidValue, "schedule partition '\(partition)' is not a window of \(windows.unit.rawValue) asset "
                              + "'\(asset.key)': use \(fitting.joined(separator: " or "))", at: at)]
        }
        return []
    }
}

extension Partitions {
    /// `time`, `static` or `multi`, for messages.
    var summaryKind: String {
        switch self {
        case .time: return "time"
        case .list: return "static"
        case .multi: return "multi"
        }
    }
}
