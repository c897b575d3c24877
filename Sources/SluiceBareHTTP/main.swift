// The baseline of `scripts/bench-serve`: a bare Hummingbird server whose one route answers a
// constant, so a webhook's throughput can be put next to what the HTTP stack alone does.
import Hummingbird

let port = CommandLine.arguments.dropFirst().first.flatMap(Int.init) ?? 8081
let router = Router()
router.post("/hooks/bench") { _, _ in #"{"ok":true}"# }
router.get("/hooks/bench") { _, _ in #"{"ok":true}"# }
let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "bare"))
try await app.runService()
