import Foundation
import SluiceCore
import Testing

/// Where the durable CLI tests keep their runs.
enum TestStore: String, CaseIterable, CustomStringConvertible {
    case sqlite, postgres
    var description: String { rawValue }

    /// The `--store` value, or nil (with the reason printed) when this backend is not available here.
    func location(in dir: String) throws -> String? {
        switch self {
        case .sqlite:
            return dir + "/.sluice/sluice.db"
        case .postgres:
            let env = ProcessInfo.processInfo.environment
            // A schema of its own per test: the worker tests' workers must not take other tests' runs.
            if let url = env["SLUICE_PG_URL"], !url.isEmpty {
                return url + (url.contains("?") ? "&" : "?") + "schema=t_" + UUID().uuidString.prefix(8).lowercased().replacingOccurrences(of: "-", with: "")
            }
            if env["SLUICE_REQUIRE_POSTGRES"] == "1" {
                Issue.record("SLUICE_REQUIRE_POSTGRES=1 but SLUICE_PG_URL is not set: run the tests under scripts/with-postgres")
            } else {
                print("skipped: no PostgreSQL (run under scripts/with-postgres)")
            }
            return nil
        }
    }
}

extension CLI {
    /// Starts the binary in the background with its output discarded (a killed process's
    /// children may keep pipes open).
    static func start(_ args: [String]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        p.currentDirectoryURL = root
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        try p.run()
        return p
    }

    /// Waits, in bounded steps, until `condition` holds; false if it never did.
    static func waitFor(seconds: Double = 20, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            usleep(50_000)
        }
        return try condition()
    }

    static func tempDir() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-durable-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }
}

@Suite("sluice CLI: durable runs", .enabled(if: FileManager.default.isExecutableFile(atPath: CLI.binary), "build the sluice binary first (swift build)"))
struct DurableCLITests {
    /// A three-task flow whose tasks append their name to `log`; `b` hangs the first time it runs.
    static func crashFlow(_ dir: String, name: String) -> String {
        """
        flow:
          name: \(name)
          tasks:
            - shell: {name: a, shell: true, command: "echo a >> \(dir)/log"}
            - shell:
                name: b
                shell: true
                command: "echo b >> \(dir)/log; if [ ! -e \(dir)/marker ]; then touch \(dir)/marker; exec sleep 30; fi"
            - shell: {name: c, shell: true, command: "echo c >> \(dir)/log"}
        """
    }

    @Test("A run killed with SIGKILL resumes from its checkpoints: completed tasks do not run again", arguments: TestStore.allCases)
    func killAndResume(_ backend: TestStore) throws {
        let dir = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        guard let store = try backend.location(in: dir) else { return }
        let name = "crash_\(UUID().uuidString.prefix(8).lowercased())"
        let flow = dir + "/crash.yaml"
        try Self.crashFlow(dir, name: name).write(toFile: flow, atomically: true, encoding: .utf8)

        let victim = try CLI.start(["run", flow, "--store", store, "--claim-ttl", "1", "--quiet"])
        defer { if victim.isRunning { kill(victim.processIdentifier, SIGKILL) } }
        let started = CLI.waitFor { FileManager.default.fileExists(atPath: dir + "/marker") }
        try #require(started, "task b never started")
        let list = try CLI.run(["runs", "list", "--flow", name, "--json", "--store", store])
        #expect(list.status == 0, "\(list.stderr)")
        let runs = list.stdout.split(separator: "\n").compactMap { try? Value.parseJSON(String($0)) }
        try #require(runs.count == 1, "\(list.stdout)")
        #expect(runs[0]["status"] == "running")
        let id = try #require(runs[0]["id"]?.stringValue)
        // A task's start is written with the next transaction or within 20 ms: wait until b's
        // attempt is in the store, so the kill interrupts a recorded attempt.
        let recorded = try CLI.waitFor {
            let show = try CLI.run(["runs", "show", id, "--json", "--store", store])
            let tasks = (try? Value.parseJSON(show.stdout))?["tasks"]?.arrayValue ?? []
            return tasks.contains { $0["task"] == "b" && $0["status"] == "running" }
        }
        #expect(recorded, "b's running attempt never reached the store")
        kill(victim.processIdentifier, SIGKILL)
        victim.waitUntilExit()

        // Its claim outlives the process for --claim-ttl; then any process may resume it. On a
        // PostgreSQL store shared with the worker tests running alongside, a `sluice worker` may
        // take it over first: then the run ends completed all the same.
        var resumed = CLI.Output(status: -1, stdout: "", stderr: "")
        let done = try CLI.waitFor {
            resumed = try CLI.run(["runs", "resume", id, "--store", store, "--claim-ttl", "1"])
            return resumed.status == 0 || !resumed.stderr.contains("being executed by another process")
        }
        let takenByAWorker = backend == .postgres && resumed.stderr.contains("has already ended (completed)")
        #expect(done && (resumed.status == 0 || takenByAWorker), "\(resumed.stderr)")
        let log = try String(contentsOfFile: dir + "/log", encoding: .utf8)
        #expect(log == "a\nb\nb\nc\n", "a ran once, b was interrupted and retried, c ran once")

        let show = try CLI.run(["runs", "show", id, "--store", store])
        #expect(show.status == 0, "\(show.stderr)")
        #expect(show.stdout.contains("status    completed"), "\(show.stdout)")
        #expect(show.stdout.contains("✓ b  completed  2 attempts"), "\(show.stdout)")
        #expect(show.stdout.contains("✓ a  completed  1 attempt"), "\(show.stdout)")
    }

    @Test("A gather past failure_threshold cancels its scatter: runs show lists the unfinished items as cancelled",
          arguments: TestStore.allCases)
    func scatterCancelledInRunsShow(_ backend: TestStore) throws {
        let dir = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        guard let store = try backend.location(in: dir) else { return }
        let name = "fanout_\(UUID().uuidString.prefix(8).lowercased())"
        let flow = dir + "/fanout.yaml"
        // Items 0-2 fail at once; the others would take 5 s each.
        try """
            flow:
              name: \(name)
              tasks:
                - iterate: {name: each}
                - shell:
                    name: work
                    shell: true
                    max_concurrent: 2
                    on_error: continue
                    retry: {max_attempts: 1}
                    command: "echo {{event.data}} >> \(dir)/ran; if [ {{event.data}} -lt 3 ]; then exit 1; fi; sleep 5"
                - gather: {name: all, failure_threshold: 0.1}
            """.write(toFile: flow, atomically: true, encoding: .utf8)
        let run = try CLI.run(["run", flow, "--store", store, "--input", "[" + (0..<20).map(String.init).joined(separator: ",") + "]"])
        #expect(run.status == 1, "\(run.stderr)")
        #expect(run.stderr.contains("3 of 20 elements failed"), "\(run.stderr)")
        let ran = try String(contentsOfFile: dir + "/ran", encoding: .utf8).split(separator: "\n")
        #expect(ran.count < 20 && !ran.contains("19"), "\(ran)")

        let id = try GateCLITests.runID(store, flow: name)
        let show = try CLI.run(["runs", "show", id, "--store", store])
        #expect(show.stdout.contains("✗ work@0  failed"), "\(show.stdout)")
        #expect(show.stdout.contains("⊘ work@19  cancelled"), "\(show.stdout)")
        #expect(show.stdout.contains("attempt 1: not started: gather 'all' gave up: 3 of 20 elements failed"), "\(show.stdout)")
        let json = try Value.parseJSON(try CLI.run(["runs", "show", id, "--json", "--store", store]).stdout)
        let items = (json["tasks"]?.arrayValue ?? []).filter { $0["task"]?.stringValue?.hasPrefix("work@") == true }
        #expect(items.count == 20, "every item is listed: \(items)")
        #expect(items.filter { $0["status"] == "failed" }.count == 3)
        #expect(items.filter { $0["status"] == "cancelled" }.count == 17, "\(items)")
        let events = try CLI.run(["runs", "show", id, "--events", "--store", store]).stdout
        #expect(events.components(separatedBy: "\"task_cancelled\"").count - 1 == 17, "\(events)")
    }

    @Test("runs list, show, retry --from, cancel and the idempotency key")
    func manageRuns() throws {
        let dir = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let flow = dir + "/steps.yaml"
        try """
            flow:
              name: steps
              tasks:
                - shell: {name: one, shell: true, command: "echo one >> \(dir)/log; echo 1"}
                - shell: {name: two, shell: true, command: "echo two >> \(dir)/log; echo 2"}
            """.write(toFile: flow, atomically: true, encoding: .utf8)
        let first = try CLI.run(["run", flow, "--quiet", "--idempotency-key", "k1"])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir + "/.sluice/sluice.db"), "the default store is beside the flow")
        let again = try CLI.run(["run", flow, "--quiet", "--idempotency-key", "k1"])
        #expect(again.status == 0 && again.stdout == first.stdout)
        #expect(again.stderr.contains("already has idempotency key 'k1'"), "\(again.stderr)")

        let store = dir + "/.sluice/sluice.db"
        let list = try CLI.run(["runs", "list", "--store", store])
        #expect(list.stdout.split(separator: "\n").count == 2, "a header and one run:\n\(list.stdout)")
        let id = try #require(list.stdout.split(separator: "\n").last?.split(separator: " ").first.map(String.init))

        let retry = try CLI.run(["runs", "retry", id, "--from", "two", "--store", store])
        #expect(retry.status == 0, "\(retry.stderr)")
        #expect(try String(contentsOfFile: dir + "/log", encoding: .utf8) == "one\ntwo\ntwo\n")
        let bad = try CLI.run(["runs", "retry", id, "--from", "three", "--store", store])
        #expect(bad.status == 1 && bad.stderr.contains("has no task 'three' (its tasks: one, two)"), "\(bad.stderr)")

        let queued = try CLI.run(["run", flow, "--queue", "--store", store])
        let queuedID = queued.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let cancel = try CLI.run(["runs", "cancel", queuedID, "--store", store])
        #expect(cancel.status == 0 && cancel.stdout.contains("cancelled"), "\(cancel.stderr)")
        let twice = try CLI.run(["runs", "cancel", queuedID, "--store", store])
        #expect(twice.status == 1 && twice.stderr.contains("has already ended (cancelled)"), "\(twice.stderr)")
        let missing = try CLI.run(["runs", "show", "nope", "--store", store])
        #expect(missing.status == 2 && missing.stderr.contains("no run 'nope'"))
    }

    @Test("A store that cannot be opened is reported with its path")
    func badStore() throws {
        let dir = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let garbage = dir + "/garbage.db"
        try String(repeating: "not a database ", count: 100).write(toFile: garbage, atomically: true, encoding: .utf8)
        let r = try CLI.run(["runs", "list", "--store", garbage])
        #expect(r.status == 2 && r.stderr.contains(garbage), "\(r.stderr)")
    }
}

@Suite("sluice CLI: state in the store", .enabled(if: FileManager.default.isExecutableFile(atPath: CLI.binary), "build the sluice binary first (swift build)"))
struct StoreStateCLITests {
    @Test("ctx.cache and a schedule's counter outlive the process")
    func stateOutlivesProcess() throws {
        let dir = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let counter = dir + "/counter.yaml"
        try """
            flow:
              name: counter
              tasks:
                - script:
                    name: count
                    code: |
                      let n = ctx.cache.get("n") ?? 0;
                      ctx.cache.put("n", n + 1);
                      n + 1
            """.write(toFile: counter, atomically: true, encoding: .utf8)
        #expect(try CLI.run(["run", counter, "--quiet"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1")
        #expect(try CLI.run(["run", counter, "--quiet"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "2")
        #expect(try CLI.run(["run", counter, "--quiet", "--store", "memory"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1")

        let ticks = dir + "/ticks.yaml"
        func ticksFlow(allowRerun: Bool) -> String {
            """
            flow:
              name: ticks
              tasks:
                - generate: {name: tick, interval: 10ms, count: 3, allow_rerun: \(allowRerun)}
                - log: {name: show}
            """
        }
        try ticksFlow(allowRerun: false).write(toFile: ticks, atomically: true, encoding: .utf8)
        let first = try CLI.run(["run", ticks, "--quiet"])
        #expect(first.status == 0 && first.stdout.split(separator: "\n").count == 3, "\(first.stdout)\(first.stderr)")
        let second = try CLI.run(["run", ticks, "--quiet"])
        #expect(second.status == 0 && second.stdout.isEmpty, "the persisted counter is at its count: \(second.stdout)")
        try ticksFlow(allowRerun: true).write(toFile: ticks, atomically: true, encoding: .utf8)
        let rerun = try CLI.run(["run", ticks, "--quiet"])
        #expect(rerun.stdout.split(separator: "\n").count == 3, "allow_rerun starts again: \(rerun.stdout)")
    }
}
