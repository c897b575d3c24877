import Foundation
import SluiceCore
@testable import SluiceEngine
import Testing

@Suite("Store writer")
struct StoreWriterTests {
    @Test("Writes folded into one transaction keep their materializations and audit entries, in order")
    func foldsAssetRecords() async throws {
        let store = MemoryStore()
        // A long post delay: the posted writes can only go out with the commit.
        let writer = StoreWriter(store: store, postDelay: .seconds(3600))
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        var running = Materialization(id: "r/orders", asset: "orders", partition: "", runID: "r", status: .running, started: t0,
                                      version: "v1")
        var posted = StoreBatch()
        posted.materializations = [running]
        posted.audit = [AuditEntry(time: t0, actor: "alice", action: "run.started", target: "r")]
        writer.post(posted)
        running.status = .materialized
        running.ended = t0.addingTimeInterval(1)
        running.inputs = [.init(asset: "raw", partition: "", materialization: "q/raw")]
        var committed = StoreBatch()
        committed.materializations = [running]
        committed.audit = [AuditEntry(time: t0.addingTimeInterval(1), actor: "alice", action: "gate.approved", target: "r")]
        try await writer.commit(committed)
        #expect(try await store.materializations(MaterializationFilter()) == [running], "the later state wins")
        #expect(try await store.audit(AuditFilter()).map(\.action) == ["gate.approved", "run.started"])
    }
}
