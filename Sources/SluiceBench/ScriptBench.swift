// `--only script`: Rhai scripts in Sluice's interpreter against the same programs in Python 3,
// in one run (`--only script-fib`, `script-loop`, `script-sieve` or `script-transform` for one). Each Sluice script is compiled once, outside the timed region; Python times
// itself with `time.perf_counter()` inside one interpreter process (the resolved executable,
// not a pyenv shim), so neither side pays for start-up or compilation.
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

        REPS = int(sys.argv[1])
        EVENTS = int(sys.argv[2])
        WANTED = set(sys.argv[3].split(","))

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

        def bench(name, fn):
            if name not in WANTED:
                return
            fn()  # warm-up
            times = []
            result = None
            for _ in range(REPS):
                t0 = time.perf_counter()
                result = fn()
                times.append(time.perf_counter() - t0)
            print("%s\\t%r\\t%s" % (name, result, ",".join(repr(t) for t in times)), flush=True)

        print("version\\t%s\\t0" % platform.python_version(), flush=True)
        bench("fib", lambda: fib(25))
        bench("loop", loop)
        bench("sieve", sieve)
        bench("transform", transform_all)
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

    /// Runs `body` once to warm up, then `reps` times; returns the times. A warm-up slower than
    /// `repeatLimit` is the only sample.
    static func time(reps: Int, _ body: () -> Void) -> Stats {
        let clock = ContinuousClock()
        let first = clock.now
        body()
        let warmUp = seconds(clock.now - first)
        if warmUp > repeatLimit { return Stats(samples: [warmUp]) }
        var samples: [Double] = []
        for _ in 0..<reps {
            let start = clock.now
            body()
            samples.append(seconds(clock.now - start))
        }
        return Stats(samples: samples)
    }

    /// Times a whole script run and checks its value.
    static func timeScript(_ name: String, _ script: CompiledScript, expect: Int64, reps: Int) -> Stats {
        time(reps: reps) {
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
    }

    /// Runs the Python programs named in `wanted`; answers the version and, per benchmark, its
    /// result and times.
    static func runPython(_ python: String, reps: Int, events: Int, wanted: [String]) -> (String, [String: (String, Stats)]) {
        let path = writeTemp("script_bench.py", pythonSource)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [path, String(reps), String(events), wanted.joined(separator: ",")]
        let pipe = Pipe()
        process.standardOutput = pipe
        do {
            try process.run()
        } catch {
            fail("cannot start \(python): \(error)")
        }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { fail("\(python) \(path) exited \(process.terminationStatus)") }
        var version = "?"
        var rows: [String: (String, Stats)] = [:]
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 3 else { fail("unexpected Python output: \(line)") }
            if fields[0] == "version" {
                version = fields[1]
                continue
            }
            let samples = fields[2].split(separator: ",").compactMap { Double($0) }
            guard samples.count == reps else { fail("unexpected Python output: \(line)") }
            rows[fields[0]] = (fields[1], Stats(samples: samples))
        }
        return (version, rows)
    }

    /// Python's times for `name`, after checking its result.
    static func pythonStats(_ py: [String: (String, Stats)], _ name: String, expect: String) -> Stats {
        guard let (result, stats) = py[name] else { fail("Python printed no \(name) result") }
        guard result == expect else { fail("Python \(name) gave \(result), expected \(expect)") }
        return stats
    }

    static func run(quick: Bool, wanted: (String) -> Bool) {
        let reps = quick ? 2 : 7
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

        // Sluice first, then Python (one process, timing itself).
        var sluice: [String: Stats] = [:]
        if selected.contains("fib") { sluice["fib"] = timeScript("fib(25)", fib, expect: 75025, reps: reps) }
        if selected.contains("loop") { sluice["loop"] = timeScript("1M loop", loop, expect: 499_999_500_000, reps: reps) }
        if selected.contains("sieve") { sluice["sieve"] = timeScript("sieve", sieve, expect: 9592, reps: reps) }

        var expectedTotal = 0.0
        for i in 0..<eventCount { expectedTotal += (Double(i % 1000) / 4 + 0.25) * Double(i % 7 + 1) }
        if selected.contains("transform") {
            let events = (0..<eventCount).map(event)
            let inputs = events.map { Dynamic($0.projection) }
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
            // Per event: the events already converted to script values...
            sluice["transform"] = time(reps: reps) {
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
            }
            // ...and as a flow stage would run it: event to script value, run, result to event data.
            sluice["transform+conversion"] = time(reps: reps) {
                var total = 0.0
                for e in events {
                    var scope = ScriptScope()
                    scope.push("event", Dynamic(e.projection))
                    guard let result = try? transform.run(scope: scope) else { fail("transform failed") }
                    let out = e.with(data: result.eventValue)
                    total += out.data["total"]?.doubleValue ?? .nan
                }
                check("transform with conversion", total)
            }
        }

        let python = resolvedPython()
        let (version, py) = runPython(python, reps: reps, events: eventCount, wanted: selected)
        var rows: [ScriptComparison] = []
        if let s = sluice["fib"] {
            rows.append(ScriptComparison(name: "fib(25), recursive", sluice: s, python: pythonStats(py, "fib", expect: "75025")))
        }
        if let s = sluice["loop"] {
            rows.append(ScriptComparison(name: "loop, 1,000,000 iterations", sluice: s,
                                         python: pythonStats(py, "loop", expect: "499999500000")))
        }
        if let s = sluice["sieve"] {
            rows.append(ScriptComparison(name: "prime sieve to 100,000 (9592)", sluice: s,
                                         python: pythonStats(py, "sieve", expect: "9592")))
        }
        if let s = sluice["transform"], let s2 = sluice["transform+conversion"] {
            guard let (pyTotal, pyTransform) = py["transform"], Double(pyTotal) == expectedTotal else {
                fail("Python transform total \(py["transform"]?.0 ?? "missing"), expected \(expectedTotal)")
            }
            rows.append(ScriptComparison(name: "event transform, per event", sluice: s, python: pyTransform,
                                         per: Double(eventCount)))
            rows.append(ScriptComparison(name: "  + Value<->Dynamic conversion", sluice: s2, python: pyTransform,
                                         per: Double(eventCount)))
        }

        print("Rhai scripts in Sluice vs Python \(version) (\(python)): min and median of \(reps) runs after a")
        print("warm-up; \(eventCount) events for the transform; ratio = Sluice min / Python min (> 1: Sluice slower)")
        func cell(_ s: String, _ width: Int) -> String { s.padding(toLength: width, withPad: " ", startingAt: 0) }
        print("  " + cell("benchmark", 32) + cell("Sluice min", 12) + cell("(median)", 12)
              + cell("Python min", 12) + cell("(median)", 12) + "ratio")
        for r in rows {
            let sluiceMedian = r.sluice.samples.count == 1 ? "(1 run)" : format(r.sluice.median / r.per)
            print("  " + cell(r.name, 32) + cell(format(r.sluice.min / r.per), 12) + cell(sluiceMedian, 12)
                  + cell(format(r.python.min / r.per), 12) + cell(format(r.python.median / r.per), 12)
                  + String(format: "%.2fx", r.sluice.min / r.python.min))
        }
        if let s = sluice["transform+conversion"] {
            let perEvent = s.min / Double(eventCount)
            report("  transform per event, with conversion (min)", format(perEvent), target: "≤ 5 µs", ok: perEvent <= 5e-6)
        }
    }
}
