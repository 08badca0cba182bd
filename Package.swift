// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "ds",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "ds-master", targets: ["ds-master"]),
        .executable(name: "ds-worker", targets: ["ds-worker"]),
        .executable(name: "ds-submit", targets: ["ds-submit"]),
        .executable(name: "ds-failover", targets: ["ds-failover"]),
        .executable(name: "ds-instance", targets: ["ds-instance"]),
        .executable(name: "ds-queue", targets: ["ds-queue"]),
        .executable(name: "ds-logs", targets: ["ds-logs"]),
        .executable(name: "ds-pool", targets: ["ds-pool"]),
        .executable(name: "ds-schedule", targets: ["ds-schedule"]),
        .executable(name: "ds-alert", targets: ["ds-alert"]),
        .executable(name: "ds-context", targets: ["ds-context"]),
        .executable(name: "task-supervisor", targets: ["task-supervisor"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        // PostgreSQL for masters on several hosts (issue 23); GRDB stays for SQLite.
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        // postgres-nio's TLS settings are swift-nio-ssl's (sslmode=require, verify-full).
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // HTTP for /metrics, /healthz and a worker's /logs: NIO's own HTTP/1.1, no framework on top.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // The contexts file ($XDG_CONFIG_HOME/ds/config) is TOML.
        .package(url: "https://github.com/LebJe/TOMLKit", exact: "0.6.0"),
    ],
    targets: [
        .systemLibrary(name: "CZooKeeper", path: "Sources/CZooKeeper"),
        .target(name: "CSupport"),
        .target(
            name: "Shared",
            dependencies: [
                "CZooKeeper",
                "CSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ]
        ),
        .executableTarget(name: "ds-master", dependencies: ["Shared"]),
        .executableTarget(name: "ds-worker", dependencies: ["Shared", "task-supervisor"]),
        // A tiny C helper, one per worker, parent of its tasks: kills their groups when the worker dies.
        // Static: SwiftPM links every executable against libswiftCore, whose loading made each start
        // twice as slow. The static Swift runtime's link prints a harmless warning about dlopen.
        .executableTarget(name: "task-supervisor", dependencies: ["CSupport"], linkerSettings: [.unsafeFlags(["-static-executable"])]),
        .executableTarget(name: "ds-submit", dependencies: ["Shared"]),
        .executableTarget(name: "ds-failover", dependencies: ["Shared"]),
        .executableTarget(name: "ds-instance", dependencies: ["Shared"]),
        .executableTarget(name: "ds-queue", dependencies: ["Shared"]),
        .executableTarget(name: "ds-logs", dependencies: ["Shared"]),
        .executableTarget(name: "ds-pool", dependencies: ["Shared"]),
        .executableTarget(name: "ds-schedule", dependencies: ["Shared"]),
        .executableTarget(name: "ds-alert", dependencies: ["Shared"]),
        .executableTarget(name: "ds-context", dependencies: ["Shared"]),
        .testTarget(name: "SharedTests", dependencies: ["Shared", .product(name: "PostgresNIO", package: "postgres-nio")], exclude: ["ShippedSchemas"], swiftSettings: [.swiftLanguageMode(.v5)]),
        // Runs the built ds-* binaries as separate processes against a real ZooKeeper and SQLite.
        .testTarget(name: "EndToEndTests", dependencies: ["Shared", "ds-master", "ds-worker", "ds-submit", "ds-failover", "ds-instance", "ds-queue", "ds-logs", "ds-pool", "ds-schedule", "ds-alert", "ds-context", "task-supervisor",
                                                          .product(name: "PostgresNIO", package: "postgres-nio")],
                    swiftSettings: [.swiftLanguageMode(.v5)]),
    ]
)
