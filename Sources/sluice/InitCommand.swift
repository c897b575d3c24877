import ArgumentParser
import Foundation

struct InitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Write a few example flows that run (into DIR, default: the current folder)."
    )

    @Argument(help: "Where to write the examples.")
    var directory: String = "."

    @Flag(name: .long, help: "Overwrite files that exist.")
    var force = false

    func run() async throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for (name, text) in ExampleFlows.all {
            let path = (directory as NSString).appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: path) && !force {
                Console.error("\(path) exists; skipped (use --force to overwrite)")
                continue
            }
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            Console.output("wrote \(path)")
        }
        Console.output("try: sluice run \((directory as NSString).appendingPathComponent("hello.yaml")) --input '{\"name\": \"Ada\"}'")
    }
}

/// The flows `sluice init` writes; the test suite runs each of them.
enum ExampleFlows {
    static let all: [(String, String)] = [
        ("hello.yaml", """
            # An on-demand flow: `sluice run hello.yaml --input '{"name": "Ada"}'`
            flow:
              name: hello
              tasks:
                - log:
                    name: greet
                    message: "hello, {{event.data.name}}"
                - shell:
                    name: shout
                    command: tr
                    args: [a-z, A-Z]
                    stdin: "hello, {{event.data.name}}"
            """),
        ("workflow.yaml", """
            # A DAG: two branches run in parallel, then a join merges them by task name.
            flow:
              name: workflow
              tasks:
                - shell:
                    name: date
                    command: date
                    args: ["+%Y"]
                - shell:
                    name: host
                    command: uname
                    depends_on: []
                - log:
                    name: combine
                    depends_on: [date, host]
                    message: "year {{event.data.date.stdout}} on {{event.data.host.stdout}}"
                    retry: {max_attempts: 3, initial_backoff: 200ms}
                    timeout: 5s
            """),
        ("ticks.yaml", """
            # A stream: a source emits three events 200ms apart; each one is a run.
            flow:
              name: ticks
              tasks:
                - generate:
                    name: tick
                    interval: 200ms
                    count: 3
                    payload: {items: [1, 2, 3]}
                - iterate:
                    name: each
                    iterate_key: items
                - log:
                    name: show
                    message: "item {{event.data}} of tick {{event.id}}"
            """),
    ]
}
