import ArgumentParser
import Foundation
import SluiceConfig
import SluiceCore
import SluiceEngine
import SluiceTasks

struct RunsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs",
        abstract: "List, inspect, resume, cancel and retry recorded runs.",
        subcommands: [List.self, Show.self, Resume.self, Cancel.self, Retry.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List runs, newest first.")

        @Option(name: .long, help: "Only runs of this flow.")
        var flow: String?

        @Option(name: .long, help: "Only runs with this status (queued, running, completed, failed, cancelled); repeatable.")
        var status: [String] = []

        @Option(name: .long, help: "At most this many runs.")
        var limit = 50

        @Flag(name: .long, help: "Print JSON lines instead of a table.")
        var json = false

        @OptionGroup var storeOptions: StoreOptions

        func run() async throws {
            var statuses: Set<RunStatus>?
            if !status.isEmpty {
                statuses = []
                for name in status {
                    guard let s = RunStatus(rawValue: name) else {
                        throw ValidationError("unknown status '\(name)' (one of \(RunStatus.allCases.map(\.rawValue).joined(separator: ", ")))")
                    }
                    statuses?.insert(s)
                }
            }
            let filter = RunFilter(flow: flow, statuses: statuses, limit: limit)
            try await withStore(storeOptions) { opened in
                let store = opened.store
                let runs = try await store.runs(filter)
                if json {
                    for r in runs { Console.output(r.json.jsonString()) }
                    return
                }
                var rows = [["ID", "FLOW", "STATUS", "TRIGGER", "CREATED", "DURATION"]]
                for r in runs {
                    rows.append([r.id, r.flow, r.status.rawValue, r.trigger, RunsCommand.time(r.created), RunsCommand.duration(r)])
                }
                Console.output(RunsCommand.table(rows))
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a run: its record and its task tree with attempts, timings and errors.")

        @Argument(help: "The run's id.")
        var id: String

        @Flag(name: .long, help: "Print JSON instead of text.")
        var json = false

        @Flag(name: .long, help: "Also print the run's event log.")
        var events = false

        @OptionGroup var storeOptions: StoreOptions

        func run() async throws {
            try await withStore(storeOptions) { opened in
                let store = opened.store
                guard let run = try await store.run(id: id) else {
                    Console.error("error: no run '\(id)' in \(storeOptions.location(besides: nil))")
                    throw ExitCode(ExitStatus.invalidInput)
                }
                let attempts = try await store.attempts(runID: id)
                let checkpoints = try await store.checkpoints(runID: id)
                let definition = try await store.flow(hash: run.flowHash).flatMap { try? makeLoader().load(text: $0.source, file: $0.name) }
                var tasks = RunsCommand.taskTree(definition, attempts: attempts, checkpoints: checkpoints)
                let log = events ? try await store.events(runID: id) : []
                let gates = try await Gates(store: store).gates(run: id)
                let waiting = Gates.waiting(gates)
                for i in tasks.indices where tasks[i].status == "running" && waiting.contains(tasks[i].name) { tasks[i].status = "waiting" }
                if json {
                    var o = run.json.objectValue ?? [:]
                    o["tasks"] = .array(tasks.map(\.json))
                    if !gates.isEmpty { o["gates"] = .array(gates) }
                    if let result = checkpoints[DurableRunner.resultKey] { o["result"] = result }
                    if events { o["events"] = .array(log) }
                    Console.output(Value.object(o).jsonString(.prettyPrinted))
                    return
                }
                Console.output(RunsCommand.describe(run, tasks: tasks, gates: gates))
                for e in log { Console.output(e.jsonString()) }
            }
        }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Resume an unfinished run here: completed tasks are taken from their checkpoints.")

        @Argument(help: "The run's id.")
        var id: String

        @OptionGroup var storeOptions: StoreOptions

        func run() async throws {
            try await runHere(storeOptions) { runner in try await runner.resume(runID: id) }
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cancel a queued or running run; the process executing it stops at its next heartbeat.")

        @Argument(help: "The run's id.")
        var id: String

        @Option(name: .long, help: "Why, recorded as the run's error.")
        var reason = "cancelled by user"

        @OptionGroup var storeOptions: StoreOptions

        func run() async throws {
            try await withStore(storeOptions) { opened in
                let record = try await storeOptions.runner(opened, sinks: []).cancel(runID: id, reason: reason)
                Console.output("\(record.id) \(record.status)")
            }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a run's flow definition again on its input, as a new run, keeping the outputs of completed tasks.",
            discussion: "With --from TASK, that task and every task downstream of it run again; without it, only what did not complete.")

        @Argument(help: "The run's id.")
        var id: String

        @Option(name: .long, help: "Run this task and everything downstream of it again.")
        var from: String?

        @OptionGroup var storeOptions: StoreOptions

        func run() async throws {
            try await runHere(storeOptions) { runner in try await runner.retry(runID: id, from: from) }
        }
    }
}

/// Opens the store, runs `body`, closes it; store errors are printed and exit with status 1.
func withStore(_ options: StoreOptions, _ body: (OpenStore) async throws -> Void) async throws {
    do {
        try await options.using(besides: nil, body)
    } catch let exit as ExitCode {
        throw exit
    } catch {
        Console.error("error: \(error)")
        throw ExitCode(ExitStatus.runFailed)
    }
}

/// Executes a run in this process with the usual event output, and prints its result.
func runHere(_ options: StoreOptions, _ start: @escaping @Sendable (DurableRunner) async throws -> DurableRunner.Outcome) async throws {
    try await withStore(options) { opened in
        let runner = try options.runner(opened, sinks: [HumanEventPrinter(color: Console.stderrIsTerminal)])
        let work = Task { try await start(runner) }
        let interrupts = InterruptHandler { work.cancel() }
        defer { interrupts.stop() }
        let status = report(try await work.value)
        if status != ExitStatus.success { throw ExitCode(status) }
    }
}

extension RunsCommand {
    /// One task of a run as `runs show` prints it.
    struct TaskLine {
        var name: String
        var depth: Int
        var status: String
        var attempts: [TaskAttempt]

        var json: Value {
            var o: Value.Object = ["task": .string(name), "status": .string(status)]
            o["attempts"] = .array(attempts.map { a in
                var x: Value.Object = ["attempt": .int(Int64(a.attempt)), "status": .string(a.status.rawValue),
                                       "started": .string(RunsCommand.time(a.started))]
                if let ended = a.ended { x["ended"] = .string(RunsCommand.time(ended)) }
                if let error = a.error { x["error"] = .string(error) }
                return .object(x)
            })
            return .object(o)
        }
    }

    /// The flow's tasks in dependency order, each with its depth, status and attempts. Tasks
    /// that ran once per scattered item are listed per item under their task.
    static func taskTree(_ definition: FlowDefinition?, attempts: [TaskAttempt], checkpoints: [String: Value]) -> [TaskLine] {
        var byKey: [String: [TaskAttempt]] = [:]
        for a in attempts { byKey[a.task, default: []].append(a) }
        func status(_ key: String) -> String {
            if let last = byKey[key]?.max(by: { $0.attempt < $1.attempt }) {
                return last.status == .succeeded ? "completed" : last.status.rawValue
            }
            return checkpoints[key] != nil ? "completed" : "not run"
        }
        guard let definition else {
            return byKey.keys.sorted().map { TaskLine(name: $0, depth: 0, status: status($0), attempts: byKey[$0] ?? []) }
        }
        var depth: [String: Int] = [:]
        func depthOf(_ t: TaskDefinition) -> Int {
            if let d = depth[t.name] { return d }
            depth[t.name] = 0  // a cycle cannot be stored; this only stops recursion on a bad definition
            let d = t.dependencies.compactMap { definition.task(named: $0) }.map { depthOf($0) + 1 }.max() ?? 0
            depth[t.name] = d
            return d
        }
        var lines: [TaskLine] = []
        let ordered = definition.tasks.enumerated().sorted { (depthOf($0.element), $0.offset) < (depthOf($1.element), $1.offset) }
        for (_, task) in ordered {
            let d = depthOf(task)
            lines.append(TaskLine(name: task.name, depth: d, status: status(task.name), attempts: byKey[task.name] ?? []))
            let items = byKey.keys.filter { $0.hasPrefix(task.name + "@") }.sorted { itemOrder($0).lexicographicallyPrecedes(itemOrder($1)) }
            for key in items { lines.append(TaskLine(name: key, depth: d + 1, status: status(key), attempts: byKey[key] ?? [])) }
        }
        return lines
    }

    /// An item key's scatter positions as numbers, so `work@2` comes before `work@10`.
    private static func itemOrder(_ key: String) -> [Int] {
        key.split(separator: "@").last.map { $0.split(separator: ".").map { Int($0) ?? 0 } } ?? []
    }

    static func describe(_ run: RunRecord, tasks: [TaskLine], gates: [Value] = []) -> String {
        var out = ["run \(run.id)", "  flow      \(run.flow) (definition \(run.flowHash.prefix(12)))",
                   "  status    \(run.status)", "  trigger   \(run.trigger)", "  created   \(time(run.created))"]
        if let started = run.started { out.append("  started   \(time(started))") }
        if let ended = run.ended { out.append("  ended     \(time(ended)) (\(duration(run)))") }
        if let key = run.idempotencyKey { out.append("  key       \(key)") }
        if let error = run.error { out.append("  error     \(error)") }
        out.append("  input     \(run.input.jsonString())")
        out.append("tasks")
        for t in tasks {
            let mark = ["completed": "✓", "failed": "✗", "running": "…", "cancelled": "⊘", "waiting": "⏸", "not run": "·"][t.status] ?? "?"
            var line = String(repeating: "  ", count: t.depth + 1) + "\(mark) \(t.name)  \(t.status)"
            if !t.attempts.isEmpty {
                line += "  \(t.attempts.count) attempt\(t.attempts.count == 1 ? "" : "s")"
                if let last = t.attempts.last, let ended = last.ended {
                    line += "  \(milliseconds(ended.timeIntervalSince(last.started)))"
                }
            }
            out.append(line)
            for a in t.attempts where a.error != nil {
                out.append(String(repeating: "  ", count: t.depth + 3) + "attempt \(a.attempt): \(a.error!)")
            }
        }
        if !gates.isEmpty { out.append("gates") }
        for gate in gates {
            var line = "  \(Gates.gateName(gate))  \(gate["kind"]?.textValue ?? "")  \(gate["status"]?.textValue ?? "")"
            if let by = gate["decided_by"]?.stringValue { line += " by \(by)" }
            if gate["status"] == "pending", gate["kind"] == "signal", let token = gate["token"]?.stringValue { line += "  token \(token)" }
            out.append(line)
        }
        return out.joined(separator: "\n")
    }

    static func table(_ rows: [[String]]) -> String {
        guard let first = rows.first else { return "" }
        var widths = first.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        return rows.map { row in
            row.enumerated().map { i, cell in i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }.joined(separator: "\n")
    }

    static func time(_ date: Date) -> String { EngineEvent.iso8601(date) }

    static func duration(_ run: RunRecord) -> String {
        guard let started = run.started else { return "-" }
        guard let ended = run.ended else { return "running" }
        return milliseconds(ended.timeIntervalSince(started))
    }

    static func milliseconds(_ seconds: Double) -> String {
        seconds < 1 ? "\(Int((seconds * 1000).rounded())) ms" : String(format: "%.2f s", seconds)
    }
}

extension RunRecord {
    var json: Value {
        var o: Value.Object = ["id": .string(id), "flow": .string(flow), "flow_hash": .string(flowHash), "status": .string(status.rawValue),
                               "trigger": .string(trigger), "input": input, "created": .string(RunsCommand.time(created))]
        if let started { o["started"] = .string(RunsCommand.time(started)) }
        if let ended { o["ended"] = .string(RunsCommand.time(ended)) }
        if let idempotencyKey { o["idempotency_key"] = .string(idempotencyKey) }
        if let error { o["error"] = .string(error) }
        return .object(o)
    }
}
