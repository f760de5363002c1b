"""Agents behind egress proxies (issue #17 item 3), with real squid (HTTP CONNECT, without and
with basic auth through basic_ncsa_auth) and real dante (SOCKS5, without and with username
auth). The agent runs in a network namespace that has only loopback and one relay
(nsrelay.py) to the proxy's port: the proxy is its only way to the gateway."""
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import BIN, HERE, Process, echo_roundtrip, free_port, wait_port
from test_visitor import private  # noqa: F401 (the fixture)

MiB = 1 << 20
SQUID = "/usr/sbin/squid"
NCSA = "/usr/lib/squid/basic_ncsa_auth"
DANTED = "/usr/sbin/danted"
PASSWORD = "s3cret-proxy-pw"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not all(os.path.exists(p) for p in (SQUID, NCSA, DANTED)) or not shutil.which("unshare")
    or not shutil.which("nsenter") or not shutil.which("htpasswd"),
    reason="needs root, unshare/nsenter, squid, dante-server and apache2-utils (scripts/install-deps.sh test)")


class Proxies:
    """The processes and directories of one test: a namespace, relays, squid, dante."""

    def __init__(self, tmp):
        self.tmp = Path(tmp)
        self.procs = []
        self.dirs = []
        self.ns = None

    def spawn(self, args, log, **kw):
        p = Process(args, log, **kw)
        self.procs.append(p)
        return p

    def open_dir(self, name, owner=None):
        """The proxies drop privileges, so their files live outside pytest's root-only
        directories, in a directory they may write."""
        d = Path(tempfile.mkdtemp(prefix=f"fastgw-{name}-"))
        self.dirs.append(d)
        d.chmod(0o755)
        if owner:
            os.chown(d, pwd.getpwnam(owner).pw_uid, pwd.getpwnam(owner).pw_gid)
        return d

    def namespace(self):
        """A network namespace with nothing but loopback, held by a sleeping process."""
        self.ns = self.spawn(["unshare", "-n", "sh", "-c", "ip link set lo up && echo ready && exec sleep 3600"],
                             self.tmp / "netns.log")
        self.ns.wait_for("ready")

    def inside(self, args):
        return ["nsenter", f"--net=/proc/{self.ns.proc.pid}/ns/net", *map(str, args)]

    def relay(self, target_port):
        p = self.spawn([sys.executable, HERE / "nsrelay.py", self.ns.proc.pid, target_port], self.tmp / f"relay-{target_port}.log")
        p.wait_for(r"ready \d+")
        p.port = int(re.search(r"ready (\d+)", p.text()).group(1))
        return p

    def echo_inside(self):
        port = free_port()
        p = self.spawn(self.inside([sys.executable, HERE / "peers.py", "echo", port]), self.tmp / "echo.log")
        p.wait_for("ready")
        p.port = port
        return p

    def squid(self, user=None):
        """squid in the foreground (-N) on a free loopback port; with `user`, only that user
        (password PASSWORD, checked by basic_ncsa_auth against an htpasswd file) may CONNECT."""
        d = self.open_dir("squid", owner="proxy")
        port = free_port()
        if user:
            subprocess.run(["htpasswd", "-b", "-c", "-B", d / "htpasswd", user, PASSWORD], check=True, capture_output=True)
            access = f"""auth_param basic program {NCSA} {d}/htpasswd
auth_param basic children 2 startup=1
auth_param basic realm fastgw-test
acl authenticated proxy_auth REQUIRED
http_access allow authenticated
http_access deny all"""
        else:
            access = "http_access allow all"
        (d / "squid.conf").write_text(f"""http_port 127.0.0.1:{port}
pid_filename {d}/squid.pid
cache_log {d}/cache.log
access_log stdio:{d}/access.log
cache_store_log none
cache deny all
coredump_dir {d}
pinger_enable off
shutdown_lifetime 1 seconds
{access}
""")
        for f in d.iterdir():
            os.chown(f, pwd.getpwnam("proxy").pw_uid, -1)
        p = self.spawn([SQUID, "-N", "-f", d / "squid.conf"], self.tmp / "squid.out", group=True)
        wait_port(port)
        p.port, p.log_file = port, d / "access.log"
        return p

    def dante(self, user=None):
        """danted in the foreground on a free loopback port; with `user`, SOCKS5 username
        auth against the system password files, which here are copies (with `user` added)
        bind-mounted over /etc/passwd and /etc/shadow in a mount namespace of danted's own."""
        d = self.open_dir("dante")
        port = free_port()
        (d / "danted.conf").write_text(f"""logoutput: {d}/danted.log
internal: 127.0.0.1 port = {port}
external: 127.0.0.1
socksmethod: {"username" if user else "none"}
clientmethod: none
user.privileged: root
user.unprivileged: nobody
client pass {{
  from: 127.0.0.0/8 to: 0.0.0.0/0
  log: error connect disconnect
}}
socks pass {{
  from: 127.0.0.0/8 to: 0.0.0.0/0
  command: connect
  log: error connect disconnect
}}
""")
        run = f"exec {DANTED} -f {d}/danted.conf -p {d}/danted.pid"
        if user:
            shutil.copy("/etc/passwd", d / "passwd")
            shutil.copy("/etc/shadow", d / "shadow")
            hashed = subprocess.run(["openssl", "passwd", "-6", PASSWORD], check=True, capture_output=True, text=True).stdout.strip()
            with open(d / "passwd", "a") as f:
                f.write(f"{user}:x:64999:65534::/nonexistent:/usr/sbin/nologin\n")
            with open(d / "shadow", "a") as f:
                f.write(f"{user}:{hashed}:20000:0:99999:7:::\n")
            run = f"mount --bind {d}/passwd /etc/passwd && mount --bind {d}/shadow /etc/shadow && {run}"
        p = self.spawn(["unshare", "-m", "sh", "-c", run], self.tmp / "danted.out", group=True)
        wait_port(port)
        p.port, p.log_file = port, d / "danted.log"
        return p

    def stop(self):
        for p in reversed(self.procs):
            p.kill()
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def proxies(tmp_path):
    w = Proxies(tmp_path)
    yield w
    w.stop()


def set_agent_keys(t, keys):
    """Adds `keys` (TOML lines) to the agent's [agent] table."""
    text = (t.dir / "agent.toml").read_text().replace("[agent]\n", "[agent]\n" + keys + "\n", 1)
    (t.dir / "agent.toml").write_text(text)


def start_agent_inside(w, t, env=None):
    t.agent = Process(w.inside([BIN, "agent", "-c", t.dir / "agent.toml"]), t.dir / "agent.log", env=env)
    return t.agent


def assert_no_direct_route(w, port):
    probe = "import socket\ntry:\n socket.create_connection(('127.0.0.1', %d), timeout=2)\n print('reached')\n" \
            "except OSError as e:\n print('unreachable', e)\n" % port
    r = subprocess.run(w.inside([sys.executable, "-c", probe]), capture_output=True, text=True, timeout=20)
    assert r.stdout.startswith("unreachable"), r.stdout + r.stderr


def isolated(w, tunnel, kind, user, **tunnel_options):
    """A gateway on the host, and a namespace for the agent holding its echo upstream and a
    relay to a fresh `kind` proxy; returns (proxy, relay, tunnel)."""
    w.namespace()
    echo = w.echo_inside()
    proxy = w.squid(user) if kind == "squid" else w.dante(user)
    relay = w.relay(proxy.port)
    t = tunnel(echo.port, **tunnel_options)
    t.start_gateway()
    return proxy, relay, t


CASES = [
    # proxy, authenticated, transport, how the agent is told
    pytest.param("squid", False, "h2", "env", id="http-connect-h2-from-environment"),
    pytest.param("squid", True, "websocket", "credential", id="http-connect-basic-auth-websocket"),
    pytest.param("dante", False, "auto", "socks5", id="socks5-auto"),
    pytest.param("dante", True, "websocket", "socks5h-url", id="socks5h-username-websocket"),
]


@pytest.mark.parametrize("kind,authenticated,transport,setup", CASES)
def test_agent_reaches_the_gateway_only_through_the_proxy(proxies, tunnel, kind, authenticated, transport, setup):
    w = proxies
    user = ("alice" if kind == "squid" else "fgwproxy") if authenticated else None
    proxy, relay, t = isolated(w, tunnel, kind, user, transport=transport)
    assert_no_direct_route(w, t.tunnel_port)

    env = None
    if setup == "env":
        set_agent_keys(t, 'proxy = "env"')
        env = {"HTTPS_PROXY": f"http://127.0.0.1:{relay.port}", "NO_PROXY": "example.com,10.0.0.0/8"}
        shown = f"http://127.0.0.1:{relay.port}"
    elif setup == "credential":
        creds = t.dir / "creds"
        creds.mkdir()
        (creds / "proxy").write_text(f"{user}:{PASSWORD}\n")
        set_agent_keys(t, f'proxy = "http://127.0.0.1:{relay.port}"\nproxy_credentials = "credential:proxy"')
        env = {"CREDENTIALS_DIRECTORY": str(creds)}
        shown = f"http://127.0.0.1:{relay.port}"
    elif setup == "socks5":
        set_agent_keys(t, f'proxy = "socks5://127.0.0.1:{relay.port}"')
        shown = f"socks5://127.0.0.1:{relay.port}"
    else:
        set_agent_keys(t, f'proxy = "socks5h://{user}:{PASSWORD}@127.0.0.1:{relay.port}"')
        shown = f"socks5h://127.0.0.1:{relay.port}"
    agent = start_agent_inside(w, t, env=env)
    t.wait_registered(timeout=20)

    echo_roundtrip(t.public_port, 256 * MiB)

    conns = t.ctl_json("connections", agent=True)["connections"]
    assert [c["state"] for c in conns] == ["connected"] * t.connections
    assert {c["proxy"] for c in conns} == {shown}
    expected_carrier = "websocket" if transport == "websocket" else "h2"
    assert {c["carrier"] for c in conns} == {expected_carrier}
    for command in ("connections", "status"):
        assert PASSWORD not in t.ctl(command, agent=True).stdout

    # The proxy saw the tunnel connections (squid logs a CONNECT when it ends, so it is
    # checked after the proxy is gone).
    if kind == "dante":
        dante_log = proxy.log_file.read_text()
        assert len(re.findall(rf"tcp/connect \[: .*-> 127\.0\.0\.1\.\d+ 127\.0\.0\.1\.{t.tunnel_port}\b", dante_log)) >= t.connections
        if user:
            assert f"username%{user}@" in dante_log

    # Without the proxy (and its door into the namespace) there is no way to the gateway.
    closed_before = agent.count("tunnel connection closed")
    proxy.kill()
    relay.kill()
    agent.wait_for("tunnel connection closed", count=closed_before + t.connections, timeout=20)
    unreachable = rf"cannot reach proxy 127\.0\.0\.1:{relay.port} \(for gateway localhost:{t.tunnel_port}\): .*[Rr]efused"
    agent.wait_for(unreachable, timeout=20)
    conns = t.ctl_json("connections", agent=True)["connections"]
    assert "connected" not in {c["state"] for c in conns}
    assert any("cannot reach proxy" in (c["last_error"] or "") for c in conns)

    if kind == "squid":
        access = proxy.log_file.read_text()
        connects = re.findall(rf"CONNECT localhost:{t.tunnel_port} (\S+) HIER_DIRECT", access)
        assert len(connects) >= t.connections, access
        assert set(connects) == {user or "-"}
    assert PASSWORD not in agent.text()
    assert agent.proc.poll() is None


def test_wrong_http_proxy_password_is_a_407_retried_with_back_off(proxies, tunnel):
    w = proxies
    _, relay, t = isolated(w, tunnel, "squid", "alice", connections=1)
    (t.dir / "proxy.pass").write_text("alice:wrong-password\n")
    set_agent_keys(t, f'proxy = "http://127.0.0.1:{relay.port}"\nproxy_credentials = "proxy.pass"')
    agent = start_agent_inside(w, t)

    refused = rf"proxy 127\.0\.0\.1:{relay.port} answered 407 Proxy Authentication Required \(it refused the user name and password given\)"
    agent.wait_for(refused, timeout=20)
    conn = t.ctl_json("connections", agent=True)["connections"][0]
    assert conn["state"] == "waiting" and "407" in conn["last_error"]
    # Credentials do not fix themselves: the retry waits as long as after a gateway's 401.
    assert conn["next_retry_ms"] > 10_000
    agent.wait_for(refused, count=2, timeout=40)
    assert agent.proc.poll() is None
    assert "wrong-password" not in agent.text()

    # The right password, by reload: the next attempt goes through.
    (t.dir / "proxy.pass").write_text(f"alice:{PASSWORD}\n")
    t.ctl("reload", agent=True)
    t.wait_registered(timeout=40)
    echo_roundtrip(t.public_port, 4 * MiB)


def test_wrong_socks_password_and_missing_credentials(proxies, tunnel):
    w = proxies
    _, relay, t = isolated(w, tunnel, "dante", "fgwproxy", connections=1)
    set_agent_keys(t, f'proxy = "socks5://fgwproxy:wrong-password@127.0.0.1:{relay.port}"')
    agent = start_agent_inside(w, t)
    agent.wait_for(rf"proxy 127\.0\.0\.1:{relay.port} refused the SOCKS5 user name and password \(RFC 1929 status \d+\)", timeout=20)
    conn = t.ctl_json("connections", agent=True)["connections"][0]
    assert conn["state"] == "waiting" and conn["next_retry_ms"] > 10_000
    assert "wrong-password" not in agent.text() + t.ctl("connections", agent=True).stdout
    assert agent.proc.poll() is None
    agent.kill()

    # No credentials at all: dante accepts none of the methods offered.
    text = (t.dir / "agent.toml").read_text().replace("fgwproxy:wrong-password@", "")
    (t.dir / "agent.toml").write_text(text)
    agent = start_agent_inside(w, t)
    agent.wait_for(r"accepts none of the SOCKS5 authentication methods offered \(it wants a user name and password: "
                   r"set proxy_credentials\)", timeout=20)
    assert agent.proc.poll() is None


def test_a_proxy_that_never_answers_fails_the_dial_at_its_deadline(tunnel, peer):
    silent = peer("sink")  # reads the CONNECT and answers nothing until the agent half-closes
    t = tunnel(peer("echo").port, connections=1)
    t.start_gateway()
    set_agent_keys(t, f'proxy = "http://127.0.0.1:{silent.port}"')
    agent = t.start_agent(wait=False)
    agent.wait_for(rf"proxy 127\.0\.0\.1:{silent.port} did not open the path to the gateway within 10 s", timeout=20)
    assert agent.proc.poll() is None


def test_a_gateway_silent_behind_an_open_proxy_path_fails_the_dial_at_its_deadline(proxies, tunnel, peer):
    """squid opens the path (200), but what answers there says nothing: the TLS and upgrade
    handshakes share the dial's deadline with the proxy's."""
    squid = proxies.squid()
    t = tunnel(peer("echo").port, connections=1)
    silent = peer("sink")
    t.start_gateway()
    text = (t.dir / "agent.toml").read_text().replace(f"localhost:{t.tunnel_port}", f"localhost:{silent.port}")
    (t.dir / "agent.toml").write_text(text)
    set_agent_keys(t, f'proxy = "http://127.0.0.1:{squid.port}"')
    agent = t.start_agent(wait=False)
    agent.wait_for(rf"no answer to the tunnel handshake within 10 s of dialling \(through proxy 127\.0\.0\.1:{squid.port}\)", timeout=20)
    assert agent.proc.poll() is None


def test_no_proxy_matching_the_gateway_bypasses_the_proxy(tunnel, peer):
    echo = peer("echo")
    t = tunnel(echo.port)
    t.start_gateway()
    dead = free_port()  # nothing listens: a dial through this "proxy" cannot succeed
    set_agent_keys(t, 'proxy = "env"')
    t.start_agent(env={"HTTPS_PROXY": f"http://127.0.0.1:{dead}", "NO_PROXY": "example.com, localhost"})
    conns = t.ctl_json("connections", agent=True)["connections"]
    assert [c["proxy"] for c in conns] == [None] * t.connections
    assert "direct" in t.ctl("connections", agent=True).stdout
    echo_roundtrip(t.public_port, 4 * MiB)
    t.agent.kill()

    # NO_PROXY not matching: the dial goes to the proxy, and fails there.
    agent = t.start_agent(wait=False, env={"https_proxy": f"127.0.0.1:{dead}", "no_proxy": "example.com"})
    agent.wait_for(rf"cannot reach proxy 127\.0\.0\.1:{dead} \(for gateway localhost:{t.tunnel_port}\)", timeout=20)
    assert agent.proc.poll() is None


def test_check_names_the_line_and_hides_the_password(tunnel):
    t = tunnel(free_port())
    set_agent_keys(t, 'proxy = "https://alice:hunter22@proxy.example:3128"')
    r = subprocess.run([BIN, "check", "-c", t.dir / "agent.toml"], capture_output=True, text=True)
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert re.search(r'agent\.toml:3: proxy "https://alice:\*\*\*@proxy\.example:3128": https:// proxies .* are not supported', out), out
    assert "hunter22" not in out

    set_agent_keys(t, 'proxy_credentials = "proxy.pass"')
    text = (t.dir / "agent.toml").read_text().replace("https://alice:hunter22@", "http://")
    (t.dir / "agent.toml").write_text(text)
    (t.dir / "proxy.pass").write_text("alice:hunter22\n")
    r = subprocess.run([BIN, "check", "-c", t.dir / "agent.toml"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr

    r = subprocess.run([BIN, "check", "-c", t.dir / "agent.toml"], capture_output=True, text=True,
                       env={**os.environ, "HTTPS_PROXY": "socks4://p:1080"})
    assert r.returncode == 0  # the environment counts only with proxy = "env"
    (t.dir / "agent.toml").write_text(text.replace('proxy = "http://proxy.example:3128"', 'proxy = "env"'))
    r = subprocess.run([BIN, "check", "-c", t.dir / "agent.toml"], capture_output=True, text=True,
                       env={**os.environ, "HTTPS_PROXY": "socks4://p:1080"})
    assert r.returncode != 0 and 'HTTPS_PROXY="socks4://p:1080": socks4:// is not supported' in r.stdout + r.stderr


def test_a_visitor_dials_through_the_proxy_too(proxies, private):
    """`[visitor] proxy` is read as the agent's: the visitor's tunnel goes through squid (its
    access log shows the CONNECT to the gateway) and a forward carries data."""
    from test_visitor import connect, recv_all
    squid = proxies.squid()
    p = private()
    text = (p.d / "visitor.toml").read_text()
    (p.d / "visitor.toml").write_text(text.replace("[visitor]\n", f'[visitor]\nproxy = "http://127.0.0.1:{squid.port}"\n', 1))
    p.start()
    with connect(p.fwd_echo) as s:
        s.sendall(b"through squid\n")
        s.shutdown(2 - 1)  # SHUT_WR
        assert recv_all(s) == b"through squid\n"
    # The visitor's sockets lead to squid only, never straight to the tunnel port.
    sockets = subprocess.run(["ss", "-Htnp"], capture_output=True, text=True).stdout.splitlines()
    mine = [line.split()[4] for line in sockets if f"pid={p.visitor.proc.pid}," in line]
    assert mine and all(peer.endswith(f":{squid.port}") for peer in mine), mine
    connections = p.ctl("visitor.sock", "connections").stdout
    assert f"127.0.0.1:{squid.port}" in connections, connections
    # squid logs a CONNECT when it ends: stop the visitor.
    p.visitor.kill()
    p.visitor.proc.wait(15)
    import time
    deadline = time.monotonic() + 10
    while f"CONNECT localhost:{p.tunnel_port}" not in squid.log_file.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert f"CONNECT localhost:{p.tunnel_port}" in squid.log_file.read_text()
