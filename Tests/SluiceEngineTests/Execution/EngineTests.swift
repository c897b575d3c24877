import Foundation
import SluiceConfig
import SluiceCore
import SluiceEngine
import SluiceTesting
import Synchronization
import Testing

/// A counter tests share with their task closures.
final class Counter: Sendable {
    let value = Atomic<Int>(0)
    @discardableResult func next() -> Int { value.add(1, ordering: .relaxed).newValue }
    var current: Int { value.load(ordering: .relaxed) }
}

func registry(_ extra: [TaskRegistration] = []) -> TaskRegistry {
    var r = TaskRegistry()
    // pass: returns its input; tag: adds {"via": <task>} to object data
    r.register(ClosureTask.processor("pass") { e, _ in .event(e) })
    r.register(ClosureTask.processor("tag", fields: [FieldSpec("value", .any, summary: "")]) { e, ctx in
        var data = e.data
        data[ctx.taskName] = ctx.config["value"] ?? .bool(true)
        return .event(e.with(data: data))
    })
    r.register(ClosureTask.processor("split") { e, _ in .events((e.data.arrayValue ?? []).map { e.with(data: $0) }) })
    r.register(ClosureTask.processor("boom") { _, _ in throw TaskError.permanent("boom") })
    for x in extra { r.register(x) }
    return r
}

@Suite("Engine")
struct EngineTests {
    @Test("A chain passes one event through every task and reports the leaf's output")
    func chain() async throws {
        let h = FlowHarness(registry: registry())
        let (summary, reports) = try await h.run("""
            flow:
              tasks:
                - tag: {name: a, value: 1}
                - tag: {name: b, value: 2}
                - tag: {name: c, value: 3}
            """, input: ["x": 0])
        #expect(summary.runsCompleted == 1)
        #expect(reports.first?.resultValue == ["x": 0, "a": 1, "b": 2, "c": 3])
        #expect(h.recorder.events(.taskCompleted).map(\.task) == ["a", "b", "c"])
        #expect(h.recorder.events(.runCompleted).count == 1)
    }

    @Test("A sink may take each run's events through a sink of its own, or none of them")
    func perRunSinks() async throws {
        /// Gives each run a recorder of its own; keeps the events of no run itself.
        final class Splitter: EngineEventSink {
            let runs = Mutex<[String: EventRecorder]>([:])
            let shared = EventRecorder()
            var splitsRuns: Bool { true }
            func sink(forRun id: String, flow: String) -> (any EngineEventSink)? {
                runs.withLock { r in
                    let recorder = EventRecorder()
                    r[id] = recorder
                    return recorder
                }
            }
            func receive(_ event: EngineEvent) { shared.receive(event) }
        }
        /// Wants no run's events.
        final class Outside: EngineEventSink {
            let seen = EventRecorder()
            var splitsRuns: Bool { true }
            func sink(forRun id: String, flow: String) -> (any EngineEventSink)? { NoRunEvents() }
            func receive(_ event: EngineEvent) { seen.receive(event) }
        }
        let splitter = Splitter(), outside = Outside(), everything = EventRecorder()
        let engine = Engine(registry: registry(), sinks: [splitter, outside, everything])
        let yaml = """
            flow:
              tasks:
                - split: {name: s}
                - tag: {name: a}
            """
        let plan = try engine.prepare(FlowLoader(catalog: registry().catalog).load(text: yaml, file: "t.yaml"))
        for input: Value in [[1, 2], [3]] { _ = await engine.runOnce(plan, input: input) }
        let perRun = splitter.runs.withLock { $0 }
        #expect(perRun.count == 2)
        for (id, recorder) in perRun {
            #expect(recorder.events.allSatisfy { $0.runID == id })
            #expect(recorder.events.first?.kind == .runStarted)
            #expect(recorder.events.last?.kind == .runCompleted)
        }
        #expect(perRun.values.map(\.events.count).reduce(0, +) == everything.events.count)
        #expect(splitter.shared.events.isEmpty)
        #expect(outside.seen.events.isEmpty)
    }

    @Test("A long chain runs")
    func longChain() async throws {
        let h = FlowHarness(registry: registry())
        var lines = ["flow:", "  tasks:"]
        for i in 0..<100 { lines.append("    - pass: {name: t\(i)}") }
        let (summary, reports) = try await h.run(lines.joined(separator: "\n"), input: ["x": 1])
        #expect(summary.runsCompleted == 1)
        #expect(reports.first?.resultValue == ["x": 1])
        // Without any event sink, too (the engine skips building events then).
        let quiet = Engine(registry: registry(), sinks: [])
        let (again, _) = await quiet.runOnce(try quiet.prepare(h.loader.load(text: lines.joined(separator: "\n"), file: "t.yaml")), input: ["x": 1])
        #expect(again.runsCompleted == 1)
    }

    @Test("A prepared plan runs many times, one after another and at once")
    func planReuse() async throws {
        let h = FlowHarness(registry: registry(EngineOperators.all))
        let plan = try h.plan("""
            flow:
              tasks:
                - split: {name: each}
                - tag: {name: mark, value: 1}
                - gather: {name: all}
            """)
        for i in 0..<3 {
            let (summary, reports) = await h.engine.runOnce(plan, input: [["i": .int(Int64(i))]])
            #expect(summary.runsCompleted == 1)
            #expect(reports.first?.resultValue == [["i": .int(Int64(i)), "mark": 1]])
        }
        let results = await withTaskGroup(of: Int.self) { group in
            for i in 0..<8 {
                group.addTask {
                    let (_, reports) = await h.engine.runOnce(plan, input: .array(Array(repeating: .emptyObject, count: i + 1)))
                    return reports.first?.resultValue.arrayValue?.count ?? -1
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.sorted() == Array(1...8))
    }

    @Test("A task with several parents waits for all of them and gets their data by parent name")
    func joinByName() async throws {
        let h = FlowHarness(registry: registry())
        let (_, reports) = try await h.run("""
            flow:
              tasks:
                - pass: {name: start}
                - tag: {name: left, value: L, depends_on: [start]}
                - tag: {name: right, value: R, depends_on: [start]}
                - pass: {name: both, depends_on: [left, right]}
            """, input: ["n": 1])
        #expect(reports.count == 1)
        #expect(reports[0].resultValue == ["left": ["n": 1, "left": "L"], "right": ["n": 1, "right": "R"]])
    }

    @Test("join: any passes each parent's event on as it arrives")
    func joinAny() async throws {
        let h = FlowHarness(registry: registry())
        let (_, reports) = try await h.run("""
            flow:
              tasks:
                - pass: {name: start}
                - tag: {name: left, depends_on: [start]}
                - tag: {name: right, depends_on: [start]}
                - pass: {name: each, depends_on: [left, right], join: any}
            """)
        let results = try #require(reports.first?.resultValue.arrayValue)
        #expect(results.count == 2)
    }

    @Test("An array output fans out; each element flows on and reaches the leaf")
    func fanOut() async throws {
        let h = FlowHarness(registry: registry())
        let (_, reports) = try await h.run("""
            flow:
              tasks:
                - split: {name: split}
                - tag: {name: mark}
            """, input: [["i": 1], ["i": 2], ["i": 3]])
        #expect(reports[0].resultValue == [["i": 1, "mark": true], ["i": 2, "mark": true], ["i": 3, "mark": true]])
    }

    @Test("Branches after a scatter are joined element by element")
    func joinAfterScatter() async throws {
        let h = FlowHarness(registry: registry())
        let (_, reports) = try await h.run("""
            flow:
              tasks:
                - split: {name: split}
                - tag: {name: a, depends_on: [split]}
                - tag: {name: b, depends_on: [split]}
                - pass: {name: j, depends_on: [a, b]}
            """, input: [1, 2])
        let results = try #require(reports[0].resultValue.arrayValue)
        #expect(results.count == 2)
    }

    @Test("A false `when` ends the path; a join downstream fires with the parents that delivered")
    func whenFiltersAndJoinFlushes() async throws {
        let h = FlowHarness(registry: registry())
        let (summary, reports) = try await h.run("""
            flow:
              tasks:
                - pass: {name: start}
                - tag: {name: yes, depends_on: [start], when: "event.data.n > 0"}
                - tag: {name: no, depends_on: [start], when: "event.data.n < 0"}
                - pass: {name: both, depends_on: [yes, no]}
            """, input: ["n": 5])
        #expect(summary.runsCompleted == 1)
        #expect(reports[0].resultValue == ["yes": ["n": 5, "yes": true]])
        #expect(h.recorder.events(.taskSkipped, task: "no").count == 1)
    }

    @Test("Retries back off exponentially on the injected clock, then succeed")
    func retries() async throws {
        let clock = TestClock()
        let attempts = Counter()
        let flaky = ClosureTask.processor("flaky") { e, _ in
            if attempts.next() < 3 { throw TaskError("not yet") }
            return .event(e)
        }
        let h = FlowHarness(registry: registry([flaky]), clock: clock)
        let plan = try h.plan("""
            flow:
              tasks:
                - flaky:
                    name: f
                    retry: {max_attempts: 5, initial_backoff: 1s, multiplier: 3, max_backoff: 2s, jitter: none}
            """)
        let run = Task { await h.engine.runOnce(plan) }
        await clock.waitForSleepers(1)
        #expect(clock.advanceToNextDeadline() == .seconds(1))
        await clock.waitForSleepers(1)
        #expect(clock.advanceToNextDeadline() == .seconds(2))  // 3s capped at 2s
        let (summary, _) = await run.value
        #expect(summary.runsCompleted == 1)
        #expect(attempts.current == 3)
        #expect(h.recorder.events(.taskRetrying).map(\.attempt) == [1, 2])
        #expect(clock.sleepRequests == [.seconds(1), .seconds(2)])
    }

    @Test("Full jitter draws the delay between zero and the backoff")
    func fullJitter() {
        let policy = RetryPolicy(maxAttempts: 4, initialBackoff: .seconds(1), maxBackoff: .seconds(10), multiplier: 2, jitter: .full)
        #expect(policy.delay(beforeRetry: 3, random: 0.25) == .seconds(1))
        #expect(policy.delay(beforeRetry: 3, random: 0) == .zero)
        #expect(policy.baseDelay(beforeRetry: 10) == .seconds(10))
    }

    @Test("A permanent error is not retried")
    func permanentErrorsAreNotRetried() async throws {
        let h = FlowHarness(registry: registry())
        let (summary, reports) = try await h.run("""
            flow:
              tasks:
                - boom: {name: b, retry: {max_attempts: 5, initial_backoff: 1ms}}
            """)
        #expect(summary.runsFailed == 1)
        #expect(reports[0].error?.contains("boom") == true)
        #expect(h.recorder.events(.taskRetrying).isEmpty)
        #expect(h.recorder.events(.taskFailed).first?.attempt == 1)
    }

    @Test("An attempt that outlives its timeout fails with a timeout error")
    func timeout() async throws {
        let clock = TestClock()
        let slow = ClosureTask.processor("slow") { e, ctx in
            try await ctx.clock.sleep(for: .seconds(60))
            return .event(e)
        }
        let h = FlowHarness(registry: registry([slow]), clock: clock)
        let plan = try h.plan("""
            flow:
              tasks:
                - slow: {name: s, timeout: 5s}
            """)
        let run = Task { await h.engine.runOnce(plan) }
        await clock.waitForSleepers(2)
        clock.advance(by: .seconds(5))
        let (summary, reports) = await run.value
        #expect(summary.runsFailed == 1)
        #expect(reports[0].error?.contains("timed out after 5s") == true)
    }

    @Test("on_error: continue passes the event on with its error set")
    func onErrorContinue() async throws {
        let h = FlowHarness(registry: registry())
        let (summary, reports) = try await h.run("""
            flow:
              tasks:
                - boom: {name: b, on_error: continue}
                - tag: {name: after}
            """, input: ["k": 1])
        #expect(summary.runsCompleted == 1)
        let leaf = try #require(reports[0].results.first)
        #expect(leaf.event.error?.task == "b")
        #expect(leaf.event.data == ["k": 1, "after": true])
    }

    @Test("on_error: <task> routes the failed event to a dead-letter task")
    func onErrorRoute() async throws {
        let h = FlowHarness(registry: registry())
        let (summary, reports) = try await h.run("""
            flow:
              tasks:
                - boom: {name: b, on_error: dlq}
                - tag: {name: after}
                - tag: {name: dlq, value: dead}
            """, input: ["k": 1])
        #expect(summary.runsCompleted == 1)
        let results = reports[0].results
        #expect(results.map(\.task) == ["dlq"])
        #expect(results.first?.event.error?.message == "boom")
        #expect(results.first?.event.data == ["k": 1, "dlq": "dead"])
    }

    @Test("Cancelling stops the run and names the tasks that were interrupted")
    func cancellation() async throws {
        let started = Counter()
        let hang = ClosureTask.processor("hang") { e, _ in
            started.next()
            try await Task.sleep(for: .seconds(3600))
            return .event(e)
        }
        let h = FlowHarness(registry: registry([hang]))
        let plan = try h.plan("""
            flow:
              tasks:
                - pass: {name: first}
                - hang: {name: stuck}
            """)
        let run = Task { await h.engine.runOnce(plan) }
        while started.current == 0 { await Task.yield() }
        run.cancel()
        let (summary, reports) = await run.value
        #expect(summary.interrupted)
        #expect(summary.interruptedTasks == ["stuck"])
        #expect(reports.first?.status == .cancelled)
    }

    @Test("A failed workflow task stops its siblings and fails the run")
    func stopWorkflow() async throws {
        let h = FlowHarness(registry: registry([ClosureTask.processor("hang") { e, _ in
            try await Task.sleep(for: .seconds(3600))
            return .event(e)
        }]))
        let (summary, reports) = try await h.run("""
            flow:
              tasks:
                - hang: {name: slow}
                - boom: {name: fails, depends_on: []}
            """)
        #expect(summary.runsFailed == 1)
        #expect(reports[0].failedTask == "fails")
    }

    @Test("A fast source cannot run ahead of a slow consumer by more than the channel bounds")
    func backPressure() async throws {
        let emitted = Counter()
        let consumed = Counter()
        let maxAhead = Counter()
        let source = ClosureTask.source("fast") { emitter, _ in
            for i in 0..<5_000 {
                emitted.next()
                try await emitter.emit(Event(id: String(i), data: .int(Int64(i))))
            }
        }
        let sink = ClosureTask.processor("slow") { e, _ in
            let ahead = emitted.current - consumed.next()
            while true {
                let seen = maxAhead.current
                if ahead <= seen || maxAhead.value.compareExchange(expected: seen, desired: ahead, ordering: .relaxed).exchanged { break }
            }
            if consumed.current % 100 == 0 { try await Task.sleep(for: .milliseconds(1)) }
            return .drop
        }
        let h = FlowHarness(registry: registry([source, sink]))
        let plan = try h.plan("""
            flow:
              buffer_size: 16
              max_runs_in_flight: 10000
              tasks:
                - fast: {name: src}
                - pass: {name: middle}
                - slow: {name: sink}
            """)
        let summary = await h.engine.run(plan)
        #expect(summary.runsCompleted == 5_000)
        #expect(consumed.current == 5_000)
        // Two channels of 16, a batch of up to 128 in each of two stages, one outbox, one in hand.
        let bound = 16 * 2 + 128 * 2 + 128 + 2
        #expect(maxAhead.current <= bound, "source ran \(maxAhead.current) events ahead")
        #expect(maxAhead.current > 0)
    }

    @Test("FlowEngine ports map outputs to inputs and ContinueOnError leaves failed ports out")
    func ports() async throws {
        let h = FlowHarness(registry: registry())
        let (summary, reports) = try await h.run("""
            {"id": "w", "name": "ports", "nodes": [
              {"id": "a", "node_type": "tag", "name": "A", "config": {"value": {"type": "String", "value": "x"}}},
              {"id": "b", "node_type": "boom", "name": "B", "config": {}},
              {"id": "c", "node_type": "pass", "name": "C", "config": {}}],
             "connections": [
              {"from_node": "a", "from_port": "A", "to_node": "c", "to_port": "first"},
              {"from_node": "b", "from_port": "out", "to_node": "c", "to_port": "second"}],
             "settings": {"max_parallel_nodes": 2, "on_error": "ContinueOnError"}}
            """, input: [:], file: "w.json")
        #expect(summary.runsCompleted == 1)
        #expect(reports[0].resultValue == ["first": "x"])
    }
}
