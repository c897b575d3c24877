import Foundation
import Synchronization

/// Keys to values with optional expiry, shared by the tasks of a process (`ctx.cache` in
/// scripts). The in-memory store below is the default; a durable store implements the same
/// protocol.
public protocol KeyValueCache: Sendable {
    func get(_ key: String) -> Value?
    func put(_ key: String, _ value: Value, ttl: Double?)
    /// Stores only when the key is absent (or expired): true when this call stored it. Two
    /// callers racing on one key see exactly one `true`.
    func create(_ key: String, _ value: Value, ttl: Double?) -> Bool
    /// True when the key was there.
    func delete(_ key: String) -> Bool
    /// Live keys starting with `prefix`, sorted.
    func keys(prefix: String) -> [String]
}

/// A process-local cache. Expired entries are dropped when read and swept as the map grows.
public final class InMemoryCache: KeyValueCache {
    private struct Entry {
        var value: Value
        var expires: Double?
    }

    private let entries = Mutex<[String: Entry]>([:])
    private let now: @Sendable () -> Double
    /// Most entries held; the oldest-expiring go first when full.
    public let capacity: Int

    /// One cache for the whole process, used when a flow names no other store.
    public static let shared = InMemoryCache()

    public init(capacity: Int = 1_000_000, now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.capacity = capacity
        self.now = now
    }

    public func get(_ key: String) -> Value? {
        let t = now()
        return entries.withLock { map in
            guard let e = map[key] else { return nil }
            if let x = e.expires, x <= t {
                map[key] = nil
                return nil
            }
            return e.value
        }
    }

    public func put(_ key: String, _ value: Value, ttl: Double?) {
        let t = now()
        entries.withLock { map in
            map[key] = Entry(value: value, expires: ttl.map { t + $0 })
            trim(&map, t)
        }
    }

    public func create(_ key: String, _ value: Value, ttl: Double?) -> Bool {
        let t = now()
        return entries.withLock { map in
            if let e = map[key], e.expires.map({ $0 > t }) ?? true { return false }
            map[key] = Entry(value: value, expires: ttl.map { t + $0 })
            trim(&map, t)
            return true
        }
    }

    public func delete(_ key: String) -> Bool {
        let t = now()
        return entries.withLock { map in
            guard let e = map.removeValue(forKey: key) else { return false }
            return e.expires.map { $0 > t } ?? true
        }
    }

    public func keys(prefix: String) -> [String] {
        let t = now()
        return entries.withLock { map in
            map.filter { $0.key.hasPrefix(prefix) && ($0.value.expires.map { $0 > t } ?? true) }.keys.sorted()
        }
    }

    private func trim(_ map: inout [String: Entry], _ t: Double) {
        guard map.count > capacity else { return }
        map = map.filter { $0.value.expires.map { $0 > t } ?? true }
        while map.count > capacity {
            let victim = map.min { ($0.value.expires ?? .infinity) < ($1.value.expires ?? .infinity) }!.key
            map[victim] = nil
        }
    }
}
