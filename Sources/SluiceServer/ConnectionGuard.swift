import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1

/// Wraps the server's connection set-up to cover the time before a connection's first request
/// is understood, which Hummingbird leaves open while it decides whether to upgrade to a
/// WebSocket:
/// - a request that does not parse as HTTP gets a 400 with a JSON error, then the connection
///   closes (without this it got no answer and stayed open);
/// - a connection that sends no complete request head within `firstRequestTimeout` is closed;
/// - at shutdown such a connection is closed at once instead of holding the server open until
///   the client goes away.
/// After the first request, Hummingbird's own handling (parse errors, idle keep-alive
/// connections, quiescing) applies.
struct GuardedChildChannel<Inner: ServerChildChannel>: ServerChildChannel {
    typealias Value = Inner.Value

    let inner: Inner
    let firstRequestTimeout: TimeAmount

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        inner.setup(channel: channel, logger: logger).flatMapThrowing { value in
            // Right behind the decoder: it sees the first request head before a WebSocket upgrade
            // can take it (a guard further back would never see a read on an upgraded
            // connection, and would close it when its timer ran out).
            let operations = channel.pipeline.syncOperations
            let decoder = try operations.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try operations.addHandler(FirstRequestGuard(timeout: firstRequestTimeout), position: .after(decoder))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        // A connection this guard answered or closed before its first request ends Hummingbird's
        // WebSocket negotiation with an error it logs as one; it is routine (a port scan, a
        // silent client), so it is logged at debug level.
        var quieter = logger
        quieter.handler = RoutineNegotiationErrors(wrapped: logger.handler)
        await inner.handle(value: value, logger: quieter)
    }
}

/// Logs Hummingbird's "Error handling upgrade result" at debug level; everything else as is.
struct RoutineNegotiationErrors: LogHandler {
    var wrapped: any LogHandler

    var logLevel: Logger.Level {
        get { wrapped.logLevel }
        set { wrapped.logLevel = newValue }
    }
    var metadata: Logger.Metadata {
        get { wrapped.metadata }
        set { wrapped.metadata = newValue }
    }
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { wrapped[metadataKey: key] }
        set { wrapped[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) {
        var event = event
        if event.level == .error, event.message.description == "Error handling upgrade result" {
            guard wrapped.logLevel <= .debug else { return }
            event.level = .debug
        }
        wrapped.log(event: event)
    }
}

/// Sits right behind the HTTP decoder until the first request head passes; see
/// `GuardedChildChannel`.
final class FirstRequestGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart

    private let timeout: TimeAmount
    private var answered = false
    private var timer: Scheduled<Void>?

    init(timeout: TimeAmount) { self.timeout = timeout }

    func handlerAdded(context: ChannelHandlerContext) {
        let loop = context.eventLoop.assumeIsolated()
        let context = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = loop.scheduleTask(in: timeout) { context.value.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // A request reached the application: from here on Hummingbird handles the connection
        // (leaving the pipeline cancels the timer).
        context.fireChannelRead(data)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is HTTPParserError, !answered else {
            context.fireErrorCaught(error)
            return
        }
        answered = true
        // Written from the decoder's place in the pipeline, so the response goes out through
        // the HTTP encoder in front of it.
        guard let decoder = try? context.pipeline.syncOperations.context(handlerType: ByteToMessageHandler<HTTPRequestDecoder>.self) else {
            context.close(promise: nil)
            return
        }
        var body = context.channel.allocator.buffer(capacity: 96)
        body.writeString(#"{"error":{"code":"bad_request","message":"the request is not valid HTTP/1.1"}}"#)
        let head = HTTPResponseHead(version: .http1_1, status: .badRequest, headers: [
            "content-type": "application/json", "content-length": String(body.readableBytes), "connection": "close",
        ])
        decoder.write(NIOAny(HTTPServerResponsePart.head(head)), promise: nil)
        decoder.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(body))), promise: nil)
        decoder.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil))).whenComplete { _ in
            decoder.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Shutting down: a connection that has not sent a request has nothing in flight.
        if event is ChannelShouldQuiesceEvent {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
