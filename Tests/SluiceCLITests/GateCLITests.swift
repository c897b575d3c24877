import Foundation
import SluiceCore
import Testing

@Suite("sluice CLI: approval and signal gates", .enabled(if: FileManager.default.isExecutableFile(atPath: CLI.binary), "build the sluice binary first (swift build)"))
struct GateCLITests {
    /// The newest run of `flow` (the PostgreSQL store is shared with tests running alongside).
    static func runID(_ store: String, flow: String) throws -> String {
        let list = try CLI.run(["runs", "list", "--flow", flow, "--json", "--store", store])
        let first = list.stdout.split(separator: "\n").first.map(String.init) ?? ""
        return try #require(try Value.parseJSON(first)["id"]?.stringValue, "\(list.stdout) \(list.stderr)")
    }

    @Test("An approval gate suspends the run with nothing held; approve in a later process resumes it once; twice is refused",
          arguments: TestStore.allCases)
    func approval(_ backend: TestStore) throws {
        let dir = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        guard let store = try backend.location(in: dir) else { return }
        let flow = dir + "/trade.yaml"
        let name = "trade_\(UUID().uuidString.prefix(8).lowercased())"
        try """
            flow:
              name: \(name)
              tasks:
                - shell: {name: a, shell: true, command: "echo a >> \(dir)/log"}
                - approval: {name: sign_off, message: "Large trade", context: {amount: 2000000}}
                - shell: {name: c, shell: true, command: "echo c >> \(dir)/log"}
            """.write(toFile: flow, atomically: true, encoding: .utf8)
        let first = try CLI.run(["run", flow, "--store", store])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stderr.contains("waits for approval: Large trade"), "\(first.stderr)")
        #expect(first.stdout.isEmpty)
        let id = try Self.runID(store, flow: name)
        let shown = try CLI.run(["runs", "show", id, "--json", "--store", store])
        #expect(try Value.parseJSON(shown.stdout)["status"] == "waiting_approval", "\(shown.stdout)")

        let approved = try CLI.run(["approve", id, "--comment", "checked", "--store", store])
        #expect(approved.status == 0, "\(approved.stderr)")
        let done = try CLI.run(["runs", "show", id, "--json", "--store", store])
        #expect(try Value.parseJSON(done.stdout)["status"] == "completed", "\(done.stdout) \(approved.stderr)")
        #expect(try String(contentsOfFile: dir + "/log", encoding: .utf8) == "a\nc\n", "a ran once before the gate, c once after")

        let twice = try CLI.run(["approve", id, "--store", store])
        #expect(twice.status == 2 && twice.stderr.contains("already approved by"), "\(twice.stderr)")

        // A second run, rejected: the gate task fails with the reason.
        _ = try CLI.run(["run", flow, "--store", store])
        let second = try Self.runID(store, flow: name)
        #expect(second != id)
        let rejected = try CLI.run(["reject", second, "--reason", "too risky", "--store", store])
        #expect(rejected.status == 1, "\(rejected.stderr)")
        #expect(rejected.stderr.contains("rejected by"), "\(rejected.stderr)")
        // The run's error carries the reason (on the shared PostgreSQL database another test's
        // worker may have executed the resumed run, so it is read from the store).
        let secondShown = try CLI.run(["runs", "show", second, "--store", store])
        #expect((rejected.stderr + secondShown.stdout + secondShown.stderr).contains("too risky"), "\(rejected.stderr) \(secondShown.stdout)")
        let notWaiting = try CLI.run(["approve", "no-such-run", "--store", store])
        #expect(notWaiting.status == 2 && notWaiting.stderr.contains("no run 'no-such-run'"), "\(notWaiting.stderr)")
    }

    @Test("In a scatter every item waits at its own approval gate; --task NAME@i decides one; the result reflects each decision",
          arguments: TestStore.allCases)
    func approvalPerItem(_ backend: TestStore) throws {
        let dir = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        guard let store = try backend.location(in: dir) else { return }
        let flow = dir + "/orders.yaml"
        let name = "orders_\(UUID().uuidString.prefix(8).lowercased())"
        try """
            flow:
              name: \(name)
              tasks:
                - iterate: {name: each, iterate_key: orders}
                - shell: {name: check, shell: true, command: "echo {{event.data}} >> \(dir)/checked; echo {{event.data}}"}
                - approval: {name: review, message: "order {{event.data.stdout}}", context: "{{event.data.exit_code}}", on_error: continue}
                - gather: {name: all, failure_threshold: 0.5}
            """.write(toFile: flow, atomically: true, encoding: .utf8)
        let first = try CLI.run(["run", flow, "--store", store, "--input", "{\"orders\": [10, 20, 30]}"])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stderr.contains("--task review@"), "the hint names the item: \(first.stderr)")
        let id = try Self.runID(store, flow: name)
        let waiting = try Value.parseJSON(try CLI.run(["runs", "show", id, "--json", "--store", store]).stdout)
        #expect(waiting["status"] == "waiting_approval")
        let gates = waiting["gates"]?.arrayValue ?? []
        #expect(Set(gates.compactMap { $0["task"]?.stringValue }) == ["review@0", "review@1", "review@2"], "\(gates)")
        #expect(gates.allSatisfy { $0["status"] == "pending" })

        // Three gates wait: a bare approve is ambiguous and decides nothing.
        let ambiguous = try CLI.run(["approve", id, "--store", store])
        #expect(ambiguous.status == 2, "\(ambiguous.stderr)")
        #expect(ambiguous.stderr.contains("waits at 3 approval gates (review@0, review@1, review@2)"), "\(ambiguous.stderr)")
        #expect(ambiguous.stderr.contains("--task"), "\(ambiguous.stderr)")

        let one = try CLI.run(["approve", id, "--task", "review@0", "--store", store])
        #expect(one.status == 0, "\(one.stderr)")
        let afterOne = try CLI.run(["runs", "show", id, "--store", store])
        #expect(afterOne.stdout.contains("status    waiting_approval"), "the others still wait: \(afterOne.stdout)")
        #expect(afterOne.stdout.contains("review@0  approval  approved"), "\(afterOne.stdout)")
        #expect(afterOne.stdout.contains("review@1  approval  pending"), "\(afterOne.stdout)")
        #expect(afterOne.stdout.contains("✓ review@0  completed"), "\(afterOne.stdout)")
        #expect(afterOne.stdout.contains("⏸ review@1  waiting"), "\(afterOne.stdout)")

        let again = try CLI.run(["approve", id, "--task", "review@0", "--store", store])
        #expect(again.status == 2 && again.stderr.contains("already approved"), "\(again.stderr)")
        let rejected = try CLI.run(["reject", id, "--task", "review@1", "--reason", "fraud", "--store", store])
        #expect(rejected.status == 0, "one rejection is within failure_threshold: \(rejected.stderr)")
        // review@2 is the only gate left: --task review now names exactly one.
        let last = try CLI.run(["approve", id, "--task", "review", "--store", store])
        #expect(last.status == 0, "\(last.stderr)")
        let done = try Value.parseJSON(try CLI.run(["runs", "show", id, "--json", "--store", store]).stdout)
        #expect(done["status"] == "completed", "\(done)")
        #expect(done["result"] == [0, 0], "the two approved items' contexts; the rejected one is left out: \(done)")
        #expect(done["tasks"]?.arrayValue?.contains { $0["task"] == "review@1" && $0["status"] == "failed" } == true, "\(done)")
        let decided = Dictionary(uniqueKeysWithValues: (done["gates"]?.arrayValue ?? []).map { ($0["task"]?.stringValue ?? "", $0["status"]) })
        #expect(decided == ["review@0": "approved", "review@1": "rejected", "review@2": "approved"], "\(decided)")
        let checked = try String(contentsOfFile: dir + "/checked", encoding: .utf8).split(separator: "\n").sorted()
        #expect(checked == ["10", "20", "30"], "each item ran once before its gate, whatever the resumes: \(checked)")
    }

    @Test("A signal gate waits for its token across processes; the payload becomes the output; a used or late token is refused",
          arguments: TestStore.allCases)
    func signal(_ backend: TestStore) throws {
        let dir = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        guard let store = try backend.location(in: dir) else { return }
        let flow = dir + "/job.yaml"
        try """
            flow:
              name: job
              tasks:
                - shell: {name: submit, shell: true, command: "echo submitted >> \(dir)/log"}
                - signal: {name: callback, message: "batch job"}
                - script: {name: result, code: "#{rows: event.data.rows * 2}"}
            """.write(toFile: flow, atomically: true, encoding: .utf8)
        let first = try CLI.run(["run", flow, "--store", store])
        #expect(first.status == 0, "\(first.stderr)")
        let token = try #require(first.stderr.range(of: "sluice signal ").map { first.stderr[$0.upperBound...].prefix { !$0.isWhitespace } },
                                 "\(first.stderr)")
        #expect(token.count == 32, "an unguessable token: \(token)")
        let wrong = try CLI.run(["signal", "0123", "--payload", "{}", "--store", store])
        #expect(wrong.status == 2 && wrong.stderr.contains("no signal gate is waiting for token '0123'"), "\(wrong.stderr)")

        let signalled = try CLI.run(["signal", String(token), "--payload", "{\"rows\": 21}", "--store", store])
        #expect(signalled.status == 0, "\(signalled.stderr)")
        #expect(try Value.parseJSON(signalled.stdout) == ["rows": 42], "\(signalled.stdout) \(signalled.stderr)")
        let again = try CLI.run(["signal", String(token), "--payload", "{}", "--store", store])
        #expect(again.status == 2 && again.stderr.contains("was already used"), "\(again.stderr)")
        #expect(try String(contentsOfFile: dir + "/log", encoding: .utf8) == "submitted\n")

        // Timed out: on_timeout continue goes on with null; a signal after that is too late.
        let timed = dir + "/timed.yaml"
        let timedName = "timed_\(UUID().uuidString.prefix(8).lowercased())"
        try """
            flow:
              name: \(timedName)
              tasks:
                - signal: {name: wait, token: "t-\(UUID().uuidString)", timeout: 1s, on_timeout: continue}
                - script: {name: after, code: "#{got: event.data}"}
            """.write(toFile: timed, atomically: true, encoding: .utf8)
        let waiting = try CLI.run(["run", timed, "--store", store])
        #expect(waiting.stderr.contains("waits for a signal"), "\(waiting.stderr)")
        let lateToken = try #require(waiting.stderr.range(of: "sluice signal ").map { waiting.stderr[$0.upperBound...].prefix { !$0.isWhitespace } })
        let id = try Self.runID(store, flow: timedName)
        usleep(1_200_000)
        let resumed = try CLI.run(["runs", "resume", id, "--store", store])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try Value.parseJSON(resumed.stdout) == ["got": .null], "\(resumed.stdout) \(resumed.stderr)")
        let late = try CLI.run(["signal", String(lateToken), "--store", store])
        #expect(late.status == 2 && late.stderr.contains("too late"), "\(late.stderr)")
    }
}
