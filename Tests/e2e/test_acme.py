"""ACME (issue #18 item 1) against a real pebble (Let's Encrypt's test CA) that resolves the
test hosts through dnsmasq to 127.0.0.1 and validates on the gateway's own listeners:
issuance over HTTP-01 and TLS-ALPN-01, renewal without dropping an open connection, a failing
renewal that keeps the old certificate, state reused after a restart; hostile clients on the
challenge paths; `fastgw check` on [acme]."""
import json
import os
import re
import socket
import ssl
import stat
import subprocess
import time
import urllib.request

import pytest

from conftest import BIN, Process, connect, free_port
from test_http import add_http, curl, service
from test_https import add_https, ask, curl_https, peer_names
from test_udp import dnsmasq


def check(path):
    r = subprocess.run([BIN, "check", "--config", str(path)], capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def test_check_validates_acme_and_refuses_it_until_it_works(tunnel, pki):
    t = tunnel(1)
    gw = t.dir / "gateway.toml"
    base = gw.read_text()
    acme = '\n[acme]\ndirectory = "https://127.0.0.1:14000/dir"\nemail = "ops@example.com"\n'
    gw.write_text(base + acme + '\n[[certificate]]\nacme = true\nhosts = ["*.app.test"]\n')
    code, out = check(gw)
    line = gw.read_text().splitlines().index('hosts = ["*.app.test"]') + 1
    assert code == 1 and f"{gw}:{line}: hosts: \"*.app.test\": ACME wildcard certificates need the DNS-01 challenge" in out, out
    gw.write_text(base + acme.replace("https:", "http:") + '\n[[certificate]]\nacme = true\nhosts = ["app.test"]\n')
    code, out = check(gw)
    line = gw.read_text().splitlines().index('[acme]') + 2
    assert code == 1 and f"{gw}:{line}: [acme] directory \"http://127.0.0.1:14000/dir\" must be an https:// URL" in out, out
    gw.write_text(base + acme + '\n[[certificate]]\nacme = true\nhosts = ["app.test"]\n')
    gw.write_text(gw.read_text().replace('name = "test"\n', 'name = "test"\nallow_hosts = ["b.test", "*.w.test"]\n', 1)
                  + '\n[[listener]]\nname = "tls"\nprotocol = "https"\nlisten = "127.0.0.1:1"\n')
    code, out = check(gw)
    assert code == 0 and "gateway configuration OK" in out, out
    assert "acme: 2 certificates: app.test, b.test" in out, out
    assert "*.w.test gets no ACME certificate (wildcards need DNS-01" in out, out
    # A name the https listener's own certificate serves needs no order.
    from test_https import issue
    issue(pki, t.dir, "own", ["b.test"])
    gw.write_text(gw.read_text().replace('listen = "127.0.0.1:1"\n', f'listen = "127.0.0.1:1"\ncert = "{t.dir / "own.crt"}"\nkey = "{t.dir / "own.key"}"\n'))
    code, out = check(gw)
    assert code == 0 and "acme: 1 certificates: app.test" in out, out


def test_challenge_paths_with_no_order_pending_go_to_the_routes(tunnel, peer):
    up = peer("httpapp", "one")
    t = tunnel(free_port())
    port = add_http(t, service("site", up.port, ["app.test"]), ["app.test"])
    t.start_gateway()
    t.start_agent()
    t.wait_registered()
    # An upstream running its own ACME client still gets its challenges.
    r = curl(port, "/.well-known/acme-challenge/abcDEF123_-")
    assert r.stdout == b"one GET /.well-known/acme-challenge/abcDEF123_-\n", r.stderr
    # Traversal is normalised before anything looks at the path; none of these is a token.
    r = curl(port, "/.well-known/acme-challenge/../../etc/passwd", "--path-as-is")
    assert r.stdout == b"one GET /etc/passwd\n", r.stdout
    r = curl(port, "/.well-known/acme-challenge/a%2F..%2Fb")
    assert r.stdout.startswith(b"400 Bad Request: encoded / (%2F)"), r.stdout
    # A token far longer than any CA issues: an ordinary request (routed), not a lookup.
    long = "a" * 6000
    r = curl(port, "/.well-known/acme-challenge/" + long)
    assert r.stdout == f"one GET /.well-known/acme-challenge/{long}\n".encode(), r.stdout[:200]
    # A host nobody serves: 404 from the gateway, as for any path.
    r = curl(port, "/.well-known/acme-challenge/abc", host="nobody.test")
    assert r.stdout.startswith(b"404"), r.stdout
    assert t.ctl("ping").returncode == 0


def test_acme_tls_alpn_for_a_host_with_nothing_pending_gets_the_usual_handshake(tunnel, peer, pki):
    up = peer("httpapp", "one")
    t = tunnel(free_port())
    port = add_https(t, pki, "app", ["app.test"])
    gw = t.dir / "gateway.toml"
    gw.write_text(gw.read_text().replace('name = "test"\n', 'name = "test"\nallow_hosts = ["app.test"]\n', 1))
    (t.dir / "agent.toml").write_text((t.dir / "agent.toml").read_text() + service("site", up.port, ["app.test"]))
    t.start_gateway()
    t.start_agent()
    t.wait_registered()
    ca = t.dir / "ca.crt"
    for names in (["acme-tls/1"], ["acme-tls/1", "http/1.1"]):
        ctx = ssl.create_default_context(cafile=str(ca))
        ctx.set_alpn_protocols(names)
        s = ctx.wrap_socket(connect(port), server_hostname="app.test")
        # The real certificate, and never acme-tls/1: only a pending challenge answers it.
        assert peer_names(s) == ["app.test"]
        assert s.selected_alpn_protocol() in (None, "http/1.1"), names
        out = ask(s, b"GET /x HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
        assert out.endswith(b"one GET /x\n"), out
        s.close()
    # A malformed ALPN extension is OpenSSL's to refuse: the gateway stays up.
    hello = bytes.fromhex("160301002f0100002b0303") + bytes(32) + bytes.fromhex("000002130101000000")
    s = connect(port)
    s.sendall(hello)
    try:
        s.recv(100)
    except (ConnectionResetError, socket.timeout):
        pass
    s.close()
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    s = ctx.wrap_socket(connect(port), server_hostname="app.test")
    assert s.selected_alpn_protocol() == "h2"
    s.close()


# ---- against pebble ----

class Pebble:
    def __init__(self, dir, pki, http_port, tls_port, dns_port):
        self.dir = dir
        ext = dir / "pebble.ext"
        ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
        subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                        "-subj", "/CN=pebble", "-keyout", dir / "pebble.key", "-out", dir / "pebble.csr"],
                       check=True, capture_output=True)
        subprocess.run(["openssl", "x509", "-req", "-in", dir / "pebble.csr", "-CA", pki / "ca.crt", "-CAkey", pki / "ca.key",
                        "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", dir / "pebble.crt"],
                       check=True, capture_output=True)
        self.port, self.management = free_port(), free_port()
        (dir / "pebble.json").write_text(json.dumps({"pebble": {
            "listenAddress": f"127.0.0.1:{self.port}", "managementListenAddress": f"127.0.0.1:{self.management}",
            "certificate": str(dir / "pebble.crt"), "privateKey": str(dir / "pebble.key"),
            "httpPort": http_port, "tlsPort": tls_port, "ocspResponderURL": "",
            "externalAccountBindingRequired": False}}))
        env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0", PEBBLE_AUTHZREUSE="0")
        self.proc = Process(["pebble", "-config", dir / "pebble.json", "-dnsserver", f"127.0.0.1:{dns_port}"],
                            dir / "pebble.log", env=env)
        self.proc.wait_for("ACME directory available", timeout=20)
        self.directory = f"https://127.0.0.1:{self.port}/dir"

    def root(self):
        """pebble's root CA (new at every start), which the issued chains lead to."""
        ctx = ssl.create_default_context(cafile=str(self.dir / "pebble.crt"))
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        pem = urllib.request.urlopen(f"https://127.0.0.1:{self.management}/roots/0", context=ctx, timeout=10).read()
        path = self.dir / "pebble-root.pem"
        path.write_bytes(pem)
        return path


@pytest.fixture
def acme_site(tunnel, peer, pki, tmp_path):
    """A gateway with an http and an https listener (no certificate of its own), [acme] at
    pebble, an agent serving app.test; `start(challenges, extra)` writes the config and starts."""
    procs = []

    def start(challenges, renew_before=None, extra="", http_listener=True):
        up = peer("httpapp", "one")
        t = tunnel(free_port())
        t.http_port = add_http(t, service("site", up.port, ["app.test"]), ["app.test"])
        t.https_port = free_port()
        dns, dns_port = dnsmasq_for_test_hosts(tmp_path)
        procs.append(dns)
        t.pebble = Pebble(tmp_path, pki, t.http_port, t.https_port, dns_port)
        procs.append(t.pebble.proc)
        t.state = tmp_path / "acme-state"
        t.acme = (f'\n[[listener]]\nname = "tls"\nprotocol = "https"\nlisten = "127.0.0.1:{t.https_port}"\n'
                  f'\n[acme]\ndirectory = "{t.pebble.directory}"\nemail = "ops@example.com"\nca = "{pki / "ca.crt"}"\n'
                  f'state_directory = "{t.state}"\nchallenges = {json.dumps(challenges)}\n')
        t.base = (t.dir / "gateway.toml").read_text()
        t.acme_extra = extra
        write_gateway(t, renew_before, http_listener=http_listener)
        t.start_gateway()
        t.start_agent()
        t.wait_registered()
        return t

    yield start
    for p in procs:
        p.kill()


def write_gateway(t, renew_before=None, http_listener=True):
    text = t.base + t.acme + (f'renew_before = "{renew_before}"\n' if renew_before else "") + t.acme_extra
    if not http_listener:
        text = re.sub(r'\n\[\[listener\]\]\nname = "web"\nprotocol = "http"\nlisten = "[^"]*"\n', "\n", text)
    (t.dir / "gateway.toml").write_text(text)


def dnsmasq_for_test_hosts(tmp_path):
    """dnsmasq answering every *.test name with 127.0.0.1 (pebble's -dnsserver)."""
    from test_udp import free_udp_port
    for _ in range(3):
        port = free_udp_port()
        p = Process(["dnsmasq", "--no-daemon", "--conf-file=/dev/null", f"--port={port}", "--listen-address=127.0.0.1",
                     "--bind-interfaces", "--no-resolv", "--no-hosts", "--pid-file=", "--user=root",
                     "--address=/test/127.0.0.1", "--log-facility=-"], tmp_path / f"dnsmasq-{port}.log")
        time.sleep(0.5)
        if p.proc.poll() is None:
            return p, port
    raise AssertionError("dnsmasq did not start")


def wait_log(t, pattern, count=1, timeout=30):
    t.gateway.wait_for(pattern, count=count, timeout=timeout)


def served_serial(port, host, cafile):
    ctx = ssl.create_default_context(cafile=str(cafile))
    with ctx.wrap_socket(connect(port), server_hostname=host) as s:
        return s.getpeercert()["serialNumber"]


def test_http01_issuance_then_a_restart_reuses_the_state(acme_site):
    t = acme_site(["http-01"])
    wait_log(t, "ACME certificate issued")
    root = t.pebble.root()
    r = curl_https(t.https_port, "app.test", "/x", root)
    assert r.stdout == b"one GET /x\n", r.stderr
    # Keys and chain are the gateway's alone.
    for f in ("account.key", "app.test/key.pem", "app.test/chain.pem"):
        assert stat.S_IMODE(os.stat(t.state / f).st_mode) == 0o600, f
    assert stat.S_IMODE(os.stat(t.state).st_mode) == 0o700
    out = t.ctl("certificates").stdout
    assert "app.test" in out and "Pebble Intermediate" in out, out
    prom = t.ctl("stats", "prometheus").stdout
    assert 'fastgw_acme_orders_total{result="issued"} 1' in prom, prom
    assert 'fastgw_certificate_expiry_timestamp_seconds{certificate="acme:app.test"}' in prom, prom
    assert 'fastgw_acme_next_renewal_timestamp_seconds{certificate="app.test"}' in prom, prom
    assert 'fastgw_acme_last_failure_timestamp_seconds{' not in prom, prom
    serial = served_serial(t.https_port, "app.test", root)
    # acme-tls/1 with no challenge pending: the real certificate, no acme-tls/1.
    ctx = ssl.create_default_context(cafile=str(root))
    ctx.set_alpn_protocols(["acme-tls/1"])
    with ctx.wrap_socket(connect(t.https_port), server_hostname="app.test") as s:
        assert s.getpeercert()["serialNumber"] == serial and s.selected_alpn_protocol() is None

    # Restart: the stored certificate serves at once and no order is placed.
    orders = t.gateway.count("ordering ACME certificate")
    t.gateway.kill()
    t.start_gateway()
    wait_log(t, "gateway ready", count=2)
    wait_log(t, "reusing stored ACME certificate")
    t.wait_registered()
    assert served_serial(t.https_port, "app.test", root) == serial
    time.sleep(1.5)
    assert t.gateway.count("ordering ACME certificate") == orders
    assert 'fastgw_acme_orders_total{result="issued"} 0' in t.ctl("stats", "prometheus").stdout

    # State from another ACME directory (NAME/state records it) is not reused: ordered again.
    record = t.state / "app.test" / "state"
    assert f"directory {t.pebble.directory}\n" in record.read_text()
    record.write_text(record.read_text().replace(t.pebble.directory, "https://other-ca.example/dir"))
    t.gateway.kill()
    t.start_gateway()
    wait_log(t, "not known to come from the configured directory")
    wait_log(t, "ACME certificate issued", count=2)
    assert served_serial(t.https_port, "app.test", root) != serial


def test_tls_alpn01_issuance(acme_site):
    t = acme_site(["tls-alpn-01"])
    wait_log(t, "ACME certificate issued")
    root = t.pebble.root()
    r = curl_https(t.https_port, "app.test", "/y", root)
    assert r.stdout == b"one GET /y\n", r.stderr
    # pebble validated over TLS-ALPN-01: its handshakes got acme-tls/1 and were closed at once.
    assert t.gateway.count("acme tls-alpn-01 handshake answered") >= 1
    assert t.gateway.count("acme http-01 challenge answered") == 0


def test_without_an_http_listener_http01_is_not_offered(acme_site):
    # http-01 first in challenges, but nothing answers it: the order goes over tls-alpn-01.
    t = acme_site(["http-01", "tls-alpn-01"], http_listener=False)
    wait_log(t, "ACME certificate issued")
    assert t.gateway.count("challenges=tls-alpn-01") >= 1
    assert t.gateway.count("acme tls-alpn-01 handshake answered") >= 1
    # fastgw check names a listed type no listener can answer.
    gw = t.dir / "gateway.toml"
    gw.write_text(gw.read_text().replace('challenges = ["http-01", "tls-alpn-01"]', 'challenges = ["http-01"]'))
    code, out = check(gw)
    assert code == 0 and 'warning: [acme] challenges: http-01 needs a listener with protocol "http"' in out, out


def test_renewal_keeps_open_connections_and_a_failed_one_keeps_the_certificate(acme_site):
    t = acme_site(["http-01"])
    wait_log(t, "ACME certificate issued")
    root = t.pebble.root()
    ctx = ssl.create_default_context(cafile=str(root))
    ctx.set_alpn_protocols(["http/1.1"])
    held = ctx.wrap_socket(connect(t.https_port), server_hostname="app.test")
    first = held.getpeercert()["serialNumber"]
    held.sendall(b"GET /a HTTP/1.1\r\nHost: app.test\r\n\r\n")
    assert held.recv(65536).endswith(b"one GET /a\n")
    info = json.loads(t.ctl("--json", "certificates").stdout)["certificates"][0]
    # Renewal due in two seconds.
    write_gateway(t, renew_before=f"{info['not_after'] - int(time.time()) - 2}s")
    assert t.ctl("reload").returncode == 0
    wait_log(t, "ACME certificate issued", count=2)
    deadline = time.time() + 10
    while served_serial(t.https_port, "app.test", root) == first and time.time() < deadline:
        time.sleep(0.2)
    second = served_serial(t.https_port, "app.test", root)
    assert second != first
    # The connection opened before the renewal still works, on its old certificate.
    held.sendall(b"GET /b HTTP/1.1\r\nHost: app.test\r\n\r\n")
    assert held.recv(65536).endswith(b"one GET /b\n")
    assert held.getpeercert()["serialNumber"] == first
    held.close()

    # No http listener any more: HTTP-01 cannot succeed, the renewal (due at once: renew_before
    # one second short of the lifetime, which is as long as it may be) fails, the certificate stays.
    leaf = ssl._ssl._test_decode_cert(str(t.state / "app.test" / "chain.pem"))
    lifetime = ssl.cert_time_to_seconds(leaf["notAfter"]) - ssl.cert_time_to_seconds(leaf["notBefore"])
    write_gateway(t, renew_before=f"{lifetime - 1}s", http_listener=False)
    assert t.ctl("reload").returncode == 0
    wait_log(t, "ACME order failed", timeout=60)
    assert "certificate_failed" in t.gateway.text()
    current = served_serial(t.https_port, "app.test", root)
    r = curl_https(t.https_port, "app.test", "/c", root)
    assert r.stdout == b"one GET /c\n", r.stderr
    info = json.loads(t.ctl("--json", "certificates").stdout)["certificates"][0]
    assert info["last_error"] and info["failures"] >= 1, info
    assert info["next_renewal"] > time.time() + 20, "failures back off"
    prom = t.ctl("stats", "prometheus").stdout
    assert 'fastgw_acme_last_failure_timestamp_seconds{certificate="app.test"}' in prom, prom
    assert re.search(r'fastgw_acme_orders_total\{result="failed"\} [1-9]', prom), prom
    assert current in (second,) or t.gateway.count("ACME certificate issued") > 2


def test_a_host_before_its_first_certificate_is_refused_in_the_handshake(acme_site):
    # never.invalid does not resolve: its order fails, app.test's succeeds.
    t = acme_site(["http-01", "tls-alpn-01"], extra='\n[[certificate]]\nacme = true\nhosts = ["never.invalid"]\n')
    wait_log(t, "ACME certificate issued")
    wait_log(t, "ACME order failed")
    root = t.pebble.root()
    ctx = ssl.create_default_context(cafile=str(root))
    with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME"):
        ctx.wrap_socket(connect(t.https_port), server_hostname="never.invalid")
    wait_log(t, "no ACME certificate yet for this host")
    # Hostile: acme-tls/1 for it while nothing is pending is refused the same way.
    ctx.set_alpn_protocols(["acme-tls/1"])
    with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME"):
        ctx.wrap_socket(connect(t.https_port), server_hostname="never.invalid")
    # The other host is unaffected; the failure is listed.
    assert curl_https(t.https_port, "app.test", "/z", root).stdout == b"one GET /z\n"
    out = t.ctl("certificates").stdout
    assert re.search(r"never.invalid\s+-\s+not issued yet", out), out
    assert 'fastgw_acme_orders_total{result="failed"} 1' in t.ctl("stats", "prometheus").stdout

    # A restart keeps the failure's backoff (NAME/state, 0600): no new order for it at once.
    state = t.state / "never.invalid" / "state"
    assert "failures 1" in state.read_text() and stat.S_IMODE(os.stat(state).st_mode) == 0o600
    orders = t.gateway.count("ordering ACME certificate")
    t.gateway.kill()
    t.start_gateway()
    wait_log(t, "gateway ready", count=2)
    wait_log(t, "reusing stored ACME certificate")
    time.sleep(1.5)
    assert t.gateway.count("ordering ACME certificate") == orders
    listed = json.loads(t.ctl("--json", "certificates").stdout)["certificates"]
    never = next(c for c in listed if c["hosts"] == ["never.invalid"])
    assert never["failures"] == 1 and never["last_error"] and never["next_renewal"] > time.time() + 10, never
