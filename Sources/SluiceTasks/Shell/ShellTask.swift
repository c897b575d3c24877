import Foundation
import SluiceCore
import SluiceEngine
import Synchronization

/// Runs a command; its output lines are streamed as they are written.
struct ShellTask: TaskProcessor {
    static let spec = TaskSpec(
        name: "shell",
        aliases: [TaskAlias("shell.exec")],
        summary: "Runs a command with args, env, workdir and stdin; streams stdout/stderr lines; outputs {output, stdout, stderr, exit_code, success}.",
        fields: [
            FieldSpec("command", .string, required: true, templated: true, summary: "The program (looked up on PATH), or a script with `shell: true`."),
            FieldSpec("args", .either(.array(of: .string), .string), templated: true, summary: "Arguments; a string is split on whitespace."),
            FieldSpec("env", .map(of: .string), templated: true, summary: "Extra environment variables."),
            FieldSpec("inherit_env", .bool, default: true, summary: "Start from Sluice's own environment (else only `env` and `env_passthrough`)."),
            FieldSpec("env_passthrough", .array(of: .string), summary: "Variables copied from Sluice's environment when inherit_env is false."),
            FieldSpec("workdir", .string, templated: true, summary: "Working directory."),
            FieldSpec("stdin", .any, templated: true, summary: "Written to the command's standard input (non-strings as JSON); closed after."),
            FieldSpec("shell", .bool, default: false, summary: "Run `command` (and args) through /bin/sh -c."),
            FieldSpec("stream_output", .bool, default: true, summary: "Emit each stdout/stderr line as an event while the command runs."),
            FieldSpec("fail_on_error", .bool, default: true, summary: "A non-zero exit code fails the task."),
            FieldSpec("strip_trailing_newline", .bool, default: true, summary: "Drop the final newline of stdout."),
            FieldSpec("capture_stdout", .bool, default: true, summary: "Keep stdout in the output."),
            FieldSpec("capture_stderr", .bool, default: true, summary: "Keep stderr in the output."),
            FieldSpec("max_output_bytes", .integer, default: 16_777_216, summary: "Stdout or stderr beyond this many bytes fails the task."),
        ],
        inputs: [PortSpec("stdin", "Written to the command's standard input (FlowEngine).")],
        outputs: [
            PortSpec("output", "stdout parsed as JSON when it is JSON, else the text"),
            PortSpec("stdout", "standard output"),
            PortSpec("stderr", "standard error"),
            PortSpec("exit_code", "exit status (-1 when killed by a signal)"),
            PortSpec("success", "exit status was 0"),
        ],
        examples: [
            TaskExample("Run a command on each event", yaml: """
                flow:
                  name: greet
                  tasks:
                    - shell:
                        name: hello
                        command: echo
                        args: ["hello", "{{event.data.who}}"]
                        timeout: 10s
                """),
            TaskExample("Pipe data through a script", yaml: """
                flow:
                  name: count
                  tasks:
                    - shell:
                        name: count_words
                        command: "wc -w"
                        shell: true
                        stdin: "{{event.data.text}}"
                """),
        ]
    )

    static let registration = TaskRegistration.processor(spec) { _ in ShellTask() }

    func process(_ event: Event, _ context: TaskContext) async throws -> TaskOutput {
        let config = context.config
        guard let command = try config.string("command"), !command.isEmpty else { throw TaskError.invalidConfig("'command' is empty") }
        var args: [String]
        switch config["args"] {
        case .string(let s)?: args = s.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).map(String.init)
        default: args = try config.strings("args") ?? []
        }
        let useShell = try config.bool("shell") ?? false
        let executable: String
        if useShell {
            executable = "/bin/sh"
            args = ["-c", ([command] + args).joined(separator: " ")]
        } else if command.contains("/") {
            executable = command
        } else {
            guard let found = ShellTask.which(command, path: context.environment["PATH"]) else {
                throw TaskError.permanent("command not found: \(command)")
            }
            executable = found
        }

        var environment: [String: String] = (try config.bool("inherit_env") ?? true) ? context.environment : [:]
        for name in try config.strings("env_passthrough") ?? [] { environment[name] = context.environment[name] }
        for (k, v) in try config.stringMap("env") ?? [] { environment[k] = v }

        var stdin: [UInt8]?
        if let input = context.value("stdin", in: event) {
            stdin = Array(input.textValue.utf8)
        }
        let stream = try config.bool("stream_output") ?? true
        let limit = try config.int("max_output_bytes") ?? 16_777_216

        var onStdout: (@Sendable (String) -> Void)?
        var onStderr: (@Sendable (String) -> Void)?
        if stream {
            onStdout = { line in context.stdout(line) }
            onStderr = { line in context.stderr(line) }
        }
        let result = try await ChildProcess.run(
            executable: executable, arguments: args, environment: environment, workdir: try config.string("workdir"),
            stdin: stdin, maxOutputBytes: limit,
            onStdout: onStdout, onStderr: onStderr)

        var stdout = result.stdout
        if try config.bool("strip_trailing_newline") ?? true {
            while stdout.hasSuffix("\n") { stdout.removeLast() }
        }
        if try config.bool("fail_on_error") ?? true, result.exitCode != 0 {
            let tail = result.stderr.split(separator: "\n").suffix(3).joined(separator: " | ")
            throw TaskError("command exited with code \(result.exitCode)\(tail.isEmpty ? "" : ": \(tail)")")
        }
        let captureOut = try config.bool("capture_stdout") ?? true
        let captureErr = try config.bool("capture_stderr") ?? true
        var out = Value.Object()
        out["output"] = captureOut ? ShellTask.parseOutput(stdout) : .null
        out["stdout"] = .string(captureOut ? stdout : "")
        out["stderr"] = .string(captureErr ? result.stderr : "")
        out["exit_code"] = .int(Int64(result.exitCode))
        out["success"] = .bool(result.exitCode == 0)
        return .event(event.with(data: .object(out)))
    }

    /// stdout as JSON when it parses as a JSON object or array, else the text.
    static func parseOutput(_ text: String) -> Value {
        let trimmed = text.drop(while: { $0.isWhitespace })
        if trimmed.first == "{" || trimmed.first == "[", let v = try? Value.parseJSON(text) { return v }
        return .string(text)
    }

    static func which(_ command: String, path: String?) -> String? {
        for dir in (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(dir)/\(command)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }
}

/// A child process with its output read line by line while it runs.
///
/// Started with `posix_spawn` in a process group of its own (so cancelling kills whatever it
/// started too); one thread per child polls its pipes, feeds its stdin and reaps it. This is
/// leaner than Foundation's `Process` (no run loop, no thread per pipe), which matters for
/// flows that are mostly short commands.
enum ChildProcess {
    struct Result: Sendable {
        var exitCode: Int32
        var stdout: String
        var stderr: String
    }

    static func run(executable: String, arguments: [String], environment: [String: String], workdir: String?, stdin: [UInt8]?,
                    maxOutputBytes: Int, onStdout: (@Sendable (String) -> Void)?, onStderr: (@Sendable (String) -> Void)?) async throws -> Result {
        if let workdir {
            var info = stat()
            guard stat(workdir, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
                throw TaskError.permanent("workdir '\(workdir)' is not a directory")
            }
        }
        let pid = try spawn(executable: executable, arguments: arguments, environment: environment, workdir: workdir,
                            feedsStdin: stdin != nil)
        let child = pid.child
        ProcessRegistry.shared.add(child)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Result, Error>) in
                let out = LineReader(limit: maxOutputBytes, onLine: onStdout)
                let err = LineReader(limit: maxOutputBytes, onLine: onStderr)
                Thread.detachNewThread {
                    pump(stdout: pid.stdout, stderr: pid.stderr, stdin: pid.stdin, input: stdin ?? [], out: out, err: err)
                    var status: Int32 = 0
                    while waitpid(child, &status, 0) == -1 && errno == EINTR {}
                    ProcessRegistry.shared.remove(child)
                    if out.overflowed || err.overflowed {
                        continuation.resume(throwing: TaskError.permanent("output exceeded max_output_bytes (\(maxOutputBytes))"))
                        return
                    }
                    // Exited normally: its code; killed by a signal: -1.
                    let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : -1
                    continuation.resume(returning: Result(exitCode: code, stdout: out.text, stderr: err.text))
                }
            }
        } onCancel: {
            ProcessRegistry.shared.kill(child)
        }
    }

    private struct Spawned {
        var child: pid_t
        var stdout: Int32
        var stderr: Int32
        var stdin: Int32  // -1 when the child reads /dev/null
    }

    /// Held while pipes are made and a child is started, so no child inherits another's pipe
    /// in the moment before it is marked close-on-exec (which would delay that pipe's EOF).
    private static let spawnLock = Mutex(())

    private static func pipePair() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw TaskError("cannot create a pipe: \(String(cString: strerror(errno)))") }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return (fds[0], fds[1])
    }

    private typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32

    /// glibc's `posix_spawn_file_actions_addchdir_np` (2.29+), which Swift's Glibc module does not export.
    private static let addChdir: AddChdir? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addchdir_np") else { return nil }
        return unsafeBitCast(symbol, to: AddChdir.self)
    }()

    private typealias AddClosefrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34+): the child gets only its
    /// standard streams, not descriptors Sluice inherited without close-on-exec (a parent's
    /// pipe kept open by a long-lived child would hold that parent's reader).
    private static let addClosefrom: AddClosefrom? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: AddClosefrom.self)
    }()

    private static func spawn(executable: String, arguments: [String], environment: [String: String], workdir: String?,
                              feedsStdin: Bool) throws -> Spawned {
        try spawnLock.withLock { _ throws -> Spawned in
            try spawnLocked(executable: executable, arguments: arguments, environment: environment, workdir: workdir, feedsStdin: feedsStdin)
        }
    }

    private static func spawnLocked(executable: String, arguments: [String], environment: [String: String], workdir: String?,
                                    feedsStdin: Bool) throws -> Spawned {
        if workdir != nil && addChdir == nil { throw TaskError.permanent("workdir is not supported by this system's C library") }
        let out = try pipePair()
        let err = try pipePair()
        let input = feedsStdin ? try pipePair() : nil
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let input {
            posix_spawn_file_actions_adddup2(&actions, input.read, 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_adddup2(&actions, out.write, 1)
        posix_spawn_file_actions_adddup2(&actions, err.write, 2)
        if let workdir, let addChdir { _ = addChdir(&actions, workdir) }
        if let addClosefrom { _ = addClosefrom(&actions, 3) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own process group; default signal handling and an empty mask, whatever ours are.
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for sig in [SIGPIPE, SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGCHLD] { sigaddset(&defaults, sig) }
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
        // The child has its own copies of these ends; ours must close for EOF to arrive.
        close(out.write)
        close(err.write)
        if let input { close(input.read) }
        guard rc == 0 else {
            close(out.read)
            close(err.read)
            if let input { close(input.write) }
            throw TaskError.permanent("cannot start \(executable): \(String(cString: strerror(rc)))")
        }
        if let input { _ = fcntl(input.write, F_SETFL, fcntl(input.write, F_GETFL) | O_NONBLOCK) }
        return Spawned(child: child, stdout: out.read, stderr: err.read, stdin: input?.write ?? -1)
    }

    /// Reads stdout and stderr to EOF while writing `input` to stdin; closes every descriptor.
    private static func pump(stdout: Int32, stderr: Int32, stdin: Int32, input: [UInt8], out: LineReader, err: LineReader) {
        var inFD = stdin
        var written = 0
        if inFD >= 0 && input.isEmpty {
            close(inFD)
            inFD = -1
        }
        var open: [(fd: Int32, reader: LineReader)] = [(stdout, out), (stderr, err)]
        var chunk = [UInt8](repeating: 0, count: 65536)
        while !open.isEmpty || inFD >= 0 {
            var fds = open.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            if inFD >= 0 { fds.append(pollfd(fd: inFD, events: Int16(POLLOUT), revents: 0)) }
            let ready = poll(&fds, nfds_t(fds.count), -1)
            if ready < 0 {
                if errno == EINTR { continue }
                break
            }
            if inFD >= 0, let last = fds.last, last.revents != 0 {
                if last.revents & Int16(POLLOUT) != 0 {
                    let n = input.withUnsafeBytes { write(inFD, $0.baseAddress! + written, input.count - written) }
                    if n > 0 { written += n }
                    if written >= input.count || (n < 0 && errno != EAGAIN && errno != EINTR) {
                        close(inFD)
                        inFD = -1
                    }
                } else {
                    // The child closed its stdin (or exited) without reading everything.
                    close(inFD)
                    inFD = -1
                }
            }
            var stillOpen: [(fd: Int32, reader: LineReader)] = []
            for (i, entry) in open.enumerated() {
                guard fds[i].revents != 0 else {
                    stillOpen.append(entry)
                    continue
                }
                let n = chunk.withUnsafeMutableBytes { read(entry.fd, $0.baseAddress, 65536) }
                if n > 0 {
                    entry.reader.consume(chunk[0..<n])
                    stillOpen.append(entry)
                } else if n < 0 && (errno == EINTR || errno == EAGAIN) {
                    stillOpen.append(entry)
                } else {
                    entry.reader.finish()
                    close(entry.fd)
                }
            }
            open = stillOpen
        }
        for entry in open { close(entry.fd) }
        if inFD >= 0 { close(inFD) }
    }
}

/// Processes started by shell tasks, so cancellation can kill them and their process group.
final class ProcessRegistry: Sendable {
    static let shared = ProcessRegistry()
    private struct State {
        var running: Set<pid_t> = []
        var killed: Set<pid_t> = []
    }
    private let state = Mutex(State())

    func add(_ pid: pid_t) {
        let alreadyKilled = state.withLock { s in
            s.running.insert(pid)
            return s.killed.contains(pid)
        }
        if alreadyKilled { signal(pid) }
    }

    func remove(_ pid: pid_t) {
        state.withLock { s in
            s.running.remove(pid)
            s.killed.remove(pid)
        }
    }

    func kill(_ pid: pid_t) {
        let isRunning = state.withLock { s in
            s.killed.insert(pid)
            return s.running.contains(pid)
        }
        if isRunning { signal(pid) }
    }

    /// Kills every running child (the process is exiting).
    func killAll() {
        for pid in state.withLock({ Array($0.running) }) { signal(pid) }
    }

    private func signal(_ pid: pid_t) {
        guard pid > 0 else { return }
        // The child leads its own group: this takes down what it started, too.
        Foundation.kill(-pid, SIGKILL)
        Foundation.kill(pid, SIGKILL)
    }
}

/// Collects a pipe's bytes (up to a limit), splitting lines as they arrive.
final class LineReader: @unchecked Sendable {
    // Only the child's pump thread touches these until it has finished.
    private var buffer: [UInt8] = []
    private var total: [UInt8] = []
    private(set) var overflowed = false
    private let limit: Int
    private let onLine: (@Sendable (String) -> Void)?

    init(limit: Int, onLine: (@Sendable (String) -> Void)?) {
        self.limit = limit
        self.onLine = onLine
    }

    var text: String { String(decoding: total, as: UTF8.self) }

    /// End of input: a last line without a newline still counts.
    func finish() {
        if !buffer.isEmpty, let onLine { onLine(String(decoding: buffer, as: UTF8.self)) }
        buffer.removeAll()
    }

    func consume(_ bytes: ArraySlice<UInt8>) {
        if total.count + bytes.count > limit {
            overflowed = true
        } else {
            total.append(contentsOf: bytes)
        }
        guard let onLine else { return }
        for b in bytes {
            if b == UInt8(ascii: "\n") {
                onLine(String(decoding: buffer, as: UTF8.self))
                buffer.removeAll(keepingCapacity: true)
            } else {
                buffer.append(b)
            }
        }
    }
}
