import Foundation
import SluiceCore
import SluiceEngine
import Synchronization
import Testing

/// A clock tests move by hand.
private final class HandClock: Sendable {
    let seconds = Mutex<Double>(1_000_000)
    func advance(_ s: Double) { seconds.withLock { $0 += s } }
    var now: @Sendable () -> Date { { [self] in Date(timeIntervalSince1970: seconds.withLock { $0 }) } }
}

@Suite("Accepted webhook requests kept in the store")
struct AcceptedInboxTests {
    @Test("An entry is another process's only once its owner stopped renewing it; it is given up after maxRuns runs begun")
    func takeOverAndGiveUp() async throws {
        let store = MemoryStore(), clock = HandClock()
        let a = AcceptedInbox(store: store, ttl: 10, owner: "a", now: clock.now)
        let event = Event(id: "e1", data: ["n": 1], meta: ["path": "/x"])
        try await a.accept(flow: "f", task: "hook", id: "1", event: event)
        try await a.accept(flow: "f", task: "hook", id: "2", event: event)
        await a.done(flow: "f", task: "hook", id: "2")

        // Renewed in time: nobody else takes it.
        var others: [AcceptedInbox] = []
        for i in 0..<AcceptedInbox.maxRuns { others.append(AcceptedInbox(store: store, ttl: 10, owner: "p\(i)", now: clock.now)) }
        clock.advance(6)
        await a.renewAll()
        clock.advance(6)
        #expect(await others[0].adoptOrphans(flow: "f", task: "hook").adopted.isEmpty)
        // Not under another flow or task that shares the prefix.
        #expect(await others[0].adoptOrphans(flow: "f", task: "hoo").adopted.isEmpty)

        // Its owner died: the next process takes it, with the same event; one process only.
        clock.advance(10)
        let taken = await others[0].adoptOrphans(flow: "f", task: "hook")
        #expect(taken.adopted.map(\.id) == ["1"])
        #expect(taken.adopted.first?.event == event)
        #expect(await others[1].adoptOrphans(flow: "f", task: "hook").adopted.isEmpty)
        // The old owner, back from a stall, lets it go instead of taking it back.
        await a.renewAll()
        #expect(a.heldCount == 0)

        // Every process that took it dies too: once maxRuns runs were begun (the first and
        // four take-overs) it is given up.
        for i in 1..<(AcceptedInbox.maxRuns - 1) {
            clock.advance(11)
            #expect(await others[i].adoptOrphans(flow: "f", task: "hook").adopted.count == 1, "run \(i + 2)")
        }
        clock.advance(11)
        let last = await AcceptedInbox(store: store, ttl: 10, owner: "z", now: clock.now).adoptOrphans(flow: "f", task: "hook")
        #expect(last.adopted.isEmpty)
        #expect(last.givenUp.map(\.id) == ["1"])
        let t = clock.now()
        #expect(try await store.list(.system, prefix: "inbox/", now: t).isEmpty)
        #expect(try await store.list(.system, prefix: "inbox-failed/", now: t).map(\.key) == ["inbox-failed/f/hook/1"])
    }

    @Test("waiting() counts the kept requests by flow and task, flows with slashes included")
    func waitingCounts() async throws {
        let store = MemoryStore()
        let inbox = AcceptedInbox(store: store, ttl: 10, owner: "a")
        for (flow, task, id) in [("f", "hook", "1"), ("f", "hook", "2"), ("jobs/nightly", "in", "3"), ("f", "other", "4")] {
            try await inbox.accept(flow: flow, task: task, id: id, event: Event(data: .null))
        }
        let counts = try await inbox.waiting().map { "\($0.flow) \($0.task) \($0.count)" }
        #expect(counts == ["f hook 2", "f other 1", "jobs/nightly in 1"])
    }
}
