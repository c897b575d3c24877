import Foundation
import SluiceCore
import Synchronization

/// What a run needs to be durable: its id in the store, what an earlier process already did
/// (checkpoints and attempt counts, on resume), and the claim its writes are fenced by.
final class DurableRun: Sendable {
    let id: String
    let writer: StoreWriter
    let checkpoints: [String: Value]
    /// Attempts already made per checkpoint key (an interrupted one included).
    let priorAttempts: [String: Int]
    let fence: Lease?
    /// Set when a write failed: the run stops, and stays resumable.
    let lost = Mutex<String?>(nil)

    init(id: String, writer: StoreWriter, checkpoints: [String: Value] = [:], priorAttempts: [String: Int] = [:], fence: Lease?) {
        self.id = id
        self.writer = writer
        self.checkpoints = checkpoints
        self.priorAttempts = priorAttempts
        self.fence = fence
    }

    /// A write failed (the claim moved on, or the store is gone): the run stops here and stays
    /// resumable; the first reason is kept.
    func lose(_ error: any Error, run: RunState) {
        lost.withLock { $0 = $0 ?? "\(error)" }
        run.markCancelled()
    }

    /// The key of a task's output in one run: its name, plus its position in each scatter it is under.
    static func key(task: String, scatter: [ScatterFrame]) -> String {
        scatter.isEmpty ? task : task + "@" + scatter.map { String($0.index) }.joined(separator: ".")
    }

    func checkpointed(_ key: String) -> TaskOutput? {
        checkpoints[key].flatMap(TaskOutput.init(checkpoint:))
    }

    func attemptStarted(_ key: String, attempt: Int, at time: Date) {
        writer.post(StoreBatch(attempts: [TaskAttempt(runID: id, task: key, attempt: attempt, status: .running, started: time)],
                               fence: fence))
    }

    func attemptFailed(_ key: String, attempt: Int, started: Date, ended: Date, error: String) {
        writer.post(StoreBatch(attempts: [TaskAttempt(runID: id, task: key, attempt: attempt, status: .failed, started: started,
                                                      ended: ended, error: error)], fence: fence))
    }

    /// An attempt that was stopped, or an item that never started, because its scatter's gather
    /// gave up (`sluice runs show` lists it as cancelled).
    func attemptCancelled(_ key: String, attempt: Int, started: Date, ended: Date, reason: String) {
        writer.post(StoreBatch(attempts: [TaskAttempt(runID: id, task: key, attempt: attempt, status: .cancelled, started: started,
                                                      ended: ended, error: reason)], fence: fence))
    }

    /// Records a completed attempt and its output in one transaction; returns once it is stored.
    func completed(_ key: String, attempt: Int, started: Date, ended: Date, output: TaskOutput,
                   materialization: Materialization? = nil) async throws {
        var batch = StoreBatch(
            attempts: [TaskAttempt(runID: id, task: key, attempt: attempt, status: .succeeded, started: started, ended: ended)],
            checkpoints: [.init(runID: id, key: key, output: output.checkpoint)], fence: fence)
        if let materialization { batch.materializations = [materialization] }
        try await writer.commit(batch)
    }

    /// Records an asset partition starting or failing (it goes out with the next write).
    func materializing(_ m: Materialization) {
        var batch = StoreBatch(fence: fence)
        batch.materializations = [m]
        writer.post(batch)
    }

    /// Records a task's output taken from the result cache (no attempt ran).
    func checkpoint(_ key: String, output: TaskOutput) async throws {
        try await writer.commit(StoreBatch(checkpoints: [.init(runID: id, key: key, output: output.checkpoint)], fence: fence))
    }

    /// Voids the checkpoints at `keys`: when the run starts again, those tasks run again (a
    /// signal gate's `on_timeout: retry`). Stored before it returns.
    func void(_ keys: [String], reason: String) async throws {
        guard !keys.isEmpty else { return }
        try await writer.commit(StoreBatch(checkpoints: keys.map { .init(runID: id, key: $0, output: ["voided": .string(reason)]) },
                                           fence: fence))
    }

    /// The result-cache key of an attempt: SHA-256 of the task type, its rendered config and its
    /// input, as canonical JSON (sorted keys), so equal inputs written differently still match.
    static func resultKey(type: String, config: Value.Object, input: Value) -> String {
        let text = type + "\u{0}" + Value.object(config).jsonString(.canonical) + "\u{0}" + input.jsonString(.canonical)
        return Digest.sha256Hex(Array(text.utf8))
    }

    /// A live cached output, or nil (a store problem only costs the cache: the task runs).
    func cachedResult(_ key: String, now: Date) async -> TaskOutput? {
        guard let value = try? await writer.store.cachedResult(key: key, now: now) else { return nil }
        return TaskOutput(checkpoint: value)
    }

    func cacheResult(_ key: String, output: TaskOutput, expires: Date) async {
        try? await writer.store.saveResult(key: key, value: output.checkpoint, expires: expires)
    }

    func log(_ event: Value) {
        writer.post(StoreBatch(events: [.init(runID: id, event: event)], fence: fence))
    }
}

/// Sends each durable run's events to its log in the store.
final class RunLogSink: EngineEventSink {
    private let runs = Mutex<[String: DurableRun]>([:])

    init() {}

    func register(_ run: DurableRun) { runs.withLock { $0[run.id] = run } }
    func unregister(_ run: DurableRun) { _ = runs.withLock { $0.removeValue(forKey: run.id) } }

    func receive(_ event: EngineEvent) {
        guard let run = runs.withLock({ $0[event.runID] }) else { return }
        run.log(event.json)
    }
}

extension TaskOutput {
    /// The output as a checkpoint stores it.
    var checkpoint: Value {
        switch storage {
        case .none: return ["drop": true]
        case .one(let e): return ["event": e.checkpoint]
        case .many(let es): return ["events": .array(es.map(\.checkpoint))]
        }
    }

    init?(checkpoint: Value) {
        if let e = checkpoint["event"], let event = Event(checkpoint: e) {
            self = .event(event)
        } else if case .array(let list)? = checkpoint["events"] {
            let events = list.compactMap(Event.init(checkpoint:))
            guard events.count == list.count else { return nil }
            self = .events(events)
        } else if checkpoint["drop"] == true {
            self = .drop
        } else {
            return nil
        }
    }
}

extension Event {
    var checkpoint: Value {
        var o: Value.Object = ["id": .string(id), "subject": .string(subject), "data": data, "meta": .object(meta),
                               "timestamp": .int(timestamp)]
        if let error { o["error"] = ["task": .string(error.task), "message": .string(error.message)] }
        return .object(o)
    }

    init?(checkpoint v: Value) {
        guard case .string(let id)? = v["id"], case .string(let subject)? = v["subject"], let data = v["data"],
              case .object(let meta)? = v["meta"], case .int(let timestamp)? = v["timestamp"] else { return nil }
        var error: EventError?
        if case .string(let task)? = v["error"]?["task"], case .string(let message)? = v["error"]?["message"] {
            error = EventError(task: task, message: message)
        }
        self.init(id: id, subject: subject, data: data, meta: meta, timestamp: timestamp, error: error)
    }
}
