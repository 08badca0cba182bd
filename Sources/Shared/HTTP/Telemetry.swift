import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import Prometheus

/// A daemon's `/metrics` and `/healthz`. The daemons count through swift-metrics (`Counter`,
/// `Gauge`, `Timer`); this bootstraps swift-prometheus as its backend once per process, and
/// renders its registry in the Prometheus text format.
public final class Telemetry: Sendable {
    public static let shared = Telemetry()

    let registry = PrometheusCollectorRegistry()
    private let state = NIOLockedValueBox<State>(State())

    struct State {
        var bootstrapped = false
        var refreshers: [@Sendable () async -> Void] = []
        var healthChecks: [@Sendable () async -> String?] = []
    }

    private init() {}

    /// Makes swift-metrics report to this registry. Only the first call counts (swift-metrics can be
    /// bootstrapped once per process); tools that never call it count into swift-metrics' no-op.
    public func bootstrap() {
        let first = state.withLockedValue { s in
            defer { s.bootstrapped = true }
            return !s.bootstrapped
        }
        guard first else { return }
        var factory = PrometheusMetricsFactory(registry: registry)
        // Our latencies are milliseconds: a chained task's hop is a few, a claim often one.
        factory.defaultDurationHistogramBuckets = [
            .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
            .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(300),
        ]
        MetricsSystem.bootstrap(factory)
    }

    /// Runs before each scrape: sets gauges that are read from live state rather than counted.
    public func onScrape(_ refresh: @escaping @Sendable () async -> Void) {
        state.withLockedValue { $0.refreshers.append(refresh) }
    }

    /// Adds to what `/healthz` checks, in order: nil when healthy, else why not (answered with 503).
    public func healthCheck(_ check: @escaping @Sendable () async -> String?) {
        state.withLockedValue { $0.healthChecks.append(check) }
    }

    /// The Prometheus text of every metric, gauges refreshed first.
    public func render() async -> String {
        for refresh in state.withLockedValue({ $0.refreshers }) { await refresh() }
        return registry.emitToString()
    }

    /// `/metrics` and `/healthz`; nil for any other path.
    public func route(_ request: HTTPRequest) async -> HTTPReply? {
        switch request.path {
        case "/metrics":
            return .text(.ok, await render(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        case "/healthz":
            for check in state.withLockedValue({ $0.healthChecks }) {
                if let problem = await check() { return .text(.serviceUnavailable, "unhealthy: \(problem)\n") }
            }
            return .text(.ok, "ok\n")
        default:
            return nil
        }
    }

    /// A ZooKeeper client's session as gauges, `ds_zookeeper_connected` (1 or 0) and
    /// `ds_zookeeper_session_expired` (1 once the session is gone for good), and as the first
    /// health check: unhealthy unless connected.
    /// `current` is the daemon's session of the moment (nil while it makes a new one).
    public func watchSession(_ current: @escaping @Sendable () -> ZooKeeperClient?) {
        healthCheck {
            guard let session = current()?.sessionState else { return "no ZooKeeper session (connecting)" }
            return session == .connected ? nil : "ZooKeeper session \(session.rawValue)"
        }
        let connected = Gauge(label: "ds_zookeeper_connected")
        let expired = Gauge(label: "ds_zookeeper_session_expired")
        onScrape {
            let state = current()?.sessionState ?? .closed
            connected.record(state == .connected ? 1 : 0)
            expired.record(state == .expired ? 1 : 0)
        }
    }
}

/// Starts a daemon's HTTP listener, when it has one: binds at once (a taken port stops the start),
/// then serves `/metrics`, `/healthz` and whatever `extra` routes until the daemon ends.
public enum DaemonListener {
    public static func start(_ address: ListenAddress?, logger: Logger) async throws -> HTTPServer? {
        Telemetry.shared.bootstrap()
        // Before anything else opens: with or without a listener, a daemon's ZooKeeper sockets,
        // database and (a worker's) task supervisor count against its descriptor limit.
        DescriptorLimit.raise()
        guard let address else { return nil }
        let server = try await HTTPServer.bind(address)
        logger.info("listening on http://\(server.address) (/metrics, /healthz)")
        return server
    }

    /// Runs `body` while `server` (if any) answers; when `body` returns, closes the listener and
    /// lets answers under way end (a follower reading a finished task's last bytes), briefly.
    public static func serving(_ server: HTTPServer?, logger: Logger,
                               extra: @escaping @Sendable (HTTPRequest) async -> HTTPReply? = { _ in nil },
                               _ body: () async throws -> Void) async throws {
        let serving = server.map { s in Task { try await serve(s, logger: logger, extra: extra) } }
        defer { serving?.cancel() }
        try await body()
        await server?.close()
        _ = await serving?.result  // its own end: the listener closed, its answers done
    }

    /// Serves until cancelled.
    static func serve(_ server: HTTPServer, logger: Logger,
                             extra: @escaping @Sendable (HTTPRequest) async -> HTTPReply? = { _ in nil }) async throws {
        try await server.serve(logger: logger) { request in
            if let reply = await Telemetry.shared.route(request) { return reply }
            if let reply = await extra(request) { return reply }
            return .notFound()
        }
    }
}
