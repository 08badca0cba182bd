import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// Why a GET failed.
public enum HTTPGetError: Error, CustomStringConvertible {
    /// No connection (refused, unreachable, timed out), or it broke before the answer ended.
    case unreachable(String, String)
    /// An answer other than 200.
    case status(Int, String)

    public var description: String {
        switch self {
        case .unreachable(let address, let why): return "\(address) is unreachable: \(why)"
        case .status(let code, let body): return "HTTP \(code): \(body.trimmingCharacters(in: .whitespacesAndNewlines))"
        }
    }
}

/// A minimal HTTP/1.1 GET on SwiftNIO that hands the body over as it comes (for `ds-logs -f`).
public enum HTTPGet {
    /// GETs `target` (path and query) from `address` and calls `body` with each piece of a 200
    /// answer's body; throws `HTTPGetError` for any other answer, a broken connection, or nothing
    /// received for `idleTimeout` (a server that hangs, or a host gone without a word).
    public static func stream(_ address: String, _ target: String, connectTimeout: TimeAmount = .seconds(5),
                              idleTimeout: Duration = .seconds(30), body: (ByteBuffer) throws -> Void) async throws {
        guard let (host, port) = split(address) else { throw HTTPGetError.unreachable(address, "not a HOST:PORT address") }
        let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(connectTimeout)
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw HTTPGetError.unreachable(address, "\(error)")
        }
        var ended = false
        let lastHeard = NIOLockedValueBox(ContinuousClock.now)
        let idled = NIOLockedValueBox(false)
        let watchdog = Task { [channel = channel.channel] in
            while !Task.isCancelled {
                try await Task.sleep(for: .milliseconds(500))
                if ContinuousClock.now - lastHeard.withLockedValue({ $0 }) > idleTimeout {
                    idled.withLockedValue { $0 = true }
                    channel.close(promise: nil)
                    return
                }
            }
        }
        defer { watchdog.cancel() }
        do {
            try await channel.executeThenClose { inbound, outbound in
                var headers = HTTPHeaders()
                headers.add(name: "Host", value: address)
                headers.add(name: "Connection", value: "close")
                try await outbound.write(.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: target, headers: headers)))
                try await outbound.write(.end(nil))
                var status = 0
                var errorBody = ""
                for try await part in inbound {
                    lastHeard.withLockedValue { $0 = .now }
                    switch part {
                    case .head(let head): status = Int(head.status.code)
                    case .body(let buffer):
                        if status == 200 { try body(buffer) } else if errorBody.utf8.count < 4096 { errorBody += String(buffer: buffer) }
                    case .end:
                        ended = true
                        if status != 200 { throw HTTPGetError.status(status, errorBody) }
                        return
                    }
                }
            }
        } catch let error as HTTPGetError {
            throw error
        } catch where !ended {
            throw HTTPGetError.unreachable(address, idled.withLockedValue { $0 } ? "nothing received for \(idleTimeout)" : "the connection broke: \(error)")
        }
        if !ended {
            throw HTTPGetError.unreachable(address, idled.withLockedValue { $0 } ? "nothing received for \(idleTimeout)"
                                                                               : "the connection closed before the answer ended")
        }
    }

    static func split(_ address: String) -> (String, Int)? {
        guard case .success(let a) = ListenAddress.parse(address) else { return nil }
        return (a.host, a.port)
    }
}
