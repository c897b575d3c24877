import ArgumentParser
import Foundation
import SluiceConfig
import SluiceCore
import SluiceEngine
import SluiceTasks

/// A flow file with assets, as loaded.
struct AssetFlow {
    let path: String
    let definition: FlowDefinition
    let source: String
}

/// Where the flows that declare assets are: `--flows` (a flow file or a directory searched
/// for them), else `$SLUICE_FLOWS`, else the current directory.
struct AssetFlowOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("A flow file, or a directory searched for flow files (.yaml, .yml, .json). Default: $SLUICE_FLOWS, else the current directory.",
                                            valueName: "path"))
    var flows: String?

    var root: String {
        if let flows { return flows }
        if let env = ProcessInfo.processInfo.environment["SLUICE_FLOWS"], !env.isEmpty { return env }
        return "."
    }

    /// What the store's default location is beside: the flow file, or a file in the directory.
    var storeAnchor: String {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue {
            return (root as NSString).appendingPathComponent("flows")
        }
        return root
    }

    /// Flow files under the root, a few levels deep, leaving out hidden and build directories.
    func files() -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory) else { return [] }
        guard isDirectory.boolValue else { return [root] }
        var found: [String] = []
        func walk(_ dir: String, depth: Int) {
            guard depth <= 4, let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return }
            for name in names.sorted() where !name.hasPrefix(".") && name != "node_modules" {
                let path = (dir as NSString).appendingPathComponent(name)
                var sub: ObjCBool = false
                _ = FileManager.default.fileExists(atPath: path, isDirectory: &sub)
                if sub.boolValue {
                    walk(path, depth: depth + 1)
                } else if ["yaml", "yml", "json"].contains((name as NSString).pathExtension) {
                    found.append(path)
                }
            }
        }
        walk(root, depth: 0)
        return found
    }

    /// Every flow that declares assets. A file that mentions assets but does not load is
    /// reported; other files that are not flows are passed over.
    func load() -> [AssetFlow] {
        let loader = makeLoader()
        var flows: [AssetFlow] = []
        for path in files() {
            guard let source = try? String(contentsOfFile: path, encoding: .utf8), source.contains("asset") else { continue }
            do {
                let definition = try loader.load(text: source, file: path)
                if definition.tasks.contains(where: { $0.asset != nil }) { flows.append(AssetFlow(path: path, definition: definition, source: source)) }
            } catch {
                if source.contains("asset:") { printErrors(error) }
            }
        }
        return flows
    }

    /// The flow declaring `asset`, its asset graph, and the asset's task and declaration.
    func findAsset(_ asset: String) throws -> (AssetFlow, AssetGraph, task: String, spec: AssetSpec) {
        let flow = try find(asset)
        let graph = AssetGraph(flow.definition)
        guard let task = graph.task(for: asset), let spec = graph.assets[task] else { throw ExitCode(ExitStatus.invalidInput) }
        return (flow, graph, task, spec)
    }

    /// The one flow declaring `asset` (by asset key or task name).
    func find(_ asset: String) throws -> AssetFlow {
        let flows = load()
        let matching = flows.filter { AssetGraph($0.definition).task(for: asset) != nil }
        guard let flow = matching.first else {
            let known = flows.flatMap { $0.definition.tasks.compactMap(\.asset?.key) }.sorted()
            Console.error("error: no flow under \(root) declares asset '\(asset)'"
                          + (known.isEmpty ? " (no assets found; --flows names the flow file or directory)" : " (assets: \(known.joined(separator: ", ")))"))
            throw ExitCode(ExitStatus.invalidInput)
        }
        if matching.count > 1 {
            Console.error("error: asset '\(asset)' is declared in several flows: \(matching.map(\.path).joined(separator: ", "))")
            throw ExitCode(ExitStatus.invalidInput)
        }
        return flow
    }
}

/// Who did something, for the audit log: `$SLUICE_ACTOR`, else the login name.
func currentActor() -> String {
    let env = ProcessInfo.processInfo.environment
    return env["SLUICE_ACTOR"].flatMap { $0.isEmpty ? nil : $0 } ?? env["USER"] ?? env["LOGNAME"] ?? "unknown"
}

/// `raw [2025-01-15]`, or `raw` when unpartitioned.
func assetLabel(_ asset: String, _ partition: String) -> String { partition.isEmpty ? asset : "\(asset) [\(partition)]" }

// MARK: - materialize

struct MaterializeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "materialize",
        abstract: "Compute an asset partition, with whatever upstream partitions are missing, failed or stale.",
        discussion: """
            Upstream partitions that are up to date are loaded through their I/O managers, not recomputed; each one needed \
            is computed once however many assets read it. A target that is up to date is left alone unless --force.
            """
    )

    @Argument(help: "The asset's key (or its task's name).")
    var asset: String

    @Option(name: .long, help: "The partition (required for a partitioned asset).")
    var partition: String?

    @Flag(name: .long, help: "Recompute the upstream assets too, even those that are up to date.")
    var withUpstream = false

    @Flag(name: .long, help: "Recompute the asset even when it is up to date.")
    var force = false

    @Option(name: .long, help: "How to print events on stderr: human or json.")
    var events: RunCommand.EventFormat = .human

    @Flag(name: .long, help: "Print no events.")
    var quiet = false

    @OptionGroup var flowOptions: AssetFlowOptions
    @OptionGroup var storeOptions: StoreOptions

    func run() async throws {
        let flow = try flowOptions.find(asset)
        var sinks: [any EngineEventSink] = []
        if !quiet { sinks.append(events == .json ? JSONEventPrinter() as any EngineEventSink : HumanEventPrinter(color: Console.stderrIsTerminal)) }
        let status = try await storeOptions.using(besides: flow.path) { opened -> Int32 in
            let store = opened.store
            let runner = try storeOptions.runner(opened, sinks: sinks)
            guard let plan = prepared(flow.definition, runner.prepare) else { return ExitStatus.invalidInput }
            let partition = self.partition ?? ""
            let work = Task { () throws -> DurableRunner.Materialized in
                let runPlan = try await runner.planMaterialization(plan, asset: asset, partition: partition, force: force, withUpstream: withUpstream)
                if runPlan.computeCount > 0 && !quiet { Console.error(MaterializeCommand.describe(runPlan)) }
                try await store.appendAudit(AuditEntry(time: Date(), actor: currentActor(), action: "asset.materialize",
                                                       target: plan.assetGraph.assets[runPlan.target]?.key ?? asset,
                                                       detail: ["partition": .string(partition), "force": .bool(force),
                                                                "with_upstream": .bool(withUpstream), "computes": .int(Int64(runPlan.computeCount))]))
                return try await runner.materialize(plan, source: flow.source, asset: asset, partition: partition, force: force,
                                                    withUpstream: withUpstream)
            }
            let interrupts = InterruptHandler { work.cancel() }
            defer { interrupts.stop() }
            do {
                switch try await work.value {
                case .upToDate(let status):
                    let when = status.latest.map { " (materialized \(EngineEvent.iso8601($0.ended ?? $0.started)) by run \($0.runID))" } ?? ""
                    Console.error("\(assetLabel(asset, partition)) is up to date\(when); --force computes it again")
                    return ExitStatus.success
                case .ran(let outcome, _):
                    var quietOutcome = outcome
                    quietOutcome.result = nil
                    return report(quietOutcome)
                }
            } catch let error as AssetError {
                Console.error("error: \(error)")
                return ExitStatus.invalidInput
            } catch {
                Console.error("error: \(error)")
                return ExitStatus.runFailed
            }
        }
        if status != ExitStatus.success { throw ExitCode(status) }
    }

    static func describe(_ plan: AssetRunPlan) -> String {
        func list(_ d: [String: [String]]) -> String {
            d.keys.sorted().map { task in
                let parts = d[task] ?? []
                if parts == [""] { return task }
                return parts.count == 1 ? "\(task) [\(parts[0])]" : "\(task) (\(parts.count) partitions)"
            }.joined(separator: ", ")
        }
        var text = "materializing \(assetLabel(plan.target, plan.partition)): computes \(list(plan.compute))"
        if !plan.load.isEmpty { text += "; loads \(list(plan.load))" }
        return text
    }
}

// MARK: - assets

struct AssetsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "assets",
        abstract: "List assets and show the status of their partitions.",
        subcommands: [List.self, Show.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every asset with how many partitions are materialized, stale, missing or failed.")

        @Flag(name: .long, help: "Print JSON lines instead of a table.")
        var json = false

        @OptionGroup var flowOptions: AssetFlowOptions
        @OptionGroup var storeOptions: StoreOptions

        func run() async throws {
            let flows = flowOptions.load()
            try await storeOptions.using(besides: flows.first?.path ?? flowOptions.storeAnchor) { opened in
                let store = opened.store
                var rows = [["ASSET", "FLOW", "PARTITIONS", "MATERIALIZED", "STALE", "MISSING", "FAILED", "RUNNING"]]
                for flow in flows {
                    let graph = AssetGraph(flow.definition)
                    var planner = AssetPlanner(graph: graph, store: store, now: Date())
                    for task in flow.definition.tasks where task.asset != nil {
                        let spec = task.asset!
                        var counts: [PartitionStatus.State: Int] = [:]
                        let statuses = try await planner.statuses(of: task.name)
                        for (_, s) in statuses { counts[s.state, default: 0] += 1 }
                        if json {
                            var o: Value.Object = ["asset": .string(spec.key), "task": .string(task.name), "flow": .string(flow.definition.name),
                                                   "file": .string(flow.path), "partitions": .string(spec.partitions?.summary ?? "none")]
                            for state in PartitionStatus.State.allCases { o[state.rawValue] = .int(Int64(counts[state] ?? 0)) }
                            Console.output(Value.object(o).jsonString())
                        } else {
                            rows.append([spec.key, flow.definition.name, spec.partitions?.summary ?? "none"]
                                        + [PartitionStatus.State.materialized, .stale, .missing, .failed, .running].map { String(counts[$0] ?? 0) })
                        }
                    }
                }
                if !json { Console.output(RunsCommand.table(rows)) }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "An asset's partitions: status, why, and the last materialization.")

        @Argument(help: "The asset's key.")
        var asset: String

        @Option(name: .long, help: "Only this partition; repeatable.")
        var partition: [String] = []

        @Option(name: .long, help: "Only partitions with this status (materialized, stale, missing, failed, running).")
        var status: String?

        @Flag(name: .long, help: "Print JSON lines instead of a table.")
        var json = false

        @OptionGroup var flowOptions: AssetFlowOptions
        @OptionGroup var storeOptions: StoreOptions

        func run() async throws {
            let (flow, graph, task, spec) = try flowOptions.findAsset(asset)
            let wanted = try status.map { name -> PartitionStatus.State in
                guard let s = PartitionStatus.State(rawValue: name) else {
                    throw ValidationError("unknown status '\(name)' (\(PartitionStatus.State.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                return s
            }
            try await storeOptions.using(besides: flow.path) { opened in
                let store = opened.store
                var planner = AssetPlanner(graph: graph, store: store, now: Date())
                if !json {
                    Console.output("asset \(spec.key) (task \(task) of flow \(flow.definition.name), \(flow.path))")
                    Console.output("partitions: \(spec.partitions?.summary ?? "none"); io: \(spec.io); version \(graph.versions[task]?.prefix(12) ?? "")")
                    let upstream = (graph.upstream[task] ?? []).compactMap { graph.assets[$0]?.key }
                    if !upstream.isEmpty { Console.output("reads: \(upstream.joined(separator: ", "))") }
                }
                var rows = [["PARTITION", "STATUS", "MATERIALIZED", "RUN", "WHY"]]
                for (key, s) in try await planner.statuses(of: task, partitions: partition.isEmpty ? nil : partition) {
                    if let wanted, s.state != wanted { continue }
                    if json {
                        var o: Value.Object = ["asset": .string(spec.key), "partition": .string(key), "status": .string(s.state.rawValue)]
                        if let m = s.latest {
                            o["materialized"] = .string(EngineEvent.iso8601(m.ended ?? m.started))
                            o["run"] = .string(m.runID)
                            o["summary"] = m.summary
                        }
                        if let reason = s.reason { o["reason"] = .string(reason) }
                        Console.output(Value.object(o).jsonString())
                    } else {
                        rows.append([key.isEmpty ? "-" : key, s.state.rawValue, s.latest.map { EngineEvent.iso8601($0.ended ?? $0.started) } ?? "-",
                                     s.latest?.runID ?? s.lastAttempt?.runID ?? "-", s.reason ?? ""])
                    }
                }
                if !json { Console.output(RunsCommand.table(rows)) }
            }
        }
    }
}

// MARK: - lineage

struct LineageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lineage",
        abstract: "Which materializations an asset partition was computed from, or which were computed from it.",
        discussion: "Follows the recorded lineage edges of the newest successful materialization, partition by partition."
    )

    @Argument(help: "The asset's key.")
    var asset: String

    @Option(name: .long, help: "The partition (none for an unpartitioned asset).")
    var partition: String = ""

    @Flag(name: .long, help: "What it was computed from (the default).")
    var upstream = false

    @Flag(name: .long, help: "What was computed from it.")
    var downstream = false

    @Option(name: .long, help: "How many levels to follow.")
    var depth = 10

    @Flag(name: .long, help: "Print JSON instead of a tree.")
    var json = false

    @OptionGroup var storeOptions: StoreOptions

    func run() async throws {
        guard !(upstream && downstream) else { throw ValidationError("choose --upstream or --downstream") }
        guard depth >= 1 else { throw ValidationError("--depth must be at least 1") }
        try await withStore(storeOptions) { opened in
            let store = opened.store
            let start = try await store.materializations(MaterializationFilter(asset: asset, partitions: [partition], statuses: [.materialized],
                                                                               latestOnly: true, limit: 1)).first
            guard let start else {
                Console.error("error: \(assetLabel(asset, partition)) has no successful materialization in \(storeOptions.location(besides: nil))")
                throw ExitCode(ExitStatus.invalidInput)
            }
            let tree = try await Lineage(store: store).tree(from: start, downstream: downstream, depth: depth)
            if json {
                Console.output(tree.value.jsonString(Console.stdoutIsTerminal ? .prettyPrinted : .compact))
            } else {
                for line in tree.lines() { Console.output(line) }
            }
        }
    }
}

// MARK: - backfill

struct BackfillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backfill",
        abstract: "Materialize many partitions of an asset, a few at a time; resumable after a crash.",
        subcommands: [Start.self, Resume.self, List.self, Show.self, Cancel.self],
        defaultSubcommand: Start.self
    )

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "start",
            abstract: "Start a backfill (`sluice backfill ASSET --from A --to B`).",
            discussion: "Partitions already materialized and up to date are skipped unless --force. Ctrl-C stops it resumably."
        )

        @Argument(help: "The asset's key.")
        var asset: String

        @Option(name: .long, help: "The first partition.")
        var from: String?

        @Option(name: .long, help: "The last partition (included).")
        var to: String?

        @Option(name: .long, parsing: .upToNextOption, help: "These partitions (instead of --from/--to); comma- or space-separated.")
        var partitions: [String] = []

        @Option(name: .long, help: "Partitions materialized at once.")
        var maxParallel = 4

        @Flag(name: .long, help: "Recompute partitions that are up to date.")
        var force = false

        @OptionGroup var flowOptions: AssetFlowOptions
        @OptionGroup var storeOptions: StoreOptions

        func run() async throws {
            let (flow, _, task, spec) = try flowOptions.findAsset(asset)
            guard let parts = spec.partitions else {
                Console.error("error: asset '\(spec.key)' is not partitioned; use sluice materialize \(spec.key)")
                throw ExitCode(ExitStatus.invalidInput)
            }
            var keys = partitions.flatMap { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }.filter { !$0.isEmpty }
            if keys.isEmpty {
                guard let from, let to else { throw ValidationError("give --from and --to, or --partitions") }
                do {
                    keys = try parts.keys(from: from, to: to, now: Date())
                } catch {
                    Console.error("error: asset '\(spec.key)': \(error.message)")
                    throw ExitCode(ExitStatus.invalidInput)
                }
            } else if from != nil || to != nil {
                throw ValidationError("give either --from/--to or --partitions, not both")
            }
            let status = try await storeOptions.using(besides: flow.path) { opened -> Int32 in
                let store = opened.store
                let runner = try storeOptions.runner(opened, sinks: [FailurePrinter()])
                guard let plan = prepared(flow.definition, runner.prepare) else { return ExitStatus.invalidInput }
                let record: BackfillRecord
                do {
                    record = try await runner.createBackfill(plan, source: flow.source, asset: task, partitions: keys, maxParallel: maxParallel,
                                                             force: force)
                } catch let error as AssetError {
                    Console.error("error: \(error)")
                    return ExitStatus.invalidInput
                }
                try await store.appendAudit(AuditEntry(time: Date(), actor: currentActor(), action: "backfill.started", target: record.id,
                                                       detail: ["asset": .string(spec.key), "partitions": .int(Int64(keys.count)),
                                                                "first": .string(keys[0]), "last": .string(keys[keys.count - 1]),
                                                                "max_parallel": .int(Int64(maxParallel)), "force": .bool(force)]))
                Console.output(record.id)
                Console.error("backfill \(record.id): \(keys.count) partitions of \(spec.key), \(maxParallel) at a time")
                return await BackfillCommand.execute(record.id, runner: runner, plan: plan, source: flow.source)
            }
            if status != ExitStatus.success { throw ExitCode(status) }
        }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Carry on a backfill that stopped (crash, Ctrl-C): finished partitions are not redone.")

        @Argument(help: "The backfill's id.")
        var id: String

        @OptionGroup var flowOptions: AssetFlowOptions
        @OptionGroup var storeOptions: StoreOptions

        func run() async throws {
            let status = try await storeOptions.using(besides: flowOptions.flows) { opened -> Int32 in
                let store = opened.store
                let runner = try storeOptions.runner(opened, sinks: [FailurePrinter()])
                guard let record = try await runner.backfill(id: id) else {
                    Console.error("error: no backfill '\(id)' in \(storeOptions.location(besides: flowOptions.flows))")
                    return ExitStatus.invalidInput
                }
                guard record.status == .running else {
                    Console.error("backfill \(id) has already ended (\(record.status.rawValue))")
                    return record.status == .completed ? ExitStatus.success : ExitStatus.runFailed
                }
                // The definition the backfill started with, as stored.
                guard let stored = try await store.flow(hash: record.flowHash) else {
                    Console.error("error: the flow definition of backfill \(id) is not in the store")
                    return ExitStatus.runFailed
                }
                let plan = try runner.prepare(try makeLoader().load(text: stored.source, file: stored.name))
                try await store.appendAudit(AuditEntry(time: Date(), actor: currentActor(), action: "backfill.resumed", target: id))
                Console.error("resuming backfill \(id): \(record.partitions.count) partitions of \(record.asset)")
                return await BackfillCommand.execute(id, runner: runner, plan: plan, source: stored.source)
            }
            if status != ExitStatus.success { throw ExitCode(status) }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Backfills, newest first.")

        @OptionGroup var storeOptions: StoreOptions

        func run() async throws {
            try await withStore(storeOptions) { opened in
                let runner = try storeOptions.runner(opened, sinks: [])
                var rows = [["ID", "ASSET", "STATUS", "PARTITIONS", "DONE", "FAILED", "CREATED"]]
                for b in try await runner.backfills() {
                    let p = try await runner.progress(of: b)
                    rows.append([b.id, b.asset, b.status.rawValue, String(b.partitions.count), String(p.done), String(p.failed),
                                 RunsCommand.time(b.created)])
                }
                Console.output(RunsCommand.table(rows))
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A backfill: its partitions and their runs.")

        @Argument(help: "The backfill's id.")
        var id: String

        @Flag(name: .long, help: "Print JSON instead of text.")
        var json = false

        @OptionGroup var storeOptions: StoreOptions

        func run() async throws {
            try await withStore(storeOptions) { opened in
                let store = opened.store
                let runner = try storeOptions.runner(opened, sinks: [])
                guard let b = try await runner.backfill(id: id) else {
                    Console.error("error: no backfill '\(id)' in \(storeOptions.location(besides: nil))")
                    throw ExitCode(ExitStatus.invalidInput)
                }
                let p = try await runner.progress(of: b)
                if json {
                    var v = b.value
                    v["progress"] = ["total": .int(Int64(p.total)), "completed": .int(Int64(p.completed)), "failed": .int(Int64(p.failed)),
                                     "running": .int(Int64(p.running)), "skipped": .int(Int64(p.skipped)), "pending": .int(Int64(p.pending))]
                    Console.output(v.jsonString(Console.stdoutIsTerminal ? .prettyPrinted : .compact))
                    return
                }
                Console.output("backfill \(b.id): \(b.asset) of flow \(b.flow), \(b.status.rawValue); \(b.maxParallel) at a time\(b.force ? ", forced" : "")")
                Console.output("\(p.completed) completed, \(p.failed) failed, \(p.running) running, \(p.skipped) up to date, \(p.pending) pending")
                var rows = [["PARTITION", "STATUS", "RUN"]]
                for part in b.partitions {
                    if b.skipped.contains(part) {
                        rows.append([part, "up to date", "-"])
                    } else if let runID = b.runs[part] {
                        let run = try await store.run(id: runID)
                        rows.append([part, run?.status.rawValue ?? "?", runID])
                    } else {
                        rows.append([part, "pending", "-"])
                    }
                }
                Console.output(RunsCommand.table(rows))
            }
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop a backfill: nothing more starts and its running partitions are cancelled.")

        @Argument(help: "The backfill's id.")
        var id: String

        @OptionGroup var storeOptions: StoreOptions

        func run() async throws {
            try await withStore(storeOptions) { opened in
                let store = opened.store
                let runner = try storeOptions.runner(opened, sinks: [])
                let b = try await runner.cancelBackfill(id: id)
                try await store.appendAudit(AuditEntry(time: Date(), actor: currentActor(), action: "backfill.cancelled", target: id))
                Console.output("backfill \(b.id) cancelled")
            }
        }
    }

    /// Runs a backfill here with a progress bar on a terminal (a line per partition otherwise).
    static func execute(_ id: String, runner: DurableRunner, plan: FlowPlan, source: String) async -> Int32 {
        let terminal = Console.stderrIsTerminal
        let work = Task {
            try await runner.executeBackfill(id: id, plan: plan, source: source) { record, p in
                let line = "\(p.done)/\(p.total) done (\(p.completed) materialized, \(p.skipped) up to date, \(p.failed) failed), \(p.running) running"
                if terminal {
                    let width = 30
                    let filled = p.total == 0 ? width : width * p.done / p.total
                    Console.errorInPlace("[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "] " + line)
                } else {
                    Console.error(line)
                }
            }
        }
        let interrupts = InterruptHandler { work.cancel() }
        defer { interrupts.stop() }
        do {
            let record = try await work.value
            if terminal { Console.error("") }
            if Task.isCancelled || work.isCancelled {
                Console.error("interrupted; carry on with: sluice backfill resume \(id)")
                return ExitStatus.interrupted
            }
            let p = try await runner.progress(of: record)
            Console.error("backfill \(id) \(record.status.rawValue): \(p.completed) materialized, \(p.skipped) up to date, \(p.failed) failed")
            return record.status == .completed ? ExitStatus.success : ExitStatus.runFailed
        } catch is CancellationError {
            Console.error("\ninterrupted; carry on with: sluice backfill resume \(id)")
            return ExitStatus.interrupted
        } catch {
            Console.error("\nerror: \(error); carry on with: sluice backfill resume \(id)")
            return ExitStatus.runFailed
        }
    }
}

/// Prints only failed runs and errors (a backfill's many runs would drown a terminal).
struct FailurePrinter: EngineEventSink {
    let printer = HumanEventPrinter(color: Console.stderrIsTerminal)
    var wantsTaskEvents: Bool { false }
    func receive(_ event: EngineEvent) {
        if event.kind == .runFailed || (event.kind == .log && event.level == "error") { printer.receive(event) }
    }
}

extension Console {
    /// Rewrites the current line of stderr (a progress bar).
    static func errorInPlace(_ text: String) {
        lock.lock()
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + text).utf8))
        lock.unlock()
    }
}
