"""Reload and drain: under load, with invalid configs, across agents and restarts."""
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import connect, free_port, recv_all, wrk, wrk_result


def request(port, path="/"):
    s = connect(port)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    data = recv_all(s)
    s.close()
    return data


def test_reload_under_load(tunnel, nginx):
    t = tunnel(nginx)
    t.start_gateway()
    t.start_agent()
    good = (t.dir / "gateway.toml").read_text()
    bad = good.replace('drain_timeout = "5s"', 'drain_timeout = "5s"\nbogus_key = 1')
    bad_line = bad.splitlines().index("bogus_key = 1") + 1
    agent_good = (t.dir / "agent.toml").read_text()
    agent_bad = agent_good.replace('connect_timeout = "2s"', 'connect_timeout = "soon"')
    load = wrk(t.public_port, 20, connections=32)
    time.sleep(1)
    for i in range(50):
        invalid = i % 2 == 1
        (t.dir / "gateway.toml").write_text(bad if invalid else good)
        r = t.ctl("reload", check=False)
        if invalid:
            assert r.returncode == 1, r
            assert f"gateway.toml:{bad_line}:" in r.stderr and "(422)" in r.stderr, r.stderr
        else:
            assert r.returncode == 0 and "reloaded" in r.stdout, r.stderr
        if i % 5 == 0:
            (t.dir / "agent.toml").write_text(agent_bad if invalid else agent_good)
            r = t.ctl("reload", agent=True, check=False)
            assert r.returncode == (1 if invalid else 0), r.stderr
        time.sleep(0.3)
    requests, errors, out = wrk_result(load)
    assert requests > 1000 and not errors, out
    print(f"wrk: {requests} requests, no errors")
    stats = t.ctl_json("stats")
    assert stats["reloads_total"] == {"ok": 25, "failed": 25}
    # The old (good) config kept serving throughout; it still does.
    assert request(t.public_port, "/1k.bin").startswith(b"HTTP/1.1 200")
    assert t.gateway.count("reload failed") == 25


def test_rolling_restart_of_two_agents(tunnel, nginx):
    t = tunnel(nginx, extra_agents=("b",))
    t.start_gateway()
    t.start_agent()
    t.start_extra("b")
    assert len(t.ctl_json("routes")["routes"][0]["backends"]) == 4
    load = wrk(t.public_port, 30, connections=16, close=True)
    time.sleep(3)
    for name in ("test", "b"):
        r = t.ctl("drain", agent=name if name != "test" else True, timeout=30)
        assert "drained" in r.stdout, r.stdout
        proc = t.agent if name == "test" else t.extra[name]
        assert proc.proc.wait(timeout=10) == 0
        time.sleep(1)  # traffic runs on the other agent alone for a while
        if name == "test":
            t.start_agent()
        else:
            t.start_extra(name)
        time.sleep(2)
    requests, errors, out = wrk_result(load)
    assert requests > 1000 and not errors, out
    print(f"wrk: {requests} requests, no errors")
    backends = t.ctl_json("routes")["routes"][0]["backends"]
    assert len(backends) == 4 and not any(b["draining"] for b in backends)


def test_gateway_drain_with_requests_in_flight(tunnel, peer):
    slow = peer("slowhttp", "2")
    t = tunnel(slow.port)
    t.start_gateway()
    t.start_agent()
    results = []

    def client():
        results.append(request(t.public_port))

    clients = [threading.Thread(target=client) for _ in range(8)]
    for c in clients:
        c.start()
    time.sleep(0.5)
    started = time.monotonic()
    drain = subprocess.Popen([*t.ctl_args(), "drain", "8"], stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", t.public_port), timeout=2)
    for c in clients:
        c.join(10)
    assert results == [b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nslow\n"] * 8
    out = drain.communicate(timeout=10)[0]
    assert drain.returncode == 0 and out.startswith("drained: all public connections finished"), out
    assert t.gateway.proc.wait(timeout=5) == 0
    assert time.monotonic() - started < 8
    t.agent.wait_for("gateway is draining")


def test_reload_changes_listeners_services_and_grants(tunnel, peer):
    echo = peer("echo")
    t = tunnel(echo.port)
    t.start_gateway()
    t.start_agent()
    connected = t.agent.count("connected to gateway")
    # A second service on a new port: gateway grant + listener, agent declaration, no reconnect.
    port2 = free_port()
    gw = (t.dir / "gateway.toml").read_text()
    (t.dir / "gateway.toml").write_text(gw.replace(f"allow_ports = [{t.public_port}]", f"allow_ports = [{t.public_port}, {port2}]", 1))
    assert "1 listeners added" in t.ctl("reload").stdout
    ag = (t.dir / "agent.toml").read_text()
    (t.dir / "agent.toml").write_text(ag + f'''
[[service]]
name = "svc2"
upstream = "127.0.0.1:{echo.port}"
remote_port = {port2}
''')
    assert "re-registered on 2 connections" in t.ctl("reload", agent=True).stdout
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and t.ctl_json("services", agent=True)["services"][-1]["accepted_on"] < 2:
        time.sleep(0.05)
    s = connect(port2)
    s.sendall(b"second")
    s.shutdown(socket.SHUT_WR)
    assert recv_all(s) == b"second"
    assert t.agent.count("connected to gateway") == connected
    # A connection in flight survives a reload that removes its listener and grant.
    s = connect(port2)
    s.sendall(b"before")
    time.sleep(0.2)
    (t.dir / "gateway.toml").write_text(gw)
    assert "1 removed" in t.ctl("reload").stdout
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port2), timeout=2)
    s.sendall(b" after")
    s.shutdown(socket.SHUT_WR)
    assert recv_all(s) == b"before after"
    # The agent hears that svc2 is no longer granted.
    t.agent.wait_for("gateway rejected service")
    # Changing the agent's token closes its connections; the agent is refused afterwards.
    (t.dir / "gateway.token").write_text("f" * 32 + "\n")
    assert "2 agent connections closed" in t.ctl("reload").stdout
    t.agent.wait_for("gateway refused the tunnel: 401", timeout=10)
    assert t.ctl_json("agents")["agents"] == []


def test_signals_hup_reloads_term_drains_second_term_exits(tunnel, peer):
    echo = peer("echo")
    t = tunnel(echo.port)
    t.start_gateway()
    t.start_agent()
    t.gateway.proc.send_signal(signal.SIGHUP)
    t.gateway.wait_for("configuration reloaded")
    t.agent.proc.send_signal(signal.SIGHUP)
    t.agent.wait_for("configuration reloaded")
    # A long-lived connection keeps the gateway draining; a second SIGTERM ends it at once.
    s = connect(t.public_port)
    s.sendall(b"x")
    assert s.recv(1) == b"x"
    t.gateway.proc.send_signal(signal.SIGTERM)
    t.gateway.wait_for("drain started")
    assert t.ctl_json("status")["draining"] is True
    assert "(409)" in t.ctl("drain", check=False).stderr
    assert "(503)" in t.ctl("reload", check=False).stderr
    time.sleep(0.5)
    assert t.gateway.proc.poll() is None
    t.gateway.proc.send_signal(signal.SIGTERM)
    assert t.gateway.proc.wait(timeout=3) == 0
    t.gateway.wait_for("exiting now")


def test_agent_drain_lets_streams_finish(tunnel, peer):
    echo = peer("echo")
    t = tunnel(echo.port)
    t.start_gateway()
    t.start_agent()
    s = connect(t.public_port)
    s.sendall(b"a")
    assert s.recv(1) == b"a"
    drain = subprocess.Popen([*t.ctl_args(agent=True), "drain"], stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    # The agent's connections are draining on the gateway: new connections find no agent.
    agents = t.ctl_json("agents")["agents"]
    assert all(c["draining"] for c in agents[0]["connections"])
    n = connect(t.public_port)
    assert recv_all(n) == b""
    # The stream in flight still works, and its end lets the agent exit.
    s.sendall(b"bc")
    assert s.recv(2) == b"bc"
    s.shutdown(socket.SHUT_WR)
    assert recv_all(s) == b""
    out = drain.communicate(timeout=10)[0]
    assert out.startswith("drained:"), out
    assert t.agent.proc.wait(timeout=5) == 0


def test_reload_certificate_applies_to_new_handshakes_only(tunnel, peer):
    echo = peer("echo")
    t = tunnel(echo.port)
    t.start_gateway()
    t.start_agent()
    # A certificate from a CA the agent does not trust.
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-days", "1",
                    "-keyout", t.dir / "other.key", "-out", t.dir / "other.crt"], check=True, capture_output=True)
    gw = (t.dir / "gateway.toml").read_text()
    (t.dir / "gateway.toml").write_text(gw.replace('cert = "gateway.crt"', 'cert = "other.crt"')
                                        .replace('key = "gateway.key"', 'key = "other.key"'))
    t.ctl("reload")
    # Connections made with the old certificate go on.
    assert len(t.ctl_json("agents")["agents"][0]["connections"]) == 2
    s = connect(t.public_port)
    s.sendall(b"old")
    s.shutdown(socket.SHUT_WR)
    assert recv_all(s) == b"old"
    # A new agent process meets the new certificate and says why it does not trust it.
    t.agent.kill(signal.SIGKILL)
    t.start_agent(wait=False)
    t.agent.wait_for("self-signed certificate|unable to get local issuer|certificate verify failed", timeout=10)
    # Back to the trusted certificate: the agent gets in by itself.
    (t.dir / "gateway.toml").write_text(gw)
    t.ctl("reload")
    t.wait_registered(timeout=40)
