import Foundation
import SluiceCore
import SluiceEngine
import SluiceTesting
import Synchronization
import Testing

/// A list tests share with their task closures.
final class Collected: Sendable {
    private let items = Mutex<[Value]>([])
    func add(_ v: Value) { items.withLock { $0.append(v) } }
    var values: [Value] { items.withLock { $0 } }

    /// Waits (bounded) until at least `count` values arrived.
    func waitFor(_ count: Int) async {
        for _ in 0..<2_000 where values.count < count { try? await Task.sleep(for: .milliseconds(2)) }
    }
}

func operatorRegistry(_ extra: [TaskRegistration] = []) -> TaskRegistry {
    registry(EngineOperators.all + extra)
}

/// A source that emits the integers 1...n, one run each.
func counting(_ n: Int) -> TaskRegistration {
    ClosureTask.source("count") { emitter, _ in
        for i in 1...n { try await emitter.emit(Event(data: .int(Int64(i)))) }
    }
}

/// A leaf that records each batch it gets as [flush_reason, batch].
func batchSink(_ into: Collected) -> TaskRegistration {
    ClosureTask.processor("collect") { e, _ in
        into.add(.array([e.data["flush_reason"] ?? .null, e.data["batch"] ?? .null]))
        return .event(e)
    }
}

@Suite("Operators: buffer and gather")
struct OperatorTests {
    // MARK: buffer

    @Test("In one run, a buffer emits full batches and, when nothing else can arrive, the rest")
    func bufferBySizeInAWorkflow() async throws {
        let h = FlowHarness(registry: operatorRegistry())
        let (summary, reports) = try await h.run("""
            flow:
              tasks:
                - split: {name: each}
                - buffer: {name: batches, size: 2}
            """, input: [1, 2, 3, 4, 5])
        #expect(summary.runsCompleted == 1)
        let batches = try #require(reports.first?.resultValue.arrayValue)
        #expect(batches.map { $0["batch"] } == [[1, 2], [3, 4], [5]])
        #expect(batches.map { $0["flush_reason"] } == ["size", "size", "completion"])
        #expect(batches.map { $0["batch_size"] } == [2, 2, 1])
        #expect(batches.allSatisfy { $0["partition_key"] == .null })
    }

    @Test("Across runs, a batch goes on in a batch run; the runs it absorbed end when it ends")
    func bufferAcrossRuns() async throws {
        let seen = Collected()
        let h = FlowHarness(registry: operatorRegistry([counting(7), batchSink(seen)]))
        let plan = try h.plan("""
            flow:
              tasks:
                - count: {name: src}
                - buffer: {name: batches, size: 3}
                - collect: {name: out}
            """)
        let reports = Mutex<[RunReport]>([])
        let summary = await h.engine.run(plan) { r in reports.withLock { $0.append(r) } }
        #expect(seen.values == [["size", [1, 2, 3]], ["size", [4, 5, 6]], ["completion", [7]]])
        // 7 source runs and 2 batch runs (the last batch holds one run's events and stays in it).
        #expect(summary.runsCompleted == 9)
        #expect(summary.runsFailed == 0)
        let absorbed = reports.withLock { $0.map(\.absorbedRuns).filter { $0 > 0 } }
        #expect(absorbed == [3, 3])
    }

    @Test("A batch that is not full is emitted when its timeout passes")
    func bufferTimeout() async throws {
        let clock = TestClock()
        let seen = Collected()
        let source = ClosureTask.source("bursts") { emitter, ctx in
            try await emitter.emit(Event(data: 1))
            try await emitter.emit(Event(data: 2))
            try await ctx.clock.sleep(for: .seconds(60))
            try await emitter.emit(Event(data: 3))
        }
        let h = FlowHarness(registry: operatorRegistry([source, batchSink(seen)]), clock: clock)
        let plan = try h.plan("""
            flow:
              tasks:
                - bursts: {name: src}
                - buffer: {name: batches, size: 10, timeout: 5s}
                - collect: {name: out}
            """)
        let running = Task { await h.engine.run(plan) }
        await clock.waitForSleepers(2)  // the source's pause and the batch's timer
        clock.advance(by: .seconds(5))
        await seen.waitFor(1)
        #expect(seen.values == [["timeout", [1, 2]]])
        clock.advance(by: .seconds(55))
        let summary = await running.value
        #expect(seen.values == [["timeout", [1, 2]], ["completion", [3]]])
        #expect(summary.runsFailed == 0)
        #expect(clock.sleepRequests.contains(.seconds(5)))
    }

    @Test("partition_key gives every key its own batch")
    func bufferPartitions() async throws {
        let h = FlowHarness(registry: operatorRegistry())
        let (_, reports) = try await h.run("""
            flow:
              tasks:
                - split: {name: each}
                - buffer: {name: by_kind, size: 2, partition_key: "{{event.data.kind}}"}
            """, input: [["kind": "a", "n": 1], ["kind": "b", "n": 2], ["kind": "a", "n": 3], ["kind": "b", "n": 4], ["kind": "c", "n": 5]])
        let batches = try #require(reports.first?.resultValue.arrayValue)
        let byKey = Dictionary(uniqueKeysWithValues: batches.map { ($0["partition_key"]!.textValue, $0["batch"]!.arrayValue!.map { $0["n"]! }) })
        #expect(byKey == ["a": [1, 3], "b": [2, 4], "c": [5]])
        #expect(batches.first { $0["partition_key"] == "c" }?["flush_reason"] == "completion")
    }

    @Test("When max_runs_in_flight runs all wait on a buffer, it emits what it has (capacity)")
    func bufferCapacity() async throws {
        let seen = Collected()
        let h = FlowHarness(registry: operatorRegistry([counting(10), batchSink(seen)]))
        let plan = try h.plan("""
            flow:
              max_runs_in_flight: 4
              tasks:
                - count: {name: src}
                - buffer: {name: batches, size: 100}
                - collect: {name: out}
            """)
        let summary = await h.engine.run(plan)
        #expect(seen.values.map { $0[0] } == ["capacity", "capacity", "completion"])
        #expect(seen.values.map { $0[1]!.arrayValue!.count } == [4, 4, 2])
        #expect(summary.runsFailed == 0)
        #expect(summary.runsCompleted == 10 + 3)
    }

    @Test("Two buffers in a row drain in order, the upstream one first")
    func chainedBuffers() async throws {
        let h = FlowHarness(registry: operatorRegistry())
        let (_, reports) = try await h.run("""
            flow:
              tasks:
                - split: {name: each}
                - buffer: {name: first, size: 2}
                - buffer: {name: second, size: 2}
            """, input: [1, 2, 3, 4, 5])
        let outer = try #require(reports.first?.resultValue.arrayValue)
        #expect(outer.count == 2)
        #expect(outer[0]["flush_reason"] == "size")
        #expect(outer[0]["batch"]?.arrayValue?.map { $0["batch"] } == [[1, 2], [3, 4]])
        #expect(outer[1]["flush_reason"] == "completion")
        #expect(outer[1]["batch"]?.arrayValue?.map { $0["batch"] } == [[5]])
    }

    @Test("A failed batch run fails the runs it absorbed")
    func failedBatchFailsAbsorbed() async throws {
        let h = FlowHarness(registry: operatorRegistry([counting(4)]))
        let plan = try h.plan("""
            flow:
              tasks:
                - count: {name: src}
                - buffer: {name: batches, size: 2}
                - boom: {name: sink}
            """)
        let summary = await h.engine.run(plan)
        #expect(summary.runsCompleted == 0)
        #expect(summary.runsFailed == 6)
        #expect(!summary.interrupted)
    }

    @Test("buffer settings are checked when the flow is prepared")
    func bufferValidation() {
        let h = FlowHarness(registry: operatorRegistry())
        #expect(throws: FlowErrors.self) { try h.plan("flow:\n  tasks:\n    - buffer: {size: 0}\n") }
        #expect(throws: FlowErrors.self) { try h.plan("flow:\n  tasks:\n    - buffer: {timeout: soon}\n") }
        #expect(throws: FlowErrors.self) { try h.plan("flow:\n  tasks:\n    - gather: {failure_threshold: 2}\n") }
    }

    // MARK: gather

    @Test("gather puts a scatter's results back together in the original order")
    func gatherInOrder() async throws {
        let slowFirst = ClosureTask.processor("slow_first") { e, _ in
            let n = e.data.intValue ?? 0
            try await Task.sleep(for: .milliseconds(Int(10 - n) * 3))
            return .event(e.with(data: .int(n * 10)))
        }
        let h = FlowHarness(registry: operatorRegistry([slowFirst]))
        let (summary, reports) = try await h.run("""
            flow:
              tasks:
                - split: {name: each}
                - slow_first: {name: work, concurrency: 4}
                - gather: {name: all}
                - pass: {name: after}
            """, input: [1, 2, 3, 4, 5, 6])
        #expect(summary.runsCompleted == 1)
        #expect(reports.first?.resultValue == [10, 20, 30, 40, 50, 60])
    }

    @Test("Filtered elements are left out; gather fires when the run has nothing else going")
    func gatherWithFiltered() async throws {
        let odd = ClosureTask.processor("odd") { e, _ in (e.data.intValue ?? 0) % 2 == 1 ? .event(e) : .drop }
        let h = FlowHarness(registry: operatorRegistry([odd]))
        let (_, reports) = try await h.run("""
            flow:
              tasks:
                - split: {name: each}
                - odd: {name: keep_odd}
                - gather: {name: all}
            """, input: [1, 2, 3, 4, 5])
        #expect(reports.first?.resultValue == [1, 3, 5])
        let completed = h.recorder.events(.taskCompleted, task: "all")
        #expect(completed.first?.message == "gathered 3 of 5, 2 filtered out")
    }

    @Test("Failed elements beyond failure_threshold fail the run; within it they are left out")
    func gatherThreshold() async throws {
        let picky = ClosureTask.processor("picky") { e, _ in
            if e.data == 2 { throw TaskError.permanent("two is bad") }
            return .event(e)
        }
        let flow = { (threshold: Double) in """
            flow:
              tasks:
                - split: {name: each}
                - picky: {name: check, on_error: continue}
                - gather: {name: all, failure_threshold: \(threshold)}
            """ }
        let strict = FlowHarness(registry: operatorRegistry([picky]))
        let (failed, failedReports) = try await strict.run(flow(0), input: [1, 2, 3, 4])
        #expect(failed.runsFailed == 1)
        let error = try #require(failedReports.first?.error)
        #expect(error.contains("1 of 4 elements failed"))
        #expect(error.contains("two is bad"))

        let lenient = FlowHarness(registry: operatorRegistry([picky]))
        let (ok, okReports) = try await lenient.run(flow(0.25), input: [1, 2, 3, 4])
        #expect(ok.runsCompleted == 1)
        #expect(okReports.first?.resultValue == [1, 3, 4])
    }

    /// A task for 20 scattered items: items below `failing` fail at once; the others wait up
    /// to 5 s (long enough to still be running when the gather gives up), then finish.
    static func stoppableWork(failing: Int, started: Collected, finished: Collected) -> TaskRegistration {
        ClosureTask.processor("work") { e, _ in
            let n = e.data.intValue ?? 0
            started.add(.int(n))
            if n < failing { throw TaskError.permanent("item \(n) is bad") }
            try await Task.sleep(for: .seconds(5))
            finished.add(.int(n))
            return .event(e)
        }
    }

    @Test("Once failures make failure_threshold unreachable, gather fails at once and the scatter's other items are cancelled",
          arguments: ["fail", "continue"])
    func gatherStopsEarly(gatherOnError: String) async throws {
        let started = Collected(), finished = Collected()
        let h = FlowHarness(registry: operatorRegistry([Self.stoppableWork(failing: 3, started: started, finished: finished)]))
        let (summary, reports) = try await h.run("""
            flow:
              tasks:
                - split: {name: each}
                - work: {name: work, max_concurrent: 2, on_error: continue}
                - gather: {name: all, failure_threshold: 0.1, on_error: \(gatherOnError)}
                - pass: {name: after}
            """, input: .array((0..<20).map { .int(Int64($0)) }))
        // 3 of 20 is more than 0.1 allows: the gather fails with the third failure.
        let failure = try #require(h.recorder.events(.taskFailed, task: "all").first?.message)
        #expect(failure.contains("3 of 20 elements failed"), "\(failure)")
        #expect(failure.contains("not gathered yet were cancelled"), "\(failure)")
        if gatherOnError == "fail" {
            #expect(summary.runsFailed == 1)
        } else {
            // The run goes on past the failed gather, with nothing gathered from the stopped items.
            #expect(summary.runsCompleted == 1)
            #expect(reports.first?.resultValue == [])
        }
        // Items that were running were stopped, not left to finish; the later ones never ran.
        #expect(finished.values.isEmpty, "\(finished.values)")
        let ran = Set(started.values.compactMap(\.intValue))
        #expect(ran.count < 20 && ran.isSuperset(of: [0, 1, 2]), "\(ran)")
        #expect(!ran.contains(19), "\(ran)")
        // Every item that did not fail is accounted for as cancelled, once.
        let cancelled = h.recorder.events(.taskCancelled, task: "work").compactMap(\.message)
        #expect(cancelled.count == 17, "\(cancelled)")
        let stopped = cancelled.filter { $0.contains(" stopped: gather 'all' gave up: 3 of 20 elements failed") }
        let neverStarted = cancelled.filter { $0.contains(" not started: gather 'all' gave up: 3 of 20 elements failed") }
        #expect(stopped.count == ran.count - 3, "\(cancelled)")
        #expect(neverStarted.count == 20 - ran.count, "\(cancelled)")
        #expect(neverStarted.contains { $0.hasPrefix("work@19 ") }, "\(cancelled)")
    }

    @Test("At or under failure_threshold, every item runs and the failed ones are left out")
    func gatherWithinThreshold() async throws {
        let started = Collected(), finished = Collected()
        let fast = ClosureTask.processor("fast") { e, _ in
            let n = e.data.intValue ?? 0
            started.add(.int(n))
            if n < 2 { throw TaskError.permanent("item \(n) is bad") }
            finished.add(.int(n))
            return .event(e)
        }
        let h = FlowHarness(registry: operatorRegistry([fast]))
        let (summary, reports) = try await h.run("""
            flow:
              tasks:
                - split: {name: each}
                - fast: {name: work, max_concurrent: 2, on_error: continue}
                - gather: {name: all, failure_threshold: 0.1}
            """, input: .array((0..<20).map { .int(Int64($0)) }))
        #expect(summary.runsCompleted == 1)
        #expect(reports.first?.resultValue == .array((2..<20).map { .int(Int64($0)) }))
        #expect(started.values.count == 20)
        #expect(h.recorder.events(.taskCancelled).isEmpty)
        #expect(h.recorder.events(.taskCompleted, task: "all").first?.message == "gathered 18 of 20, 2 failed")
    }

    @Test("Nested scatters gather level by level")
    func nestedGather() async throws {
        let h = FlowHarness(registry: operatorRegistry())
        let (_, reports) = try await h.run("""
            flow:
              tasks:
                - split: {name: rows}
                - split: {name: cells}
                - gather: {name: row}
                - gather: {name: table}
            """, input: [[1, 2], [3], [4, 5, 6]])
        #expect(reports.first?.resultValue == [[1, 2], [3], [4, 5, 6]])
    }

    @Test("Gathers after a fan-out run per event of a stream, one result per run")
    func gatherPerRun() async throws {
        let explode = ClosureTask.processor("explode") { e, _ in
            let n = e.data.intValue ?? 0
            return .events((1...n).map { e.with(data: .int($0)) })
        }
        let h = FlowHarness(registry: operatorRegistry([counting(5), explode]))
        let plan = try h.plan("""
            flow:
              tasks:
                - count: {name: src}
                - explode: {name: fan}
                - gather: {name: back}
            """)
        let reports = Mutex<[Value]>([])
        _ = await h.engine.run(plan) { r in reports.withLock { $0.append(r.resultValue) } }
        let results = Set(reports.withLock { $0 })
        #expect(results == [[1], [1, 2], [1, 2, 3], [1, 2, 3, 4], [1, 2, 3, 4, 5]])
    }
}
