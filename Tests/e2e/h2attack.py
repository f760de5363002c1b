"""Hostile HTTP/2 peers for the attack suite, on the `h2` and `hpack` libraries: raw frames
where a well-behaved client library would refuse to send them."""
import socket
import ssl
import struct
import time

import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack

from conftest import connect

HEADERS, CONTINUATION, RST_STREAM = 0x1, 0x9, 0x3
END_STREAM, END_HEADERS = 0x1, 0x4


def frame(kind, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def tls_h2(port, host, cafile, timeout=10.0):
    """A TLS connection to an https listener that negotiated h2."""
    ctx = ssl.create_default_context(cafile=str(cafile))
    ctx.set_alpn_protocols(["h2"])
    s = ctx.wrap_socket(connect(port, timeout=timeout), server_hostname=host)
    assert s.selected_alpn_protocol() == "h2"
    return s


def client(sock, **settings):
    """An h2 client connection with `settings` (h2.settings.SettingCodes names) sent."""
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.local_settings = h2.settings.Settings(
        client=True, initial_values={getattr(h2.settings.SettingCodes, k): v for k, v in settings.items()})
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    return conn


def request_headers(host, path, method="GET"):
    return [(":method", method), (":scheme", "https"), (":authority", host), (":path", path)]


def drain(sock, conn, seconds):
    """Reads for `seconds`, answering what h2 answers by itself (SETTINGS and PING ACKs) and
    granting no window; returns the events."""
    events = []
    deadline = time.monotonic() + seconds
    sock.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionError, OSError):
            break
        if not data:
            break
        try:
            events += conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            break
        out = conn.data_to_send()
        if out:
            try:
                sock.sendall(out)
            except OSError:
                break
    return events


def rapid_resets(port, host, cafile, pairs):
    """HEADERS immediately followed by RST_STREAM, `pairs` times on one connection; returns
    how many were written before the gateway stopped reading them."""
    s = tls_h2(port, host, cafile)
    conn = client(s)
    sent = 0
    try:
        for _ in range(pairs):
            sid = conn.get_next_available_stream_id()
            conn.send_headers(sid, request_headers(host, "/sleep/5"), end_stream=True)
            conn.reset_stream(sid)
            s.sendall(conn.data_to_send())
            sent += 1
    except (OSError, h2.exceptions.ProtocolError):
        pass
    finally:
        s.close()
    return sent


def hpack_bomb(port, host, cafile, entry=4000, frames=8):
    """One header block that stores a `entry`-byte value in the dynamic table and then
    refers to it with one byte per reference, spread over HEADERS + CONTINUATION frames of
    16 KiB (nghttp2 allows 8 frames per block); returns what the gateway sent back."""
    # Built before connecting: the first request is due within header_timeout.
    prefix = hpack.Encoder().encode(request_headers(host, "/") + [("x-bomb", "a" * entry)])
    # Index 62 is the newest dynamic-table entry: x-bomb.
    block = prefix + b"\xbe" * (frames * 16384 - len(prefix))
    chunks = [block[i:i + 16384] for i in range(0, len(block), 16384)]
    out = b""
    for n, chunk in enumerate(chunks):
        last = n == len(chunks) - 1
        kind = HEADERS if n == 0 else CONTINUATION
        flags = (END_STREAM if n == 0 else 0) | (END_HEADERS if last else 0)
        out += frame(kind, flags, 1, chunk)
    s = tls_h2(port, host, cafile)
    conn = client(s)
    drain(s, conn, 0.3)
    answer = b""
    try:
        s.sendall(out)
        s.settimeout(5)
        while len(answer) < 1 << 16:
            data = s.recv(65536)
            if not data:
                break
            answer += data
            if b"431" in answer or len(answer) > 200:
                break
    except (OSError, socket.timeout):
        pass
    s.close()
    return answer


class FakeAgent:
    """A tunnel peer that authenticates like an agent and then speaks HTTP/2 as it likes:
    its SETTINGS and its register message are the test's."""

    def __init__(self, port, cafile, agent, token, settings):
        ctx = ssl.create_default_context(cafile=str(cafile))
        ctx.set_alpn_protocols(["http/1.1"])
        self.sock = ctx.wrap_socket(connect(port), server_hostname="localhost")
        self.sock.sendall((
            "GET /.fastgw/v1/tunnel HTTP/1.1\r\nHost: localhost\r\n"
            f"Authorization: Bearer {token}\r\nFastgw-Agent: {agent}\r\nFastgw-Instance: fake\r\n"
            "Connection: Upgrade\r\nUpgrade: fastgw-h2\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            data = self.sock.recv(1)
            assert data, head
            head += data
        assert head.startswith(b"HTTP/1.1 101"), head
        self.conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        self.conn.local_settings = h2.settings.Settings(
            client=False, initial_values={getattr(h2.settings.SettingCodes, k): v for k, v in settings.items()})
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())
        self.control = None

    def register(self, services):
        """Answers the gateway's control stream and declares `services` (JSON text)."""
        deadline = time.monotonic() + 10
        while self.control is None and time.monotonic() < deadline:
            for e in drain(self.sock, self.conn, 0.2):
                if isinstance(e, h2.events.RequestReceived):
                    self.control = e.stream_id
        assert self.control is not None, "the gateway opened no control stream"
        self.conn.send_headers(self.control, [(":status", "200")])
        self.sock.sendall(self.conn.data_to_send())
        body = ('{"type":"register","services":' + services + '}\n').encode()
        while body and time.monotonic() < deadline + 10:
            n = min(len(body), self.conn.local_flow_control_window(self.control), self.conn.max_outbound_frame_size)
            if n > 0:
                self.conn.send_data(self.control, body[:n])
                body = body[n:]
                self.sock.sendall(self.conn.data_to_send())
            else:
                drain(self.sock, self.conn, 0.05)
        answer = b""
        while not answer.endswith(b"\n") and time.monotonic() < deadline + 10:
            for e in drain(self.sock, self.conn, 0.2):
                if isinstance(e, h2.events.DataReceived) and e.stream_id == self.control:
                    answer += e.data
                    self.conn.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
        return answer

    def serve(self, seconds):
        return drain(self.sock, self.conn, seconds)

    def close(self):
        self.sock.close()
