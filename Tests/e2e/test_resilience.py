"""Failures on either side heal by themselves, and bad input never hangs or kills the gateway."""
import signal
import socket
import ssl
import time

from conftest import connect, recv_all


def roundtrip(port, payload=b"ping\n", timeout=5):
    s = connect(port, timeout=timeout)
    s.sendall(payload)
    s.shutdown(1)
    data = recv_all(s)
    s.close()
    return data


def wait_roundtrip(port, deadline_s):
    start = time.monotonic()
    while time.monotonic() - start < deadline_s:
        try:
            if roundtrip(port, timeout=1) == b"ping\n":
                return time.monotonic() - start
        except OSError:
            pass
        time.sleep(0.05)
    return None


def test_agent_kill_9_then_restart_flows_within_3s(tunnel, peer):
    echo = peer("echo")
    t = tunnel(echo.port)
    t.start_gateway()
    t.start_agent()
    assert roundtrip(t.public_port) == b"ping\n"

    t.agent.kill(signal.SIGKILL)
    t.gateway.wait_for("agent disconnected", count=2, timeout=10)
    # With no agent the public port closes connections at once instead of hanging.
    s = connect(t.public_port, timeout=2)
    assert recv_all(s) == b""
    s.close()

    t.start_agent(wait=False)
    took = wait_roundtrip(t.public_port, 3.0)
    assert took is not None, t.agent.text()


def test_gateway_restart_agent_reconnects(tunnel, peer):
    echo = peer("echo")
    t = tunnel(echo.port)
    t.start_gateway()
    t.start_agent()
    t.gateway.kill(signal.SIGKILL)
    t.agent.wait_for("reconnecting", timeout=10)
    t.start_gateway()
    assert wait_roundtrip(t.public_port, 15.0) is not None, t.agent.text()


def test_wrong_token_is_logged_and_not_hammered(tunnel, peer):
    echo = peer("echo")
    t = tunnel(echo.port, agent_token="0123456789abcdef0123456789abcdef")
    t.start_gateway()
    t.start_agent(wait=False)
    t.agent.wait_for("401", timeout=10)
    assert 'invalid token for agent \\"test\\"' in t.agent.text()
    time.sleep(4)
    # Two connections, each backs off to the maximum after its first 401.
    assert t.gateway.count("tunnel connection refused") <= 2
    assert "0123456789abcdef0123456789abcdef" not in t.gateway.text() + t.agent.text()


def test_upstream_down_closes_client_promptly_and_logs_502(tunnel, peer):
    echo = peer("echo")
    port = echo.port
    echo.kill(signal.SIGKILL)
    t = tunnel(port)
    t.start_gateway()
    t.start_agent()
    start = time.monotonic()
    s = connect(t.public_port)
    s.sendall(b"hello")
    try:
        data = recv_all(s)
    except ConnectionResetError:
        data = b""
    s.close()
    assert data == b""
    assert time.monotonic() - start < 1.0
    t.gateway.wait_for("status=502", timeout=3)
    t.agent.wait_for("upstream connect failed", timeout=3)


def tls_to_tunnel(t, pki):
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    raw = socket.create_connection(("127.0.0.1", t.tunnel_port), timeout=5)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def test_malformed_handshakes_and_garbage(tunnel, peer, pki):
    echo = peer("echo")
    t = tunnel(echo.port)
    t.start_gateway()
    t.start_agent()

    # Plain garbage instead of TLS: the gateway closes.
    s = socket.create_connection(("127.0.0.1", t.tunnel_port), timeout=5)
    s.sendall(b"\x00\xff" * 4000)
    assert recv_all(s) == b""
    s.close()

    cases = {
        b"garbage\r\n\r\n": b"400",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n": b"400",
        b"GET /.fastgw/v1/tunnel HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: fastgw-h2\r\nFastgw-Agent: test\r\n\r\n": b"401",
        b"GET /.fastgw/v1/tunnel HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: gopher\r\nFastgw-Agent: test\r\n\r\n": b"426",
        b"X" * 20000: b"400",
    }
    for request, status in cases.items():
        s = tls_to_tunnel(t, pki)
        s.sendall(request)
        answer = recv_all(s)
        s.close()
        assert answer.split(b" ")[1] == status, (request[:40], answer)

    # A client that says nothing is dropped after the handshake timeout, not kept forever;
    # meanwhile the agent's tunnel and public traffic are unaffected.
    idle = tls_to_tunnel(t, pki)
    assert roundtrip(t.public_port) == b"ping\n"
    idle.close()
    assert t.gateway.proc.poll() is None
