import Foundation
import SluiceCore
import Testing

@Suite("sluice CLI: workers and leaders on PostgreSQL",
       .enabled(if: FileManager.default.isExecutableFile(atPath: CLI.binary), "build the sluice binary first (swift build)"))
struct WorkerCLITests {
    /// One line per task execution in `log`: run id, task, worker pid.
    static func recordingFlow(_ dir: String, name: String) -> String {
        """
        flow:
          name: \(name)
          tasks:
            - shell: {name: a, shell: true, command: "echo {{run.id}} a $PPID >> \(dir)/log"}
            - shell: {name: b, shell: true, command: "sleep 0.05; echo {{run.id}} b $PPID >> \(dir)/log"}
            - shell: {name: c, shell: true, command: "echo {{run.id}} c $PPID >> \(dir)/log"}
        """
    }

    struct Execution: Hashable {
        let run: String
        let task: String
        let pid: Int32
    }

    static func executions(_ dir: String) -> [Execution] {
        let text = (try? String(contentsOfFile: dir + "/log", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ")
            guard parts.count == 3, let pid = Int32(parts[2]) else { return nil }
            return Execution(run: String(parts[0]), task: String(parts[1]), pid: pid)
        }
    }

    @Test("Three workers, 200 queued runs, one worker killed with SIGKILL: every run succeeds, none is lost or redone")
    func threeWorkers() throws {
        let dir = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        guard let store = try TestStore.postgres.location(in: dir) else { return }
        let name = "workers_\(UUID().uuidString.prefix(8).lowercased())"
        let flow = dir + "/work.yaml"
        try Self.recordingFlow(dir, name: name).write(toFile: flow, atomically: true, encoding: .utf8)

        let queued = try CLI.run(["run", flow, "--queue", "--count", "200", "--store", store])
        #expect(queued.status == 0, "\(queued.stderr)")
        let ids = Set(queued.stdout.split(separator: "\n").map(String.init))
        try #require(ids.count == 200)

        let workers = try (0..<3).map { _ in
            try CLI.start(["worker", "--store", store, "--claim-ttl", "2", "--concurrency", "4"])
        }
        defer {
            for w in workers where w.isRunning { w.terminate() }
            for w in workers { w.waitUntilExit() }
        }
        // Kill one worker once a quarter of the runs are through and it holds runs in flight.
        let victim = workers[0]
        let busy = CLI.waitFor(seconds: 120) {
            let done = Self.executions(dir)
            return done.filter { $0.task == "c" }.count >= 50 && done.contains { $0.pid == victim.processIdentifier }
        }
        try #require(busy, "the workers made no progress: \(Self.executions(dir).count) executions")
        kill(victim.processIdentifier, SIGKILL)
        victim.waitUntilExit()

        let finished = try CLI.waitFor(seconds: 180) {
            Set(Self.executions(dir).filter { $0.task == "c" }.map(\.run)).count == 200
        }
        #expect(finished, "runs finished: \(Set(Self.executions(dir).filter { $0.task == "c" }.map(\.run)).count)/200")

        let list = try CLI.run(["runs", "list", "--flow", name, "--json", "--limit", "1000", "--store", store])
        let records = list.stdout.split(separator: "\n").compactMap { try? Value.parseJSON(String($0)) }
        #expect(records.count == 200)
        #expect(records.allSatisfy { $0["status"] == "completed" },
                "statuses: \(Set(records.compactMap { $0["status"]?.stringValue }))")

        // A task runs twice only when the killed worker was in the middle of it: at most one
        // task per run, only in runs the victim held, and every such run was taken over.
        let all = Self.executions(dir)
        let byRunTask = Dictionary(grouping: all) { "\($0.run) \($0.task)" }
        let repeated = byRunTask.filter { $0.value.count > 1 }
        for (key, list) in repeated {
            #expect(list.count == 2, "\(key) ran \(list.count) times")
            #expect(list.contains { $0.pid == victim.processIdentifier } && list.contains { $0.pid != victim.processIdentifier },
                    "\(key) ran twice without the victim being involved: \(list)")
        }
        let repeatedRuns = repeated.keys.map { String($0.split(separator: " ")[0]) }
        #expect(repeatedRuns.count == Set(repeatedRuns).count, "at most one repeated task per run")
        // Each run's log names every worker that claimed it: the victim's runs that it had not
        // finished were claimed again by another worker.
        var reclaimed = 0
        for id in ids {
            let show = try CLI.run(["runs", "show", id, "--json", "--events", "--store", store])
            let events = try Value.parseJSON(show.stdout)["events"]?.arrayValue ?? []
            let claims = events.filter { $0["type"] == "run_claimed" }.compactMap { $0["worker"]?.stringValue }
            guard let first = claims.firstIndex(where: { $0.contains(":\(victim.processIdentifier):") }) else { continue }
            let victimEnded = events.contains { $0["type"] == "run_completed" }
                && claims.count == first + 1
            #expect(victimEnded || claims.count > first + 1, "run \(id) lost its worker and was not taken over")
            if claims.count > first + 1 { reclaimed += 1 }
        }
        #expect(reclaimed > 0, "the victim held no unfinished run when killed")
        print("three workers: \(all.count) task executions for 600 tasks; \(reclaimed) runs taken over from the killed worker, "
              + "\(repeated.count) interrupted tasks re-run")
    }

    @Test("A require_leader_election flow runs on one process; when its leader is killed another takes over")
    func leaderFailover() throws {
        let dir = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        guard let store = try TestStore.postgres.location(in: dir) else { return }
        let name = "leader_\(UUID().uuidString.prefix(8).lowercased())"
        let flow = dir + "/leader.yaml"
        try """
            flow:
              name: \(name)
              require_leader_election: true
              tasks:
                - generate: {name: tick, interval: 50ms}
                - shell: {name: note, shell: true, command: "echo $PPID >> \(dir)/log"}
            """.write(toFile: flow, atomically: true, encoding: .utf8)
        let processes = try (0..<2).map { _ in try CLI.start(["run", flow, "--store", store, "--claim-ttl", "1", "--quiet"]) }
        defer {
            for p in processes where p.isRunning { p.terminate() }
            for p in processes { p.waitUntilExit() }
        }
        func pids() -> [Int32] {
            ((try? String(contentsOfFile: dir + "/log", encoding: .utf8)) ?? "").split(separator: "\n").compactMap { Int32($0) }
        }
        try #require(CLI.waitFor { pids().count >= 10 }, "no ticks from a leader")
        let leaders = Set(pids())
        #expect(leaders.count == 1, "only one process leads: \(leaders)")
        let leader = try #require(processes.first { leaders.contains($0.processIdentifier) })
        let follower = try #require(processes.first { $0 !== leader })

        kill(leader.processIdentifier, SIGKILL)
        leader.waitUntilExit()
        let killedAt = Date()
        let tookOver = CLI.waitFor { pids().contains(follower.processIdentifier) }
        let failover = Date().timeIntervalSince(killedAt)
        #expect(tookOver, "the follower never took over")
        // The lease lasts 1 s; the follower polls every third of that.
        #expect(failover < 5, "failover took \(failover) s")
        print("leader failover: \(String(format: "%.2f", failover)) s with a 1 s lease")
    }
}
