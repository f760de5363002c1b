"""HTTPS listeners (issue #5): TLS terminated at the gateway with certificates chosen by SNI,
reloadable, HTTP/1.1 and HTTP/2 (ALPN); real curl, h2load and Python's ssl module as clients."""
import hashlib
import os
import socket
import ssl
import subprocess
import time

import pytest

from conftest import BIN, connect, free_port
from test_http import responses, service


def issue(pki, dir, name, sans, days=30):
    """A certificate for `sans` signed by the test CA, as dir/name.crt + dir/name.key."""
    ext = dir / f"{name}.ext"
    ext.write_text("subjectAltName=" + ",".join(f"DNS:{s}" for s in sans) + "\nextendedKeyUsage=serverAuth\n")
    subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-subj", f"/CN={sans[0]}", "-keyout", dir / f"{name}.key", "-out", dir / f"{name}.csr"],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", dir / f"{name}.csr", "-CA", pki / "ca.crt", "-CAkey", pki / "ca.key",
                    "-CAcreateserial", "-days", str(days), "-extfile", ext, "-out", dir / f"{name}.crt"],
                   check=True, capture_output=True)


def add_https(t, pki, name, hosts):
    """Gives the tunnel `t` an https listener serving a certificate for `hosts`; returns its port."""
    issue(pki, t.dir, name, hosts)
    port = free_port()
    (t.dir / "gateway.toml").write_text((t.dir / "gateway.toml").read_text() + f"""
[[listener]]
name = "tls"
protocol = "https"
listen = "127.0.0.1:{port}"
[[certificate]]
cert = "{name}.crt"
key = "{name}.key"
""")
    return port


def tls_connect(port, sni, cafile, verify=True):
    ctx = ssl.create_default_context(cafile=str(cafile))
    if not verify:
        ctx.check_hostname = False
    ctx.set_alpn_protocols(["http/1.1"])
    s = ctx.wrap_socket(connect(port), server_hostname=sni)
    return s


def peer_names(s):
    return sorted(v for k, v in s.getpeercert()["subjectAltName"] if k == "DNS")


def ask(s, raw):
    s.sendall(raw)
    out = b""
    while data := s.recv(65536):
        out += data
    return out


def curl_https(port, host, path, cafile, *args):
    return subprocess.run(["curl", "-sS", "--max-time", "30", "--cacert", str(cafile),
                           "--resolve", f"{host}:{port}:127.0.0.1", *args, f"https://{host}:{port}{path}"],
                          capture_output=True, timeout=60)


@pytest.fixture
def site(tunnel, peer, pki):
    """A gateway with an https listener: default certificate localhost, [[certificate]]s for
    app.test (names from the certificate) and *.api.test (hosts given); two agents."""
    one, two = peer("httpapp", "one"), peer("httpapp", "two")
    t = tunnel(free_port(), extra_agents=("b",))
    issue(pki, t.dir, "app", ["app.test"])
    issue(pki, t.dir, "api", ["*.api.test", "api.test"])
    t.https_port = free_port()
    gw = (t.dir / "gateway.toml").read_text()
    gw = gw.replace('name = "test"\n', 'name = "test"\nallow_hosts = ["app.test"]\n', 1)
    gw += 'allow_hosts = ["*.api.test"]\n'
    gw += f"""
[[listener]]
name = "tls"
protocol = "https"
listen = "127.0.0.1:{t.https_port}"
cert = "gateway.crt"
key = "gateway.key"
[[certificate]]
cert = "app.crt"
key = "app.key"
[[certificate]]
cert = "api.crt"
key = "api.key"
hosts = ["*.api.test"]
[http]
header_timeout = "2s"
"""
    (t.dir / "gateway.toml").write_text(gw)
    (t.dir / "agent.toml").write_text((t.dir / "agent.toml").read_text() + service("site", one.port, ["app.test"]))
    b = t.dir / "agent-b.toml"
    b.write_text(b.read_text() + service("api", two.port, ["*.api.test"]))
    t.start_gateway()
    t.start_agent()
    t.start_extra("b")
    t.ca = t.dir / "ca.crt"
    return t


def test_sni_picks_the_certificate_and_hosts_route_to_two_agents(site):
    port, ca = site.https_port, site.ca
    r = curl_https(port, "app.test", "/x", ca)
    assert r.stdout == b"one GET /x\n", r.stderr
    r = curl_https(port, "eu.api.test", "/y", ca)
    assert r.stdout == b"two GET /y\n", r.stderr
    s = tls_connect(port, "app.test", ca)
    assert peer_names(s) == ["app.test"]
    s.close()
    s = tls_connect(port, "eu.api.test", ca)
    assert peer_names(s) == ["*.api.test", "api.test"]
    # The forwarded request says it came over https.
    out = ask(s, b"GET /headers HTTP/1.1\r\nHost: eu.api.test\r\nConnection: close\r\n\r\n")
    assert b'"x-forwarded-proto", "https"' in out.lower() or b'"X-Forwarded-Proto", "https"' in out, out
    s.close()
    # api.test itself is not in the certificate's hosts list: the default certificate answers.
    for sni in ("api.test", "unknown.test"):
        s = tls_connect(port, sni, ca, verify=False)
        assert peer_names(s) == ["localhost"], sni
        s.close()
    # No SNI at all (an IP literal): the default certificate.
    r = subprocess.run(["curl", "-sS", "--cacert", ca, "-H", "Host: app.test", f"https://127.0.0.1:{port}/"],
                       capture_output=True, timeout=60)
    assert r.stdout == b"one GET /\n", r.stderr
    # A name the connection was not opened for, under another certificate: 421.
    r = curl_https(port, "localhost", "/", ca, "-H", "Host: app.test")
    assert r.stdout.startswith(b"421 Misdirected Request"), r.stdout


def test_a_host_other_than_the_connection_was_opened_for_is_421(site):
    s = tls_connect(site.https_port, "app.test", site.ca)
    out = ask(s, b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\nGET / HTTP/1.1\r\nHost: eu.api.test\r\nConnection: close\r\n\r\n")
    (st1, _, b1), (st2, _, b2) = responses(out)
    assert (st1, b1) == (200, b"one GET /\n")
    assert st2 == 421 and b"eu.api.test" in b2 and b"request id" in b2.lower(), b2
    s.close()
    # Two names under one certificate may share a connection.
    s = tls_connect(site.https_port, "a.api.test", site.ca)
    out = ask(s, b"GET / HTTP/1.1\r\nHost: b.api.test\r\nConnection: close\r\n\r\n")
    assert responses(out)[0][0] == 200
    s.close()


def test_slow_or_failed_handshakes_do_not_hold_the_listener(site):
    idle = connect(site.https_port)  # never says hello
    garbage = connect(site.https_port)
    garbage.sendall(b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
    assert garbage.recv(4096)[:1] in (b"\x15", b"")  # a TLS alert or a close
    r = curl_https(site.https_port, "app.test", "/", site.ca)
    assert r.stdout == b"one GET /\n"
    idle.settimeout(10)
    t0 = time.monotonic()
    assert idle.recv(1) == b""  # closed after header_timeout
    assert time.monotonic() - t0 < 5


def test_reload_swaps_certificates_and_refuses_bad_ones(site, pki):
    port, ca = site.https_port, site.ca
    s = tls_connect(port, "app.test", ca)
    before = s.getpeercert()["serialNumber"]
    old = tls_connect(port, "app.test", ca)
    # A renewed certificate at the same path: reload serves it to new handshakes.
    issue(pki, site.dir, "app", ["app.test", "www.app.test"])
    site.ctl("reload")
    s2 = tls_connect(port, "www.app.test", ca)
    assert s2.getpeercert()["serialNumber"] != before
    assert peer_names(s2) == ["app.test", "www.app.test"]
    s2.close()
    # A connection opened before the reload keeps working.
    out = ask(old, b"GET /old HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
    assert responses(out)[0][2] == b"one GET /old\n"
    # A certificate that does not load fails the reload, with the line, and nothing changes.
    conf = site.dir / "gateway.toml"
    good = conf.read_text()
    conf.write_text(good.replace('key = "api.key"', 'key = "missing.key"'))
    r = site.ctl("reload", check=False)
    assert r.returncode != 0
    assert "gateway.toml:" in r.stderr and "missing.key" in r.stderr, r.stderr
    s3 = tls_connect(port, "x.api.test", ca)
    assert peer_names(s3) == ["*.api.test", "api.test"]
    s3.close()
    r = subprocess.run([BIN, "check", "--config", conf], capture_output=True, text=True)
    assert r.returncode == 1 and "gateway.toml:" in r.stdout + r.stderr
    conf.write_text(good)
    s.close()


def test_http2_clients_get_routed_streamed_and_errors(site, tmp_path):
    port, ca = site.https_port, site.ca
    r = curl_https(port, "app.test", "/h2", ca, "--http2", "-w", "|%{http_version}")
    assert r.stdout == b"one GET /h2\n|2", r.stderr
    # Headers arrive translated for the HTTP/1.1 upstream: Host from :authority, cookies joined.
    r = curl_https(port, "eu.api.test", "/headers", ca, "--http2", "-H", "Cookie: a=1", "-H", "Fastgw-Service: evil")
    import json
    seen = json.loads(r.stdout)
    names = {n.lower(): v for n, v in seen["headers"]}
    assert seen["line"] == "GET /headers HTTP/1.1"
    assert names["host"] == f"eu.api.test:{port}" and names["x-forwarded-proto"] == "https"
    assert names["cookie"] == "a=1" and not any(n.startswith("fastgw-") for n in names)
    # An upload streamed as DATA frames (no length known upstream: chunked), trailers kept.
    data = os.urandom(5 << 20)
    f = tmp_path / "up.bin"
    f.write_bytes(data)
    r = curl_https(port, "app.test", "/sha256", ca, "--http2", "--data-binary", f"@{f}", "-H", "Content-Type: application/octet-stream")
    body = json.loads(r.stdout)
    assert body["bytes"] == len(data) and body["sha256"] == hashlib.sha256(data).hexdigest(), r.stdout
    # A download with a trailer: the body intact, the trailer passed to the client.
    r = curl_https(port, "app.test", "/bytes/3000000?chunked=1&trailer=1", ca, "--http2", "-o", tmp_path / "down.bin", "-D", "-")
    down = (tmp_path / "down.bin").read_bytes()
    assert len(down) == 3000000 and b"x-checksum: " + hashlib.sha256(down).hexdigest().encode() in r.stdout, r.stdout[-300:]
    # The gateway's own errors, over HTTP/2 too.
    r = curl_https(port, "localhost", "/", ca, "--http2", "-w", "|%{http_code}")
    assert r.stdout.endswith(b"|404") and b"request id" in r.stdout, r.stdout
    # curl makes a Host header the :authority: another site's, on this connection.
    r = curl_https(port, "app.test", "/", ca, "--http2", "-H", "Host: other.test", "-w", "|%{http_code}")
    assert r.stdout.endswith(b"|421"), r.stdout
    stats = site.ctl_json("stats")
    assert stats["http_responses_total"]["2xx"] >= 4 and stats["http_errors_total"]["421"] >= 1, stats


def test_h2load_100_concurrent_streams_all_answered(site):
    # 2,000 requests, 100 streams at once on each of 2 connections.
    r = subprocess.run(["h2load", "-n", "2000", "-c", "2", "-m", "100", "--connect-to", f"127.0.0.1:{site.https_port}",
                        f"https://app.test:{site.https_port}/h2load"], capture_output=True, text=True, timeout=120)
    out = r.stdout
    assert "2000 succeeded, 0 failed, 0 errored" in out, out
    assert "status codes: 2000 2xx" in out, out
    assert "TLS Protocol: TLSv1.3" in out and "Application protocol: h2" in out, out


def test_http2_one_gib_up_and_down_with_bounded_memory(site):
    import pattern
    GiB = 1 << 30
    base = ["curl", "-sS", "--http2", "--max-time", "300", "--cacert", str(site.ca),
            "--resolve", f"app.test:{site.https_port}:127.0.0.1"]
    url = f"https://app.test:{site.https_port}"
    # Upload from a pipe: no length, so DATA frames until END_STREAM.
    up = subprocess.Popen(base + ["-T", "-", f"{url}/sha256"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    block = pattern.block()
    for _ in range(GiB // len(block)):
        up.stdin.write(block)
    up.stdin.close()
    import json
    got = json.loads(up.stdout.read())
    up.wait(timeout=60)
    assert (got["bytes"], got["sha256"]) == (GiB, pattern.sha256_of(GiB))
    # Download, read slowly at first: the client's window and the queues must hold the rest back.
    down = subprocess.Popen(base + [f"{url}/bytes/{GiB}"], stdout=subprocess.PIPE)
    h = hashlib.sha256()
    first = down.stdout.read(1 << 20)
    h.update(first)
    n = len(first)
    time.sleep(2)
    peak = max(site.gateway.rss_kib(), site.agent.rss_kib())
    while data := down.stdout.read(1 << 20):
        h.update(data)
        n += len(data)
    down.wait(timeout=60)
    assert (n, h.hexdigest()) == (GiB, pattern.sha256_of(GiB))
    rss = max(site.gateway.rss_kib(), site.agent.rss_kib(), peak)
    print(f"peak RSS {rss} KiB")
    assert rss < 200 * 1024, f"RSS {rss} KiB after 1 GiB each way over HTTP/2"


def test_drain_lets_http2_and_https_requests_in_flight_finish(site):
    slow = [subprocess.Popen(["curl", "-sS", flag, "--cacert", str(site.ca), "--resolve", f"app.test:{site.https_port}:127.0.0.1",
                              f"https://app.test:{site.https_port}/sleep/1.5"], stdout=subprocess.PIPE)
            for flag in ("--http2", "--http1.1")]
    time.sleep(0.5)
    idle = tls_connect(site.https_port, "app.test", site.ca)  # an idle HTTP/1.1 connection closes at once
    time.sleep(0.2)
    drain = subprocess.Popen([*site.ctl_args(), "drain", "8"], stdout=subprocess.PIPE, text=True)
    idle.settimeout(5)
    assert idle.recv(1) == b""
    for p in slow:
        assert p.stdout.read() == b"slept\n"
        assert p.wait(timeout=10) == 0
    drain.wait(timeout=20)
    assert site.gateway.proc.wait(timeout=20) == 0


def test_many_requests_leave_no_memory_behind(site):
    """Every request's exchange and stream objects go when the request does (a retain cycle
    between a stream and its endpoint once kept ~2 KiB per request on the gateway, and
    nghttp2's closed-stream list ~300 bytes per request on the agent)."""
    def load(n):
        r = subprocess.run(["h2load", "-n", str(n), "-c", "8", "-m", "16", "--connect-to", f"127.0.0.1:{site.https_port}",
                            f"https://app.test:{site.https_port}/leak"], capture_output=True, text=True, timeout=300)
        assert f"{n} succeeded, 0 failed" in r.stdout, r.stdout
    load(5000)
    before = (site.gateway.rss_kib(), site.agent.rss_kib())
    load(30000)
    after = (site.gateway.rss_kib(), site.agent.rss_kib())
    load(30000)
    after2 = (site.gateway.rss_kib(), site.agent.rss_kib())
    print(f"RSS KiB before {before}, after {after}, after2 {after2}")
    # 60,000 requests: a leak of 100 bytes each would show.
    assert after2[0] - before[0] < 6 * 1024 and after2[1] - before[1] < 6 * 1024, (before, after, after2)
