#!/usr/bin/env python3
"""What an open connection costs (issue #14, docs/benchmarks.md "Open connections"), loopback
only.

    FASTGW_BIN=.build/release/fastgw python3 bench/open_connections.py [COUNT]

A gateway and an agent publish a TCP echo service. COUNT connections (2,000) each exchange
one small message through it and are then left open; the script prints the RSS the gateway
and the agent added per connection, then closes them all and prints RSS again once the
periodic trim has had its chance. Every process started here is ended here."""
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "Tests" / "e2e"))
from conftest import ROOT, Process, Tunnel, free_port  # noqa: E402

TARGET_KIB = 16


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory(prefix="fastgw-open-") as tmp:
        d = Path(tmp)
        pki = d / "pki"
        pki.mkdir()
        subprocess.run([ROOT / "scripts" / "make-pki.sh", pki], check=True, capture_output=True)
        port = free_port()
        echo = Process([sys.executable, HERE.parent / "Tests" / "e2e" / "peers.py", "echo", port], d / "echo.log")
        t = Tunnel(d, pki, port)
        socks = []
        try:
            echo.wait_for("ready")
            t.gateway = Process([os.environ.get("FASTGW_BIN", ROOT / ".build/release/fastgw"), "gateway", "-c",
                                 d / "gateway.toml"], d / "gateway.log")
            t.gateway.wait_for("gateway ready")
            t.agent = Process([t.gateway.args[0], "agent", "-c", d / "agent.toml"], d / "agent.log")
            t.wait_registered()
            time.sleep(1)
            g0, a0 = t.gateway.rss_kib(), t.agent.rss_kib()
            for _ in range(count):
                s = socket.create_connection(("127.0.0.1", t.public_port))
                s.sendall(b"hello")
                assert s.recv(16) == b"hello"
                socks.append(s)
            time.sleep(2)
            g1, a1 = t.gateway.rss_kib(), t.agent.rss_kib()
            per = (g1 - g0 + a1 - a0) / count
            print(f"open connections: {count} after one exchange each: gateway +{(g1 - g0) / count:.1f} KiB, "
                  f"agent +{(a1 - a0) / count:.1f} KiB, together {per:.1f} KiB per connection "
                  f"(target <= {TARGET_KIB}: {'met' if per <= TARGET_KIB else 'NOT met'})")
            for s in socks:
                s.close()
            socks = []
            time.sleep(12)
            print(f"after closing them: gateway {t.gateway.rss_kib() / 1024:.1f} MiB (was {g1 / 1024:.1f}, "
                  f"idle {g0 / 1024:.1f}), agent {t.agent.rss_kib() / 1024:.1f} MiB (was {a1 / 1024:.1f}, idle {a0 / 1024:.1f})")
        finally:
            for s in socks:
                s.close()
            t.stop()
            echo.kill()


if __name__ == "__main__":
    main()
