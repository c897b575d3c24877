import Foundation
import SluiceCore
import Testing

@Suite("sluice CLI: schedules", .enabled(if: FileManager.default.isExecutableFile(atPath: CLI.binary), "build the sluice binary first (swift build)"))
struct ScheduleCLITests {
    @Test("`sluice run` on a scheduled flow keeps running, records a run per tick with trigger schedule, and stops cleanly on SIGTERM")
    func intervalSchedule() throws {
        let dir = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = dir + "/.sluice/sluice.db"
        let name = "every_second_\(UUID().uuidString.prefix(8).lowercased())"
        let flow = dir + "/scheduled.yaml"
        try """
            flow:
              name: \(name)
              schedule: {interval: 1s, input: {kind: probe}}
              tasks:
                - script: {name: stamp, code: "#{tick: event.data.scheduled_time, kind: event.data.kind}"}
            """.write(toFile: flow, atomically: true, encoding: .utf8)

        // Its output goes to files: read once it has exited.
        FileManager.default.createFile(atPath: dir + "/out", contents: nil)
        FileManager.default.createFile(atPath: dir + "/err", contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLI.binary)
        p.arguments = ["run", flow, "--store", store, "--claim-ttl", "2"]
        p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/out"))
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/err"))
        p.standardInput = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        func output(_ file: String) -> String { (try? String(contentsOfFile: dir + "/" + file, encoding: .utf8)) ?? "" }

        func runs() throws -> [Value] {
            let list = try CLI.run(["runs", "list", "--flow", name, "--json", "--store", store])
            return list.stdout.split(separator: "\n").compactMap { try? Value.parseJSON(String($0)) }
        }
        let twoRuns = try CLI.waitFor(seconds: 10) { try runs().filter { $0["status"] == "completed" }.count >= 2 }
        #expect(twoRuns, "fewer than two completed runs within 10 s; stderr:\n\(output("err"))")
        #expect(p.isRunning, "a scheduler keeps running between ticks")

        p.terminate()  // SIGTERM
        let stopped = CLI.waitFor(seconds: 10) { !p.isRunning }
        try #require(stopped, "still running 10 s after SIGTERM")
        #expect(p.terminationReason == .exit && p.terminationStatus == 0, "stderr:\n\(output("err"))")

        let recorded = try runs()
        #expect(recorded.count >= 2)
        #expect(recorded.allSatisfy { $0["trigger"] == "schedule" }, "\(recorded)")
        let inputs = recorded.compactMap { $0["input"] }
        #expect(inputs.allSatisfy { $0["schedule"]?.stringValue == name && $0["kind"] == "probe" }, "\(inputs)")
        let ticks = inputs.compactMap { $0["scheduled_time"]?.stringValue }
        #expect(ticks.count == recorded.count && Set(ticks).count == ticks.count, "one run per tick: \(ticks)")
        #expect(ticks.allSatisfy { $0.hasSuffix("Z") && $0.count == 20 }, "ISO-8601 UTC: \(ticks)")

        // One line per tick fired, naming the tick and its run.
        let lines = output("out").split(separator: "\n").map(String.init)
        let completed = lines.filter { $0.hasSuffix(" completed") }
        #expect(completed.count >= 2, "stdout:\n\(output("out"))")
        for line in completed {
            let tick = String(line.prefix(20))
            #expect(ticks.contains(tick), "\(line)")
            #expect(recorded.contains { line.contains(": run \($0["id"]?.stringValue ?? "?") ") }, "\(line)")
        }
    }

    @Test("`sluice serve` materializes a scheduled asset's partition at a tick, upstream first, and not again while it is up to date")
    func assetScheduleInServe() throws {
        let dir = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = dir + "/.sluice/sluice.db"
        try FileManager.default.createDirectory(atPath: dir + "/flows", withIntermediateDirectories: true)
        // Hourly partitions from the start of yesterday (UTC): few to list.
        let start = String(ISO8601DateFormatter().string(from: Date().addingTimeInterval(-86_400)).prefix(10)) + "T00:00"
        try """
            flow:
              tasks:
                - script:
                    name: raw
                    code: "#{hour: event.meta.partition}"
                    asset: {partitions: {hourly: {start: \(start)}}}
                - script:
                    name: hourly
                    depends_on: [raw]
                    code: "#{from: event.data.raw.hour}"
                    asset:
                      partitions: {hourly: {start: \(start)}}
                      io: {files: {path: \(dir)/out, format: json}}
                      schedule: {interval: 1s, partition: this_hour}
            """.write(toFile: dir + "/flows/stamp.yaml", atomically: true, encoding: .utf8)
        let server = try ServeProcess([dir + "/flows", "--store", store], dir: dir)
        defer { server.stop() }

        // Every tick after the first finds this hour up to date (a tick at the turn of an hour
        // materializes the new hour).
        let quiet = CLI.waitFor(seconds: 30) { server.output.components(separatedBy: "scheduled partition is up to date").count > 3 }
        #expect(quiet, "\(server.output)")
        #expect(server.stop() == 0)
        let list = try CLI.run(["runs", "list", "--flow", "stamp", "--json", "--store", store])
        let runs = list.stdout.split(separator: "\n").compactMap { try? Value.parseJSON(String($0)) }
        let shown = try CLI.run(["assets", "show", "hourly", "--status", "materialized", "--json", "--flows", dir + "/flows", "--store", store])
        let hours = shown.stdout.split(separator: "\n").compactMap { try? Value.parseJSON(String($0))["partition"]?.stringValue }
        #expect(!runs.isEmpty && runs.count == hours.count, "one run per hour materialized: \(runs) \(hours) \(shown.stderr)")
        #expect(runs.allSatisfy { $0["trigger"] == "schedule" && $0["status"] == "completed" && $0["input"]?["schedule"] == "stamp@hourly" },
                "\(runs)")
        for hour in hours {
            let file = try String(contentsOfFile: "\(dir)/out/\(hour.replacingOccurrences(of: ":", with: "-")).json", encoding: .utf8)
            #expect(try Value.parseJSON(file) == ["from": .string(hour)], "raw [\(hour)] was computed first and read")
        }
    }
}
