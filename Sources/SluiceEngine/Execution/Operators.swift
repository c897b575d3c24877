import Foundation
import SluiceCore
import Synchronization

/// `buffer` and `gather`: task types the engine implements itself, because they hold events
/// back and so take part in the bookkeeping of runs. Each runs on one worker of its stage, so
/// their state is only touched by that worker (the mutexes make the types Sendable and are
/// never contended).
public enum EngineOperators {
    /// The registrations of every engine operator.
    public static let all: [TaskRegistration] = [
        .engineOperator(BufferOperator.spec, .buffer),
        .engineOperator(GatherOperator.spec, .gather),
        .processor(GateTask.approvalSpec) { setup in GateTask(kind: .approval, timeout: setup.definition.timeout) },
        .processor(GateTask.signalSpec) { setup in GateTask(kind: .signal, timeout: setup.definition.timeout) },
    ]
}

// MARK: - buffer

/// Collects events, from any number of runs, into batches by size, time and partition key.
///
/// Held events keep their run's token (the run stays open) and are marked held, so the engine
/// can tell a run that only waits on a buffer from one that is still working. A batch whose
/// events all come from one run carries on in that run; a batch that mixes runs carries on in
/// a new batch run that absorbs them: they end when it ends, with its status.
final class BufferOperator: Sendable {
    static let spec = TaskSpec(
        name: "buffer",
        summary: "Collects events into batches by size, by time since the batch's first event, and by partition key; emits {batch, batch_size, flush_reason, partition_key}.",
        fields: [
            FieldSpec("size", .integer, default: 100, summary: "Events per batch: a batch is emitted as soon as it holds this many."),
            FieldSpec("timeout", .duration, summary: "Emit a batch this long after its first event even if it is not full (default: wait for size)."),
            FieldSpec("partition_key", .string, templated: true, aliases: ["key"],
                      summary: "Template giving each event's partition; every partition has its own batch, size and timer."),
        ],
        outputs: [
            PortSpec("batch", "The events' data, in arrival order."),
            PortSpec("batch_size", "How many events the batch holds."),
            PortSpec("flush_reason", "size, timeout, completion (the flow's input ended) or capacity (max_runs_in_flight reached)."),
            PortSpec("partition_key", "The partition's key, or null without partition_key."),
        ],
        examples: [
            TaskExample("Batches of 50, or whatever arrived within 5 seconds", yaml: """
                flow:
                  name: batches
                  tasks:
                    - generate:
                        name: ticks
                        interval: 100ms
                        count: 120
                    - buffer:
                        name: group
                        size: 50
                        timeout: 5s
                    - log:
                        name: show
                """),
            TaskExample("One batch per customer", yaml: """
                flow:
                  name: per_customer
                  tasks:
                    - iterate:
                        name: orders
                        iterate_key: orders
                    - buffer:
                        name: by_customer
                        size: 10
                        partition_key: "{{event.data.customer}}"
                    - log:
                        name: show
                """),
        ]
    )

    private struct Batch {
        var items: [Envelope] = []
        var generation: UInt64
        var timer: Task<Void, Never>?
    }

    private struct State {
        var batches: OrderedDictionary<String, Batch> = [:]
        var generation: UInt64 = 0
    }

    let size: Int
    let timeout: Duration?
    let keyed: Bool
    /// Events held now, read by the engine when it decides what to drain.
    let heldCount = Atomic<Int>(0)
    private let state = Mutex(State())

    convenience init(_ setup: TaskSetup) throws(TaskError) {
        let size = try setup.config.int("size") ?? 100
        guard size >= 1 else { throw TaskError.invalidConfig("'size' must be at least 1, got \(size)") }
        // `timeout` is read like every task's timeout; for a buffer it bounds a batch's wait.
        var timeout = setup.definition.timeout
        if timeout == nil { timeout = try setup.config.duration("timeout") }
        if let timeout, timeout <= .zero { throw TaskError.invalidConfig("'timeout' must be positive") }
        self.init(size: size, timeout: timeout, keyed: setup.config["partition_key"] != nil)
    }

    private init(size: Int, timeout: Duration?, keyed: Bool) {
        self.size = size
        self.timeout = timeout
        self.keyed = keyed
    }

    /// The same buffer with nothing held, for a new execution of the plan.
    func fresh() -> BufferOperator { BufferOperator(size: size, timeout: timeout, keyed: keyed) }

    func receive(_ envelope: Envelope, config: Value.Object, stage: Stage, _ out: inout Outbox, _ execution: FlowExecution) {
        let key = keyed ? (config["partition_key"] ?? .null).textValue : ""
        let (full, startTimer) = state.withLock { s -> (Bool, UInt64?) in
            var startTimer: UInt64?
            if s.batches[key] == nil {
                s.generation += 1
                s.batches[key] = Batch(generation: s.generation)
                if timeout != nil { startTimer = s.generation }
            }
            s.batches[key]!.items.append(envelope)
            return (s.batches[key]!.items.count >= size, startTimer)
        }
        // The buffer keeps a token of its own for the held event; the stage gives back the
        // incoming one, and that release notices when the run has nothing left but holds.
        heldCount.add(1, ordering: .sequentiallyConsistent)
        envelope.run.retain()
        envelope.run.hold()
        if full {
            flush(key, reason: "size", stage: stage, &out, execution)
        } else if let generation = startTimer, let timeout {
            let channel = stage.channel
            let clock = execution.clock
            let timer = Task {
                guard (try? await clock.sleep(for: timeout)) != nil else { return }
                channel.sendControl(.tick(key: key, generation: generation))
            }
            state.withLock { s in
                if s.batches[key]?.generation == generation { s.batches[key]!.timer = timer } else { timer.cancel() }
            }
        }
    }

    func tick(key: String, generation: UInt64, stage: Stage, _ out: inout Outbox, _ execution: FlowExecution) {
        guard state.withLock({ $0.batches[key]?.generation == generation }) else { return }
        flush(key, reason: "timeout", stage: stage, &out, execution)
    }

    /// Emits every partial batch: the flow's input has ended (or its run limit is reached) and
    /// every open run is waiting on a buffer.
    func drain(reason: String, stage: Stage, _ out: inout Outbox, _ execution: FlowExecution) {
        for key in state.withLock({ Array($0.batches.keys) }) {
            flush(key, reason: reason, stage: stage, &out, execution)
        }
    }

    /// Stops pending timers when the execution ends.
    func shutdown() {
        let timers = state.withLock { s in s.batches.values.compactMap(\.timer) }
        for t in timers { t.cancel() }
    }

    private func flush(_ key: String, reason: String, stage: Stage, _ out: inout Outbox, _ execution: FlowExecution) {
        guard let batch = state.withLock({ $0.batches.removeValue(forKey: key) }) else { return }
        batch.timer?.cancel()
        heldCount.subtract(batch.items.count, ordering: .sequentiallyConsistent)
        var live: [Envelope] = []
        for item in batch.items {
            if item.run.isFailed {
                item.run.unhold()
                out.release(item.run)
            } else {
                live.append(item)
            }
        }
        guard let first = live.first else { return }
        let data: Value = [
            "batch": .array(live.map(\.event.data)),
            "batch_size": .int(Int64(live.count)),
            "flush_reason": .string(reason),
            "partition_key": keyed ? .string(key) : .null,
        ]
        let event = Event(id: first.event.id, subject: stage.name, data: data, meta: first.event.meta,
                          timestamp: execution.clock.now().microsecondsSince1970)
        let carrier = first.run
        if live.allSatisfy({ $0.run === carrier }) {
            stage.deliver(Envelope(event: event, run: carrier, scatter: commonPrefix(live.map(\.scatter))), &out)
            for item in live {
                item.run.unhold()
                out.release(item.run)
            }
        } else {
            let batchRun = execution.startBatchRun(from: stage)
            batchRun.absorb(live.map(\.run))
            stage.deliver(Envelope(event: event, run: batchRun, scatter: []), &out)
            out.release(batchRun)
        }
        if stage.shared.bus.wantsTaskEvents {
            stage.shared.emit(.taskCompleted, run: carrier, task: stage.name,
                              message: "batch of \(live.count) (\(reason))\(keyed ? ", partition '\(key)'" : "")")
        }
    }

    private func commonPrefix(_ paths: [[ScatterFrame]]) -> [ScatterFrame] {
        guard var prefix = paths.first else { return [] }
        for path in paths.dropFirst() {
            var n = 0
            while n < prefix.count, n < path.count, prefix[n] == path[n] { n += 1 }
            prefix.removeLast(prefix.count - n)
        }
        return prefix
    }
}

// MARK: - gather

/// Collects the elements of a scatter back into one event whose data is the array of their
/// results, in the original order. Like a join, it waits for every element of its run; when
/// the run has nothing else going (some elements were filtered out), it emits what arrived.
final class GatherOperator: Sendable {
    static let spec = TaskSpec(
        name: "gather",
        summary: "Collects the events of a scatter (iterate, or any task that returned an array) back into one array, in order.",
        fields: [
            FieldSpec("failure_threshold", .number, default: 0,
                      summary: "Largest share of failed elements (0 to 1) tolerated; failed elements (from on_error: continue) are left out of the array. Past it the gather fails at once and cancels the unfinished elements."),
        ],
        examples: [
            TaskExample("Fetch every item, then continue with all results at once", yaml: """
                flow:
                  name: fetch_all
                  tasks:
                    - iterate:
                        name: each
                        iterate_key: ids
                    - shell:
                        name: fetch
                        command: "echo item-{{event.data}}"
                        on_error: continue
                    - gather:
                        name: all
                        failure_threshold: 0.25
                    - log:
                        name: show
                """),
        ]
    )

    private struct Key: Hashable {
        let run: ObjectIdentifier
        let prefix: [ScatterFrame]
        let frame: UInt64
    }

    private struct Group {
        let run: RunState
        let prefix: [ScatterFrame]
        let expected: Int
        var parts: [Int: Envelope] = [:]
    }

    let failureThreshold: Double
    private let groups = Mutex<[Key: Group]>([:])

    convenience init(_ setup: TaskSetup) throws(TaskError) {
        let threshold = try setup.config.double("failure_threshold") ?? 0
        guard (0...1).contains(threshold) else {
            throw TaskError.invalidConfig("'failure_threshold' must be between 0 and 1, got \(threshold)")
        }
        self.init(failureThreshold: threshold)
    }

    private init(failureThreshold: Double) {
        self.failureThreshold = failureThreshold
    }

    /// The same gather with nothing collected, for a new execution of the plan.
    func fresh() -> GatherOperator { GatherOperator(failureThreshold: failureThreshold) }

    func receive(_ envelope: Envelope, stage: Stage, _ out: inout Outbox, _ execution: FlowExecution) {
        let run = envelope.run
        guard let frame = envelope.scatter.last else {
            // Not part of a scatter: a one-element collection.
            emit(parts: [envelope], expected: 1, prefix: envelope.scatter, run: run, stage: stage, &out, execution)
            return
        }
        let prefix = Array(envelope.scatter.dropLast())
        let key = Key(run: ObjectIdentifier(run), prefix: prefix, frame: frame.id)
        let failing = envelope.event.error != nil
        let (complete, doomed) = groups.withLock { g -> (Group?, Bool) in
            if g[key] == nil {
                g[key] = Group(run: run, prefix: prefix, expected: frame.count)
                run.addPending(stage: stage.index)
            }
            g[key]!.parts[frame.index] = envelope
            if g[key]!.parts.count >= frame.count { return (g.removeValue(forKey: key), false) }
            // Enough failures that the rest cannot bring the share back under the threshold.
            if failing, exceeds(failed: g[key]!.parts.values.count { $0.event.error != nil }, of: frame.count) {
                return (g.removeValue(forKey: key), true)
            }
            return (nil, false)
        }
        guard let complete else { return }
        run.removePending(stage: stage.index)
        if doomed {
            let parts = complete.parts.sorted { $0.key < $1.key }.map(\.value)
            let left = complete.expected - parts.count
            let failed = parts.count { $0.event.error != nil }
            execution.stopScatter(frame.id, reason: "gather '\(stage.name)' gave up: \(failed) of \(complete.expected) elements failed")
            failEarly(parts, group: complete, left: left, stage: stage, &out, execution)
        } else {
            emit(complete, stage: stage, &out, execution)
        }
    }

    /// Whether `failed` of `expected` elements is more than `failure_threshold` allows.
    private func exceeds(failed: Int, of expected: Int) -> Bool {
        failed > 0 && Double(failed) / Double(max(expected, 1)) > failureThreshold
    }

    private func failureMessage(_ parts: [Envelope], expected: Int) -> String {
        let failed = parts.filter { $0.event.error != nil }
        let firstError = failed[0].event.error!
        return "\(failed.count) of \(expected) elements failed, more than failure_threshold \(failureThreshold) allows "
            + "(first: task '\(firstError.task)': \(firstError.message))"
    }

    /// Fails the gather before every element arrived: the `left` others were stopped.
    private func failEarly(_ parts: [Envelope], group: Group, left: Int, stage: Stage, _ out: inout Outbox, _ execution: FlowExecution) {
        guard !group.run.isFailed else { return }
        let message = failureMessage(parts, expected: group.expected) + "; the \(left) not gathered yet were cancelled"
        stage.fail(gathered(parts, prefix: group.prefix, run: group.run), TaskError.permanent(message), attempt: 1, &out, execution)
    }

    /// The collected event: the succeeded elements' data in order, every element's meta.
    private func gathered(_ parts: [Envelope], prefix: [ScatterFrame], run: RunState) -> Envelope {
        var meta = Value.Object()
        for part in parts { for (k, v) in part.event.meta { meta[k] = v } }
        let first = parts[0].event
        let event = Event(id: first.id, subject: first.subject, data: .array(parts.filter { $0.event.error == nil }.map(\.event.data)),
                          meta: meta, timestamp: first.timestamp)
        return Envelope(event: event, run: run, scatter: prefix)
    }

    /// The run went quiet: emit its incomplete groups with what arrived.
    func flush(_ run: RunState, stage: Stage, _ out: inout Outbox, _ execution: FlowExecution) {
        let taken = groups.withLock { g -> [Group] in
            let keys = g.keys.filter { $0.run == ObjectIdentifier(run) }
            return keys.map { g.removeValue(forKey: $0)! }
        }
        run.removePending(stage: stage.index, count: taken.count)
        guard !run.isFailed else { return }
        // Inner scatters first, so an outer gather in the same stage sees their results.
        for group in taken.sorted(by: { $0.prefix.count > $1.prefix.count }) {
            emit(group, stage: stage, &out, execution)
        }
    }

    private func emit(_ group: Group, stage: Stage, _ out: inout Outbox, _ execution: FlowExecution) {
        let parts = group.parts.sorted { $0.key < $1.key }.map(\.value)
        emit(parts: parts, expected: group.expected, prefix: group.prefix, run: group.run, stage: stage, &out, execution)
    }

    private func emit(parts: [Envelope], expected: Int, prefix: [ScatterFrame], run: RunState, stage: Stage,
                      _ out: inout Outbox, _ execution: FlowExecution) {
        guard !parts.isEmpty, !run.isFailed else { return }
        let failed = parts.count { $0.event.error != nil }
        let envelope = gathered(parts, prefix: prefix, run: run)
        if exceeds(failed: failed, of: expected) {
            stage.fail(envelope, TaskError.permanent(failureMessage(parts, expected: expected)), attempt: 1, &out, execution)
            return
        }
        if stage.shared.bus.wantsTaskEvents {
            let dropped = expected - parts.count
            var message = "gathered \(parts.count - failed) of \(expected)"
            if failed > 0 { message += ", \(failed) failed" }
            if dropped > 0 { message += ", \(dropped) filtered out" }
            stage.shared.emit(.taskCompleted, run: run, task: stage.name, message: message)
        }
        stage.deliver(envelope, &out)
    }
}
