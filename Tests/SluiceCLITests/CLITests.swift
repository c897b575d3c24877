import Foundation
import SluiceCore
import Testing

/// Runs the built `sluice` binary, as a user would.
struct CLI {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let binary = root.appendingPathComponent(".build/debug/sluice").path

    struct Output { var status: Int32; var stdout: String; var stderr: String }

    static func run(_ args: [String], stdin: String? = nil) throws -> Output {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        p.currentDirectoryURL = root
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Output(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    static func temp(_ name: String, _ text: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-cli-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}

@Suite("sluice CLI", .enabled(if: FileManager.default.isExecutableFile(atPath: CLI.binary), "build the sluice binary first (swift build)"))
struct CLITests {
    @Test("The README's example runs and prints its result as JSON on stdout")
    func readmeExample() throws {
        let r = try CLI.run(["run", "examples/hello.yaml", "--input", #"{"name": "Ada"}"#])
        #expect(r.status == 0, "\(r.stderr)")
        let value = try Value.parseJSON(r.stdout)
        #expect(value["stdout"] == "HELLO, ADA")
        #expect(r.stderr.contains("completed"))
    }

    @Test("The README's task table is the one `sluice tasks --markdown` generates")
    func readmeTaskTable() throws {
        let r = try CLI.run(["tasks", "--markdown"])
        #expect(r.status == 0)
        let readme = try String(contentsOf: CLI.root.appendingPathComponent("README.md"), encoding: .utf8)
        #expect(readme.contains(r.stdout), "README.md's task table is stale: regenerate it with `sluice tasks --markdown`")
    }

    @Test("A stream through a buffer prints one line per batch, nothing for the runs it absorbed")
    func bufferedStream() throws {
        let flow = try CLI.temp("batches.yaml", """
            flow:
              name: batches
              tasks:
                - generate: {name: src, count: 5, payload: {n: 1}}
                - buffer: {name: group, size: 2}
            """)
        let r = try CLI.run(["run", flow, "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 3, "\(r.stdout)")
        let sizes = try lines.map { try Value.parseJSON($0)["batch_size"] }
        #expect(sizes == [2, 2, 1])
    }

    @Test("Every example written by `sluice init` runs")
    func initExamplesRun() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-init-\(getpid())").path
        let r = try CLI.run(["init", dir, "--force"])
        #expect(r.status == 0)
        for name in ["hello.yaml", "workflow.yaml", "ticks.yaml"] {
            let run = try CLI.run(["run", "\(dir)/\(name)", "--quiet", "--input", #"{"name": "x"}"#])
            #expect(run.status == 0, "\(name): \(run.stderr)")
            #expect(!run.stdout.isEmpty, "\(name) printed no result")
        }
    }

    @Test("An invalid flow exits 2 with file:line:column errors")
    func invalidFlow() throws {
        let path = try CLI.temp("bad.yaml", "flow:\n  tasks:\n    - nope: {name: a}\n")
        let r = try CLI.run(["validate", path])
        #expect(r.status == 2)
        #expect(r.stderr.contains("\(path):3:7: unknown task type 'nope'"))
        let run = try CLI.run(["run", path])
        #expect(run.status == 2)
    }

    @Test("A failed run exits 1 and names the task; bad --input exits 2")
    func failedRun() throws {
        let path = try CLI.temp("fail.yaml", "flow:\n  tasks:\n    - shell: {name: f, command: 'false'}\n")
        let r = try CLI.run(["run", path, "--events", "json"])
        #expect(r.status == 1)
        let events = r.stderr.split(separator: "\n").compactMap { try? Value.parseJSON(String($0)) }
        #expect(events.contains { $0["type"] == "task_failed" && $0["task"] == "f" })
        #expect(events.contains { $0["type"] == "run_failed" })
        #expect(try CLI.run(["run", path, "--input", "{oops"]).status == 2)
    }

    @Test("`sluice tasks --json` lists every task with its aliases and fields")
    func tasksJSON() throws {
        let r = try CLI.run(["tasks", "--json"])
        #expect(r.status == 0)
        let list = try #require(try Value.parseJSON(r.stdout).arrayValue)
        let names = list.compactMap { $0["name"]?.stringValue }
        #expect(names.contains("shell") && names.contains("http_request") && names.contains("generate"))
        let shell = try #require(list.first { $0["name"] == "shell" })
        #expect(shell["aliases"] == ["shell.exec"])
        #expect(shell["fields"]?.arrayValue?.contains { $0["name"] == "command" && $0["required"] == true } == true)
    }
}
