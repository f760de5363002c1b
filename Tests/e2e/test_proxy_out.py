"""PROXY protocol out and forwarding-field selection (issue #15 items 4 and 5, agent side):
the agent writes a PROXY v1/v2 header first on each upstream connection of a service with
`proxy_protocol`, naming the public client and the listener address it reached, and sends
upstream only the forwarding fields `forwarded_headers` asks for. Receivers are real: nginx
(`listen ... proxy_protocol`, http and stream) and haproxy (`accept-proxy`)."""
import json
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BIN, Process, free_port, run_nginx, wait_port
from test_http import add_http, service
from test_https import add_https, curl_https

STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")


def client_socket(ip, port, timeout=10.0):
    """A connection to the gateway's public port from loopback address `ip`, so the upstream's
    log can tell the public client apart from the agent (127.0.0.1)."""
    s = socket.socket()
    s.settimeout(timeout)
    s.bind((ip, 0))
    s.connect(("127.0.0.1", port))
    return s


def read_response(s):
    """One Content-Length-framed response from a keep-alive connection: (status, head, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, f"connection closed in the head: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?im)^content-length:\s*(\d+)", head).group(1))
    while len(body) < length:
        chunk = s.recv(65536)
        assert chunk, "connection closed in the body"
        body += chunk
    assert len(body) == length, "bytes after the response"
    return int(head.split(b" ")[1]), head, body


def get(s, path, host, extra=""):
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode())
    return read_response(s)


def wait_lines(path, count, timeout=10.0):
    """The log file's lines, once there are `count` (a line starting with "-" is a probe of
    wait_port's, which sent no PROXY header, and is left out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = [line for line in path.read_text().splitlines() if not line.startswith("-")] if path.exists() else []
        if len(lines) >= count:
            return lines
        time.sleep(0.05)
    raise AssertionError(f"{path}: fewer than {count} lines within {timeout}s: {path.read_text() if path.exists() else ''}")


def add_tcp(t, name, upstream_port, extra=""):
    """A tcp service of the test agent on a new public port (granted to it); returns the port."""
    port = free_port()
    gw = (t.dir / "gateway.toml").read_text()
    (t.dir / "gateway.toml").write_text(gw.replace("allow_ports = [", f"allow_ports = [{port}, ", 1))
    (t.dir / "agent.toml").write_text((t.dir / "agent.toml").read_text() + f"""
[[service]]
name = "{name}"
type = "tcp"
upstream = "127.0.0.1:{upstream_port}"
remote_port = {port}
{extra}
""")
    return port


def nginx_with_proxy_protocol(d, log_fields):
    """nginx with two http servers that expect a PROXY header and log `log_fields` to
    d/http.log; returns (process, port of the first, port of the second)."""
    p1, p2 = free_port(), free_port()
    nginx = run_nginx(d, p1, f"""
  log_format pp '{log_fields}';
  access_log {d}/http.log pp;
  server {{ listen 127.0.0.1:{p1} proxy_protocol; location / {{ return 200 "v1 ok\\n"; }} }}
  server {{ listen 127.0.0.1:{p2} proxy_protocol; location / {{ return 200 "v2 ok\\n"; }} }}
""")
    try:
        wait_port(p2)
    except AssertionError:
        nginx.kill()
        raise
    return nginx, p1, p2


def add_v1_v2(t, p1, p2):
    """http services v1.test (PROXY v1 to p1) and v2.test (v2 to p2); returns the listener port."""
    return add_http(t, service("v1", p1, ["v1.test"], extra='proxy_protocol = "v1"\n')
                    + service("v2", p2, ["v2.test"], extra='proxy_protocol = "v2"\n'), ["v1.test", "v2.test"])


def test_http_services_send_v1_and_v2_to_nginx_one_upstream_connection_per_client(tunnel, peer, tmp_path):
    d = tmp_path / "nginx"
    nginx, p1, p2 = nginx_with_proxy_protocol(
        d, "$proxy_protocol_addr $proxy_protocol_port $proxy_protocol_server_addr $proxy_protocol_server_port $connection $request_uri")
    try:
        # One tunnel connection: the keep-alive pool lives per tunnel connection, so reuse is
        # only predictable with one.
        t = tunnel(peer("echo").port, connections=1)
        port = add_v1_v2(t, p1, p2)
        t.start_gateway()
        t.start_agent()
        expected = []
        for host, tag in (("v1.test", "v1"), ("v2.test", "v2")):
            # Two requests on one public connection from 127.0.0.2, then one from 127.0.0.3,
            # which claims to be someone else in fastgw-* fields the gateway strips.
            a = client_socket("127.0.0.2", port)
            a_port = a.getsockname()[1]
            assert get(a, f"/{tag}/a1", host)[2] == f"{tag} ok\n".encode()
            assert get(a, f"/{tag}/a2", host)[2] == f"{tag} ok\n".encode()
            b = client_socket("127.0.0.3", port)
            b_port = b.getsockname()[1]
            spoof = "fastgw-client: 6.6.6.6:1\r\nfastgw-destination: 6.6.6.6:2\r\n"
            assert get(b, f"/{tag}/b1", host, spoof)[0] == 200
            # The first client again, after the second: still its own connection.
            assert get(a, f"/{tag}/a3", host)[0] == 200
            a.close()
            b.close()
            expected += [("127.0.0.2", a_port, f"/{tag}/a1"), ("127.0.0.2", a_port, f"/{tag}/a2"),
                         ("127.0.0.3", b_port, f"/{tag}/b1"), ("127.0.0.2", a_port, f"/{tag}/a3")]
        lines = [line.split() for line in wait_lines(d / "http.log", len(expected))]
        assert len(lines) == len(expected), lines
        connections = {}
        for (ip, cport, uri), (addr, pport, saddr, sport, conn, logged_uri) in zip(expected, lines):
            assert logged_uri == uri, lines
            assert (addr, int(pport)) == (ip, cport), lines
            assert (saddr, int(sport)) == ("127.0.0.1", port), lines
            connections.setdefault((uri.split("/")[1], ip), set()).add(conn)
        # Each public connection's requests shared one upstream connection; no two public
        # connections ever shared one.
        for tag in ("v1", "v2"):
            assert len(connections[(tag, "127.0.0.2")]) == 1, connections
            assert connections[(tag, "127.0.0.2")].isdisjoint(connections[(tag, "127.0.0.3")]), connections
        assert "6.6.6.6" not in (d / "http.log").read_text()
    finally:
        nginx.kill()


def test_pool_bound_holds_across_clients(tunnel, peer, tmp_path):
    """max_idle_connections bounds a proxy_protocol service's idle connections over all its
    clients: with 1, the second client's idle connection pushes out the first's."""
    d = tmp_path / "nginx"
    nginx, p1, _ = nginx_with_proxy_protocol(d, "$proxy_protocol_addr $connection $request_uri")
    try:
        t = tunnel(peer("echo").port, connections=1)
        port = add_http(t, service("v1", p1, ["v1.test"], extra='proxy_protocol = "v1"\nmax_idle_connections = 1\n'), ["v1.test"])
        t.start_gateway()
        t.start_agent()
        a = client_socket("127.0.0.2", port)
        b = client_socket("127.0.0.3", port)
        for s, path in ((a, "/a1"), (a, "/a2"), (b, "/b1"), (a, "/a3")):
            assert get(s, path, "v1.test")[0] == 200
        a.close()
        b.close()
        conn = {uri: (addr, c) for addr, c, uri in (line.split() for line in wait_lines(d / "http.log", 4))}
        assert conn["/a1"] == conn["/a2"], conn  # reused while it was the only idle one
        assert conn["/a3"][0] == "127.0.0.2" and conn["/a3"][1] not in (conn["/a1"][1], conn["/b1"][1]), conn
    finally:
        nginx.kill()


def test_https_http2_streams_carry_the_client_too(tunnel, peer, pki, tmp_path):
    """Requests that arrive as HTTP/2 streams on an https listener name their client and
    listener like HTTP/1.1 ones."""
    d = tmp_path / "nginx"
    nginx, p1, p2 = nginx_with_proxy_protocol(
        d, "$proxy_protocol_addr $proxy_protocol_port $proxy_protocol_server_addr $proxy_protocol_server_port $request_uri")
    try:
        t = tunnel(peer("echo").port)
        add_v1_v2(t, p1, p2)
        https = add_https(t, pki, "pp", ["v1.test", "v2.test"])
        t.start_gateway()
        t.start_agent()
        expected = []
        for host in ("v1.test", "v2.test"):
            r = curl_https(https, host, f"/{host}", t.dir / "ca.crt", "--http2", "--interface", "127.0.0.2",
                           "-w", "|%{local_port}|%{http_version}")
            body, local_port, version = r.stdout.decode().split("|")
            assert (body, version) == (f"{host[:2]} ok\n", "2"), r
            expected.append(["127.0.0.2", local_port, "127.0.0.1", str(https), f"/{host}"])
        assert [line.split() for line in wait_lines(d / "http.log", 2)] == expected
    finally:
        nginx.kill()


def test_ipv6_listener_sends_tcp6_and_v2_ipv6(tunnel, peer, tmp_path):
    """A public listener on [::1]: the header is TCP6 (v1) / AF_INET6 (v2), and nginx reads the
    client and the listener as ::1."""
    d = tmp_path / "nginx"
    nginx, p1, p2 = nginx_with_proxy_protocol(
        d, "$proxy_protocol_addr $proxy_protocol_port $proxy_protocol_server_addr $proxy_protocol_server_port $request_uri")
    try:
        t = tunnel(peer("echo").port)
        port = add_v1_v2(t, p1, p2)
        gw = (t.dir / "gateway.toml").read_text()
        (t.dir / "gateway.toml").write_text(gw.replace(f'listen = "127.0.0.1:{port}"', f'listen = "[::1]:{port}"'))
        t.start_gateway()
        t.start_agent()
        expected = []
        for host in ("v1.test", "v2.test"):
            s = socket.create_connection(("::1", port), timeout=10)
            cport = s.getsockname()[1]
            assert get(s, f"/{host}", host)[0] == 200
            s.close()
            expected.append(["::1", str(cport), "::1", str(port), f"/{host}"])
        assert [line.split() for line in wait_lines(d / "http.log", 2)] == expected
    finally:
        nginx.kill()


@pytest.mark.skipif(not STREAM_MODULE.exists(), reason="nginx stream module missing (libnginx-mod-stream)")
def test_tcp_services_send_v1_and_v2_to_nginx_stream(tunnel, peer, tmp_path):
    d = tmp_path / "nginx"
    p1, p2 = free_port(), free_port()
    nginx = run_nginx(d, p1, "", stream=f"""
  log_format pp '$proxy_protocol_addr $proxy_protocol_port $proxy_protocol_server_addr $proxy_protocol_server_port $server_port';
  access_log {d}/stream.log pp;
  server {{ listen 127.0.0.1:{p1} proxy_protocol; return "stream $proxy_protocol_addr\\n"; }}
  server {{ listen 127.0.0.1:{p2} proxy_protocol; return "stream $proxy_protocol_addr\\n"; }}
""", modules=[STREAM_MODULE])
    try:
        wait_port(p2)
        t = tunnel(peer("echo").port)
        pub1 = add_tcp(t, "s1", p1, 'proxy_protocol = "v1"')
        pub2 = add_tcp(t, "s2", p2, 'proxy_protocol = "v2"')
        t.start_gateway()
        t.start_agent()
        expected = []
        for pub, upstream, ip in ((pub1, p1, "127.0.0.2"), (pub2, p2, "127.0.0.3")):
            s = client_socket(ip, pub)
            cport = s.getsockname()[1]
            data = b""
            while chunk := s.recv(1024):
                data += chunk
            s.close()
            assert data == f"stream {ip}\n".encode()
            expected.append([ip, str(cport), "127.0.0.1", str(pub), str(upstream)])
        lines = [line.split() for line in wait_lines(d / "stream.log", 2)]
        assert sorted(lines) == sorted(expected), lines
    finally:
        nginx.kill()


def test_tcp_services_send_v1_and_v2_to_haproxy(tunnel, peer, tmp_path):
    echo = peer("echo")
    h1, h2 = free_port(), free_port()
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(f"""
global
  log stdout format raw local0
defaults
  mode tcp
  log global
  timeout connect 5s
  timeout client 10s
  timeout server 10s
frontend pp
  bind 127.0.0.1:{h1} accept-proxy
  bind 127.0.0.1:{h2} accept-proxy
  log-format "src=%ci:%cp dst=%fi:%fp"
  default_backend echo
backend echo
  server e 127.0.0.1:{echo.port}
""")
    haproxy = Process(["/usr/sbin/haproxy", "-db", "-f", cfg], tmp_path / "haproxy.log")
    try:
        wait_port(h1)
        wait_port(h2)
        t = tunnel(echo.port)
        pub1 = add_tcp(t, "h1", h1, 'proxy_protocol = "v1"')
        pub2 = add_tcp(t, "h2", h2, 'proxy_protocol = "v2"')
        t.start_gateway()
        t.start_agent()
        for n, (pub, ip) in enumerate(((pub1, "127.0.0.2"), (pub2, "127.0.0.3")), start=1):
            s = client_socket(ip, pub)
            cport = s.getsockname()[1]
            s.sendall(b"ping\n")
            assert s.recv(64) == b"ping\n"
            s.close()
            haproxy.wait_for(re.escape(f"src={ip}:{cport} dst=127.0.0.1:{pub}"))
        assert "127.0.0.1:" not in re.sub(r"dst=127\.0\.0\.1:\d+", "", "".join(
            line for line in haproxy.text().splitlines(True) if line.startswith("src="))), haproxy.text()
    finally:
        haproxy.kill()


def upstream_fields(port, host, ip="127.0.0.2", extra=""):
    """The forwarding fields (lowercased names) the httpapp upstream received for one request."""
    s = client_socket(ip, port)
    status, _, body = get(s, "/headers", host, extra)
    s.close()
    assert status == 200, body
    names = ("forwarded", "x-real-ip")
    return {n.lower(): v for n, v in json.loads(body)["headers"]
            if n.lower() in names or n.lower().startswith("x-forwarded-")}


def test_forwarded_headers_choose_what_the_upstream_sees(tunnel, peer):
    app = peer("httpapp", "app")
    t = tunnel(peer("echo").port)
    services = [("all", None), ("none", "[]"), ("real", '["x-real-ip"]'),
                ("xff", '["x-forwarded"]'), ("fwd", '["forwarded", "x-real-ip"]')]
    port = add_http(t, "".join(service(name, app.port, [f"{name}.test"],
                                       extra=f"forwarded_headers = {sel}\n" if sel else "") for name, sel in services),
                    [f"{name}.test" for name, _ in services])
    t.start_gateway()
    t.start_agent()
    # A client that claims an address in every field it can: none of it gets through.
    spoof = "X-Real-IP: 6.6.6.6\r\nX-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\n"
    default = upstream_fields(port, "all.test", extra=spoof)
    assert default["x-forwarded-for"] == "127.0.0.2", default
    assert default["x-forwarded-proto"] == "http" and default["x-forwarded-host"] == "all.test", default
    assert "x-real-ip" not in default, default
    gateway_sent = set(default)
    assert upstream_fields(port, "none.test", extra=spoof) == {}
    assert upstream_fields(port, "real.test", ip="127.0.0.3", extra=spoof) == {"x-real-ip": "127.0.0.3"}
    xff = upstream_fields(port, "xff.test", extra=spoof)
    assert set(xff) == {n for n in gateway_sent if n.startswith("x-forwarded-")}, xff
    assert xff["x-forwarded-for"] == "127.0.0.2" and xff["x-forwarded-host"] == "xff.test", xff
    # `Forwarded` comes from the gateway (RFC 7239); whatever it sends passes, nothing else.
    fwd = upstream_fields(port, "fwd.test", extra=spoof)
    assert set(fwd) == {"x-real-ip"} | ({"forwarded"} & set(gateway_sent)), fwd
    assert fwd["x-real-ip"] == "127.0.0.2", fwd
    assert "6.6.6.6" not in json.dumps([default, fwd])


def test_check_refuses_proxy_protocol_on_h2c(tmp_path):
    cfg = tmp_path / "agent.toml"
    (tmp_path / "agent.token").write_text("0123456789abcdef0123\n")
    cfg.write_text("""[agent]
name = "a"
token_file = "agent.token"
gateways = ["gw:7443"]
[[service]]
name = "grpc"
type = "http"
upstream = "127.0.0.1:50051"
hosts = ["g.test"]
upstream_protocol = "h2c"
proxy_protocol = "v2"
[[service]]
name = "web"
type = "http"
upstream = "127.0.0.1:80"
hosts = ["w.test"]
forwarded_headers = ["x-forwarded-for"]
""")
    r = subprocess.run([BIN, "check", "-c", cfg], capture_output=True, text=True)
    assert r.returncode == 1
    assert f"{cfg}:11: service \"grpc\": proxy_protocol needs upstream_protocol = \"http1\"" in r.stderr, r.stderr
    assert f"{cfg}:17: service \"web\": forwarded_headers: \"x-forwarded-for\" is not one of: forwarded, x-forwarded, x-real-ip" in r.stderr, r.stderr
