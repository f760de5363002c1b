import NIOCore
import Protocol

/// Joins two tunnel streams, possibly on two connections on two event loops (a visitor's
/// stream and the agent stream the gateway opened for it): one splice is the endpoint of each
/// link, living on the loop of the *other* link, into which it writes.
///
/// Flow control holds on both sides without a buffer of its own: bytes from stream A are
/// queued on stream B and their window on A is granted back only while B's queue is below
/// its watermark. When B goes above it, B's splice (on A's loop) keeps what it owes A until
/// B drains, so a slow reader on B's side stalls A's sender after at most A's window.
final class StreamSplice: StreamEndpoint {
    typealias Link = TunnelStreamLink<StreamSplice>

    /// The stream this splice writes into, on this splice's loop.
    private var into: Link?
    /// The splice of the other direction (endpoint of `into`), on the other loop.
    private var partner: LoopBoundRef<StreamSplice>?
    /// `into`'s queue is above its watermark: what the partner forwarded is not granted back.
    private var paused = false
    private var owed = 0
    /// `into` is the stream the splice answers (the visitor's): the first HEADERS the partner
    /// receives (the agent's answer) become its response.
    private let answers: Bool
    private var answered = false
    /// This splice's stream's peer sent END_STREAM.
    private var ended = false
    /// The other stream's peer sent END_STREAM (which this splice's stream carried on).
    private var otherEnded = false
    /// Called once on this splice's loop with the agent's status (answering splice only).
    var onAnswer: ((_ status: String, _ reason: String?) -> Void)?

    init(into: Link, answers: Bool) {
        self.into = into
        self.answers = answers
    }

    func pair(with partner: LoopBoundRef<StreamSplice>) {
        self.partner = partner
    }

    // MARK: events of the stream this splice is the endpoint of

    /// The agent's answer arrives on the agent stream, whose endpoint answers the visitor.
    func tunnelHeaders(_ fields: [HeaderField], endStream: Bool) {
        guard answers, !answered, let into else { return }
        answered = true
        let status = fields[":status"] ?? "502"
        var out = [HeaderField(":status", status)]
        if let reason = fields["fastgw-reason"] { out.append(HeaderField("fastgw-reason", reason)) }
        into.respond(headers: out, endStream: endStream)
        onAnswer?(status, fields["fastgw-reason"])
        onAnswer = nil
    }

    func writeToSocket(_ bytes: ByteBuffer) {
        let n = bytes.readableBytes
        into?.fromSocket(bytes)
        partner?.run { $0.forwarded(n) }
    }

    func tunnelEnded() {
        ended = true
        // Told before the END goes out on `into`: the partner's stream can only close cleanly
        // after that END, and the partner hears of this first (one loop, in order).
        partner?.run { $0.otherEnded = true }
        into?.socketEnded()
    }

    func tunnelClosed(errorCode: UInt32) {
        // A clean close is one after END_STREAM both ways, which also ended `into`. Anything
        // else — an error, or a reset with NO_ERROR before both ends — aborts the other
        // stream too, or it (and the agent's upstream socket) would be left open.
        if errorCode != 0 || !ended || !otherEnded { into?.socketFailed() }
        into = nil
        partner = nil
    }

    // MARK: flow control of `into`

    func pauseReading() {
        paused = true
    }

    func resumeReading() {
        paused = false
        if owed > 0, let into {
            into.consumed(owed)
            owed = 0
        }
    }

    /// The partner queued `n` bytes of `into`'s peer on its stream: grant them back now,
    /// or once that stream drains.
    private func forwarded(_ n: Int) {
        guard let into else { return }
        if paused { owed += n } else { into.consumed(n) }
    }
}
