import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// An address to listen on, `HOST:PORT` (`[::1]:PORT` for IPv6); port 0 takes a free one.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT`; a configuration error naming the problem for anything else.
    public static func parse(_ text: String) -> Result<ListenAddress, InputError> {
        func bad(_ why: String) -> Result<ListenAddress, InputError> {
            .failure(.configuration("--listen / DS_LISTEN \(Limits.quoted(text)) \(why); give HOST:PORT, such as 127.0.0.1:8080 or 0.0.0.0:0"))
        }
        guard let colon = text.lastIndex(of: ":") else { return bad("has no port") }
        var host = String(text[..<colon])
        let portText = text[text.index(after: colon)...]
        if host.hasPrefix("[") || host.hasSuffix("]") {
            guard host.hasPrefix("[") && host.hasSuffix("]") && host.count > 2 else { return bad("has unbalanced brackets") }
            host = String(host.dropFirst().dropLast())
        } else if host.contains(":") {
            return bad("has an IPv6 address without brackets (write [::1]:8080)")
        }
        guard !host.isEmpty else { return bad("has no host") }
        guard host.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 && $0 != "/" }) else {
            return bad("has a host with spaces, control characters or '/'")
        }
        guard !portText.isEmpty, portText.allSatisfy(\.isASCII), portText.allSatisfy(\.isNumber), portText.count <= 5,
              let port = Int(portText), port <= 65535 else {
            return bad("has no port from 0 to 65535")
        }
        return .success(ListenAddress(host: host, port: port))
    }

    /// A daemon's `--listen`, else `DS_LISTEN`, else none (empty means none too).
    public static func option(_ flag: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ListenAddress? {
        guard let text = flag ?? environment["DS_LISTEN"], !text.isEmpty else { return nil }
        return try parse(text).get()
    }

    /// `host:port`, with brackets around an IPv6 host.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// A parsed request: the raw path (never percent-decoded: routes match it byte for byte) and query.
public struct HTTPRequest: Sendable {
    public var method: HTTPMethod
    public var version: HTTPVersion = .http1_1
    public var path: String
    public var query: [String: String]

    init(head: HTTPRequestHead) {
        self.init(method: head.method, uri: head.uri)
        version = head.version
    }

    /// A request for `uri` (path and query, as sent).
    public init(method: HTTPMethod = .GET, uri: String) {
        self.method = method
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        path = String(parts.first ?? "")
        var query: [String: String] = [:]
        if parts.count > 1 {
            for pair in parts[1].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                query[String(kv[0])] = kv.count > 1 ? String(kv[1]) : ""
            }
        }
        self.query = query
    }
}

/// What a route answers: a whole body, or a body written piece by piece (chunked).
public enum HTTPReply: Sendable {
    case text(HTTPResponseStatus, String, contentType: String = "text/plain; charset=utf-8")
    case stream(contentType: String, body: @Sendable (HTTPBodyWriter) async throws -> Void)

    public static func notFound(_ why: String = "not found") -> HTTPReply { .text(.notFound, why + "\n") }

    /// The status code it answers with.
    public var statusCode: Int {
        switch self {
        case .text(let status, _, _): return Int(status.code)
        case .stream: return 200
        }
    }
}

/// Writes a streamed body; throws once the client has gone.
public struct HTTPBodyWriter: Sendable {
    let send: @Sendable ([UInt8]) async throws -> Void
    let gone: @Sendable () -> Bool

    init(writer: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>, channel: any Channel) {
        send = { bytes in
            try await writer.write(.body(.byteBuffer(ByteBuffer(bytes: bytes))))
            // A client that reads slowly (or not at all) holds back the next piece: without this, a
            // reader that stalls leaves megabytes queued toward it.
            try await HTTPServer.waitUntilSent(channel, leaving: 64 << 10)
        }
        gone = { !channel.isActive }
    }

    /// A writer that hands each piece to `sink` (a client that never leaves).
    public static func collecting(_ sink: @escaping @Sendable ([UInt8]) -> Void) -> HTTPBodyWriter {
        HTTPBodyWriter(send: { sink($0) }, gone: { false })
    }

    private init(send: @escaping @Sendable ([UInt8]) async throws -> Void, gone: @escaping @Sendable () -> Bool) {
        self.send = send
        self.gone = gone
    }

    /// The client closed its end: a body that waits for more to write should stop.
    public var clientGone: Bool { gone() }

    public func write(_ bytes: some Collection<UInt8>) async throws {
        guard !bytes.isEmpty else { return }
        try await send(Array(bytes))
    }
}

/// A small HTTP/1.1 server on SwiftNIO: one request per connection (`Connection: close`), answered
/// by `route`. For `/metrics`, `/healthz` and a worker's `/logs`: nothing here serves files by name.
/// A client must send its whole request within `requestTimeout`; past `maxConnections` open at
/// once, new ones are closed as soon as they are accepted (an idle client holds no descriptor for
/// long); a closed server gives answers under way `closeGrace` to end. Binding raises the
/// process's soft descriptor limit to its hard limit.
public final class HTTPServer: Sendable {
    static let requestTimeout: Duration = .seconds(10)
    static let maxConnections = 512
    static let closeGrace: Duration = .seconds(2)
    /// A client that takes nothing of what is sent to it for this long is cut off.
    static let stallLimit: Duration = .seconds(60)

    /// Waits until at most `leaving` bytes of what was written wait in the channel (the rest is in
    /// the kernel, which delivers it even after a close). Writes reach the channel on its event
    /// loop, later: a task queued behind them runs first. Throws once the client is gone, or has
    /// taken nothing for `stallLimit` (then the connection is closed).
    static func waitUntilSent(_ channel: any Channel, leaving: Int) async throws {
        try await channel.eventLoop.submit {}.get()
        var least = Int.max
        var progress = ContinuousClock.now
        while true {
            guard channel.isActive else { throw ChannelError.ioOnClosedChannel }
            let pending = try await channel.getOption(.bufferedWritableBytes).get()
            if pending <= leaving { return }
            if pending < least {
                least = pending
                progress = .now
            } else if ContinuousClock.now - progress > stallLimit {
                channel.close(promise: nil)
                throw ChannelError.ioOnClosedChannel
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    let channel: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>
    /// The address it listens on, with the port it got when asked for port 0.
    public let address: ListenAddress

    /// It listens on every address of the machine (`0.0.0.0`, `::`, or a name for them, such as `0`).
    public let wildcard: Bool

    private init(channel: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>,
                 address: ListenAddress, wildcard: Bool) {
        self.channel = channel
        self.address = address
        self.wildcard = wildcard
    }

    /// The address others reach it at: its own, or `host` with its port when it listens on every address.
    public func published(host: String) -> String {
        (wildcard ? ListenAddress(host: host, port: address.port) : address).description
    }

    /// Binds now (so that a taken port fails the daemon's start); `serve` answers requests.
    /// The daemon raised its descriptor limit first (`DaemonListener.start`).
    public static func bind(_ address: ListenAddress) async throws -> HTTPServer {
        let channel: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>
        do {
            channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: address.host, port: address.port) { child in
                    child.eventLoop.makeCompletedFuture {
                        try child.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: false)
                        return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(wrappingChannelSynchronously: child)
                    }
                }
        } catch {
            throw InputError.configuration("cannot listen on \(address): \(error)")
        }
        let local = channel.channel.localAddress
        let port = local?.port ?? address.port
        return HTTPServer(channel: channel, address: ListenAddress(host: address.host, port: port),
                          wildcard: ["0.0.0.0", "::"].contains(local?.ipAddress ?? ""))
    }

    struct Closed: Error {}

    /// Answers requests until cancelled, or until `close()` and the answers under way have ended
    /// (at most `closeGrace` later).
    public func serve(logger: Logger, route: @escaping @Sendable (HTTPRequest) async -> HTTPReply) async throws {
        let open = NIOLockedValueBox(0)
        do {
            try await withThrowingDiscardingTaskGroup { group in
                try await channel.executeThenClose { connections in
                    for try await connection in connections {
                        let admitted = open.withLockedValue { n in
                            guard n < Self.maxConnections else { return false }
                            n += 1
                            return true
                        }
                        guard admitted else {
                            // Refused at accept: closed at once, nothing read, no timer (its writer
                            // must still be finished, which executeThenClose does).
                            group.addTask { try? await connection.executeThenClose { _, _ in } }
                            continue
                        }
                        group.addTask {
                            defer { open.withLockedValue { $0 -= 1 } }
                            do {
                                try await Self.answer(connection, route: route)
                            } catch {
                                logger.debug("HTTP connection ended: \(error)")
                            }
                        }
                    }
                }
                // Closed: a follower reading the last bytes of a task that just ended finishes.
                group.addTask {
                    let deadline = ContinuousClock.now + Self.closeGrace
                    while open.withLockedValue({ $0 }) > 0 && ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(20))
                    }
                    throw Closed()  // ends the group, cancelling what is left
                }
            }
        } catch is Closed {}
    }

    /// Closes the listening socket; `serve` then returns once the answers under way have ended.
    public func close() async {
        do {
            try await channel.channel.close()
        } catch ChannelError.alreadyClosed {
        } catch {
            // Nothing to do: the socket goes with the process.
        }
    }

    private static func answer(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>,
                               route: @Sendable (HTTPRequest) async -> HTTPReply) async throws {
        // A client that never finishes its request (or sends an endless body) is cut off.
        let received = NIOLockedValueBox(false)
        let watchdog = Task { [channel = connection.channel] in
            try await Task.sleep(for: Self.requestTimeout)
            if !received.withLockedValue({ $0 }) { channel.close(promise: nil) }
        }
        defer { watchdog.cancel() }
        try await connection.executeThenClose { inbound, outbound in
            var request: HTTPRequest?
            for try await part in inbound {
                switch part {
                case .head(let head): request = HTTPRequest(head: head)
                case .body: continue  // no route takes a body
                case .end:
                    received.withLockedValue { $0 = true }
                    guard let request else { return }
                    let reply: HTTPReply = if request.method == .GET || request.method == .HEAD {
                        await route(request)
                    } else {
                        .text(.methodNotAllowed, "only GET\n")
                    }
                    var headers = HTTPHeaders()
                    headers.add(name: "Connection", value: "close")
                    headers.add(name: "Cache-Control", value: "no-store")
                    switch reply {
                    case .text(let status, let text, let contentType):
                        headers.add(name: "Content-Type", value: contentType)
                        headers.add(name: "Content-Length", value: String(text.utf8.count))
                        try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers)))
                        if request.method != .HEAD { try await outbound.write(.body(.byteBuffer(ByteBuffer(string: text)))) }
                        try await outbound.write(.end(nil))
                        try await Self.waitUntilSent(connection.channel, leaving: 0)
                    case .stream(let contentType, let body):
                        headers.add(name: "Content-Type", value: contentType)
                        // HTTP/1.0 knows no chunks: its body ends when the connection closes.
                        let version: HTTPVersion = request.version == .http1_0 ? .http1_0 : .http1_1
                        if version == .http1_1 { headers.add(name: "Transfer-Encoding", value: "chunked") }
                        try await outbound.write(.head(HTTPResponseHead(version: version, status: .ok, headers: headers)))
                        if request.method != .HEAD { try await body(HTTPBodyWriter(writer: outbound, channel: connection.channel)) }
                        try await outbound.write(.end(nil))
                        // Sent before the close: a close drops what still waits in the channel.
                        try await Self.waitUntilSent(connection.channel, leaving: 0)
                    }
                    return
                }
            }
        }
    }
}
