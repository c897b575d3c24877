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

    @Test("A timeout kills what the command started, too (its process group)")
    func timeoutKillsGroup() async throws {
        // If the backgrounded sleep survived, it would hold stdout open and the task would never end.
        let (summary, reports) = try await harness.run("""
            flow:
              tasks:
                - shell: {name: s, command: "sleep 30 & sleep 31; echo never", shell: true, timeout: 200ms}
            """)
        #expect(summary.runsFailed == 1)
        #expect(reports[0].error?.contains("timed out") == true)
        #expect(harness.recorder.events(.stdout, task: "s").isEmpty)
    }

    @Test("workdir sets the working directory; a missing one is a clear error")
    func workdir() async throws {
        let (_, reports) = try await harness.run("flow:\n  tasks:\n    - shell: {name: s, command: pwd, workdir: /tmp}\n")
        #expect(reports[0].resultValue["stdout"] == "/tmp")
        let (_, missing) = try await harness.run("flow:\n  tasks:\n    - shell: {name: s, command: pwd, workdir: /no/such/dir}\n")
        #expect(missing[0].error?.contains("workdir '/no/such/dir' is not a directory") == true)
    }

    @Test("stdin larger than a pipe's buffer is fed while the output is read")
    func largeStdin() async throws {
        let line = String(repeating: "x", count: 99) + "\n"
        let (_, reports) = try await harness.run("""
            flow:
              tasks:
                - shell: {name: s, command: cat, stdin: "{{event.data.text}}", stream_output: false}
            """, input: ["text": .string(String(repeating: line, count: 3_000))])
        #expect(reports[0].resultValue["stdout"]?.stringValue?.count == 300_000 - 1)
    }
}
