import Foundation
import SluiceCore
import Synchronization

/// Writes durable runs' records with group commit: whatever the runs of this process queue
/// while one transaction is in flight goes out together in the next, so the store sees one
/// transaction per round, not one per row (writes under different queue claims go in
/// separate transactions, each fenced by its claim).
///
/// `post` queues a write and returns at once (task starts, events); `commit` queues one and
/// returns when it is in the store (a task's checkpoint, before its children may start).
final class StoreWriter: Sendable {
    /// The claim a write is made under; writes of one claim share a transaction.
    private struct Fence: Hashable {
        let run: String
        let generation: Int64
        init?(_ lease: Lease?) {
            guard let lease else { return nil }
            run = lease.name
            generation = lease.generation
        }
    }

    private struct Group {
        var batch = StoreBatch()
        var waiters: [CheckedContinuation<Void, any Error>] = []
    }

    private struct State {
        var pending: [Fence?: Group] = [:]
        var writing = false
        /// The failure of a posted write nobody waited for, reported to the claim's next `commit`.
        var failures: [Fence?: any Error] = [:]

        /// True when the caller must start the drain loop.
        mutating func startWriting() -> Bool {
            if writing { return false }
            writing = true
            return true
        }
    }

    let store: any Store
    private let state = Mutex(State())

    init(store: any Store) {
        self.store = store
    }

    func post(_ batch: StoreBatch) {
        let start = state.withLock { s -> Bool in
            s.pending[Fence(batch.fence), default: Group()].batch.append(batch)
            return s.startWriting()
        }
        if start { Task { await drain() } }
    }

    func commit(_ batch: StoreBatch) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let fence = Fence(batch.fence)
            let (start, earlier) = state.withLock { s -> (Bool, (any Error)?) in
                if let failure = s.failures.removeValue(forKey: fence) { return (false, failure) }
                s.pending[fence, default: Group()].batch.append(batch)
                s.pending[fence]!.waiters.append(continuation)
                return (s.startWriting(), nil)
            }
            if let earlier { continuation.resume(throwing: earlier) }
            if start { Task { await drain() } }
        }
    }

    /// Waits until everything queued so far is written.
    func flush() async throws {
        try await commit(StoreBatch())
    }

    private func drain() async {
        while true {
            let groups = state.withLock { s -> [(Fence?, Group)] in
                defer { s.pending.removeAll(keepingCapacity: true) }
                if s.pending.isEmpty { s.writing = false }
                return Array(s.pending)
            }
            if groups.isEmpty { return }
            for (fence, group) in groups {
                do {
                    try await store.commit(group.batch)
                    for w in group.waiters { w.resume() }
                } catch {
                    if group.waiters.isEmpty {
                        state.withLock { $0.failures[fence] = error }
                    }
                    for w in group.waiters { w.resume(throwing: error) }
                }
            }
        }
    }
}

extension StoreBatch {
    mutating func append(_ other: StoreBatch) {
        runs += other.runs
        attempts += other.attempts
        checkpoints += other.checkpoints
        events += other.events
        if let fence = other.fence { self.fence = fence }
        finishesClaim = finishesClaim || other.finishesClaim
    }
}
