import Foundation
import SluiceConfig
import SluiceCore
import SluiceEngine
import SluiceTesting
import Synchronization
import Testing

/// A diamond: raw feeds left and right, which joined reads.
let diamondYAML = """
    flow:
      name: diamond
      tasks:
        - step: {name: raw, asset: true}
        - step: {name: left, depends_on: [raw], asset: true}
        - step: {name: right, depends_on: [raw], asset: true}
        - step: {name: joined, depends_on: [left, right], asset: true}
    """

@Suite("Asset materialization")
struct MaterializeTests {
    /// A runner on a fresh memory store whose `step` tasks count their executions and answer
    /// their inputs plus their own name.
    func setUp() -> (MemoryStore, ExecutionLog, DurableRunner, TaskRegistry) {
        let store = MemoryStore()
        let log = ExecutionLog()
        let reg = log.tasks(blocking: false)
        return (store, log, makeRunner(store, reg), reg)
    }

    func ran(_ m: DurableRunner.Materialized) throws -> (DurableRunner.Outcome, AssetRunPlan) {
        guard case .ran(let outcome, let plan) = m else { throw AssetError("expected a run, got \(m)") }
        return (outcome, plan)
    }

    @Test("A diamond is materialized with each dependency computed once, and recorded with its lineage")
    func diamond() async throws {
        let (store, log, runner, reg) = setUp()
        let plan = try loadPlan(runner, reg, diamondYAML)
        let (outcome, runPlan) = try ran(try await runner.materialize(plan, source: diamondYAML, asset: "joined", partition: ""))
        #expect(outcome.record.status == .completed)
        #expect(runPlan.computeCount == 4)
        for task in ["raw", "left", "right", "joined"] { #expect(log.count(task) == 1, "\(task) ran \(log.count(task)) times") }
        // joined read both sides, each of which read raw.
        let value = try #require(outcome.result)
        #expect(value["left"]?["raw"]?["raw"] == 1)
        #expect(value["right"]?["raw"] != nil)

        let records = try await store.materializations(MaterializationFilter())
        #expect(records.count == 4)
        #expect(records.allSatisfy { $0.status == .materialized && $0.runID == outcome.record.id })
        let joined = try #require(records.first { $0.asset == "joined" })
        #expect(Set(joined.inputs.map(\.asset)) == ["left", "right"])
        let left = try #require(records.first { $0.asset == "left" })
        #expect(left.inputs.map(\.materialization) == [Materialization.id(run: outcome.record.id, asset: "raw", partition: "")])
        #expect(joined.summary["type"] == "object")

        // Asked again: nothing to do.
        let again = try await runner.materialize(plan, source: diamondYAML, asset: "joined", partition: "")
        guard case .upToDate(let status) = again else { Issue.record("expected up to date, got \(again)"); return }
        #expect(status.state == .materialized)
        #expect(log.count("raw") == 1)

        // Forced: only the target runs again; its upstream values are loaded.
        _ = try ran(try await runner.materialize(plan, source: diamondYAML, asset: "joined", partition: "", force: true))
        #expect(log.count("joined") == 2)
        #expect(log.count("left") == 1 && log.count("raw") == 1)
    }

    @Test("An upstream materialized again makes everything downstream stale, and only that is recomputed")
    func staleness() async throws {
        let (store, log, runner, reg) = setUp()
        let plan = try loadPlan(runner, reg, diamondYAML)
        _ = try ran(try await runner.materialize(plan, source: diamondYAML, asset: "joined", partition: ""))
        _ = try ran(try await runner.materialize(plan, source: diamondYAML, asset: "left", partition: "", force: true))
        #expect(log.count("left") == 2)

        var planner = AssetPlanner(graph: plan.assetGraph, store: store, now: Date())
        #expect(try await planner.status(of: "raw", partition: "").state == .materialized)
        #expect(try await planner.status(of: "right", partition: "").state == .materialized)
        let joined = try await planner.status(of: "joined", partition: "")
        #expect(joined.state == .stale)
        #expect(joined.reason?.contains("upstream left was materialized again") == true)

        let (_, runPlan) = try ran(try await runner.materialize(plan, source: diamondYAML, asset: "joined", partition: ""))
        #expect(runPlan.compute.keys.sorted() == ["joined"])
        #expect(runPlan.load.keys.sorted() == ["left", "right"])
        #expect(log.count("joined") == 2 && log.count("raw") == 1 && log.count("right") == 1)

        // A changed definition makes that asset and what reads it stale.
        let changed = diamondYAML.replacingOccurrences(of: "- step: {name: right, depends_on: [raw], asset: true}",
                                                       with: "- step: {name: right, depends_on: [raw], asset: {version: '2'}}")
        let changedPlan = try loadPlan(runner, reg, changed)
        var replanner = AssetPlanner(graph: changedPlan.assetGraph, store: store, now: Date())
        let right = try await replanner.status(of: "right", partition: "")
        #expect(right.state == .stale)
        #expect(right.reason?.contains("definition changed") == true)
        #expect(try await replanner.status(of: "joined", partition: "").state == .stale)
        #expect(try await replanner.status(of: "left", partition: "").state == .materialized)
        let (_, again) = try ran(try await runner.materialize(changedPlan, source: changed, asset: "joined", partition: ""))
        #expect(again.compute.keys.sorted() == ["joined", "right"])
    }

    @Test("A daily asset reads the 24 hourly partitions of its day, computing the missing ones once")
    func windows() async throws {
        let (store, log, runner, reg) = setUp()
        let yaml = """
            flow:
              name: rollup
              tasks:
                - step:
                    name: hourly
                    asset: {partitions: {hourly: {start: 2025-01-01T00:00}}}
                - step:
                    name: daily
                    depends_on: [hourly]
                    asset:
                      partitions: {daily: {start: 2025-01-01}}
                      inputs: {hourly: all_of_window}
            """
        let plan = try loadPlan(runner, reg, yaml)
        _ = try ran(try await runner.materialize(plan, source: yaml, asset: "hourly", partition: "2025-01-02T05:00"))
        let (outcome, runPlan) = try ran(try await runner.materialize(plan, source: yaml, asset: "daily", partition: "2025-01-02"))
        #expect(outcome.record.status == .completed)
        #expect(runPlan.compute["hourly"]?.count == 23)
        #expect(runPlan.load["hourly"] == ["2025-01-02T05:00"])
        #expect(log.count("hourly") == 24)
        let daily = try #require(try await store.materializations(MaterializationFilter(asset: "daily")).first)
        #expect(daily.partition == "2025-01-02")
        #expect(daily.inputs.count == 24)
        #expect(outcome.result?["hourly"]?.objectValue?.count == 24)
        // Each hour saw its own partition.
        #expect(outcome.result?["hourly"]?["2025-01-02T13:00"] != nil)

        await #expect(throws: AssetError.self) {
            _ = try await runner.materialize(plan, source: yaml, asset: "daily", partition: "2025-13-01")
        }
        await #expect(throws: AssetError.self) {
            _ = try await runner.materialize(plan, source: yaml, asset: "weekly", partition: "2025-01-01")
        }
    }

    @Test("Files I/O writes one file per partition and downstream assets read them back; a new process reads memory values from checkpoints")
    func filesAndMemory() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-assets-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (store, _, runner, reg) = setUp()
        let yaml = """
            flow:
              name: files
              tasks:
                - step:
                    name: raw
                    asset: {partitions: {static: [a, b]}, io: {files: {path: \(dir)/raw, format: json}}}
                - step:
                    name: cleaned
                    depends_on: [raw]
                    asset: {partitions: {static: [a, b]}}
            """
        let plan = try loadPlan(runner, reg, yaml)
        _ = try ran(try await runner.materialize(plan, source: yaml, asset: "cleaned", partition: "b"))
        let text = try String(contentsOfFile: "\(dir)/raw/b.json", encoding: .utf8)
        #expect(try Value.parseJSON(text)["raw"] == 1)
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/raw/a.json"))

        // Another runner (another process, as far as memory goes) on the same store.
        let log2 = ExecutionLog()
        let reg2 = log2.tasks(blocking: false)
        let runner2 = makeRunner(store, reg2)
        let plan2 = try loadPlan(runner2, reg2, yaml + "\n    - step: {name: report, depends_on: [cleaned], asset: {partitions: {static: [a, b]}}}\n")
        let (outcome, runPlan) = try ran(try await runner2.materialize(plan2, source: yaml, asset: "report", partition: "b"))
        #expect(runPlan.compute.keys.sorted() == ["report"])
        #expect(outcome.record.status == .completed)
        #expect(outcome.result?["cleaned"]?["raw"]?["raw"] == 1)
        #expect(log2.count("cleaned") == 0)
    }

    static let daily = Partitions.time(TimeWindows(unit: .daily, start: Date(timeIntervalSince1970: 1_735_689_600)))  // 2025-01-01

    /// `setUp` plus the code asset `cleaned` (daily, reading `raw`) and `more`, registered beside the `step` tasks.
    func setUpCode(_ more: [Asset] = []) -> (MemoryStore, ExecutionLog, TaskRegistry, CodeAssets) {
        let (store, log, _, _) = setUp()
        var registry = log.tasks(blocking: false)
        let code = CodeAssets {
            Asset("cleaned", dependsOn: "raw", partitions: Self.daily) { context, inputs in
                ["day": .string(context.partition), "from_raw": inputs["raw"] ?? .null]
            }
            more
        }
        code.register(in: &registry)
        return (store, log, registry, code)
    }

    @Test("Assets defined in Swift join a YAML flow in one graph and materialize with it")
    func codeAssets() async throws {
        let (store, log, registry, code) = setUpCode([
            Asset("report", dependsOn: "cleaned", partitions: Self.daily, version: "2") { _, inputs in
                ["report_of": inputs["cleaned"]?["day"] ?? .null]
            },
        ])
        let yaml = """
            flow:
              name: mixed
              tasks:
                - step: {name: raw, asset: {partitions: {daily: {start: 2025-01-01}}}}
            """
        let loaded = try FlowLoader(catalog: registry.catalog).load(text: yaml, file: "mixed.yaml")
        let runner = makeRunner(store, registry)
        let plan = try runner.prepare(try code.adding(to: loaded))
        let (outcome, runPlan) = try ran(try await runner.materialize(plan, source: yaml, asset: "report", partition: "2025-01-02"))
        #expect(outcome.record.status == .completed)
        #expect(runPlan.compute.keys.sorted() == ["cleaned", "raw", "report"])
        #expect(log.count("raw") == 1)
        let report = try #require(try await store.materializations(MaterializationFilter(asset: "report")).first)
        #expect(report.version == "2")
        #expect(report.inputs.map(\.asset) == ["cleaned"])
        #expect(plan.assetGraph.upstream["cleaned"] == ["raw"])
        #expect(throws: AssetError.self) { _ = try code.adding(to: try code.adding(to: loaded)) }
    }

    @Test("A YAML asset may name a code asset in depends_on: checked when the graph is combined, it materializes with the code asset's value")
    func yamlReadsCodeAsset() async throws {
        let (store, log, registry, code) = setUpCode()
        func yaml(_ upstream: String) -> String {
            """
            flow:
              name: mixed
              tasks:
                - step: {name: raw, asset: {partitions: {daily: {start: 2025-01-01}}}}
                - step:
                    name: report
                    depends_on: [\(upstream)]
                    asset: {partitions: {daily: {start: 2025-01-01}}, inputs: {\(upstream): identity}}
            """
        }
        let loader = FlowLoader(catalog: registry.catalog)
        // Loaded on its own, the YAML does not know the name.
        #expect(throws: FlowErrors.self) { _ = try loader.load(text: yaml("cleaned"), file: "mixed.yaml") }

        let loaded = try loader.load(text: yaml("cleaned"), file: "mixed.yaml", deferringUnknownDependencies: true)
        let runner = makeRunner(store, registry)
        let plan = try runner.prepare(try code.adding(to: loaded))
        #expect(plan.assetGraph.upstream["report"] == ["cleaned"] && plan.assetGraph.upstream["cleaned"] == ["raw"])
        let (outcome, runPlan) = try ran(try await runner.materialize(plan, source: yaml("cleaned"), asset: "report", partition: "2025-01-02"))
        #expect(outcome.record.status == .completed, "\(outcome.record.error ?? "")")
        #expect(runPlan.compute.keys.sorted() == ["cleaned", "raw", "report"])
        #expect(log.count("raw") == 1 && log.count("report") == 1)
        #expect(outcome.result?["cleaned"]?["day"] == "2025-01-02", "report got the code asset's value as its input")
        #expect(outcome.result?["cleaned"]?["from_raw"]?["raw"] == 1)
        let report = try #require(try await store.materializations(MaterializationFilter(asset: "report")).first)
        #expect(report.inputs.map(\.asset) == ["cleaned"])

        // A name still unknown once combined is reported where the YAML wrote it.
        let typo = try loader.load(text: yaml("cleand"), file: "mixed.yaml", deferringUnknownDependencies: true)
        let error = try #require(throws: FlowErrors.self) { _ = try code.adding(to: typo) }
        #expect(error.errors.map(\.description).contains(
            "mixed.yaml:7:22: task 'report' depends on 'cleand', which is not a task of this flow (did you mean 'cleaned'?)"), "\(error)")
        #expect(error.errors.contains { $0.description.hasPrefix("mixed.yaml:8:") && $0.message.contains("'cleand' is not an asset") }, "\(error)")
    }
}
