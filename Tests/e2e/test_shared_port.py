"""One public port for browsers and agents (issue #17): an HTTPS listener with
`tunnel = true` takes agents at /.fastgw/v1/tunnel (both carriers) with its own certificate
while browsers and HTTP/2 clients are served as before; without `[tunnel] listen` no
dedicated tunnel port is bound; an agent moved to the shared port by a reload; and what a
hostile client sends there (the tunnel path without a token, a prefix and silence, wrong
tokens until the address is blocked) ends without disturbing anyone else."""
import re
import socket
import subprocess
import time

import pytest

from conftest import BIN, free_port
from test_http import service
from test_https import issue
from test_policy import tcp_echo


def shared(t, pki, dedicated):
    """Gives `t` an https listener with tunnel = true (certificate for app.test and
    localhost, the name the agent dials); `dedicated=False` drops [tunnel] listen/cert/key."""
    issue(pki, t.dir, "site", ["app.test", "localhost"])
    t.https_port = free_port()
    gw = (t.dir / "gateway.toml").read_text()
    if not dedicated:
        gw = re.sub(r'listen = "127\.0\.0\.1:\d+"\ncert = "gateway\.crt"\nkey = "gateway\.key"\n', "", gw, count=1)
    gw += f"""allow_hosts = ["app.test"]

[[listener]]
name = "web"
protocol = "https"
listen = "127.0.0.1:{t.https_port}"
cert = "site.crt"
key = "site.key"
tunnel = true
"""
    (t.dir / "gateway.toml").write_text(gw)


def agent_dials(t, port):
    text = (t.dir / "agent.toml").read_text()
    (t.dir / "agent.toml").write_text(re.sub(r'gateways = \["localhost:\d+"\]', f'gateways = ["localhost:{port}"]', text))


def curl(t, *args, path="/hello"):
    r = subprocess.run(["curl", "-sS", "--max-time", "20", "--cacert", t.dir / "ca.crt", "-o", "-", "-w", " %{http_code} %{http_version}",
                        "--resolve", f"app.test:{t.https_port}:127.0.0.1", *args, f"https://app.test:{t.https_port}{path}"],
                       capture_output=True, text=True, timeout=60)
    return r.stdout


def echo_through(port, payload=b"through the tunnel\n"):
    return tcp_echo(port, "127.0.0.1", payload)


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


def established(port):
    """Established TCP connections to 127.0.0.1:port (both ends are local: count the client side)."""
    out = subprocess.run(["ss", "-Htn", "state", "established", f"( dport = :{port} )"], capture_output=True, text=True).stdout
    return len(out.strip().splitlines())


@pytest.mark.parametrize("transport", ["h2", "websocket"])
def test_agents_and_browsers_share_one_https_port(tunnel, peer, pki, transport):
    t = tunnel(peer("echo").port, transport=transport)
    shared(t, pki, dedicated=False)
    up = peer("httpapp", "site")
    agent_dials(t, t.https_port)
    (t.dir / "agent.toml").write_text((t.dir / "agent.toml").read_text() + service("web", up.port, ["app.test"]))
    r = subprocess.run([BIN, "check", "-c", t.dir / "gateway.toml"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    t.start_gateway()
    assert not listening(t.tunnel_port), "no dedicated tunnel listener without [tunnel] listen"
    t.start_agent()
    # Browsers over HTTP/2 and HTTP/1.1 on the same port the agent's tunnel runs on, while it runs.
    assert curl(t, "--http2") == "site GET /hello\n 200 2"
    assert curl(t, "--http1.1") == "site GET /hello\n 200 1.1"
    assert echo_through(t.public_port) == b"through the tunnel\n"
    assert established(t.https_port) >= t.connections
    # A request for a path that only starts like the tunnel's is an ordinary request.
    assert curl(t, "--http1.1", path="/.fastgw/v1/tunnelx").endswith(" 200 1.1")
    assert t.ctl_json("stats")["agents_connected"] == 1


def test_an_agent_moves_from_the_dedicated_port_to_the_shared_one_by_reload(tunnel, peer, pki):
    t = tunnel(peer("echo").port)
    shared(t, pki, dedicated=True)
    up = peer("httpapp", "site")
    (t.dir / "agent.toml").write_text((t.dir / "agent.toml").read_text() + service("web", up.port, ["app.test"]))
    t.start_gateway()
    t.start_agent()
    assert established(t.tunnel_port) == t.connections and curl(t, "--http2").endswith(" 200 2")
    agent_dials(t, t.https_port)
    before = t.agent.count("services registered")
    t.ctl("reload", agent=True)
    t.agent.wait_for("services registered", count=before + t.connections, timeout=20)
    deadline = time.monotonic() + 15
    while established(t.tunnel_port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert established(t.tunnel_port) == 0 and established(t.https_port) >= t.connections
    assert curl(t, "--http2").endswith(" 200 2")
    assert echo_through(t.public_port) == b"through the tunnel\n"


def raw_tls(t, data, wait=3):
    """Sends `data` over TLS (HTTP/1.1 ALPN) to the shared listener; returns what came back before close."""
    p = subprocess.Popen(["openssl", "s_client", "-quiet", "-alpn", "http/1.1", "-connect", f"127.0.0.1:{t.https_port}",
                          "-servername", "app.test", "-CAfile", t.dir / "ca.crt"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        out, _ = p.communicate(data, timeout=wait)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    return out


def test_hostile_clients_on_the_shared_port(tunnel, peer, pki):
    t = tunnel(peer("echo").port)
    shared(t, pki, dedicated=False)
    (t.dir / "gateway.toml").write_text((t.dir / "gateway.toml").read_text() + '\n[http]\nheader_timeout = "2s"\n')
    up = peer("httpapp", "site")
    agent_dials(t, t.https_port)
    (t.dir / "agent.toml").write_text((t.dir / "agent.toml").read_text() + service("web", up.port, ["app.test"]))
    t.start_gateway()
    t.start_agent()
    # The tunnel path without an upgrade or a token: the handshake's refusal, then close.
    out = raw_tls(t, b"GET /.fastgw/v1/tunnel HTTP/1.1\r\nHost: app.test\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 4"), out
    # A prefix and silence: closed at the head deadline, like any slow client.
    begun = time.monotonic()
    out = raw_tls(t, b"GET /.fa", wait=8)
    assert out == b"" and time.monotonic() - begun < 6
    # Wrong tokens until the address is blocked: then handshakes are closed unanswered, while
    # browsers (and the agent already connected) are served.
    wrong = (b"GET /.fastgw/v1/tunnel HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: fastgw-h2\r\n"
             b"Authorization: Bearer " + b"0" * 32 + b"\r\nFastgw-Agent: test\r\n\r\n")
    answers = [raw_tls(t, wrong) for _ in range(6)]
    assert any(a.startswith(b"HTTP/1.1 401") or a.startswith(b"HTTP/1.1 400") for a in answers), answers
    assert answers[-1] == b"", answers[-1]
    assert t.ctl_json("stats")["addresses_blocked_total"] >= 1
    assert curl(t, "--http2") == "site GET /hello\n 200 2"
    assert curl(t, "--http1.1") == "site GET /hello\n 200 1.1"
    assert echo_through(t.public_port) == b"through the tunnel\n"


def test_check_reports_shared_tunnel_mistakes(tunnel, peer, pki):
    t = tunnel(peer("echo").port)
    shared(t, pki, dedicated=False)
    gw = (t.dir / "gateway.toml").read_text()
    gw = gw.replace("[tunnel]\n", '[tunnel]\ncert = "gateway.crt"\n', 1)
    gw += f"""
[[listener]]
name = "plain"
protocol = "http"
listen = "127.0.0.1:{free_port()}"
tunnel = true
"""
    (t.dir / "gateway.toml").write_text(gw)
    r = subprocess.run([BIN, "check", "-c", t.dir / "gateway.toml"], capture_output=True, text=True)
    assert r.returncode == 1
    assert 'tunnel = true needs protocol "https"' in r.stderr, r.stderr
    assert "[tunnel] cert applies to the dedicated tunnel listener: set [tunnel] listen too" in r.stderr
