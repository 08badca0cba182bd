import Foundation
import Logging
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
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
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
    public var path: String
    public var query: [String: String]

    init(head: HTTPRequestHead) {
        self.init(method: head.method, uri: head.uri)
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
}

/// Writes a streamed body; throws once the client has gone.
public struct HTTPBodyWriter: Sendable {
    let writer: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>

    public func write(_ bytes: some Collection<UInt8>) async throws {
        guard !bytes.isEmpty else { return }
        try await writer.write(.body(.byteBuffer(ByteBuffer(bytes: bytes))))
    }
}

/// A small HTTP/1.1 server on SwiftNIO: one request per connection (`Connection: close`), answered
/// by `route`. For `/metrics`, `/healthz` and a worker's `/logs`: nothing here serves files by name.
public final class HTTPServer: Sendable {
    let channel: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>
    /// The address it listens on, with the port it got when asked for port 0.
    public let address: ListenAddress

    private init(channel: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>,
                 address: ListenAddress) {
        self.channel = channel
        self.address = address
    }

    /// Binds now (so that a taken port fails the daemon's start); `serve` answers requests.
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
        let port = channel.channel.localAddress?.port ?? address.port
        return HTTPServer(channel: channel, address: ListenAddress(host: address.host, port: port))
    }

    /// Answers requests until cancelled.
    public func serve(logger: Logger, route: @escaping @Sendable (HTTPRequest) async -> HTTPReply) async throws {
        try await withThrowingDiscardingTaskGroup { group in
            try await channel.executeThenClose { connections in
                for try await connection in connections {
                    group.addTask {
                        do {
                            try await Self.answer(connection, route: route)
                        } catch {
                            logger.debug("HTTP connection ended: \(error)")
                        }
                    }
                }
            }
        }
    }

    /// Closes the listening socket; `serve` then returns.
    public func close() async {
        try? await channel.channel.close()  // already closed is fine
    }

    private static func answer(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>,
                               route: @Sendable (HTTPRequest) async -> HTTPReply) async throws {
        try await connection.executeThenClose { inbound, outbound in
            var request: HTTPRequest?
            for try await part in inbound {
                switch part {
                case .head(let head): request = HTTPRequest(head: head)
                case .body: continue  // no route takes a body
                case .end:
                    guard let request else { return }
                    let reply: HTTPReply = request.method == .GET || request.method == .HEAD
                        ? await route(request) : .text(.methodNotAllowed, "only GET\n")
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
                    case .stream(let contentType, let body):
                        headers.add(name: "Content-Type", value: contentType)
                        headers.add(name: "Transfer-Encoding", value: "chunked")
                        try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)))
                        if request.method != .HEAD { try await body(HTTPBodyWriter(writer: outbound)) }
                        try await outbound.write(.end(nil))
                    }
                    return
                }
            }
        }
    }
}
