import Foundation
import NIOCore
import NIOEmbedded
import XCTest

@testable import Sidecar

/// Paths of the TLS fixtures, made once per test run.
enum Fixtures {
    static let directory: String = {
        let dir = NSTemporaryDirectory() + "fastgw-tls-fixtures-\(getpid())"
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/make-tls-fixtures.sh").path
        let status = run(script, [dir])
        precondition(status == 0 && FileManager.default.fileExists(atPath: dir + "/ca.crl"), "make-tls-fixtures.sh failed")
        return dir
    }()

    static func path(_ name: String) -> String { directory + "/" + name }

    /// Through `ChildProcess` (posix_spawn + waitpid on its pid), not Foundation's Process:
    /// after the pebble tests its monitor could miss a short command's end, and the fixtures
    /// were then read before the script had written them.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String]) -> Int32 {
        let log = NSTemporaryDirectory() + "fastgw-fixtures-\(getpid()).log"
        guard let child = try? ChildProcess(executable, arguments, output: log, environment: ProcessInfo.processInfo.environment)
        else { return -1 }
        return child.wait()
    }
}

/// Records what reaches the end of a pipeline: bytes, user events, errors.
final class Recorder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    var received = ByteBuffer()
    var handshake: TLSHandshakeCompleted?
    var errors: [Error] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var b = unwrapInboundIn(data)
        received.writeBuffer(&b)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? TLSHandshakeCompleted { handshake = e }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        errors.append(error)
    }
}

/// Moves bytes between two embedded channels until both are quiet (swift-nio-ssl's
/// `interactInMemory`, the habit STYLE.md points to).
func interactInMemory(_ a: EmbeddedChannel, _ b: EmbeddedChannel) throws {
    for _ in 0..<1000 {
        var moved = false
        while let out = try a.readOutbound(as: ByteBuffer.self) {
            moved = true
            if b.isActive { try b.writeInbound(out) }
        }
        while let out = try b.readOutbound(as: ByteBuffer.self) {
            moved = true
            if a.isActive { try a.writeInbound(out) }
        }
        if !moved { return }
    }
    XCTFail("channels never went quiet")
}
