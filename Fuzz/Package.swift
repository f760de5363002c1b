// swift-tools-version:6.0
import PackageDescription

// libFuzzer targets for every parser of bytes from outside (`make fuzz`, STYLE.md). A package
// of its own so that the main build and tests never see them; it is built with
// the fuzzer and address sanitizers into .build-fuzz/ (see the Makefile).
// Sources/Protocol is a link to the real Protocol sources, and FuzzHTTP1Request compiles the
// daemon's own HTTP1RequestReader.swift through a link: the reader lives in the executable
// target, which nothing can import.
let entryPoint: [SwiftSetting] = [
    // libFuzzer provides main(); each target only defines LLVMFuzzerTestOneInput.
    .unsafeFlags(["-parse-as-library"]),
]

func fuzzTarget(_ name: String, _ more: [Target.Dependency] = []) -> Target {
    .executableTarget(name: name, dependencies: ["Protocol", "FuzzSupport"] + more, swiftSettings: entryPoint)
}

let package = Package(
    name: "fastgw-fuzz",
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .target(name: "Protocol"),
        .target(name: "FuzzSupport"),
        fuzzTarget("FuzzTOML"),
        fuzzTarget("FuzzHTTP1Request", [.product(name: "NIOCore", package: "swift-nio")]),
        fuzzTarget("FuzzChunked"),
        fuzzTarget("FuzzControlLine"),
        fuzzTarget("FuzzWebSocketFrames"),
        fuzzTarget("FuzzTunnelHandshake"),
        fuzzTarget("FuzzControlMessage"),
        fuzzTarget("FuzzProxyHeader"),
        fuzzTarget("FuzzAuth"),
        fuzzTarget("FuzzEgressProxy"),
        fuzzTarget("FuzzSocks5"),
        fuzzTarget("FuzzCapsules"),
        fuzzTarget("FuzzAcmeClientHello"),
        fuzzTarget("FuzzAcmeResponse"),
    ]
)
