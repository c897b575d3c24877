import DequeModule
import Synchronization

/// A bounded multi-producer, multi-consumer queue between stages that moves items in batches.
///
/// Senders suspend while the channel is full, which pushes back on the stage before, and in the
/// end on the source. Receivers take everything available (up to a limit) in one lock round
/// trip, so a busy pipeline pays for a wake-up per batch rather than per event. Control items
/// (join flushes, timer ticks) bypass the capacity so the engine can always deliver them.
final class Channel<Element: Sendable>: Sendable {
    private struct State {
        var items = Deque<Element>()
        var controls = Deque<Element>()
        var receivers = Deque<UnsafeContinuation<Void, Never>>()
        var senders = Deque<UnsafeContinuation<Void, Never>>()
        var closed = false
    }

    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// Number of queued items (for tests and stats).
    var count: Int { state.withLock { $0.items.count + $0.controls.count } }

    /// Sends every element of `batch`, suspending while the channel is full. Elements sent
    /// after `close()` are dropped.
    func send(contentsOf batch: [Element]) async {
        var index = 0
        while index < batch.count {
            var wake: [UnsafeContinuation<Void, Never>] = []
            let finished: Bool = state.withLock { s in
                if s.closed { return true }
                let room = capacity - s.items.count
                if room > 0 {
                    let n = min(room, batch.count - index)
                    s.items.append(contentsOf: batch[index..<(index + n)])
                    index += n
                    for _ in 0..<min(n, s.receivers.count) { wake.append(s.receivers.removeFirst()) }
                }
                return index >= batch.count
            }
            for w in wake { w.resume() }
            if finished { return }
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
                let resumeNow = state.withLock { s -> Bool in
                    if s.closed || s.items.count < capacity { return true }
                    s.senders.append(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        }
    }

    func send(_ element: Element) async {
        await send(contentsOf: CollectionOfOne(element).map { $0 })
    }

    /// Delivers `element` at once, regardless of capacity.
    func sendControl(_ element: Element) {
        let wake = state.withLock { s -> UnsafeContinuation<Void, Never>? in
            if s.closed { return nil }
            s.controls.append(element)
            return s.receivers.popFirst()
        }
        wake?.resume()
    }

    /// Moves up to `limit` items into `buffer` (control items first), suspending while empty.
    /// Returns false once the channel is closed and drained.
    func receive(into buffer: inout [Element], limit: Int) async -> Bool {
        while true {
            var wake: Deque<UnsafeContinuation<Void, Never>> = []
            let got: Bool? = state.withLock { s in
                if !s.controls.isEmpty {
                    buffer.append(contentsOf: s.controls)
                    s.controls.removeAll()
                }
                if !s.items.isEmpty {
                    let n = min(limit, s.items.count)
                    buffer.append(contentsOf: s.items.prefix(n))
                    s.items.removeFirst(n)
                    swap(&wake, &s.senders)
                }
                if !buffer.isEmpty { return true }
                return s.closed ? false : nil
            }
            for w in wake { w.resume() }
            if let got { return got }
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
                let resumeNow = state.withLock { s -> Bool in
                    if s.closed || !s.items.isEmpty || !s.controls.isEmpty { return true }
                    s.receivers.append(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        }
    }

    /// Removes and answers the items still queued (control items left out), once nobody receives.
    func takeRemaining() -> [Element] {
        state.withLock { s in
            defer { s.items.removeAll() }
            return Array(s.items)
        }
    }

    /// Wakes every waiter; receivers drain what is left, senders drop what they hold.
    func close() {
        let (receivers, senders) = state.withLock { s -> (Deque<UnsafeContinuation<Void, Never>>, Deque<UnsafeContinuation<Void, Never>>) in
            s.closed = true
            defer { s.receivers.removeAll(); s.senders.removeAll() }
            return (s.receivers, s.senders)
        }
        for r in receivers { r.resume() }
        for s in senders { s.resume() }
    }
}

/// Limits how many holders run at once (FlowEngine's `max_parallel_nodes`, runs in flight).
final class AsyncSemaphore: Sendable {
    private struct State {
        var available: Int
        var waiters = Deque<UnsafeContinuation<Void, Never>>()
    }

    private let state: Mutex<State>

    init(_ permits: Int) {
        state = Mutex(State(available: permits))
    }

    func acquire() async {
        let acquired = state.withLock { s -> Bool in
            if s.available > 0 { s.available -= 1; return true }
            return false
        }
        if acquired { return }
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if s.available > 0 { s.available -= 1; return true }
                s.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// Takes a permit only if one is free now.
    func tryAcquire() -> Bool {
        state.withLock { s in
            guard s.available > 0 else { return false }
            s.available -= 1
            return true
        }
    }

    func release() {
        let waiter = state.withLock { s -> UnsafeContinuation<Void, Never>? in
            if let w = s.waiters.popFirst() { return w }
            s.available += 1
            return nil
        }
        waiter?.resume()
    }

    /// Wakes all waiters without permits: used at teardown, when nothing will release.
    func releaseAll() {
        let waiters = state.withLock { s -> Deque<UnsafeContinuation<Void, Never>> in
            defer { s.waiters.removeAll(); s.available = Int.max / 2 }
            return s.waiters
        }
        for w in waiters { w.resume() }
    }
}
