import Foundation
import SluiceCore
import Testing

@Suite("sluice CLI: rate limits and concurrency slots shared by processes on one store",
       .enabled(if: FileManager.default.isExecutableFile(atPath: CLI.binary), "build the sluice binary first (swift build)"))
struct SharedLimitsCLITests {
    /// One task attempt as its shell recorded it: the `sluice` process, and when it started and ended.
    struct Attempt {
        let process: Int32
        let start: Double
        var end: Double?
    }

    /// A workflow that fans its input out to `work`, whose attempts append `start <sluice pid>
    /// <shell pid> <ns>` (and `end …` after `sleep`) to `log`.
    static func flow(name: String, log: String, limits: String, sleep: String?) -> String {
        var command = "echo start $PPID $$ $(date +%s%N) >> \(log)"
        if let sleep { command += "; sleep \(sleep); echo end $PPID $$ $(date +%s%N) >> \(log)" }
        return """
            flow:
              name: \(name)
              tasks:
                - iterate: {name: each}
                - shell:
                    name: work
                    shell: true
                    concurrency: 6
                    \(limits)
                    command: "\(command)"
            """
    }

    static func attempts(_ log: String) -> [Attempt] {
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        var byShell: [Int32: Attempt] = [:]
        var order: [Int32] = []
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count == 4, let process = Int32(parts[1]), let shell = Int32(parts[2]), let ns = Double(parts[3]) else { continue }
            if parts[0] == "start" {
                byShell[shell] = Attempt(process: process, start: ns / 1e9)
                order.append(shell)
            } else {
                byShell[shell]?.end = ns / 1e9
            }
        }
        return order.compactMap { byShell[$0] }
    }

    /// Runs each flow file in a `sluice run` process of its own, all at once, on `store`; waits
    /// (at most a minute) for them to end and answers their exit statuses and standard errors.
    static func runTogether(_ flows: [String], store: String, dir: String) throws -> [(status: Int32, stderr: String)] {
        let processes = try flows.enumerated().map { i, flow in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: CLI.binary)
            p.arguments = ["run", flow, "--store", store, "--quiet", "--input", "[1, 2, 3, 4, 5, 6]"]
            p.currentDirectoryURL = CLI.root
            FileManager.default.createFile(atPath: "\(dir)/err\(i)", contents: nil)
            p.standardOutput = FileHandle.nullDevice
            p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: "\(dir)/err\(i)"))
            p.standardInput = FileHandle.nullDevice
            try p.run()
            return p
        }
        defer { for p in processes where p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        let ended = CLI.waitFor(seconds: 60) { processes.allSatisfy { !$0.isRunning } }
        #expect(ended, "a sluice process did not end within a minute")
        return processes.enumerated().map { i, p in
            if p.isRunning { return (-1, "still running") }
            return (p.terminationStatus, (try? String(contentsOfFile: "\(dir)/err\(i)", encoding: .utf8)) ?? "")
        }
    }

    @Test("concurrency_limit 2 across two processes: never more than 2 attempts at once, and the processes do take turns",
          arguments: TestStore.allCases)
    func slotsAcrossProcesses(_ backend: TestStore) throws {
        let dir = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        guard let store = try backend.location(in: dir) else { return }
        let tag = UUID().uuidString.prefix(8).lowercased()
        let log = dir + "/log"
        let flows = try (0..<2).map { i in
            let path = "\(dir)/slots\(i).yaml"
            try Self.flow(name: "slots_\(tag)_\(i)", log: log, limits: "concurrency_key: k_\(tag)\n        concurrency_limit: 2",
                          sleep: "0.3").write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        for (i, result) in try Self.runTogether(flows, store: store, dir: dir).enumerated() {
            #expect(result.status == 0, "process \(i): \(result.stderr)")
        }

        let attempts = Self.attempts(log)
        try #require(attempts.count == 12 && attempts.allSatisfy { $0.end != nil }, "\(attempts)")
        // The most attempts running at once, from the recorded intervals (an end before a start
        // at the same instant). Each interval lies within the slot's hold.
        var changes: [(time: Double, step: Int)] = []
        for attempt in attempts {
            changes.append((attempt.start, 1))
            changes.append((attempt.end!, -1))
        }
        changes.sort { a, b in a.time < b.time || (a.time == b.time && a.step < b.step) }
        var running = 0, most = 0
        for change in changes {
            running += change.step
            most = max(most, running)
        }
        #expect(most == 2, "at most 2 attempts at once across both processes (and 2 at some point), found \(most)")
        // Both processes held a slot at the same time: the limit is shared, not split per process.
        let overlapping = attempts.contains { a in
            attempts.contains { b in a.process != b.process && a.start < b.end! && b.start < a.end! }
        }
        #expect(overlapping, "the two processes never ran attempts at the same time: \(attempts)")
        #expect(Set(attempts.map(\.process)).count == 2)
        let span = attempts.map { $0.end! }.max()! - attempts.map(\.start).min()!
        print("slots (\(backend)): 12 attempts of 0.3 s, at most \(most) at once, over \(String(format: "%.2f", span)) s")
    }

    @Test("rate_limit {rate: 5/s, burst: 2} with one key in two processes: at most 2 + 5 (+1) starts in any second",
          arguments: TestStore.allCases)
    func rateAcrossProcesses(_ backend: TestStore) throws {
        let dir = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        guard let store = try backend.location(in: dir) else { return }
        let tag = UUID().uuidString.prefix(8).lowercased()
        let log = dir + "/log"
        let flows = try (0..<2).map { i in
            let path = "\(dir)/rate\(i).yaml"
            try Self.flow(name: "rate_\(tag)_\(i)", log: log, limits: "rate_limit: {rate: 5/s, burst: 2, key: r_\(tag)}", sleep: nil)
                .write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        for (i, result) in try Self.runTogether(flows, store: store, dir: dir).enumerated() {
            #expect(result.status == 0, "process \(i): \(result.stderr)")
        }

        let starts = Self.attempts(log).map(\.start).sorted()
        try #require(starts.count == 12, "\(starts)")
        // A token bucket lets at most burst + rate × t attempts start in any t seconds: 7 in any
        // second. One more is allowed for the time between taking a token and the shell writing
        // its line, which varies by a few milliseconds (up to 200 ms stays within the bound).
        // Two buckets (one per process) would let 12 start within the first second.
        var most = 0
        for (i, t) in starts.enumerated() {
            most = max(most, starts[i...].prefix { $0 < t + 1 }.count)
        }
        #expect(most <= 8, "\(most) attempts started within one second: \(starts.map { $0 - starts[0] })")
        // The 10 attempts after the burst wait 200 ms each for their token: 2 s from first to last.
        let span = starts.last! - starts.first!
        #expect(span >= 1.6, "12 attempts started within \(span) s")
        #expect(Set(Self.attempts(log).map(\.process)).count == 2)
        print("rate (\(backend)): 12 starts over \(String(format: "%.2f", span)) s, at most \(most) in any second")
    }
}
