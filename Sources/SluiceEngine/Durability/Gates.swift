import Foundation
import SluiceCore

/// Approval and signal gates. A gate suspends its run: the run's record says
/// `waiting_approval` or `waiting_signal`, it leaves the queue, and no process holds anything
/// for it. The gate itself is an entry in the store's system bucket (`gate/<run>/<task>`);
/// a decision or a signal changes it with compare-and-set (so exactly one wins), goes to the
/// audit log, and queues the run again, to be resumed from its checkpoints by any process.
/// A signal token maps to its gate through `signal/<token>`.
public struct Gates: Sendable {
    public enum Kind: String, Sendable { case approval, signal }

    public let store: any Store
    public let now: @Sendable () -> Date

    public init(store: any Store, now: @escaping @Sendable () -> Date = { Date() }) {
        self.store = store
        self.now = now
    }

    /// How long a finished run's gates and token links are kept (7 days): a late decision or
    /// signal is still refused with its reason, and `runs show` lists them; then they expire
    /// and a process's start-up purge deletes them.
    public static let retention: Double = 7 * 86_400

    static func key(run: String, task: String) -> String { "gate/\(run)/\(task)" }
    static func tokenKey(_ token: String) -> String { "signal/\(token)" }

    /// A token nobody can guess: 128 random bits, hex.
    static func newToken() -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<2).map { _ in { let h = String(g.next() as UInt64, radix: 16); return String(repeating: "0", count: 16 - h.count) + h }() }.joined()
    }

    /// The gates of a run (every gate when `run` is nil), oldest first.
    public func gates(run: String? = nil) async throws -> [Value] {
        try await store.list(.system, prefix: run.map { "gate/\($0)/" } ?? "gate/", now: now()).map(\.value)
            .sorted { ($0["created"]?.doubleValue ?? 0) < ($1["created"]?.doubleValue ?? 0) }
    }

    /// The gate's task as people name it: `task`, or `task@i` for one item of a scatter (a
    /// script's gate is stored as `task#gate`).
    public static func gateName(_ gate: Value) -> String {
        let stored = gate["task"]?.textValue ?? ""
        return stored.hasSuffix("#gate") ? String(stored.dropLast(5)) : stored
    }

    /// The tasks (`task` or `task@i`) parked at a pending gate among `gates`: their last attempt
    /// is not running, it waits.
    public static func waiting(_ gates: [Value]) -> Set<String> {
        Set(gates.filter { $0["status"] == "pending" }.map(gateName))
    }

    /// The command that approves gate `gate` (the gate's item key) of a run.
    static func approveHint(run: String, gate: String) -> String {
        let name = gateName(["task": .string(gate)])
        return "sluice approve \(run)" + (name.contains("@") ? " --task \(name)" : "")
    }

    /// Approves or rejects the run's pending approval gate. `task` picks one when the run waits
    /// at several: `NAME@i` names one item of a scatter, `NAME` every item of that task. When
    /// more than one pending gate matches, nothing is decided and the error lists them.
    @discardableResult
    public func decide(run runID: String, task: String? = nil, approve: Bool, actor: String, comment: String?) async throws -> Value {
        let matching = try await store.list(.system, prefix: "gate/\(runID)/", now: now()).filter { entry in
            guard entry.value["kind"] == "approval" else { return false }
            guard let task else { return true }
            let name = Self.gateName(entry.value)
            return name == task || name.hasPrefix(task + "@")
        }
        let pending = matching.filter { $0.value["status"] == "pending" }
        if pending.count > 1 {
            let names = pending.map { Self.gateName($0.value) }.sorted { $0.utf8.count != $1.utf8.count ? $0.utf8.count < $1.utf8.count : $0 < $1 }
            throw GateError("run \(runID) waits at \(pending.count) approval gates (\(names.joined(separator: ", "))): "
                            + "name one with --task, such as --task \(names[0])")
        }
        guard let entry = pending.first ?? matching.last else {
            guard try await store.run(id: runID) != nil else { throw GateError("no run '\(runID)'") }
            throw GateError("run \(runID) is not waiting for an approval" + (task.map { " at task '\($0)'" } ?? ""))
        }
        guard entry.value["status"] == "pending" else { throw GateError(Self.alreadyDecided(entry.value)) }
        var gate = entry.value
        gate["status"] = .string(approve ? "approved" : "rejected")
        gate["decided_by"] = .string(actor)
        gate["decided_at"] = .double(now().timeIntervalSince1970)
        gate["comment"] = comment.map(Value.string) ?? .null
        guard try await store.compareAndSet(.system, entry.key, gate, revision: entry.revision, ttl: nil, now: now()) != nil else {
            let current = try await store.get(.system, entry.key, now: now())?.value ?? gate
            throw GateError(Self.alreadyDecided(current))
        }
        try await requeue(runID, audit: AuditEntry(time: now(), actor: actor, action: approve ? "gate.approved" : "gate.rejected",
                                                   target: runID, detail: ["task": gate["task"] ?? .null, "comment": gate["comment"] ?? .null]))
        return gate
    }

    /// Delivers a signal: the payload becomes the gate task's output.
    @discardableResult
    public func signal(token: String, payload: Value, actor: String) async throws -> Value {
        guard let link = try await store.get(.system, Self.tokenKey(token), now: now()), case .string(let gateKey)? = link.value["gate"],
              let entry = try await store.get(.system, gateKey, now: now()) else {
            throw GateError("no signal gate is waiting for token '\(token)'")
        }
        if let current = entry.value["token"]?.stringValue, current != token {
            throw GateError("token '\(token)' arrived too late: its gate timed out and now waits for a new token")
        }
        guard entry.value["status"] == "pending" else {
            if entry.value["status"] == "closed" {
                throw GateError("token '\(token)' can no longer be used: \(entry.value["comment"]?.textValue ?? "its run ended")")
            }
            if entry.value["status"] == "timed_out" || entry.value["status"] == "retrying" {
                throw GateError("token '\(token)' arrived too late: its gate timed out at \(Self.time(entry.value["decided_at"]))")
            }
            throw GateError("token '\(token)' was already used (\(entry.value["status"]?.textValue ?? "") at \(Self.time(entry.value["decided_at"])))")
        }
        if let deadline = entry.value["deadline"]?.doubleValue, now().timeIntervalSince1970 >= deadline {
            throw GateError("token '\(token)' arrived too late: its gate timed out at \(Self.time(.double(deadline)))")
        }
        var gate = entry.value
        gate["status"] = "signalled"
        gate["decided_by"] = .string(actor)
        gate["decided_at"] = .double(now().timeIntervalSince1970)
        gate["payload"] = payload
        guard try await store.compareAndSet(.system, gateKey, gate, revision: entry.revision, ttl: nil, now: now()) != nil else {
            throw GateError("token '\(token)' was already used")
        }
        let runID = gate["run"]?.stringValue ?? ""
        try await requeue(runID, audit: AuditEntry(time: now(), actor: actor, action: "gate.signalled", target: runID,
                                                   detail: ["task": gate["task"] ?? .null, "token": .string(token)]))
        return gate
    }

    /// A run ended (completed, failed or cancelled): its gates still pending are closed, and
    /// they and their token links expire after `retention`.
    public func retire(run runID: String, ending: RunStatus) async throws {
        let t = now()
        for entry in try await store.list(.system, prefix: "gate/\(runID)/", now: t) {
            var gate = entry.value
            if gate["status"] == "pending", let deadline = gate["deadline"]?.doubleValue, deadline <= t.timeIntervalSince1970 {
                // Its on_timeout ended it (the run resumed after the deadline): say so.
                gate["status"] = "timed_out"
                gate["decided_at"] = .double(deadline)
            } else if gate["status"] == "pending" || gate["status"] == "retrying" {
                gate["status"] = "closed"
                gate["decided_at"] = .double(t.timeIntervalSince1970)
                gate["comment"] = .string("the run ended (\(ending)) before a decision")
            }
            _ = try await store.compareAndSet(.system, entry.key, gate, revision: entry.revision, ttl: Self.retention, now: t)
            if let token = gate["token"]?.stringValue { try await expireLink(token, of: entry.key, now: t) }
        }
    }

    /// Gives the link of `token` to `gateKey` the retention TTL (a link another gate took is left alone).
    func expireLink(_ token: String, of gateKey: String, now t: Date) async throws {
        guard let link = try await store.get(.system, Self.tokenKey(token), now: t), link.value["gate"]?.stringValue == gateKey else { return }
        _ = try await store.compareAndSet(.system, link.key, link.value, revision: link.revision, ttl: Self.retention, now: t)
    }

    /// Gates whose deadline passed while their run waited: marked timed out (their `on_timeout`
    /// applies when the run resumes) and their runs queued again. Answers those runs.
    public func wakeExpired() async throws -> [String] {
        var woken: [String] = []
        let t = now().timeIntervalSince1970
        for entry in try await store.list(.system, prefix: "gate/", now: now()) where entry.value["status"] == "pending" {
            guard let deadline = entry.value["deadline"]?.doubleValue, deadline <= t else { continue }
            var gate = entry.value
            gate["status"] = "timed_out"
            gate["decided_at"] = .double(t)
            guard try await store.compareAndSet(.system, entry.key, gate, revision: entry.revision, ttl: nil, now: now()) != nil,
                  let runID = gate["run"]?.stringValue else { continue }
            try await requeue(runID, audit: AuditEntry(time: now(), actor: "sluice", action: "gate.timed_out", target: runID,
                                                       detail: ["task": gate["task"] ?? .null]))
            woken.append(runID)
        }
        return woken
    }

    private func requeue(_ runID: String, audit: AuditEntry) async throws {
        guard var record = try await store.run(id: runID) else { throw GateError("no run '\(runID)'") }
        var batch = StoreBatch()
        if record.status.isWaiting {
            record.status = .queued
            record.error = nil
            batch.runs = [record]
        }
        batch.audit = [audit]
        batch.events = [.init(runID: runID, event: ["type": .string(audit.action), "run": .string(runID), "by": .string(audit.actor),
                                                     "time": .string(EngineEvent.iso8601(audit.time))])]
        try await store.commit(batch)
        try await store.enqueue(runID: runID, now: now())
    }

    static func alreadyDecided(_ gate: Value) -> String {
        let status = gate["status"]?.textValue ?? "decided"
        if status == "timed_out" { return "the gate timed out at \(time(gate["decided_at"])); it can no longer be decided" }
        if status == "closed" { return "\(gate["comment"]?.textValue ?? "the run ended"); the gate can no longer be decided" }
        return "already \(status) by \(gate["decided_by"]?.textValue ?? "someone") at \(time(gate["decided_at"]))"
    }

    static func time(_ v: Value?) -> String {
        v?.doubleValue.map { EngineEvent.iso8601(Date(timeIntervalSince1970: $0)) } ?? "?"
    }
}

/// A gate operation that cannot be done, with the reason.
public struct GateError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Thrown by a gate that must wait: the run suspends instead of failing.
struct GateSuspended: Error {
    let status: RunStatus
    let message: String
}

/// What a gate waits for, from an `approval` / `signal` task's config or a script's
/// `#{wait_for_approval: #{...}}` / `#{wait_for_signal: #{...}}` return value.
struct GateRequest: Sendable {
    var kind: Gates.Kind
    var message: String
    var context: Value?
    var token: String?
    var timeout: Duration?
    var onTimeout: String
    /// With `on_timeout: retry`: waits in all, the first included.
    var maxWaits = GateRequest.defaultMaxWaits

    static let defaultMaxWaits = 3

    init(kind: Gates.Kind, config c: Value.Object) throws(TaskError) {
        self.kind = kind
        message = c["message"]?.textValue ?? (kind == .approval ? "approval needed" : "waiting for a signal")
        context = c["context"]
        token = c["token"].flatMap { $0.isNull ? nil : $0.textValue }
        if let t = c["timeout"], !t.isNull {
            guard let text = t.stringValue, let d = Duration(parsing: text), d > .zero else {
                throw TaskError.invalidConfig("'timeout' must be a positive duration such as 1h or 30m")
            }
            timeout = d
        }
        let allowed = kind == .approval ? ["reject", "approve", "fail"] : ["fail", "continue", "retry"]
        onTimeout = c["on_timeout"]?.stringValue ?? (kind == .approval ? "reject" : "fail")
        guard allowed.contains(onTimeout) else {
            throw TaskError.invalidConfig("'on_timeout' must be one of \(allowed.joined(separator: ", ")), got '\(onTimeout)'")
        }
        if let m = c["max_wait_attempts"], !m.isNull {
            guard let n = m.intValue, n >= 1 else { throw TaskError.invalidConfig("'max_wait_attempts' must be a whole number of at least 1") }
            maxWaits = Int(n)
        }
    }

    /// A script's wait request in its output, if it returned one.
    static func from(output: TaskOutput) throws(TaskError) -> GateRequest? {
        guard case .one(let e) = output.storage, case .object(let o) = e.data, o.count == 1 else { return nil }
        if case .object(let c)? = o["wait_for_approval"] { return try GateRequest(kind: .approval, config: c) }
        if case .object(let c)? = o["wait_for_signal"] { return try GateRequest(kind: .signal, config: c) }
        return nil
    }

    /// Passes the gate when it was decided (approved, signalled, timed out with a passing
    /// `on_timeout`), fails the task when it was rejected or timed out otherwise, and throws
    /// `GateSuspended` while it waits (creating it the first time). `upstream`: the checkpoint
    /// keys that `on_timeout: retry` runs again (the tasks feeding the gate, for this item).
    func pass(run: RunState, key: String, task: String, input: Event, upstream: [String] = [], clock: any EngineClock) async throws -> TaskOutput {
        guard let durable = run.durable else {
            throw TaskError.permanent("\(kind.rawValue) gates suspend a durable run: run the flow with a store (not --store memory, not a stream)")
        }
        let store = durable.writer.store
        let gateKey = Gates.key(run: run.id, task: key)
        let now = clock.now()
        guard let entry = try await store.get(.system, gateKey, now: now) else {
            try await open(run: run, key: key, task: task, input: input, wait: 1, replacing: nil, store: store, now: now)
        }
        let gate = entry.value
        if gate["status"] == "retrying" {
            // The upstream task ran again: wait anew, with a new token.
            try await open(run: run, key: key, task: task, input: input, wait: gate["wait"]?.intValue.map(Int.init) ?? 1,
                           replacing: entry.revision, replaced: gate, store: store, now: now)
        }
        var status = gate["status"]?.stringValue ?? "pending"
        if status == "pending", let deadline = gate["deadline"]?.doubleValue, now.timeIntervalSince1970 >= deadline { status = "timed_out" }
        switch status {
        case "approved":
            var out = input
            out.data = gate["context"] ?? input.data
            out.meta["approval"] = ["by": gate["decided_by"] ?? .null, "comment": gate["comment"] ?? .null,
                                    "at": .string(Gates.time(gate["decided_at"]))]
            return .event(out)
        case "rejected":
            let reason = gate["comment"].flatMap { $0.isNull ? nil : $0.textValue }
            throw TaskError.permanent("rejected by \(gate["decided_by"]?.textValue ?? "someone")" + (reason.map { ": \($0)" } ?? ""))
        case "signalled":
            return .event(input.with(data: gate["payload"] ?? .null))
        case "timed_out":
            switch gate["on_timeout"]?.stringValue ?? onTimeout {
            case "approve": return .event(input.with(data: gate["context"] ?? input.data))
            case "continue": return .event(input.with(data: .null))
            case "retry": try await retry(entry, run: run, key: key, upstream: upstream, store: store, now: now)
            case "reject": throw TaskError.permanent("rejected: no decision before the gate timed out")
            default: throw TaskError.permanent("the \(kind.rawValue) gate timed out")
            }
        default:
            let hint = kind == .approval ? Gates.approveHint(run: run.id, gate: key)
                : "sluice signal \(gate["token"]?.textValue ?? "") --payload JSON"
            throw GateSuspended(status: kind == .approval ? .waitingApproval : .waitingSignal,
                                message: "task '\(task)' waits for \(kind == .approval ? "approval" : "a signal"): \(message); \(hint)")
        }
    }
}

extension GateRequest {
    /// Creates the gate (wait number `wait`; over the entry at `replacing` for a retry) and
    /// suspends the run at it.
    private func open(run: RunState, key: String, task: String, input: Event, wait: Int, replacing revision: Int64?,
                      replaced: Value? = nil, store: any Store, now: Date) async throws -> Never {
        let gateKey = Gates.key(run: run.id, task: key)
        var gate: Value.Object = ["kind": .string(kind.rawValue), "status": "pending", "run": .string(run.id), "task": .string(key),
                                  "message": .string(message), "context": context ?? input.data, "created": .double(now.timeIntervalSince1970),
                                  "on_timeout": .string(onTimeout)]
        if let timeout { gate["deadline"] = .double(now.timeIntervalSince1970 + timeout.seconds) }
        if onTimeout == "retry" {
            gate["wait"] = .int(Int64(wait))
            gate["max_wait_attempts"] = .int(Int64(maxWaits))
        }
        var hint = Gates.approveHint(run: run.id, gate: key)
        if kind == .signal {
            let token = self.token ?? Gates.newToken()
            // The previous wait's token now only answers "too late", for as long as finished gates are kept.
            if revision != nil, let previous = replaced?["token"]?.stringValue, previous != token {
                try await Gates(store: store, now: { now }).expireLink(previous, of: gateKey, now: now)
            }
            // A configured token waits again under the same name: its link moves to the new wait.
            if revision != nil, let link = try await store.get(.system, Gates.tokenKey(token), now: now), link.value["gate"]?.stringValue == gateKey {
                try await store.delete(.system, Gates.tokenKey(token), now: now)
            }
            guard try await store.create(.system, Gates.tokenKey(token), ["gate": .string(gateKey)], ttl: nil, now: now) != nil else {
                throw TaskError.permanent("signal token '\(token)' is already used by another gate")
            }
            gate["token"] = .string(token)
            hint = "sluice signal \(token) --payload JSON"
        }
        if let revision {
            guard try await store.compareAndSet(.system, gateKey, .object(gate), revision: revision, ttl: nil, now: now) != nil else {
                throw TaskError("the gate of task '\(task)' changed while it was opened again", retryable: true)
            }
        } else {
            _ = try await store.create(.system, gateKey, .object(gate), ttl: nil, now: now)
        }
        let waitNote = onTimeout == "retry" && wait > 1 ? " (wait \(wait) of \(maxWaits))" : ""
        throw GateSuspended(status: kind == .approval ? .waitingApproval : .waitingSignal,
                            message: "task '\(task)' waits for \(kind == .approval ? "approval" : "a signal")\(waitNote): \(message); \(hint)")
    }

    /// `on_timeout: retry`: unless this was the last wait, the upstream task's checkpoints are
    /// voided, the gate is marked for a new wait, and the run restarts from its checkpoints (so
    /// the upstream task runs again, then the gate waits for a new token).
    private func retry(_ entry: KVEntry, run: RunState, key: String, upstream: [String], store: any Store, now: Date) async throws -> Never {
        let gate = entry.value
        let wait = gate["wait"]?.intValue.map(Int.init) ?? 1
        let limit = gate["max_wait_attempts"]?.intValue.map(Int.init) ?? maxWaits
        guard wait < limit else {
            throw TaskError.permanent("no signal came before the gate timed out, \(wait) time\(wait == 1 ? "" : "s") "
                                      + "(on_timeout: retry, max_wait_attempts: \(limit)): giving up")
        }
        var next = gate
        next["status"] = "retrying"
        next["wait"] = .int(Int64(wait + 1))
        guard try await store.compareAndSet(.system, entry.key, next, revision: entry.revision, ttl: nil, now: now) != nil else {
            throw TaskError("the gate of '\(key)' changed while it was retried", retryable: true)
        }
        try await run.durable?.void(upstream, reason: "signal gate '\(key)' timed out: run again (on_timeout: retry)")
        throw GateSuspended(status: .queued, message: "the signal gate of '\(key)' timed out (wait \(wait) of \(limit)): its upstream task runs again")
    }
}

/// The `approval` and `signal` task types.
struct GateTask: TaskProcessor {
    let kind: Gates.Kind
    /// The task's `timeout`: for a gate, how long to wait for the decision or the signal.
    let timeout: Duration?

    static let approvalSpec = TaskSpec(
        name: "approval",
        summary: "Suspends the run until someone approves (sluice approve RUN) or rejects it; the run holds nothing while it waits.",
        fields: [
            FieldSpec("message", .string, templated: true, summary: "What the approver is asked."),
            FieldSpec("context", .any, templated: true, summary: "What the approver sees and what the task emits once approved (default: its input)."),
            FieldSpec("on_timeout", .string, default: "reject", summary: "reject, approve or fail when the task's timeout passes with no decision (no timeout: wait forever)."),
        ],
        examples: [TaskExample("Large orders need a sign-off", yaml: """
            flow:
              name: orders
              tasks:
                - approval:
                    name: sign_off
                    message: "Order {{event.data.id}} is over 10,000"
                    timeout: 24h
                - log: {name: ship}
            """)]
    )

    static let signalSpec = TaskSpec(
        name: "signal",
        summary: "Suspends the run until an external signal carrying its token arrives (sluice signal TOKEN --payload JSON); the payload becomes the output.",
        fields: [
            FieldSpec("token", .string, templated: true, summary: "The token to wait for (default: a new unguessable one, shown in the run's events)."),
            FieldSpec("message", .string, templated: true, summary: "What is being waited for."),
            FieldSpec("on_timeout", .string, default: "fail",
                      summary: "fail, continue with null output, or retry (run the task feeding the gate again, then wait for a new token) when the task's timeout passes with no signal (no timeout: wait forever)."),
            FieldSpec("max_wait_attempts", .integer, default: 3,
                      summary: "With on_timeout: retry, how many times in all the gate waits (the first included) before the task fails."),
        ],
        examples: [TaskExample("Wait for a batch job's callback", yaml: """
            flow:
              name: export
              tasks:
                - shell: {name: submit, command: "echo job-42"}
                - signal:
                    name: done
                    token: "{{event.data.stdout}}"
                    timeout: 1h
                - log: {name: report}
            """)]
    )

    func process(_ event: Event, _ context: TaskContext) async throws -> TaskOutput {
        guard let run = context.run else { throw TaskError.permanent("a gate needs a run") }
        var request = try GateRequest(kind: kind, config: context.config)
        if request.timeout == nil { request.timeout = timeout }
        // Keyed by the item: inside a scatter every element waits at a gate of its own.
        let key = context.item.isEmpty ? context.taskName : context.item
        // The same item of each task feeding this one (`name@i` when this is `task@i`).
        let item = key.firstIndex(of: "@").map { String(key[$0...]) } ?? ""
        return try await request.pass(run: run, key: key, task: context.taskName, input: event,
                                      upstream: context.parents.map { $0 + item }, clock: context.clock)
    }
}
