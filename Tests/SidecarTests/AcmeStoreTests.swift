import Foundation
import Logging
import XCTest

@testable import Sidecar

final class AcmeStoreTests: XCTestCase {
    func testCertificatesServeOnlyManagedHostsAndAReplacementSwapsIn() throws {
        let store = AcmeCertificateStore(logger: Logger(label: "test"))
        func context() throws -> TLSContext {
            try TLSContext.server(certificateChain: Fixtures.path("gateway.crt"), privateKey: Fixtures.path("gateway.key"), alpn: ["h2"])
        }
        guard case .unmanaged = store.lookup("a.test") else { return XCTFail("unmanaged at first") }
        store.manage(["a.test", "b.test"])
        guard case .pending = store.lookup("a.test") else { return XCTFail("pending before issue") }
        let first = try context(), second = try context()
        // A certificate for a host the plan does not manage is not served.
        store.install(first, hosts: ["a.test", "c.test"])
        guard case .issued(let a) = store.lookup("a.test"), a === first else { return XCTFail("issued") }
        guard case .unmanaged = store.lookup("c.test") else { return XCTFail("c.test is not managed") }
        store.install(second, hosts: ["a.test"])
        guard case .issued(let b) = store.lookup("a.test"), b === second else { return XCTFail("swapped") }
        // A reload that drops a host stops serving its certificate.
        store.manage(["b.test"])
        guard case .unmanaged = store.lookup("a.test") else { return XCTFail("dropped") }
    }

    /// A crash between writing the new chain and renaming its key into place leaves the new
    /// chain with `key.pem.next`: the next start puts that key in place.
    func testAPairCutInHalfByACrashIsRecovered() throws {
        let dir = NSTemporaryDirectory() + "acme-pair-\(getpid())-\(Int.random(in: 0..<1_000_000))"
        let files = AcmeStateFiles(directory: dir)
        try AcmeStateFiles.makeDirectory(files.certificateDirectory("a.test"))
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let chain = try String(contentsOfFile: Fixtures.path("gateway.crt"), encoding: .utf8)
        let key = try String(contentsOfFile: Fixtures.path("gateway.key"), encoding: .utf8)
        try AcmeStateFiles.write(chain, to: files.chain("a.test"))
        try AcmeKey.generate().save(pemFile: files.key("a.test"))  // the old pair's key
        try AcmeStateFiles.write(key, to: files.nextKey("a.test"))
        func loads(_ c: String, _ k: String) -> Bool {
            (try? TLSContext.server(certificateChain: c, privateKey: k, alpn: ["h2"])) != nil
        }
        XCTAssertFalse(loads(files.chain("a.test"), files.key("a.test")))
        files.recoverPair("a.test", loads: loads)
        XCTAssertTrue(loads(files.chain("a.test"), files.key("a.test")))
        XCTAssertFalse(FileManager.default.fileExists(atPath: files.nextKey("a.test")))
    }

    func testDatesInTheCertificatesTable() {
        XCTAssertEqual(AcmeReport.utc(0), "1970-01-01 00:00:00Z")
        XCTAssertEqual(AcmeReport.utc(951_868_799), "2000-02-29 23:59:59Z")
        XCTAssertEqual(AcmeReport.utc(1_795_827_913), "2026-11-28 01:05:13Z")
    }
}
