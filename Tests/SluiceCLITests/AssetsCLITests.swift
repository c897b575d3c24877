import Foundation
import GRDB
import SluiceCore
import Testing

@Suite("sluice CLI: assets", .enabled(if: FileManager.default.isExecutableFile(atPath: CLI.binary), "build the sluice binary first (swift build)"))
struct AssetsCLITests {
    /// A daily asset whose task logs `start P` and `end P` around a short sleep.
    static func dailyFlow(_ dir: String, name: String) -> String {
        """
        flow:
          name: \(name)
          tasks:
            - shell:
                name: daily
                shell: true
                command: "echo start {{event.meta.partition}} >> \(dir)/log; sleep 0.15; echo end {{event.meta.partition}} >> \(dir)/log"
                asset:
                  partitions: {daily: {start: 2025-01-01}}
                  io: {files: {path: \(dir)/out, format: json}}
        """
    }

    static func logLines(_ dir: String) -> [Substring] {
        ((try? String(contentsOfFile: dir + "/log", encoding: .utf8)) ?? "").split(separator: "\n")
    }

    @Test("A backfill of 60 daily partitions, 4 at a time, killed with SIGKILL and resumed, does not redo finished partitions",
          arguments: TestStore.allCases)
    func backfillKillResume(_ backend: TestStore) throws {
        let dir = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        guard let store = try backend.location(in: dir) else { return }
        let flow = dir + "/daily.yaml"
        try Self.dailyFlow(dir, name: "daily_\(UUID().uuidString.prefix(8).lowercased())").write(toFile: flow, atomically: true, encoding: .utf8)
        let common = ["--flows", flow, "--store", store, "--claim-ttl", "1"]

        let victim = try CLI.start(["backfill", "daily", "--from", "2025-01-01", "--to", "2025-03-01", "--max-parallel", "4"] + common)
        defer { if victim.isRunning { kill(victim.processIdentifier, SIGKILL) } }
        let progressed = CLI.waitFor(seconds: 60) { Self.logLines(dir).filter { $0.hasPrefix("end") }.count >= 12 }
        try #require(progressed, "the backfill did not get going: \(Self.logLines(dir))")
        kill(victim.processIdentifier, SIGKILL)
        victim.waitUntilExit()
        let before = Self.logLines(dir)
        // Recorded as materialized before the kill (a task that ended just as the process died
        // may not be: it runs again, like the ones cut off mid-way).
        let status = try CLI.run(["assets", "show", "daily", "--status", "materialized", "--json"] + common.dropLast(2))
        let finishedBefore = Set(status.stdout.split(separator: "\n").compactMap { try? Value.parseJSON(String($0))["partition"]?.stringValue })
        #expect(finishedBefore.count >= 8 && finishedBefore.count < 60, "\(finishedBefore.count) recorded before the kill: \(status.stderr)")

        let list = try CLI.run(["backfill", "list", "--store", store])
        let id = try #require(list.stdout.split(separator: "\n").dropFirst().compactMap { row in
            row.split(separator: " ").first.map(String.init)
        }.first { $0.hasPrefix("bf-") }, "\(list.stdout) \(list.stderr)")
        let resumed = try CLI.run(["backfill", "resume", id] + common)
        #expect(resumed.status == 0, "\(resumed.stderr)")

        let lines = Self.logLines(dir)
        let starts = lines.filter { $0.hasPrefix("start") }.map { String($0.dropFirst(6)) }
        #expect(Set(starts).count == 60, "every partition ran")
        // Partitions that had finished were not started again; only those cut off by the kill (at most 4) ran twice.
        for line in lines.dropFirst(before.count) where line.hasPrefix("start") {
            #expect(!finishedBefore.contains(String(line.dropFirst(6))), "\(line) had already been materialized before the kill")
        }
        #expect(starts.count <= 64, "\(starts.count) starts")
        // Never more than 4 at once, and more than one at a time.
        var running = 0
        var most = 0
        for line in lines {
            running += line.hasPrefix("start") ? 1 : -1
            most = max(most, running)
            running = max(running, 0)
        }
        // On the PostgreSQL database the worker tests share, their workers may take queued partition
        // runs (the backfill then waits for them) and one they SIGKILL leaves a shell child
        // finishing while the run is retried: allow that overlap there.
        #expect(most <= (backend == .sqlite ? 4 : 6) && most >= 2, "at most \(most) at once")
        #expect(FileManager.default.fileExists(atPath: dir + "/out/2025-02-14.json"))

        let show = try CLI.run(["backfill", "show", id, "--json", "--store", store])
        let record = try Value.parseJSON(show.stdout)
        #expect(record["status"] == "completed")
        #expect(record["progress"]?["completed"] == 60)

        // Everything is up to date now: a second backfill skips every partition.
        let again = try CLI.run(["backfill", "daily", "--partitions", "2025-01-05,2025-02-20"] + common)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stderr.contains("0 materialized, 2 up to date"), "\(again.stderr)")
        #expect(Self.logLines(dir).count == lines.count)

        let audit = try CLI.run(["backfill", "show", "nope", "--store", store])
        #expect(audit.status == 2 && audit.stderr.contains("no backfill 'nope'"))
    }

    @Test("A backfill of eight days, four at a time, whose days all read one unpartitioned asset computes that asset once",
          arguments: TestStore.allCases)
    func backfillSharedUpstream(_ backend: TestStore) throws {
        let dir = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        guard let store = try backend.location(in: dir) else { return }
        let flow = dir + "/shared.yaml"
        // rates takes a second: the first four days have all planned to compute it before it ends.
        try """
            flow:
              name: shared_\(UUID().uuidString.prefix(8).lowercased())
              tasks:
                - shell:
                    name: rates
                    shell: true
                    command: "echo rates >> \(dir)/log; sleep 1; echo 2"
                    asset: {io: {files: {path: \(dir)/rates, format: json}}}
                - shell:
                    name: daily
                    depends_on: [rates]
                    shell: true
                    command: "echo day {{event.meta.partition}} >> \(dir)/log"
                    asset: {partitions: {daily: {start: 2025-01-01}}}
            """.write(toFile: flow, atomically: true, encoding: .utf8)
        let run = try CLI.run(["backfill", "daily", "--from", "2025-01-01", "--to", "2025-01-08", "--max-parallel", "4",
                               "--flows", flow, "--store", store])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("8 materialized"), "\(run.stderr)")
        let lines = Self.logLines(dir)
        #expect(lines.filter { $0 == "rates" }.count == 1, "\(lines)")
        #expect(Set(lines.filter { $0.hasPrefix("day ") }).count == 8, "\(lines)")
    }

    @Test("materialize, assets show and lineage work together from the command line")
    func materializeAndLineage() throws {
        let dir = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let flow = dir + "/sales.yaml"
        try """
            flow:
              name: sales
              tasks:
                - script:
                    name: raw
                    code: "[#{amount: 10}, #{amount: 32}]"
                    asset: {partitions: {static: [eu, us]}, io: {files: {path: \(dir)/raw, format: csv}}}
                - script:
                    name: total
                    depends_on: [raw]
                    code: "let t = 0; for r in event.data.raw { t += r.amount; } #{region: event.meta.partition, total: t}"
                    asset: {partitions: {static: [eu, us]}}
            """.write(toFile: flow, atomically: true, encoding: .utf8)
        let common = ["--flows", dir, "--quiet"]
        let first = try CLI.run(["materialize", "total", "--partition", "us"] + common)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(try String(contentsOfFile: dir + "/raw/us.csv", encoding: .utf8) == "amount\n10\n32\n")
        let again = try CLI.run(["materialize", "total", "--partition", "us"] + common)
        #expect(again.stderr.contains("is up to date"))
        let missing = try CLI.run(["materialize", "total"] + common)
        #expect(missing.status == 2 && missing.stderr.contains("name a partition"), "\(missing.stderr)")
        let unknown = try CLI.run(["materialize", "totl", "--partition", "us"] + common)
        #expect(unknown.status == 2 && unknown.stderr.contains("assets: raw, total"), "\(unknown.stderr)")

        _ = try CLI.run(["materialize", "raw", "--partition", "us", "--force"] + common)
        let show = try CLI.run(["assets", "show", "total", "--json", "--flows", dir])
        let rows = show.stdout.split(separator: "\n").compactMap { try? Value.parseJSON(String($0)) }
        #expect(rows.first { $0["partition"] == "us" }?["status"] == "stale")
        #expect(rows.first { $0["partition"] == "eu" }?["status"] == "missing")

        let store = ["--store", dir + "/.sluice/sluice.db"]
        let down = try CLI.run(["lineage", "raw", "--partition", "us", "--downstream", "--json"] + store)
        // The newest raw [us] has not been read by anything yet; the older one was read by total.
        #expect(try Value.parseJSON(down.stdout)["children"] == [])
        let up = try CLI.run(["lineage", "total", "--partition", "us", "--upstream", "--json"] + store)
        let tree = try Value.parseJSON(up.stdout)
        #expect(tree["asset"] == "total" && tree["children"]?[0]?["asset"] == "raw" && tree["children"]?[0]?["partition"] == "us")
        let text = try CLI.run(["lineage", "total", "--partition", "us"] + store)
        #expect(text.stdout.contains("└─ raw [us]"), "\(text.stdout)")
    }

    @Test("Table assets: the upstream lands in the store's SQLite file, the downstream reads it from there and writes its own url")
    func tableAssets() async throws {
        let dir = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try """
            flow:
              name: shop
              tasks:
                - script:
                    name: orders
                    code: |
                      if event.meta.partition == "us" {
                        [#{order: 1, item: "tea", amount: 2.5, paid: true, tags: ["hot"]}, #{order: 2, item: "cake", amount: 4.0, paid: false, note: ()}]
                      } else {
                        [#{order: 3, item: "scone", amount: 1.5, paid: true}]
                      }
                    asset:
                      partitions: {static: [eu, us]}
                      io: {table: {name: orders}}
                - script:
                    name: summary
                    depends_on: [orders]
                    code: |
                      let total = 0.0;
                      let items = [];
                      for o in event.data.orders { total += o.amount; items.push(o.item); }
                      #{region: event.meta.partition, total: total, items: items}
                    asset:
                      partitions: {static: [eu, us]}
                      io: {table: {name: summary, url: "sqlite:\(dir)/marts/summary.db"}}
            """.write(toFile: dir + "/shop.yaml", atomically: true, encoding: .utf8)
        let common = ["--flows", dir, "--quiet"]
        let first = try CLI.run(["materialize", "summary", "--partition", "us", "--with-upstream"] + common)
        #expect(first.status == 0, "\(first.stderr)")

        let store = try DatabaseQueue(path: dir + "/.sluice/sluice.db")
        let orders = try await store.read { db in
            try Row.fetchAll(db, sql: "SELECT partition, _row, \"order\", item, amount, paid, tags, note, _extra FROM orders ORDER BY partition, _row")
                .map { row in (0..<row.count).map { (row[$0] as DatabaseValue).description } }
        }
        // Rhai maps keep their keys sorted, so `note` (null: kept in _extra) comes before the
        // columns it follows, and _extra records the order.
        let extra = #""{\"fields\":{\"note\":null},\"order\":[\"amount\",\"item\",\"note\",\"order\",\"paid\"]}""#
        #expect(orders == [["\"us\"", "0", "1", "\"tea\"", "2.5", "1", "\"[\\\"hot\\\"]\"", "NULL", "NULL"],
                           ["\"us\"", "1", "2", "\"cake\"", "4.0", "0", "NULL", "NULL", extra]], "\(orders)")
        let marts = try DatabaseQueue(path: dir + "/marts/summary.db")
        func summary(_ partition: String) async throws -> [String] {
            try await marts.read { db in
                guard let row = try Row.fetchOne(db, sql: "SELECT region, total, items FROM summary WHERE partition = ?", arguments: [partition]) else {
                    return []
                }
                return [row[0] as String, String(row[1] as Double), row[2] as String]
            }
        }
        #expect(try await summary("us") == ["us", "6.5", "[\"tea\",\"cake\"]"])

        // The downstream loads the upstream from its table: a change made there is what it reads.
        try await store.write { db in try db.execute(sql: "UPDATE orders SET amount = 10 WHERE partition = 'us' AND _row = 0") }
        let again = try CLI.run(["materialize", "summary", "--partition", "us", "--force"] + common)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try await summary("us") == ["us", "14.0", "[\"tea\",\"cake\"]"])

        // A backfill computes the missing upstream partition into the table too.
        let backfill = try CLI.run(["backfill", "summary", "--partitions", "eu,us", "--flows", dir])
        #expect(backfill.status == 0, "\(backfill.stderr)")
        #expect(try await summary("eu") == ["eu", "1.5", "[\"scone\"]"])
        let written = try await store.read { db in
            try String.fetchAll(db, sql: "SELECT table_name || ' ' || partition || ' ' || shape || ' ' || rows FROM sluice_table_partitions ORDER BY 1")
        }
        #expect(written == ["orders eu rows 1", "orders us rows 2"])
    }
}
