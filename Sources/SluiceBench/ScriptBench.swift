// `--only script`: Rhai scripts in Sluice's interpreter against the same programs in Python 3,
// in one run (`--only script-fib`, `script-loop`, `script-sieve` or `script-transform` for one).
// Each Sluice script is compiled once, outside the timed region; Python times itself with
// `time.perf_counter()` inside one interpreter process (the resolved executable, not a pyenv
// shim), so neither side pays for start-up or compilation. The two alternate: each round runs
// Sluice once, then asks the Python process for one run, so a machine whose speed drifts (a
// shared VM) is sampled alike on both sides. This machine flips between a fast and a slow
// state, so the ratio compares the two minimums (each side's run in the fast state).
import Foundation
import SluiceCore
import SluiceScript

/// One row of the comparison table.
struct ScriptComparison {
    var name: String
    var sluice: Stats
    var python: Stats
    /// Divides each time for display (e.g. by the event count, to give a cost per event).
    var per: Double = 1
}

enum ScriptBench {
    /// The benchmarks, as `--only` selects them.
    static let names = ["script-fib", "script-loop", "script-sieve", "script-transform"]

    /// A run slower than this is not repeated: its warm-up run is the only sample.
    static let repeatLimit = 5.0

    static let fibSource = "fn fib(n) { if n < 2 { n } else { fib(n-1) + fib(n-2) } } fib(25)"

    static let loopSource = "let x = 0; for i in 0..1000000 { x += i; } x"

    static let sieveSource = """
        let n = 100000;
        let sieve = [];
        sieve.pad(n + 1, true);
        sieve[0] = false;
        sieve[1] = false;
        let i = 2;
        while i * i <= n {
            if sieve[i] {
                let j = i * i;
                while j <= n {
                    sieve[j] = false;
                    j += i;
                }
            }
            i += 1;
        }
        let count = 0;
        let k = 0;
        while k <= n {
            if sieve[k] { count += 1; }
            k += 1;
        }
        count
        """

    static let transformSource = "let d = event.data; #{ id: d.id, name: d.name.to_upper(), total: d.price * d.qty }"

    /// The same programs in Python; prints `name<TAB>result<TAB>seconds,seconds,...` per benchmark.
    static let pythonSource = """
        import platform, sys, time

        EVENTS = int(sys.argv[1])
        WANTED = [w for w in sys.argv[2].split(",") if w]

        def fib(n):
            if n < 2:
                return n
            return fib(n - 1) + fib(n - 2)

        def loop():
            x = 0
            for i in range(1000000):
                x += i
            return x

        def sieve():
            n = 100000
            s = [True] * (n + 1)
            s[0] = False
            s[1] = False
            i = 2
            while i * i <= n:
                if s[i]:
                    j = i * i
                    while j <= n:
                        s[j] = False
                        j += i
                i += 1
            count = 0
            k = 0
            while k <= n:
                if s[k]:
                    count += 1
                k += 1
            return count

        def transform(event):
            d = event["data"]
            return {"id": d["id"], "name": d["name"].upper(), "total": d["price"] * d["qty"]}

        events = [] if "transform" not in WANTED else [
            {"id": str(i), "subject": "bench", "timestamp": 0, "meta": {}, "error": None,
             "data": {"id": i, "name": "item-%d" % i, "price": (i % 1000) / 4 + 0.25, "qty": i % 7 + 1}}
            for i in range(EVENTS)
        ]

        def transform_all():
            total = 0.0
            for e in events:
                total += transform(e)["total"]
            return total

        programs = {"fib": lambda: fib(25), "loop": loop, "sieve": sieve, "transform": transform_all}
        print("version\t%s\t0" % platform.python_version(), flush=True)
        for name in WANTED:
            programs[name]()  # warm-up
        # One timed run per request line ("name"), answered as name<TAB>result<TAB>seconds.
        for line in sys.stdin:
            name = line.strip()
            t0 = time.perf_counter()
            result = programs[name]()
            t = time.perf_counter() - t0
            print("%s\t%r\t%r" % (name, result, t), flush=True)
        """

    /// Event `i` of the transform benchmark; Python builds the same data.
    static func event(_ i: Int) -> Event {
        Event(id: String(i), subject: "bench", data: [
            "id": .int(Int64(i)),
            "name": .string("item-\(i)"),
            "price": .double(Double(i % 1000) / 4 + 0.25),
            "qty": .int(Int64(i % 7 + 1)),
        ])
    }

    static func fail(_ message: String) -> Never {
        print("script benchmark FAILED: \(message)")
        fflush(nil)
        exit(1)
    }

    static func compile(_ engine: ScriptEngine, _ source: String, scope: [String] = []) -> CompiledScript {
        do {
            return try engine.compile(source, scope: scope)
        } catch {
            fail("script does not compile: \(error)\n\(source)")
        }
    }

    /// A whole script run, checking its value.
    static func runScript(_ name: String, _ script: CompiledScript, expect: Int64) {
        let result: Dynamic
        do {
            result = try script.run()
        } catch {
            fail("\(name): \(error)")
        }
        guard case .int(let v) = result, v == expect else {
            fail("\(name) gave \(result.debugText), expected \(expect)")
        }
    }

    /// The Python process, answering one timed run per request.
    final class PythonPeer {
        let process = Process()
        let input = Pipe(), output = Pipe()
        var buffer: [UInt8] = []
        var version = "?"

        init(_ python: String, events: Int, wanted: [String]) {
            let path = writeTemp("script_bench.py", pythonSource)
            process.executableURL = URL(fileURLWithPath: python)
            process.arguments = [path, String(events), wanted.joined(separator: ",")]
            process.standardInput = input
            process.standardOutput = output
            do {
                try process.run()
            } catch {
                fail("cannot start \(python): \(error)")
            }
            let fields = readFields()
            guard fields.first == "version" else { fail("unexpected Python output: \(fields)") }
            version = fields[1]
        }

        private func readFields() -> [String] {
            while true {
                if let nl = buffer.firstIndex(of: 10) {
                    let line = String(decoding: buffer[..<nl], as: UTF8.self)
                    buffer.removeSubrange(...nl)
                    let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
                    guard fields.count == 3 else { fail("unexpected Python output: \(line)") }
                    return fields
                }
                let more = output.fileHandleForReading.availableData
                if more.isEmpty { fail("the Python benchmark process ended early") }
                buffer += more
            }
        }

        /// One run of `name`: its result as Python prints it, and the seconds it took.
        func run(_ name: String) -> (String, Double) {
            input.fileHandleForWriting.write(Data((name + "\n").utf8))
            let fields = readFields()
            guard fields[0] == name, let t = Double(fields[2]) else { fail("unexpected Python output: \(fields)") }
            return (fields[1], t)
        }

        func close() {
            try? input.fileHandleForWriting.close()
            process.waitUntilExit()
        }
    }

    /// Rounds of one Sluice run then one Python run, after a warm-up of the Sluice side; checks
    /// Python's result each time. A Sluice warm-up slower than `repeatLimit` is its only sample.
    static func paired(_ name: String, _ peer: PythonPeer, expect: (String) -> Bool, reps: Int,
                       _ body: () -> Void) -> (Stats, Stats) {
        let clock = ContinuousClock()
        let first = clock.now
        body()
        let warmUp = seconds(clock.now - first)
        let slow = warmUp > repeatLimit
        var sluice: [Double] = slow ? [warmUp] : [], python: [Double] = []
        for _ in 0..<(slow ? 1 : reps) {
            if !slow {
                let start = clock.now
                body()
                sluice.append(seconds(clock.now - start))
            }
            let (result, t) = peer.run(name)
            guard expect(result) else { fail("Python \(name) gave \(result)") }
            python.append(t)
        }
        return (Stats(samples: sluice), Stats(samples: python))
    }

    static func run(quick: Bool, wanted: (String) -> Bool) {
        let reps = quick ? 2 : 9
        let eventCount = quick ? 20_000 : 200_000
        let selected = names.filter(wanted).map { String($0.dropFirst("script-".count)) }

        // Programs run without limits (the 1M loop exceeds a flow's operation budget); the
        // transform runs with the limits a flow gives its scripts.
        let engine = ScriptEngine()
        let flowEngine = ScriptEngine(limits: .flowDefaults)
        let fib = compile(engine, fibSource)
        let loop = compile(engine, loopSource)
        let sieve = compile(engine, sieveSource)
        let transform = compile(flowEngine, transformSource, scope: ["event"])

        let python = resolvedPython()
        let peer = PythonPeer(python, events: eventCount, wanted: selected)
        defer { peer.close() }
        var rows: [ScriptComparison] = []
        func add(_ label: String, _ pair: (Stats, Stats), per: Double = 1) {
            rows.append(ScriptComparison(name: label, sluice: pair.0, python: pair.1, per: per))
        }
        if selected.contains("fib") {
            add("fib(25), recursive", paired("fib", peer, expect: { $0 == "75025" }, reps: reps) {
                runScript("fib(25)", fib, expect: 75025)
            })
        }
        if selected.contains("loop") {
            add("loop, 1,000,000 iterations", paired("loop", peer, expect: { $0 == "499999500000" }, reps: reps) {
                runScript("1M loop", loop, expect: 499_999_500_000)
            })
        }
        if selected.contains("sieve") {
            add("prime sieve to 100,000 (9592)", paired("sieve", peer, expect: { $0 == "9592" }, reps: reps) {
                runScript("sieve", sieve, expect: 9592)
            })
        }

        var expectedTotal = 0.0
        for i in 0..<eventCount { expectedTotal += (Double(i % 1000) / 4 + 0.25) * Double(i % 7 + 1) }
        var conversionPerEvent: Double?
        if selected.contains("transform") {
            let events = (0..<eventCount).map(event)
            let inputs = events.map { Dynamic(event: $0) }
            func check(_ label: String, _ total: Double) {
                if total != expectedTotal { fail("\(label): total \(total), expected \(expectedTotal)") }
            }
            do {
                // One output checked field by field.
                var scope = ScriptScope()
                scope.push("event", inputs[42])
                let out = try transform.run(scope: scope).eventValue
                let want: Value = ["id": .int(42), "name": .string("ITEM-42"), "total": .double(10.75)]
                guard out == want else { fail("transform of event 42 gave \(out), expected \(want)") }
            } catch {
                fail("transform: \(error)")
            }
            let pythonTotal: (String) -> Bool = { Double($0) == expectedTotal }
            // Per event: the events already converted to script values...
            add("event transform, per event", paired("transform", peer, expect: pythonTotal, reps: reps) {
                var total = 0.0
                for input in inputs {
                    var scope = ScriptScope()
                    scope.push("event", input)
                    guard case .map(let m)? = try? transform.run(scope: scope), case .float(let t)? = m["total"] else {
                        fail("transform gave no total")
                    }
                    total += t
                }
                check("transform", total)
            }, per: Double(eventCount))
            // ...and as a flow stage would run it: event to script value, run, result to event data.
            let converted = paired("transform", peer, expect: pythonTotal, reps: reps) {
                var total = 0.0
                for e in events {
                    var scope = ScriptScope()
                    scope.push("event", Dynamic(event: e))
                    guard let result = try? transform.run(scope: scope) else { fail("transform failed") }
                    let out = e.with(data: result.eventValue)
                    total += out.data["total"]?.doubleValue ?? .nan
                }
                check("transform with conversion", total)
            }
            add("  + Value<->Dynamic conversion", converted, per: Double(eventCount))
            conversionPerEvent = converted.0.min / Double(eventCount)
        }

        print("Rhai scripts in Sluice vs Python \(peer.version) (\(python)): \(reps) rounds after a warm-up, each")
        print("one Sluice run then one Python run; \(eventCount) events for the transform; ratio = Sluice min /")
        print("Python min (> 1: Sluice slower)")
        func cell(_ s: String, _ width: Int) -> String { s.padding(toLength: width, withPad: " ", startingAt: 0) }
        print("  " + cell("benchmark", 32) + cell("Sluice min", 12) + cell("(median)", 12)
              + cell("Python min", 12) + cell("(median)", 12) + "ratio")
        for r in rows {
            let sluiceMedian = r.sluice.samples.count == 1 ? "(1 run)" : format(r.sluice.median / r.per)
            let ratio = r.sluice.min / r.python.min
            print("  " + cell(r.name, 32) + cell(format(r.sluice.min / r.per), 12) + cell(sluiceMedian, 12)
                  + cell(format(r.python.min / r.per), 12) + cell(format(r.python.median / r.per), 12)
                  + String(format: "%.2fx", ratio))
        }
        if let perEvent = conversionPerEvent {
            report("  transform per event, with conversion (min)", format(perEvent), target: "≤ 5 µs", ok: perEvent <= 5e-6)
        }
    }
}
