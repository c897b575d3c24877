import SluiceConfig
import SluiceCore
import SluiceTasks
import Testing

@Suite("Asset declarations")
struct AssetSpecTests {
    let loader = FlowLoader(catalog: BuiltinTasks.registry.catalog)

    func errors(_ yaml: String) -> [String] {
        do {
            _ = try loader.load(text: yaml, file: "assets.yaml")
            return []
        } catch {
            return error.errors.map(\.description)
        }
    }

    @Test("A diamond of partitioned assets loads with keys, I/O managers and mappings")
    func diamond() throws {
        let flow = try loader.load(text: """
            flow:
              name: sales
              tasks:
                - script:
                    name: raw
                    code: "#{day: ctx.partition}"
                    asset:
                      partitions: {daily: {start: 2025-01-01}}
                      io: {files: {path: data/raw, format: jsonl}}
                - script: {name: cleaned, code: "event", asset: {partitions: {daily: {start: 2025-01-01}}}, depends_on: [raw]}
                - script: {name: enriched, code: "event", asset: {partitions: {daily: {start: 2025-01-01}}}, depends_on: [raw]}
                - script:
                    name: report
                    code: "event"
                    depends_on: [cleaned, enriched]
                    asset:
                      key: monthly_report
                      partitions: {monthly: {start: 2025-01}}
                      io: {table: {name: monthly_report}}
                      inputs: {cleaned: all_of_window, enriched: all_of_window}
            """, file: "sales.yaml")
        let raw = try #require(flow.task(named: "raw")?.asset)
        #expect(raw.key == "raw" && raw.io == .files(path: "data/raw", format: .jsonl))
        #expect(raw.partitions?.timeWindows?.unit == .daily)
        let report = try #require(flow.task(named: "report")?.asset)
        #expect(report.key == "monthly_report" && report.io == .table(name: "monthly_report", url: nil))
        #expect(report.mapping(from: "cleaned") == .allOfWindow)
        #expect(flow.task(named: "cleaned")?.asset?.mapping(from: "raw") == .identity)
        #expect(flow.task(named: "cleaned")?.asset?.io == .memory)
        #expect(flow.warnings.isEmpty, "assets are acted on: \(flow.warnings)")
    }

    @Test("Mistakes in assets are reported with file:line:column")
    func mistakes() {
        let found = errors("""
            flow:
              tasks:
                - script: {name: a, code: "1", asset: {partitions: {daily: {start: 2025-01-01}}, color: red}}
                - script: {name: b, code: "1", depends_on: [a], asset: {partitions: {static: [x, y]}}}
                - script: {name: c, code: "1", depends_on: [a], asset: {partitions: {static: [x]}, inputs: {a: previous, z: all}}}
                - script: {name: d, code: "1", asset: {io: {bucket: {name: x}}, partitions: {weekly: {start: 2025-01-01}}}}
            """)
        #expect(found.contains { $0.hasPrefix("assets.yaml:3:") && $0.contains("unknown field 'color' in 'asset'") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("assets.yaml:4:") && $0.contains("partitioned differently") }, "\(found)")
        #expect(found.contains { $0.contains("mapping 'a' by time windows needs time partitions on both assets") }, "\(found)")
        #expect(found.contains { $0.contains("maps partitions of 'z', which it does not depend on") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("assets.yaml:6:") && $0.contains("unknown io 'bucket'") }, "\(found)")
        #expect(found.contains { $0.contains("unknown partitions 'weekly'") }, "\(found)")
    }

    @Test("An asset's schedule loads; its partition must be a window of the asset's unit, and mistakes point at the line")
    func schedules() throws {
        let flow = try loader.load(text: """
            flow:
              tasks:
                - script:
                    name: daily
                    code: "1"
                    asset:
                      partitions: {daily: {start: 2025-01-01}}
                      schedule: {cron: "0 1 * * *", partition: yesterday, catch_up: all}
            """, file: "assets.yaml")
        let schedule = try #require(flow.task(named: "daily")?.asset?.schedule)
        #expect(schedule.trigger == .cron("0 1 * * *") && schedule.partition == "yesterday" && schedule.catchUp == .all)
        #expect(flow.task(named: "daily")?.asset?.fingerprint.contains("cron") == false, "a schedule is not part of the version")

        let found = errors("""
            flow:
              tasks:
                - script: {name: a, code: "1", asset: {partitions: {daily: {start: 2025-01-01}}, schedule: {cron: "0 1 * * *"}}}
                - script: {name: b, code: "1", asset: {partitions: {daily: {start: 2025-01-01}}, schedule: {cron: "0 1 * * *", partition: previous_hour}}}
                - script: {name: c, code: "1", depends_on: [], asset: {partitions: {static: [x, y]}, schedule: {interval: 1h}}}
                - script: {name: d, code: "1", asset: {schedule: {interval: 1h, partition: today}}}
                - script: {name: e, code: "1", asset: {schedule: {interval: 1h, colour: red}}}
            """)
        #expect(found.contains { $0.hasPrefix("assets.yaml:3:") && $0.contains("the schedule of daily asset 'a' needs 'partition' (today or yesterday)") },
                "\(found)")
        #expect(found.contains { $0.hasPrefix("assets.yaml:4:") && $0.contains("'previous_hour' is not a window of daily asset 'b'") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("assets.yaml:5:") && $0.contains("(static partitions) cannot choose a partition per tick") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("assets.yaml:6:") && $0.contains("asset 'd' is not partitioned") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("assets.yaml:7:") && $0.contains("unknown field 'colour' in 'asset.schedule' of task 'e'") }, "\(found)")
        #expect(found.count == 5, "\(found)")
    }
}
