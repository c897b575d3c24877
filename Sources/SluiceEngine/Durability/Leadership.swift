import Foundation
import SluiceCore

/// Runs work on exactly one of the processes sharing a store: the holder of a named lease.
/// The others wait and take over within the lease time when the holder dies. A holder that
/// cannot renew stops its work a third of the lease time before the lease can pass on.
public struct Leadership: Sendable {
    public let store: any Store
    public let name: String
    public let holder: String
    /// Seconds the lease lasts without renewal.
    public let ttl: Double
    public let clock: any EngineClock

    public init(store: any Store, name: String, holder: String, ttl: Double, clock: any EngineClock = SystemClock()) {
        self.store = store
        self.name = name
        self.holder = holder
        self.ttl = ttl
        self.clock = clock
    }

    /// Waits until this process leads, then runs `body`. If leadership is lost, `body` is
    /// cancelled and the wait starts again (a fresh `body`). Returns `body`'s result once it
    /// ends on its own while leading (the lease is released then), or nil when cancelled.
    /// `onChange` hears each gain (true) and loss (false) of leadership.
    public func run<T: Sendable>(onChange: @escaping @Sendable (Bool, Lease?) -> Void = { _, _ in },
                                 _ body: @escaping @Sendable () async -> T) async -> T? {
        let interval = Duration.seconds(ttl / 3)
        while !Task.isCancelled {
            let lease: Lease?
            do {
                lease = try await store.acquireLease(name, holder: holder, ttl: ttl, now: clock.now())
            } catch {
                lease = nil
            }
            guard let lease else {
                guard (try? await clock.sleep(for: interval)) != nil else { return nil }
                continue
            }
            onChange(true, lease)
            let work = Task { await body() }
            let lost = await withTaskCancellationHandler {
                await withTaskGroup(of: Bool.self) { group in
                    group.addTask {
                        _ = await work.value
                        return false
                    }
                    group.addTask { await keep(lease, every: interval) }
                    let first = await group.next() ?? true
                    group.cancelAll()
                    return first
                }
            } onCancel: {
                work.cancel()
            }
            if Task.isCancelled {
                _ = await work.value
                // From a task of its own: a store may refuse work in a cancelled task (SQLite's
                // does), and the lease would then stay taken until it expires.
                await Task { try? await store.releaseLease(lease) }.value
                return nil
            }
            if lost {
                work.cancel()
                _ = await work.value
                onChange(false, nil)
                continue
            }
            try? await store.releaseLease(lease)
            return await work.value
        }
        return nil
    }

    /// Renews the lease until cancelled; answers true when it was lost (or could not be renewed in time).
    private func keep(_ lease: Lease, every interval: Duration) async -> Bool {
        var lease = lease
        while true {
            guard (try? await clock.sleep(for: interval)) != nil else { return false }
            do {
                guard let renewed = try await store.renewLease(lease, ttl: ttl, now: clock.now()) else { return true }
                lease = renewed
            } catch {
                // Stop well before the lease could be taken by another process.
                if clock.now() >= lease.expires.addingTimeInterval(-ttl / 3) { return true }
            }
        }
    }
}
