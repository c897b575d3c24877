import SluiceEngine
import SluiceTesting
import Testing

@Suite("Store conformance: memory")
struct MemoryStoreTests {
    @Test(arguments: StoreConformance.cases)
    func conformance(_ c: StoreConformance.Case) async throws {
        try await c.run(MemoryStore())
    }
}
