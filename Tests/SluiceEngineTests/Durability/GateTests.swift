import Foundation
import SluiceConfig
import SluiceCore
import SluiceEngine
import SluiceTesting
import Testing

/// A durable runner on a memory store whose engine and gates read `clock`, with a `submit`
/// task that counts its executions.
struct GateRig {
    let clock = TestClock()
    let store = MemoryStore()
    let submits = Counter()
    let runner: DurableRunner
    let loader: FlowLoader
    let plan: FlowPlan
    let source: String

    init(_ yaml: String) throws {
        let submits = self.submits
        let reg = registry(EngineOperators.all + [ClosureTask.processor("submit") { e, _ in
            .event(e.with(data: ["job": .int(Int64(submits.next()))]))
        }])
        let loader = FlowLoader(catalog: reg.catalog)
        self.loader = loader
        runner = DurableRunner(engine: Engine(registry: reg, clock: clock), store: store) { flow in
            try loader.load(text: flow.source, file: flow.name)
        }
        plan = try runner.prepare(try loader.load(text: yaml, file: "gates.yaml"))
        source = yaml
    }

    var gates: Gates {
        let clock = self.clock
        return Gates(store: store, now: { clock.now() })
    }

    func gate(_ run: String) async throws -> Value {
        try #require(try await gates.gates(run: run).first)
    }
}

let retryingSignalYAML = """
    flow:
      name: export
      tasks:
        - submit: {name: submit}
        - signal: {name: done, timeout: 1h, on_timeout: retry, max_wait_attempts: 3}
        - pass: {name: report}
    """

@Suite("Gates")
struct GateTests {
    @Test("Signal on_timeout: retry runs the upstream task again and waits for a new token, until max_wait_attempts")
    func signalRetryGivesUp() async throws {
        let rig = try GateRig(retryingSignalYAML)
        let first = try await rig.runner.start(rig.plan, source: rig.source)
        #expect(first.record.status == .waitingSignal)
        let id = first.record.id
        var tokens = [try await rig.gate(id)["token"]?.stringValue]
        #expect(rig.submits.current == 1)

        for wait in 2...3 {
            rig.clock.advance(by: .seconds(3601))
            let resumed = try await rig.runner.resume(runID: id)
            #expect(resumed.record.status == .waitingSignal, "wait \(wait): \(resumed.record)")
            #expect(rig.submits.current == wait, "the upstream task ran again")
            let gate = try await rig.gate(id)
            #expect(gate["wait"] == .int(Int64(wait)))
            #expect(gate["status"] == "pending")
            tokens.append(gate["token"]?.stringValue)
        }
        #expect(Set(tokens.compactMap { $0 }).count == 3, "a new token for every wait: \(tokens)")
        // An earlier wait's token is refused: its gate now waits for another.
        await #expect(throws: GateError.self) { try await rig.gates.signal(token: tokens[0]!, payload: 1, actor: "test") }

        rig.clock.advance(by: .seconds(3601))
        let last = try await rig.runner.resume(runID: id)
        #expect(last.record.status == .failed)
        let error = try #require(last.record.error)
        #expect(error.contains("no signal came before the gate timed out, 3 times"), "\(error)")
        #expect(error.contains("max_wait_attempts: 3"), "\(error)")
        #expect(rig.submits.current == 3, "no fourth run of the upstream task")
    }

    @Test("After a retry, a signal carrying the new token completes the run with its payload")
    func signalAfterRetry() async throws {
        let rig = try GateRig(retryingSignalYAML)
        let id = try await rig.runner.start(rig.plan, source: rig.source).record.id
        let old = try #require(try await rig.gate(id)["token"]?.stringValue)
        rig.clock.advance(by: .seconds(3601))
        #expect(try await rig.runner.resume(runID: id).record.status == .waitingSignal)
        let new = try #require(try await rig.gate(id)["token"]?.stringValue)
        #expect(new != old)
        do {
            _ = try await rig.gates.signal(token: old, payload: 1, actor: "test")
            Issue.record("the old token was accepted")
        } catch let error as GateError {
            #expect(error.description.contains("waits for a new token"), "\(error)")
        }
        try await rig.gates.signal(token: new, payload: ["rows": 7], actor: "test")
        let done = try await rig.runner.resume(runID: id)
        #expect(done.record.status == .completed)
        #expect(done.result == ["rows": 7])
        #expect(rig.submits.current == 2)
    }

    @Test("on_timeout and max_wait_attempts are checked")
    func retryValidation() async throws {
        let rig = try GateRig(retryingSignalYAML)
        for bad in ["on_timeout: again", "on_timeout: retry, max_wait_attempts: 0"] {
            let yaml = retryingSignalYAML.replacingOccurrences(of: "on_timeout: retry, max_wait_attempts: 3", with: bad)
            let plan = try rig.runner.prepare(try rig.loader.load(text: yaml, file: "bad.yaml"))
            let outcome = try await rig.runner.start(plan, source: yaml)
            #expect(outcome.record.status == .failed, "\(bad)")
            #expect(outcome.record.error?.contains(bad.hasPrefix("on_timeout: again") ? "'on_timeout' must be one of fail, continue, retry" : "'max_wait_attempts'") == true,
                    "\(outcome.record.error ?? "")")
        }
    }

    // MARK: pruning

    @Test("A finished run's gates and token links expire after the retention time and are purged")
    func finishedRunGatesExpire() async throws {
        let rig = try GateRig("""
            flow:
              name: trade
              tasks:
                - approval: {name: sign_off}
                - signal: {name: settled}
            """)
        let id = try await rig.runner.start(rig.plan, source: rig.source).record.id
        try await rig.gates.decide(run: id, approve: true, actor: "test", comment: nil)
        #expect(try await rig.runner.resume(runID: id).record.status == .waitingSignal)
        let token = try #require(try await rig.gates.gates(run: id).first { $0["kind"] == "signal" }?["token"]?.stringValue)
        let pending = try await rig.store.list(.system, prefix: "gate/\(id)/", now: rig.clock.now())
        #expect(pending.count == 2 && pending.allSatisfy { $0.expires == nil }, "gates of a waiting run do not expire: \(pending)")
        try await rig.gates.signal(token: token, payload: 1, actor: "test")
        #expect(try await rig.runner.resume(runID: id).record.status == .completed)

        // Kept for the retention time: a late signal still gets the reason.
        let ended = rig.clock.now()
        let kept = try await rig.store.list(.system, prefix: "gate/\(id)/", now: ended)
        #expect(kept.count == 2)
        #expect(kept.allSatisfy { $0.expires == ended.addingTimeInterval(Gates.retention) }, "\(kept)")
        #expect(try await rig.store.get(.system, "signal/\(token)", now: ended)?.expires == ended.addingTimeInterval(Gates.retention))
        await #expect(throws: GateError.self) { try await rig.gates.signal(token: token, payload: 2, actor: "test") }

        rig.clock.advance(by: .seconds(Gates.retention + 1))
        #expect(try await rig.gates.gates(run: id).isEmpty)
        #expect(try await rig.store.purgeExpiredEntries(now: rig.clock.now()) == 3, "two gates and one token link")
        #expect(try await rig.store.list(.system, prefix: "gate/\(id)/", now: ended).isEmpty, "deleted, not only expired")
        #expect(try await rig.store.get(.system, "signal/\(token)", now: ended) == nil)
    }

    @Test("Cancelling a waiting run closes its gate: the token is refused with the reason, and expires like any finished run's")
    func cancelledRunClosesGate() async throws {
        let rig = try GateRig(retryingSignalYAML)
        let id = try await rig.runner.start(rig.plan, source: rig.source).record.id
        let token = try #require(try await rig.gate(id)["token"]?.stringValue)
        _ = try await rig.runner.cancel(runID: id)
        let gate = try await rig.gate(id)
        #expect(gate["status"] == "closed")
        do {
            try await rig.gates.signal(token: token, payload: 1, actor: "test")
            Issue.record("a closed gate took a signal")
        } catch let error as GateError {
            #expect(error.description.contains("can no longer be used: the run ended (cancelled)"), "\(error)")
        }
        rig.clock.advance(by: .seconds(Gates.retention + 1))
        #expect(try await rig.store.get(.system, "signal/\(token)", now: rig.clock.now()) == nil)
        #expect(try await rig.gates.gates(run: id).isEmpty)
    }
}
