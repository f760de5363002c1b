import NIOCore
import Protocol

/// What an `H2Session` reports after it took input or produced output. Events are queued by
/// the nghttp2 callbacks and handed to the owner afterwards, so the owner may call back into
/// the session freely while handling them.
enum H2Event {
    /// A complete HEADERS block (request, response or trailers).
    case headers(stream: Int32, fields: [HeaderField], endStream: Bool)
    /// Payload bytes; the owner must `consume` them once they reached their destination.
    case data(stream: Int32, bytes: ByteBuffer)
    /// The peer half-closed the stream (END_STREAM on DATA).
    case remoteEnded(stream: Int32)
    /// The stream is gone; `errorCode` 0 means a clean close.
    case closed(stream: Int32, errorCode: UInt32)
    /// The stream's unsent queue fell below the watermark: its source may be read again.
    case writable(stream: Int32)
    /// A header block went over `maxHeaderListSize` or `maxHeaderFields`; its fields were dropped.
    case headersTooLarge(stream: Int32)
    case goaway(lastStreamID: Int32, errorCode: UInt32)
    /// A GOAWAY left, whether the owner asked for it or nghttp2 sent it on its own.
    case goawaySent(errorCode: UInt32)
    case pingAcknowledged(opaque: UInt64)
}

enum H2Role {
    case client, server
}

struct H2Error: Error, CustomStringConvertible {
    let description: String
}
