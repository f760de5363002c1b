"""HTTP/1.1 upgrades (issue #5): WebSocket clients through the gateway, carried as extended
CONNECT streams (RFC 8441) to the agent, which performs the upgrade with the upstream. Real
WebSocket peers (python3-websockets) on both ends."""
import json
import subprocess

import pytest

from conftest import Process, connect, free_port
from test_http import add_http, service
from test_https import add_https

SYSTEM_PYTHON = "/usr/bin/python3"
WSPEER = __import__("pathlib").Path(__file__).parent / "wspeer.py"


def have_websockets():
    return subprocess.run([SYSTEM_PYTHON, "-c", "import websockets"], capture_output=True).returncode == 0


pytestmark = pytest.mark.skipif(not have_websockets(), reason="python3-websockets is not installed (scripts/install-deps.sh test)")


@pytest.fixture
def ws_site(tunnel, pki, tmp_path):
    port = free_port()
    server = Process([SYSTEM_PYTHON, WSPEER, "server", port], tmp_path / "ws-server.log")
    server.wait_for("ready")
    t = tunnel(free_port())
    t.http_port = add_http(t, service("ws", port, ["app.test"]), ["app.test"])
    t.https_port = add_https(t, pki, "app", ["app.test"])
    t.start_gateway()
    t.start_agent()
    yield t
    server.kill()


def ws_client(url, port, cafile=None):
    args = [SYSTEM_PYTHON, WSPEER, "client", url, "127.0.0.1", str(port)] + ([str(cafile)] if cafile else [])
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout)


def test_websocket_echo_through_http_and_https(ws_site):
    for url, port, ca in ((f"ws://app.test:{ws_site.http_port}/echo", ws_site.http_port, None),
                          (f"wss://app.test:{ws_site.https_port}/echo", ws_site.https_port, ws_site.dir / "ca.crt")):
        got = ws_client(url, port, ca)
        assert got["echoed"] == 8 and got["bytes"] > (1 << 20), got
        assert got["close_code"] == 1000
        assert got["headers"]["upgrade"].lower() == "websocket" and "sec-websocket-accept" in got["headers"]
    stats = ws_site.ctl_json("stats")
    assert stats["http_responses_total"].get("1xx", 0) >= 2, stats


def test_upgrade_the_upstream_refuses_is_relayed_and_the_connection_stays_usable(ws_site):
    # No Sec-WebSocket-Key: the upstream answers 400 instead of 101.
    s = connect(ws_site.http_port)
    for _ in range(2):
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        data = b""
        while b"Sec-WebSocket-Key header." not in data:
            chunk = s.recv(4096)
            assert chunk, data
            data += chunk
        assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n"), data
        assert b"upgrade" not in data.lower().split(b"\r\n\r\n")[0], data
    s.close()
