import Dispatch
import Foundation
import SluiceCore
import Synchronization

/// One bucket of a store's key-value cache, behind the synchronous `KeyValueCache` that scripts
/// (`ctx.cache`) and tasks use. Every call goes to the store, so `create` is atomic across all
/// the processes sharing it.
///
/// The store is asynchronous and the caller is not (a script in the middle of running): each
/// call blocks the calling thread until the store answers. The store's work runs on a thread
/// of the caches' own, never on Swift's cooperative pool, so blocking cannot starve it. A store
/// that fails reads as empty and refuses writes (`create` answers false); the failure is kept
/// in `lastError`.
public final class StoreKeyValueCache: KeyValueCache {
    public let store: any Store
    public let bucket: KVBucket
    /// Shared and never freed: a task may still touch its preferred executor after it
    /// delivered its answer, so the executor must outlive every cache.
    private static let executor = ThreadExecutor(label: "sluice.kv")
    private let failure = Mutex<String?>(nil)
    private let now: @Sendable () -> Date

    public init(store: any Store, bucket: KVBucket, now: @escaping @Sendable () -> Date = { Date() }) {
        self.store = store
        self.bucket = bucket
        self.now = now
    }

    /// The last store error a call swallowed, if any.
    public var lastError: String? { failure.withLock { $0 } }

    /// Runs `body` against the store on this cache's thread and waits for its answer.
    private func wait<T: Sendable>(_ fallback: T, _ body: @escaping @Sendable () async throws -> T) -> T {
        let result = Mutex<Result<T, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task(executorPreference: Self.executor) {
            let r: Result<T, any Error>
            do { r = .success(try await body()) } catch { r = .failure(error) }
            result.withLock { $0 = r }
            done.signal()
        }
        done.wait()
        switch result.withLock({ $0 })! {
        case .success(let value): return value
        case .failure(let error):
            failure.withLock { $0 = "\(error)" }
            return fallback
        }
    }

    public func get(_ key: String) -> Value? {
        let (store, bucket, t) = (store, bucket, now())
        return wait(nil) { try await store.get(bucket, key, now: t)?.value }
    }

    public func put(_ key: String, _ value: Value, ttl: Double?) {
        let (store, bucket, t) = (store, bucket, now())
        wait(()) { _ = try await store.put(bucket, key, value, ttl: ttl, now: t) }
    }

    public func create(_ key: String, _ value: Value, ttl: Double?) -> Bool {
        let (store, bucket, t) = (store, bucket, now())
        return wait(false) { try await store.create(bucket, key, value, ttl: ttl, now: t) != nil }
    }

    public func delete(_ key: String) -> Bool {
        let (store, bucket, t) = (store, bucket, now())
        return wait(false) { try await store.delete(bucket, key, now: t) }
    }

    public func keys(prefix: String) -> [String] {
        let (store, bucket, t) = (store, bucket, now())
        return wait([]) { try await store.list(bucket, prefix: prefix, now: t).map(\.key) }
    }
}

/// A task executor with one thread of its own: jobs run there in order.
final class ThreadExecutor: TaskExecutor, @unchecked Sendable {
    // The queue is serial; jobs are handed over and run on its thread only.
    private let queue: DispatchQueue

    init(label: String) {
        queue = DispatchQueue(label: label)
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        queue.async { unowned.runSynchronously(on: executor) }
    }
}
