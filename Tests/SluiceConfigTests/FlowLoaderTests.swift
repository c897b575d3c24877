import SluiceConfig
import SluiceCore
import SluiceTasks
import Testing

@Suite("Flow loading and validation")
struct FlowLoaderTests {
    let loader = FlowLoader(catalog: BuiltinTasks.registry.catalog)

    func errors(_ text: String, file: String = "f.yaml") -> [String] {
        do {
            _ = try loader.load(text: text, file: file)
            return []
        } catch {
            return error.errors.map(\.description)
        }
    }

    @Test("Every error of a file is reported at once, with file:line:column and a suggestion")
    func allErrorsAtOnce() {
        let found = errors("""
            flow:
              tasks:
                - lgo: {name: a}
                - log: {name: b, depnds_on: [a], level: loud}
                - log: {name: c, depends_on: [zz]}
            """)
        #expect(found == [
            "f.yaml:3:7: unknown task type 'lgo' (did you mean 'log'?)",
            "f.yaml:4:22: unknown field 'depnds_on' in task 'b' (did you mean 'depends_on'?)",
            "f.yaml:4:45: field 'level' of task 'b' must be one of trace, debug, info, warn, warning, error, found 'loud'",
            "f.yaml:5:35: task 'c' depends on 'zz', which is not a task of this flow",
        ])
    }

    @Test("Duplicate names and cycles are errors")
    func duplicatesAndCycles() {
        let found = errors("""
            flow:
              tasks:
                - log: {name: a, depends_on: [c]}
                - log: {name: b, depends_on: [a]}
                - log: {name: c, depends_on: [b]}
                - log: {name: a}
            """)
        #expect(found.contains("f.yaml:6:7: task name 'a' is already used at line 3"))
        #expect(found.contains { $0.contains("dependency cycle: a -> b -> c -> a") })
    }

    @Test("Wrong value types name the field, the expected type and what was found")
    func typeErrors() {
        let found = errors("""
            flow:
              tasks:
                - generate: {name: g, count: many, interval: soon}
                - shell: {name: s, depends_on: [g], command: [ls]}
            """)
        #expect(found == [
            "f.yaml:3:34: field 'count' of task 'g' must be an integer, found a string 'many'",
            "f.yaml:3:50: field 'interval' of task 'g' is not a duration: 'soon' (write e.g. 500ms, 10s, 1m30s, 2h)",
            "f.yaml:4:50: field 'command' of task 's' must be a string, found a list",
        ])
    }

    @Test("A missing required field is an error at the task")
    func requiredFields() {
        #expect(errors("flow:\n  tasks:\n    - shell: {name: s}\n") == ["f.yaml:3:14: field 'command' of task 's' is required"])
    }

    @Test("YAML syntax errors carry their position")
    func syntaxErrors() {
        let found = errors("flow:\n  tasks:\n    - log: {name: [\n")
        #expect(found.count == 1)
        #expect(found[0].hasPrefix("f.yaml:4:"))
    }

    @Test("Aliases that expand a small file into a huge tree, and deep nesting, are refused with a position")
    func yamlExpansionLimits() {
        // Nine levels of ten aliases each name 10^9 strings in a few hundred bytes.
        var bomb = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        for level in 1...9 {
            bomb += "a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ") + "]\n"
        }
        bomb += "flow:\n  tasks:\n    - log: {name: a}\n"
        let found = errors(bomb)
        #expect(found.count == 1)
        #expect(found.first?.contains("too many values") == true)
        #expect(found.first?.hasPrefix("f.yaml:") == true)

        let deep = "flow:\n  tasks:\n    - log: {name: a, message: " + String(repeating: "[", count: 300) + String(repeating: "]", count: 300) + "}\n"
        let deepErrors = errors(deep)
        #expect(deepErrors.count == 1)
        #expect(deepErrors.first?.contains("nests deeper than") == true)

        // Aliases within the budget still work.
        #expect(errors("flow:\n  tasks:\n    - log: {name: a, level: &l info}\n    - log: {name: b, level: *l}\n") == [])
    }

    @Test("Tasks without depends_on follow the previous task; depends_on makes a DAG")
    func implicitChain() throws {
        let flow = try loader.load(text: """
            flow:
              name: dag
              tasks:
                - generate: {name: src}
                - log: {name: a}
                - log: {name: b, depends_on: [src]}
                - log: {name: c, depends_on: [a, b], join: any}
            """, file: "dag.yaml")
        #expect(flow.tasks.map(\.dependencies) == [[], ["src"], ["src"], ["a", "b"]])
        #expect(flow.tasks[3].join == .any)
    }

    @Test("Retry accepts Flowgen's short form and the full form")
    func retryForms() throws {
        let flow = try loader.load(text: """
            flow:
              tasks:
                - log: {name: a, retry: {max_attempts: 4, initial_backoff: 2s}}
                - log: {name: b, retry: {max_attempts: 2, initial_backoff: 100ms, max_delay: 1s, multiplier: 3, jitter: none, retry_on_timeout: false}}
            """, file: "r.yaml")
        #expect(flow.tasks[0].retry == RetryPolicy(maxAttempts: 4, initialBackoff: .seconds(2)))
        #expect(flow.tasks[1].retry == RetryPolicy(maxAttempts: 2, initialBackoff: .milliseconds(100), maxBackoff: .seconds(1),
                                                   multiplier: 3, jitter: .none, retryOnTimeout: false))
    }

    @Test("rate_limit (a rate or a map), concurrency_key with concurrency_limit, and max_concurrent for concurrency")
    func sharedLimits() throws {
        let flow = try loader.load(text: """
            flow:
              name: api
              tasks:
                - log: {name: a, rate_limit: 10/s}
                - log: {name: b, rate_limit: 600/min, concurrency_key: scraper, concurrency_limit: 4}
                - log:
                    name: c
                    rate_limit: {rate: 5000/h, key: "api:openai", burst: 20}
                - log: {name: d, max_concurrent: 3}
            """, file: "l.yaml")
        #expect(flow.tasks[0].rateLimit == RateLimit(count: 10, per: .seconds(1)))
        #expect(flow.tasks[0].rateLimit?.burst == 10)
        #expect(flow.tasks[1].rateLimit == RateLimit(count: 600, per: .seconds(60), burst: 600))
        #expect(flow.tasks[1].concurrencyKey == "scraper")
        #expect(flow.tasks[1].concurrencyLimit == 4)
        #expect(flow.tasks[2].rateLimit == RateLimit(count: 5000, per: .seconds(3600), burst: 20, key: "api:openai"))
        #expect(flow.tasks[2].rateLimit?.description == "5000/h, burst 20, key 'api:openai'")
        #expect(flow.tasks[3].concurrency == 3)
        #expect(flow.tasks[3].rateLimit == nil && flow.tasks[3].concurrencyKey == nil)
    }

    @Test("Shared limits written wrong are reported at the value, with what to write instead")
    func sharedLimitErrors() {
        let found = errors("""
            flow:
              tasks:
                - log: {name: a, rate_limit: 10/x}
                - log: {name: b, rate_limit: 0/s}
                - log: {name: c, rate_limit: {rate: 5/s, brust: 2}}
                - log: {name: d, concurrency_key: k}
                - log: {name: e, concurrency_limit: 2}
                - log: {name: f, concurrency: 2, max_concurrent: 3}
                - log: {name: g, rate_limit: {key: x}}
                - log: {name: h, rate_limit: 10, concurrency_key: k, concurrency_limit: 0}
                - log: {name: i, rate_limt: 10/s}
            """)
        #expect(found == [
            "f.yaml:3:34: task 'a': rate_limit '10/x': unknown period 'x' (s, min, h)",
            "f.yaml:4:34: task 'b': rate_limit '0/s': rate must be positive",
            "f.yaml:5:46: unknown field 'brust' in 'rate_limit' of task 'c' (rate, key, burst) (did you mean 'burst'?)",
            "f.yaml:6:22: 'concurrency_key' of task 'd' needs 'concurrency_limit': how many attempts may hold 'k' at once",
            "f.yaml:7:22: 'concurrency_limit' of task 'e' needs 'concurrency_key': the name of the slots it limits (for this task alone, use 'concurrency')",
            "f.yaml:8:38: task 'f' has both 'concurrency' and 'max_concurrent', which mean the same: keep one",
            "f.yaml:9:34: 'rate_limit' of task 'g' needs a rate, e.g. rate_limit: {rate: 10/s, key: api}",
            "f.yaml:10:34: 'rate_limit' of task 'h' must be a rate such as 10/s, 600/min or 5000/h, found an integer",
            "f.yaml:10:77: 'concurrency_limit' of task 'h' must be at least 1, found 0",
            "f.yaml:11:22: unknown field 'rate_limt' in task 'i' (did you mean 'rate_limit'?)",
        ])
        #expect(throws: RateLimit.ParseError("'ten' is not a whole number of attempts (write e.g. 10/s)")) { try RateLimit(parsing: "ten/s") }
        #expect(throws: RateLimit.ParseError("write a rate such as 10/s, 600/min or 5000/h")) { try RateLimit(parsing: "10 per second") }
    }

    @Test("FlowEngine JSON: tagged and plain values, free-form ids, ports, retry policy and settings")
    func flowEngine() throws {
        let flow = try loader.load(text: """
            {"id": "wf-1", "name": "Pipeline", "nodes": [
              {"id": "n1", "node_type": "shell.exec", "name": "List",
               "config": {"command": {"type": "String", "value": "ls"}, "args": {"type": "Array", "value": [{"type": "String", "value": "-l"}]},
                          "timeout": {"type": "Number", "value": 30}},
               "retry_policy": {"max_attempts": 3, "delay_ms": 500, "backoff_multiplier": 2.0, "max_delay_ms": 4000, "retry_on_timeout": false}},
              {"id": "n2", "node_type": "debug.log", "config": {"level": "warn"}}],
             "connections": [{"from_node": "n1", "from_port": "stdout", "to_node": "n2", "to_port": "message"}],
             "triggers": [], "settings": {"max_execution_time_ms": 60000, "max_parallel_nodes": 4, "on_error": "ContinueOnError"}}
            """, file: "w.json")
        #expect(flow.tasks.map(\.name) == ["List", "n2"])
        #expect(flow.tasks[0].type == "shell")
        #expect(flow.tasks[0].config["args"] == ["-l"])
        #expect(flow.tasks[0].timeout == .seconds(30))
        #expect(flow.tasks[0].retry?.maxAttempts == 3)
        #expect(flow.tasks[0].retry?.initialBackoff == .milliseconds(500))
        #expect(flow.tasks[0].retry?.retryOnTimeout == false)
        #expect(flow.tasks[1].inputs == [Edge(from: "List", fromPort: "stdout", toPort: "message", location: flow.tasks[1].inputs.first?.location)])
        #expect(flow.tasks[1].onError == .continue)
        #expect(flow.settings.maxParallelTasks == 4)
        #expect(flow.settings.runTimeout == .seconds(60))
    }

    @Test("FlowEngine JSON errors name unknown node types and point into the file")
    func flowEngineErrors() {
        let found = errors("""
            {"id": "x", "name": "y", "nodes": [
              {"id": "a", "node_type": "zypi.exec", "config": {}},
              {"id": "b", "node_type": "debug.log", "config": {"levle": "info"}}],
             "connections": [{"from_node": "a", "from_port": "o", "to_node": "q", "to_port": "i"}]}
            """, file: "w.json")
        #expect(found == [
            "w.json:2:28: unknown task type 'zypi.exec' (node 'a')",
            "w.json:3:52: unknown field 'levle' in node 'b' (did you mean 'level'?)",
            "w.json:4:66: connection to unknown node 'q'",
        ])
    }

    @Test("Templates render per event and a lone placeholder keeps its JSON type")
    func templates() throws {
        let t = try ConfigTemplate(["url": "http://h/{{event.data.id}}", "body": "{{event.data}}", "n": 3])
        let rendered = t.render(["event": ["data": ["id": 7, "x": [1, 2]]]])
        #expect(rendered["url"] == "http://h/7")
        #expect(rendered["body"] == ["id": 7, "x": [1, 2]])
        #expect(rendered["n"] == 3)
        #expect(throws: Template.SyntaxError.self) { try Template("{{secrets.x}}") }
    }
}
