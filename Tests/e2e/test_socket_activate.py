"""Socket activation without systemd, through systemd-socket-activate(1): the tunnel listener
adopted by name, a public port by address, and a socket nobody asked for refused by name."""
import shutil
import subprocess

import pytest

from conftest import BIN, Process, connect, free_port, recv_all, wait_port

ACTIVATE = shutil.which("systemd-socket-activate")
pytestmark = pytest.mark.skipif(ACTIVATE is None, reason="systemd-socket-activate is not installed")


def activated_gateway(t, listens, names, log):
    args = [ACTIVATE]
    for address in listens:
        args += ["-l", address]
    args += [f"--fdname={':'.join(names)}", BIN, "gateway", "-c", t.dir / "gateway.toml"]
    return Process(args, t.dir / log, cwd=t.dir)


def test_gateway_adopts_sockets_by_name_and_address(tunnel, peer):
    echo = peer("echo")
    t = tunnel(echo.port)
    # The tunnel socket carries its listener's name; the public one only its address.
    gw = activated_gateway(t, [f"127.0.0.1:{t.tunnel_port}", f"127.0.0.1:{t.public_port}"],
                           ["tunnel", "whatever"], "activated.log")
    try:
        # systemd-socket-activate starts the gateway on the first connection: the agent's.
        t.start_agent()
        gw.wait_for("gateway ready")
        assert gw.count("activation=") == 2, gw.text()
        s = connect(t.public_port)
        s.sendall(b"ping\n")
        s.shutdown(1)
        assert recv_all(s) == b"ping\n"
        # The backlog systemd-socket-activate gave (SOMAXCONN) survives NIO's own listen().
        ss = subprocess.run(["ss", "-Hltn", f"sport = :{t.public_port}"], capture_output=True, text=True).stdout
        assert ss.split()[2] != "128", ss
    finally:
        gw.kill()


def test_unknown_inherited_socket_stops_the_start(tunnel, peer):
    echo = peer("echo")
    t = tunnel(echo.port)
    stray = free_port()
    gw = activated_gateway(t, [f"127.0.0.1:{t.tunnel_port}", f"127.0.0.1:{stray}"], ["tunnel", "metrics"], "refused.log")
    try:
        wait_port(t.tunnel_port)  # the first connection triggers the exec
        gw.wait_for("matches no listener")
        assert gw.proc.wait(timeout=10) != 0
        assert f'inherited socket fd 4 (name "metrics", 127.0.0.1:{stray}) matches no listener' in gw.text(), gw.text()
    finally:
        gw.kill()
