"""Fixtures that run real fastgw processes on loopback."""
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("FASTGW_BIN", ROOT / ".build" / "debug" / "fastgw"))
CTL = BIN.parent / "fastgwctl"
HERE = Path(__file__).resolve().parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """A child process whose combined output goes to a log file we can search."""

    def __init__(self, args, log_path, cwd=None):
        self.args = [str(a) for a in args]
        self.log_path = Path(log_path)
        self.cwd = cwd
        self.proc = None
        self.start()

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.cwd)

    def text(self):
        return self.log_path.read_text(errors="replace")

    def count(self, pattern):
        return len(re.findall(pattern, self.text()))

    def wait_for(self, pattern, count=1, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count(pattern) >= count:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{self.args[:2]}: no {count}x {pattern!r} within {timeout}s; log:\n{self.text()[-3000:]}")

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def kill(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    subprocess.run([ROOT / "scripts" / "make-pki.sh", d], check=True)
    return d


class Tunnel:
    """A gateway and an agent publishing one TCP service, wired on free loopback ports."""

    def __init__(self, dir, pki, upstream, connections=2, token=None, agent_token=None):
        self.dir = Path(dir)
        self.tunnel_port = free_port()
        self.public_port = free_port()
        self.upstream = upstream
        for f in ("ca.crt", "gateway.crt", "gateway.key"):
            (self.dir / f).write_bytes((Path(pki) / f).read_bytes())
        token = token or os.urandom(16).hex()
        (self.dir / "gateway.token").write_text(token + "\n")
        (self.dir / "agent.token").write_text((agent_token or token) + "\n")
        (self.dir / "gateway.toml").write_text(f"""
[gateway]
public_address = "127.0.0.1"
drain_timeout = "5s"
[control]
socket = "gateway.sock"
[tunnel]
listen = "127.0.0.1:{self.tunnel_port}"
cert = "gateway.crt"
key = "gateway.key"
keepalive_interval = "2s"
keepalive_timeout = "2s"
[[agent]]
name = "test"
token_file = "gateway.token"
allow_ports = [{self.public_port}]
""")
        (self.dir / "agent.toml").write_text(f"""
[agent]
name = "test"
token_file = "agent.token"
gateways = ["localhost:{self.tunnel_port}"]
ca = "ca.crt"
connections = {connections}
keepalive_interval = "2s"
keepalive_timeout = "2s"
drain_timeout = "5s"
[control]
socket = "agent.sock"
[[service]]
name = "svc"
type = "tcp"
upstream = "127.0.0.1:{upstream}"
remote_port = {self.public_port}
connect_timeout = "2s"
""")
        self.connections = connections
        self.gateway = None
        self.agent = None
        self.gateway_sock = self.dir / "gateway.sock"
        self.agent_sock = self.dir / "agent.sock"

    def ctl(self, *args, agent=False, check=True, timeout=60):
        """Runs fastgwctl against this gateway (or agent); returns the CompletedProcess."""
        sock = self.agent_sock if agent else self.gateway_sock
        r = subprocess.run([CTL, "--socket", sock, *map(str, args)], capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"fastgwctl {args}: exit {r.returncode}: {r.stderr}")
        return r

    def ctl_json(self, *args, agent=False):
        import json
        return json.loads(self.ctl("--json", *args, agent=agent).stdout)

    def start_gateway(self):
        self.gateway = Process([BIN, "gateway", "-c", self.dir / "gateway.toml", "--log-level", "debug"], self.dir / "gateway.log")
        self.gateway.wait_for("gateway ready")
        return self.gateway

    def start_agent(self, wait=True):
        self.agent = Process([BIN, "agent", "-c", self.dir / "agent.toml"], self.dir / "agent.log")
        if wait:
            self.wait_registered()
        return self.agent

    def wait_registered(self, timeout=10.0):
        before = self.agent.count("services registered")
        self.agent.wait_for("services registered", count=max(before, self.connections), timeout=timeout)

    def stop(self):
        for p in (self.agent, self.gateway):
            if p:
                p.kill()


@pytest.fixture
def peer(tmp_path):
    started = []

    def start(mode, *args):
        port = free_port()
        p = Process([sys.executable, HERE / "peers.py", mode, port, *args], tmp_path / f"peer-{mode}-{port}.log")
        p.wait_for("ready")
        p.port = port
        started.append(p)
        return p

    yield start
    for p in started:
        p.kill(signal.SIGKILL)


@pytest.fixture
def tunnel(tmp_path, pki):
    made = []

    def make(upstream, **kw):
        t = Tunnel(tmp_path, pki, upstream, **kw)
        made.append(t)
        return t

    yield make
    for t in made:
        t.stop()


def connect(port, timeout=10.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_all(s, limit=1 << 30):
    """Everything until the peer closes; a reset counts as closed."""
    chunks = []
    n = 0
    while n < limit:
        try:
            data = s.recv(1 << 20)
        except ConnectionResetError:
            break
        if not data:
            break
        chunks.append(data)
        n += len(data)
    return b"".join(chunks)
