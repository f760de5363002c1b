"""Hostile configuration files (issue #14): values nested 100,000 deep in every form, a file
larger than the 4 MiB limit and invalid UTF-8 are refused with file:line by `fastgw check`,
and by a running daemon's reload (control socket and SIGHUP), which keeps its old
configuration and goes on serving. None of them may crash anything."""
import signal
import subprocess

import pytest

from conftest import BIN, connect

DEEP = 100_000


def attacks(good):
    """(form, file content, line of the offending text) for each attack, appended to a good file."""
    line = len(good.splitlines()) + 2
    path = ".".join(["a"] * DEEP)
    texts = [
        ("arrays", "x = " + "[" * DEEP + "]" * DEEP),
        ("inline tables", "x = " + "{a=" * DEEP + "1" + "}" * DEEP),
        ("dotted key", f"{path} = 1"),
        ("table header", f"[{path}]"),
        ("array header", f"[[{path}]]"),
        ("huge file", "#" * (5 << 20)),
    ]
    out = [(form, (good + "\n" + text + "\n").encode(), line) for form, text in texts]
    out.append(("invalid UTF-8", (good + '\nx = "caf\xe9"\n').encode("latin-1"), line))
    return out


def check(path):
    r = subprocess.run([BIN, "check", "--config", str(path)], capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


def assert_serving(t):
    s = connect(t.public_port)
    s.sendall(b"still here")
    got = b""
    while len(got) < 10:
        data = s.recv(64)
        assert data, "the tunnel closed"
        got += data
    s.close()
    assert got == b"still here"


@pytest.mark.parametrize("role", ["gateway", "agent"])
def test_check_refuses_hostile_files_with_a_line(tunnel, role):
    t = tunnel(1)
    good = (t.dir / f"{role}.toml").read_text()
    bad = t.dir / f"bad-{role}.toml"
    for form, content, line in attacks(good):
        bad.write_bytes(content)
        code, out = check(bad)
        assert code == 1, f"{form}: exit {code}: {out[:500]}"
        assert f"{bad}:{line}: " in out, f"{form}: {out[:500]}"
        assert len(out) < 1000, f"{form}: the error quotes too much: {len(out)} bytes"


@pytest.mark.parametrize("role", ["gateway", "agent"])
def test_reload_of_hostile_files_keeps_the_old_config(tunnel, peer, role):
    echo = peer("echo")
    t = tunnel(echo.port)
    t.start_gateway()
    t.start_agent()
    daemon = t.gateway if role == "gateway" else t.agent
    path = t.dir / f"{role}.toml"
    good = path.read_text()
    failed = daemon.count("reload failed")
    for form, content, line in attacks(good):
        path.write_bytes(content)
        r = t.ctl("reload", agent=role == "agent", check=False, timeout=30)
        assert r.returncode == 1, f"{form}: {r}"
        assert "(422)" in r.stderr and f"{path}:{line}: " in r.stderr, f"{form}: {r.stderr[:500]}"
        daemon.proc.send_signal(signal.SIGHUP)
        failed += 2
        daemon.wait_for("reload failed", count=failed, timeout=30)
        assert daemon.proc.poll() is None, f"{form}: the {role} died"
        assert_serving(t)
    path.write_text(good)
    r = t.ctl("reload", agent=role == "agent", check=False)
    assert r.returncode == 0, r.stderr
    assert_serving(t)
