"""Fixtures that run real fastgw processes on loopback."""
import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import pattern

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

    def __init__(self, args, log_path, cwd=None, env=None, group=False):
        """`group`: the process leads a process group of its own (nginx and its workers), and
        `kill` ends the whole group, so that no worker outlives its master."""
        self.args = [str(a) for a in args]
        self.group = group
        self.env = None if env is None else {**os.environ, **env}
        self.log_path = Path(log_path)
        self.cwd = cwd
        self.proc = None
        self.start()

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.args, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.cwd, env=self.env, start_new_session=self.group)

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
        if self.proc and self.group:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.log.close()


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    subprocess.run([ROOT / "scripts" / "make-pki.sh", d], check=True)
    return d


class Tunnel:
    """A gateway and an agent publishing one TCP service, wired on free loopback ports."""

    def __init__(self, dir, pki, upstream, connections=2, token=None, agent_token=None, extra_agents=(),
                 transport=None, agent_port=None):
        """`transport`: the agent's carrier setting; `agent_port`: where the agent dials (a
        proxy in front of the gateway), the tunnel port by default."""
        self.dir = Path(dir)
        self.tunnel_port = free_port()
        self.transport = transport
        self.agent_port = agent_port
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
""" + "".join(f"""
[[agent]]
name = "{n}"
token_file = "{n}.token"
allow_ports = [{self.public_port}]
""" for n in extra_agents))
        for n in extra_agents:
            (self.dir / f"{n}.token").write_text(os.urandom(16).hex() + "\n")
            (self.dir / f"agent-{n}.toml").write_text(self.agent_config(n, f"{n}.token", f"agent-{n}.sock", connections))
        (self.dir / "agent.toml").write_text(self.agent_config("test", "agent.token", "agent.sock", connections))
        self.connections = connections
        self.gateway = None
        self.agent = None
        self.extra = {}
        self.gateway_sock = self.dir / "gateway.sock"
        self.agent_sock = self.dir / "agent.sock"

    def agent_config(self, name, token_file, sock, connections):
        return f"""
[agent]
name = "{name}"
token_file = "{token_file}"
gateways = ["localhost:{self.agent_port or self.tunnel_port}"]
ca = "ca.crt"
connections = {connections}
{f'transport = "{self.transport}"' if self.transport else ""}
keepalive_interval = "2s"
keepalive_timeout = "2s"
drain_timeout = "5s"
[control]
socket = "{sock}"
[[service]]
name = "svc"
type = "tcp"
upstream = "127.0.0.1:{self.upstream}"
remote_port = {self.public_port}
connect_timeout = "2s"
"""

    def start_extra(self, name):
        """Starts the agent `name` given in extra_agents and waits for its registrations."""
        p = Process([BIN, "agent", "-c", self.dir / f"agent-{name}.toml"], self.dir / f"agent-{name}.log")
        p.wait_for("services registered", count=p.count("services registered") + self.connections)
        self.extra[name] = p
        return p

    def ctl_args(self, agent=False):
        if isinstance(agent, str):
            sock = self.dir / f"agent-{agent}.sock"
        else:
            sock = self.agent_sock if agent else self.gateway_sock
        return [CTL, "--socket", sock]

    def ctl(self, *args, agent=False, check=True, timeout=60):
        """Runs fastgwctl against this gateway (or agent); returns the CompletedProcess."""
        r = subprocess.run([*self.ctl_args(agent), *map(str, args)], capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"fastgwctl {args}: exit {r.returncode}: {r.stderr}")
        return r

    def ctl_json(self, *args, agent=False):
        import json
        return json.loads(self.ctl("--json", *args, agent=agent).stdout)

    def start_gateway(self, env=None):
        self.gateway = Process([BIN, "gateway", "-c", self.dir / "gateway.toml", "--log-level", "debug"], self.dir / "gateway.log", env=env)
        self.gateway.wait_for("gateway ready")
        return self.gateway

    def start_agent(self, wait=True, env=None):
        self.agent = Process([BIN, "agent", "-c", self.dir / "agent.toml"], self.dir / "agent.log", env=env)
        if wait:
            self.wait_registered()
        return self.agent

    def wait_registered(self, timeout=10.0):
        before = self.agent.count("services registered")
        self.agent.wait_for("services registered", count=max(before, self.connections), timeout=timeout)

    def stop(self):
        for p in (*self.extra.values(), self.agent, self.gateway):
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


def wait_port(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


def run_nginx(d, port, http, stream=None, modules=()):
    """nginx in directory `d` (its config, pid and logs) with the `http { }` block `http`
    (and a `stream { }` block, with dynamic `modules` loaded), in its own process group;
    returns the process once `port` accepts."""
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    # pytest's temporary directories are private to root: the worker must be root to read them.
    user = "user root;" if os.getuid() == 0 else ""
    loads = "".join(f"load_module {m};\n" for m in modules)
    streams = f"stream {{\n{stream}\n}}" if stream else ""
    (d / "nginx.conf").write_text(f"""{loads}
{user}
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 4096; }}
http {{
{http}
}}
{streams}
""")
    p = Process(["/usr/sbin/nginx", "-c", d / "nginx.conf", "-p", d], d / "out.log", group=True)
    try:
        wait_port(port)
    except AssertionError:
        p.kill()
        raise AssertionError(f"nginx did not start: {(d / 'out.log').read_text()}")
    return p


def start_nginx(d):
    """nginx on loopback serving /1k.bin from directory `d`; returns (process, port)."""
    d = Path(d)
    (d / "www").mkdir(parents=True)
    (d / "www" / "1k.bin").write_bytes(os.urandom(1024))
    port = free_port()
    p = run_nginx(d, port, f"""
  access_log off;
  keepalive_requests 1000000;
  server {{ listen 127.0.0.1:{port}; root {d}/www; }}
""")
    return p, port


@pytest.fixture
def nginx(tmp_path):
    """nginx on loopback serving /1k.bin; returns its port."""
    p, port = start_nginx(tmp_path / "nginx")
    yield port
    p.kill()


def wrk(port, seconds, connections=16, close=False):
    """Runs wrk against a loopback port; returns (requests, errors text or '')."""
    args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", f"http://127.0.0.1:{port}/1k.bin"]
    if close:
        args[1:1] = ["-H", "Connection: close"]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wrk_result(proc):
    out = proc.communicate(timeout=120)[0]
    m = re.search(r"(\d+) requests in", out)
    requests = int(m.group(1)) if m else 0
    errors = [l.strip() for l in out.splitlines() if "Socket errors" in l or "Non-2xx" in l]
    return requests, errors, out


def echo_roundtrip(port, size):
    """Sends `size` pattern bytes through an echo service at `port`, half-closes, and checks
    that the same bytes come back."""
    s = connect(port, timeout=60)
    got = hashlib.sha256()
    received = [0]

    def reader():
        while data := s.recv(1 << 20):
            got.update(data)
            received[0] += len(data)

    th = threading.Thread(target=reader)
    th.start()
    block = pattern.block()
    for _ in range(size // len(block)):
        s.sendall(block)
    s.shutdown(1)  # half-close: the echo server ends its side, which ends ours
    th.join(timeout=120)
    s.close()
    assert received[0] == size
    assert got.hexdigest() == pattern.sha256_of(size)
