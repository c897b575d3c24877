import Foundation
import SluiceCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A `sluice serve` process on a free loopback port, with its log in a file.
final class ServeProcess {
    let process: Process
    let log: String
    let port: Int

    /// Starts `sluice serve` with `args` (flows folder, options) and waits, bounded, for its
    /// listening line.
    init(_ args: [String], dir: String, environment: [String: String] = [:]) throws {
        log = dir + "/serve-\(UUID().uuidString.prefix(8)).log"
        FileManager.default.createFile(atPath: log, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLI.binary)
        p.arguments = ["serve"] + args + (args.contains("--port") ? [] : ["--port", "0"])
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        p.environment = env
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle(forWritingAtPath: log)
        p.standardInput = FileHandle.nullDevice
        try p.run()
        process = p
        var found: Int?
        let logPath = log
        _ = CLI.waitFor(seconds: 60) {
            let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            if let range = text.range(of: "listening on http://127.0.0.1:") {
                found = Int(text[range.upperBound...].prefix(while: \.isNumber))
            }
            return found != nil || !p.isRunning
        }
        guard let found else {
            p.terminate()
            throw ServeError("sluice serve did not start listening: \((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")")
        }
        port = found
    }

    var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    /// SIGTERM, then waits (bounded) for the exit; SIGKILL if it does not come.
    @discardableResult
    func stop(seconds: Double = 30) -> Int32? {
        guard process.isRunning else { return process.terminationStatus }
        kill(process.processIdentifier, SIGTERM)
        if CLI.waitFor(seconds: seconds, { !process.isRunning }) { return process.terminationStatus }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        return nil
    }

    /// SIGKILL: the process dies at once, as in a crash.
    func crash() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }

    func request(_ method: String, _ path: String, headers: [String: String] = [:], body: String? = nil, timeout: Double = 30) throws -> HTTPReply {
        try HTTPReply.send(port: port, method: method, path: path, headers: headers, body: body.map { Array($0.utf8) } ?? [], timeout: timeout)
    }

    /// The body as JSON (failing the test when it is not).
    func json(_ method: String, _ path: String, headers: [String: String] = [:], body: String? = nil) throws -> (Int, Value) {
        let reply = try request(method, path, headers: headers, body: body)
        return (reply.status, try Value.parseJSON(reply.text))
    }
}

struct ServeError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// One HTTP/1.1 exchange over a plain socket: nothing between the test and the server.
struct HTTPReply {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]
    var text: String { String(decoding: body, as: UTF8.self) }

    func header(_ name: String) -> String? { headers[name.lowercased()] }

    static func connect(port: Int, timeout: Double) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ServeError("socket() failed") }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard ok == 0 else {
            close(fd)
            throw ServeError("cannot connect to 127.0.0.1:\(port)")
        }
        return fd
    }

    static func write(_ fd: Int32, _ bytes: [UInt8]) {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            sent += n
        }
    }

    static func send(port: Int, method: String, path: String, headers: [String: String], body: [UInt8], timeout: Double) throws -> HTTPReply {
        let fd = try connect(port: port, timeout: timeout)
        defer { close(fd) }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\nContent-Length: \(body.count)\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        write(fd, Array((head + "\r\n").utf8) + body)
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 { throw ServeError("no complete answer to \(method) \(path) within \(timeout) s") }
            if n == 0 { break }
            data += buffer[..<n]
        }
        return try parse(data, what: "\(method) \(path)")
    }

    static func parse(_ data: [UInt8], what: String) throws -> HTTPReply {
        guard let end = data.firstRange(of: Array("\r\n\r\n".utf8)) else { throw ServeError("no HTTP answer to \(what)") }
        let lines = String(decoding: data[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let parts = lines[0].split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { throw ServeError("bad status line '\(lines[0])'") }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Array(data[end.upperBound...])
        if headers["transfer-encoding"]?.lowercased() == "chunked" { body = dechunk(body) }
        return HTTPReply(status: status, headers: headers, body: body)
    }

    static func dechunk(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count, let lineEnd = bytes[i...].firstRange(of: Array("\r\n".utf8)) {
            let size = Int(String(decoding: bytes[i..<lineEnd.lowerBound], as: UTF8.self).split(separator: ";")[0], radix: 16) ?? 0
            if size == 0 { break }
            let start = lineEnd.upperBound
            out += bytes[start..<min(bytes.count, start + size)]
            i = start + size + 2
        }
        return out
    }
}
