import Foundation
import SluiceCore
import SluiceEngine
import SluiceTasks
import SluiceTesting
import Synchronization
import Testing

@Suite("script")
struct ScriptTaskTests {
    let harness = FlowHarness(registry: BuiltinTasks.registry)

    @Test("A returned value becomes the data; the event's fields are readable")
    func transformsData() async throws {
        let (summary, reports) = try await harness.run("""
            flow:
              name: shop
              tasks:
                - script:
                    name: t
                    code: |
                      let d = event.data;
                      #{ name: d.name.to_upper(), total: d.price * d.qty, subject_type: type_of(event.subject) }
            """, input: ["name": "pen", "price": 2.5, "qty": 4])
        #expect(summary.runsCompleted == 1)
        #expect(reports[0].resultValue == ["name": "PEN", "subject_type": "string", "total": 10.0])
    }

    @Test("A script sees the same event whether it reads some fields, the meta, or the event whole")
    func eventViews() async throws {
        // The first task sets meta; the later ones read the event in the three ways the
        // engine builds it (only the properties read, without meta, or whole).
        let (_, reports) = try await harness.run("""
            flow:
              name: views
              tasks:
                - script: {name: a, code: 'ctx.meta.tag = "t1"; event.data'}
                - script: {name: b, code: '#{n: event.data.n, id: event.id, ts: event.timestamp, missing: event.nope == ()}'}
                - script: {name: c, code: 'let d = event.data; d.tag = event.meta.tag; d'}
                - script:
                    name: e
                    code: |
                      let d = event.data;
                      d.keys = event.keys().len(); d.also = event["meta"].tag;
                      d.same = d.id == event["id"] && d.ts == event["timestamp"] && type_of(d.ts) == "i64";
                      d
            """, input: ["n": 3])
        let result = reports[0].resultValue
        #expect(result["n"] == 3 && result["missing"] == true && result["tag"] == "t1", "\(result)")
        #expect(result["keys"] == 5 && result["also"] == "t1" && result["same"] == true, "\(result)")
    }

    @Test("A caller doing a run's script work in its own task (a webhook request) and cancelled midway hands the rest over: the run completes")
    func cancelledInlineCaller() async throws {
        final class Reports: Sendable {
            let list = Mutex<[RunReport]>([])
        }
        let reports = Reports()
        var registry = BuiltinTasks.registry
        registry.register(ClosureTask.source("cancelling") { emitter, _ in
            let caller = Task {
                try await emitter.tryStart(Event(data: ["n": 7]), inline: true) { report in reports.list.withLock { $0.append(report) } }
            }
            // Cancelled while the first script (about a second of looping) runs in it.
            try await Task.sleep(for: .milliseconds(50))
            caller.cancel()
            _ = try? await caller.value
        })
        let (summary, _) = try await FlowHarness(registry: registry).run("""
            flow:
              tasks:
                - cancelling: {name: src}
                - script:
                    name: slow
                    concurrency: 2
                    limits: {max_operations: 100000000}
                    code: 'let s = 0; for i in 0..2000000 { s += i; } event.data'
                - script: {name: next, concurrency: 2, code: '#{done: event.data.n}'}
            """)
        #expect(summary.runsCompleted == 1)
        let report = reports.list.withLock { $0.first }
        #expect(report?.status == .completed)
        #expect(report?.resultValue == ["done": 7], "the steps after the cancel ran: \(String(describing: report?.results))")
    }

    @Test("() drops the event, an array fans out, an envelope sets data and subject")
    func returnShapes() async throws {
        let (_, dropped) = try await harness.run("flow:\n  tasks:\n    - script: {name: t, code: 'if event.data.n > 1 { return null; } event.data'}\n",
                                                 input: ["n": 5])
        #expect(dropped[0].results.isEmpty)
        let (_, fanned) = try await harness.run("flow:\n  tasks:\n    - script: {name: t, code: '[1, 2, 3].map(|x| x * event.data.n)'}\n",
                                                input: ["n": 5])
        #expect(fanned[0].resultValue == [5, 10, 15])
        let (_, enveloped) = try await harness.run("flow:\n  tasks:\n    - script: {name: t, code: '#{data: 42, subject: \"s.x\"}'}\n")
        #expect(enveloped[0].results[0].event.data == 42)
        #expect(enveloped[0].results[0].event.subject == "s.x")
        // A record with an id (the shape of Flowgen's own example) is data, not an envelope.
        let (_, record) = try await harness.run("flow:\n  tasks:\n    - script: {name: t, code: '#{id: event.data.n, type: \"order\"}'}\n",
                                                input: ["n": 5])
        #expect(record[0].results[0].event.data == ["id": 5, "type": "order"])
        let (_, rows) = try await harness.run("flow:\n  tasks:\n    - script: {name: t, code: '[#{id: 1}, #{id: 2, data: 3, kind: \"row\"}, #{id: \"e4\", data: 4}]'}\n")
        #expect(rows[0].results.map(\.event.data) == [["id": 1], ["id": 2, "data": 3, "kind": "row"], 4])
        #expect(rows[0].results.last?.event.id == "e4")
        // The event itself, changed, is an envelope: its data goes on.
        let (_, whole) = try await harness.run("flow:\n  tasks:\n    - script: {name: t, code: 'event.data.x = 1; event'}\n",
                                               input: ["n": 5])
        #expect(whole[0].results[0].event.data == ["n": 5, "x": 1])
    }

    @Test("ctx.meta changes are carried forward to the next task")
    func metaCarriesForward() async throws {
        let (_, reports) = try await harness.run("""
            flow:
              tasks:
                - script: {name: a, code: 'ctx.meta.seen = 1; event.data'}
                - script: {name: b, code: 'ctx.meta.seen + 1'}
            """)
        #expect(reports[0].resultValue == 2)
        #expect(reports[0].results[0].event.meta["seen"] == 1)
    }

    @Test("ctx.cache.create lets exactly one of many events through; get/put/delete/list_keys work")
    func cacheDeduplicates() async throws {
        let flow = """
            flow:
              name: dedup-\(UUID().uuidString)
              tasks:
                - iterate: {name: each, iterate_key: ids}
                - script:
                    name: once
                    code: |
                      if !ctx.cache.create("seen:" + event.data, true, 60) { return (); }
                      ctx.cache.put("last", event.data);
                      event.data
            """
        let (_, reports) = try await harness.run(flow, input: ["ids": ["a", "b", "a", "a", "b", "c"]])
        let kept = reports.flatMap(\.results).compactMap(\.event.data.stringValue).sorted()
        #expect(kept == ["a", "b", "c"])
        let (_, listed) = try await harness.run("""
            flow:
              name: list-\(UUID().uuidString)
              tasks:
                - script:
                    name: k
                    code: |
                      ctx.cache.put("x:1", 1); ctx.cache.put("x:2", 2); ctx.cache.put("y", 3);
                      let gone = ctx.cache.delete("x:2");
                      #{ keys: ctx.cache.list_keys("x:"), gone: gone, y: ctx.cache.get("y"), none: ctx.cache.get("nope") }
            """)
        #expect(listed[0].resultValue == ["gone": true, "keys": ["x:1"], "none": .null, "y": 3])
    }

    @Test("A runtime error fails the event without retries and follows on_error")
    func runtimeErrors() async throws {
        let (summary, reports) = try await harness.run("flow:\n  tasks:\n    - script: {name: t, code: 'event.data.n / 0', retry: 3}\n", input: ["n": 1])
        #expect(summary.runsFailed == 1)
        #expect(reports[0].error?.contains("Division by zero") == true)
        #expect(harness.recorder.events(.taskRetrying).isEmpty)
        let (continued, _) = try await harness.run("flow:\n  tasks:\n    - script: {name: t, code: 'throw \"bad\"', on_error: continue}\n")
        #expect(continued.runsCompleted == 1)
    }

    @Test("A runaway script stops at its operation limit")
    func operationLimit() async throws {
        let (summary, reports) = try await harness.run("flow:\n  tasks:\n    - script: {name: t, code: 'loop {}', limits: {max_operations: 10000}}\n")
        #expect(summary.runsFailed == 1)
        #expect(reports[0].error?.contains("Too many operations") == true)
    }

    @Test("A syntax error is a validation error at the script's line and column in the file")
    func syntaxErrorLocation() throws {
        let yaml = """
            flow:
              tasks:
                - script:
                    name: t
                    code: |
                      let x = 1;
                      let y = x +* 2;
            """
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("script-\(UUID().uuidString).yaml").path
        try yaml.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        do {
            _ = try harness.plan(yaml, file: file)
            Issue.record("expected a validation error")
        } catch {
            let e = error.errors[0]
            #expect(e.location?.line == 7)
            #expect(e.location?.column == 22)
            #expect(e.message.contains("script of task 't'"))
        }
    }

    @Test("code: {resource: path} loads the script from the flow's resources folder")
    func resourceScript() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flow-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("resources/scripts"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "event.data.n * 3".write(to: dir.appendingPathComponent("resources/scripts/triple.rhai"), atomically: true, encoding: .utf8)
        try "hello".write(to: dir.appendingPathComponent("resources/greeting.txt"), atomically: true, encoding: .utf8)
        let yaml = """
            flow:
              tasks:
                - script: {name: t, code: {resource: scripts/triple.rhai}}
                - script: {name: u, code: 'ctx.resource.get("greeting.txt") + " " + event.data'}
            """
        let (_, reports) = try await harness.run(yaml, input: ["n": 4], file: dir.appendingPathComponent("flow.yaml").path)
        #expect(reports[0].resultValue == "hello 12")
    }

    @Test("when: is a Rhai expression deciding whether the task sees the event")
    func whenCondition() async throws {
        let (_, reports) = try await harness.run("""
            flow:
              tasks:
                - iterate: {name: each, iterate_key: items}
                - script: {name: big, code: 'event.data * 10', when: 'event.data > 2 && event.data != 4'}
            """, input: ["items": [1, 3, 4, 5]])
        #expect(reports.flatMap(\.results).compactMap(\.event.data.intValue).sorted() == [30, 50])
        do {
            _ = try harness.plan("flow:\n  tasks:\n    - script: {name: t, code: '1', when: 'event.data >'}\n")
            Issue.record("expected a validation error")
        } catch {
            #expect(error.errors[0].message.contains("'when'"))
        }
    }
}
