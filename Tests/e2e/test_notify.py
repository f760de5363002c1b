"""sd_notify: the daemons tell a service manager READY, RELOADING, STOPPING and STATUS.

A datagram socket stands in for systemd's notification socket (the real-systemd suite of
issue #4 checks the same through systemctl)."""
import socket
import time


class NotifySocket:
    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.messages = []

    def collect(self, until, timeout=10.0):
        """Reads datagrams until one satisfies `until`; returns it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = self.sock.recv(4096).decode()
            except socket.timeout:
                continue
            fields = dict(line.split("=", 1) for line in msg.split("\n") if "=" in line)
            self.messages.append(fields)
            if until(fields):
                return fields
        raise AssertionError(f"no matching notification; got {self.messages}")


def maps_libsystemd(process):
    return "libsystemd.so" in open(f"/proc/{process.proc.pid}/maps").read()


def test_libsystemd_is_loaded_only_for_systemd(tunnel, peer, tmp_path):
    """Without a notify socket, inherited sockets, watchdog or journal the daemon never loads
    libsystemd (and the libraries it pulls in); with one it does, and notifies."""
    t = tunnel(peer("echo").port)
    gateway = t.start_gateway()
    assert not maps_libsystemd(gateway)
    ag = NotifySocket(tmp_path / "ag-notify")
    agent = t.start_agent(env={"NOTIFY_SOCKET": ag.path})
    assert ag.collect(lambda f: "READY" in f)["READY"] == "1"
    assert maps_libsystemd(agent)


def test_gateway_and_agent_notify(tunnel, peer, tmp_path):
    echo = peer("echo")
    t = tunnel(echo.port)
    gw = NotifySocket(tmp_path / "gw-notify")
    ag = NotifySocket(tmp_path / "ag-notify")
    t.start_gateway(env={"NOTIFY_SOCKET": gw.path})
    ready = gw.collect(lambda f: "READY" in f)
    assert ready["READY"] == "1" and ready["STATUS"].startswith("serving:")
    t.start_agent(env={"NOTIFY_SOCKET": ag.path})
    assert ag.collect(lambda f: "READY" in f)["STATUS"].startswith("serving:")
    # STATUS follows the agents coming and going.
    status = gw.collect(lambda f: f.get("STATUS", "").startswith("serving: 1 agent on 2 tunnel connections"))
    assert "READY" not in status

    t.ctl("reload")
    reloading = gw.collect(lambda f: "RELOADING" in f)
    assert reloading["RELOADING"] == "1" and int(reloading["MONOTONIC_USEC"]) > 0
    assert gw.collect(lambda f: "READY" in f)["READY"] == "1"
    # A failed reload also ends with READY=1: the old config keeps serving.
    (t.dir / "gateway.toml").write_text((t.dir / "gateway.toml").read_text() + "\nnonsense = 1\n")
    assert t.ctl("reload", check=False).returncode == 1
    gw.collect(lambda f: "RELOADING" in f)
    gw.collect(lambda f: "READY" in f)

    t.ctl("drain", agent=True)
    stopping = ag.collect(lambda f: "STOPPING" in f)
    assert stopping["STATUS"].startswith("draining:")
    t.ctl("drain")
    assert gw.collect(lambda f: "STOPPING" in f)["STATUS"].startswith("draining:")
