// swift-tools-version: 6.1
// LMC field controller — see README.md and docs/.
import PackageDescription

/// The pure control core is optimised in debug builds too: the replay tests drive a month of cycles
/// through it (2.7 M steps), which takes minutes unoptimised. Release builds optimise everything anyway.
let pureCore: [SwiftSetting] = [.unsafeFlags(["-O"], .when(configuration: .debug))]

/// Test hooks (the GPIO simulator, LMC_GPIO_SIMULATOR with its stuck contact, LMC_WALL_CLOCK_OFFSET_FILE, LMC_RING_SYNC_DELAY_MS)
/// are compiled into debug builds only, which the test suite runs; `make release` has none of them
/// (scripts/check-release.sh looks for their strings in out/lmc).
let testHooks: [SwiftSetting] = [.define("LMC_TEST_HOOKS", .when(configuration: .debug))]

let package = Package(
    name: "lmc",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "lmc", targets: ["FieldController"]),
        .executable(name: "lmc-bench", targets: ["LMCBench"]),
        .executable(name: "lmc-fuzz", targets: ["LMCFuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
    ],
    targets: [
        // C libraries, found through pkg-config (Debian: libmodbus-dev, libgpiod-dev).
        .systemLibrary(name: "CModbus", pkgConfig: "libmodbus",
                       providers: [.apt(["libmodbus-dev"])]),
        .systemLibrary(name: "CGPIOD", pkgConfig: "libgpiod",
                       providers: [.apt(["libgpiod-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl",
                       providers: [.apt(["libssl-dev"])]),

        // The few libc spellings that differ between glibc and musl (aarch64 static SDK), threads and the
        // monotonic clock: what every module with a thread or a deadline shares.
        .target(name: "LMCPlatform", dependencies: ["CMemory"]),
        // prctl(PR_SET_THP_DISABLE), which Swift cannot call (variadic in C): StartupPages.
        .target(name: "CMemory"),
        // adjtimex(2), which Swift's libc modules do not export (lmc doctor's clock check).
        .target(name: "CTimex"),
        // Thin typed wrappers; every C call goes through Internals/Seam.swift.
        .target(name: "ModbusBridge", dependencies: ["CModbus", "LMCPlatform"]),
        .target(name: "DigitalIO", dependencies: ["CGPIOD", "LMCPlatform"], swiftSettings: testHooks),

        // Measurement side and pure supervisor.
        .target(name: "CTSensorDriver", dependencies: ["ModbusBridge", "DigitalIO", "LMCPlatform", "TOMLReader"]),
        .target(name: "FailSafe", swiftSettings: pureCore),
        // The thin hardware side of the supervisor: breaker lines, systemd and hardware watchdogs.
        .target(name: "Supervision", dependencies: ["DigitalIO", "FailSafe", "LMCPlatform"]),
        // Crash-safe on-disk rings (docs/ringlog.md).
        .target(name: "RingLog", swiftSettings: testHooks),
        // Pure control core: MP state machines, arbitration, scenario replay.
        .target(name: "Headroom", swiftSettings: pureCore),
        // One control cycle as a pure function: snapshot in, every decision out (docs/control.md).
        .target(name: "ControlCycle", dependencies: ["Headroom", "FailSafe", "RingLog"], swiftSettings: pureCore),
        // A small TOML reader whose values remember their lines; no dependencies (docs/config.md).
        .target(name: "TOMLReader"),
        // The config file: the declared keys and the schema, with errors naming line and key.
        .target(name: "LMCConfig", dependencies: ["TOMLReader"]),
        // lmc.toml in the parts' own types: profiles loaded, endpoints parsed, limits validated by their owners.
        .target(name: "LMCWiring", dependencies: ["LMCConfig", "TOMLReader", "ControlCycle", "Headroom", "CTSensorDriver", "ModbusBridge", "SetPointRelay", "FailSafe", "Supervision", "OSCP"]),
        // A small HTTP/1.1 server and client over OpenSSL, with typed errors and one C seam (sockets,
        // poll, OpenSSL) where tests inject faults.
        .target(name: "HTTPTransport", dependencies: ["COpenSSL", "LMCPlatform"], swiftSettings: testHooks),
        // OSCP 2.0 Capacity Provider over HTTPTransport (docs/oscp.md).
        .target(name: "OSCP", dependencies: ["HTTPTransport", "LMCPlatform"]),
        // A DNP3 outstation (IEEE 1815-2012): pure codecs and state machine, and a TCP runner (docs/dnp3.md).
        .target(name: "DNP3", dependencies: ["LMCPlatform"]),
        // Set points to chargers (Modbus profiles as data) and the upstream Modbus server.
        .target(name: "SetPointRelay", dependencies: ["ModbusBridge", "LMCPlatform", "TOMLReader"]),

        // The executable `lmc`.
        .executableTarget(
            name: "FieldController",
            dependencies: [
                "ModbusBridge", "DigitalIO", "CTSensorDriver", "ControlCycle", "FailSafe", "Headroom", "LMCConfig", "LMCWiring", "Supervision", "SetPointRelay", "RingLog", "OSCP", "LMCPlatform",
                "DNP3", "CTimex", "TOMLReader", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: testHooks
        ),

        // `make bench`: the measurements behind docs/PERFORMANCE.md (not installed on boxes).
        .executableTarget(
            name: "LMCBench",
            dependencies: [
                "ModbusBridge", "ControlCycle", "FailSafe", "Headroom", "RingLog", "CTSensorDriver", "LMCPlatform", "DNP3",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // make fuzz: libFuzzer targets for every input from outside; without the fuzzer, a corpus replayer.
        .target(name: "CLibFuzzer"),
        .executableTarget(name: "LMCFuzz", dependencies: ["CTSensorDriver", "LMCConfig", "LMCWiring", "ModbusBridge", "OSCP", "HTTPTransport", "RingLog", "Supervision", "DNP3", "CLibFuzzer"]),

        // Test helpers: Python peers, socat pty pairs, the built `lmc`.
        .target(name: "LMCTestSupport", path: "Tests/LMCTestSupport"),
        // A test process that crashes on purpose with children of every kind (ChildCleanupTests).
        .executableTarget(name: "LMCSpawnProbe", dependencies: ["LMCTestSupport"], path: "Tests/LMCSpawnProbe"),
        .testTarget(
            name: "ModbusBridgeTests",
            dependencies: ["ModbusBridge", "LMCTestSupport",
                           .product(name: "PropertyBased", package: "swift-property-based")]
        ),
        .testTarget(name: "DigitalIOTests", dependencies: ["DigitalIO"]),
        .testTarget(name: "LMCConfigTests", dependencies: ["LMCConfig", "LMCWiring", "TOMLReader", "Headroom"]),
        .testTarget(name: "CTSensorDriverTests", dependencies: ["CTSensorDriver", "LMCWiring", "ModbusBridge", "LMCTestSupport"]),
        .testTarget(name: "SetPointRelayTests", dependencies: ["SetPointRelay", "LMCWiring", "ModbusBridge", "LMCTestSupport"]),
        .testTarget(name: "RingLogTests", dependencies: ["RingLog", "LMCTestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "SupervisionTests", dependencies: ["Supervision", "DigitalIO", "FailSafe"]),
        .testTarget(
            name: "FailSafeTests",
            dependencies: ["FailSafe", .product(name: "PropertyBased", package: "swift-property-based")]
        ),
        .testTarget(
            name: "HeadroomTests",
            dependencies: ["Headroom", .product(name: "PropertyBased", package: "swift-property-based")]
        ),
        .testTarget(name: "ControlCycleTests", dependencies: ["ControlCycle", "LMCConfig", "LMCWiring", "TOMLReader", "Headroom", "FailSafe", "RingLog"]),
        .testTarget(name: "FieldControllerTests", dependencies: ["ModbusBridge", "RingLog", "DNP3", "LMCTestSupport"]),
        .testTarget(name: "DNP3Tests", dependencies: ["DNP3", "LMCConfig", "LMCTestSupport"]),
        .testTarget(name: "OSCPTests", dependencies: ["OSCP", "HTTPTransport", "LMCTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
