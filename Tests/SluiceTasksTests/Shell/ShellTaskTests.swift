import SluiceCore
import SluiceEngine
import SluiceTasks
import SluiceTesting
import Testing

@Suite("shell")
struct ShellTaskTests {
    let harness = FlowHarness(registry: BuiltinTasks.registry, environment: ["PATH": "/usr/bin:/bin"])

    @Test("stdout lines stream as events; output holds stdout, stderr, exit code")
    func streamsLines() async throws {
        let (summary, reports) = try await harness.run("""
            flow:
              tasks:
                - shell: {name: s, command: "printf 'a\\nb\\n'; echo oops >&2", shell: true}
            """)
        #expect(summary.runsCompleted == 1)
        #expect(harness.recorder.events(.stdout, task: "s").map(\.message) == ["a", "b"])
        #expect(harness.recorder.events(.stderr, task: "s").map(\.message) == ["oops"])
        let out = reports[0].resultValue
        #expect(out["stdout"] == "a\nb")
        #expect(out["exit_code"] == 0)
        #expect(out["success"] == true)
    }

    @Test("stdin comes from a template; JSON stdout is parsed into output")
    func stdinAndJSON() async throws {
        let (_, reports) = try await harness.run("""
            flow:
              tasks:
                - shell: {name: s, command: cat, stdin: "{{event.data}}"}
            """, input: ["n": 3])
        #expect(reports[0].resultValue["output"] == ["n": 3])
    }

    @Test("A non-zero exit fails the task unless fail_on_error is false")
    func exitCodes() async throws {
        let (failed, reports) = try await harness.run("flow:\n  tasks:\n    - shell: {name: s, command: 'exit 3', shell: true}\n")
        #expect(failed.runsFailed == 1)
        #expect(reports[0].error?.contains("exited with code 3") == true)
        let (ok, okReports) = try await harness.run("flow:\n  tasks:\n    - shell: {name: s, command: 'exit 3', shell: true, fail_on_error: false}\n")
        #expect(ok.runsCompleted == 1)
        #expect(okReports[0].resultValue["exit_code"] == 3)
    }

    @Test("A command that outlives its timeout is killed")
    func timeoutKills() async throws {
        let (summary, reports) = try await harness.run("flow:\n  tasks:\n    - shell: {name: s, command: sleep, args: ['30'], timeout: 200ms}\n")
        #expect(summary.runsFailed == 1)
        #expect(reports[0].error?.contains("timed out") == true)
    }

    @Test("An unknown command is a permanent error that names it")
    func unknownCommand() async throws {
        let (_, reports) = try await harness.run("flow:\n  tasks:\n    - shell: {name: s, command: no-such-cmd-xyz, retry: 3}\n")
        #expect(reports[0].error?.contains("command not found: no-such-cmd-xyz") == true)
        #expect(harness.recorder.events(.taskRetrying).isEmpty)
    }
}
