import Foundation
import Logging
import ServiceLifecycle

/// Runs a daemon in the foreground as a `Service`: SIGTERM and SIGINT start a graceful stop.
public enum Daemon {
    /// What a graceful stop does to the body.
    public enum StopBehavior: Sendable {
        /// Cancel the body: for a master, whose unfinished work any master can take over.
        case cancel
        /// Tell the body, which winds down on its own: for a worker, whose tasks get a grace period.
        case notify(@Sendable () -> Void)
    }

    struct Body: Service {
        let body: @Sendable () async throws -> Void
        let stop: StopBehavior
        func run() async throws {
            switch stop {
            case .cancel:
                do { try await cancelWhenGracefulShutdown { try await body() } } catch is CancellationError {}
            case .notify(let onStop):
                try await withGracefulShutdownHandler { try await body() } onGracefulShutdown: { onStop() }
            }
        }
    }

    /// Returns when the body returns; a body that throws `CancellationError` after a stop returns too.
    public static func run(logger: Logger, stop: StopBehavior, _ body: @escaping @Sendable () async throws -> Void) async throws {
        let service = ServiceGroupConfiguration.ServiceConfiguration(
            service: Body(body: body, stop: stop),
            successTerminationBehavior: .gracefullyShutdownGroup,
            failureTerminationBehavior: .gracefullyShutdownGroup)
        var configuration = ServiceGroupConfiguration(services: [service], logger: logger)
        configuration.gracefulShutdownSignals = [.sigterm, .sigint]
        do {
            try await ServiceGroup(configuration: configuration).run()
        } catch is CancellationError {
            return
        }
    }
}
