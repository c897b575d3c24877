import Foundation
import SluiceCore
import SluiceEngine
import SluiceTesting
import Testing

@Suite("TestClock")
struct TestClockTests {
    @Test("Time stands still until advanced; now() and uptime() move together")
    func advancesOnlyWhenTold() {
        let start = Date(timeIntervalSince1970: 1_000)
        let clock = TestClock(start: start)
        #expect(clock.uptime() == .zero)
        #expect(clock.now() == start)
        clock.advance(by: .seconds(90))
        #expect(clock.uptime() == .seconds(90))
        #expect(clock.now() == start.addingTimeInterval(90))
    }

    @Test("A sleeper wakes only once its deadline is passed, and its request is recorded")
    func sleeperWakesAtDeadline() async throws {
        let clock = TestClock()
        let woke = Task { try await clock.sleep(for: .seconds(5)); return clock.uptime() }
        await clock.waitForSleepers(1)
        clock.advance(by: .seconds(4))
        #expect(clock.sleeperCount == 1)
        clock.advance(by: .seconds(1))
        #expect(try await woke.value == .seconds(5))
        #expect(clock.sleepRequests == [.seconds(5)])
        #expect(clock.sleeperCount == 0)
    }

    @Test("advanceToNextDeadline steps to the earliest sleeper only")
    func stepsToEarliest() async throws {
        let clock = TestClock()
        let short = Task { try await clock.sleep(for: .seconds(2)) }
        let long = Task { try await clock.sleep(for: .seconds(7)) }
        await clock.waitForSleepers(2)
        #expect(clock.advanceToNextDeadline() == .seconds(2))
        try await short.value
        #expect(clock.sleeperCount == 1)
        #expect(clock.advanceToNextDeadline() == .seconds(5))
        try await long.value
        #expect(clock.advanceToNextDeadline() == nil)
    }

    @Test("Cancelling a sleeping task throws CancellationError and removes the sleeper")
    func cancellation() async {
        let clock = TestClock()
        let sleeper = Task { try await clock.sleep(for: .seconds(60)) }
        await clock.waitForSleepers(1)
        sleeper.cancel()
        let result = await sleeper.result
        #expect(throws: CancellationError.self) { try result.get() }
        #expect(clock.sleeperCount == 0)
    }

    @Test("A zero or negative sleep returns at once")
    func zeroSleep() async throws {
        let clock = TestClock()
        try await clock.sleep(for: .zero)
        try await clock.sleep(for: .seconds(-1))
        #expect(clock.sleeperCount == 0)
        #expect(clock.sleepRequests.count == 2)
    }
}

@Suite("FlowHarness and ClosureTask")
struct FlowHarnessTests {
    func registry() -> TaskRegistry {
        var r = TaskRegistry()
        r.register(ClosureTask.processor("double") { e, _ in
            .event(e.with(data: .int((e.data.intValue ?? 0) * 2)))
        })
        r.register(ClosureTask.source("three") { emitter, _ in
            for i: Int64 in 1...3 { try await emitter.emit(Event(data: .int(i))) }
        })
        return r
    }

    @Test("A processor built from a closure runs inside a loaded flow")
    func processorRuns() async throws {
        let h = FlowHarness(registry: registry())
        let (summary, reports) = try await h.run("""
            flow:
              tasks:
                - double: {name: a}
                - double: {name: b}
            """, input: .int(5))
        #expect(summary.runsCompleted == 1)
        #expect(reports.first?.resultValue == .int(20))
        #expect(h.recorder.events(.taskCompleted).map(\.task) == ["a", "b"])
    }

    @Test("A source built from a closure starts one run per emitted event")
    func sourceRuns() async throws {
        let h = FlowHarness(registry: registry())
        let (summary, reports) = try await h.run("""
            flow:
              tasks:
                - three: {name: src}
                - double: {name: d}
            """)
        #expect(summary.runsCompleted == 3)
        #expect(Set(reports.map(\.resultValue)) == [.int(2), .int(4), .int(6)])
    }

    @Test("plan() reports validation errors with the harness's file name")
    func planErrors() {
        let h = FlowHarness(registry: registry())
        #expect(throws: FlowErrors.self) {
            _ = try h.plan("flow:\n  tasks:\n    - tripple: {}\n", file: "bad.yaml")
        }
        do {
            _ = try h.plan("flow:\n  tasks:\n    - tripple: {}\n", file: "bad.yaml")
        } catch {
            let text = error.description
            #expect(text.contains("bad.yaml:3:"))
            #expect(text.contains("tripple"))
        }
    }
}
