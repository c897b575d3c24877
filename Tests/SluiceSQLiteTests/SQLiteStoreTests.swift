import Foundation
import SluiceCore
import SluiceEngine
import SluiceSQLite
import SluiceTesting
import Testing

/// A fresh directory under the system temp dir, removed by the caller.
func temporaryDirectory() -> String {
    let dir = NSTemporaryDirectory() + "sluice-sqlite-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

@Suite("Store conformance: SQLite")
struct SQLiteStoreTests {
    @Test(arguments: StoreConformance.cases)
    func conformance(_ c: StoreConformance.Case) async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await c.run(try SQLiteStore(path: dir + "/.sluice/sluice.db"))
    }

    @Test("Data survives closing and reopening the file")
    func reopen() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/s.db"
        do {
            let store = try SQLiteStore(path: path)
            _ = try await store.createRun(RunRecord(id: "r1", flow: "f", flowHash: "h", trigger: "cli", created: Date(timeIntervalSince1970: 1)),
                                          idempotencyWindow: 0)
            try await store.saveCheckpoint(runID: "r1", key: "a", output: ["x": 1])
        }
        let again = try SQLiteStore(path: path)
        #expect(try await again.run(id: "r1")?.flow == "f")
        #expect(try await again.checkpoints(runID: "r1") == ["a": ["x": 1]])
        #expect(try again.schemaVersion() == 2)
    }

    @Test("A leader stopped by cancellation releases its lease, although SQLite refuses work in a cancelled task")
    func leaderReleasesLease() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteStore(path: dir + "/s.db")
        let clock = TestClock()
        let leadership = Leadership(store: store, name: "schedule/f", holder: "a", ttl: 60, clock: clock)
        let leading = Task { await leadership.run { try? await Task.sleep(for: .seconds(3600)) } }
        await clock.waitForSleepers(1)  // leading: renewing the lease every 20 s
        #expect(try await store.lease("schedule/f", now: clock.now())?.holder == "a")
        leading.cancel()
        _ = await leading.value
        #expect(try await store.lease("schedule/f", now: clock.now()) == nil, "another process can lead at once")
    }

    @Test("Processes opening a new file at once migrate it exactly once")
    func concurrentMigration() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/s.db"
        let versions = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<6 { group.addTask { try SQLiteStore(path: path).schemaVersion() } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(versions == Array(repeating: 2, count: 6))
    }

    @Test("A path that cannot be written and a file that is not a database fail with the path")
    func badFiles() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let blocker = dir + "/file"
        FileManager.default.createFile(atPath: blocker, contents: Data("x".utf8))
        #expect {
            _ = try SQLiteStore(path: blocker + "/sub/s.db")
        } throws: { error in
            guard case StoreError.unavailable(let why) = error else { return false }
            return why.contains(blocker)
        }
        let garbage = dir + "/garbage.db"
        FileManager.default.createFile(atPath: garbage, contents: Data(repeating: 0x41, count: 8192))
        #expect {
            _ = try SQLiteStore(path: garbage)
        } throws: { error in
            guard case StoreError.corrupt(let why) = error else { return false }
            return why.contains(garbage)
        }
    }
}
