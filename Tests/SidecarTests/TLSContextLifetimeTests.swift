import COpenSSL
import XCTest

@testable import Sidecar

/// A context a handshake switched to (SNI, TLS-ALPN-01) is reached later in the same
/// handshake by OpenSSL's ALPN callback; whoever chose it may drop it meanwhile.
final class TLSContextLifetimeTests: XCTestCase {
    private func context() throws -> TLSContext {
        try TLSContext.server(certificateChain: Fixtures.path("gateway.crt"), privateKey: Fixtures.path("gateway.key"), alpn: ["h2"])
    }

    func testASwitchedToContextLivesExactlyAsLongAsTheHandshake() throws {
        let listener = try context()
        let ssl = try XCTUnwrap(SSL_new(listener.ctx))
        weak var first: TLSContext?
        weak var second: TLSContext?
        try {
            let a = try context()
            first = a
            a.adopt(ssl)
        }()
        XCTAssertNotNil(first, "the handshake keeps the context it switched to")
        try {
            let b = try context()
            second = b
            b.adopt(ssl)
        }()
        XCTAssertNil(first, "switching again releases the earlier choice")
        XCTAssertNotNil(second)
        SSL_free(ssl)
        XCTAssertNil(second, "freeing the handshake releases it")
    }
}
