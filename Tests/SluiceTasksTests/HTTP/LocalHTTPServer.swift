import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A small HTTP/1.1 server on 127.0.0.1 and a free port, started by a test. Each route answers
/// from a closure; every request is recorded so tests can count attempts.
final class LocalHTTPServer: Sendable {
    struct Request: Sendable {
        var method: String
        var path: String
        var query: String
        var headers: [String: String]
        var body: String
    }

    struct Response: Sendable {
        var status: Int
        var headers: [String: String] = [:]
        var body: String = ""
        /// Wait this long before answering.
        var delay: Duration = .zero
    }

    typealias Route = @Sendable (_ request: Request, _ hitNumber: Int) -> Response

    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel
    private final class RequestLog: Sendable {
        let entries = Mutex<[Request]>([])
    }

    private let log = RequestLog()
    let port: Int

    init(routes: [String: Route]) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let log = self.log
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(Handler(routes: routes, log: log))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        self.group = group
        self.channel = channel
        self.port = channel.localAddress?.port ?? 0
    }

    func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    var requests: [Request] { log.entries.withLock { $0 } }

    func hits(_ path: String) -> Int { requests.filter { $0.path == path }.count }

    func stop() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }

    private final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        // Only touched on the channel's event loop.
        private var head: HTTPRequestHead?
        private var body = ""
        private let routes: [String: Route]
        private let log: RequestLog

        init(routes: [String: Route], log: RequestLog) {
            self.routes = routes
            self.log = log
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let h):
                head = h
                body = ""
            case .body(var buffer):
                body += buffer.readString(length: buffer.readableBytes) ?? ""
            case .end:
                guard let head else { return }
                let parts = head.uri.split(separator: "?", maxSplits: 1).map(String.init)
                var headers: [String: String] = [:]
                for (name, value) in head.headers { headers[name.lowercased()] = value }
                let request = Request(method: head.method.rawValue, path: parts[0], query: parts.count > 1 ? parts[1] : "",
                                      headers: headers, body: body)
                let hit = log.entries.withLock { l in
                    l.append(request)
                    return l.filter { $0.path == request.path }.count
                }
                let response = routes[request.path].map { $0(request, hit) } ?? Response(status: 404, body: "no route \(request.path)")
                let write = { [self] in self.write(response, keepAlive: head.isKeepAlive, context: context) }
                if response.delay > .zero {
                    let ms = Int64(response.delay.components.seconds * 1000 + response.delay.components.attoseconds / 1_000_000_000_000_000)
                    context.eventLoop.scheduleTask(in: .milliseconds(ms)) { write() }
                } else {
                    write()
                }
            }
        }

        private func write(_ response: Response, keepAlive: Bool, context: ChannelHandlerContext) {
            guard context.channel.isActive else { return }
            var headers = HTTPHeaders()
            for (k, v) in response.headers { headers.add(name: k, value: v) }
            headers.replaceOrAdd(name: "content-length", value: String(response.body.utf8.count))
            if !keepAlive { headers.replaceOrAdd(name: "connection", value: "close") }
            let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: response.body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
