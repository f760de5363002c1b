"""Start-up failures end the process with a message and exit status 1, never a crash."""
import os
import shutil
import socket
import subprocess

from conftest import BIN


def run_gateway(t, env=None, args=()):
    return subprocess.run(
        [BIN, "gateway", "-c", str(t.dir / "gateway.toml"), *args],
        capture_output=True, text=True, timeout=30, env={**os.environ, **(env or {})})


def test_listener_that_cannot_bind(tunnel, peer):
    t = tunnel(peer("echo").port)
    taken = socket.socket()
    taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    taken.bind(("127.0.0.1", t.tunnel_port))
    taken.listen()
    try:
        r = run_gateway(t)
    finally:
        taken.close()
    assert r.returncode == 1, r
    assert f"cannot listen on 127.0.0.1:{t.tunnel_port}" in r.stderr


def test_missing_libsystemd(tunnel, peer, tmp_path):
    """A libsystemd.so.0 without the functions stands in for a missing library."""
    compiler = shutil.which("cc") or shutil.which("clang")
    assert compiler, "a C compiler is needed (the Swift toolchain brings clang)"
    (tmp_path / "stub.c").write_text("int fastgw_stub;\n")
    subprocess.run([compiler, "-shared", "-o", str(tmp_path / "libsystemd.so.0"), str(tmp_path / "stub.c")], check=True)
    t = tunnel(peer("echo").port)
    stub = {"LD_LIBRARY_PATH": str(tmp_path)}
    # Asked to notify a service manager: stop at once and say why.
    r = run_gateway(t, env={**stub, "NOTIFY_SOCKET": str(tmp_path / "notify")})
    assert r.returncode == 1, r
    assert "cannot load libsystemd" in r.stderr and "needed for NOTIFY_SOCKET" in r.stderr
    # Asked for the journal only: log to stderr instead, and say so.
    p = subprocess.Popen(
        [BIN, "gateway", "-c", str(t.dir / "gateway.toml"), "--log-target", "journal"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, **stub})
    try:
        first = p.stderr.readline()
        assert "cannot load libsystemd" in first and "logging to stderr" in first
        for _ in range(50):
            if "gateway ready" in p.stderr.readline():
                break
        else:
            raise AssertionError("no 'gateway ready' on stderr")
    finally:
        p.terminate()
        p.wait(timeout=15)
