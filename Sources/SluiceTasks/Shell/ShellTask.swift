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
enum ChildProcess {
    struct Result: Sendable {
        var exitCode: Int32
        var stdout: String
        var stderr: String
    }

    static func run(executable: String, arguments: [String], environment: [String: String], workdir: String?, stdin: [UInt8]?,
                    maxOutputBytes: Int, onStdout: (@Sendable (String) -> Void)?, onStderr: (@Sendable (String) -> Void)?) async throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = environment
        if let workdir {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: workdir, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw TaskError.permanent("workdir '\(workdir)' is not a directory")
            }
            process.currentDirectoryURL = URL(fileURLWithPath: workdir)
        }
        let outPipe = Pipe(), errPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        let inPipe: Pipe? = stdin == nil ? nil : Pipe()
        process.standardInput = inPipe ?? FileHandle.nullDevice

        let outReader = LineReader(limit: maxOutputBytes, onLine: onStdout)
        let errReader = LineReader(limit: maxOutputBytes, onLine: onStderr)

        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Result, Error>) in
                let group = DispatchGroup()
                group.enter(); group.enter(); group.enter()
                outReader.start(outPipe.fileHandleForReading) { group.leave() }
                errReader.start(errPipe.fileHandleForReading) { group.leave() }
                process.terminationHandler = { _ in group.leave() }
                do {
                    try process.run()
                } catch {
                    outPipe.fileHandleForWriting.closeFile()
                    errPipe.fileHandleForWriting.closeFile()
                    continuation.resume(throwing: TaskError.permanent("cannot start \(executable): \(error.localizedDescription)"))
                    return
                }
                // The child holds its own copies of the write ends; ours must close for EOF to arrive.
                try? outPipe.fileHandleForWriting.close()
                try? errPipe.fileHandleForWriting.close()
                if let inPipe, let stdin {
                    DispatchQueue.global().async {
                        let handle = inPipe.fileHandleForWriting
                        stdin.withUnsafeBytes { raw in
                            var offset = 0
                            while offset < raw.count {
                                let n = write(handle.fileDescriptor, raw.baseAddress! + offset, raw.count - offset)
                                if n <= 0 { break }
                                offset += n
                            }
                        }
                        try? handle.close()
                    }
                }
                ProcessRegistry.shared.add(process)
                group.notify(queue: .global()) {
                    ProcessRegistry.shared.remove(process)
                    if outReader.overflowed || errReader.overflowed {
                        continuation.resume(throwing: TaskError.permanent("output exceeded max_output_bytes (\(maxOutputBytes))"))
                        return
                    }
                    let code = process.terminationReason == .uncaughtSignal ? -1 : process.terminationStatus
                    continuation.resume(returning: Result(exitCode: code, stdout: outReader.text, stderr: errReader.text))
                }
            }
        } onCancel: {
            ProcessRegistry.shared.kill(process)
        }
    }
}

/// Processes started by shell tasks, so cancellation can kill them (and their process group).
final class ProcessRegistry: @unchecked Sendable {
    static let shared = ProcessRegistry()
    // Guarded by `lock`.
    private let lock = NSLock()
    private var running: Set<ObjectIdentifier> = []
    private var killed: Set<ObjectIdentifier> = []

    func add(_ process: Process) {
        lock.lock()
        running.insert(ObjectIdentifier(process))
        let alreadyKilled = killed.contains(ObjectIdentifier(process))
        lock.unlock()
        if alreadyKilled { signal(process) }
    }

    func remove(_ process: Process) {
        lock.lock()
        running.remove(ObjectIdentifier(process))
        killed.remove(ObjectIdentifier(process))
        lock.unlock()
    }

    func kill(_ process: Process) {
        lock.lock()
        killed.insert(ObjectIdentifier(process))
        let isRunning = running.contains(ObjectIdentifier(process))
        lock.unlock()
        if isRunning { signal(process) }
    }

    private func signal(_ process: Process) {
        let pid = process.processIdentifier
        guard pid > 0 else { return }
        // A process that leads its own group takes its children down with it.
        if getpgid(pid) == pid { Foundation.kill(-pid, SIGKILL) }
        Foundation.kill(pid, SIGKILL)
    }
}

/// Reads a pipe to EOF on a background thread, splitting lines as they arrive.
final class LineReader: @unchecked Sendable {
    // Written only by the reading thread; read after `done` has been called.
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

    func start(_ handle: FileHandle, done: @escaping @Sendable () -> Void) {
        let fd = handle.fileDescriptor
        Thread.detachNewThread { [self] in
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, 65536) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                consume(chunk[0..<n])
            }
            if !buffer.isEmpty, let onLine { onLine(String(decoding: buffer, as: UTF8.self)) }
            try? handle.close()
            done()
        }
    }

    private func consume(_ bytes: ArraySlice<UInt8>) {
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
