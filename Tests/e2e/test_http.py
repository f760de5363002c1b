"""The HTTP entry (issue #5): public HTTP/1.1 clients -> gateway -> request streams -> agent ->
HTTP/1.1 upstreams, with real curl and raw sockets as clients."""
import json
import os
import socket
import subprocess
import time

import pytest

from conftest import BIN, Process, connect, free_port
import pattern


def add_http(t, services, allow_hosts, http_settings="", agent_name=None):
    """Gives the tunnel `t` an http listener and http services; returns the listener port."""
    port = free_port()
    gw = (t.dir / "gateway.toml").read_text()
    # The last table of the file is the test agent's grant: the key lands there.
    gw += f"allow_hosts = {json.dumps(allow_hosts)}\n"
    gw += f'\n[[listener]]\nname = "web"\nprotocol = "http"\nlisten = "127.0.0.1:{port}"\n'
    if http_settings:
        gw += f"\n[http]\n{http_settings}\n"
    (t.dir / "gateway.toml").write_text(gw)
    config = "agent.toml" if agent_name is None else f"agent-{agent_name}.toml"
    (t.dir / config).write_text((t.dir / config).read_text() + services)
    return port


def service(name, upstream_port, hosts, prefix=None, extra=""):
    s = f'\n[[service]]\nname = "{name}"\ntype = "http"\nupstream = "127.0.0.1:{upstream_port}"\nhosts = {json.dumps(hosts)}\n'
    if prefix:
        s += f'path_prefix = "{prefix}"\n'
    return s + extra


def curl(port, path, *args, host="app.test"):
    r = subprocess.run(["curl", "-sS", "--max-time", "60", "-H", f"Host: {host}", *args, f"http://127.0.0.1:{port}{path}"],
                       capture_output=True, timeout=120)
    return r


def exchange(port, raw, timeout=10):
    """Sends raw bytes, reads until the gateway closes; returns the bytes."""
    s = connect(port, timeout=timeout)
    s.sendall(raw)
    out = b""
    try:
        while data := s.recv(65536):
            out += data
    except (ConnectionResetError, socket.timeout):
        pass
    s.close()
    return out


def responses(data):
    """Splits bytes holding Content-Length-framed responses into (status, head, body)."""
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        out.append((int(head.split(b" ")[1]), head, rest[:length]))
        data = rest[length:]
    return out


@pytest.fixture
def app(tunnel, peer):
    """A gateway with an http listener and one agent serving app.test from an httpapp."""
    up = peer("httpapp", "one")
    t = tunnel(free_port())
    t.http_port = add_http(t, service("web", up.port, ["app.test"]), ["app.test", "*.app.test"],
                           http_settings='response_timeout = "2s"\nheader_timeout = "1s"\nmax_body_size = "2GiB"')
    t.start_gateway()
    t.start_agent()
    return t


def test_curl_get_keepalive_and_forwarded_headers(app):
    port = app.http_port
    r = curl(port, "/hello")
    assert r.stdout == b"one GET /hello\n", r.stderr
    r = curl(port, "/headers", "-H", "X-Forwarded-For: 10.1.1.1", "-H", "Fastgw-Service: evil",
             "-H", "Connection: x-drop", "-H", "X-Drop: 1", "-H", "X-Keep: 2")
    seen = json.loads(r.stdout)
    names = {n.lower(): v for n, v in seen["headers"]}
    assert seen["line"] == "GET /headers HTTP/1.1"
    assert names["host"] == "app.test"
    assert names["x-forwarded-for"] == "127.0.0.1"  # the client's own claim is not trusted (#14)
    assert names["x-forwarded-proto"] == "http"
    assert names["x-forwarded-host"] == "app.test"
    assert len(names["x-request-id"]) == 16
    assert names["x-keep"] == "2"
    assert "x-drop" not in names and not any(n.startswith("fastgw-") for n in names)
    # Requests on one client connection: the agent reuses its upstream connection.
    out = exchange(port, b"GET /headers HTTP/1.1\r\nHost: app.test\r\n\r\n" * 3
                   + b"GET /headers HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
    conns = [json.loads(body)["conn"] for _, _, body in responses(out)]
    assert len(conns) == 4 and len(set(conns)) <= app.connections, conns


def test_pipelined_requests_answered_in_order(app):
    reqs = b"".join(b"GET /p%d HTTP/1.1\r\nHost: app.test\r\n\r\n" % i for i in range(5))
    out = exchange(app.http_port, reqs + b"GET /last HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
    bodies = [body for _, _, body in responses(out)]
    assert bodies == [b"one GET /p%d\n" % i for i in range(5)] + [b"one GET /last\n"], out


def test_chunked_upload_trailers_and_expect_continue(app, tmp_path):
    data = os.urandom(3 << 20)
    f = tmp_path / "up.bin"
    f.write_bytes(data)
    import hashlib
    want = hashlib.sha256(data).hexdigest()
    # curl sends Expect: 100-continue for a large body and streams it chunked.
    r = curl(app.http_port, "/sha256", "-X", "POST", "-H", "Transfer-Encoding: chunked", "--data-binary", f"@{f}")
    got = json.loads(r.stdout)
    assert (got["bytes"], got["sha256"]) == (len(data), want)
    # Trailers from a raw chunked request reach the upstream.
    raw = (b"POST /sha256 HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
           b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Sum: abc\r\n\r\n")
    out = exchange(app.http_port, raw)
    got = json.loads(out.split(b"\r\n\r\n", 1)[1])
    assert got["bytes"] == 11 and got["trailers"] == [["x-sum", "abc"]], out


def test_chunked_download_with_trailers_and_head(app):
    out = exchange(app.http_port, b"GET /bytes/100000?chunked=1&trailer=1 HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    assert body.endswith(b"0\r\nx-checksum: " + pattern.sha256_of(100000).encode() + b"\r\n\r\n")
    r = curl(app.http_port, "/bytes/100000?chunked=1")
    assert len(r.stdout) == 100000
    r = curl(app.http_port, "/x", "-I")
    assert r.stdout.startswith(b"HTTP/1.1 200") and b"content-length: 12" in r.stdout.lower()  # len("one HEAD /x\n")


def test_errors_carry_request_ids(app, peer):
    port = app.http_port
    r = curl(port, "/", "-i", host="other.test")
    assert b"404 Not Found" in r.stdout and b"request id: " in r.stdout
    rid = r.stdout.split(b"request id: ")[1].strip().decode()
    app.gateway.wait_for(f"request_id={rid}")
    # 504: the upstream is slower than response_timeout.
    r = curl(port, "/sleep/5", "-i")
    assert b"504 Gateway Timeout" in r.stdout and b"did not answer within" in r.stdout
    # 503 with Retry-After for a granted host nobody serves.
    r = curl(port, "/", "-i", host="x.app.test")
    assert b"503 Service Unavailable" in r.stdout and b"retry-after: 5" in r.stdout.lower()
    assert curl(port, "/sha256", "-X", "POST", "--data-binary", "hello").returncode == 0
    stats = app.ctl_json("stats")
    assert stats["http_requests_total"] >= 4
    assert stats["http_errors_total"]["404"] >= 1 and stats["http_errors_total"]["503"] >= 1
    assert stats["http_errors_total"]["504"] >= 1
    assert stats["http_responses_total"]["2xx"] >= 1
    assert stats["service_bytes_in_total"]["web"] >= 5 and stats["service_bytes_out_total"]["web"] > 0
    assert stats["service_http_responses_total"]["web:2xx"] >= 1


def test_upstream_down_is_502(tunnel, peer):
    t = tunnel(free_port())
    t.http_port = add_http(t, service("web", free_port(), ["app.test"]), ["app.test"])
    t.start_gateway()
    t.start_agent()
    r = curl(t.http_port, "/", "-i")
    assert b"502 Bad Gateway" in r.stdout and b"Connection refused" in r.stdout, r.stdout


@pytest.mark.parametrize("raw,status", [
    (b"POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", b"400"),
    (b"POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", b"400"),
    (b"POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: -1\r\n\r\n", b"400"),
    (b"POST / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", b"501"),
    (b"POST / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked, identity\r\n\r\n", b"400"),
    (b"POST /sha256 HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", b"400"),
    (b"GET / HTTP/1.1\r\n\r\n", b"400"),
    (b"GET / HTTP/1.1\r\nHost: app.test\r\nHost: b.test\r\n\r\n", b"400"),
    (b"GET / HTTP/2.0\r\nHost: app.test\r\n\r\n", b"505"),
    (b"GET / HTTP/1.1\r\nHost: app.test\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", b"431"),
    (b"GET / HTTP/1.1\r\nHost: app.test\r\nbad header\r\n\r\n", b"400"),
    (b"CONNECT app.test:443 HTTP/1.1\r\nHost: app.test\r\n\r\n", b"405"),
])
def test_abuse_gets_documented_status_and_gateway_keeps_serving(app, raw, status):
    out = exchange(app.http_port, raw)
    assert out.startswith(b"HTTP/1.1 " + status), out[:300]
    assert b"request id: " in out
    assert curl(app.http_port, "/still").stdout == b"one GET /still\n"


def test_slow_head_is_408_and_body_limit_413(tunnel, peer):
    up = peer("httpapp", "one")
    t = tunnel(free_port())
    t.http_port = add_http(t, service("web", up.port, ["app.test"]), ["app.test"],
                           http_settings='header_timeout = "1s"\nidle_timeout = "1s"\nmax_body_size = 1000')
    t.start_gateway()
    t.start_agent()
    s = connect(t.http_port)
    s.sendall(b"GET / HTTP/1.1\r\nHost: app")
    s.settimeout(5)
    out = s.recv(4096)
    assert out.startswith(b"HTTP/1.1 408"), out
    out = exchange(t.http_port, b"POST /sha256 HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5000\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 413"), out
    # A body that stops coming: 408 after idle_timeout.
    s = connect(t.http_port)
    s.sendall(b"POST /sha256 HTTP/1.1\r\nHost: app.test\r\nContent-Length: 100\r\n\r\nhalf")
    s.settimeout(5)
    out = s.recv(4096)
    assert out.startswith(b"HTTP/1.1 408") and b"stalled" in out, out
    body = b"5dc\r\n" + b"x" * 1500 + b"\r\n0\r\n\r\n"
    out = exchange(t.http_port, b"POST /sha256 HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    assert out.startswith(b"HTTP/1.1 413"), out


def test_host_and_path_routing_to_two_agents(tunnel, peer):
    one, two = peer("httpapp", "one"), peer("httpapp", "two")
    t = tunnel(free_port(), extra_agents=("b",))
    # Agent b's grant is the last table: add_http's allow_hosts land there.
    t.http_port = add_http(t, service("site", one.port, ["app.test"]), ["app.test", "*.api.test"])
    gw = (t.dir / "gateway.toml").read_text()
    gw = gw.replace('name = "test"\n', 'name = "test"\nallow_hosts = ["app.test"]\n', 1)
    (t.dir / "gateway.toml").write_text(gw)
    b_conf = t.dir / "agent-b.toml"
    b_conf.write_text(b_conf.read_text() + service("api", two.port, ["app.test"], prefix="/api")
                      + service("wild", two.port, ["*.api.test"]))
    t.start_gateway()
    t.start_agent()
    t.start_extra("b")
    port = t.http_port
    assert curl(port, "/").stdout == b"one GET /\n"
    assert curl(port, "/apix").stdout == b"one GET /apix\n"
    assert curl(port, "/api").stdout == b"two GET /api\n"
    assert curl(port, "/api/v1?q=1").stdout == b"two GET /api/v1?q=1\n"
    assert curl(port, "/", host="eu.api.test").stdout == b"two GET /\n"
    assert curl(port, "/", host="APP.test:80").stdout == b"one GET /\n"
    routes = t.ctl("routes").stdout
    assert "app.test/api" in routes and "*.api.test" in routes
    # A conflicting claim is refused with a reason.
    conf = t.dir / "agent.toml"
    conf.write_text(conf.read_text() + service("thief", one.port, ["app.test"], prefix="/api"))
    t.ctl("reload", agent=True)
    t.agent.wait_for('already served as service \\\\"api\\\\"|already served as service "api"')


GiB = 1 << 30


def upload(port, size, chunked):
    """Streams `size` pattern bytes as a request body; returns the parsed JSON answer."""
    s = connect(port, timeout=120)
    framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % size
    s.sendall(b"POST /sha256 HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n" + framing + b"\r\n\r\n")
    block = pattern.block()
    for _ in range(size // len(block)):
        s.sendall(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
    if chunked:
        s.sendall(b"0\r\n\r\n")
    out = b""
    while data := s.recv(65536):
        out += data
    s.close()
    return json.loads(out.partition(b"\r\n\r\n")[2])


def test_one_gib_up_and_down_with_bounded_memory(app):
    port = app.http_port
    got = upload(port, GiB, chunked=False)
    assert (got["bytes"], got["sha256"]) == (GiB, pattern.sha256_of(GiB))
    got = upload(port, 256 << 20, chunked=True)
    assert (got["bytes"], got["sha256"]) == (256 << 20, pattern.sha256_of(256 << 20))
    # Download: Content-Length from the upstream, read slowly at first so buffers would show.
    s = connect(port, timeout=120)
    s.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n" % GiB)
    import hashlib
    h = hashlib.sha256()
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    head, _, first = head.partition(b"\r\n\r\n")
    h.update(first)
    n = len(first)
    time.sleep(2)  # the upstream keeps sending; only windows and socket buffers may fill
    peak = max(app.gateway.rss_kib(), app.agent.rss_kib())
    while data := s.recv(1 << 20):
        h.update(data)
        n += len(data)
    s.close()
    assert b"content-length: %d" % GiB in head.lower()
    assert (n, h.hexdigest()) == (GiB, pattern.sha256_of(GiB))
    rss = max(app.gateway.rss_kib(), app.agent.rss_kib(), peak)
    print(f"peak RSS {rss} KiB")
    assert rss < 200 * 1024, f"RSS {rss} KiB after 1 GiB each way"
