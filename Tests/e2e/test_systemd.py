"""fastgw under a real systemd, checked as an operator would (issue #4): units installed by
scripts/install.sh (what `make install` runs), socket activation, fastgwctl through the
activated control socket, systemctl reload good and bad, journald fields and MESSAGE_IDs,
the watchdog, restart under load and stop with a request in flight. Secrets (the gateway's TLS
key, the agent tokens) are root:root 0600 and reach the daemons only as systemd credentials
through the shipped units' LoadCredential= (issue #15).

systemd runs in its own PID and mount namespaces (systemd_ns.py); the host keeps none of it.
Where that cannot boot (not root, no systemd) the module is SKIPPED, loudly; under CI it fails.
The tests run in file order and share one booted system.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import BIN, HERE, ROOT, Process, free_port, start_nginx, wrk, wrk_result
from systemd_ns import CannotBoot, NamespacedSystemd

# Message IDs from fastgw(8).
MESSAGE_IDS = {
    "agent_connected": "37230ba8e0c54c2aa31e0780843b5a78",
    "agent_disconnected": "33ea9bc2e70a469b88759c6b6f7ddcf1",
    "registration_rejected": "de7c71c2dcb944f3bad6d1cbfce97b11",
    "reload_succeeded": "987a0cfd4d5c43a78b383faf5c208709",
    "reload_failed": "7e078716366c4d4eab5483b40ce5532a",
    "drain_started": "03daa613a6a64241aab03a56e189a708",
    "drain_finished": "6f8e311b55d24a209641846c26f9e86b",
    "connection_closed": "d3ccd93489524827ae2bc09fa854189c",
}
WATCHDOG_SEC = 3
RESTART_SEC = 1


def secret_files(s, pkidir):
    """The secret files, each of which the shipped units load as a credential."""
    return {
        "/etc/fastgw/tls/gateway.key": (pkidir / "gateway.key").read_text(),
        "/etc/fastgw/tokens/office": s.token + "\n",
        "/etc/fastgw/agent.token": s.token + "\n",
    }


class System:
    """The booted systemd with fastgw installed and configured, plus the host-side peers."""

    def __init__(self, ns):
        self.ns = ns
        self.tunnel_port = free_port()
        self.public_port = free_port()   # held by fastgw.socket
        self.slow_port = free_port()     # bound by the gateway itself
        self.denied_port = free_port()   # declared by the agent, not granted
        self.token = os.urandom(16).hex()

    def gateway_toml(self, extra=""):
        return f"""
[gateway]
public_address = "127.0.0.1"
drain_timeout = "10s"
[tunnel]
listen = "127.0.0.1:{self.tunnel_port}"
cert = "tls/gateway.crt"
key = "credential:gateway.key"
[log]
access = true
[[agent]]
name = "office"
token_file = "credential:tokens_office"
allow_ports = [{self.public_port}, {self.slow_port}]
""" + extra

    def agent_toml(self, upstream_port, slow_port, token_file="credential:agent.token"):
        return f"""
[agent]
name = "office"
token_file = "{token_file}"
gateways = ["localhost:{self.tunnel_port}"]
ca = "tls/ca.crt"
connections = 2
[[service]]
name = "web"
upstream = "127.0.0.1:{upstream_port}"
remote_port = {self.public_port}
[[service]]
name = "slow"
upstream = "127.0.0.1:{slow_port}"
remote_port = {self.slow_port}
[[service]]
name = "denied"
upstream = "127.0.0.1:9"
remote_port = {self.denied_port}
"""

    def ctl(self, *args, check=True):
        return self.ns.run("/usr/local/bin/fastgwctl", *args, check=check)

    def request(self, port, path="/1k.bin", timeout=15):
        return subprocess.run(
            ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", str(timeout),
             f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True)

    def wait_active(self, unit, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ns.systemctl("is-active", unit, check=False).stdout.strip() == "active":
                return
            time.sleep(0.1)
        raise AssertionError(f"{unit} not active: {self.ns.systemctl('status', unit, check=False).stdout}")

    def wait_agent_registered(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.ctl("routes", check=False)
            if r.returncode == 0 and str(self.public_port) in r.stdout and str(self.slow_port) in r.stdout:
                return
            time.sleep(0.2)
        raise AssertionError(f"agent did not register: {self.journal_text('fastgw-agent.service')}")

    def journal_text(self, unit):
        return self.ns.run("journalctl", "--no-pager", "-u", unit, "-n", "60", check=False).stdout


@pytest.fixture(scope="module")
def system(tmp_path_factory, pki):
    root = Path(tempfile.mkdtemp(prefix="fastgw-e2e-", dir="/srv"))
    ns = NamespacedSystemd(root, {str(ROOT): "repo"})
    peers = []
    try:
        try:
            ns.boot()
        except CannotBoot as e:
            message = f"SKIPPED: cannot boot a namespaced systemd for the systemd suite: {e}"
            print(f"\n*** {message} ***", file=sys.stderr)
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        s = System(ns)
        nginx_proc, upstream_port = start_nginx(tmp_path_factory.mktemp("nginx"))
        peers.append(nginx_proc)
        slow_port = free_port()
        slow = Process([sys.executable, HERE / "peers.py", "slowhttp", slow_port, "3"], root / "slow.log")
        slow.wait_for("ready")
        peers.append(slow)

        # Install as an admin would, into the namespace's overlays (binaries of this test run).
        build = root / "repo" / BIN.parent.relative_to(ROOT)
        out = ns.run("env", f"BUILD_DIR={build}", root / "repo" / "scripts" / "install.sh").stdout
        assert "fastgw installed" in out, out
        ns.run("id", "fastgw")

        pkidir = Path(pki)
        for name, mode in (("gateway.crt", 0o640), ("ca.crt", 0o644)):
            ns.write(f"/etc/fastgw/tls/{name}", (pkidir / name).read_text(), mode=mode, owner=("root", "fastgw"))
        # Secrets: root's alone; the units' LoadCredential= hands them over.
        for path, text in secret_files(s, pkidir).items():
            ns.write(path, text, mode=0o600, owner=("root", "root"))
        s.upstream_port, s.slow_upstream_port = upstream_port, slow_port
        ns.write("/etc/fastgw/gateway.toml", s.gateway_toml(), mode=0o640, owner=("root", "fastgw"))
        ns.write("/etc/fastgw/agent.toml", s.agent_toml(upstream_port, slow_port), mode=0o640, owner=("root", "fastgw"))
        # Drop-ins, as `systemctl edit` writes them: loopback ports, and a short watchdog.
        ns.write("/etc/systemd/system/fastgw.socket.d/ports.conf", f"""[Socket]
ListenStream=
ListenStream=/run/fastgw/gateway.sock
ListenStream=127.0.0.1:{s.tunnel_port}
ListenStream=127.0.0.1:{s.public_port}
""")
        for unit in ("fastgw.service", "fastgw-agent.service"):
            ns.write(f"/etc/systemd/system/{unit}.d/watchdog.conf",
                     f"[Service]\nWatchdogSec={WATCHDOG_SEC}s\nRestartSec={RESTART_SEC}s\n")
        ns.systemctl("daemon-reload")
        yield s
    finally:
        try:
            if ns.pid:
                for unit in ("fastgw.service", "fastgw-agent.service"):
                    print(f"--- journal of {unit} ---\n" + ns.run(
                        "journalctl", "--no-pager", "-u", unit, "-n", "40", check=False).stdout)
        finally:
            ns.poweroff()
            for p in peers:
                p.kill(signal.SIGKILL)
            shutil.rmtree(root, ignore_errors=True)


def test_units_pass_verify_and_security_target(system):
    ns = system.ns
    for unit in ("fastgw.socket", "fastgw.service", "fastgw-agent.socket", "fastgw-agent.service"):
        r = ns.run("systemd-analyze", "verify", f"/usr/local/lib/systemd/system/{unit}", check=False)
        # Only man: links may be unresolvable here (no man-db in the namespace is fine).
        problems = [l for l in (r.stdout + r.stderr).splitlines() if l.strip() and "man " not in l]
        assert not problems, problems
    for unit in ("fastgw.service", "fastgw-agent.service"):
        out = ns.run("systemd-analyze", "security", unit, check=False).stdout
        line = [l for l in out.splitlines() if "Overall exposure level" in l][0]
        score = float(line.split(":")[1].split()[0])
        print(f"{unit}: exposure {score}")
        assert score <= 1.5, out


def test_socket_activation_first_connection_starts_gateway(system):
    s, ns = system, system.ns
    ns.systemctl("start", "fastgw.socket")
    assert ns.systemctl("is-active", "fastgw.service", check=False).stdout.strip() == "inactive"
    # The agent's first tunnel connection reaches the socket systemd holds and starts the gateway.
    ns.systemctl("start", "fastgw-agent.service")
    s.wait_active("fastgw.service")
    s.wait_agent_registered()
    r = s.request(s.public_port)
    assert r.stdout == "200", r.stderr
    ready = [r for r in ns.journal("fastgw.service") if r.get("MESSAGE") == "gateway ready"]
    assert ready and ready[-1]["FASTGW_INHERITED_SOCKETS"] == "3", ready
    # StateDirectory=: [acme]'s default state_directory exists, the fastgw user's alone.
    assert ns.run("stat", "-c", "%a %U", "/var/lib/fastgw/acme").stdout.split() == ["700", "fastgw"]


def test_fastgwctl_and_status_through_activated_sockets(system):
    s, ns = system, system.ns
    stats = s.ctl("stats").stdout
    assert "public_connections_total" in stats or "connections" in stats, stats
    agents = s.ctl("agents").stdout
    assert "office" in agents, agents
    assert "web" in s.ctl("--agent", "services").stdout
    # STATUS= follows within its 2 s refresh.
    deadline = time.monotonic() + 6
    while True:
        status = ns.systemctl("show", "-P", "StatusText", "fastgw.service").stdout
        if status.startswith("serving: 1 agent on 2 tunnel connections") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status.startswith("serving: 1 agent on 2 tunnel connections"), status


def test_systemctl_reload_good_then_bad(system):
    s, ns = system, system.ns
    good = s.gateway_toml(extra='\n[[agent]]\nname = "second"\ntoken = "%s"\n' % os.urandom(16).hex())
    ns.write("/etc/fastgw/gateway.toml", good, mode=0o640, owner=("root", "fastgw"))
    before = json.loads(s.ctl("--json", "stats").stdout)["reloads_total"]
    ns.systemctl("reload", "fastgw.service")
    after = json.loads(s.ctl("--json", "stats").stdout)["reloads_total"]
    assert after == {"ok": before["ok"] + 1, "failed": before["failed"]}, (before, after)

    ns.write("/etc/fastgw/gateway.toml", good + "\n[tunnel\n", mode=0o640, owner=("root", "fastgw"))
    r = ns.systemctl("reload", "fastgw.service", check=False)
    assert r.returncode != 0, "a bad configuration must fail systemctl reload"
    assert json.loads(s.ctl("--json", "stats").stdout)["reloads_total"]["failed"] == before["failed"] + 1
    assert ns.systemctl("is-active", "fastgw.service", check=False).stdout.strip() == "active"
    assert s.request(s.public_port).stdout == "200", "the old configuration keeps serving"
    ns.write("/etc/fastgw/gateway.toml", s.gateway_toml(), mode=0o640, owner=("root", "fastgw"))
    ns.systemctl("reload", "fastgw.service")


def test_restart_under_load_refuses_nothing(system):
    s, ns = system, system.ns
    before = ns.main_pid("fastgw.service")
    load = wrk(s.public_port, 8, connections=8, close=True)
    time.sleep(2.5)
    ns.systemctl("restart", "fastgw.service")
    requests, errors, out = wrk_result(load)
    after = ns.main_pid("fastgw.service")
    assert after and after != before, "the gateway did restart"
    warnings = ns.run("journalctl", "--no-pager", "-u", "fastgw", "-u", "fastgw-agent", "-p", "warning",
                      "--since", "-30s", check=False).stdout
    # On failure, show what the daemons saw go wrong.
    aborted = [f"{r.get('_PID')} {r.get('FASTGW_ROLE')} {r.get('MESSAGE')} {r.get('FASTGW_STATUS')} {r.get('__REALTIME_TIMESTAMP')}"
               for r in ns.journal("fastgw.service") + ns.journal("fastgw-agent.service")
               if r.get("FASTGW_STATUS", "ok") != "ok" or r.get("PRIORITY") in ("3", "4")]
    assert requests > 0 and not errors, out + warnings + "\n".join(aborted)
    print(f"restart under wrk: {requests} requests, no errors")


def test_stop_drains_a_request_in_flight(system):
    s, ns = system, system.ns
    s.wait_agent_registered()
    before = ns.main_pid("fastgw.service")
    slow = subprocess.Popen(
        ["curl", "-sS", "--max-time", "20", f"http://127.0.0.1:{s.slow_port}/"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)  # the request is at the upstream, which answers after 3 s
    started = time.monotonic()
    ns.systemctl("stop", "fastgw.service")
    stop_took = time.monotonic() - started
    out, err = slow.communicate(timeout=30)
    assert out == "slow\n", err
    assert stop_took >= 1.5, f"stop returned after {stop_took:.1f}s, before the request finished"
    print(f"systemctl stop drained one in-flight request in {stop_took:.1f}s")
    # systemd still holds the sockets: the agent's next connection brings the gateway back.
    assert ns.systemctl("is-active", "fastgw.socket", check=False).stdout.strip() == "active"
    s.wait_active("fastgw.service")
    assert ns.main_pid("fastgw.service") != before
    s.wait_agent_registered()


def test_watchdog_restarts_a_stopped_gateway(system):
    s, ns = system, system.ns
    pid = ns.main_pid("fastgw.service")
    ns.run("kill", "-STOP", pid)
    stopped = time.monotonic()
    deadline = stopped + WATCHDOG_SEC + RESTART_SEC + 3
    while time.monotonic() < deadline:
        now = ns.main_pid("fastgw.service")
        if now and now != pid and ns.systemctl("is-active", "fastgw.service", check=False).stdout.strip() == "active":
            break
        time.sleep(0.2)
    else:
        raise AssertionError("no watchdog restart: " + s.journal_text("fastgw.service"))
    took = time.monotonic() - stopped
    print(f"watchdog restart {took:.1f}s after SIGSTOP (WatchdogSec={WATCHDOG_SEC}, RestartSec={RESTART_SEC})")
    log = ns.run("journalctl", "--no-pager", "-u", "fastgw.service", check=False).stdout
    assert "Watchdog timeout" in log, log
    s.wait_agent_registered()
    assert s.request(s.public_port).stdout == "200"


def test_journal_has_fastgw_fields_and_message_ids(system):
    ns = system.ns
    records = ns.journal("fastgw.service") + ns.journal("fastgw-agent.service")
    ours = [r for r in records if r.get("SYSLOG_IDENTIFIER") == "fastgw"]
    assert ours, "no structured records from fastgw"
    seen = {r.get("MESSAGE_ID") for r in ours}
    missing = [name for name, mid in MESSAGE_IDS.items() if mid not in seen]
    assert not missing, f"MESSAGE_IDs not found: {missing}"
    connected = [r for r in ours if r.get("MESSAGE_ID") == MESSAGE_IDS["agent_connected"] and r.get("FASTGW_ROLE") == "gateway"]
    assert connected[0]["FASTGW_AGENT"] == "office"
    assert connected[0]["PRIORITY"] == "5" and connected[0]["CODE_FILE"].endswith(".swift")
    access = [r for r in ours if r.get("MESSAGE_ID") == MESSAGE_IDS["connection_closed"] and r.get("FASTGW_SERVICE") == "web"]
    assert access and int(access[0]["FASTGW_BYTES_OUT"]) > 1024 and "FASTGW_DURATION_MS" in access[0]
    assert all(system.token not in str(r) for r in records), "a token reached the journal"
    # `journalctl -u fastgw FASTGW_SERVICE=web` finds that service's events.
    by_service = ns.run("journalctl", "--no-pager", "-o", "json", "-u", "fastgw", "FASTGW_SERVICE=web").stdout
    assert by_service.count("\n") >= 1


# Secrets from systemd credentials (issue #15). These run last: they restart the agent.

def as_fastgw(ns, *args):
    """Runs a command as the fastgw user (what the daemons run as), inside the namespace."""
    return ns.run("setpriv", "--reuid", "fastgw", "--regid", "fastgw", "--clear-groups", "--", *args, check=False)


def test_secrets_reach_the_daemons_only_as_credentials(system):
    s, ns = system, system.ns
    # The fastgw user cannot read a single secret file...
    for path in ("/etc/fastgw/tls/gateway.key", "/etc/fastgw/tokens/office", "/etc/fastgw/agent.token"):
        r = as_fastgw(ns, "cat", path)
        assert r.returncode != 0 and "Permission denied" in r.stderr, (path, r.stdout, r.stderr)
    assert as_fastgw(ns, "cat", "/etc/fastgw/agent.toml").returncode == 0
    # ...yet the agent (its token) and the gateway (its key, the agent's token) serve: the
    # copies systemd made for each unit.
    s.wait_agent_registered()
    assert s.request(s.public_port).stdout == "200"
    for unit, names in (("fastgw.service", ["gateway.key", "tokens_office"]), ("fastgw-agent.service", ["agent.token"])):
        pid = ns.main_pid(unit)
        environ = ns.run("cat", f"/proc/{pid}/environ").stdout.split("\0")
        assert f"CREDENTIALS_DIRECTORY=/run/credentials/{unit}" in environ, environ
        listed = ns.run("nsenter", "-t", pid, "-m", "ls", f"/run/credentials/{unit}").stdout.split()
        assert listed == names, listed


def test_reload_reads_the_credentials_again(system):
    s, ns = system, system.ns
    for unit in ("fastgw.service", "fastgw-agent.service"):
        ns.systemctl("reload", unit)
        assert ns.systemctl("is-active", unit, check=False).stdout.strip() == "active"
    gw = json.loads(s.ctl("--json", "stats").stdout)["reloads_total"]
    assert gw["ok"] >= 1, gw
    s.wait_agent_registered()
    assert s.request(s.public_port).stdout == "200"


def test_check_inside_and_outside_the_unit(system):
    ns = system.ns
    # Outside the unit (as an admin runs it): valid, the credentials noted as not checked.
    r = ns.run("/usr/local/bin/fastgw", "check", "-c", "/etc/fastgw/gateway.toml", check=False)
    assert r.returncode == 0 and "2 credentials not checked" in r.stdout, r.stdout + r.stderr
    assert 'note: key "credential:gateway.key" not checked' in r.stderr, r.stderr
    # With the unit's credentials (the way the note suggests), everything is checked.
    r = ns.run("systemd-run", "--quiet", "--wait", "--pipe", "-p", "LoadCredential=agent.token:/etc/fastgw/agent.token",
               "/usr/local/bin/fastgw", "check", "-c", "/etc/fastgw/agent.toml", check=False)
    assert r.returncode == 0 and "agent configuration OK" in r.stdout and "not checked" not in r.stdout + r.stderr, r.stdout + r.stderr


def test_missing_credentials_are_clear_startup_errors(system):
    s, ns = system, system.ns
    # The configuration names a credential the unit does not load: fastgw says which, where,
    # and what the unit lacks.
    r = ns.run("systemd-run", "--quiet", "--wait", "--pipe", "-p", "User=fastgw", "-p", "LoadCredential=tokens:/etc/fastgw/tokens",
               "/usr/local/bin/fastgw", "gateway", "-c", "/etc/fastgw/gateway.toml", check=False, timeout=30)
    assert r.returncode == 1, r.stdout + r.stderr
    assert re.search(r'/etc/fastgw/gateway\.toml:\d+: key: credential "gateway\.key" cannot be read from \$CREDENTIALS_DIRECTORY '
                     r"\(/run/credentials/run-[^/]+\.service/gateway\.key\): No such file or directory; "
                     r"the unit needs LoadCredential=gateway\.key:", r.stderr), r.stderr

    # The real agent unit with a typo in the credential name fails to start, and the journal says why.
    typo = s.agent_toml(s.upstream_port, s.slow_upstream_port, token_file="credential:agent.tokn")
    ns.write("/etc/fastgw/agent.toml", typo, mode=0o640, owner=("root", "fastgw"))
    try:
        assert ns.systemctl("restart", "fastgw-agent.service", check=False).returncode != 0
        log = s.journal_text("fastgw-agent.service")
        assert re.search(r"/etc/fastgw/agent\.toml:\d+: cannot read token_file /run/credentials/fastgw-agent\.service/agent\.tokn: "
                         r"No such file or directory; the unit needs LoadCredential=agent\.tokn:", log), log

        # The file LoadCredential= names is missing: systemd itself refuses (243/CREDENTIALS).
        ns.write("/etc/fastgw/agent.toml", s.agent_toml(s.upstream_port, s.slow_upstream_port), mode=0o640, owner=("root", "fastgw"))
        ns.run("mv", "/etc/fastgw/agent.token", "/etc/fastgw/agent.token.away")
        ns.systemctl("reset-failed", "fastgw-agent.service", check=False)
        assert ns.systemctl("restart", "fastgw-agent.service", check=False).returncode != 0
        assert ns.systemctl("show", "-P", "ExecMainStatus", "fastgw-agent.service").stdout.strip() == "243"
    finally:
        ns.run("mv", "/etc/fastgw/agent.token.away", "/etc/fastgw/agent.token", check=False)
        ns.write("/etc/fastgw/agent.toml", s.agent_toml(s.upstream_port, s.slow_upstream_port), mode=0o640, owner=("root", "fastgw"))
        ns.systemctl("reset-failed", "fastgw-agent.service", check=False)
        ns.systemctl("restart", "fastgw-agent.service")
    s.wait_agent_registered()
