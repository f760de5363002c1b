"""One agent serving through two gateways at once."""
import socket
import time

from conftest import BIN, Process, free_port, recv_all


def test_agent_lists_two_gateways(tunnel, peer, tmp_path):
    echo = peer("echo")
    t = tunnel(echo.port)
    t.start_gateway()
    # A second gateway on 127.0.0.2 with the same grant, port and certificate.
    gw2 = tmp_path / "gw2"
    gw2.mkdir()
    port2 = free_port()
    for f in ("ca.crt", "gateway.crt", "gateway.key", "gateway.token"):
        (gw2 / f).write_bytes((tmp_path / f).read_bytes())
    (gw2 / "gateway.toml").write_text(
        (tmp_path / "gateway.toml").read_text()
        .replace('public_address = "127.0.0.1"', 'public_address = "127.0.0.2"')
        .replace(f"127.0.0.1:{t.tunnel_port}", f"127.0.0.1:{port2}"))
    g2 = Process([BIN, "gateway", "-c", gw2 / "gateway.toml"], gw2 / "gateway.log")
    try:
        g2.wait_for("gateway ready")
        agent = (tmp_path / "agent.toml").read_text()
        (tmp_path / "agent.toml").write_text(
            agent.replace(f'gateways = ["localhost:{t.tunnel_port}"]',
                          f'gateways = ["localhost:{t.tunnel_port}", "localhost:{port2}"]'))
        t.connections = 4
        t.start_agent()
        conns = t.ctl_json("connections", agent=True)["connections"]
        assert [c["state"] for c in conns] == ["connected"] * 4
        for host in ("127.0.0.1", "127.0.0.2"):
            s = socket.create_connection((host, t.public_port), timeout=5)
            s.sendall(host.encode())
            s.shutdown(socket.SHUT_WR)
            assert recv_all(s) == host.encode()
        # One gateway going away leaves the other serving; the agent says why it waits.
        g2.kill()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            states = [c["state"] for c in t.ctl_json("connections", agent=True)["connections"]]
            if states.count("connected") == 2:
                break
            time.sleep(0.1)
        conns = t.ctl_json("connections", agent=True)["connections"]
        down = [c for c in conns if c["gateway"] == f"localhost:{port2}"]
        assert all(c["state"] in ("waiting", "connecting") for c in down), conns
        assert any(c["last_error"] for c in down)
        s = socket.create_connection(("127.0.0.1", t.public_port), timeout=5)
        s.sendall(b"still")
        s.shutdown(socket.SHUT_WR)
        assert recv_all(s) == b"still"
    finally:
        g2.kill()
