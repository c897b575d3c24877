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
        /// A delayed write of posted batches is on its way.
        var flushScheduled = false
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
    /// How long a posted write may wait for a commit to ride along with.
    let postDelay: Duration
    private let state = Mutex(State())

    init(store: any Store, postDelay: Duration = .milliseconds(20)) {
        self.store = store
        self.postDelay = postDelay
    }

    /// Queues a write that nobody waits for. It goes out with the next `commit` (a task's
    /// checkpoint, usually moments later), or on its own after `postDelay` if none comes.
    func post(_ batch: StoreBatch) {
        let schedule = state.withLock { s -> Bool in
            s.pending[Fence(batch.fence), default: Group()].batch.append(batch)
            if s.writing || s.flushScheduled { return false }
            s.flushScheduled = true
            return true
        }
        if schedule { flushLater() }
    }

    func commit(_ batch: StoreBatch) async throws {
        let fence = Fence(batch.fence)
        var leads = false
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let now = state.withLock { s -> Result<Void, any Error>? in
                if let failure = s.failures.removeValue(forKey: fence) { return .failure(failure) }
                s.pending[fence, default: Group()].batch.append(batch)
                if s.startWriting() { return .success(()) }
                s.pending[fence]!.waiters.append(continuation)
                return nil
            }
            if let now {
                if case .success = now { leads = true }
                continuation.resume(with: now)
            }
        }
        // Nobody was writing: this caller writes its batch and whatever is pending, in its own
        // task (no hand-off to another and back), then passes the writing on if others wait.
        guard leads else { return }
        let (error, more) = await round(leader: .some(fence))
        if more { Task { await drain() } }
        if let error { throw error }
    }

    /// Waits until everything queued so far is written.
    func flush() async throws {
        try await commit(StoreBatch())
    }

    /// Writes rounds while someone waits for a commit.
    private func drain() async {
        while await round(leader: .none).more {}
    }

    /// Writes everything pending, one transaction per claim. `leader` is the claim of the
    /// committing caller doing the writing (none for the drain task): it has no waiter, so the
    /// failure of its group is answered here. Also answers whether commits wait for another
    /// round; if none do, the writing stops, and posted writes left over go out after
    /// `postDelay` or with the next commit.
    private func round(leader: Fence??) async -> (error: (any Error)?, more: Bool) {
        let groups = state.withLock { s -> [(Fence?, Group)] in
            defer { s.pending.removeAll(keepingCapacity: true) }
            return Array(s.pending)
        }
        var leaderError: (any Error)?
        for (fence, group) in groups {
            do {
                try await store.commit(group.batch)
                for w in group.waiters { w.resume() }
            } catch {
                if let leader, fence == leader {
                    leaderError = error
                } else if group.waiters.isEmpty {
                    state.withLock { $0.failures[fence] = error }
                }
                for w in group.waiters { w.resume(throwing: error) }
            }
        }
        let (more, scheduleFlush) = state.withLock { s -> (Bool, Bool) in
            if s.pending.values.contains(where: { !$0.waiters.isEmpty }) { return (true, false) }
            s.writing = false
            let schedule = !s.pending.isEmpty && !s.flushScheduled
            if schedule { s.flushScheduled = true }
            return (false, schedule)
        }
        if scheduleFlush { flushLater() }
        return (leaderError, more)
    }

    /// Writes posted batches after `postDelay` unless a commit took them first.
    private func flushLater() {
        Task {
            try? await Task.sleep(for: postDelay)
            let start = state.withLock { s -> Bool in
                s.flushScheduled = false
                return !s.pending.isEmpty && s.startWriting()
            }
            if start { await drain() }
        }
    }
}

extension StoreBatch {
    mutating func append(_ other: StoreBatch) {
        runs += other.runs
        // A newer state of the same attempt (running, then succeeded) replaces the pending one.
        for a in other.attempts {
            if let i = attempts.firstIndex(where: { $0.runID == a.runID && $0.task == a.task && $0.attempt == a.attempt }) {
                attempts[i] = a
            } else {
                attempts.append(a)
            }
        }
        checkpoints += other.checkpoints
        events += other.events
        // In order: a later state of the same materialization replaces the earlier when committed.
        materializations += other.materializations
        audit += other.audit
        if let fence = other.fence { self.fence = fence }
        finishesClaim = finishesClaim || other.finishesClaim
    }
}
