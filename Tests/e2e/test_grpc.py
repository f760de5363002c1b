"""gRPC end to end (issue #5): a real gRPC client over TLS (HTTP/2) to the gateway, a real
gRPC server behind the agent on an `upstream_protocol = "h2c"` service. Unary, server- and
client-streaming calls, status codes in trailers."""
import json
import subprocess

import pytest

from conftest import Process, free_port
from test_http import add_http, service
from test_https import add_https

SYSTEM_PYTHON = "/usr/bin/python3"
GRPCPEER = __import__("pathlib").Path(__file__).parent / "grpcpeer.py"


def have_grpc():
    return subprocess.run([SYSTEM_PYTHON, "-c", "import grpc"], capture_output=True).returncode == 0


pytestmark = pytest.mark.skipif(not have_grpc(), reason="python3-grpcio is not installed (scripts/install-deps.sh test)")


def test_grpc_unary_streaming_and_status_codes_through_the_tunnel(tunnel, pki, tmp_path):
    port = free_port()
    # Process starts it: a second start() left the first server running after the test.
    server = Process([SYSTEM_PYTHON, GRPCPEER, "server", port], tmp_path / "grpc-server.log")
    try:
        server.wait_for("ready")
        t = tunnel(free_port())
        add_http(t, service("grpc", port, ["grpc.test"], extra='upstream_protocol = "h2c"\n'), ["grpc.test"])
        t.https_port = add_https(t, pki, "grpc", ["grpc.test"])
        t.start_gateway()
        t.start_agent()
        r = subprocess.run([SYSTEM_PYTHON, GRPCPEER, "client", str(t.https_port), "grpc.test", str(t.dir / "ca.crt")],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-3000:]
        got = json.loads(r.stdout)
        assert got["unary"] == "olleh"
        assert got["unary_big_ok"] is True
        assert got["error"] == ["INVALID_ARGUMENT", "fail was asked for"]
        assert got["missing"] == "UNIMPLEMENTED"
        assert got["stream"] == [2000, "0:", "1999:"]
        assert got["upload"] is True
        stats = t.ctl_json("stats")
        assert stats["service_http_responses_total"]["grpc:2xx"] >= 6, stats
    finally:
        server.kill()
