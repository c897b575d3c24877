import Foundation
import GRDB
import SluiceCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("sluice serve", .enabled(if: FileManager.default.isExecutableFile(atPath: CLI.binary), "build the sluice binary first (swift build)"))
struct ServeCLITests {
    /// A flows folder with `files` (path → text) in a new temp dir; returns the dir.
    static func setUp(_ files: [String: String]) throws -> String {
        let dir = try CLI.tempDir()
        for (path, text) in files { try write(dir, path, text) }
        try FileManager.default.createDirectory(atPath: dir + "/flows", withIntermediateDirectories: true)
        return dir
    }

    /// Writes `text` to `path` under the flows folder of `dir`.
    static func write(_ dir: String, _ path: String, _ text: String) throws {
        let full = dir + "/flows/" + path
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: full, atomically: true, encoding: .utf8)
    }

    static func hook(_ name: String, path: String, extra: String = "", code: String = "#{greeting: \"hello \" + event.data.name}",
                     settings: String = "") -> String {
        """
        flow:
          name: \(name)
        \(settings)
          tasks:
            - http_endpoint:
                name: hook
                endpoint: \(path)
        \(extra)
            - script:
                name: reply
                code: '\(code)'
        """
    }

    static func serve(_ dir: String, _ extra: [String] = [], environment: [String: String] = [:]) throws -> ServeProcess {
        try ServeProcess(["flows", "--store", dir + "/store.db"] + extra, dir: dir, environment: environment)
    }

    @Test("A webhook answers with its run's result; bearer, basic and HMAC auth refuse bad credentials with 401 and start nothing")
    func webhookAuth() throws {
        let dir = try Self.setUp([
            "open.yaml": Self.hook("open", path: "/hooks/open"),
            "bearer.yaml": Self.hook("bearer", path: "/hooks/bearer", extra: "        credentials_path: bearer.json"),
            "basic.yaml": Self.hook("basic", path: "/hooks/basic", extra: "        credentials_path: basic.json\n        method: PUT"),
            "signed.yaml": Self.hook("signed", path: "/hooks/signed", extra: "        credentials_path: hmac.json"),
            "bearer.json": #"{"bearer_token": "s3cret-token"}"#,
            "basic.json": #"{"username": "ann", "password": "pa:ss"}"#,
            "hmac.json": #"{"hmac_secret": "shh"}"#,
        ])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try Self.serve(dir)
        defer { server.stop() }
        let body = #"{"name": "ann"}"#
        let json = ["Content-Type": "application/json"]

        let open = try server.request("POST", "/hooks/open", headers: json, body: body)
        #expect(open.status == 200, "\(open.text)")
        #expect(try Value.parseJSON(open.text) == ["greeting": "hello ann"])
        #expect(open.header("Sluice-Run-Id") != nil)

        // Bearer.
        #expect(try server.request("POST", "/hooks/bearer", headers: json, body: body).status == 401)
        let wrongBearer = try server.request("POST", "/hooks/bearer", headers: json.merging(["Authorization": "Bearer s3cret-tokem"]) { $1 }, body: body)
        #expect(wrongBearer.status == 401)
        #expect(try Value.parseJSON(wrongBearer.text)["error"]?["code"] == "unauthorized")
        #expect(wrongBearer.header("WWW-Authenticate") == "Bearer")
        #expect(try server.request("POST", "/hooks/bearer", headers: json.merging(["Authorization": "Bearer s3cret-token"]) { $1 }, body: body).status == 200)

        // Basic, with a colon in the password; the method is PUT.
        let good = "Basic " + Data("ann:pa:ss".utf8).base64EncodedString()
        let bad = "Basic " + Data("ann:pa:sx".utf8).base64EncodedString()
        #expect(try server.request("PUT", "/hooks/basic", headers: json.merging(["Authorization": bad]) { $1 }, body: body).status == 401)
        #expect(try server.request("PUT", "/hooks/basic", headers: json.merging(["Authorization": good]) { $1 }, body: body).status == 200)
        let post = try server.request("POST", "/hooks/basic", headers: json.merging(["Authorization": good]) { $1 }, body: body)
        #expect(post.status == 405)
        #expect(post.header("Allow") == "PUT")

        // HMAC-SHA256 over "<timestamp>.<body>".
        func signed(_ stamp: Int, _ payload: String, secret: String = "shh") -> [String: String] {
            let mac = Digest.hex(Digest.hmacSHA256(key: Array(secret.utf8), message: Array("\(stamp).\(payload)".utf8)))
            return json.merging(["X-Sluice-Timestamp": String(stamp), "X-Sluice-Signature": "sha256=" + mac]) { $1 }
        }
        let now = Int(Date().timeIntervalSince1970)
        #expect(try server.request("POST", "/hooks/signed", headers: signed(now, body), body: body).status == 200)
        #expect(try server.request("POST", "/hooks/signed", headers: signed(now, body), body: #"{"name": "eve"}"#).status == 401)
        #expect(try server.request("POST", "/hooks/signed", headers: signed(now, body, secret: "guess"), body: body).status == 401)
        let stale = try server.request("POST", "/hooks/signed", headers: signed(now - 3600, body), body: body)
        #expect(stale.status == 401)
        #expect(stale.text.contains("outside the allowed window"))
        #expect(try server.request("POST", "/hooks/signed", headers: json, body: body).status == 401)

        // Refused requests started nothing: one run per accepted request.
        for (flow, accepted) in [("bearer", 1), ("basic", 1), ("signed", 1), ("open", 1)] {
            let (status, runs) = try server.json("GET", "/api/v1/runs?flow=\(flow)")
            #expect(status == 200)
            #expect(runs["runs"]?.arrayValue?.count == accepted, "runs of \(flow): \(runs)")
        }
        // An unknown path is a JSON 404.
        let missing = try server.request("POST", "/hooks/nowhere", body: body)
        #expect(missing.status == 404)
        #expect(try Value.parseJSON(missing.text)["error"]?["code"] == "not_found")
    }

    @Test("Idempotency-Key: a repeat gets the first response without a second run; another body with the key is refused")
    func idempotency() throws {
        let dir = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.write(dir, "count.yaml", """
        flow:
          name: count
          tasks:
            - http_endpoint: {name: hook, endpoint: /hooks/count}
            - shell: {name: note, shell: true, command: "echo x >> \(dir)/runs; wc -l < \(dir)/runs"}
        """)
        let server = try Self.serve(dir)
        defer { server.stop() }
        let first = try server.request("POST", "/hooks/count", headers: ["Idempotency-Key": "k-1", "Content-Type": "application/json"], body: "{}")
        #expect(first.status == 200, "\(first.text)")
        let again = try server.request("POST", "/hooks/count", headers: ["Idempotency-Key": "k-1", "Content-Type": "application/json"], body: "{}")
        #expect(again.status == 200)
        #expect(again.text == first.text)
        #expect(again.header("Idempotent-Replayed") == "true")
        #expect(again.header("Sluice-Run-Id") == first.header("Sluice-Run-Id"))
        let other = try server.request("POST", "/hooks/count", headers: ["Idempotency-Key": "k-1", "Content-Type": "application/json"], body: #"{"a": 1}"#)
        #expect(other.status == 422)
        #expect(try Value.parseJSON(other.text)["error"]?["code"] == "idempotency_key_reused")
        let fresh = try server.request("POST", "/hooks/count", headers: ["Idempotency-Key": "k-2", "Content-Type": "application/json"], body: "{}")
        #expect(fresh.status == 200)
        let lines = try String(contentsOfFile: dir + "/runs", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2, "the task ran \(lines.count) times for two keys")

        // The key is kept in the store: a restarted server still replays it.
        server.stop()
        let second = try Self.serve(dir)
        defer { second.stop() }
        let replay = try second.request("POST", "/hooks/count", headers: ["Idempotency-Key": "k-1", "Content-Type": "application/json"], body: "{}")
        #expect(replay.status == 200)
        #expect(replay.header("Idempotent-Replayed") == "true")
        #expect(try String(contentsOfFile: dir + "/runs", encoding: .utf8).split(separator: "\n").count == 2)
    }

    @Test("respond: accepted answers 202 at once; a full flow answers 503 with Retry-After; bodies over the limit get 413; a failed run is a 500")
    func acceptedAndBackpressure() throws {
        let dir = try Self.setUp([
            "slow.yaml": """
            flow:
              name: slow
              max_runs_in_flight: 1
              tasks:
                - http_endpoint: {name: hook, endpoint: /hooks/slow, respond: accepted, max_body_bytes: 64}
                - delay: {name: wait, duration: 1500ms}
            """,
            "broken.yaml": Self.hook("broken", path: "/hooks/broken", code: "throw \"no such customer\""),
        ])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try Self.serve(dir)
        defer { server.stop() }
        let first = try server.request("POST", "/hooks/slow", body: "{}")
        #expect(first.status == 202, "\(first.text)")
        let runID = try Value.parseJSON(first.text)["run_id"]?.stringValue
        #expect(runID != nil)
        let busy = try server.request("POST", "/hooks/slow", body: "{}")
        #expect(busy.status == 503, "\(busy.text)")
        #expect(busy.header("Retry-After") == "1")
        #expect(try Value.parseJSON(busy.text)["error"]?["code"] == "overloaded")
        let big = try server.request("POST", "/hooks/slow", body: String(repeating: "x", count: 65))
        #expect(big.status == 413)
        // The accepted run completes.
        let done = CLI.waitFor(seconds: 20) {
            ((try? server.json("GET", "/api/v1/runs/\(runID ?? "")"))?.1["status"]) == "completed"
        }
        #expect(done)
        let failed = try server.request("POST", "/hooks/broken", headers: ["Content-Type": "application/json"], body: #"{"name": "x"}"#)
        #expect(failed.status == 500)
        let error = try Value.parseJSON(failed.text)["error"]
        #expect(error?["code"] == "run_failed")
        #expect(error?["task"] == "reply")
        #expect(error?["message"]?.stringValue?.contains("no such customer") == true)
    }

    @Test("Hot reload: an edit takes effect, an invalid edit keeps the old version and reports the error, deletions and new files are seen")
    func hotReload() throws {
        let dir = try Self.setUp(["greet.yaml": Self.hook("greet", path: "/hooks/greet", code: "#{v: 1}")])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try Self.serve(dir)
        defer { server.stop() }
        func answer(_ path: String = "/hooks/greet") -> String? {
            guard let r = try? server.request("POST", path, body: "{}"), r.status == 200 else { return nil }
            return r.text
        }
        #expect(answer() == #"{"v":1}"#)
        let file = dir + "/flows/greet.yaml"
        try Self.hook("greet", path: "/hooks/greet", code: "#{v: 2}").write(toFile: file, atomically: true, encoding: .utf8)
        #expect(CLI.waitFor(seconds: 15) { answer() == #"{"v":2}"# }, "the edit was not picked up: \(server.output)")

        // Invalid: the old version keeps serving, the API reports the error with its line.
        try Self.hook("greet", path: "/hooks/greet", code: "#{v: 3}").replacingOccurrences(of: "script:", with: "scriptt:")
            .write(toFile: file, atomically: true, encoding: .utf8)
        var detail: Value = .null
        #expect(CLI.waitFor(seconds: 15) {
            detail = (try? server.json("GET", "/api/v1/flows/greet"))?.1 ?? .null
            return detail["errors"] != nil
        })
        #expect(detail["status"] == "stale")
        #expect(detail["errors"]?[0]?.stringValue?.contains("scriptt") == true, "\(detail)")
        #expect(answer() == #"{"v":2}"#)
        #expect(server.output.contains("the previous version keeps running"))

        // A new file in a subfolder is served under its path as id; a deleted one stops.
        try FileManager.default.createDirectory(atPath: dir + "/flows/team", withIntermediateDirectories: true)
        try Self.hook("other", path: "/hooks/other", code: "#{w: 1}").write(toFile: dir + "/flows/team/other.yaml", atomically: true, encoding: .utf8)
        #expect(CLI.waitFor(seconds: 15) { answer("/hooks/other") == #"{"w":1}"# })
        #expect(CLI.waitFor(seconds: 5) { (try? server.json("GET", "/api/v1/flows/team/other"))?.0 == 200 })
        try FileManager.default.removeItem(atPath: file)
        #expect(CLI.waitFor(seconds: 15) { (try? server.request("POST", "/hooks/greet", body: "{}"))?.status == 404 })
        #expect(try server.json("GET", "/api/v1/flows/greet").0 == 404)
    }

    @Test("SIGTERM: requests and runs in flight finish, then the server exits 0")
    func gracefulShutdown() throws {
        let dir = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.write(dir, "slow.yaml", """
        flow:
          name: slow
          tasks:
            - http_endpoint: {name: hook, endpoint: /hooks/slow}
            - delay: {name: wait, duration: 2s}
            - shell: {name: note, shell: true, command: "echo done >> \(dir)/done; echo '{\\"ok\\": true}'"}
        """)
        try Self.write(dir, "later.yaml", """
        flow:
          name: later
          tasks:
            - http_endpoint: {name: hook, endpoint: /hooks/later, respond: accepted}
            - delay: {name: wait, duration: 2s}
            - shell: {name: note, shell: true, command: "echo later >> \(dir)/done"}
        """)
        try Self.write(dir, "jobs/durable.yaml", """
        flow:
          name: durable
          tasks:
            - delay: {name: wait, duration: 2s}
            - shell: {name: note, shell: true, command: "echo durable >> \(dir)/done"}
        """)
        let server = try Self.serve(dir)
        let accepted = try server.request("POST", "/hooks/later", body: "{}")
        #expect(accepted.status == 202)
        // A durable run the worker is executing when SIGTERM comes finishes too.
        let (queuedStatus, queued) = try server.json("POST", "/api/v1/runs", body: #"{"flow": "jobs/durable", "input": {}}"#)
        #expect(queuedStatus == 202)
        let durableID = queued["run"]?["id"]?.stringValue ?? ""
        #expect(CLI.waitFor(seconds: 20) { (try? server.json("GET", "/api/v1/runs/\(durableID)"))?.1["status"] == "running" })
        // A request that waits for its run, in flight when SIGTERM arrives.
        let reply = ReplyBox()
        let port = server.port
        let thread = Thread {
            reply.set(try? HTTPReply.send(port: port, method: "POST", path: "/hooks/slow", headers: [:], body: Array("{}".utf8), timeout: 30))
        }
        thread.start()
        usleep(500_000)
        let status = server.stop(seconds: 40)
        #expect(status == 0, "\(server.output)")
        #expect(CLI.waitFor(seconds: 10) { reply.get() != nil })
        #expect(reply.get()?.status == 200, "\(reply.get()?.text ?? "no reply")")
        let done = (try? String(contentsOfFile: dir + "/done", encoding: .utf8)) ?? ""
        #expect(done.contains("done") && done.contains("later") && done.contains("durable"), "runs in flight did not finish: \(done)")
        let show = try CLI.run(["runs", "show", durableID, "--json", "--store", dir + "/store.db"])
        #expect((try? Value.parseJSON(show.stdout))?["status"] == "completed", "\(show.stdout)\(show.stderr)")
        #expect(server.output.contains("shutting down"))
        #expect(throws: (any Error).self) { try HTTPReply.send(port: port, method: "GET", path: "/health/live", headers: [:], body: [], timeout: 2) }
    }

    @Test("An accepted request (202) whose server is killed before its run ends is run by the next server on the store")
    func acceptedSurvivesACrash() throws {
        let dir = try Self.setUp([:])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.write(dir, "later.yaml", """
        flow:
          name: later
          tasks:
            - http_endpoint: {name: hook, endpoint: /hooks/later, respond: accepted}
            - delay: {name: wait, duration: 3s}
            - shell: {name: note, shell: true, command: "echo ran-{{event.data.n}} >> \(dir)/done"}
        """)
        // Claims last 2 s: the next server takes the request over soon after.
        let environment = ["SLUICE_WORKERS_CLAIM_TTL": "2"]
        let first = try Self.serve(dir, environment: environment)
        #expect(try first.request("POST", "/hooks/later", body: #"{"n": 1}"#).status == 202)
        #expect(try first.request("POST", "/hooks/later", body: #"{"n": 2}"#).status == 202)
        first.crash()
        #expect(!FileManager.default.fileExists(atPath: dir + "/done"), "the runs had not ended when the server died")

        let second = try Self.serve(dir, environment: environment)
        defer { second.stop() }
        let ran = CLI.waitFor(seconds: 30) {
            let done = (try? String(contentsOfFile: dir + "/done", encoding: .utf8)) ?? ""
            return done.contains("ran-1") && done.contains("ran-2")
        }
        #expect(ran, "\(second.output)")
        #expect(second.output.contains("running an accepted request again"), "\(second.output)")
        // A request accepted just before a graceful stop runs to its end during the stop.
        #expect(try second.request("POST", "/hooks/later", body: #"{"n": 3}"#).status == 202)
        #expect(second.stop(seconds: 30) == 0, "\(second.output)")
        // Each ran once, and the kept entries are cleared: a third server runs nothing.
        let third = try Self.serve(dir, environment: environment)
        defer { third.stop() }
        usleep(3_000_000)
        let lines = ((try? String(contentsOfFile: dir + "/done", encoding: .utf8)) ?? "").split(separator: "\n")
        #expect(lines.sorted() == ["ran-1", "ran-2", "ran-3"], "\(lines)")
        #expect(!third.output.contains("running an accepted request again"), "\(third.output)")
        let kept = try DatabaseQueue(path: dir + "/store.db").read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM kv WHERE key LIKE 'inbox/%'") ?? -1
        }
        #expect(kept == 0, "the kept requests are cleared once run")
    }

    @Test("Accepted requests that no endpoint served will run (their flow was renamed) are reported, not run")
    func unservedAcceptedRequests() throws {
        let dir = try Self.setUp([:])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let flow = """
        flow:
          tasks:
            - http_endpoint: {name: hook, endpoint: /hooks/later, respond: accepted}
            - delay: {name: wait, duration: 5s}
            - shell: {name: note, shell: true, command: "echo ran >> \(dir)/done"}
        """
        try Self.write(dir, "later.yaml", flow)
        let environment = ["SLUICE_WORKERS_CLAIM_TTL": "1"]
        let first = try Self.serve(dir, environment: environment)
        #expect(try first.request("POST", "/hooks/later", body: "{}").status == 202)
        first.crash()
        // The flow's identity is its path: renamed, it is another flow.
        try FileManager.default.removeItem(atPath: dir + "/flows/later.yaml")
        try Self.write(dir, "renamed.yaml", flow)
        let second = try Self.serve(dir, environment: environment)
        defer { second.stop() }
        #expect(CLI.waitFor(seconds: 20) { second.output.contains("1 accepted webhook request(s) of flow 'later' (endpoint task 'hook')") },
                "\(second.output)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/done"))
    }

    @Test("Bytes that are not HTTP get a 400 JSON error; a silent connection is closed after first_request_timeout and does not hold up shutdown")
    func connectionGuard() throws {
        let dir = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.write(dir, "hello.yaml", Self.hook("hello", path: "/hooks/hello"))
        let server = try Self.serve(dir, environment: ["SLUICE_SERVER_FIRST_REQUEST_TIMEOUT": "2s"])
        func exchange(_ bytes: String) throws -> [UInt8] {
            let fd = try HTTPReply.connect(port: server.port, timeout: 20)
            defer { close(fd) }
            if !bytes.isEmpty { HTTPReply.write(fd, Array(bytes.utf8)) }
            var data: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n < 0 { throw ServeError("the connection was neither answered nor closed") }
                if n == 0 { return data }
                data += buffer[..<n]
            }
        }
        for garbage in ["GARBAGE\r\n\r\n", "POST /hooks/hello HTTP/1.1\r\nHost: x\r\nContent-Length: many\r\n\r\n"] {
            let reply = try HTTPReply.parse(try exchange(garbage), what: garbage)
            #expect(reply.status == 400)
            #expect(reply.header("connection") == "close")
            let error = try Value.parseJSON(reply.text)
            #expect(error["error"]?["code"]?.stringValue == "bad_request", "\(reply.text)")
        }
        // Nothing sent: the server closes the connection (recv returns 0 before the 20 s timeout).
        #expect(try exchange("") == [])
        // A valid request is still answered after all that.
        #expect(try server.request("POST", "/hooks/hello", body: #"{"name": "x"}"#).status == 200)

        #expect(server.stop() == 0)

        // A connection that stays silent (with a long timeout) does not keep the server from
        // stopping: it exits on SIGTERM while the connection is still open (stop() gives nil
        // when it had to SIGKILL).
        let server2 = try Self.serve(dir, environment: ["SLUICE_SERVER_FIRST_REQUEST_TIMEOUT": "10m"])
        let silent = try HTTPReply.connect(port: server2.port, timeout: 60)
        defer { close(silent) }
        usleep(300_000)
        #expect(server2.stop(seconds: 30) == 0, "\(server2.output)")
    }

    @Test("Cancelling through the API a durable run this server is executing stops it at once, not at its next heartbeat")
    func cancelStopsLocalRun() throws {
        let dir = try Self.setUp([:])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let marker = dir + "/after-ran"
        try Self.write(dir, "jobs/long.yaml", """
        flow:
          name: long
          tasks:
            - delay: {name: wait, duration: 2s}
            - shell: {name: after, shell: true, command: "echo ran > \(marker)"}
        """)
        // A claim of two minutes: the heartbeat that would notice the cancel comes after 40 s.
        let server = try Self.serve(dir, environment: ["SLUICE_WORKERS_CLAIM_TTL": "120"])
        defer { server.stop() }
        let (status, started) = try server.json("POST", "/api/v1/runs", body: #"{"flow": "jobs/long"}"#)
        #expect(status == 202)
        let id = started["run"]?["id"]?.stringValue ?? ""
        #expect(CLI.waitFor(seconds: 20) { (try? server.json("GET", "/api/v1/runs/\(id)"))?.1["status"] == "running" })
        let (cancelStatus, cancelled) = try server.json("POST", "/api/v1/runs/\(id)/cancel", body: #"{"reason": "not today"}"#)
        #expect(cancelStatus == 200, "\(cancelled)")
        // The delay would have ended after 2 s and the next task run; stopped, it never does.
        usleep(4_000_000)
        #expect(!FileManager.default.fileExists(atPath: marker), "the cancelled run went on to its next task")
        let (_, shown) = try server.json("GET", "/api/v1/runs/\(id)")
        #expect(shown["status"] == "cancelled")
        #expect(shown["error"] == "not today", "\(shown)")
    }

    @Test("The API: flows, validation, runs started, listed, shown, retried and cancelled; tasks; health; metrics; JSON errors")
    func api() throws {
        let dir = try Self.setUp([
            "greet.yaml": Self.hook("greet", path: "/hooks/greet"),
            "jobs/nightly.yaml": """
            flow:
              name: nightly
              tasks:
                - script: {name: a, code: '#{x: event.data.n}'}
                - script: {name: b, code: 'if event.data.x > 1 { throw "too big" } #{y: event.data.x + 1}'}
            """,
            "broken.yaml": "flow:\n  tasks:\n    - nosuch: {name: a}\n",
        ])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try Self.serve(dir)
        defer { server.stop() }

        let (listStatus, list) = try server.json("GET", "/api/v1/flows")
        #expect(listStatus == 200)
        let flows = list["flows"]?.arrayValue ?? []
        #expect(flows.compactMap { $0["id"]?.stringValue } == ["broken", "greet", "jobs/nightly"])
        #expect(flows.first?["status"] == "invalid")
        #expect(flows.first?["errors"]?[0]?.stringValue?.contains("3:7") == true, "\(flows)")

        let (_, nightly) = try server.json("GET", "/api/v1/flows/jobs%2Fnightly")
        #expect(nightly["kind"] == "workflow")
        #expect(nightly["graph"]?["tasks"]?[1]?["depends_on"] == ["a"])

        let (_, valid) = try server.json("POST", "/api/v1/flows/validate", body: "flow:\n  tasks:\n    - log: {name: a}\n")
        #expect(valid["valid"] == true)
        let (_, invalid) = try server.json("POST", "/api/v1/flows/validate", body: "flow:\n  tasks:\n    - log: {name: a, colour: red}\n")
        #expect(invalid["valid"] == false)
        #expect(invalid["errors"]?[0]?["line"] == 3, "\(invalid)")

        // Start and wait; start without waiting; a failing run.
        let (okStatus, ok) = try server.json("POST", "/api/v1/runs", body: #"{"flow": "jobs/nightly", "input": {"n": 1}, "wait": true}"#)
        #expect(okStatus == 200)
        #expect(ok["run"]?["status"] == "completed")
        #expect(ok["result"] == ["y": 2])
        let (queuedStatus, queued) = try server.json("POST", "/api/v1/runs", body: #"{"flow": "jobs/nightly", "input": {"n": 5}}"#)
        #expect(queuedStatus == 202)
        let failedID = queued["run"]?["id"]?.stringValue ?? ""
        var failed: Value = .null
        #expect(CLI.waitFor(seconds: 20) {
            failed = (try? server.json("GET", "/api/v1/runs/\(failedID)"))?.1 ?? .null
            return failed["status"] == "failed"
        }, "\(failed)")
        let tasks = failed["tasks"]?.arrayValue ?? []
        #expect(tasks.map { $0["name"] } == ["a", "b"])
        #expect(tasks.last?["status"] == "failed")
        #expect(tasks.last?["error"]?.stringValue?.contains("too big") == true)
        let (_, events) = try server.json("GET", "/api/v1/runs/\(failedID)/events")
        #expect((events["events"]?.arrayValue?.count ?? 0) > 2)
        let (retryStatus, retried) = try server.json("POST", "/api/v1/runs/\(failedID)/retry", body: #"{"from": "a"}"#)
        #expect(retryStatus == 202)
        #expect(retried["run"]?["trigger"] == "retry")
        let (cancelStatus, cancelEnded) = try server.json("POST", "/api/v1/runs/\((ok["run"]?["id"]?.stringValue) ?? "")/cancel")
        #expect(cancelStatus == 409, "cancelling an ended run: \(cancelEnded)")

        let (_, stream) = try server.json("POST", "/api/v1/runs", body: #"{"flow": "greet"}"#)
        #expect(stream["error"]?["code"] == "flow_is_stream")
        let (missingStatus, missing) = try server.json("GET", "/api/v1/runs/nope")
        #expect(missingStatus == 404)
        #expect(missing["error"]?["code"] == "not_found")
        let (badStatus, bad) = try server.json("POST", "/api/v1/runs", body: "{nope")
        #expect(badStatus == 400)
        #expect(bad["error"]?["code"] == "invalid_json")
        #expect(try server.json("DELETE", "/api/v1/flows").0 == 405)
        #expect(try server.json("GET", "/api/v1/runs?limit=0").0 == 400)
        #expect(try server.json("GET", "/api/v1/runs?status=sleeping").0 == 400)

        // A webhook run is listed and shown from memory.
        let hook = try server.request("POST", "/hooks/greet", headers: ["Content-Type": "application/json"], body: #"{"name": "bo"}"#)
        let hookRun = hook.header("Sluice-Run-Id") ?? ""
        let (_, shown) = try server.json("GET", "/api/v1/runs/\(hookRun)")
        #expect(shown["durable"] == false)
        #expect(shown["status"] == "completed")
        #expect(shown["tasks"]?.arrayValue?.compactMap { $0["name"]?.stringValue } == ["reply"])

        let (_, catalog) = try server.json("GET", "/api/v1/tasks")
        #expect(catalog["tasks"]?.arrayValue?.contains { $0["name"] == "http_endpoint" } == true)
        #expect(try server.json("GET", "/api/v1/tasks/script").1["kind"] == "processor")
        let (_, hooks) = try server.json("GET", "/api/v1/webhooks")
        #expect(hooks["webhooks"]?[0]?["path"] == "/hooks/greet")

        #expect(try server.json("GET", "/health/live").0 == 200)
        let (readyStatus, ready) = try server.json("GET", "/health/ready")
        #expect(readyStatus == 200)
        #expect(ready["flow_errors"]?["broken"] != nil)
        let metrics = try server.request("GET", "/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.text.contains("sluice_runs_started_total{flow=\"greet\"} 1"), "\(metrics.text)")
        #expect(metrics.text.contains("sluice_webhook_request_duration_seconds_count{path=\"/hooks/greet\",status=\"200\"} 1"))
        #expect(metrics.text.contains("sluice_task_duration_seconds_bucket{flow=\"jobs/nightly\",task=\"a\""))
        #expect(metrics.text.contains("sluice_queue_depth "))
        let (openapiStatus, openapi) = try server.json("GET", "/api/v1/openapi.json")
        #expect(openapiStatus == 200)
        #expect(openapi["openapi"]?.stringValue?.hasPrefix("3.") == true)
        let page = try server.request("GET", "/")
        #expect(page.status == 200)
        #expect(page.header("Content-Type")?.hasPrefix("text/html") == true)
    }

    @Test("In-memory runs beyond events.recent_runs are dropped oldest first; the metrics still count every run and task")
    func recentRunsAndMetrics() throws {
        let ctx = "#{greeting: \"hi \" + event.data.name, flow: ctx.flow, run: ctx.run_id}"
        let slow = """
            flow:
              name: slow
              tasks:
                - http_endpoint: {name: hook, endpoint: /hooks/slow, respond: accepted}
                - delay: {name: first, duration: 10ms}
                - delay: {name: wait, duration: 2s}
            """
        let dir = try Self.setUp(["greet.yaml": Self.hook("greet", path: "/hooks/greet"), "ctx.yaml": Self.hook("ctx", path: "/hooks/ctx", code: ctx),
                                  "slow.yaml": slow])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try Self.serve(dir, environment: ["SLUICE_EVENTS_RECENT_RUNS": "5", "SLUICE_SHUTDOWN_GRACE_PERIOD": "1s"])
        defer { server.stop() }
        var ids: [String] = []
        for i in 0..<12 {
            let reply = try server.request("POST", "/hooks/greet", headers: ["Content-Type": "application/json"], body: #"{"name": "n\#(i)"}"#)
            #expect(reply.status == 200, "\(reply.text)")
            ids.append(reply.header("Sluice-Run-Id") ?? "")
        }
        // A script that names ctx sees it; one that does not still runs (it gets no ctx built).
        let withContext = try server.request("POST", "/hooks/ctx", headers: ["Content-Type": "application/json"], body: #"{"name": "c"}"#)
        #expect(withContext.text.contains(#""flow":"ctx""#), "\(withContext.text)")
        #expect(withContext.text.contains(#""run":"\#(withContext.header("Sluice-Run-Id") ?? "-")""#), "\(withContext.text)")

        let (_, listed) = try server.json("GET", "/api/v1/runs?flow=greet&limit=100")
        let kept = listed["runs"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []
        #expect(kept.count >= 4 && kept.count <= 5, "\(kept)")
        #expect(kept.first == ids.last, "newest first: \(kept)")
        #expect(try server.json("GET", "/api/v1/runs/\(ids[0])").0 == 404, "the oldest run was dropped")
        let (_, events) = try server.json("GET", "/api/v1/runs/\(ids[11])/events")
        #expect(events["events"]?.arrayValue?.compactMap { $0["type"]?.stringValue }
            == ["run_started", "task_started", "task_completed", "run_completed"])

        let metrics = try server.request("GET", "/metrics").text
        #expect(metrics.contains(#"sluice_runs_started_total{flow="greet"} 12"#), "\(metrics)")
        #expect(metrics.contains(#"sluice_runs_finished_total{flow="greet",status="completed"} 12"#), "\(metrics)")
        #expect(metrics.contains(#"sluice_events_out_total{flow="greet"} 12"#), "\(metrics)")
        #expect(metrics.contains(#"sluice_task_duration_seconds_count{flow="greet",task="reply"} 12"#), "\(metrics)")
        #expect(metrics.contains(#"sluice_runs_started_total{flow="ctx"} 1"#), "\(metrics)")

        // A run still going is counted when the metrics are read, and counted once.
        #expect(try server.request("POST", "/hooks/slow", body: "{}").status == 202)
        var slowMetrics = ""
        for _ in 0..<100 where !slowMetrics.contains(#"sluice_task_duration_seconds_count{flow="slow",task="first"} 1"#) {
            usleep(50_000)
            slowMetrics = try server.request("GET", "/metrics").text
        }
        #expect(slowMetrics.contains(#"sluice_runs_started_total{flow="slow"} 1"#), "\(slowMetrics)")
        #expect(slowMetrics.contains(#"sluice_task_duration_seconds_count{flow="slow",task="first"} 1"#), "\(slowMetrics)")
        #expect(!slowMetrics.contains(#"sluice_runs_finished_total{flow="slow""#), "\(slowMetrics)")
        let again = try server.request("GET", "/metrics").text
        #expect(again.contains(#"sluice_runs_started_total{flow="slow"} 1"#), "\(again)")
    }

    @Test("Live events stream over SSE, filtered by flow")
    func serverSentEvents() throws {
        let dir = try Self.setUp(["greet.yaml": Self.hook("greet", path: "/hooks/greet"), "other.yaml": Self.hook("other", path: "/hooks/other")])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A short first-request timeout: a WebSocket that only listens must outlive it.
        let server = try Self.serve(dir, environment: ["SLUICE_SERVER_FIRST_REQUEST_TIMEOUT": "1s"])
        defer { server.stop() }
        let fd = try HTTPReply.connect(port: server.port, timeout: 10)
        defer { close(fd) }
        HTTPReply.write(fd, Array("GET /api/v1/events/stream?flow=greet HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        usleep(300_000)
        _ = try server.request("POST", "/hooks/other", body: #"{"name": "x"}"#)
        _ = try server.request("POST", "/hooks/greet", body: #"{"name": "y"}"#)
        var received = ""
        var buffer = [UInt8](repeating: 0, count: 8192)
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline, !received.contains("run_completed") {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            received += String(decoding: buffer[..<n], as: UTF8.self)
        }
        #expect(received.contains("text/event-stream"))
        #expect(received.contains("event: run_started"))
        #expect(received.contains("event: run_completed"))
        #expect(received.contains(#""flow":"greet""#))
        #expect(!received.contains(#""flow":"other""#))
    }

    @Test("Live events over a WebSocket: the handshake, then one JSON text message per event of the flow")
    func webSocket() throws {
        let dir = try Self.setUp(["greet.yaml": Self.hook("greet", path: "/hooks/greet"), "other.yaml": Self.hook("other", path: "/hooks/other")])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A short first-request timeout: a WebSocket that only listens must outlive it.
        let server = try Self.serve(dir, environment: ["SLUICE_SERVER_FIRST_REQUEST_TIMEOUT": "1s"])
        defer { server.stop() }
        let fd = try HTTPReply.connect(port: server.port, timeout: 10)
        defer { close(fd) }
        // The key and accept value are RFC 6455's example.
        HTTPReply.write(fd, Array(("GET /api/v1/events/ws?flow=greet HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").utf8))
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 8192)
        func read() -> Bool {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { bytes += buffer[..<n] }
            return n > 0
        }
        while bytes.firstRange(of: Array("\r\n\r\n".utf8)) == nil, read() {}
        guard let headEnd = bytes.firstRange(of: Array("\r\n\r\n".utf8)) else {
            Issue.record("no handshake answer")
            return
        }
        let head = String(decoding: bytes[..<headEnd.lowerBound], as: UTF8.self)
        #expect(head.hasPrefix("HTTP/1.1 101"), "\(head)")
        #expect(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="))
        bytes.removeSubrange(..<headEnd.upperBound)
        usleep(2_000_000)
        _ = try server.request("POST", "/hooks/other", body: #"{"name": "x"}"#)
        _ = try server.request("POST", "/hooks/greet", body: #"{"name": "y"}"#)
        // Unmasked server frames: FIN+opcode, length (7 bits, or 126 + 16 bits), payload.
        var messages: [Value] = []
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline, !messages.contains(where: { $0["type"] == "run_completed" }) {
            if bytes.count >= 2 {
                let opcode = bytes[0] & 0x0f
                var length = Int(bytes[1] & 0x7f), offset = 2
                if length == 126, bytes.count >= 4 { length = Int(bytes[2]) << 8 | Int(bytes[3]); offset = 4 }
                if bytes.count >= offset + length {
                    #expect(opcode == 1, "a text frame")
                    messages.append(try Value.parseJSON(bytes: Array(bytes[offset..<(offset + length)])))
                    bytes.removeSubrange(..<(offset + length))
                    continue
                }
            }
            if !read() { break }
        }
        #expect(messages.first?["type"] == "run_started")
        #expect(messages.contains { $0["type"] == "run_completed" })
        #expect(messages.allSatisfy { $0["flow"] == "greet" }, "\(messages)")
    }

    @Test("API token: required on /api/v1 when set; refused to serve beyond loopback without one; sluice.yaml errors name the line")
    func tokenAndConfig() throws {
        let dir = try Self.setUp(["greet.yaml": Self.hook("greet", path: "/hooks/greet")])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "server:\n  api_token: t0ken\n".write(toFile: dir + "/sluice.yaml", atomically: true, encoding: .utf8)
        let server = try Self.serve(dir)
        defer { server.stop() }
        let denied = try server.request("GET", "/api/v1/flows")
        #expect(denied.status == 401)
        #expect(try Value.parseJSON(denied.text)["error"]?["code"] == "unauthorized")
        #expect(try server.request("GET", "/api/v1/flows", headers: ["Authorization": "Bearer t0ken"]).status == 200)
        #expect(try server.request("GET", "/health/live").status == 200)
        // The environment overrides the file.
        let other = try Self.serve(dir, environment: ["SLUICE_SERVER_API_TOKEN": "from-env"])
        defer { other.stop() }
        #expect(try other.request("GET", "/api/v1/flows", headers: ["Authorization": "Bearer from-env"]).status == 200)
        #expect(try other.request("GET", "/api/v1/flows", headers: ["Authorization": "Bearer t0ken"]).status == 401)

        let open = try CLI.run(["serve", dir + "/flows", "--host", "0.0.0.0", "--port", "0", "--store", "memory"])
        #expect(open.status == 2)
        #expect(open.stderr.contains("needs an API token"), "\(open.stderr)")
        let config = try CLI.temp("bad-sluice.yaml", "flows: x\nserver:\n  prot: 80\nlog:\n  format: xml\n")
        let bad = try CLI.run(["serve", "--config", config, "--store", "memory"])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("bad-sluice.yaml:3:3"), "\(bad.stderr)")
        #expect(bad.stderr.contains("did you mean 'port'"))
        #expect(bad.stderr.contains("bad-sluice.yaml:5:11"))
    }
}

/// A value handed from a thread to the test.
final class ReplyBox: @unchecked Sendable {
    private let lock = NSLock()
    private var reply: HTTPReply?
    func set(_ r: HTTPReply?) { lock.lock(); reply = r; lock.unlock() }
    func get() -> HTTPReply? { lock.lock(); defer { lock.unlock() }; return reply }
}
