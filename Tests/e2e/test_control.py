"""The control sockets and fastgwctl: every command against both daemons, text and JSON."""
import json
import socket
import subprocess

from conftest import CTL, connect, recv_all


def raw(sock_path, data, read=True):
    """Sends bytes to a control socket by hand (like socat) and returns what came back."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(str(sock_path))
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
    except BrokenPipeError:
        pass  # the daemon gave up on us; its answer is still readable
    out = recv_all(s) if read else b""
    s.close()
    return out


def test_every_command_both_daemons(tunnel, peer):
    echo = peer("echo")
    t = tunnel(echo.port)
    t.start_gateway()
    t.start_agent()

    for agent in (False, True):
        assert t.ctl("ping", agent=agent).stdout == "pong\n"
        assert t.ctl_json("ping", agent=agent) == {"pong": True}
        assert "fastgw" in t.ctl("version", agent=agent).stdout
        assert t.ctl_json("version", agent=agent)["role"] == ("agent" if agent else "gateway")
        help_text = t.ctl("help", agent=agent).stdout
        assert "drain [seconds]" in help_text and "log-level <level>" in help_text
        names = [c["name"] for c in t.ctl_json("help", agent=agent)["commands"]]
        assert ("services" in names) == agent and ("agents" in names) == (not agent)
        assert "serving" in t.ctl("status", agent=agent).stdout
        status = t.ctl_json("status", agent=agent)
        assert status["draining"] is False and status["role"] == ("agent" if agent else "gateway")
        assert "uptime_seconds" in t.ctl("stats", agent=agent).stdout
        stats = t.ctl_json("stats", agent=agent)
        assert stats["draining"] == 0 and stats["reloads_total"] == {"ok": 0, "failed": 0}
        prom = t.ctl("stats", "prometheus", agent=agent).stdout
        assert "# TYPE fastgw_streams_total counter" in prom
        assert "log level debug" in t.ctl("log-level", "debug", agent=agent).stdout
        assert t.ctl_json("log-level", "info", agent=agent) == {"log_level": "info", "previous": "debug"}
        assert "reloaded" in t.ctl("reload", agent=agent).stdout
        assert t.ctl_json("reload", agent=agent)["reloaded"] is True
        assert t.ctl_json("stats", agent=agent)["reloads_total"] == {"ok": 2, "failed": 0}
        assert t.ctl("quit", agent=agent).stdout == "bye\n"

    # Gateway views.
    agents = t.ctl_json("agents")["agents"]
    assert [a["name"] for a in agents] == ["test"]
    assert len(agents[0]["connections"]) == 2
    conn = agents[0]["connections"][0]
    assert conn["carrier"] == "h2" and conn["services"] == ["svc"] and conn["rtt_ms"] is not None
    assert "test" in t.ctl("agents").stdout
    routes = t.ctl_json("routes")["routes"]
    assert routes[0]["address"] == f"127.0.0.1:{t.public_port}" and routes[0]["service"] == "svc"
    assert len(routes[0]["backends"]) == 2
    assert "svc" in t.ctl("routes").stdout

    # Agent views.
    services = t.ctl_json("services", agent=True)["services"]
    assert services[0]["name"] == "svc" and services[0]["accepted_on"] == 2
    assert "svc" in t.ctl("services", agent=True).stdout
    conns = t.ctl_json("connections", agent=True)["connections"]
    assert [c["state"] for c in conns] == ["connected", "connected"]
    assert conns[0]["rtt_ms"] is not None
    assert "connected" in t.ctl("connections", agent=True).stdout


def test_exact_byte_counters(tunnel, peer):
    sink = peer("sink")
    t = tunnel(sink.port)
    t.start_gateway()
    t.start_agent()
    sizes = [1, 1000, 123_457, 3 * 1024 * 1024]
    answers = 0
    for n in sizes:
        s = connect(t.public_port)
        s.sendall(b"x" * n)
        s.shutdown(socket.SHUT_WR)
        reply = recv_all(s)
        s.close()
        assert reply.startswith(f"{n} ".encode())
        answers += len(reply)
    sent = sum(sizes)
    import time
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        g = t.ctl_json("stats")
        a = t.ctl_json("stats", agent=True)
        if g["streams_active"] == 0 and a["streams_active"] == 0:
            break
        time.sleep(0.05)
    for st in (g, a):
        assert st["service_bytes_in_total"] == {"svc": sent}, st
        assert st["service_bytes_out_total"] == {"svc": answers}, st
        assert st["service_connections_total"] == {"svc": len(sizes)}
        assert st["streams_total"] == len(sizes)
    assert g["connections_total"] == len(sizes)


def test_protocol_by_hand_and_abuse(tunnel, peer):
    echo = peer("echo")
    t = tunnel(echo.port)
    t.start_gateway()
    t.start_agent()
    sock = t.gateway_sock
    # Several commands on one connection, CRLF too, blank lines ignored.
    out = raw(sock, b"ping\r\n\nversion\nnope\nping extra\n")
    assert out.startswith(b"OK 5\npong\n")
    assert b"ERR 404 unknown command \"nope\"" in out
    assert b"ERR 400 usage: ping" in out
    # Binary garbage: 400, connection stays usable.
    out = raw(sock, b"\x00\xff\xfe garbage\nping\n")
    assert out.startswith(b"ERR 400 ") and out.endswith(b"OK 5\npong\n")
    # A line over 4096 bytes: 400 and closed, whatever follows.
    out = raw(sock, b"a" * (1 << 20) + b"\nping\n")
    assert out.startswith(b"ERR 400 request line longer than 4096 bytes")
    assert b"pong" not in out
    # A half-sent line then EOF gets an answer for what arrived.
    assert raw(sock, b"pi").startswith(b"ERR 404")
    # Agent-only command on the gateway.
    assert raw(sock, b"services\n").startswith(b"ERR 404 command \"services\" exists only on the agent")
    # Hundreds of idle connections: others are still served, and so is tunnel traffic.
    idle = []
    for _ in range(500):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(sock))
        idle.append(s)
    assert t.ctl("ping").stdout == "pong\n"
    s = connect(t.public_port)
    s.sendall(b"hello")
    s.shutdown(socket.SHUT_WR)
    assert recv_all(s) == b"hello"
    for s in idle:
        s.close()
    assert t.gateway.proc.poll() is None


def test_fastgwctl_exit_codes(tunnel, peer, tmp_path):
    echo = peer("echo")
    t = tunnel(echo.port)
    t.start_gateway()
    r = subprocess.run([CTL, "--socket", tmp_path / "missing.sock", "ping"], capture_output=True, text=True)
    assert r.returncode == 3 and "is fastgw.socket" in r.stderr
    r = subprocess.run([CTL, "--socket", t.gateway_sock, "frobnicate"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown command" in r.stderr
    r = subprocess.run([CTL], capture_output=True, text=True)
    assert r.returncode == 2
    r = t.ctl("drain", "nope", check=False)
    assert r.returncode == 1 and "(400)" in r.stderr
    r = t.ctl("log-level", "loud", check=False)
    assert r.returncode == 1
    r = subprocess.run([CTL, "--generate-completion-script", "bash"], capture_output=True, text=True)
    assert r.returncode == 0 and "fastgwctl" in r.stdout and "connections" in r.stdout
