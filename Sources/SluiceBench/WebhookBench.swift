import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SluiceConfig
import SluiceEngine
import SluiceServer
import SluiceTasks
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The engine's share of a webhook request: the flow of `scripts/bench-serve` (webhook → 3
/// scripts → response) answered by the server's own responder, with no socket and no HTTP
/// parsing. `scripts/bench-serve` measures the whole thing under wrk; this isolates what Sluice
/// adds on top of Hummingbird, and is steady enough to compare changes on a noisy machine.
/// Reported per request: wall time with 64 requests in flight, and CPU time (user + system).
func webhookBenchmark() async {
    let flowFile = "scripts/bench-flows/webhook.yaml"
    guard let text = try? String(contentsOfFile: flowFile, encoding: .utf8) else {
        print("webhook: skipped (\(flowFile) not found; run from the repository root)")
        return
    }
    let dir = NSTemporaryDirectory() + "sluice-bench-webhook-\(getpid())"
    try? FileManager.default.createDirectory(atPath: dir + "/flows", withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    guard FileManager.default.createFile(atPath: dir + "/flows/bench.yaml", contents: Data(text.utf8)) else {
        print("webhook: failed: could not write \(dir)/flows/bench.yaml")
        return
    }
    var config = ServeConfig()
    config.flows = dir + "/flows"
    config.logLevel = "warning"
    let reg = BuiltinTasks.registry
    let server: SluiceServer
    do {
        server = try SluiceServer(config: config, store: MemoryStore(), storeName: "memory", registry: reg,
                                  loader: FlowLoader(catalog: reg.catalog), environment: [:])
    } catch {
        print("webhook: failed: \(error)")
        return
    }
    await server.loadFlows()
    let failures = Failures()
    /// `total` requests, `inFlight` at a time; returns (wall, cpu) seconds.
    func load(_ total: Int, inFlight: Int) async -> (Double, Double) {
        let cpuBefore = cpuSeconds()
        let start = ContinuousClock.now
        await withTaskGroup(of: Void.self) { group in
            for lane in 0..<inFlight {
                group.addTask {
                    var i = lane
                    while i < total {
                        let response = await server.respond(to: benchRequest())
                        if response.status != .ok { failures.count.add(1, ordering: .relaxed) }
                        i += inFlight
                    }
                }
            }
        }
        return (seconds(ContinuousClock.now - start), cpuSeconds() - cpuBefore)
    }
    _ = await load(quick ? 2_000 : 20_000, inFlight: 64)  // warm-up
    let total = quick ? 10_000 : 200_000
    var walls: [Double] = [], cpus: [Double] = []
    for _ in 0..<(quick ? 1 : 5) {
        let (wall, cpu) = await load(total, inFlight: 64)
        walls.append(wall / Double(total))
        cpus.append(cpu / Double(total))
    }
    let single = await load(quick ? 2_000 : 20_000, inFlight: 1)
    await server.stopFlows()
    let failed = failures.count.load(ordering: .relaxed)
    if failed > 0 { print("webhook: \(failed) requests did not answer 200") }
    let wall = Stats(samples: walls), cpu = Stats(samples: cpus)
    report("webhook → 3 scripts, in process (64 in flight)", String(format: "%.0f requests/s", 1 / wall.median))
    report("  CPU per request (median of \(walls.count); least)", "\(format(cpu.median)); \(format(cpu.min))")
    report("  one at a time: latency per request", format(single.0 / Double(quick ? 2_000 : 20_000)))
}

private final class Failures: Sendable {
    let count = Atomic<Int>(0)
}

private func benchRequest() -> Request {
    let body = #"{"id": 42, "amount": 21}"#
    let head = HTTPRequest(method: .post, scheme: "http", authority: "127.0.0.1", path: "/hooks/bench",
                           headerFields: [.contentType: "application/json", .contentLength: String(body.utf8.count)])
    return Request(head: head, body: RequestBody(buffer: ByteBuffer(string: body)))
}

/// User plus system CPU time of this process so far.
func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}
