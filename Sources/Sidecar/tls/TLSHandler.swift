import COpenSSL
import NIOCore
import Protocol

#if canImport(Glibc)
import Glibc
#endif

public enum TLSRole: Sendable {
    case server
    /// `serverName` is sent as SNI (unless it is an IP literal) and verified against the certificate.
    case client(serverName: String)
}

/// Fired inbound once the handshake is done, with the negotiated ALPN protocol, if any.
public struct TLSHandshakeCompleted: Sendable {
    public let alpn: String?
    /// Server side: the SNI the client sent, if any.
    public let serverName: String?
    /// Server side, when the context asks for client certificates: the one the client
    /// presented (nil: none), with its verification outcome.
    public var peerCertificate: PeerCertificate? = nil
}

/// TLS over OpenSSL as a NIO handler: ciphertext flows through memory BIOs, so OpenSSL never
/// touches a socket and the handler works the same on a real channel or an EmbeddedChannel.
final class TLSHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        case idle, handshaking, active, closed
    }

    private var state = State.idle
    /// A server creates its OpenSSL session only once the client's first TLS record is
    /// whole (`holdFirstRecord`): `SSL_new` costs ~9 KiB and the first `SSL_do_handshake`
    /// another ~32 KiB of buffers, which a connection that sends nothing, or half a
    /// ClientHello, should not get from us. A client starts at once.
    private let startsHandshake: Bool
    private let tls: TLSContext
    /// Set by `makeSession`: in init for a client, on the first whole record for a server.
    private var ssl: OpaquePointer!
    private var rbio: OpaquePointer!
    private var wbio: OpaquePointer!
    /// Server: the client's bytes until its first record is whole (a copy, not NIO's
    /// receive buffer, which is far larger).
    private var firstRecord: ByteBuffer?
    /// Writes issued before the handshake finished, replayed once it has.
    private var pendingWrites: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    private var flushPending = false
    /// Promises of plaintext writes whose ciphertext has not been handed to the channel yet.
    private var unflushedPromises: [EventLoopPromise<Void>] = []
    /// Plaintext written since the last flush. Encrypted at flush so that small writes (HTTP/2
    /// frame headers, control frames) share records instead of costing one record each.
    private var unflushedPlaintext: [ByteBuffer] = []
    /// Below this, writes are copied together before encryption; above it they go as they are.
    private static let recordSize = 16 * 1024
    /// Kept between flushes (see `encryptUnflushed`).
    private var stagingBuffer: ByteBuffer?
    /// Where the verify callback records the first error in the client's certificate chain
    /// (a C int OpenSSL holds a pointer to, so it cannot live in a Swift property).
    private var verifyError: UnsafeMutablePointer<Int32>?

    init(context tls: TLSContext, role: TLSRole) throws(TLSError) {
        self.tls = tls
        switch role {
        case .server:
            startsHandshake = false
        case .client(let serverName):
            startsHandshake = true
            try makeSession()
            SSL_set_connect_state(ssl)
            try configureClient(serverName: serverName)
        }
    }

    deinit {
        if let ssl { SSL_free(ssl) }
        verifyError?.deallocate()
    }

    private func makeSession() throws(TLSError) {
        guard let ssl = SSL_new(tls.ctx) else {
            throw .configuration("cannot create TLS session: \(TLSError.drainOpenSSLErrors())")
        }
        guard let rbio = BIO_new(BIO_s_mem()), let wbio = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw .configuration("cannot allocate TLS buffers")
        }
        // An empty read BIO means "wait for more", not end of stream.
        _ = fastgw_BIO_set_mem_eof_return(rbio, -1)
        _ = fastgw_BIO_set_mem_eof_return(wbio, -1)
        SSL_set_bio(ssl, rbio, wbio)
        if tls.requestsClientCertificate {
            let slot = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
            slot.initialize(to: X509_V_OK)
            verifyError = slot
            fastgw_SSL_set_verify_error_slot(ssl, slot)
        }
        self.ssl = ssl
        self.rbio = rbio
        self.wbio = wbio
    }

    private func configureClient(serverName: String) throws(TLSError) {
        if Self.isIPLiteral(serverName) {
            guard X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), serverName) == 1 else {
                throw .configuration("cannot verify IP address \(serverName)")
            }
        } else {
            guard fastgw_SSL_set_tlsext_host_name(ssl, serverName) == 1, SSL_set1_host(ssl, serverName) == 1 else {
                throw .configuration("invalid TLS server name \"\(serverName)\"")
            }
        }
        if !tls.alpnWire.isEmpty {
            let rc = tls.alpnWire.withUnsafeBufferPointer { SSL_set_alpn_protos(ssl, $0.baseAddress, UInt32($0.count)) }
            guard rc == 0 else { throw .configuration("cannot set ALPN") }
        }
    }

    static func isIPLiteral(_ s: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, s, &v4) == 1 || inet_pton(AF_INET6, s, &v6) == 1
    }

    // MARK: lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        if startsHandshake, context.channel.isActive { startHandshake(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        if startsHandshake { startHandshake(context: context) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        state = .closed
        failPending(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }

    private func startHandshake(context: ChannelHandlerContext) {
        guard state == .idle else { return }
        state = .handshaking
        advanceHandshake(context: context)
    }

    private func advanceHandshake(context: ChannelHandlerContext) {
        let rc = SSL_do_handshake(ssl)
        flushCiphertext(context: context, promises: [])
        if rc == 1 {
            state = .active
            var completed = TLSHandshakeCompleted(alpn: negotiatedALPN(), serverName: requestedServerName())
            if let verifyError {
                completed.peerCertificate = PeerCertificate.read(from: ssl, firstError: verifyError.pointee)
            }
            context.fireUserInboundEventTriggered(completed)
            replayPendingWrites(context: context)
            decrypt(context: context)
            return
        }
        switch SSL_get_error(ssl, rc) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return
        default:
            fail(context: context, error: handshakeError())
        }
    }

    private func handshakeError() -> TLSError {
        let verify = SSL_get_verify_result(ssl)
        if verify != Int(X509_V_OK) {
            let text = String(cString: X509_verify_cert_error_string(verify))
            _ = TLSError.drainOpenSSLErrors()
            return .verification(text)
        }
        return .handshake(TLSError.drainOpenSSLErrors())
    }

    private func requestedServerName() -> String? {
        SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name).map { String(cString: $0) }
    }

    private func negotiatedALPN() -> String? {
        var data: UnsafePointer<UInt8>?
        var len: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &data, &len)
        guard let data, len > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(len)), as: UTF8.self)
    }

    // MARK: inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard state != .closed else { return }
        if ssl == nil {
            guard let whole = holdFirstRecord(&bytes, allocator: context.channel.allocator) else { return }
            bytes = whole
            do {
                try makeSession()
            } catch {
                return fail(context: context, error: error)
            }
            SSL_set_accept_state(ssl)
        }
        bytes.withUnsafeReadableBytes { raw in
            _ = BIO_write(rbio, raw.baseAddress, Int32(raw.count))
        }
        bytes.moveReaderIndex(to: bytes.writerIndex)
        switch state {
        case .idle:
            startHandshake(context: context)
        case .handshaking:
            advanceHandshake(context: context)
        case .active:
            decrypt(context: context)
        case .closed:
            break
        }
    }

    /// Adds `bytes` to what the client sent so far; returns all of it once the first TLS
    /// record is whole, or at once when it is not a TLS handshake record (OpenSSL refuses it).
    private func holdFirstRecord(_ bytes: inout ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer? {
        var held = firstRecord ?? allocator.buffer(capacity: bytes.readableBytes)
        held.writeBuffer(&bytes)
        firstRecord = nil
        let start = held.readerIndex
        guard held.readableBytes > 0 else {
            firstRecord = held
            return nil
        }
        guard held.getInteger(at: start, as: UInt8.self) == Self.handshakeRecord else { return held }
        guard let length = held.getInteger(at: start + 3, as: UInt16.self) else {
            firstRecord = held
            return nil
        }
        if Int(length) <= Self.maxRecord && held.readableBytes < 5 + Int(length) {
            firstRecord = held
            return nil
        }
        return held
    }

    /// TLS record type 22; a record's body is at most 2^14 bytes plus 2048 of expansion.
    private static let handshakeRecord: UInt8 = 22
    private static let maxRecord = 16384 + 2048

    /// Decrypts everything the read BIO holds into one buffer (plaintext is never longer than
    /// the ciphertext it came from) and passes it on.
    private func decrypt(context: ChannelHandlerContext) {
        let available = fastgw_BIO_ctrl_pending(rbio)
        guard available > 0 || SSL_pending(ssl) > 0 else { return }
        var plaintext = context.channel.allocator.buffer(capacity: max(Int(available), 1024) + Int(SSL_pending(ssl)))
        var peerClosed = false
        var failure: TLSError?
        while state == .active {
            // The buffer is sized for all of it; growing (a copy of everything decrypted so
            // far) is for the unexpected case only, and what is left over at the end is
            // record overhead, not room that needs topping up.
            if plaintext.writableBytes == 0 {
                plaintext.reserveCapacity(minimumWritableBytes: 16 * 1024)
            }
            var err: Int32 = 0
            let n = plaintext.writeWithUnsafeMutableBytes(minimumWritableBytes: 0) { raw -> Int in
                let rc = SSL_read(ssl, raw.baseAddress, Int32(min(raw.count, Int(Int32.max))))
                if rc > 0 { return Int(rc) }
                err = SSL_get_error(ssl, rc)
                return 0
            }
            if n > 0 { continue }
            switch err {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
                break
            case SSL_ERROR_ZERO_RETURN:
                peerClosed = true
            default:
                failure = .protocolError(TLSError.drainOpenSSLErrors())
            }
            break
        }
        // TLS 1.3 may answer on its own (key updates, tickets).
        flushCiphertext(context: context, promises: [])
        if plaintext.readableBytes > 0 {
            context.fireChannelRead(wrapInboundOut(plaintext))
        }
        if let failure {
            fail(context: context, error: failure)
        } else if peerClosed {
            context.fireChannelReadComplete()
            context.close(promise: nil)
        }
    }

    // MARK: outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let bytes = unwrapOutboundIn(data)
        switch state {
        case .idle, .handshaking:
            pendingWrites.append((bytes, promise))
        case .active:
            if bytes.readableBytes > 0 { unflushedPlaintext.append(bytes) }
            if let promise { unflushedPromises.append(promise) }
        case .closed:
            promise?.fail(ChannelError.ioOnClosedChannel)
        }
    }

    func flush(context: ChannelHandlerContext) {
        switch state {
        case .idle, .handshaking:
            flushPending = true
        case .active:
            if let failure = encryptUnflushed(allocator: context.channel.allocator) {
                let promises = unflushedPromises
                unflushedPromises.removeAll()
                promises.forEach { $0.fail(failure) }
                fail(context: context, error: failure)
                return
            }
            let promises = unflushedPromises
            unflushedPromises.removeAll(keepingCapacity: true)
            flushCiphertext(context: context, promises: promises)
        case .closed:
            break
        }
    }

    /// Encrypts what was written since the last flush: small buffers are gathered into
    /// record-sized runs, large ones are encrypted in place.
    private func encryptUnflushed(allocator: ByteBufferAllocator) -> TLSError? {
        var staging: ByteBuffer?
        func seal(_ b: ByteBuffer) -> Bool {
            b.withUnsafeReadableBytes { raw in SSL_write(ssl, raw.baseAddress, Int32(raw.count)) } > 0
        }
        // SSL_write copies into the write BIO, so one staging buffer serves every flush: a
        // fresh 16 KiB per flush made the allocator grow and trim its heap all the time.
        defer {
            if let s = staging { stagingBuffer = s }
        }
        for buffer in unflushedPlaintext {
            if buffer.readableBytes >= Self.recordSize {
                if let s = staging {
                    if !seal(s) { return .protocolError(TLSError.drainOpenSSLErrors()) }
                    stagingBuffer = s
                }
                staging = nil
                if !seal(buffer) { return .protocolError(TLSError.drainOpenSSLErrors()) }
            } else {
                var s = staging ?? takeStagingBuffer(allocator)
                var b = buffer
                s.writeBuffer(&b)
                if s.readableBytes >= Self.recordSize {
                    if !seal(s) { return .protocolError(TLSError.drainOpenSSLErrors()) }
                    stagingBuffer = s
                    staging = nil
                } else {
                    staging = s
                }
            }
        }
        unflushedPlaintext.removeAll(keepingCapacity: true)
        if let s = staging, !seal(s) { return .protocolError(TLSError.drainOpenSSLErrors()) }
        return nil
    }

    private func takeStagingBuffer(_ allocator: ByteBufferAllocator) -> ByteBuffer {
        guard var b = stagingBuffer else { return allocator.buffer(capacity: Self.recordSize) }
        stagingBuffer = nil
        b.clear()
        return b
    }

    private func replayPendingWrites(context: ChannelHandlerContext) {
        let writes = pendingWrites
        pendingWrites = []
        for (bytes, promise) in writes {
            if bytes.readableBytes > 0 { unflushedPlaintext.append(bytes) }
            if let promise { unflushedPromises.append(promise) }
        }
        if flushPending || !writes.isEmpty {
            flushPending = false
            flush(context: context)
        }
    }

    /// Moves whatever ciphertext OpenSSL produced to the channel in one write; the plaintext
    /// writes' promises complete when that write does.
    private func flushCiphertext(context: ChannelHandlerContext, promises: [EventLoopPromise<Void>]) {
        let pending = Int(fastgw_BIO_ctrl_pending(wbio))
        guard pending > 0 else {
            promises.forEach { $0.succeed() }
            return
        }
        var out = context.channel.allocator.buffer(capacity: pending)
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: pending) { raw in
            Int(max(0, BIO_read(wbio, raw.baseAddress, Int32(pending))))
        }
        let promise: EventLoopPromise<Void>?
        switch promises.count {
        case 0: promise = nil
        case 1: promise = promises[0]
        default:
            let combined = context.eventLoop.makePromise(of: Void.self)
            for p in promises { combined.futureResult.cascade(to: p) }
            promise = combined
        }
        context.writeAndFlush(wrapOutboundOut(out), promise: promise)
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if state == .active, mode == .all {
            // Best effort: what was written goes out, then close_notify; the peer may be gone.
            _ = encryptUnflushed(allocator: context.channel.allocator)
            _ = SSL_shutdown(ssl)
            _ = TLSError.drainOpenSSLErrors()
            let promises = unflushedPromises
            unflushedPromises.removeAll()
            flushCiphertext(context: context, promises: promises)
        }
        if mode == .all { state = .closed }
        context.close(mode: mode, promise: promise)
    }

    private func fail(context: ChannelHandlerContext, error: TLSError) {
        state = .closed
        failPending(error)
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    private func failPending(_ error: Error) {
        let writes = pendingWrites
        pendingWrites = []
        writes.forEach { $0.1?.fail(error) }
        let promises = unflushedPromises
        unflushedPromises = []
        unflushedPlaintext = []
        promises.forEach { $0.fail(error) }
    }
}
