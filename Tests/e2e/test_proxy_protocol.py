"""PROXY protocol in (issue #15): a real haproxy in front of the gateway with send-proxy and
send-proxy-v2 on tcp, http and https listeners; the carried client address reaches the agent,
the upstream and the access logs. Refusals: an untrusted sender, a malformed header, a slow
one. Forwarding fields: a client's own X-Forwarded-For is never believed, a trusted proxy's is
continued. Clients speak from 127.0.0.2 and haproxy from 127.0.0.1, the only trusted address,
so every address in the assertions says which hop it is."""
import json
import re
import shutil
import socket
import subprocess
import threading
import time

import pytest

from conftest import Process, connect, free_port, recv_all, wait_port
from test_http import service
from test_https import issue

HAPROXY = shutil.which("haproxy")
pytestmark = pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed (scripts/install-deps.sh test)")

CLIENT = "127.0.0.2"
UNTRUSTED = "127.0.0.3"


def client_socket(port, source=CLIENT, timeout=10):
    """A connection to loopback `port` from `source` (any 127/8 address is ours)."""
    s = socket.socket()
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def haproxy_config(frontends):
    """The deployment example of docs/load-balancer.md, on loopback: `frontends` is a list of
    (name, mode, listen port, gateway port, server options)."""
    out = """global
    maxconn 4096
defaults
    timeout connect 5s
    timeout client 30s
    timeout server 30s
"""
    for name, mode, port, target, options in frontends:
        out += f"""
frontend {name}
    mode {mode}
    bind 127.0.0.1:{port}
    default_backend {name}_gateway
backend {name}_gateway
    mode {mode}
{"    option forwardfor" + chr(10) if mode == "http" else ""}    server gateway 127.0.0.1:{target} {options}
"""
    return out


@pytest.fixture
def lb(tunnel, peer, pki, tmp_path):
    """A gateway trusting 127.0.0.1 with proxy_protocol on its tcp port, an http and an https
    listener, plus a plain http listener; an agent serving echo and an httpapp; haproxy in
    front with one frontend per case."""
    echo = peer("echo")
    app = peer("httpapp", "one")
    t = tunnel(echo.port)
    t.http_port, t.https_port, t.plain_port = free_port(), free_port(), free_port()
    issue(pki, t.dir, "app", ["app.test"])
    gw = (t.dir / "gateway.toml").read_text()
    # The implicit port of allow_ports follows [gateway] proxy_protocol.
    gw = gw.replace("[gateway]\n", '[gateway]\ntrusted_proxies = ["127.0.0.1/32", "::1"]\nproxy_protocol = true\n', 1)
    gw += f"""allow_hosts = ["app.test"]

[log]
access = true
[limits]
proxy_header_timeout = "1s"
# Below the connections haproxy holds at once in the tests: a trusted balancer is held to
# max_connections only.
max_connections_per_ip = 8

[[listener]]
name = "web"
protocol = "http"
listen = "127.0.0.1:{t.http_port}"
proxy_protocol = true

[[listener]]
name = "tls"
protocol = "https"
listen = "127.0.0.1:{t.https_port}"
proxy_protocol = true
cert = "app.crt"
key = "app.key"

[[listener]]
name = "plain"
protocol = "http"
listen = "127.0.0.1:{t.plain_port}"
"""
    (t.dir / "gateway.toml").write_text(gw)
    agent = (t.dir / "agent.toml").read_text().replace("[control]\n", "[log]\naccess = true\n[control]\n", 1)
    (t.dir / "agent.toml").write_text(agent + service(
        "web", app.port, ["app.test"], extra='forwarded_headers = ["forwarded", "x-forwarded", "x-real-ip"]\n'))
    t.start_gateway()
    t.start_agent()
    t.lb = {name: free_port() for name in ("tcp1", "tcp2", "http1", "http2", "https2", "xff")}
    (t.dir / "haproxy.cfg").write_text(haproxy_config([
        ("tcp1", "tcp", t.lb["tcp1"], t.public_port, "send-proxy"),
        ("tcp2", "tcp", t.lb["tcp2"], t.public_port, "send-proxy-v2"),
        ("http1", "tcp", t.lb["http1"], t.http_port, "send-proxy"),
        ("http2", "tcp", t.lb["http2"], t.http_port, "send-proxy-v2"),
        # Health checks carry a header too (v2: LOCAL), every 200 ms.
        ("https2", "tcp", t.lb["https2"], t.https_port, "send-proxy-v2 check check-send-proxy inter 200"),
        ("xff", "http", t.lb["xff"], t.plain_port, ""),
    ]))
    t.haproxy = Process([HAPROXY, "-db", "-f", t.dir / "haproxy.cfg"], t.dir / "haproxy.log")
    for port in t.lb.values():
        wait_port(port)
    yield t
    t.haproxy.kill()


def echo_through(port, payload=b"ping\n", source=CLIENT):
    """Sends `payload` from `source` through `port`; returns (the client's own port, echo)."""
    s = client_socket(port, source=source)
    own = s.getsockname()[1]
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
    data = recv_all(s)
    s.close()
    return own, data


def curl_from_client(url, *args):
    r = subprocess.run(["curl", "-sS", "--max-time", "30", "--interface", CLIENT, "-H", "Host: app.test", *args, url],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_tcp_through_haproxy_v1_and_v2(lb):
    for frontend in ("tcp1", "tcp2"):
        own, data = echo_through(lb.lb[frontend])
        assert data == b"ping\n"
        who = f"client={CLIENT}:{own}"
        # The gateway's access record, and the agent's (what fastgw-client told it).
        lb.gateway.wait_for(rf"tcp connection closed.*{who}\b|{who}\b.*tcp connection closed")
        lb.agent.wait_for(rf"upstream connection closed.*{who}\b|{who}\b.*upstream connection closed")


def headers_seen(body):
    seen = json.loads(body)
    return {n.lower(): v for n, v in seen["headers"]}


def test_http_through_haproxy_v1_and_v2_with_spoofed_forwarded_for(lb):
    for frontend in ("http1", "http2"):
        out = curl_from_client(f"http://127.0.0.1:{lb.lb[frontend]}/headers", "-H", "X-Forwarded-For: 6.6.6.6",
                               "-H", "Forwarded: for=6.6.6.6", "-H", "X-Real-IP: 6.6.6.6")
        names = headers_seen(out)
        # The client is what haproxy's header said; its own claims are gone.
        assert names["x-forwarded-for"] == CLIENT, names
        assert re.fullmatch(rf'for="{re.escape(CLIENT)}:\d+";proto=http;host=app.test', names["forwarded"]), names
        assert names["x-real-ip"] == CLIENT, names  # the agent's own, from fastgw-client
        port = re.search(r":(\d+)\"", names["forwarded"]).group(1)
        lb.gateway.wait_for(rf"http request.*client={CLIENT}:{port}\b|client={CLIENT}:{port}\b.*http request")


def test_https_and_h2_through_haproxy_v2(lb):
    for version in ("--http1.1", "--http2"):
        out = curl_from_client(f"https://app.test:{lb.lb['https2']}/headers", version, "--cacert", str(lb.dir / "ca.crt"),
                               "--resolve", f"app.test:{lb.lb['https2']}:127.0.0.1", "-H", "X-Forwarded-For: 6.6.6.6")
        names = headers_seen(out)
        assert names["x-forwarded-for"] == CLIENT, names
        assert names["x-forwarded-proto"] == "https"
        assert re.fullmatch(rf'for="{re.escape(CLIENT)}:\d+";proto=https;host=app.test', names["forwarded"]), names
    # haproxy's health checks (LOCAL headers, then a close before TLS) are not refused.
    time.sleep(1)
    assert not any(k.startswith("proxy_") for k in stats(lb)), stats(lb)
    assert "is DOWN" not in lb.haproxy.text(), lb.haproxy.text()


def test_a_trusted_proxys_forwarded_for_is_continued(lb):
    # haproxy in http mode appends the client to X-Forwarded-For; the gateway trusts it and
    # appends haproxy; the client is the right-most untrusted address.
    # haproxy passes the client's X-Forwarded-Proto/-Host on (as TLS-terminating proxies set
    # them): from a trusted proxy they are kept, the Forwarded element still says "http".
    out = curl_from_client(f"http://127.0.0.1:{lb.lb['xff']}/headers", "-H", "X-Forwarded-For: 6.6.6.6",
                           "-H", "X-Forwarded-Proto: https", "-H", "X-Forwarded-Host: shop.test:8443")
    names = headers_seen(out)
    assert names["x-forwarded-for"] == f"6.6.6.6, {CLIENT}, 127.0.0.1", names
    assert re.fullmatch(r'for="127\.0\.0\.1:\d+";proto=http;host=app.test', names["forwarded"]), names
    assert names["x-forwarded-proto"] == "https" and names["x-forwarded-host"] == "shop.test:8443", names
    lb.gateway.wait_for(rf"http request.*client={CLIENT}\b.*proxy=127\.0\.0\.1:|proxy=127\.0\.0\.1:\d+.*client={CLIENT}\b")
    # The agent hears the same client: its X-Real-IP (and a PROXY header it would write).
    assert names["x-real-ip"] == CLIENT, names
    # Straight from an untrusted client the same claim is dropped.
    out = curl_from_client(f"http://127.0.0.1:{lb.plain_port}/headers", "-H", "X-Forwarded-For: 6.6.6.6",
                           "-H", "X-Forwarded-Proto: https")
    names = headers_seen(out)
    assert names["x-forwarded-for"] == CLIENT and names["x-real-ip"] == CLIENT, names
    assert names["x-forwarded-proto"] == "http", names


V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
# Headers a trusted balancer may send that name no client.
UNNAMED = [b"PROXY UNKNOWN\r\n", V2_SIGNATURE + b"\x21\x00\x00\x00", V2_SIGNATURE + b"\x20\x00\x00\x00"]


def http_response(data):
    """(status line, body) of a whole HTTP/1.1 response, chunked or not."""
    head, _, body = data.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        out = b""
        while body:
            size, _, body = body.partition(b"\r\n")
            n = int(size.split(b";")[0], 16)
            if n == 0:
                break
            out, body = out + body[:n], body[n + 2:]
        body = out
    return head.split(b"\r\n")[0], body


@pytest.mark.parametrize("header", UNNAMED, ids=["v1-unknown", "v2-proxy-unspec", "v2-local"])
def test_a_header_naming_no_client_earns_no_trust(lb, header):
    # The balancer is trusted, but a header without a client means the bytes after it are
    # someone else's: their forwarding claims are dropped like any client's.
    s = client_socket(lb.http_port, source="127.0.0.1")
    s.sendall(header + b"GET /headers HTTP/1.1\r\nHost: app.test\r\nX-Forwarded-For: 6.6.6.6\r\n"
              b"X-Real-IP: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\nX-Forwarded-Proto: https\r\n"
              b"X-Forwarded-Host: evil.test\r\nConnection: close\r\n\r\n")
    status, body = http_response(recv_all(s))
    s.close()
    assert status.startswith(b"HTTP/1.1 200"), status
    names = headers_seen(body)
    assert names["x-forwarded-for"] == "127.0.0.1", names
    assert names["x-real-ip"] == "127.0.0.1", names  # the agent's, from fastgw-client
    assert re.fullmatch(r'for="127\.0\.0\.1:\d+";proto=http;host=app.test', names["forwarded"]), names
    assert names["x-forwarded-proto"] == "http" and names["x-forwarded-host"] == "app.test", names
    # The access records name the balancer's connection, never the claim.
    lb.gateway.wait_for(r"http request.*client=127\.0\.0\.1:\d+")
    lb.agent.wait_for(r"client=127\.0\.0\.1")
    assert "6.6.6.6" not in lb.gateway.text() and "6.6.6.6" not in lb.agent.text()


def test_one_client_behind_haproxy_is_held_to_its_per_ip_limit(lb):
    # max_connections_per_ip = 8 counts each client the PROXY header names.
    held = []
    for _ in range(8):
        s = client_socket(lb.lb["tcp2"])
        s.sendall(b"held\n")
        assert s.recv(5) == b"held\n"
        held.append(s)
    for _ in range(3):
        assert refused_from(lb.lb["tcp2"], CLIENT, b"more\n", timeout=3)
    # A raw header for the same client straight from the balancer's address: refused too.
    assert refused_from(lb.public_port, "127.0.0.1", f"PROXY TCP4 {CLIENT} 127.0.0.1 1234 80\r\nmore\n".encode())
    # Another client behind the same balancer is still served.
    assert echo_through(lb.lb["tcp1"], source="127.0.0.4")[1] == b"ping\n"
    assert stats(lb)["proxy_client_limit"] == 4
    assert lb.gateway.count("limit per client behind a load balancer reached") <= 2
    # Closed connections give their slots back; refused ones never took any.
    for s in held:
        s.close()
    deadline = time.monotonic() + 10
    again = []
    while len(again) < 8 and time.monotonic() < deadline:
        s = client_socket(lb.lb["tcp2"])
        s.sendall(b"back\n")
        try:
            if s.recv(5) == b"back\n":
                again.append(s)
                continue
        except (ConnectionResetError, socket.timeout):
            pass
        s.close()
        time.sleep(0.1)
    assert len(again) == 8
    for s in again:
        s.close()


def test_a_probe_closed_before_any_byte_is_not_a_malformed_header(lb):
    # Plain TCP health checks: connect and close. Counted apart, never logged.
    for _ in range(5):
        s = client_socket(lb.http_port, source="127.0.0.1")
        s.close()
    deadline = time.monotonic() + 5
    while stats(lb).get("proxy_empty", 0) < 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stats(lb).get("proxy_empty", 0) >= 5, stats(lb)
    assert "proxy_malformed" not in stats(lb)
    assert "PROXY header refused" not in lb.gateway.text()
    # One byte, then a close: that is a broken header.
    s = client_socket(lb.http_port, source="127.0.0.1")
    s.sendall(b"P")
    s.shutdown(socket.SHUT_WR)
    assert refused(s, 2)
    s.close()
    assert stats(lb)["proxy_malformed"] == 1


def refused(s, timeout):
    """Whether the gateway closes `s` (reset or FIN, nothing echoed) within `timeout` s."""
    s.settimeout(timeout)
    try:
        return s.recv(100) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def refused_from(port, source, payload, timeout=2):
    """Whether a connection from `source` sending `payload` is closed without an answer (a
    reset may come as early as the connect)."""
    try:
        s = client_socket(port, source=source)
        s.sendall(payload)
    except (ConnectionResetError, BrokenPipeError):
        return True
    try:
        return refused(s, timeout)
    finally:
        s.close()


def stats(t):
    return t.ctl_json("stats")["connections_refused_total"]


def test_a_header_from_an_untrusted_address_is_refused(lb):
    assert refused_from(lb.public_port, UNTRUSTED, b"PROXY TCP4 9.9.9.9 127.0.0.1 1234 80\r\nping\n")
    # Many of them: counted, and logged once per interval, not once each.
    for _ in range(20):
        assert refused_from(lb.http_port, UNTRUSTED, b"PROXY TCP4 9.9.9.9 127.0.0.1 1234 80\r\nGET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
    assert stats(lb)["proxy_untrusted"] == 21
    assert lb.gateway.count("PROXY protocol connection from an untrusted peer refused") <= 2
    assert "9.9.9.9" not in lb.agent.text()


def test_malformed_and_slow_headers_are_refused_within_the_timeout(lb):
    for garbage in (b"PROXY TCP4 9.9.9.9\r\n", b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n",
                    b"PROXY TCP4 9.9.9.9 127.0.0.1 99999 80\r\n", b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff"):
        s = client_socket(lb.http_port, source="127.0.0.1")
        s.sendall(garbage)
        assert refused(s, 1), garbage
        s.close()
    assert stats(lb)["proxy_malformed"] == 4
    # Silence, and a header dribbled a byte at a time: both closed at proxy_header_timeout (1 s).
    started = time.monotonic()
    idle = client_socket(lb.public_port, source="127.0.0.1")
    slow = client_socket(lb.public_port, source="127.0.0.1")
    header = b"PROXY TCP4 9.9.9.9 127.0.0.1 1234 80\r\n"
    closed = False
    for b in header:
        try:
            slow.sendall(bytes([b]))
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
        time.sleep(0.1)
    assert closed or refused(slow, 1)
    assert time.monotonic() - started < 3
    assert refused(idle, 1)
    assert stats(lb)["proxy_timeout"] == 2
    assert "9.9.9.9" not in lb.agent.text()


def test_a_thousand_connections_through_haproxy_are_all_attributed(lb):
    # Twelve at once through the balancer's one address, over max_connections_per_ip: the
    # limit holds each client behind it (twelve addresses here), not the balancer.
    held = []
    for i in range(12):
        s = client_socket(lb.lb["tcp2"], source=f"127.0.1.{i + 1}")
        s.sendall(b"held\n")
        assert s.recv(5) == b"held\n"
        held.append(s)
    for s in held:
        s.close()
    own_ports = []
    failures = []
    lock = threading.Lock()
    started = time.monotonic()

    def worker(frontend, source, n):
        for _ in range(n):
            try:
                own, data = echo_through(lb.lb[frontend], b"x" * 64, source=source)
                assert data == b"x" * 64
                with lock:
                    own_ports.append((source, own))
            except Exception as e:  # counted, reported below
                with lock:
                    failures.append(repr(e))

    # Twenty clients at once (one address each, one connection at a time), over the
    # balancer's one address.
    threads = [threading.Thread(target=worker, args=("tcp1" if i % 2 else "tcp2", f"127.0.2.{i + 1}", 50))
               for i in range(20)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not failures, failures[:5]
    assert len(own_ports) == 1000
    assert time.monotonic() - started < 120
    # Every one has its access record, naming the client's own address and port.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        seen = set(re.findall(r"client=(127\.0\.2\.\d+):(\d+)", lb.gateway.text()))
        if all((a, str(p)) in seen for a, p in own_ports):
            break
        time.sleep(0.2)
    missing = [p for p in own_ports if (p[0], str(p[1])) not in seen]
    assert not missing, f"{len(missing)} connections not attributed"
    # None is put on haproxy's address (wait_port's probes, from 127.0.0.1, carry no bytes).
    records = [l for l in lb.gateway.text().splitlines() if "tcp connection closed" in l and "bytes_in=64 " in l]
    assert len(records) == 1000 and all("client=127.0.2." in l for l in records)
    assert "proxy_client_limit" not in stats(lb)


@pytest.mark.skipif(shutil.which("systemd-socket-activate") is None, reason="systemd-socket-activate is not installed")
def test_socket_activated_listener_reads_the_header(tunnel, peer):
    from test_socket_activate import activated_gateway
    echo = peer("echo")
    t = tunnel(echo.port)
    gw = (t.dir / "gateway.toml").read_text()
    (t.dir / "gateway.toml").write_text(gw.replace(
        "[gateway]\n", '[gateway]\ntrusted_proxies = ["127.0.0.1"]\nproxy_protocol = true\n', 1) + "\n[log]\naccess = true\n")
    activated = activated_gateway(t, [f"127.0.0.1:{t.tunnel_port}", f"127.0.0.1:{t.public_port}"],
                                  ["tunnel", "whatever"], "activated.log")
    try:
        t.start_agent()
        activated.wait_for("gateway ready")
        s = client_socket(t.public_port, source="127.0.0.1")
        s.sendall(b"PROXY TCP4 198.51.100.7 127.0.0.1 4711 80\r\nping\n")
        s.shutdown(socket.SHUT_WR)
        assert recv_all(s) == b"ping\n"
        activated.wait_for(r"tcp connection closed.*client=198\.51\.100\.7:4711\b")
        assert refused_from(t.public_port, UNTRUSTED, b"PROXY TCP4 198.51.100.8 127.0.0.1 4711 80\r\nping\n")
    finally:
        activated.kill()


def test_reload_changes_trust_and_listeners_in_place(lb):
    path = lb.dir / "gateway.toml"
    original = path.read_text()
    path.write_text(original.replace('trusted_proxies = ["127.0.0.1/32", "::1"]', 'trusted_proxies = ["127.0.0.9"]'))
    lb.ctl("reload")
    assert refused_from(lb.lb["tcp2"], CLIENT, b"ping\n"), "haproxy is no longer trusted"
    assert stats(lb)["proxy_untrusted"] >= 1
    # Trusted again, and the plain listener (kept open) now expects the header too.
    path.write_text(original.replace('listen = "127.0.0.1:%d"\n' % lb.plain_port,
                                     'listen = "127.0.0.1:%d"\nproxy_protocol = true\n' % lb.plain_port))
    lb.ctl("reload")
    assert echo_through(lb.lb["tcp2"])[1] == b"ping\n"
    assert refused_from(lb.plain_port, "127.0.0.1", b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
    assert stats(lb)["proxy_malformed"] == 1
    # A configuration that turns proxy_protocol on with nobody trusted is refused whole.
    path.write_text(original.replace('trusted_proxies = ["127.0.0.1/32", "::1"]', "trusted_proxies = []"))
    r = lb.ctl("reload", check=False)
    assert r.returncode != 0 and "needs [gateway] trusted_proxies" in r.stdout + r.stderr, r


def test_check_warns_about_trusting_huge_ranges(tunnel):
    from test_check import check
    t = tunnel(free_port())
    path = t.dir / "gateway.toml"
    good = path.read_text().replace("[gateway]\n", '[gateway]\ntrusted_proxies = ["10.0.0.0/8", "2001:db8::/32"]\n', 1)
    path.write_text(good)
    code, out = check(path)
    assert code == 0 and "warning" not in out, out
    lines = good.splitlines()
    line = next(i for i, l in enumerate(lines, 1) if l.startswith("trusted_proxies"))
    path.write_text(good.replace('"10.0.0.0/8"', '"0.0.0.0/0", "::/0", "::ffff:0:0/96", "10.0.0.0/7"'))
    code, out = check(path)
    # A warning, not a failure; with the file and line of the key.
    assert code == 0 and "configuration OK" in out, out
    for block in ("0.0.0.0/0", "::/0", "10.0.0.0/7"):
        assert f"{path}:{line}: warning: [gateway] trusted_proxies entry {block} is broader than" in out, out
    assert out.count("warning:") == 3, out  # ::ffff:0:0/96 is 0.0.0.0/0, listed once
