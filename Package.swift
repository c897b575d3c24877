// swift-tools-version: 6.1
import PackageDescription

/// Linker flags that put the Swift runtime and Foundation inside the release `sluice` binary
/// (the libraries Foundation itself needs are named, since the modules were compiled for
/// dynamic linking).
let staticLinking = [
    "-static-stdlib",
    "-Xlinker", "--start-group",
    "-lFoundation", "-lFoundationInternationalization", "-lFoundationEssentials", "-lCoreFoundation",
    "-l_FoundationICU", "-l_FoundationCShims", "-l_FoundationCollections", "-lswiftSynchronization",
    "-Xlinker", "--end-group",
    "-lstdc++", "-lm", "-Xclang-linker", "-no-pie",
]

let package = Package(
    name: "Sluice",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "sluice", targets: ["sluice"]),
        .library(name: "SluiceCore", targets: ["SluiceCore"]),
        .library(name: "SluiceConfig", targets: ["SluiceConfig"]),
        .library(name: "SluiceEngine", targets: ["SluiceEngine"]),
        .library(name: "SluiceTasks", targets: ["SluiceTasks"]),
        .library(name: "SluiceScript", targets: ["SluiceScript"]),
        .library(name: "SluiceTesting", targets: ["SluiceTesting"]),
        .library(name: "SluiceSQLite", targets: ["SluiceSQLite"]),
        .library(name: "SluicePostgres", targets: ["SluicePostgres"]),
        .library(name: "SluiceServer", targets: ["SluiceServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
    ],
    targets: [
        // Values, events, flow definitions and their validation. No I/O, no NIO.
        .target(
            name: "SluiceCore",
            dependencies: [.product(name: "OrderedCollections", package: "swift-collections")]
        ),
        // Flow files (YAML, JSON, FlowEngine workflow JSON) with positions, and templates.
        .target(
            name: "SluiceConfig",
            dependencies: ["SluiceCore", "SluiceScript", .product(name: "Yams", package: "Yams")]
        ),
        // Registry, topology, stages, runs, retries, timeouts, the event stream.
        .target(
            name: "SluiceEngine",
            dependencies: [
                "SluiceCore", "SluiceConfig", "SluiceScript",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        // The Rhai interpreter: lexer, parser, runtime, standard library, limits.
        .target(name: "SluiceScript", dependencies: ["SluiceCore"]),
        // Built-in task types, one file each.
        .target(
            name: "SluiceTasks",
            dependencies: [
                "SluiceEngine", "SluiceConfig", "SluiceScript",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // The SQLite store (the default): one file, WAL mode, versioned migrations.
        .target(
            name: "SluiceSQLite",
            dependencies: ["SluiceEngine", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        // The PostgreSQL store, for many processes on many machines.
        .target(
            name: "SluicePostgres",
            dependencies: ["SluiceEngine", .product(name: "PostgresNIO", package: "postgres-nio")]
        ),
        // `sluice serve`: the HTTP API, webhooks, live event streams, the dashboard, metrics.
        .target(
            name: "SluiceServer",
            dependencies: [
                "SluiceCore", "SluiceConfig", "SluiceEngine", "SluiceTasks",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Test clock, flow harness.
        .target(name: "SluiceTesting", dependencies: ["SluiceEngine"]),
        .executableTarget(
            name: "sluice",
            dependencies: [
                "SluiceCore", "SluiceConfig", "SluiceEngine", "SluiceTasks", "SluiceScript", "SluiceSQLite", "SluicePostgres", "SluiceServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            // A release `sluice` is one self-contained binary: the Swift runtime and Foundation
            // linked in. It also starts faster and needs a third of the memory (no dynamic
            // loading and relocation of libFoundation); see the README's benchmarks.
            linkerSettings: [.unsafeFlags(staticLinking, .when(platforms: [.linux], configuration: .release))]
        ),
        .executableTarget(
            name: "SluiceBench",
            dependencies: ["SluiceCore", "SluiceConfig", "SluiceEngine", "SluiceTasks", "SluiceTesting", "SluiceScript", "SluiceSQLite",
                           "SluicePostgres", "SluiceServer", .product(name: "Hummingbird", package: "hummingbird")],
            path: "Sources/SluiceBench"
        ),
        // The bare Hummingbird route the webhook benchmark compares with (scripts/bench-serve).
        .executableTarget(
            name: "SluiceBareHTTP",
            dependencies: [.product(name: "Hummingbird", package: "hummingbird")],
            path: "Sources/SluiceBareHTTP"
        ),
        .testTarget(name: "SluiceCoreTests", dependencies: ["SluiceCore"]),
        .testTarget(name: "SluiceConfigTests", dependencies: ["SluiceConfig", "SluiceEngine", "SluiceTasks"]),
        .testTarget(
            name: "SluiceEngineTests",
            dependencies: ["SluiceEngine", "SluiceTesting", "SluiceConfig", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "SluiceTasksTests",
            dependencies: [
                "SluiceTasks", "SluiceTesting",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "SluiceTestingTests", dependencies: ["SluiceTesting"]),
        .testTarget(name: "SluiceSQLiteTests", dependencies: ["SluiceSQLite", "SluiceTesting", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(
            name: "SluicePostgresTests",
            dependencies: ["SluicePostgres", "SluiceTesting", .product(name: "PostgresNIO", package: "postgres-nio")]
        ),
        .testTarget(name: "SluiceScriptTests", dependencies: ["SluiceScript", "SluiceCore", "SluiceTesting"]),
        .testTarget(name: "SluiceCLITests", dependencies: ["SluiceCore", .product(name: "GRDB", package: "GRDB.swift")]),
    ]
)
