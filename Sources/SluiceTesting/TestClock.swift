import Foundation
import SluiceEngine

/// A clock that only moves when a test says so. Sleepers wake when `advance` passes their
/// deadline, so retries, timeouts and schedules run in tests without real waiting.
public final class TestClock: EngineClock, @unchecked Sendable {
    private struct Sleeper {
        let id: UInt64
        let deadline: Duration
        let continuation: CheckedContinuation<Void, Error>
    }

    // Everything below is guarded by `lock`.
    private let lock = NSLock()
    private var current: Duration = .zero
    private let wallOrigin: Date
    private var sleepers: [Sleeper] = []
    private var cancelled: Set<UInt64> = []
    private var nextID: UInt64 = 0
    private var requested: [Duration] = []
    private var watchers: [(Int, CheckedContinuation<Void, Never>)] = []

    /// `start` is the wall-clock time at the clock's origin.
    public init(start: Date = Date(timeIntervalSince1970: 1_767_225_600)) {  // 2026-01-01T00:00:00Z
        wallOrigin = start
    }

    public func now() -> Date {
        lock.lock()
        defer { lock.unlock() }
        return wallOrigin.addingTimeInterval(current.seconds)
    }

    public func uptime() -> Duration {
        lock.lock()
        defer { lock.unlock() }
        return current
    }

    /// Every duration passed to `sleep`, in call order.
    public var sleepRequests: [Duration] {
        lock.lock()
        defer { lock.unlock() }
        return requested
    }

    /// How many tasks are asleep on this clock now.
    public var sleeperCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return sleepers.count
    }

    public func sleep(for duration: Duration) async throws {
        try Task.checkCancellation()
        let (id, deadline) = lock.withLock { () -> (UInt64, Duration) in
            nextID += 1
            requested.append(duration)
            return (nextID, current + max(duration, .zero))
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
                lock.lock()
                if cancelled.remove(id) != nil {
                    lock.unlock()
                    continuation.resume(throwing: CancellationError())
                    return
                }
                if deadline <= current {
                    lock.unlock()
                    continuation.resume()
                    return
                }
                sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
                let ready = takeWatchers()
                lock.unlock()
                for w in ready { w.resume() }
            }
        } onCancel: {
            lock.lock()
            if let index = sleepers.firstIndex(where: { $0.id == id }) {
                let sleeper = sleepers.remove(at: index)
                lock.unlock()
                sleeper.continuation.resume(throwing: CancellationError())
            } else {
                cancelled.insert(id)
                lock.unlock()
            }
        }
    }

    /// Moves time forward, waking every sleeper whose deadline is reached, earliest first.
    public func advance(by duration: Duration) {
        lock.lock()
        current += duration
        let due = sleepers.filter { $0.deadline <= current }.sorted { $0.deadline < $1.deadline }
        sleepers.removeAll { $0.deadline <= current }
        lock.unlock()
        for s in due { s.continuation.resume() }
    }

    /// Advances exactly to the earliest sleeper's deadline and wakes it; returns how far time moved.
    @discardableResult
    public func advanceToNextDeadline() -> Duration? {
        lock.lock()
        guard let earliest = sleepers.map(\.deadline).min() else {
            lock.unlock()
            return nil
        }
        let step = earliest - current
        lock.unlock()
        advance(by: step)
        return step
    }

    /// Suspends until at least `count` tasks sleep on this clock.
    public func waitForSleepers(_ count: Int = 1) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            lock.lock()
            if sleepers.count >= count {
                lock.unlock()
                continuation.resume()
                return
            }
            watchers.append((count, continuation))
            lock.unlock()
        }
    }

    private func takeWatchers() -> [CheckedContinuation<Void, Never>] {
        let ready = watchers.filter { $0.0 <= sleepers.count }.map(\.1)
        watchers.removeAll { $0.0 <= sleepers.count }
        return ready
    }
}
