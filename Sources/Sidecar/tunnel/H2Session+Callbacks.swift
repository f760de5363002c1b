import CNghttp2
import NIOCore
import Protocol

/// nghttp2's C callbacks. Each recovers the `H2Session` from `user_data`, records what
/// happened, and returns; none calls back into nghttp2 (STYLE.md).
enum H2Callbacks {
    static func install(on cbs: OpaquePointer) {
        nghttp2_session_callbacks_set_send_callback(cbs, sendCallback)
        nghttp2_session_callbacks_set_send_data_callback(cbs, sendDataCallback)
        nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, beginHeadersCallback)
        nghttp2_session_callbacks_set_on_header_callback(cbs, headerCallback)
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, frameRecvCallback)
        nghttp2_session_callbacks_set_on_frame_send_callback(cbs, frameSendCallback)
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, dataChunkCallback)
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, streamCloseCallback)
        nghttp2_session_callbacks_set_data_source_read_length_callback(cbs, readLengthCallback)
    }

    static var dataProvider: nghttp2_data_provider {
        nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: readCallback)
    }
}

@inline(__always)
private func owner(_ userData: UnsafeMutableRawPointer?) -> H2Session {
    Unmanaged<H2Session>.fromOpaque(userData!).takeUnretainedValue()
}

/// Control frames and DATA frame headers: copied into the scratch buffer.
private func sendCallback(
    _ session: OpaquePointer?, _ data: UnsafePointer<UInt8>?, _ length: Int, _ flags: Int32,
    _ userData: UnsafeMutableRawPointer?
) -> Int {
    let s = owner(userData)
    s.scratch.writeBytes(UnsafeRawBufferPointer(start: data, count: length))
    return length
}

/// Offers queued bytes without copying: nghttp2 then calls `sendDataCallback` with the frame.
private func readCallback(
    _ session: OpaquePointer?, _ streamID: Int32, _ buf: UnsafeMutablePointer<UInt8>?, _ length: Int,
    _ dataFlags: UnsafeMutablePointer<UInt32>?, _ source: UnsafeMutablePointer<nghttp2_data_source>?,
    _ userData: UnsafeMutableRawPointer?
) -> Int {
    let s = owner(userData)
    guard let state = s.streams[streamID] else {
        dataFlags?.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
        return 0
    }
    if state.queued == 0 {
        if state.endQueued {
            dataFlags?.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            if let trailers = state.trailers {
                dataFlags?.pointee |= NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
                state.trailers = nil
                s.trailersDue.append((streamID, trailers))
            }
            return 0
        }
        state.deferred = true
        return Int(NGHTTP2_ERR_DEFERRED.rawValue)
    }
    let n = min(length, state.queued)
    dataFlags?.pointee |= NGHTTP2_DATA_FLAG_NO_COPY.rawValue
    if n == state.queued && state.endQueued {
        dataFlags?.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
        if let trailers = state.trailers {
            dataFlags?.pointee |= NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
            state.trailers = nil
            s.trailersDue.append((streamID, trailers))
        }
    }
    return n
}

/// Writes one DATA frame: its 9-byte header into scratch, then slices of the queued buffers.
private func sendDataCallback(
    _ session: OpaquePointer?, _ frame: UnsafeMutablePointer<nghttp2_frame>?, _ framehd: UnsafePointer<UInt8>?,
    _ length: Int, _ source: UnsafeMutablePointer<nghttp2_data_source>?, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    let s = owner(userData)
    s.scratch.writeBytes(UnsafeRawBufferPointer(start: framehd, count: 9))
    guard let frame, let state = s.streams[frame.pointee.hd.stream_id] else {
        return NGHTTP2_ERR_CALLBACK_FAILURE.rawValue
    }
    s.sealScratch()
    s.dataFramesSent += 1
    var remaining = length
    while remaining > 0, var head = state.outbound.first {
        if head.readableBytes <= remaining {
            remaining -= head.readableBytes
            s.output.append(state.outbound.removeFirst())
        } else {
            s.output.append(head.readSlice(length: remaining)!)
            state.outbound[state.outbound.startIndex] = head
            remaining = 0
        }
    }
    state.queued -= length
    if state.aboveWatermark && state.queued < s.tuning.sendWatermark {
        state.aboveWatermark = false
        s.events.append(.writable(stream: frame.pointee.hd.stream_id))
    }
    return 0
}

/// Lets DATA frames be as large as the peer's SETTINGS_MAX_FRAME_SIZE instead of 16 KiB.
private func readLengthCallback(
    _ session: OpaquePointer?, _ frameType: UInt8, _ streamID: Int32, _ sessionWindow: Int32,
    _ streamWindow: Int32, _ remoteMaxFrameSize: UInt32, _ userData: UnsafeMutableRawPointer?
) -> Int {
    Int(min(Int32(clamping: remoteMaxFrameSize), sessionWindow, streamWindow))
}

private func beginHeadersCallback(
    _ session: OpaquePointer?, _ frame: UnsafePointer<nghttp2_frame>?, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let frame else { return 0 }
    let s = owner(userData)
    let id = frame.pointee.hd.stream_id
    s.incomingHeaders[id] = IncomingHeaders()
    if s.role == .server && s.streams[id] == nil && frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST {
        s.streams[id] = H2StreamState(window: s.tuning)
    }
    return 0
}

private func headerCallback(
    _ session: OpaquePointer?, _ frame: UnsafePointer<nghttp2_frame>?, _ name: UnsafePointer<UInt8>?, _ namelen: Int,
    _ value: UnsafePointer<UInt8>?, _ valuelen: Int, _ flags: UInt8, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let frame else { return 0 }
    let s = owner(userData)
    // Changed in place: one lookup, and the field array is never copied.
    s.incomingHeaders[frame.pointee.hd.stream_id]?.add(size: namelen + valuelen + 32, within: s.tuning) {
        HeaderField(
            String(decoding: UnsafeBufferPointer(start: name, count: namelen), as: UTF8.self),
            String(decoding: UnsafeBufferPointer(start: value, count: valuelen), as: UTF8.self))
    }
    return 0
}

private func frameRecvCallback(
    _ session: OpaquePointer?, _ frame: UnsafePointer<nghttp2_frame>?, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let frame else { return 0 }
    let s = owner(userData)
    let hd = frame.pointee.hd
    let endStream = hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
    switch UInt32(hd.type) {
    case NGHTTP2_HEADERS.rawValue:
        let block = s.incomingHeaders.removeValue(forKey: hd.stream_id) ?? IncomingHeaders()
        if block.tooLarge {
            s.events.append(.headersTooLarge(stream: hd.stream_id))
        } else {
            s.events.append(.headers(stream: hd.stream_id, fields: block.fields, endStream: endStream))
        }
    case NGHTTP2_DATA.rawValue:
        if endStream { s.events.append(.remoteEnded(stream: hd.stream_id)) }
    case NGHTTP2_PING.rawValue:
        if hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0 {
            var opaque: UInt64 = 0
            withUnsafeMutableBytes(of: &opaque) { raw in
                withUnsafeBytes(of: frame.pointee.ping.opaque_data) { src in raw.copyMemory(from: src) }
            }
            s.events.append(.pingAcknowledged(opaque: UInt64(bigEndian: opaque)))
        }
    case NGHTTP2_GOAWAY.rawValue:
        s.events.append(.goaway(lastStreamID: frame.pointee.goaway.last_stream_id, errorCode: frame.pointee.goaway.error_code))
    default:
        break
    }
    return 0
}

/// The only copy on the receive path: nghttp2's chunk is valid only during this call.
private func dataChunkCallback(
    _ session: OpaquePointer?, _ flags: UInt8, _ streamID: Int32, _ data: UnsafePointer<UInt8>?, _ len: Int,
    _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    let s = owner(userData)
    s.receivedSinceGrant += len
    s.streams[streamID]?.unconsumed += len
    var buffer = s.allocator.buffer(capacity: len)
    buffer.writeBytes(UnsafeRawBufferPointer(start: data, count: len))
    s.events.append(.data(stream: streamID, bytes: buffer))
    return 0
}

private func streamCloseCallback(
    _ session: OpaquePointer?, _ streamID: Int32, _ errorCode: UInt32, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    let s = owner(userData)
    s.streams.removeValue(forKey: streamID)?.receiveWindow.release(to: &s.windowBudget)
    s.incomingHeaders.removeValue(forKey: streamID)
    s.events.append(.closed(stream: streamID, errorCode: errorCode))
    return 0
}

/// GOAWAY frames that leave: nghttp2 sends some of its own (a peer over a limit, a protocol
/// error), which the owner must notice to stop using the connection.
private func frameSendCallback(
    _ session: OpaquePointer?, _ frame: UnsafePointer<nghttp2_frame>?, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let frame, UInt32(frame.pointee.hd.type) == NGHTTP2_GOAWAY.rawValue else { return 0 }
    owner(userData).events.append(.goawaySent(errorCode: frame.pointee.goaway.error_code))
    return 0
}
