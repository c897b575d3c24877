// Sluice benchmarks. Build and run with `scripts/bench` (a release build); the README quotes
// its output. `--quick` runs smaller sizes for a smoke test.
import Foundation
import SluiceConfig
import SluiceCore
import SluiceEngine
import SluiceTasks
import SluiceTesting
#if canImport(Glibc)
import Glibc
#endif

let arguments = Array(CommandLine.arguments.dropFirst())
let quick = arguments.contains("--quick")
let only = arguments.firstIndex(of: "--only").map { arguments[$0 + 1] }

func wanted(_ name: String) -> Bool { only == nil || name.hasPrefix(only!) }

// MARK: - Measuring

struct Stats {
    var samples: [Double]  // seconds
    var median: Double { samples.sorted()[samples.count / 2] }
    var min: Double { samples.min() ?? 0 }
    var p90: Double { samples.sorted()[Swift.min(samples.count - 1, samples.count * 9 / 10)] }
}

func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

func format(_ s: Double) -> String {
    if s < 1e-3 { return String(format: "%.2f µs", s * 1e6) }
    if s < 1 { return String(format: "%.2f ms", s * 1e3) }
    return String(format: "%.2f s", s)
}

func report(_ name: String, _ value: String, target: String? = nil, ok: Bool? = nil) {
    var line = "\(name.padding(toLength: 54, withPad: " ", startingAt: 0)) \(value)"
    if let target { line += "   (target \(target)\(ok.map { $0 ? ", met" : ", NOT met" } ?? ""))" }
    print(line)
    fflush(nil)
}

// MARK: - Engine overhead

/// A processor that does nothing but pass its event on: what remains is the engine's cost.
let noop = ClosureTask.processor("noop", Noop.pass)

enum Noop {
    @Sendable static func pass(_ event: Event, _ context: TaskContext) async throws -> TaskOutput { .event(event) }
}

func registry(_ extra: [TaskRegistration] = []) -> TaskRegistry {
    var r = BuiltinTasks.registry
    r.register(noop)
    for x in extra { r.register(x) }
    return r
}

func plan(_ yaml: String, _ registry: TaskRegistry) -> (Engine, FlowPlan) {
    let engine = Engine(registry: registry, environment: [:])
    do {
        let flow = try FlowLoader(catalog: registry.catalog).load(text: yaml, file: "bench.yaml")
        return (engine, try engine.prepare(flow))
    } catch {
        fatalError("bench flow does not load: \(error)")
    }
}

func chainYAML(_ n: Int, source: String? = nil) -> String {
    var lines = ["flow:", "  name: chain", "  tasks:"]
    if let source { lines.append("    - \(source): {name: src}") }
    for i in 0..<n { lines.append("    - noop: {name: t\(i)}") }
    return lines.joined(separator: "\n")
}

func fanOutYAML(_ n: Int) -> String {
    var lines = ["flow:", "  name: fan", "  tasks:", "    - noop: {name: start}"]
    for i in 0..<n { lines.append("    - noop: {name: b\(i), depends_on: [start]}") }
    lines.append("    - noop: {name: join, depends_on: [\((0..<n).map { "b\($0)" }.joined(separator: ", "))]}")
    return lines.joined(separator: "\n")
}

/// Runs a one-run workflow `iterations` times; returns the time of each run.
func timeWorkflow(_ yaml: String, iterations: Int) async -> Stats {
    let (engine, flowPlan) = plan(yaml, registry())
    let clock = ContinuousClock()
    var samples: [Double] = []
    for _ in 0..<iterations {
        let start = clock.now
        let summary = await engine.run(flowPlan, input: Event(data: ["n": 1]))
        samples.append(seconds(clock.now - start))
        precondition(summary.runsCompleted == 1, "bench run failed")
    }
    return Stats(samples: samples)
}

/// A source emitting `count` small events as fast as the engine takes them.
func firehose(_ count: Int) -> TaskRegistration {
    ClosureTask.source("firehose") { emitter, _ in
        for i in 0..<count { try await emitter.emit(Event(data: ["i": .int(Int64(i))])) }
    }
}

func timeStream(events: Int, stages: Int) async -> (Double, Int) {
    let (engine, flowPlan) = plan(chainYAML(stages, source: "firehose"), registry([firehose(events)]))
    let clock = ContinuousClock()
    let start = clock.now
    let summary = await engine.run(flowPlan)
    let elapsed = seconds(clock.now - start)
    precondition(summary.runsCompleted == events, "stream lost runs: \(summary.runsCompleted) of \(events)")
    return (elapsed, summary.runsCompleted)
}

// MARK: - Whole process

struct ProcessResult {
    var wall: Double
    var status: Int32
}

/// Spawns `argv` with stdout/stderr to /dev/null and waits for it.
func spawn(_ argv: [String], environment: [String: String] = ProcessInfo.processInfo.environment) -> ProcessResult {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    let cArgs = argv.map { strdup($0) } + [nil]
    let cEnv = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
        for p in cArgs { free(p) }
        for p in cEnv { free(p) }
    }
    let clock = ContinuousClock()
    let start = clock.now
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, argv[0], &actions, nil, cArgs, cEnv)
    guard rc == 0 else { fatalError("cannot start \(argv[0]): \(String(cString: strerror(rc)))") }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    let wall = seconds(clock.now - start)
    let exit = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    return ProcessResult(wall: wall, status: exit)
}

func timeProcess(_ argv: [String], runs: Int, environment: [String: String] = ProcessInfo.processInfo.environment,
                 warmUp: Bool = true) -> Stats {
    if warmUp { _ = spawn(argv, environment: environment) }  // warm the page cache
    var samples: [Double] = []
    for _ in 0..<runs {
        let r = spawn(argv, environment: environment)
        precondition(r.status == 0, "\(argv.joined(separator: " ")) exited \(r.status)")
        samples.append(r.wall)
    }
    return Stats(samples: samples)
}

/// Peak memory (max RSS, KB) of `argv` over `runs` runs, or nil without /usr/bin/time.
///
/// Measured through /usr/bin/time: a child started with posix_spawn shares this process's
/// memory until it execs, and Linux then counts this (much larger) process's peak as the
/// child's, so our own wait4 figures would be wrong.
func peakMemory(_ argv: [String], runs: Int) -> Int? {
    let time = "/usr/bin/time"
    guard FileManager.default.isExecutableFile(atPath: time) else { return nil }
    let output = writeTemp("rss.txt", "")
    var peak = 0
    for _ in 0..<runs {
        let r = spawn([time, "-f", "%M", "-o", output] + argv)
        precondition(r.status == 0, "\(argv.joined(separator: " ")) exited \(r.status)")
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        peak = max(peak, Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0)
    }
    return peak
}

/// The interpreter `python3` resolves to, so a pyenv shim's start-up cost is not measured.
func resolvedPython() -> String {
    let probe = Process()
    probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    probe.arguments = ["python3", "-c", "import sys; print(sys.executable)"]
    let pipe = Pipe()
    probe.standardOutput = pipe
    do {
        try probe.run()
    } catch {
        fatalError("python3 not found: \(error)")
    }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    probe.waitUntilExit()
    return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}

func writeTemp(_ name: String, _ text: String) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-bench-\(getpid())")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let path = dir.appendingPathComponent(name).path
    FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o755])
    return path
}

// MARK: - Run

let binDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
let sluice = "\(binDir)/sluice"

print("Sluice benchmarks (\(quick ? "quick" : "full"); \(ProcessInfo.processInfo.activeProcessorCount) cores)")
print("")

/// Times a one-run workflow of `tasks` tasks and reports its cost per task hop.
func hopBenchmark(_ title: String, yaml: String, tasks: Int) async {
    let stats = await timeWorkflow(yaml, iterations: quick ? 50 : 2_000)
    let perHop = stats.median / Double(tasks)
    report("\(title), one run (median run)", format(stats.median))
    report("  per task hop (\(tasks) tasks)", format(perHop), target: "≤ 10 µs", ok: perHop <= 10e-6)
}

if wanted("chain") { await hopBenchmark("chain of 100 tasks", yaml: chainYAML(100), tasks: 100) }
if wanted("fanout") { await hopBenchmark("fan-out to 100 tasks + join", yaml: fanOutYAML(100), tasks: 102) }

if wanted("durable") { await durableBenchmark() }

if wanted("webhook") { await webhookBenchmark() }

if wanted("stream") {
    let events = quick ? 50_000 : 1_000_000
    let (elapsed, _) = await timeStream(events: events, stages: 3)
    let rate = Double(events) / elapsed
    report("\(events) events through 3 stages", format(elapsed))
    report("  throughput", String(format: "%.0f events/s", rate), target: "≥ 300000 events/s", ok: rate >= 300_000)
    report("  per task hop", format(elapsed / Double(events * 3)), target: "≤ 10 µs", ok: elapsed / Double(events * 3) <= 10e-6)
}

if wanted("process") {
    guard FileManager.default.isExecutableFile(atPath: sluice) else { fatalError("\(sluice) is missing: build the sluice product too") }
    let flow = writeTemp("chain3.yaml", """
        flow:
          name: chain3
          tasks:
            - log: {name: a, message: "step a"}
            - log: {name: b, message: "step b"}
            - log: {name: c, message: "step c"}
        """)
    let argv = [sluice, "run", flow, "--quiet"]
    let stats = timeProcess(argv, runs: quick ? 5 : 50)
    report("`sluice run` of a 3-task chain, wall (median)", format(stats.median), target: "< 30 ms", ok: stats.median < 0.030)
    if let peakKB = peakMemory(argv, runs: quick ? 3 : 10) {
        let mb = Double(peakKB) / 1024
        report("  peak memory (max RSS, worst of runs)", String(format: "%.1f MB", mb), target: "< 30 MB", ok: mb < 30)
    } else {
        report("  peak memory", "not measured: /usr/bin/time is missing (apt-get install time)")
    }
}

if wanted("shell") {
    let python = resolvedPython()
    let code = "import sys; print(sys.stdin.read().strip().upper())"
    let flow = writeTemp("shell3.yaml", """
        flow:
          name: shell3
          tasks:
            - shell: {name: hello, command: echo, args: [hello sluice]}
            - shell: {name: upper, command: "{{env.BENCH_PYTHON}}", args: ["-c", "\(code)"], stdin: "{{event.data.stdout}}"}
            - shell: {name: show, command: cat, stdin: "{{event.data.stdout}}"}
        """)
    let script = writeTemp("shell3.sh", """
        #!/usr/bin/env bash
        set -euo pipefail
        a=$(echo "hello sluice")
        b=$(printf '%s\\n' "$a" | "$BENCH_PYTHON" -c '\(code)')
        printf '%s\\n' "$b" | cat
        """)
    var env = ProcessInfo.processInfo.environment
    env["BENCH_PYTHON"] = python
    // Interleaved, so both see the same machine state; medians of many runs.
    let runs = quick ? 5 : 60
    var sluiceSamples: [Double] = []
    var bashSamples: [Double] = []
    _ = timeProcess([sluice, "run", flow, "--quiet"], runs: 1, environment: env)
    _ = timeProcess(["/bin/bash", script], runs: 1, environment: env)
    for _ in 0..<runs {
        sluiceSamples += timeProcess([sluice, "run", flow, "--quiet"], runs: 1, environment: env, warmUp: false).samples
        bashSamples += timeProcess(["/bin/bash", script], runs: 1, environment: env, warmUp: false).samples
    }
    let sluiceStats = Stats(samples: sluiceSamples)
    let bashStats = Stats(samples: bashSamples)
    let ratio = sluiceStats.median / bashStats.median
    report("3-task shell chain (echo, python3 -c, cat): sluice", format(sluiceStats.median))
    report("  same steps as a bash script", format(bashStats.median))
    report("  sluice / bash", String(format: "%.2fx", ratio), target: "≤ 1.2x", ok: ratio <= 1.2)
}

if ScriptBench.names.contains(where: wanted) {
    // Rhai scripts (fib, a loop, a sieve, an event transform) against the same in Python 3;
    // see ScriptBench.swift.
    ScriptBench.run(quick: quick, wanted: wanted)
}
