"""ACME groundwork (issue #18 item 1): the challenge paths every http and https listener now
has, tried by hostile clients while no order is pending, and `fastgw check` on [acme] (read
and validated, refused until the gateway obtains certificates itself)."""
import socket
import ssl
import subprocess

from conftest import BIN, connect, free_port
from test_http import add_http, curl, service
from test_https import add_https, ask, peer_names


def check(path):
    r = subprocess.run([BIN, "check", "--config", str(path)], capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def test_check_validates_acme_and_refuses_it_until_it_works(tunnel):
    t = tunnel(1)
    gw = t.dir / "gateway.toml"
    base = gw.read_text()
    acme = '\n[acme]\ndirectory = "https://127.0.0.1:14000/dir"\nemail = "ops@example.com"\n'
    gw.write_text(base + acme + '\n[[certificate]]\nacme = true\nhosts = ["*.app.test"]\n')
    code, out = check(gw)
    line = gw.read_text().splitlines().index('hosts = ["*.app.test"]') + 1
    assert code == 1 and f"{gw}:{line}: hosts: \"*.app.test\": ACME wildcard certificates need the DNS-01 challenge" in out, out
    gw.write_text(base + acme + '\n[[certificate]]\nacme = true\nhosts = ["app.test"]\n')
    code, out = check(gw)
    line = gw.read_text().splitlines().index('[acme]') + 2
    assert code == 1 and f"{gw}:{line}: [acme]: this build does not obtain ACME certificates yet" in out, out


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
