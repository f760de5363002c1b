#!/usr/bin/env python3
"""Gateway memory under edge floods (docs/benchmarks.md, "Edge floods"), loopback only.

    FASTGW_BIN=.build/release/fastgw python3 bench/edge_memory.py [STALLED] [IDLE]

1. STALLED silent connections, then STALLED half ClientHellos, on the tunnel port: RSS
   added per connection of each kind.
2. IDLE HTTPS connections that finished TLS and send nothing, then all closed: RSS at the
   peak, just after the close, and once the periodic trim has run.
3. 1,500 slowloris connections on an HTTP listener (a head begun, never finished).
4. A TLS handshake flood on the HTTPS listener for 10 s (4 processes, full handshakes,
   close): handshakes/s and the gateway's peak RSS.
Every process started here is ended here; counts and times are bounded."""
import os
import resource
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from multiprocessing import Process as Worker, Value
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "Tests" / "e2e"))
from conftest import BIN, Process, free_port  # noqa: E402


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))


def settle(pid, seconds=1.0):
    time.sleep(seconds)
    return rss_kib(pid)


def main():
    stalled = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    idle = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    d = Path(tempfile.mkdtemp(prefix="fastgw-edge-mem-"))
    subprocess.run([HERE.parent / "scripts" / "make-pki.sh", d], check=True, capture_output=True)
    tunnel, web, plain = free_port(), free_port(), free_port()
    (d / "gateway.toml").write_text(f"""
[gateway]
public_address = "127.0.0.1"
startup_wait = "0s"
[control]
socket = "gateway.sock"
[tunnel]
listen = "127.0.0.1:{tunnel}"
cert = "gateway.crt"
key = "gateway.key"
handshake_timeout = "120s"
[http]
header_timeout = "120s"
[limits]
max_tunnel_connections = {2 * stalled + 100}
max_tunnel_connections_per_ip = {2 * stalled + 100}
max_connections_per_ip = {idle + 100}
[[listener]]
name = "web"
protocol = "https"
listen = "127.0.0.1:{web}"
[[listener]]
name = "plain"
protocol = "http"
listen = "127.0.0.1:{plain}"
[[certificate]]
cert = "gateway.crt"
key = "gateway.key"
[[agent]]
name = "bench"
token = "{os.urandom(16).hex()}"
""")
    g = Process([BIN, "gateway", "-c", d / "gateway.toml", "--log-level", "notice"], d / "gateway.log")
    socks = []
    try:
        g.wait_for("gateway ready")
        pid = g.proc.pid
        base = settle(pid)
        print(f"binary {BIN}\nidle gateway: {base / 1024:.1f} MiB")

        ctx = ssl.create_default_context()
        hello_out = ssl.MemoryBIO()
        obj = ctx.wrap_bio(ssl.MemoryBIO(), hello_out, server_hostname="localhost")
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        half = hello_out.read()
        half = half[: len(half) // 2]
        for kind, payload in (("silent", None), ("half ClientHello", half)):
            before = settle(pid)
            for _ in range(stalled):
                s = socket.create_connection(("127.0.0.1", tunnel))
                if payload:
                    s.sendall(payload)
                socks.append(s)
            after = settle(pid, 2.0)
            print(f"{stalled} stalled ({kind}): +{(after - before) / 1024:.1f} MiB, "
                  f"{(after - before) * 1024 / stalled / 1024:.1f} KiB each")
        for s in socks:
            s.close()
        socks = []
        time.sleep(6)

        before = settle(pid)
        cctx = ssl.create_default_context(cafile=str(d / "ca.crt"))
        for _ in range(idle):
            raw = socket.create_connection(("127.0.0.1", web))
            socks.append(cctx.wrap_socket(raw, server_hostname="localhost"))
        peak = settle(pid, 2.0)
        print(f"{idle} idle HTTPS connections: {peak / 1024:.1f} MiB "
              f"(+{(peak - before) * 1024 / idle / 1024:.1f} KiB each)")
        for s in socks:
            s.close()
        socks = []
        closed = time.monotonic()
        samples = []
        while time.monotonic() - closed < 12:
            samples.append((time.monotonic() - closed, rss_kib(pid)))
            time.sleep(0.5)
        first = next(r for t, r in samples if t >= 0.5)
        print(f"after closing them: {first / 1024:.1f} MiB at 0.5 s, "
              + ", ".join(f"{r / 1024:.1f} at {t:.0f} s" for t, r in samples[4::4]))
        slowloris(pid, plain)
        handshake_flood(pid, web, d / "ca.crt")
        trims = subprocess.run([BIN.parent / "fastgwctl", "--socket", d / "gateway.sock", "stats"],
                               capture_output=True, text=True).stdout
        print(next((l for l in trims.splitlines() if "memory_trims" in l), "memory_trims: ?"))
    finally:
        for s in socks:
            s.close()
        g.kill(signal.SIGTERM)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def slowloris(pid, port, n=1500):
    before = settle(pid)
    socks = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-a: b\r\n")
            socks.append(s)
        after = settle(pid, 2.0)
        print(f"{n} slowloris connections: {before / 1024:.1f} -> {after / 1024:.1f} MiB "
              f"({(after - before) * 1024 / n / 1024:.1f} KiB each)")
    finally:
        for s in socks:
            s.close()
    time.sleep(1)


def handshaker(port, ca, until, count):
    ctx = ssl.create_default_context(cafile=str(ca))
    while time.monotonic() < until:
        try:
            with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost"):
                pass
            with count.get_lock():
                count.value += 1
        except OSError:
            pass


def handshake_flood(pid, port, ca, seconds=10, workers=4):
    before = settle(pid)
    count = Value("i", 0)
    until = time.monotonic() + seconds
    procs = [Worker(target=handshaker, args=(port, ca, until, count)) for _ in range(workers)]
    for p in procs:
        p.start()
    peak = before
    while time.monotonic() < until:
        peak = max(peak, rss_kib(pid))
        time.sleep(0.1)
    for p in procs:
        p.join(timeout=10)
        if p.is_alive():
            p.kill()
    after = settle(pid, 6.0)
    print(f"TLS handshake flood: {count.value / seconds:.0f}/s for {seconds} s, RSS {before / 1024:.1f} -> "
          f"peak {peak / 1024:.1f} -> {after / 1024:.1f} MiB 6 s later")


if __name__ == "__main__":
    main()
