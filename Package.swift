// swift-tools-version:6.0
import PackageDescription

// Release links of the daemon (docs/benchmarks.md, memory): lld with packed relative relocations (the
// dynamic loader applies ~10 KiB of RELR entries instead of reading 1.2 MiB of RELA ones), no
// dynamic symbol table for the executable's own symbols, and libstdc++ (which the static
// Swift runtime needs) linked statically: scripts/link/libstdc++.so is a linker script that
// points -lstdc++ at libstdc++.a, so the daemon does not map and initialise the whole shared
// library. Together about 2.5 MiB less resident memory per daemon.
let daemonReleaseLink: [LinkerSetting] = [
    .unsafeFlags([
        "-use-ld=lld",
        "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
        "-Xlinker", "--no-export-dynamic",
        "-L\(Context.packageDirectory)/scripts/link",
        "-Xlinker", "--symbol-ordering-file=\(Context.packageDirectory)/scripts/link/hot-functions.txt",
        "-Xlinker", "--no-warn-symbol-ordering",
    ], .when(configuration: .release)),
]

let package = Package(
    name: "fastgw",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "fastgw", targets: ["Sidecar"]),
        .executable(name: "fastgwctl", targets: ["Ctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        .systemLibrary(name: "CNghttp2", pkgConfig: "libnghttp2", providers: [.apt(["libnghttp2-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        // Headers only: libsystemd is loaded when first needed (Sources/CSystemd/shim.h).
        .systemLibrary(name: "CSystemd"),
        .systemLibrary(name: "CCrypt", providers: [.apt(["libcrypt-dev"])]),
        .target(name: "Protocol"),
        .executableTarget(
            name: "Sidecar",
            dependencies: [
                "Protocol", "CNghttp2", "COpenSSL", "CSystemd", "CCrypt",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            linkerSettings: daemonReleaseLink
        ),
        .executableTarget(
            name: "Ctl",
            dependencies: [
                "Protocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "ProtocolTests", dependencies: ["Protocol"]),
        .testTarget(
            name: "SidecarTests",
            dependencies: [
                "Sidecar",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            exclude: ["Fixtures"]
        ),
    ]
)
