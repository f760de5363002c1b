"""Attacks on the public HTTP entry (issue #14), over HTTP/1.1 (raw sockets) and HTTP/2 (curl
over HTTPS): path escapes out of a path_prefix, forwarding fields a client makes up, and
framing faults between the gateway, the agent and an upstream that misbehaves. The upstream is
a raw HTTP/1.1 server in this process, so the tests see exactly what it received."""
import json
import re
import socket
import subprocess
import threading

import pytest

from conftest import connect, free_port
from test_http import add_http, exchange, responses, service
from test_https import add_https


class RawUpstream:
    """Records every request head it receives and answers by path:

        /upgrade-200   200 with a body, whatever the request asked for (no 101)
        /te-identity   Transfer-Encoding: identity with a Content-Length of 5, 20 bytes, close
        /overlong      Content-Length: 5 followed by 10 bytes
        /cl-list       Content-Length: 5, 5
        anything else  JSON {"upstream", "target", "headers"} (keep-alive)
    """

    def __init__(self, name):
        self.name = name
        self.seen = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        buffered = b""
        conn.settimeout(30)
        try:
            while True:
                while b"\r\n\r\n" not in buffered:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffered += data
                head, _, buffered = buffered.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                target = lines[0].split(" ")[1]
                headers = [[n.strip().lower(), v.strip()] for n, _, v in (line.partition(":") for line in lines[1:])]
                self.seen.append((target, headers))
                if not self.answer(conn, target, headers):
                    return
        except OSError:
            pass
        finally:
            conn.close()

    def answer(self, conn, target, headers):
        """Writes the response; False when the connection is to be closed."""
        path = target.partition("?")[0]
        if path == "/upgrade-200":
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\nnot switched")
        elif path == "/te-identity":
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\n" + b"x" * 20)
            return False
        elif path == "/overlong":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n0123456789")
        elif path == "/cl-list":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello")
        else:
            body = json.dumps({"upstream": self.name, "target": target, "headers": headers}).encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        return True

    def close(self):
        self.server.close()


@pytest.fixture
def site(tunnel, pki):
    """app.test: service "site" on / and service "api" on /api, each with its own upstream;
    an http and an https listener."""
    ups = {"site": RawUpstream("site"), "api": RawUpstream("api")}
    t = tunnel(free_port())
    t.http_port = add_http(t, service("site", ups["site"].port, ["app.test"]) + service("api", ups["api"].port, ["app.test"], prefix="/api"),
                           ["app.test"], http_settings='header_timeout = "5s"\nresponse_timeout = "5s"')
    t.https_port = add_https(t, pki, "app", ["app.test"])
    t.start_gateway()
    t.start_agent()
    t.ups = ups
    yield t
    for u in ups.values():
        u.close()


def h1(site, target, extra=b""):
    """One request over HTTP/1.1; returns (status, head, body)."""
    out = exchange(site.http_port, b"GET " + target + b" HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n" + extra + b"\r\n")
    return responses(out)[0]


def h2(site, target, *headers):
    """One request over HTTP/2 (curl, ALPN h2); returns (status, body)."""
    args = ["curl", "-sS", "--http2", "--path-as-is", "--max-time", "20", "--cacert", str(site.dir / "ca.crt"),
            "--resolve", f"app.test:{site.https_port}:127.0.0.1", "-w", "\n%{http_code} %{http_version}"]
    for h in headers:
        args += ["-H", h]
    r = subprocess.run(args + [f"https://app.test:{site.https_port}{target}"], capture_output=True, timeout=60)
    body, _, trailer = r.stdout.rpartition(b"\n")
    status, version = trailer.split()
    assert version == b"2", r.stdout
    return int(status), body


# target -> 400, or (service whose upstream answers, the path it receives)
ESCAPES = {
    "/api/../admin": ("site", "/admin"),
    "/api/%2e%2e/admin": ("site", "/admin"),
    "/api/%2E%2e/admin?x=%2e%2e/y": ("site", "/admin?x=%2e%2e/y"),
    "/api/..%2fadmin": 400,
    "/api/..%2Fadmin": 400,
    "/api//../admin": ("api", "/api/admin"),
    "/api/x/../../admin": ("site", "/admin"),
    "/api/..%5cadmin": 400,
    "/api/..;/admin": 400,
    "/../admin": 400,
    "/api/%7Ev1/./x": ("api", "/api/~v1/x"),
    "/api/%252e%252e/admin": ("api", "/api/%252e%252e/admin"),
    "/apix": ("site", "/apix"),
    "/api": ("api", "/api"),
}


@pytest.mark.parametrize("protocol", ["http/1.1", "h2"])
def test_path_escapes_are_refused_or_routed_on_the_normal_path(site, protocol):
    for target, want in ESCAPES.items():
        if protocol == "h2":
            status, body = h2(site, target)
        else:
            status, _, body = h1(site, target.encode())
        if want == 400:
            assert status == 400 and b"request id: " in body, (target, status, body)
            continue
        assert status == 200, (target, status, body)
        got = json.loads(body)
        assert (got["upstream"], got["target"]) == want, target
    # Whatever happened, /api's upstream only ever saw paths under /api.
    assert site.ups["api"].seen and all(t == "/api" or t.startswith("/api/") for t, _ in site.ups["api"].seen), site.ups["api"].seen


def test_absolute_form_targets_are_normalised_too(site):
    status, _, body = h1(site, b"http://app.test/api/%2e%2e/admin")
    assert status == 200 and json.loads(body)["target"] == "/admin" and json.loads(body)["upstream"] == "site"


@pytest.mark.parametrize("raw,reason", [
    (b"GET /a\tb HTTP/1.1\r\nHost: app.test\r\n\r\n", b"control byte 0x09"),
    (b"GET /a\x00b HTTP/1.1\r\nHost: app.test\r\n\r\n", b"control byte 0x00"),
    (b"GET /a?q=\x01 HTTP/1.1\r\nHost: app.test\r\n\r\n", b"control byte 0x01 in the request query"),
    (b"POST /x HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5, 5\r\n\r\nhello", b"more than one Content-Length value"),
    (b"POST /x HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", b"more than one Content-Length value"),
])
def test_bad_targets_and_length_lists_are_400_at_the_gateway_and_logged_escaped(site, raw, reason):
    before = sum(len(u.seen) for u in site.ups.values())
    out = exchange(site.http_port, raw)
    assert out.startswith(b"HTTP/1.1 400 ") and reason in out and b"request id: " in out, out
    assert sum(len(u.seen) for u in site.ups.values()) == before, "nothing reached an upstream"
    site.gateway.wait_for("http request refused")
    log = site.gateway.log_path.read_bytes()
    assert not any(c in log for c in (b"\x00", b"\x01", b"\t")), "client bytes are escaped in the log"
    if b"\x00" in raw:
        assert rb"/a\\x00b" in log


@pytest.mark.parametrize("protocol", ["http/1.1", "h2"])
def test_forwarding_fields_from_clients_do_not_reach_the_upstream(site, protocol):
    claims = ["Forwarded: for=10.0.0.1;proto=https", "X-Real-IP: 10.0.0.2", "X-Forwarded-For: 10.0.0.3",
              "X-Forwarded-Proto: gopher", "X-Forwarded-Host: evil.test", "X-Forwarded-Port: 1",
              "X-Forwarded-Prefix: /admin", "X-Client-Request-Id: forged", 'X-Request-Id: abc-123 "x"']
    if protocol == "h2":
        status, body = h2(site, "/headers", *claims)
        scheme, host = "https", f"app.test:{site.https_port}"
    else:
        status, _, body = h1(site, b"/headers", "".join(c + "\r\n" for c in claims).encode())
        scheme, host = "http", "app.test"
    assert status == 200, body
    headers = {}
    for name, value in json.loads(body)["headers"]:
        headers.setdefault(name, []).append(value)
    assert headers["x-forwarded-for"] == ["127.0.0.1"]
    assert headers["x-forwarded-proto"] == [scheme]
    assert headers["x-forwarded-host"] == [host]
    # Forwarded is the gateway's own element (#15), the client's is gone.
    assert len(headers["forwarded"]) == 1 and "10.0.0.1" not in headers["forwarded"][0], headers["forwarded"]
    assert re.fullmatch(rf'for="127\.0\.0\.1:\d+";proto={scheme};host={re.escape(host)}', headers["forwarded"][0]) or \
        re.fullmatch(rf'for="127\.0\.0\.1:\d+";proto={scheme};host="{re.escape(host)}"', headers["forwarded"][0]), headers["forwarded"]
    for gone in ("x-real-ip", "x-forwarded-port", "x-forwarded-prefix"):
        assert gone not in headers, gone
    assert len(headers["x-request-id"]) == 1 and len(headers["x-request-id"][0]) == 16, headers["x-request-id"]
    assert headers["x-client-request-id"] == ["abc-123__x_"]


def test_upgrade_answered_200_is_502_not_101_and_the_connection_goes_on(site):
    s = connect(site.http_port)
    s.sendall(b"GET /upgrade-200 HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    data = b""
    while not (got := responses(data)) or len(got[0][2]) < int(got[0][1].lower().split(b"content-length: ")[1].split(b"\r\n")[0]):
        chunk = s.recv(4096)
        assert chunk, data
        data += chunk
    status, head, body = got[0]
    assert status == 502 and b"instead of 101 Switching Protocols" in body, data
    s.sendall(b"GET /after HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
    rest = b""
    while chunk := s.recv(65536):
        rest += chunk
    s.close()
    status, _, body = responses(rest)[0]
    assert status == 200 and json.loads(body)["target"] == "/after"


def test_pipelined_requests_before_a_half_close_are_all_answered(site):
    s = connect(site.http_port)
    s.sendall(b"GET /one HTTP/1.1\r\nHost: app.test\r\n\r\n"
              b"GET /two HTTP/1.1\r\nHost: other.test\r\n\r\n"
              b"GET /three HTTP/1.1\r\nHost: app.test\r\n\r\n")
    s.shutdown(socket.SHUT_WR)
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    s.close()
    got = responses(out)
    assert [status for status, _, _ in got] == [200, 404, 200], out
    assert [json.loads(got[i][2])["target"] for i in (0, 2)] == ["/one", "/three"]
    assert b"connection: close" not in got[0][1].lower() and b"connection: close" in got[2][1].lower()


@pytest.mark.parametrize("protocol", ["http/1.1", "h2"])
def test_upstream_bodies_that_disagree_with_their_length(site, protocol):
    def get(path):
        if protocol == "h2":
            return h2(site, path)
        status, _, body = h1_until_close(site, path)
        return status, body

    # Transfer-Encoding overrides Content-Length: the body runs until close, all 20 bytes.
    assert get("/te-identity") == (200, b"x" * 20)
    # More bytes than the length: the length wins, the rest is dropped.
    assert get("/overlong") == (200, b"01234")
    # The same length twice: one length.
    assert get("/cl-list") == (200, b"hello")


def h1_until_close(site, path):
    """A GET whose response may be chunked or framed by close: (status, head, body decoded)."""
    out = exchange(site.http_port, b"GET " + path.encode() + b" HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        decoded = b""
        while True:
            size, _, body = body.partition(b"\r\n")
            n = int(size, 16)
            if n == 0:
                break
            decoded, body = decoded + body[:n], body[n + 2:]
        body = decoded
    elif b"content-length: " in head.lower():
        assert len(body) == int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0]), out
    return int(head.split(b" ")[1]), head, body


def test_an_overlong_upstream_body_leaves_the_connection_usable(site):
    out = exchange(site.http_port, b"GET /overlong HTTP/1.1\r\nHost: app.test\r\n\r\n"
                   b"GET /next HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
    got = responses(out)
    assert [(s, b) for s, _, b in got][0] == (200, b"01234"), out
    assert json.loads(got[1][2])["target"] == "/next"
